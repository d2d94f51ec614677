/**
 * Gratuitous ARP and unsolicited neighbour advertisements: the frames field by field, the
 * frames as a peer captures them off the wire (tcpdump in the peer's namespace), and the
 * peer's neighbour table following them.
 *
 *   dir (198.18.0.1, 2001:db8::1; announces the VIPs) --veth-- peer (198.18.0.2, 2001:db8::2)
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { announce, gratuitousArp, icmpv6Checksum, unsolicitedNeighbourAdvertisement } from '../../src/host/garp.js';
import { Host } from '../../src/host/host.js';
import { parseAddress } from '../../src/net/address.js';
import { Netns, cleanupOnExit, removeAllNamespaces, vethPair } from '../../src/lab/netns.js';
import { capture } from '../helpers/capture.js';

cleanupOnExit();

const MAC = '02:00:00:00:aa:01';
const VIP4 = '198.18.0.100';
const VIP6 = '2001:db8::100';
const WRONG = '02:00:00:00:00:99';

let dir: Netns;
let peer: Netns;

function peerNeighbour(address: string): { lladdr?: string; state?: string[] } | undefined {
  const all = JSON.parse(peer.ip('-j', 'neigh', 'show', 'dev', 'vp')) as Array<{ dst: string; lladdr?: string; state?: string[] }>;
  return all.find((n) => n.dst === address);
}

/** The peer's MAC for `address` once it is `want` (the peer handles the frame in its own time). */
async function peerMacBecomes(address: string, want: string): Promise<string | undefined> {
  for (let i = 0; i < 100; i++) {
    const mac = peerNeighbour(address)?.lladdr;
    if (mac === want) return mac;
    await new Promise((r) => setTimeout(r, 20));
  }
  return peerNeighbour(address)?.lladdr;
}

beforeAll(() => {
  dir = Netns.create('gad');
  peer = Netns.create('gap');
  vethPair(dir, 'vd', peer, 'vp');
  dir.ip('link', 'set', 'dev', 'vd', 'address', MAC);
  dir.ip('addr', 'add', '198.18.0.1/24', 'dev', 'vd');
  dir.ip('addr', 'add', '2001:db8::1/64', 'dev', 'vd', 'nodad');
  peer.ip('addr', 'add', '198.18.0.2/24', 'dev', 'vp');
  peer.ip('addr', 'add', '2001:db8::2/64', 'dev', 'vp', 'nodad');
  const host = new Host(dir.name);
  host.addAddress('vd', VIP4, 32);
  host.addAddress('vd', VIP6, 128, { nodad: true });
});

afterAll(() => removeAllNamespaces());

describe('frames', () => {
  test('gratuitous ARP request: broadcast, sender = target = the address, target MAC zero, padded to 60 bytes', () => {
    const f = gratuitousArp(MAC, VIP4);
    expect(f.length).toBe(60);
    expect(f.subarray(0, 6).toString('hex')).toBe('ffffffffffff');
    expect(f.subarray(6, 12).toString('hex')).toBe('02000000aa01');
    expect(f.readUInt16BE(12)).toBe(0x0806);
    expect(f.subarray(14, 20).toString('hex')).toBe('000108000604'); // Ethernet, IPv4, 6, 4
    expect(f.readUInt16BE(20)).toBe(1); // request
    expect(f.subarray(22, 28).toString('hex')).toBe('02000000aa01');
    expect([...f.subarray(28, 32)]).toEqual([198, 18, 0, 100]);
    expect(f.subarray(32, 38).toString('hex')).toBe('000000000000');
    expect([...f.subarray(38, 42)]).toEqual([198, 18, 0, 100]);
    expect(f.subarray(42).every((b) => b === 0)).toBe(true);
  });

  test("the reply form is send_arp's: op 2, target MAC = sender MAC", () => {
    const f = gratuitousArp(MAC, VIP4, { op: 'reply' });
    expect(f.readUInt16BE(20)).toBe(2);
    expect(f.subarray(32, 38).toString('hex')).toBe('02000000aa01');
    expect([...f.subarray(38, 42)]).toEqual([198, 18, 0, 100]);
  });

  test('unsolicited NA: to ff02::1, hop limit 255, Override set, Solicited clear, target link-layer option, valid checksum', () => {
    const f = unsolicitedNeighbourAdvertisement(MAC, VIP6);
    expect(f.length).toBe(14 + 40 + 32);
    expect(f.subarray(0, 6).toString('hex')).toBe('333300000001');
    expect(f.subarray(6, 12).toString('hex')).toBe('02000000aa01');
    expect(f.readUInt16BE(12)).toBe(0x86dd);
    const ip = f.subarray(14, 54);
    expect(ip[0]! >> 4).toBe(6);
    expect(ip.readUInt16BE(4)).toBe(32); // payload length
    expect(ip[6]).toBe(58);
    expect(ip[7]).toBe(255);
    expect(Buffer.from(ip.subarray(8, 24))).toEqual(Buffer.from(parseAddress(VIP6).bytes));
    expect(Buffer.from(ip.subarray(24, 40))).toEqual(Buffer.from(parseAddress('ff02::1').bytes));
    const icmp = f.subarray(54);
    expect(icmp[0]).toBe(136);
    expect(icmp[1]).toBe(0);
    expect(icmp.readUInt32BE(4)).toBe(0x20000000); // O only
    expect(Buffer.from(icmp.subarray(8, 24))).toEqual(Buffer.from(parseAddress(VIP6).bytes));
    expect([icmp[24], icmp[25]]).toEqual([2, 1]);
    expect(icmp.subarray(26, 32).toString('hex')).toBe('02000000aa01');
    // Summing the message with its checksum in place gives 0 (RFC 4443 2.3).
    expect(icmpv6Checksum(ip.subarray(8, 24), ip.subarray(24, 40), icmp)).toBe(0);
  });

  test('the wrong family is refused', () => {
    expect(() => gratuitousArp(MAC, VIP6)).toThrow(expect.objectContaining({ code: 'LVS_FAMILY_MISMATCH' }));
    expect(() => unsolicitedNeighbourAdvertisement(MAC, VIP4)).toThrow(expect.objectContaining({ code: 'LVS_FAMILY_MISMATCH' }));
    expect(() => gratuitousArp('02:00:00', VIP4)).toThrow(expect.objectContaining({ code: 'LVS_INVALID_MAC' }));
  });
});

describe('on the wire', () => {
  test('announce() sends count rounds; the peer captures exactly our frames', async () => {
    const host = new Host(dir.name);
    let sent = 0;
    const arp = await capture(peer, 'vp', 'arp', 3, async () => {
      sent = await announce(host, 'vd', VIP4, { count: 3, intervalMs: 20 });
    });
    expect(sent).toBe(3);
    expect(arp).toHaveLength(3);
    for (const f of arp) expect(f.equals(gratuitousArp(MAC, VIP4))).toBe(true);

    const na = await capture(peer, 'vp', 'icmp6 and ip6[40] == 136', 2, () => announce(host, 'vd', [VIP6], { count: 2, intervalMs: 20 }));
    expect(na).toHaveLength(2);
    for (const f of na) expect(f.equals(unsolicitedNeighbourAdvertisement(MAC, VIP6))).toBe(true);
  });

  test('an aborted announcement stops early', async () => {
    const ac = new AbortController();
    const p = announce(new Host(dir.name), 'vd', VIP4, { count: 50, intervalMs: 50, signal: ac.signal });
    ac.abort();
    expect(await p).toBe(1);
  });

  test("the peer's neighbour table takes the new MAC: ARP request, send_arp's reply, and NA", async () => {
    const host = new Host(dir.name);
    peer.ip('neigh', 'replace', VIP4, 'lladdr', WRONG, 'dev', 'vp', 'nud', 'stale');
    expect(peerNeighbour(VIP4)?.lladdr).toBe(WRONG);
    await announce(host, 'vd', VIP4, { count: 1 });
    expect(await peerMacBecomes(VIP4, MAC)).toBe(MAC);

    peer.ip('neigh', 'replace', VIP4, 'lladdr', WRONG, 'dev', 'vp', 'nud', 'stale');
    await announce(host, 'vd', VIP4, { count: 1, op: 'reply' });
    expect(await peerMacBecomes(VIP4, MAC)).toBe(MAC);

    peer.ip('-6', 'neigh', 'replace', VIP6, 'lladdr', WRONG, 'dev', 'vp', 'nud', 'stale');
    expect(peerNeighbour(VIP6)?.lladdr).toBe(WRONG);
    await announce(host, 'vd', VIP6, { count: 1 });
    expect(await peerMacBecomes(VIP6, MAC)).toBe(MAC);
  });
});
