import { describe, expect, it } from 'vitest';
import { MACS, decode, ipPacket, packet } from '../../src/lab/frames.js';
import { CLIENT4, CLIENT6, INSIDE, OUTSIDE, REALS4, REALS6, VIP4, VIP6, manualDataplane, tcpService, through, udpService, withService } from '../helpers/setup.js';

describe('direct routing', () => {
  it('changes only the MAC addresses and the TTL', async () => {
    const dp = manualDataplane();
    withService(dp, tcpService(), 'direct');
    const f = packet({ src: CLIENT4, dst: VIP4, proto: 'tcp', sport: 40000, dport: 80, flags: 'S', payload: 'abc', ttl: 30 });
    const [o] = await through(dp, [f]);
    expect(o).toMatchObject({ iface: INSIDE, dstMac: MACS.real1, srcMac: MACS.inside, src: CLIENT4, dst: VIP4, dport: 80, ttl: 29, ipHeaderOk: true, l4ChecksumOk: true });
    // Everything past the TTL/checksum is byte-identical.
    const sent = f.subarray(14);
    const got = o!.ip;
    expect(got.subarray(0, 8).equals(sent.subarray(0, 8))).toBe(true);
    expect(got.subarray(12).equals(sent.subarray(12))).toBe(true);
  });

  it('works for IPv6 (hop limit) and for UDP', async () => {
    const dp = manualDataplane();
    withService(dp, udpService(VIP6), 'direct', 1);
    const [o] = await through(dp, [packet({ src: CLIENT6, dst: VIP6, proto: 'udp', sport: 5000, dport: 53, payload: 'q', ttl: 9 })]);
    expect(o).toMatchObject({ family: 'ipv6', dst: VIP6, ttl: 8, dstMac: MACS.real1, l4ChecksumOk: true });
  });

  it('adds, keeps or strips an 802.1Q tag according to the egress interface', async () => {
    const dp = manualDataplane();
    dp.setInterface({ id: 2, mac: '02:00:00:00:02:01', vlan: 42, ipv4: '198.19.2.1' });
    dp.addService(tcpService());
    dp.addReal(tcpService(), { address: '198.19.2.11', method: 'direct', interface: 2, mac: MACS.real2 });
    const tagged = packet({ src: CLIENT4, dst: VIP4, proto: 'tcp', sport: 40001, dport: 80, flags: 'S', vlan: 7 });
    const [o] = await through(dp, [tagged]);
    expect(o).toMatchObject({ iface: 2, vlan: 42, dstMac: MACS.real2, dst: VIP4, l4ChecksumOk: true });
    dp.editReal(tcpService(), { address: '198.19.2.11' }, { interface: INSIDE });
    const [u] = await through(dp, [packet({ src: CLIENT4, dst: VIP4, proto: 'tcp', sport: 40001, dport: 80, flags: 'A', vlan: 7 })]);
    expect(u).toMatchObject({ iface: INSIDE, vlan: null, dst: VIP4 });
  });
});

describe('tunnel (IPIP and IPv6 encapsulation)', () => {
  it('encapsulates IPv4 in IPv4 from the director to the real, inner packet intact but for the TTL', async () => {
    const dp = manualDataplane();
    withService(dp, tcpService(), 'tunnel');
    const f = packet({ src: CLIENT4, dst: VIP4, proto: 'tcp', sport: 40000, dport: 80, flags: 'S', payload: 'tunnelled', df: true, tos: 0x2b });
    const [o] = await through(dp, [f]);
    expect(o).toMatchObject({ iface: INSIDE, dstMac: MACS.real1, family: 'ipv4', proto: 4, src: '198.19.0.1', dst: REALS4[0], ttl: 63, df: true, ipHeaderOk: true });
    // ECN CE (0b11) in the inner header is not copied out: ECT(0) instead (RFC 6040).
    expect(o!.tos).toBe(0x2a);
    expect(o!.inner).toMatchObject({ src: CLIENT4, dst: VIP4, dport: 80, ttl: 63, l4ChecksumOk: true, ipHeaderOk: true });
    expect(o!.inner!.payload.toString()).toBe('tunnelled');
  });

  it('encapsulates IPv4 in IPv6 and IPv6 in IPv6 for IPv6 reals', async () => {
    const dp = manualDataplane();
    dp.addService(tcpService());
    dp.addReal(tcpService(), { address: REALS6[0]!, method: 'tunnel', interface: INSIDE, mac: MACS.real1 });
    withService(dp, tcpService(VIP6), 'tunnel');
    const [a, b] = await through(dp, [
      packet({ src: CLIENT4, dst: VIP4, proto: 'tcp', sport: 40000, dport: 80, flags: 'S' }),
      packet({ src: CLIENT6, dst: VIP6, proto: 'tcp', sport: 40000, dport: 80, flags: 'S' }),
    ]);
    expect(a).toMatchObject({ family: 'ipv6', proto: 4, src: '2001:db8:1::1', dst: REALS6[0] });
    expect(a!.inner).toMatchObject({ family: 'ipv4', src: CLIENT4, dst: VIP4, l4ChecksumOk: true });
    expect(b).toMatchObject({ family: 'ipv6', proto: 41, dst: REALS6[0] });
    expect(b!.inner).toMatchObject({ family: 'ipv6', src: CLIENT6, dst: VIP6, ttl: 63, l4ChecksumOk: true });
  });

  it('answers a DF packet that would exceed the MTU once encapsulated with ICMP fragmentation needed', async () => {
    const dp = manualDataplane();
    withService(dp, tcpService(), 'tunnel');
    await through(dp, [packet({ src: CLIENT4, dst: VIP4, proto: 'tcp', sport: 40000, dport: 80, flags: 'S' })]);
    const big = packet({ src: CLIENT4, dst: VIP4, proto: 'tcp', sport: 40000, dport: 80, flags: 'A', df: true, payload: Buffer.alloc(1460, 7) });
    expect(big.length - 14).toBe(1500);
    const [icmp] = await through(dp, [big]);
    expect(icmp).toMatchObject({ iface: OUTSIDE, dstMac: MACS.client, srcMac: MACS.outside, family: 'ipv4', src: '198.18.0.1', dst: CLIENT4, proto: 1, ipHeaderOk: true });
    expect(icmp!.icmp).toMatchObject({ type: 3, code: 4, rest: 1480, checksumOk: true });
    // The quote is the client's packet as it was sent (so the client's stack can match it).
    expect(icmp!.icmp!.quote.equals(big.subarray(14, 14 + icmp!.icmp!.quote.length))).toBe(true);
    expect(dp.counters()).toMatchObject({ drop_too_big: 1, icmp_sent: 1 });
  });

  it('fragments the inner IPv4 packet when DF is clear, and each fragment is encapsulated', async () => {
    const dp = manualDataplane();
    withService(dp, udpService(), 'tunnel');
    const payload = Buffer.from(Array.from({ length: 3000 }, (_, i) => i & 0xff));
    const big = packet({ src: CLIENT4, dst: VIP4, proto: 'udp', sport: 5000, dport: 53, payload, id: 0x4242, options: Buffer.from([0x94, 4, 0, 0, 1, 1, 1, 0]) });
    const out = await through(dp, [big]);
    expect(out.length).toBe(3);
    const inner = out.map((o) => o.inner!);
    for (const o of out) expect(o.ipLength).toBeLessThanOrEqual(1500);
    // Reassemble: offsets, MF, ids, and the options rule (router alert 0x94 is copied; NOPs are not).
    expect(inner.map((i) => i.id)).toEqual([0x4242, 0x4242, 0x4242]);
    expect(inner.map((i) => i.mf)).toEqual([true, true, false]);
    const first = inner[0]!;
    expect((first.ip[0]! & 15) * 4).toBe(28);
    expect((inner[1]!.ip[0]! & 15) * 4).toBe(24);
    const data = Buffer.concat(inner.map((i) => i.ip.subarray((i.ip[0]! & 15) * 4)));
    expect(inner.map((i) => i.fragOffset)).toEqual([0, inner[0]!.ip.length - 28, inner[0]!.ip.length - 28 + inner[1]!.ip.length - 24]);
    for (const i of inner) expect(i.ipHeaderOk).toBe(true);
    const udp = data;
    expect(udp.readUInt16BE(4)).toBe(3008);
    expect(udp.subarray(8).equals(payload)).toBe(true);
    expect(dp.counters().fragments_sent).toBe(3);
  });

  it('answers an oversized IPv6 packet with packet too big (never fragments IPv6)', async () => {
    const dp = manualDataplane();
    withService(dp, tcpService(VIP6), 'tunnel');
    const big = packet({ src: CLIENT6, dst: VIP6, proto: 'tcp', sport: 40000, dport: 80, flags: 'S', payload: Buffer.alloc(1440) });
    const [o] = await through(dp, [big]);
    expect(o).toMatchObject({ family: 'ipv6', dst: CLIENT6, src: '2001:db8::1', proto: 58 });
    expect(o!.icmp).toMatchObject({ type: 2, code: 0, rest: 1460, checksumOk: true });
  });

  it('drops when the director has no source address for the outer header', async () => {
    const dp = manualDataplane();
    dp.setInterface({ id: 3, mac: '02:00:00:00:03:01' });
    dp.addService(tcpService());
    dp.addReal(tcpService(), { address: REALS4[0]!, method: 'tunnel', interface: 3, mac: MACS.real1 });
    const out = await through(dp, [packet({ src: CLIENT4, dst: VIP4, proto: 'tcp', flags: 'S' })]);
    expect(out).toEqual([]);
    expect(dp.counters().drop_no_iface).toBe(1);
  });
});

describe('ipPacket helper sanity', () => {
  it('builds what it decodes', () => {
    const ip = ipPacket({ src: CLIENT4, dst: VIP4, proto: 'udp', sport: 1, dport: 2, payload: 'z' });
    const d = decode(Buffer.concat([Buffer.alloc(12), Buffer.from([8, 0]), ip]));
    expect(d).toMatchObject({ ipHeaderOk: true, l4ChecksumOk: true, sport: 1, dport: 2 });
  });
});
