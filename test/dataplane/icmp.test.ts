import { describe, expect, it } from 'vitest';
import { MACS, decodeIp, icmpError, ipPacket, packet } from '../../src/lab/frames.js';
import { CLIENT4, CLIENT6, INSIDE, OUTSIDE, REALS4, REALS6, VIP4, VIP6, manualDataplane, tcpService, through, udpService, withService } from '../helpers/setup.js';

describe('ICMP errors related to a connection', () => {
  it('relays an error about a VIP -> client packet to the NAT real, quote rewritten to the real', async () => {
    const dp = manualDataplane();
    withService(dp, udpService(), 'nat', 1, 5353);
    await through(dp, [packet({ src: CLIENT4, dst: VIP4, proto: 'udp', sport: 5000, dport: 53, payload: 'q' })]);
    // What the client saw from us (VIP:53 -> client:5000), and its "port unreachable" about it.
    const quote = ipPacket({ src: VIP4, dst: CLIENT4, proto: 'udp', sport: 53, dport: 5000, payload: 'answer' });
    const err = icmpError({ src: CLIENT4, dst: VIP4, type: 3, code: 3, quote });
    const [o] = await through(dp, [err]);
    expect(o).toMatchObject({ iface: INSIDE, dstMac: MACS.real1, src: CLIENT4, dst: REALS4[0], ttl: 63, ipHeaderOk: true });
    expect(o!.icmp).toMatchObject({ type: 3, code: 3, checksumOk: true });
    const q = decodeIp(o!.icmp!.quote);
    expect(q).toMatchObject({ src: REALS4[0], sport: 5353, dst: CLIENT4, dport: 5000, ipHeaderOk: true, l4ChecksumOk: true });
  });

  it('relays an error from the real side about a client -> real packet to the client, as if from the VIP', async () => {
    const dp = manualDataplane();
    withService(dp, tcpService(), 'nat', 1, 8080);
    await through(dp, [packet({ src: CLIENT4, dst: VIP4, proto: 'tcp', sport: 40000, dport: 80, flags: 'S' })]);
    const quote = ipPacket({ src: CLIENT4, dst: REALS4[0]!, proto: 'tcp', sport: 40000, dport: 8080, flags: 'A', payload: Buffer.alloc(40) });
    const err = icmpError({ src: '198.19.0.254', dst: CLIENT4, type: 3, code: 4, mtu: 1280, quote, srcMac: MACS.real1, dstMac: MACS.inside });
    const [o] = await through(dp, [err], INSIDE);
    expect(o).toMatchObject({ iface: OUTSIDE, dstMac: MACS.client, src: VIP4, dst: CLIENT4, ipHeaderOk: true });
    expect(o!.icmp).toMatchObject({ type: 3, code: 4, rest: 1280, checksumOk: true });
    expect(decodeIp(o!.icmp!.quote)).toMatchObject({ src: CLIENT4, sport: 40000, dst: VIP4, dport: 80, ipHeaderOk: true, l4ChecksumOk: true });
    expect(dp.listServices()[0]!.stats.packetsOut).toBe(1);
  });

  it('relays ICMPv6 packet-too-big through a direct-routing service (PMTU discovery keeps working)', async () => {
    const dp = manualDataplane();
    withService(dp, tcpService(VIP6), 'direct');
    await through(dp, [packet({ src: CLIENT6, dst: VIP6, proto: 'tcp', sport: 40000, dport: 80, flags: 'S' })]);
    const quote = ipPacket({ src: VIP6, dst: CLIENT6, proto: 'tcp', sport: 80, dport: 40000, flags: 'A', payload: Buffer.alloc(100) });
    const err = icmpError({ src: '2001:db8:7::1', dst: VIP6, type: 2, code: 0, mtu: 1400, quote });
    const [o] = await through(dp, [err]);
    expect(o).toMatchObject({ iface: INSIDE, dstMac: MACS.real1, dst: VIP6, proto: 58 });
    expect(o!.icmp).toMatchObject({ type: 2, rest: 1400, checksumOk: true });
  });

  it('drops an ICMP error whose checksum is wrong, and passes errors about unknown flows to the kernel', async () => {
    const dp = manualDataplane();
    withService(dp, udpService(), 'nat', 1);
    const quote = ipPacket({ src: VIP4, dst: CLIENT4, proto: 'udp', sport: 53, dport: 5999 });
    const unknown = icmpError({ src: CLIENT4, dst: VIP4, type: 3, code: 3, quote });
    const corrupt = Buffer.from(unknown);
    corrupt[14 + 20 + 2]! ^= 0xff;
    const out = await through(dp, [unknown, corrupt]);
    expect(out.map((o) => o.action)).toEqual(['pass']);
    expect(dp.counters().drop_icmp_bad_checksum).toBe(1);
  });
});

describe('ICMP errors the director sends', () => {
  it('port unreachable when a service has no available real', async () => {
    const dp = manualDataplane();
    dp.addService(tcpService());
    dp.addReal(tcpService(), { address: REALS4[0]!, method: 'nat', port: 8080, interface: INSIDE, mac: MACS.real1, weight: 0 });
    const syn = packet({ src: CLIENT4, dst: VIP4, proto: 'tcp', sport: 40000, dport: 80, flags: 'S' });
    const [o] = await through(dp, [syn]);
    expect(o).toMatchObject({ iface: OUTSIDE, src: '198.18.0.1', dst: CLIENT4, proto: 1 });
    expect(o!.icmp).toMatchObject({ type: 3, code: 3, checksumOk: true });
    expect(dp.counters().drop_no_dest).toBe(1);
  });

  it('time exceeded when the TTL runs out, and never an error about an error', async () => {
    const dp = manualDataplane();
    withService(dp, udpService(VIP6), 'nat', 1);
    const [o] = await through(dp, [packet({ src: CLIENT6, dst: VIP6, proto: 'udp', sport: 5000, dport: 53, ttl: 1 })]);
    expect(o!.icmp).toMatchObject({ type: 3, code: 0, checksumOk: true });
    expect(dp.counters().drop_ttl_exceeded).toBe(1);
    // An ICMP error with TTL 1 about a live flow is dropped silently.
    await through(dp, [packet({ src: CLIENT6, dst: VIP6, proto: 'udp', sport: 5001, dport: 53 })]);
    const quote = ipPacket({ src: VIP6, dst: CLIENT6, proto: 'udp', sport: 53, dport: 5001 });
    const out = await through(dp, [icmpError({ src: CLIENT6, dst: VIP6, type: 1, code: 4, quote, ttl: 1 })]);
    expect(out).toEqual([]);
    expect(dp.counters().icmp_sent).toBe(1);
  });

  it('rate-limits the errors it sends', async () => {
    const dp = manualDataplane();
    dp.addService(udpService());
    const frames = Array.from({ length: 200 }, (_, i) => packet({ src: CLIENT4, dst: VIP4, proto: 'udp', sport: 1000 + i, dport: 53 }));
    const out = await through(dp, frames);
    const c = dp.counters();
    expect(out.length).toBe(c.icmp_sent);
    expect(c.icmp_sent).toBeLessThanOrEqual(50);
    expect(c.icmp_sent + c.icmp_ratelimited).toBe(200);
  });
});

describe('REALS6 sanity', () => {
  it('uses documentation addresses only', () => {
    for (const a of [...REALS6, VIP6, CLIENT6]) expect(a.startsWith('2001:db8:')).toBe(true);
  });
});
