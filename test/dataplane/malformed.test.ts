import { describe, expect, it } from 'vitest';
import { MACS, checksum, icmpError, ipPacket, packet } from '../../src/lab/frames.js';
import { CLIENT4, CLIENT6, VIP4, VIP6, manualDataplane, tcpService, through, udpService, withService } from '../helpers/setup.js';
import type { Dataplane } from '../../src/index.js';

function drops(dp: Dataplane): Record<string, number> {
  return Object.fromEntries(Object.entries(dp.counters()).filter(([k, v]) => k.startsWith('drop_') && v > 0));
}

function setup() {
  const dp = manualDataplane();
  withService(dp, tcpService(), 'nat', 2, 8080);
  withService(dp, udpService(), 'nat', 1, 5353);
  withService(dp, tcpService(VIP6), 'nat', 1, 8080);
  withService(dp, udpService(VIP6), 'nat', 1, 5353);
  return dp;
}

/** Send one frame; expect nothing out and exactly one drop with this reason. */
async function expectDrop(dp: Dataplane, frame: Buffer, reason: string) {
  const before = drops(dp);
  const out = await through(dp, [frame]);
  expect(out, reason).toEqual([]);
  const after = drops(dp);
  const changed = Object.keys(after).filter((k) => after[k] !== (before[k] ?? 0));
  expect(changed).toEqual([`drop_${reason}`]);
  expect(after[`drop_${reason}`]! - (before[`drop_${reason}`] ?? 0)).toBe(1);
}

function fixIpv4Checksum(frame: Buffer, l3 = 14) {
  const ihl = (frame[l3]! & 15) * 4;
  frame.writeUInt16BE(0, l3 + 10);
  frame.writeUInt16BE(checksum(frame.subarray(l3, l3 + Math.min(ihl, frame.length - l3))), l3 + 10);
}

describe('malformed and truncated frames are counted by reason and dropped', () => {
  it('a valid frame truncated at every offset', async () => {
    const dp = setup();
    const kinds: Array<[string, Buffer, (len: number) => string]> = [
      ['tcp4', packet({ src: CLIENT4, dst: VIP4, proto: 'tcp', dport: 80, flags: 'S', payload: 'xyz', options: Buffer.from([1, 1, 1, 0]) }), (n) => (n < 14 ? 'eth_truncated' : n < 34 ? 'ipv4_truncated' : n < 38 ? 'ipv4_bad_ihl' : 'ipv4_bad_length')],
      ['udp6', packet({ src: CLIENT6, dst: VIP6, proto: 'udp', dport: 53, payload: 'q', ext: [{ type: 0 }] }), (n) => (n < 14 ? 'eth_truncated' : n < 54 ? 'ipv6_truncated' : 'ipv6_bad_length')],
      ['vlan', packet({ src: CLIENT4, dst: VIP4, proto: 'udp', dport: 53, vlan: 5 }), (n) => (n < 14 ? 'eth_truncated' : n < 18 ? 'vlan_truncated' : n < 38 ? 'ipv4_truncated' : 'ipv4_bad_length')],
    ];
    for (const [, frame, reason] of kinds) {
      for (let len = 0; len < frame.length; len++) {
        // An Ethernet header cut before its type is not IP (nor anything else): a drop too.
        await expectDrop(dp, Buffer.from(frame.subarray(0, len)), reason(len));
      }
      // The whole frame still goes through.
      expect((await through(dp, [frame]))[0]!.action).toBe('tx');
    }
  });

  it('bad IPv4 header fields', async () => {
    const dp = setup();
    const base = () => packet({ src: CLIENT4, dst: VIP4, proto: 'tcp', dport: 80, flags: 'S', payload: 'data' });
    let f = base();
    f[14] = 0x44; // IHL 4
    fixIpv4Checksum(f);
    await expectDrop(dp, f, 'ipv4_bad_ihl');
    f = base();
    f[14] = 0x4f; // IHL 15: 60 bytes, more than the packet has before the payload ends? (64 bytes here)
    f = f.subarray(0, 14 + 40);
    await expectDrop(dp, Buffer.from(f), 'ipv4_bad_ihl');
    f = base();
    f[14] = 0x65; // version 6 with an IPv4 ethertype
    await expectDrop(dp, f, 'ipv4_bad_version');
    f = base();
    f.writeUInt16BE(19, 16); // total length < header
    fixIpv4Checksum(f);
    await expectDrop(dp, f, 'ipv4_bad_length');
    f = base();
    f[14 + 10]! ^= 1;
    await expectDrop(dp, f, 'ipv4_bad_checksum');
    f = packet({ src: CLIENT4, dst: VIP4, proto: 'udp', dport: 53, mf: true });
    await expectDrop(dp, f, 'fragment');
    f = packet({ src: CLIENT4, dst: VIP4, proto: 'udp', dport: 53, fragOffset: 1480 });
    await expectDrop(dp, f, 'fragment');
  });

  it('bad TCP and UDP headers', async () => {
    const dp = setup();
    let f = packet({ src: CLIENT4, dst: VIP4, proto: 'tcp', dport: 80, flags: 'S', payload: 'abcd' });
    f[14 + 20 + 12] = 4 << 4; // data offset 4 words
    await expectDrop(dp, f, 'tcp_bad_offset');
    f = packet({ src: CLIENT4, dst: VIP4, proto: 'tcp', dport: 80, flags: 'S', payload: 'abcd' });
    f[14 + 20 + 12] = 15 << 4; // 60 bytes of header in a 24-byte segment
    await expectDrop(dp, f, 'tcp_bad_offset');
    // A UDP header cut to 6 bytes inside an IPv4 packet that says so.
    f = packet({ src: CLIENT4, dst: VIP4, proto: 'udp', dport: 53 }).subarray(0, 14 + 26);
    f.writeUInt16BE(26, 14 + 2);
    fixIpv4Checksum(f);
    await expectDrop(dp, Buffer.from(f), 'l4_truncated');
    f = packet({ src: CLIENT4, dst: VIP4, proto: 'udp', dport: 53, payload: 'q' });
    f.writeUInt16BE(200, 14 + 20 + 4); // UDP length beyond the packet
    await expectDrop(dp, f, 'udp_bad_length');
    f = packet({ src: CLIENT6, dst: VIP6, proto: 'udp', dport: 53, payload: 'q' });
    f.writeUInt16BE(0, 14 + 40 + 6);
    await expectDrop(dp, f, 'udp6_zero_checksum');
  });

  it('bogus IPv6 extension header chains', async () => {
    const dp = setup();
    const v6 = (ext: Parameters<typeof packet>[0]['ext']) => packet({ src: CLIENT6, dst: VIP6, proto: 'udp', dport: 53, payload: 'q', ext });
    await expectDrop(dp, v6([{ type: 60 }, { type: 0 }]), 'ipv6_bad_extension'); // hop-by-hop not first
    await expectDrop(dp, v6(Array.from({ length: 9 }, () => ({ type: 60 as const }))), 'ipv6_bad_extension');
    const long = v6([{ type: 60, length: 1 }]);
    long[14 + 40 + 1] = 200; // claims 1608 bytes
    await expectDrop(dp, long, 'ipv6_bad_extension');
    await expectDrop(dp, v6([{ type: 43, segmentsLeft: 2 }]), 'ipv6_routing_header');
    await expectDrop(dp, v6([{ type: 44, fragOffset: 8, more: true }]), 'fragment');
    const zero = v6([]);
    zero.writeUInt16BE(0, 14 + 4);
    await expectDrop(dp, zero, 'ipv6_bad_length');
    // Allowed chains go through: atomic fragment, routing header with nothing left, AH.
    for (const ext of [[{ type: 44 as const }], [{ type: 43 as const }], [{ type: 0 as const }, { type: 51 as const, length: 2 }]]) {
      const [o] = await through(dp, [v6(ext)]);
      expect(o).toMatchObject({ action: 'tx', dport: 5353, l4ChecksumOk: true });
    }
  });

  it('ICMP errors with a broken quote', async () => {
    const dp = setup();
    const quote = ipPacket({ src: VIP4, dst: CLIENT4, proto: 'udp', sport: 53, dport: 5000 });
    await expectDrop(dp, icmpError({ src: CLIENT4, dst: VIP4, type: 3, code: 3, quote: quote.subarray(0, 12) }), 'icmp_bad_inner');
    const badVersion = Buffer.from(quote);
    badVersion[0] = 0x65;
    await expectDrop(dp, icmpError({ src: CLIENT4, dst: VIP4, type: 3, code: 3, quote: badVersion }), 'icmp_bad_inner');
    await expectDrop(dp, icmpError({ src: CLIENT4, dst: VIP4, type: 3, code: 3, quote: quote.subarray(0, 24) }), 'icmp_bad_inner');
  });

  it('survives random garbage after valid headers, and never emits a frame with a bad IPv4 header', async () => {
    const dp = setup();
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1664525 + 1013904223) >>> 0) % n);
    const frames: Buffer[] = [];
    for (let i = 0; i < 3000; i++) {
      const f = packet({ src: i % 2 ? CLIENT4 : CLIENT6, dst: i % 2 ? VIP4 : VIP6, proto: i % 3 ? 'udp' : 'tcp', dport: i % 3 ? 53 : 80, flags: 'S', payload: Buffer.alloc(rand(64)) });
      const flips = 1 + rand(4);
      for (let k = 0; k < flips; k++) f[14 + rand(f.length - 14)] = rand(256);
      frames.push(f.subarray(0, 14 + rand(f.length - 13)));
    }
    const out = await through(dp, frames);
    for (const o of out) if (o.action === 'tx' && o.family === 'ipv4') expect(o.ipHeaderOk).toBe(true);
    const c = dp.counters();
    expect(c.rx_packets).toBe(3000);
  });
});

describe('ICMPv6 errors whose quote is cut short', () => {
  it('are not malformed: an error about a long packet with long extension headers goes to the kernel', async () => {
    const dp = setup();
    // A 1360-byte packet whose hop-by-hop header alone is 1288 bytes: a 1280-byte ICMPv6
    // error can only quote 1232 bytes of it, which end inside that header.
    const long = ipPacket({ src: VIP6, dst: CLIENT6, proto: 'tcp', sport: 80, dport: 40000, flags: 'A', ext: [{ type: 0, length: 160 }] });
    const err = icmpError({ src: '2001:db8:7::1', dst: VIP6, type: 2, code: 0, mtu: 1280, quote: long.subarray(0, 1232) });
    const [o] = await through(dp, [err]);
    expect(o!.action).toBe('pass');
    expect(drops(dp)).toEqual({});
  });

  it('and the director\'s own packet-too-big about such a packet is well-formed', async () => {
    const dp = manualDataplane();
    dp.setInterface({ id: 1, mac: MACS.inside, ipv4: '198.19.0.1', ipv6: '2001:db8:1::1', mtu: 1400 });
    withService(dp, tcpService(VIP6), 'nat', 1, 8080);
    const big = packet({ src: CLIENT6, dst: VIP6, proto: 'tcp', sport: 40001, dport: 80, flags: 'S', ext: [{ type: 0, length: 160 }], payload: Buffer.alloc(100) });
    const [o] = await through(dp, [big]);
    expect(o).toMatchObject({ family: 'ipv6', dst: CLIENT6, proto: 58, ipLength: 1280 });
    expect(o!.icmp).toMatchObject({ type: 2, rest: 1400, checksumOk: true });
    // Sent back in, it is a well-formed error that relates to no flow: the kernel's.
    const [again] = await through(dp, [o!.raw]);
    expect(again!.action).toBe('pass');
  });
});
