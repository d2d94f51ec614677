import { describe, expect, it } from 'vitest';
import { Dataplane, LvsError, type LvsErrorCode } from '../../src/index.js';
import { MACS, packet } from '../../src/lab/frames.js';
import { CLIENT4, INSIDE, REALS4, REAL_MACS, VIP4, manualDataplane, tcpService, through, withService } from '../helpers/setup.js';

function code(fn: () => unknown): LvsErrorCode | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(LvsError);
    return (e as LvsError).code;
  }
  return undefined;
}

async function chosen(dp: Dataplane, n: number, from = 20000): Promise<string[]> {
  const frames = Array.from({ length: n }, (_, i) => packet({ src: CLIENT4, dst: VIP4, proto: 'tcp', sport: from + i, dport: 80, flags: 'S' }));
  // NAT shows the real as the destination; direct routing only by the MAC address it goes to.
  return (await through(dp, frames)).map((o) => (o.dst === VIP4 ? REALS4[REAL_MACS.indexOf(o.dstMac)]! : o.dst));
}

describe('validation: every bad input gets a stable code and changes nothing', () => {
  it('rejects bad services, reals and interfaces', () => {
    const dp = manualDataplane();
    const svc = tcpService();
    expect(code(() => dp.addService({ protocol: 'tcp', address: '198.18.0.300', port: 80 }))).toBe('LVS_INVALID_ADDRESS');
    expect(code(() => dp.addService({ protocol: 'sctp' as 'tcp', address: VIP4, port: 80 }))).toBe('LVS_INVALID_PROTOCOL');
    expect(code(() => dp.addService({ protocol: 'tcp', address: VIP4, port: 70000 }))).toBe('LVS_INVALID_PORT');
    expect(code(() => dp.addService({ protocol: 'tcp', address: VIP4, port: 0 }))).toBe('LVS_PORT_ZERO');
    expect(code(() => dp.addService({ fwmark: 0 }))).toBe('LVS_INVALID_FWMARK');
    expect(code(() => dp.addService({ ...svc, scheduler: 'wlcx' as 'rr' }))).toBe('LVS_INVALID_SCHEDULER');
    dp.addService(svc);
    expect(code(() => dp.addService(svc))).toBe('LVS_SERVICE_EXISTS');
    expect(code(() => dp.addReal(tcpService(VIP4, 81), { address: REALS4[0]!, interface: INSIDE }))).toBe('LVS_NO_SUCH_SERVICE');
    expect(code(() => dp.addReal(svc, { address: '2001:db8:1::1', interface: INSIDE }))).toBe('LVS_FAMILY_MISMATCH');
    expect(code(() => dp.addReal(svc, { address: REALS4[0]!, port: 8080, method: 'direct', interface: INSIDE }))).toBe('LVS_PORT_MAPPING');
    expect(code(() => dp.addReal(svc, { address: REALS4[0]!, weight: -1, interface: INSIDE }))).toBe('LVS_INVALID_WEIGHT');
    expect(code(() => dp.addReal(svc, { address: REALS4[0]!, weight: 65536, interface: INSIDE }))).toBe('LVS_INVALID_WEIGHT');
    expect(code(() => dp.addReal(svc, { address: REALS4[0]!, method: 'gre' as 'nat', interface: INSIDE }))).toBe('LVS_INVALID_METHOD');
    expect(code(() => dp.addReal(svc, { address: REALS4[0]!, interface: 9 }))).toBe('LVS_INVALID_INTERFACE');
    expect(code(() => dp.addReal(svc, { address: REALS4[0]!, interface: INSIDE, mac: '02:00:00:00:01' }))).toBe('LVS_INVALID_MAC');
    expect(code(() => dp.setInterface({ id: 256, mac: MACS.inside }))).toBe('LVS_INVALID_INTERFACE');
    expect(code(() => dp.setInterface({ id: 4, mac: MACS.inside, ipv4: '2001:db8::1' }))).toBe('LVS_FAMILY_MISMATCH');
    expect(code(() => dp.setTimeouts({ tcp: -5 }))).toBe('LVS_INVALID_TIMEOUT');
    expect(code(() => dp.deleteReal(svc, { address: REALS4[0]! }))).toBe('LVS_NO_SUCH_REAL');
    expect(code(() => new Dataplane({ workers: 0 }))).toBe('LVS_INVALID_OPTION');
    expect(code(() => new Dataplane({ memorySlots: 1000 }))).toBe('LVS_INVALID_OPTION');
    // The failed calls left the one service they could not touch as it was.
    expect(dp.listServices()).toHaveLength(1);
    expect(dp.listServices()[0]!.reals).toEqual([]);
  });

  it('names the field at fault', () => {
    const dp = manualDataplane();
    try {
      dp.addService({ protocol: 'tcp', address: 'vip', port: 80 });
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({ code: 'LVS_INVALID_ADDRESS', field: 'service.address' });
      expect((e as Error).message).toBe('service.address: "vip" is not an IPv4 or IPv6 address');
    }
  });

  it('applies a transaction whole or not at all', async () => {
    const dp = manualDataplane();
    const svc = tcpService();
    expect(
      code(() =>
        dp.transaction((tx) => {
          tx.addService(svc);
          tx.addReal(svc, { address: REALS4[0]!, port: 8080, method: 'nat', interface: INSIDE, mac: MACS.real1 });
          tx.addReal(svc, { address: REALS4[0]!, port: 8080, method: 'nat', interface: INSIDE, mac: MACS.real1 });
        }),
      ),
    ).toBe('LVS_REAL_EXISTS');
    expect(dp.listServices()).toEqual([]);
    // Nothing reached the dataplane either: traffic to the VIP is still the kernel's.
    expect((await through(dp, [packet({ src: CLIENT4, dst: VIP4, proto: 'tcp', dport: 80, flags: 'S' })]))[0]!.action).toBe('pass');
    // And the slots it took are free again: the same transaction without the error works.
    dp.transaction((tx) => {
      tx.addService(svc);
      tx.addReal(svc, { address: REALS4[0]!, port: 8080, method: 'nat', interface: INSIDE, mac: MACS.real1 });
    });
    expect((await through(dp, [packet({ src: CLIENT4, dst: VIP4, proto: 'tcp', dport: 80, flags: 'S' })]))[0]!.dst).toBe(REALS4[0]);
  });
});

describe('services and reals over time', () => {
  it('lists reals in IPVS order (newest first) with live counts', async () => {
    const dp = manualDataplane();
    withService(dp, tcpService(), 'nat', 3, 8080);
    expect(dp.listServices()[0]!.reals.map((r) => r.address)).toEqual([REALS4[2], REALS4[1], REALS4[0]]);
    await chosen(dp, 6);
    expect(dp.listServices()[0]!.reals.map((r) => r.activeConnections)).toEqual([2, 2, 2]);
  });

  it('round-robin skips weight 0 and, when the cursor real is deleted, continues from its predecessor', async () => {
    const dp = manualDataplane();
    const svc = tcpService();
    withService(dp, svc, 'direct', 3); // list: R3 R2 R1
    expect(await chosen(dp, 4, 1000)).toEqual([REALS4[2], REALS4[1], REALS4[0], REALS4[2]]);
    dp.editReal(svc, { address: REALS4[1]! }, { weight: 0 });
    expect(await chosen(dp, 3, 2000)).toEqual([REALS4[0], REALS4[2], REALS4[0]]);
    // Cursor is on R1 (the last in the list). Delete it: the cursor goes to R2 (quiesced), so
    // the next pick is the first available after R2 in the list, i.e. wraps to R3.
    dp.editReal(svc, { address: REALS4[1]! }, { weight: 1 });
    dp.deleteReal(svc, { address: REALS4[0]! });
    expect(await chosen(dp, 3, 3000)).toEqual([REALS4[2], REALS4[1], REALS4[2]]);
  });

  it('keeps a deleted real draining until its connections end, revives it if re-added, then frees its slot', async () => {
    const dp = manualDataplane({ maxReals: 2 });
    const svc = tcpService();
    withService(dp, svc, 'nat', 1, 8080);
    await chosen(dp, 2);
    dp.deleteReal(svc, { address: REALS4[0]!, port: 8080 });
    // Existing connections of a deleted real are dropped (IPVS expire_nodest_conn = 0).
    const [late] = await through(dp, [packet({ src: CLIENT4, dst: VIP4, proto: 'tcp', sport: 20000, dport: 80, flags: 'A' })]);
    expect(late).toBeUndefined();
    expect(dp.counters().drop_dest_gone).toBe(1);
    // Re-adding it while its connections live revives them, with their counters.
    dp.addReal(svc, { address: REALS4[0]!, port: 8080, method: 'nat', interface: INSIDE, mac: MACS.real1 });
    expect(dp.listServices()[0]!.reals[0]!).toMatchObject({ activeConnections: 2, stats: { connections: 2 } });
    const [again] = await through(dp, [packet({ src: CLIENT4, dst: VIP4, proto: 'tcp', sport: 20000, dport: 80, flags: 'A' })]);
    expect(again!.dst).toBe(REALS4[0]);
    // Delete it for good: with maxReals 2, one more real fits, but a third needs the slot back.
    dp.deleteReal(svc, { address: REALS4[0]!, port: 8080 });
    dp.addReal(svc, { address: REALS4[1]!, port: 8080, method: 'nat', interface: INSIDE, mac: MACS.real2 });
    expect(code(() => dp.addReal(svc, { address: REALS4[2]!, port: 8080, method: 'nat', interface: INSIDE, mac: MACS.real3 }))).toBe('LVS_CAPACITY');
    dp.setClock(2_000_000); // every connection of the deleted real has timed out
    dp.poll(); // the sweep frees the entries; the control step sees the real idle
    expect(code(() => dp.addReal(svc, { address: REALS4[2]!, port: 8080, method: 'nat', interface: INSIDE, mac: MACS.real3 }))).toBe('LVS_CAPACITY');
    dp.setClock(2_000_000 + 120_000); // IPVS's trash period: idle for 120 s, the slot is released
    dp.poll();
    dp.addReal(svc, { address: REALS4[2]!, port: 8080, method: 'nat', interface: INSIDE, mac: MACS.real3 });
    expect(dp.listServices()[0]!.reals.map((r) => [r.address, r.activeConnections])).toEqual([[REALS4[2], 0], [REALS4[1], 0]]);
  });

  it('zeroes statistics like ipvsadm -Z, per service or all', async () => {
    const dp = manualDataplane();
    withService(dp, tcpService(), 'nat', 1, 8080);
    await chosen(dp, 3);
    expect(dp.listServices()[0]!.stats.connections).toBe(3);
    dp.zero(tcpService());
    expect(dp.listServices()[0]!.stats).toEqual({ connections: 0, packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0 });
    // Live counts are not statistics: they stay.
    expect(dp.listServices()[0]!.reals[0]!.activeConnections).toBe(3);
    await chosen(dp, 1, 30000);
    expect(dp.listServices()[0]!.stats.connections).toBe(1);
  });

  it('clear() removes every service (ipvsadm -C)', async () => {
    const dp = manualDataplane();
    withService(dp, tcpService(), 'nat', 1, 8080);
    withService(dp, tcpService(VIP4, 443), 'direct', 1);
    dp.clear();
    expect(dp.listServices()).toEqual([]);
    expect((await through(dp, [packet({ src: CLIENT4, dst: VIP4, proto: 'tcp', dport: 443, flags: 'S' })]))[0]!.action).toBe('pass');
  });

  it('reports a real with an unresolved MAC address and forwards once it is set', async () => {
    const dp = manualDataplane();
    const svc = tcpService();
    dp.addService(svc);
    dp.addReal(svc, { address: REALS4[0]!, port: 8080, method: 'nat', interface: INSIDE });
    const misses: unknown[] = [];
    dp.on('neighbour-miss', (m) => misses.push(m));
    expect(await through(dp, [packet({ src: CLIENT4, dst: VIP4, proto: 'tcp', dport: 80, flags: 'S' })])).toEqual([]);
    expect(misses).toEqual([{ iface: INSIDE, address: REALS4[0] }]);
    dp.editReal(svc, { address: REALS4[0]!, port: 8080 }, { mac: MACS.real1 });
    const [o] = await through(dp, [packet({ src: CLIENT4, dst: VIP4, proto: 'tcp', sport: 40001, dport: 80, flags: 'S' })]);
    expect(o).toMatchObject({ dstMac: MACS.real1, dst: REALS4[0] });
  });

  it('refuses calls once closed', async () => {
    const dp = manualDataplane();
    await dp.close();
    expect(code(() => dp.addService(tcpService()))).toBe('LVS_CLOSED');
    expect(code(() => dp.memory.send([]))).toBe('LVS_CLOSED');
  });
});

describe('atomic publication', () => {
  it('never publishes a transaction the dataplane has only seen part of', async () => {
    const dp = manualDataplane({ maxReals: 8192 });
    const svc = tcpService();
    // Service + 5000 reals: ~85,000 words, more than the 65,536-word command ring. The first
    // part goes into the ring at once, the rest waits in the backlog.
    dp.transaction((tx) => {
      tx.addService(svc);
      for (let i = 0; i < 5000; i++) tx.addReal(svc, { address: `198.19.${i >> 8}.${i & 255}`, port: 8080, method: 'nat', interface: INSIDE, mac: MACS.real1 });
    });
    // Let the native side consume only what is in the ring (bypassing poll(), which would
    // flush the backlog), then see whether a SYN to the VIP is scheduled: it must not be.
    const nd = (dp as unknown as { nd: { poll(): void; inject(w: number, i: Uint16Array, f: Uint8Array[]): number; collect(w: number, max: number): Array<{ verdict: number }> } }).nd;
    nd.poll();
    nd.inject(0, Uint16Array.of(0), [packet({ src: CLIENT4, dst: VIP4, proto: 'tcp', sport: 1, dport: 80, flags: 'S' })]);
    nd.poll();
    expect(nd.collect(0, 10).map((o) => o.verdict)).toEqual([2]); // pass: the service is not there yet
    dp.poll();
    const [o] = await through(dp, [packet({ src: CLIENT4, dst: VIP4, proto: 'tcp', sport: 2, dport: 80, flags: 'S' })]);
    expect(o!.action).toBe('tx');
  });
});
