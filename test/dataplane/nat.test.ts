import { describe, expect, it } from 'vitest';
import { MACS, checksum, ipPacket, packet, pseudo } from '../../src/lab/frames.js';
import { CLIENT4, CLIENT6, INSIDE, OUTSIDE, REALS4, REALS6, REAL_MACS, VIP4, VIP6, manualDataplane, tcpService, through, udpService, withService } from '../helpers/setup.js';

describe('NAT (masquerading)', () => {
  it('rewrites client -> VIP to the real and the reply back to VIP:port, checksums recomputed independently', async () => {
    const dp = manualDataplane();
    withService(dp, tcpService(), 'nat', 1, 8080);
    const syn = packet({ src: CLIENT4, dst: VIP4, proto: 'tcp', sport: 40000, dport: 80, flags: 'S', payload: 'hello' });
    const [fwd] = await through(dp, [syn]);
    expect(fwd).toMatchObject({ action: 'tx', iface: INSIDE, dstMac: MACS.real1, srcMac: MACS.inside, src: CLIENT4, dst: REALS4[0], sport: 40000, dport: 8080, ttl: 63, ipHeaderOk: true, l4ChecksumOk: true });
    expect(fwd!.payload.toString()).toBe('hello');

    const reply = packet({ src: REALS4[0]!, dst: CLIENT4, proto: 'tcp', sport: 8080, dport: 40000, flags: 'SA', srcMac: MACS.real1, dstMac: MACS.inside, payload: 'world!' });
    const [back] = await through(dp, [reply], INSIDE);
    // The reply goes back out where the client's packet came from, to the MAC it came from.
    expect(back).toMatchObject({ action: 'tx', iface: OUTSIDE, dstMac: MACS.client, srcMac: MACS.outside, src: VIP4, dst: CLIENT4, sport: 80, dport: 40000, ttl: 63, ipHeaderOk: true, l4ChecksumOk: true });
    expect(back!.payload.toString()).toBe('world!');

    const [svc] = dp.listServices();
    expect(svc!.stats).toEqual({ connections: 1, packetsIn: 1, packetsOut: 1, bytesIn: syn.length - 14, bytesOut: reply.length - 14 });
  });

  it('keeps incremental checksums exact across random addresses, ports and payloads (RFC 1624)', async () => {
    const dp = manualDataplane();
    withService(dp, tcpService(), 'nat', 3, 8080);
    withService(dp, udpService(), 'nat', 3, 5353);
    let seed = 12345;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
    const frames: Buffer[] = [];
    for (let i = 0; i < 400; i++) {
      const src = `198.18.${rand(256)}.${1 + rand(254)}`;
      const payload = Buffer.from(Array.from({ length: rand(300) }, () => rand(256)));
      const udp = i % 2 === 0;
      frames.push(packet({ src, dst: VIP4, proto: udp ? 'udp' : 'tcp', sport: 1024 + rand(60000), dport: udp ? 53 : 80, flags: 'S', payload, id: rand(65536), ttl: 2 + rand(250) }));
    }
    const out = await through(dp, frames);
    expect(out).toHaveLength(frames.length);
    for (const o of out) {
      expect(o.ipHeaderOk).toBe(true);
      expect(o.l4ChecksumOk).toBe(true);
      expect(REALS4).toContain(o.dst);
    }
  });

  it('leaves an IPv4 UDP datagram without checksum without one, and never emits a zero UDP checksum', async () => {
    const dp = manualDataplane();
    withService(dp, udpService(), 'nat', 1, 5353);
    const [o] = await through(dp, [packet({ src: CLIENT4, dst: VIP4, proto: 'udp', sport: 5000, dport: 53, payload: 'q', udpChecksum: false })]);
    expect(o).toMatchObject({ dst: REALS4[0], dport: 5353, udpChecksum: 0, l4ChecksumOk: null });

    // Find (offline) a client port for which the rewritten datagram sums to 0xffff, i.e. its
    // computed checksum is 0: on the wire that must be 0xffff (RFC 768), never 0.
    const rewritten = (sport: number) => ipPacket({ src: CLIENT4, dst: REALS4[0]!, proto: 'udp', sport, dport: 5353, payload: 'x', udpChecksum: false });
    let sport = 1024;
    while (checksum(rewritten(sport).subarray(20), pseudo(CLIENT4, REALS4[0]!, 17, 9)) !== 0) sport++;
    const [r] = await through(dp, [packet({ src: CLIENT4, dst: VIP4, proto: 'udp', sport, dport: 53, payload: 'x' })]);
    expect(r).toMatchObject({ sport, dst: REALS4[0], udpChecksum: 0xffff, l4ChecksumOk: true });
  });

  it('handles IPv6 TCP and UDP, with extension headers', async () => {
    const dp = manualDataplane();
    withService(dp, tcpService(VIP6), 'nat', 2, 8080);
    withService(dp, udpService(VIP6), 'nat', 1, 5353);
    const [t, u] = await through(dp, [
      packet({ src: CLIENT6, dst: VIP6, proto: 'tcp', sport: 41000, dport: 80, flags: 'S', ext: [{ type: 0 }, { type: 60, length: 1 }], payload: 'v6' }),
      packet({ src: CLIENT6, dst: VIP6, proto: 'udp', sport: 41001, dport: 53, payload: 'dns?' }),
    ]);
    // IPVS list order: the real added last is the head, where round-robin starts.
    expect(t).toMatchObject({ family: 'ipv6', dst: REALS6[1], dport: 8080, ttl: 63, l4ChecksumOk: true });
    expect(u).toMatchObject({ family: 'ipv6', dst: REALS6[0], dport: 5353, l4ChecksumOk: true });
    const [back] = await through(dp, [packet({ src: REALS6[0]!, dst: CLIENT6, proto: 'udp', sport: 5353, dport: 41001, payload: 'answer', srcMac: REAL_MACS[0]!, dstMac: MACS.inside })], INSIDE);
    expect(back).toMatchObject({ family: 'ipv6', src: VIP6, dst: CLIENT6, sport: 53, dport: 41001, l4ChecksumOk: true, iface: OUTSIDE });
  });

  it('hands unrelated traffic to the kernel untouched', async () => {
    const dp = manualDataplane();
    withService(dp, tcpService(), 'nat', 1, 8080);
    const other = packet({ src: CLIENT4, dst: '198.18.0.99', proto: 'tcp', sport: 1, dport: 22, flags: 'S' });
    const [o] = await through(dp, [other]);
    expect(o!.action).toBe('pass');
    expect(o!.raw.equals(other)).toBe(true);
    expect(dp.counters().pass_packets).toBe(1);
  });
});
