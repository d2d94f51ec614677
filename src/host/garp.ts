/**
 * Telling the segment that an address moved here: gratuitous ARP for IPv4 and unsolicited
 * neighbour advertisements for IPv6, as Piranha's pulse does with send_arp after a takeover.
 *
 * - gratuitousArp(): an ARP packet "from the address, about the address" (sender IP = target
 *   IP = the address, sender MAC = ours), to the Ethernet broadcast. `op: 'request'` (the
 *   default) is the RFC 5227 ARP announcement (target MAC zero); `op: 'reply'` is the frame
 *   Piranha's send_arp builds (ARP reply, target MAC = sender MAC). Linux takes either as
 *   gratuitous (net/ipv4/arp.c, arp_is_garp) and updates an entry it already has.
 * - unsolicitedNeighbourAdvertisement(): RFC 4861 section 7.2.6: an NA to ff02::1 from the
 *   address, Override set, Solicited clear, with a target link-layer address option, hop limit
 *   255, and a correct ICMPv6 checksum.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { LvsError } from '../errors.js';
import { parseAddress, parseMac } from '../net/address.js';
import type { Host } from './host.js';

const ETH_P_IPV4 = 0x0800;
const ETH_P_ARP = 0x0806;
const ETH_P_IPV6 = 0x86dd;
const MIN_FRAME = 60; // Ethernet minimum without the FCS: send_arp pads ARP to this too

/** A gratuitous ARP frame announcing that `address` is at `mac`. */
export function gratuitousArp(mac: string, address: string, options: { op?: 'request' | 'reply' } = {}): Buffer {
  const m = parseMac(mac).bytes;
  const a = parseAddress(address);
  if (a.family !== 'ipv4') throw new LvsError('LVS_FAMILY_MISMATCH', `gratuitous ARP is for IPv4 addresses, not ${a.text}`, { field: 'address' });
  const op = options.op ?? 'request';
  if (op !== 'request' && op !== 'reply') throw new LvsError('LVS_INVALID_OPTION', `op: expected "request" or "reply", got ${JSON.stringify(op)}`, { field: 'op' });
  const f = Buffer.alloc(MIN_FRAME);
  f.fill(0xff, 0, 6); // broadcast
  f.set(m, 6);
  f.writeUInt16BE(ETH_P_ARP, 12);
  const arp = 14;
  f.writeUInt16BE(1, arp); // hardware: Ethernet
  f.writeUInt16BE(ETH_P_IPV4, arp + 2);
  f[arp + 4] = 6;
  f[arp + 5] = 4;
  f.writeUInt16BE(op === 'request' ? 1 : 2, arp + 6);
  f.set(m, arp + 8); // sender MAC
  f.set(a.bytes, arp + 14); // sender IP
  if (op === 'reply') f.set(m, arp + 18); // target MAC: send_arp repeats the sender's
  f.set(a.bytes, arp + 24); // target IP = sender IP
  return f;
}

/** An unsolicited neighbour advertisement announcing that `address` is at `mac`. */
export function unsolicitedNeighbourAdvertisement(mac: string, address: string): Buffer {
  const m = parseMac(mac).bytes;
  const a = parseAddress(address);
  if (a.family !== 'ipv6') throw new LvsError('LVS_FAMILY_MISMATCH', `neighbour advertisements are for IPv6 addresses, not ${a.text}`, { field: 'address' });
  const allNodes = parseAddress('ff02::1').bytes;
  const icmpLen = 4 + 4 + 16 + 8; // header, flags, target, target link-layer option
  const f = Buffer.alloc(14 + 40 + icmpLen);
  f.set([0x33, 0x33, 0, 0, 0, 1], 0); // ff02::1 as an Ethernet multicast address
  f.set(m, 6);
  f.writeUInt16BE(ETH_P_IPV6, 12);
  const ip = 14;
  f.writeUInt32BE(0x60000000, ip);
  f.writeUInt16BE(icmpLen, ip + 4);
  f[ip + 6] = 58; // ICMPv6
  f[ip + 7] = 255; // hop limit: receivers drop ND messages with any other value
  f.set(a.bytes, ip + 8);
  f.set(allNodes, ip + 24);
  const icmp = ip + 40;
  f[icmp] = 136; // neighbour advertisement
  f[icmp + 1] = 0;
  f.writeUInt32BE(0x20000000, icmp + 4); // Override; not Router, not Solicited
  f.set(a.bytes, icmp + 8);
  f[icmp + 24] = 2; // option: target link-layer address
  f[icmp + 25] = 1; // length in units of 8 bytes
  f.set(m, icmp + 26);
  f.writeUInt16BE(icmpv6Checksum(a.bytes, allNodes, f.subarray(icmp)), icmp + 2);
  return f;
}

/** The ICMPv6 checksum (RFC 4443 section 2.3) of `msg` (its checksum field zero). */
export function icmpv6Checksum(src: Uint8Array, dst: Uint8Array, msg: Uint8Array): number {
  let sum = 0;
  const add = (b: Uint8Array) => {
    for (let i = 0; i < b.length; i += 2) sum += (b[i]! << 8) | (b[i + 1] ?? 0);
  };
  add(src);
  add(dst);
  sum += msg.length >>> 16;
  sum += msg.length & 0xffff;
  sum += 58;
  add(msg);
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

export interface AnnounceOptions {
  /** Frames per address; default 5 (pulse runs send_arp five times). */
  count?: number;
  /** Between rounds; default 1000 ms (pulse: one second apart). */
  intervalMs?: number;
  /** The MAC to announce; default the interface's own. */
  mac?: string;
  /** IPv4 only: ARP request (default) or reply (send_arp's frame). */
  op?: 'request' | 'reply';
  /** Stop early (a takeover undone, a shutdown): the promise then resolves with what was sent. */
  signal?: AbortSignal;
}

/**
 * Announce addresses on an interface: `count` rounds, `intervalMs` apart, one frame per
 * address per round (gratuitous ARP for IPv4, unsolicited NA for IPv6). Resolves with the
 * number of frames sent (fewer when `signal` aborted it).
 */
export async function announce(host: Host, ifname: string, addresses: string | string[], options: AnnounceOptions = {}): Promise<number> {
  const count = options.count ?? 5;
  const intervalMs = options.intervalMs ?? 1000;
  if (!Number.isInteger(count) || count < 1 || count > 1000) throw new LvsError('LVS_INVALID_OPTION', `count: expected 1..1000, got ${String(count)}`, { field: 'count' });
  if (typeof intervalMs !== 'number' || !(intervalMs >= 0)) throw new LvsError('LVS_INVALID_OPTION', `intervalMs: expected a number >= 0, got ${String(intervalMs)}`, { field: 'intervalMs' });
  const link = host.link(ifname);
  const mac = options.mac ?? link.mac;
  const list = Array.isArray(addresses) ? addresses : [addresses];
  const frames = list.map((address) =>
    parseAddress(address).family === 'ipv4' ? gratuitousArp(mac, address, options.op ? { op: options.op } : {}) : unsolicitedNeighbourAdvertisement(mac, address),
  );
  const signal = options.signal;
  let sent = 0;
  for (let round = 0; round < count; round++) {
    if (round > 0 && intervalMs > 0) {
      try {
        await sleep(intervalMs, undefined, signal ? { signal } : {});
      } catch (e) {
        if (signal?.aborted) return sent;
        throw e;
      }
    }
    if (signal?.aborted) return sent;
    for (const f of frames) {
      host.sendFrame(link.ifindex, f);
      sent++;
    }
  }
  return sent;
}
