/**
 * Connection sync in the dataplane: the active exports sync records, the backup imports them
 * and then forwards the established flows exactly as the active did.
 */
import { describe, expect, it } from 'vitest';
import { Dataplane, SYNC_RECORD_BYTES, decodeSyncRecord, type SyncRecord } from '../../src/dataplane/dataplane.js';
import { MACS, decode, packet } from '../../src/lab/frames.js';
import type { ConnectionEntry, ServiceKey } from '../../src/index.js';
import { CLIENT4, CLIENT6, INSIDE, OUTSIDE, REALS4, REALS6, REAL_MACS, VIP4, VIP6, manualDataplane, through } from '../helpers/setup.js';

const T0 = 1_000_000;

const NAT: ServiceKey = { protocol: 'tcp', address: VIP4, port: 80 };
const NAT6: ServiceKey = { protocol: 'tcp', address: VIP6, port: 80 };
const DR: ServiceKey = { protocol: 'tcp', address: VIP4, port: 443 };
const TUN: ServiceKey = { protocol: 'tcp', address: VIP4, port: 8443 };
const UDP: ServiceKey = { protocol: 'udp', address: VIP4, port: 53 };
const PERSIST: ServiceKey = { protocol: 'tcp', address: VIP4, port: 8000 };
const PCLIENT = '198.18.7.1';

type Method = 'nat' | 'direct' | 'tunnel';
interface Svc {
  key: ServiceKey;
  method: Method;
  port?: number;
  v6?: boolean;
  persistence?: number;
}
const SERVICES: Svc[] = [
  { key: NAT, method: 'nat', port: 8080 },
  { key: NAT6, method: 'nat', port: 8080, v6: true },
  { key: DR, method: 'direct' },
  { key: TUN, method: 'tunnel' },
  { key: UDP, method: 'nat', port: 5353 },
  { key: PERSIST, method: 'direct', persistence: 300 },
];

/**
 * The same configuration, with services and their reals added in opposite orders on the
 * two directors, so every service and real slot (and the rr starting point) differs.
 */
function configure(dp: Dataplane, reverse: boolean): void {
  const services = reverse ? [...SERVICES].reverse() : SERVICES;
  for (const s of services) {
    dp.addService({ ...s.key, scheduler: 'rr', ...(s.persistence ? { persistence: s.persistence } : {}) });
    const idx = reverse ? [2, 1, 0] : [0, 1, 2];
    for (const i of idx) {
      dp.addReal(s.key, { address: (s.v6 ? REALS6 : REALS4)[i]!, ...(s.port ? { port: s.port } : {}), method: s.method, interface: INSIDE, mac: REAL_MACS[i]! });
    }
  }
}

function director(reverse: boolean, options: Parameters<typeof manualDataplane>[0] = {}): Dataplane {
  const dp = manualDataplane(options);
  configure(dp, reverse);
  return dp;
}

/** Every 'sync' emitted by `dp`, concatenated on demand. */
function recorder(dp: Dataplane): { emits: Buffer[]; all(): Buffer; records(): SyncRecord[] } {
  const emits: Buffer[] = [];
  dp.on('sync', (b) => emits.push(b));
  return {
    emits,
    all: () => Buffer.concat(emits),
    records: () => {
      const b = Buffer.concat(emits);
      const out: SyncRecord[] = [];
      for (let off = 0; off < b.length; off += SYNC_RECORD_BYTES) {
        const r = decodeSyncRecord(b, off);
        if (!r.ok) throw new Error(`exported a record the decoder refuses: ${r.problem}`);
        out.push(r.record);
      }
      return out;
    },
  };
}

const tcp = (src: string, dst: string, sport: number, dport: number, flags: string, payload = '') => packet({ src, dst, proto: 'tcp', sport, dport, flags, payload });

/** Comparable view of a connection listing (expiry and packet counts aside). */
function shape(list: ConnectionEntry[]): string[] {
  return list
    .map((c) => `${c.protocol} ${c.template ? 'T' : 'C'} ${c.state} ${c.client.address}:${c.client.port} ${c.virtual.address}:${c.virtual.port} -> ${c.destination.address}:${c.destination.port} ${c.method}`)
    .sort();
}

describe('connection sync: active -> backup', () => {
  it('carries NAT, DR, tunnel, UDP and persistent flows to a backup whose slots differ; the backup forwards them to the same reals', async () => {
    const active = director(false);
    const backup = director(true);
    const rec = recorder(active);
    active.setSyncMaster(true);

    // NAT: handshake through the director both ways, then data.
    const [natSyn] = await through(active, [tcp(CLIENT4, VIP4, 40000, 80, 'S')]);
    await through(active, [packet({ src: natSyn!.dst, dst: CLIENT4, proto: 'tcp', sport: 8080, dport: 40000, flags: 'SA', srcMac: natSyn!.dstMac, dstMac: MACS.inside })], INSIDE);
    await through(active, [tcp(CLIENT4, VIP4, 40000, 80, 'A'), tcp(CLIENT4, VIP4, 40000, 80, 'PA', 'data')]);
    // NAT over IPv6.
    const [nat6Syn] = await through(active, [tcp(CLIENT6, VIP6, 40006, 80, 'S')]);
    await through(active, [tcp(CLIENT6, VIP6, 40006, 80, 'A')]);
    // DR and tunnel: only the client's half passes the director.
    const [drSyn] = await through(active, [tcp(CLIENT4, VIP4, 40001, 443, 'S')]);
    await through(active, [tcp(CLIENT4, VIP4, 40001, 443, 'A')]);
    const [tunSyn] = await through(active, [tcp(CLIENT4, VIP4, 40002, 8443, 'S')]);
    await through(active, [tcp(CLIENT4, VIP4, 40002, 8443, 'A')]);
    // UDP.
    const [udp1] = await through(active, [packet({ src: CLIENT4, dst: VIP4, proto: 'udp', sport: 5000, dport: 53, payload: 'q' })]);
    // Persistent: template + connection.
    const [pSyn] = await through(active, [tcp(PCLIENT, VIP4, 41000, 8000, 'S')]);
    await through(active, [tcp(PCLIENT, VIP4, 41000, 8000, 'A')]);

    const exported = rec.records();
    expect(exported.filter((r) => r.template)).toHaveLength(1);
    expect(exported.length).toBe(active.counters().sync_exported);
    expect(active.counters().sync_dropped).toBe(0);

    backup.importSync(rec.all());
    backup.poll();
    const bc = backup.counters();
    expect(bc.sync_imported + bc.sync_updated).toBe(exported.length);
    expect(bc.sync_imported).toBe(7); // 6 connections and 1 template
    expect([bc.sync_rejected_malformed, bc.sync_rejected_no_service, bc.sync_rejected_no_real, bc.sync_rejected_full]).toEqual([0, 0, 0, 0]);

    // Same entries, states and reals on both (the backup's listing shows what the active's does).
    expect(shape(await backup.listConnections())).toEqual(shape(await active.listConnections()));
    // lvsadm -L: the same ActiveConn/InActConn/persistent counts per real.
    const counts = (dp: Dataplane) =>
      dp.listServices().flatMap((s) => s.reals.map((r) => `${s.address}:${s.port} ${r.address}:${r.port} ${r.activeConnections}/${r.inactiveConnections}/${r.persistentConnections}`)).sort();
    expect(counts(backup)).toEqual(counts(active));

    // Mid-stream packets (no SYN) on the backup go to the same real, rewritten the same way.
    const [natAck] = await through(backup, [tcp(CLIENT4, VIP4, 40000, 80, 'A', 'more')]);
    expect(natAck).toMatchObject({ action: 'tx', iface: INSIDE, dstMac: natSyn!.dstMac, srcMac: MACS.inside, src: CLIENT4, dst: natSyn!.dst, dport: 8080, l4ChecksumOk: true });
    const [nat6Ack] = await through(backup, [tcp(CLIENT6, VIP6, 40006, 80, 'A')]);
    expect(nat6Ack).toMatchObject({ action: 'tx', family: 'ipv6', dstMac: nat6Syn!.dstMac, dst: nat6Syn!.dst, dport: 8080, l4ChecksumOk: true });
    const [drAck] = await through(backup, [tcp(CLIENT4, VIP4, 40001, 443, 'A')]);
    expect(drAck).toMatchObject({ action: 'tx', iface: INSIDE, dstMac: drSyn!.dstMac, dst: VIP4, dport: 443 });
    const [tunAck] = await through(backup, [tcp(CLIENT4, VIP4, 40002, 8443, 'A')]);
    expect(tunAck).toMatchObject({ action: 'tx', proto: 4, src: '198.19.0.1', dst: tunSyn!.dst, dstMac: tunSyn!.dstMac });
    expect(tunAck!.inner).toMatchObject({ src: CLIENT4, dst: VIP4, dport: 8443, l4ChecksumOk: true });
    const [udp2] = await through(backup, [packet({ src: CLIENT4, dst: VIP4, proto: 'udp', sport: 5000, dport: 53, payload: 'q2' })]);
    expect(udp2).toMatchObject({ action: 'tx', dstMac: udp1!.dstMac, dst: udp1!.dst, dport: 5353 });
    const [pAck] = await through(backup, [tcp(PCLIENT, VIP4, 41000, 8000, 'A')]);
    expect(pAck).toMatchObject({ action: 'tx', dstMac: pSyn!.dstMac, dst: VIP4 });
    // None of these was scheduled afresh: the backup made no connection of its own.
    expect(backup.counters().conn_created).toBe(0);

    // A NAT reply from the real is translated back to the VIP, towards the client's MAC.
    const [reply] = await through(backup, [packet({ src: natSyn!.dst, dst: CLIENT4, proto: 'tcp', sport: 8080, dport: 40000, flags: 'A', payload: 'answer', srcMac: natSyn!.dstMac, dstMac: MACS.inside })], INSIDE);
    expect(reply).toMatchObject({ action: 'tx', iface: OUTSIDE, dstMac: MACS.client, srcMac: MACS.outside, src: VIP4, sport: 80, dst: CLIENT4, dport: 40000, l4ChecksumOk: true });

    // Past the template's 300 s (its connection lives on, ESTABLISHED 900 s): the imported
    // template is held by the connection it controls, and a new connection from the client
    // goes to the template's real.
    backup.setClock(T0 + 400_000);
    backup.poll();
    expect((await backup.listConnections()).filter((c) => c.template)).toHaveLength(1);
    const [pSyn2] = await through(backup, [tcp(PCLIENT, VIP4, 41001, 8000, 'S')]);
    expect(pSyn2).toMatchObject({ action: 'tx', dstMac: pSyn!.dstMac, dst: VIP4 });
  });

  it('imports on every worker (a flow may arrive on any queue) and counts each record once', async () => {
    const active = director(false);
    const backup = director(true, { workers: 2 });
    const rec = recorder(active);
    active.setSyncMaster(true);
    const [syn] = await through(active, [tcp(CLIENT4, VIP4, 40010, 80, 'S')]);
    await through(active, [tcp(CLIENT4, VIP4, 40010, 80, 'A')]);
    const n = rec.records().length;
    backup.importSync(rec.all());
    backup.poll();
    expect(backup.counters().sync_imported + backup.counters().sync_updated).toBe(n);
    for (const worker of [0, 1]) {
      const out = await backup.memory.process([{ iface: OUTSIDE, data: tcp(CLIENT4, VIP4, 40010, 80, 'A') }], worker);
      expect(out).toHaveLength(1);
      expect(out[0]!.action).toBe('tx');
      expect(out[0]!.data.subarray(0, 6).equals(Buffer.from(syn!.dstMac.split(':').map((x) => parseInt(x, 16))))).toBe(true);
    }
    expect((await backup.listConnections()).filter((c) => c.client.port === 40010)).toHaveLength(2);
  });

  it('works between threaded dataplanes: records arrive through the wake-up, workers apply them on their own threads', async () => {
    const threaded = (reverse: boolean, workers: number) => {
      const dp = new Dataplane({ workers });
      dp.setInterface({ id: OUTSIDE, mac: MACS.outside, ipv4: '198.18.0.1', ipv6: '2001:db8::1' });
      dp.setInterface({ id: INSIDE, mac: MACS.inside, ipv4: '198.19.0.1', ipv6: '2001:db8:1::1' });
      configure(dp, reverse);
      return dp;
    };
    const active = threaded(false, 1);
    const backup = threaded(true, 2);
    try {
      const got: Buffer[] = [];
      let wanted = 0;
      let wake: () => void = () => {};
      active.on('sync', (b) => {
        got.push(b);
        if (Buffer.concat(got).length >= wanted * SYNC_RECORD_BYTES) wake();
      });
      active.setSyncMaster(true);
      await Promise.all([active.settled(), backup.settled()]);
      const n = 200;
      wanted = n;
      const arrived = new Promise<void>((resolve) => (wake = resolve));
      const frames = (flags: string) => Array.from({ length: n }, (_, i) => ({ iface: OUTSIDE, data: tcp(CLIENT4, VIP4, 30000 + i, 443, flags) }));
      const syns = await active.memory.process(frames('S'));
      await active.memory.process(frames('A'));
      await arrived;
      const records = Buffer.concat(got);
      expect(records.length).toBe(n * SYNC_RECORD_BYTES);
      expect(got.length).toBeLessThan(n); // batched, not one emit per record

      backup.importSync(records);
      for (let i = 0; i < 10_000 && backup.counters().sync_imported < n; i++) await new Promise((r) => setTimeout(r, 1));
      expect(backup.counters()).toMatchObject({ sync_imported: n, sync_rejected_malformed: 0, sync_rejected_no_service: 0, sync_rejected_no_real: 0 });
      for (const worker of [0, 1]) {
        const out = await backup.memory.process(frames('A'), worker);
        expect(out.map((o) => decode(o.data).dstMac)).toEqual(syns.map((o) => decode(o.data).dstMac));
      }
      expect(backup.counters().conn_created).toBe(0);
    } finally {
      await active.close();
      await backup.close();
    }
  });

  it('updates an entry already present instead of duplicating it, following its state', async () => {
    const active = director(false);
    const backup = director(true);
    const rec = recorder(active);
    active.setSyncMaster(true);
    await through(active, [tcp(CLIENT4, VIP4, 40020, 443, 'S'), tcp(CLIENT4, VIP4, 40020, 443, 'A')]);
    backup.importSync(rec.all());
    backup.poll();
    rec.emits.length = 0;
    await through(active, [tcp(CLIENT4, VIP4, 40020, 443, 'FA')]);
    const fin = rec.records();
    expect(fin.map((r) => r.state)).toEqual([(await active.listConnections())[0]!.state]);
    expect(fin[0]!.state).not.toBe('ESTABLISHED');
    backup.importSync(rec.all());
    backup.poll();
    expect(backup.counters()).toMatchObject({ sync_imported: 1, sync_updated: 1 });
    expect(shape(await backup.listConnections())).toEqual(shape(await active.listConnections()));
    // The real's counts moved from active to inactive with the state, as on the active.
    const real = (dp: Dataplane) => dp.getService(DR).reals.find((r) => r.activeConnections + r.inactiveConnections > 0)!;
    expect(real(backup)).toMatchObject({ address: real(active).address, activeConnections: 0, inactiveConnections: 1 });
  });
});

describe('full dump in sync format', () => {
  it('dumps 10,000 entries (templates first) that a fresh backup imports completely', async () => {
    const active = director(false, { connectionCapacity: 1 << 15 });
    const frames: Buffer[] = [];
    for (let i = 0; i < 9_250; i++) frames.push(tcp(`198.18.${10 + (i >> 8)}.${i & 255}`, VIP4, 1024 + i, 80, 'S'));
    for (let i = 0; i < 500; i++) frames.push(tcp(`198.18.100.${i % 250}`, VIP4, 2000 + i, 8000, 'S'));
    await through(active, frames);
    const entries = await active.listConnections();
    const templates = entries.filter((e) => e.template).length;
    expect(templates).toBe(250);
    expect(entries.length).toBe(10_000);

    const dump = await active.dumpSync();
    expect(dump.length).toBe(entries.length * SYNC_RECORD_BYTES);
    const flags = Array.from({ length: entries.length }, (_, i) => decodeSyncRecord(dump, i * SYNC_RECORD_BYTES));
    expect(flags.every((r) => r.ok)).toBe(true);
    const firstConn = flags.findIndex((r) => r.ok && !r.record.template);
    expect(firstConn).toBe(templates);
    expect(flags.slice(firstConn).every((r) => r.ok && !r.record.template)).toBe(true);

    const backup = director(true, { connectionCapacity: 1 << 15 });
    backup.importSync(dump);
    backup.poll();
    expect(backup.counters()).toMatchObject({ sync_imported: entries.length, sync_updated: 0, sync_rejected_malformed: 0, sync_rejected_no_service: 0, sync_rejected_no_real: 0 });
    expect(shape(await backup.listConnections())).toEqual(shape(entries));
    const counts = (dp: Dataplane) =>
      dp.listServices().flatMap((s) => s.reals.map((r) => `${s.port} ${r.address} ${r.activeConnections}/${r.inactiveConnections}/${r.persistentConnections}`)).sort();
    expect(counts(backup)).toEqual(counts(active));
  });
});

describe('export rules', () => {
  it('exports a UDP flow when created and at packets 3, 53, 103, and once half its timeout has passed since the last export', async () => {
    const active = director(false);
    const rec = recorder(active);
    active.setSyncMaster(true);
    const datagram = () => packet({ src: CLIENT4, dst: VIP4, proto: 'udp', sport: 6000, dport: 53, payload: 'x' });
    const exportedAt: number[] = [];
    for (let pkt = 1; pkt <= 120; pkt++) {
      const before = rec.emits.length;
      await through(active, [datagram()]);
      if (rec.emits.length > before) exportedAt.push(pkt);
    }
    expect(exportedAt).toEqual([1, 3, 53, 103]);
    expect(rec.records().map((r) => r.packetsIn)).toEqual([1, 3, 53, 103]);

    // UDP timeout 300 s: no export up to 150 s after the last one, one export after that.
    active.setClock(T0 + 150_000);
    await through(active, [datagram()]);
    expect(rec.emits).toHaveLength(4);
    active.setClock(T0 + 150_001);
    await through(active, [datagram()]);
    expect(rec.emits).toHaveLength(5);
    const last = rec.records().at(-1)!;
    expect(last).toMatchObject({ state: 'UDP', expiresIn: 300_000, timeout: 300_000, packetsIn: 122 });
    await through(active, [datagram()]);
    expect(rec.emits).toHaveLength(5);
  });

  it('exports TCP on every state change past the handshake, at packet 3, and for a quiet connection every half timeout', async () => {
    const active = director(false);
    const rec = recorder(active);
    active.setSyncMaster(true);
    const seg = (flags: string) => tcp(CLIENT4, VIP4, 40030, 443, flags);
    const states = () => rec.records().map((r) => r.state);
    await through(active, [seg('S')]);
    expect(states()).toEqual([]); // the handshake is not synced
    await through(active, [seg('A')]);
    expect(states()).toEqual(['ESTABLISHED']);
    await through(active, [seg('PA')]); // packet 3
    expect(states()).toEqual(['ESTABLISHED', 'ESTABLISHED']);
    await through(active, [seg('PA'), seg('PA')]);
    expect(states()).toHaveLength(2);
    // ESTABLISHED 900 s: a packet 450 s later is not yet due, one past 450 s is.
    active.setClock(T0 + 450_000);
    await through(active, [seg('PA')]);
    expect(states()).toHaveLength(2);
    active.setClock(T0 + 450_001);
    await through(active, [seg('PA')]);
    expect(states()).toHaveLength(3);
    await through(active, [seg('FA')]);
    const finState = (await active.listConnections())[0]!.state;
    expect(finState).not.toBe('ESTABLISHED');
    expect(states().at(-1)).toBe(finState);
    await through(active, [seg('R')]);
    expect(states().at(-1)).toBe('CLOSE');
    expect(states()).toHaveLength(5);
    // Several records of one batch leave in one emit.
    rec.emits.length = 0;
    await through(active, Array.from({ length: 20 }, (_, i) => [tcp(CLIENT4, VIP4, 42000 + i, 443, 'S'), tcp(CLIENT4, VIP4, 42000 + i, 443, 'A')]).flat());
    expect(rec.emits).toHaveLength(1);
    expect(rec.records()).toHaveLength(20);
  });

  it('exports a new template at once, and a re-armed one once half its timeout has passed', async () => {
    const active = director(false);
    const rec = recorder(active);
    active.setSyncMaster(true);
    const templates = () => rec.records().filter((r) => r.template);
    await through(active, [tcp(PCLIENT, VIP4, 41000, 8000, 'S')]);
    expect(templates()).toHaveLength(1);
    expect(templates()[0]).toMatchObject({ client: { address: PCLIENT, port: 0 }, virtual: { address: VIP4, port: 8000 }, timeout: 300_000 });
    await through(active, [tcp(PCLIENT, VIP4, 41001, 8000, 'S')]);
    expect(templates()).toHaveLength(1);
    active.setClock(T0 + 150_001);
    await through(active, [tcp(PCLIENT, VIP4, 41002, 8000, 'S')]);
    expect(templates()).toHaveLength(2);
  });

  it('records lost to a full event ring are exported again with their entry\'s next packet', async () => {
    const active = director(false);
    const rec = recorder(active);
    active.setSyncMaster(true);
    // 3,000 new UDP flows in one go: more records than the event ring holds between drains.
    const N = 3000;
    const round = (payload: string) => Array.from({ length: N }, (_, i) => ({ iface: OUTSIDE, data: packet({ src: CLIENT4, dst: VIP4, proto: 'udp', sport: 10000 + i, dport: 53, payload }) }));
    // replay(): every frame through the worker once, without draining the rings in between.
    active.memory.replay(round('a'), N);
    active.poll();
    const dropped = active.counters().sync_dropped;
    expect(dropped).toBeGreaterThan(0);
    expect(dropped).toBeLessThan(N / 2);
    expect(rec.records()).toHaveLength(N - dropped);
    // The second packet of a flow is no refresh point (3, 53, ...), except for the flows whose
    // record was lost: exactly those go out now, and every flow has been exported once.
    active.memory.replay(round('b'), N);
    active.poll();
    const ports = rec.records().map((r) => r.client.port);
    expect(ports).toHaveLength(N);
    expect(new Set(ports).size).toBe(N);
    expect(active.counters().sync_dropped).toBe(dropped);
  });

  it('exports nothing while sync master is off, also after it was on', async () => {
    const active = director(false);
    const rec = recorder(active);
    const flows = async (port: number) => {
      await through(active, [tcp(CLIENT4, VIP4, port, 80, 'S'), tcp(CLIENT4, VIP4, port, 80, 'A'), tcp(CLIENT4, VIP4, port, 80, 'PA')]);
      await through(active, [packet({ src: CLIENT4, dst: VIP4, proto: 'udp', sport: port, dport: 53, payload: 'x' })]);
      await through(active, [tcp(PCLIENT, VIP4, port, 8000, 'S')]);
    };
    await flows(43000);
    expect(rec.emits).toHaveLength(0);
    active.setSyncMaster(true);
    active.setSyncMaster(false);
    await flows(43001);
    expect(rec.emits).toHaveLength(0);
    expect(active.counters()).toMatchObject({ sync_exported: 0, sync_dropped: 0 });
    expect(active.counters().conn_created).toBe(6);
  });
});

describe('import refuses what it cannot place, and survives garbage', () => {
  async function someRecords(): Promise<Buffer> {
    const active = director(false);
    active.setSyncMaster(true);
    const rec = recorder(active);
    await through(active, [tcp(CLIENT4, VIP4, 44000, 443, 'S'), tcp(CLIENT4, VIP4, 44000, 443, 'A')]);
    await through(active, [packet({ src: CLIENT4, dst: VIP4, proto: 'udp', sport: 44001, dport: 53, payload: 'x' })]);
    await through(active, [tcp(PCLIENT, VIP4, 44002, 8000, 'S'), tcp(PCLIENT, VIP4, 44002, 8000, 'A')]);
    await active.close();
    return rec.all();
  }

  it('counts and skips malformed records and records for unknown services or reals; the good ones in the same buffer are imported', async () => {
    const good = await someRecords();
    const n = good.length / SYNC_RECORD_BYTES;
    expect(n).toBe(4); // DR conn, UDP flow, template, persistent conn
    const rec = (i: number) => Buffer.from(good.subarray(i * SYNC_RECORD_BYTES, (i + 1) * SYNC_RECORD_BYTES));
    const badVersion = rec(0);
    badVersion[0] = 2;
    const badFamily = rec(0);
    badFamily[5] = 5;
    const badState = rec(0);
    badState[7] = 13;
    const badFwd = rec(0);
    badFwd[8] = 1;
    const noService = rec(0);
    noService.writeUInt16BE(444, 20); // service port
    const noReal = rec(0);
    noReal[84 + 3] = 99; // the real's address: 198.19.0.99
    expect([badVersion, badFamily, badState, badFwd].map((b) => decodeSyncRecord(b))).toEqual([
      { ok: false, problem: 'bad_version' },
      { ok: false, problem: 'bad_family' },
      { ok: false, problem: 'bad_state' },
      { ok: false, problem: 'bad_fwd' },
    ]);
    const backup = director(true);
    backup.importSync(Buffer.concat([badVersion, rec(0), badFamily, noService, rec(1), badState, noReal, rec(2), badFwd, rec(3)]));
    backup.poll();
    expect(backup.counters()).toMatchObject({ sync_imported: 4, sync_updated: 0, sync_rejected_malformed: 4, sync_rejected_no_service: 1, sync_rejected_no_real: 1 });
    expect(await backup.listConnections()).toHaveLength(4);

    // A buffer that is not whole records is refused as a whole (nothing is imported).
    const err = (() => {
      try {
        backup.importSync(good.subarray(0, SYNC_RECORD_BYTES + 7));
      } catch (e) {
        return e as { code?: string };
      }
      return null;
    })();
    expect(err?.code).toBe('LVS_INVALID_OPTION');
  });

  it('survives random and mutated records; the native and TypeScript decoders agree on every one, and the counts add up', async () => {
    const good = await someRecords();
    let seed = 0x5eed;
    const rand = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
    const total = 4_000;
    const buf = Buffer.alloc(total * SYNC_RECORD_BYTES);
    for (let i = 0; i < total; i++) {
      const at = i * SYNC_RECORD_BYTES;
      if (i % 4 === 0) {
        for (let k = 0; k < SYNC_RECORD_BYTES; k++) buf[at + k] = rand(256);
      } else {
        const from = rand(4) * SYNC_RECORD_BYTES;
        good.copy(buf, at, from, from + SYNC_RECORD_BYTES);
        for (let m = 1 + rand(3); m > 0; m--) buf[at + rand(SYNC_RECORD_BYTES)] = rand(256);
      }
    }
    let malformed = 0;
    for (let i = 0; i < total; i++) if (!decodeSyncRecord(buf, i * SYNC_RECORD_BYTES).ok) malformed++;
    expect(malformed).toBeGreaterThan(total / 4);
    expect(malformed).toBeLessThan(total);

    const backup = director(true);
    backup.importSync(buf);
    backup.poll();
    const c = backup.counters();
    expect(c.sync_rejected_malformed).toBe(malformed);
    expect(c.sync_imported + c.sync_updated + c.sync_rejected_malformed + c.sync_rejected_no_service + c.sync_rejected_no_real + c.sync_rejected_full).toBe(total);
    // And the dataplane still works.
    const out = await through(backup, [tcp(CLIENT4, VIP4, 45000, 80, 'S')]);
    expect(out[0]).toMatchObject({ action: 'tx', dport: 8080 });
  });
});
