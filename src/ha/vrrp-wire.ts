/**
 * VRRP version 3 advertisements (RFC 5798 section 5), pure encode and decode.
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |(rsvd) |     Max Adver Int     |          Checksum             |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                      IPvX Address(es) ...                     |
 * ```
 *
 * The checksum (RFC 5798 5.2.8) is the 16-bit one's complement of the one's complement sum of
 * the whole VRRP message and a pseudo-header: for IPv4 the one of RFC 768 / 791 (source,
 * destination, zero, protocol 112, VRRP length), for IPv6 the one of RFC 8200 8.1 (source,
 * destination, 32-bit length, three zero bytes, next header 112). keepalived v2.2.7 does the
 * same for multicast version 3 adverts in both families (its IPv4 code builds that pseudo-header
 * with the group as destination; IPv6 leaves it to the kernel's IPV6_CHECKSUM), so adverts
 * interoperate as they are.
 *
 * decode() never throws: every malformed message comes back as a reason.
 */
import { isIP } from 'node:net';
import { parseAddress, formatAddress } from '../net/address.js';

export const VRRP_PROTOCOL = 112;
export const VRRP_VERSION = 3;
export const VRRP_TYPE_ADVERTISEMENT = 1;
export const VRRP_GROUP4 = '224.0.0.18';
export const VRRP_GROUP6 = 'ff02::12';
/** The fixed part of the message, before the addresses. */
export const VRRP_HEADER_LENGTH = 8;
/** Max Adver Int is 12 bits of centiseconds: 10 ms .. 40.95 s. */
export const VRRP_MAX_INTERVAL_CS = 0x0fff;

export interface VrrpAdvert {
  vrid: number;
  priority: number;
  /** Max Adver Int, centiseconds. */
  intervalCs: number;
  /** The virtual addresses, as text (IPv4 dotted quad or RFC 5952 IPv6). */
  addresses: string[];
}

export type VrrpRejectReason =
  | 'short'     // shorter than the header, or than the addresses it announces
  | 'truncated' // cut by the receive buffer
  | 'ttl'       // TTL / hop limit not 255 (RFC 5798 7.1)
  | 'version'   // not version 3
  | 'type'      // not an advertisement (type 1)
  | 'checksum'
  | 'interval'  // Max Adver Int 0 (a backup would compute a Master_Down_Interval of 0)
  | 'family'    // the packet's addresses are of the other family
  | 'vrid'      // a virtual router we do not run
  | 'owner'     // we own the addresses (priority 255): an advert from another router is an error
  | 'own';      // sent by ourselves

export type DecodeResult =
  | { ok: true; advert: VrrpAdvert }
  | { ok: false; reason: VrrpRejectReason; detail: string };

function addrBytes(a: string | Uint8Array, family: 4 | 6, what: string): Uint8Array {
  if (typeof a !== 'string') {
    if (a.length !== (family === 4 ? 4 : 16)) throw new RangeError(`${what}: ${a.length} bytes is not an IPv${family} address`);
    return a;
  }
  const p = parseAddress(a, what);
  if ((p.family === 'ipv4' ? 4 : 6) !== family) throw new RangeError(`${what}: ${a} is not an IPv${family} address`);
  return p.bytes;
}

/** The one's complement sum of `data`, folded to 16 bits (without the final complement). */
function sum16(data: Uint8Array, start = 0): number {
  let s = start;
  for (let i = 0; i + 1 < data.length; i += 2) s += (data[i]! << 8) | data[i + 1]!;
  if (data.length & 1) s += data[data.length - 1]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

function pseudoHeader(family: 4 | 6, src: Uint8Array, dst: Uint8Array, length: number): Uint8Array {
  if (family === 4) {
    const p = new Uint8Array(12);
    p.set(src, 0);
    p.set(dst, 4);
    p[9] = VRRP_PROTOCOL;
    p[10] = length >>> 8;
    p[11] = length & 0xff;
    return p;
  }
  const p = new Uint8Array(40);
  p.set(src, 0);
  p.set(dst, 16);
  new DataView(p.buffer).setUint32(32, length);
  p[39] = VRRP_PROTOCOL;
  return p;
}

/**
 * The checksum field's value for `msg` (its own checksum bytes are taken as zero) sent from
 * `source` to `destination` (the group, for multicast adverts).
 */
export function vrrpChecksum(family: 4 | 6, source: string | Uint8Array, destination: string | Uint8Array, msg: Uint8Array): number {
  const src = addrBytes(source, family, 'source');
  const dst = addrBytes(destination, family, 'destination');
  const copy = Uint8Array.from(msg);
  if (copy.length >= 8) { copy[6] = 0; copy[7] = 0; }
  const s = sum16(copy, sum16(pseudoHeader(family, src, dst, msg.length)));
  return (~s) & 0xffff;
}

export interface EncodeOptions {
  family: 4 | 6;
  /** The sender's address (IPv4 primary address, IPv6 link-local). */
  source: string | Uint8Array;
  /** Default: the VRRP group of the family. */
  destination?: string | Uint8Array;
}

/** One advertisement, checksum filled in. Throws RangeError for values that do not fit. */
export function encodeAdvert(a: VrrpAdvert, o: EncodeOptions): Buffer {
  const check = (v: number, lo: number, hi: number, what: string) => {
    if (!Number.isInteger(v) || v < lo || v > hi) throw new RangeError(`${what}: ${v} is not in ${lo}..${hi}`);
  };
  check(a.vrid, 1, 255, 'vrid');
  check(a.priority, 0, 255, 'priority');
  check(a.intervalCs, 1, VRRP_MAX_INTERVAL_CS, 'max advert interval (cs)');
  check(a.addresses.length, 0, 255, 'address count');
  const alen = o.family === 4 ? 4 : 16;
  const msg = Buffer.alloc(VRRP_HEADER_LENGTH + alen * a.addresses.length);
  msg[0] = (VRRP_VERSION << 4) | VRRP_TYPE_ADVERTISEMENT;
  msg[1] = a.vrid;
  msg[2] = a.priority;
  msg[3] = a.addresses.length;
  msg.writeUInt16BE(a.intervalCs & VRRP_MAX_INTERVAL_CS, 4);
  a.addresses.forEach((addr, i) => msg.set(addrBytes(addr, o.family, `address ${i + 1}`), VRRP_HEADER_LENGTH + i * alen));
  const dst = o.destination ?? (o.family === 4 ? VRRP_GROUP4 : VRRP_GROUP6);
  msg.writeUInt16BE(vrrpChecksum(o.family, o.source, dst, msg), 6);
  return msg;
}

export interface DecodeOptions {
  family: 4 | 6;
  /** The IP source and destination of the packet; the checksum covers them. */
  source: Uint8Array | string;
  destination: Uint8Array | string;
}

/** Check and take apart one received VRRP message (the IP payload). Never throws. */
export function decodeAdvert(msg: Uint8Array, o: DecodeOptions): DecodeResult {
  const fail = (reason: VrrpRejectReason, detail: string): DecodeResult => ({ ok: false, reason, detail });
  try {
    if (msg.length < VRRP_HEADER_LENGTH) return fail('short', `${msg.length} bytes, a VRRP header has ${VRRP_HEADER_LENGTH}`);
    const version = msg[0]! >> 4;
    const type = msg[0]! & 0x0f;
    if (version !== VRRP_VERSION) return fail('version', `version ${version}${version === 2 ? ' (VRRPv2: set vrrp_version 3 on the peer)' : ''}, expected 3`);
    if (type !== VRRP_TYPE_ADVERTISEMENT) return fail('type', `type ${type}, expected 1 (advertisement)`);
    const count = msg[3]!;
    const alen = o.family === 4 ? 4 : 16;
    const need = VRRP_HEADER_LENGTH + count * alen;
    if (msg.length < need) {
      // An IPv4 advert among IPv6 ones (or the reverse) shows as a length that fits the other family.
      const other = o.family === 4 ? 16 : 4;
      if (msg.length === VRRP_HEADER_LENGTH + count * other) return fail('family', `${count} address(es) of ${other} bytes: an IPv${o.family === 4 ? 6 : 4} advert`);
      return fail('short', `${msg.length} bytes, but ${count} IPv${o.family} address(es) need ${need}`);
    }
    let src: Uint8Array;
    let dst: Uint8Array;
    try {
      src = addrBytes(o.source, o.family, 'source');
      dst = addrBytes(o.destination, o.family, 'destination');
    } catch (e) {
      return fail('family', (e as Error).message);
    }
    // The checksum covers the whole IP payload (its length is in the pseudo-header).
    const want = vrrpChecksum(o.family, src, dst, msg);
    const got = (msg[6]! << 8) | msg[7]!;
    if (want !== got) return fail('checksum', `checksum 0x${got.toString(16).padStart(4, '0')}, expected 0x${want.toString(16).padStart(4, '0')}`);
    const intervalCs = ((msg[4]! << 8) | msg[5]!) & VRRP_MAX_INTERVAL_CS;
    if (intervalCs === 0) return fail('interval', 'max advert interval 0');
    const addresses: string[] = [];
    for (let i = 0; i < count; i++) {
      const off = VRRP_HEADER_LENGTH + i * alen;
      addresses.push(formatAddress(o.family === 4 ? 'ipv4' : 'ipv6', msg.subarray(off, off + alen)));
    }
    return { ok: true, advert: { vrid: msg[1]!, priority: msg[2]!, intervalCs, addresses } };
  } catch (e) {
    return fail('short', `undecodable: ${(e as Error).message}`);
  }
}

/** Canonical text of an address (for comparisons): '2001:DB8::0100' -> '2001:db8::100'. */
export function canonicalAddress(a: string): string {
  const v = isIP(a);
  if (v === 0) throw new RangeError(`${a} is not an IP address`);
  const p = parseAddress(a);
  return formatAddress(p.family, p.bytes);
}

/** Compare two addresses of one family as unsigned numbers (-1, 0, 1): the tie rule's order. */
export function compareAddresses(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  return a.length - b.length;
}
