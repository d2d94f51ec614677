import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { native } from '../../src/dataplane/native.js';
import { Heartbeat, configDigest, type HeartbeatEvent, type HeartbeatOptions, type RejectedEvent } from '../../src/ha/heartbeat.js';
import { PIRANHA_MAGIC, encodeLvsd } from '../../src/ha/heartbeat-wire.js';
import { Netns, cleanupOnExit, removeAllNamespaces } from '../../src/lab/netns.js';
import { ManualClock } from '../helpers/clock.js';

// The test process's JS thread moves into a namespace of its own: 198.18.0.1-3 (public) and
// 198.18.1.1-2 (private) live on its loopback, and nothing here touches the host's network.
cleanupOnExit();
beforeAll(() => {
  const ns = Netns.create('ha-hb');
  for (const a of ['198.18.0.1', '198.18.0.2', '198.18.0.3', '198.18.1.1', '198.18.1.2']) ns.ip('addr', 'add', `${a}/32`, 'dev', 'lo');
  native().host.enterNetns(ns.name);
});
afterAll(() => removeAllNamespaces());

const KEY = Buffer.from('the shared heartbeat key, 32 b..');
const A = '198.18.0.1';
const B = '198.18.0.2';
const STRANGER = '198.18.0.3';
const PORT = 539;


/** The next `event` on `em` that satisfies `pred` (fails after 5 s instead of hanging). */
function next<T>(em: EventEmitter, event: string, pred: (v: T) => boolean = () => true): Promise<T> {
  return new Promise((res, rej) => {
    const timer = setTimeout(() => { em.off(event, on); rej(new Error(`no ${event} event`)); }, 5000);
    const on = (v: T) => { if (pred(v)) { clearTimeout(timer); em.off(event, on); res(v); } };
    em.on(event, on);
  });
}

/** Records every event of a Heartbeat. */
function record(hb: Heartbeat) {
  const r = { heartbeats: [] as HeartbeatEvent[], rejected: [] as RejectedEvent[], dead: 0, alive: 0, logs: [] as string[] };
  hb.on('heartbeat', (e: HeartbeatEvent) => r.heartbeats.push(e));
  hb.on('rejected', (e: RejectedEvent) => r.rejected.push(e));
  hb.on('dead', () => r.dead++);
  hb.on('alive', () => r.alive++);
  hb.on('log', (l: { message: string }) => r.logs.push(l.message));
  return r;
}

const open: (Heartbeat | dgram.Socket)[] = [];
afterEach(async () => {
  for (const o of open.splice(0)) {
    if (o instanceof Heartbeat) await o.stop();
    else o.close();
  }
});

async function heartbeat(opts: Partial<HeartbeatOptions> & Pick<HeartbeatOptions, 'local' | 'partner'>): Promise<Heartbeat> {
  const hb = new Heartbeat({ mode: 'lvsd', key: KEY, port: PORT, keepalive: 0.1, deadtime: 0.3, ...opts });
  hb.on('error', () => {});
  await hb.start();
  open.push(hb);
  return hb;
}

/** A plain UDP socket on `addr` (any port) to forge and capture packets. */
async function raw(addr: string, port = 0): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((res) => s.bind(port, addr, () => res()));
  open.push(s);
  return s;
}

const sendTo = (s: dgram.Socket, buf: Buffer, addr: string) => new Promise<void>((res, rej) => s.send(buf, PORT, addr, (e) => (e ? rej(e) : res())));

describe('Heartbeat (lvsd mode) between two addresses', () => {
  it('delivers authenticated heartbeats with state, identity, sequence and config digest', async () => {
    const clock = new ManualClock();
    const digest = configDigest('serial_no = 3\nprimary = 198.18.0.1\n');
    const b = await heartbeat({ local: { public: B }, partner: { public: A }, clock, nodeId: 2, configDigest: digest, serialNo: 3 });
    const rb = record(b);
    const first = next<HeartbeatEvent>(b, 'heartbeat');
    const a = await heartbeat({ local: { public: A }, partner: { public: B }, clock, nodeId: 1, isPrimary: true, priority: 200, configDigest: digest, serialNo: 3 });
    const e1 = await first;
    expect(e1).toMatchObject({ from: A, format: 'lvsd', state: 'stopped', nodeId: 1, isPrimary: true, priority: 200, serialNo: 3, configMatches: true, sequence: 1n });
    a.setState('running');
    const second = next<HeartbeatEvent>(b, 'heartbeat', (e) => e.state === 'running');
    clock.advance(100); // one keepalive: both send
    const e2 = await second;
    expect(e2.sequence).toBe(2n);
    expect(rb.alive).toBe(1);
    expect(rb.rejected).toEqual([]);
    expect(a.stats.sent).toBeGreaterThanOrEqual(2);
  });

  it('reports a configuration mismatch in the event and logs it once', async () => {
    const clock = new ManualClock();
    const b = await heartbeat({ local: { public: B }, partner: { public: A }, clock, nodeId: 2, configDigest: configDigest('x'), serialNo: 4 });
    const rb = record(b);
    const got = next<HeartbeatEvent>(b, 'heartbeat');
    await heartbeat({ local: { public: A }, partner: { public: B }, clock, nodeId: 1, configDigest: configDigest('y'), serialNo: 5 });
    expect(await got).toMatchObject({ configMatches: false, serialNo: 5 });
    const more = next<HeartbeatEvent>(b, 'heartbeat');
    clock.advance(100);
    await more;
    expect(rb.logs.filter((l) => l.includes('configuration differs'))).toHaveLength(1);
    expect(rb.logs[0]).toContain('partner serial_no 5, ours 4');
  });

  it('uses the private path too: heartbeats arrive from the partner\'s public and private address', async () => {
    const clock = new ManualClock();
    const b = await heartbeat({ local: { public: B, private: '198.18.1.2' }, partner: { public: A, private: '198.18.1.1' }, clock, nodeId: 2 });
    const fromPublic = next<HeartbeatEvent>(b, 'heartbeat', (e) => e.from === A);
    const fromPrivate = next<HeartbeatEvent>(b, 'heartbeat', (e) => e.from === '198.18.1.1');
    await heartbeat({ local: { public: A, private: '198.18.1.1' }, partner: { public: B, private: '198.18.1.2' }, clock, nodeId: 1 });
    expect(await fromPublic).toMatchObject({ path: 'public', sequence: 1n });
    expect(await fromPrivate).toMatchObject({ path: 'private', sequence: 2n });
    // Both copies of every keepalive are accepted: each path has its own replay state.
    for (let i = 0; i < 5; i++) {
      const pub = next<HeartbeatEvent>(b, 'heartbeat', (e) => e.path === 'public');
      const prv = next<HeartbeatEvent>(b, 'heartbeat', (e) => e.path === 'private');
      clock.advance(100);
      await Promise.all([pub, prv]);
    }
    expect(b.stats.rejected).toEqual({});
    expect(b.stats.received).toBe(12);
  });

  it('keepalive 100 ms / deadtime 300 ms: no dead while heartbeats flow; dead once per silence; alive when heard again', async () => {
    const clock = new ManualClock();
    const b = await heartbeat({ local: { public: B }, partner: { public: A }, clock, nodeId: 2 });
    const rb = record(b);
    let a = await heartbeat({ local: { public: A }, partner: { public: B }, clock, nodeId: 1 });
    await next(b, 'heartbeat');
    // 30 keepalives (3 s of protocol time): each heartbeat is awaited before time moves on.
    for (let i = 0; i < 30; i++) {
      const got = next<HeartbeatEvent>(b, 'heartbeat');
      clock.advance(100);
      await got;
    }
    expect(rb.dead).toBe(0);
    expect(rb.alive).toBe(1);
    // Silence: a stops. 299 ms is not dead yet, 300 ms is.
    await a.stop();
    clock.advance(299);
    expect(rb.dead).toBe(0);
    clock.advance(1);
    expect(rb.dead).toBe(1);
    expect(b.alive).toBe(false);
    // Ten more deadtimes of silence: still one `dead`.
    clock.advance(3000);
    expect(rb.dead).toBe(1);
    // The partner returns (a new process: new boot id, fresh sequence): alive again.
    const alive = next(b, 'alive');
    a = await heartbeat({ local: { public: A }, partner: { public: B }, clock, nodeId: 1 });
    await alive;
    expect(rb.alive).toBe(2);
    expect(rb.rejected).toEqual([]);
    // And a second silence gives a second `dead`.
    await a.stop();
    clock.advance(300);
    expect(rb.dead).toBe(2);
  });

  it('refuses forged packets (wrong key), logging one line per source per minute', async () => {
    const clock = new ManualClock();
    const b = await heartbeat({ local: { public: B }, partner: { public: A }, clock, nodeId: 2 });
    const rb = record(b);
    const forger = await raw(A);
    const forged = (seq: bigint) => encodeLvsd({
      state: 'stop-me', isPrimary: true, priority: 255, nodeId: 1, bootId: Buffer.alloc(8, 1), sequence: seq,
      timestamp: clock.wall(), serialNo: 0, configDigest: Buffer.alloc(16),
    }, Buffer.from('not the key, but just as long...'));
    const all = new Promise<void>((res) => { let n = 0; b.on('rejected', () => { if (++n === 5) res(); }); });
    for (let i = 1n; i <= 5n; i++) await sendTo(forger, forged(i), B);
    await all;
    expect(rb.rejected.map((r) => r.reason)).toEqual(['bad-mac', 'bad-mac', 'bad-mac', 'bad-mac', 'bad-mac']);
    expect(rb.rejected.every((r) => r.from === A)).toBe(true);
    expect(rb.heartbeats).toEqual([]);
    const lines = rb.logs.filter((l) => l.includes('refused'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`heartbeat from ${A} refused: heartbeat authentication failed`);
    expect(b.stats.rejected['bad-mac']).toBe(5);
    // A minute later the next refusal is logged again.
    clock.advance(60_000);
    const again = next(b, 'rejected');
    await sendTo(forger, forged(6n), B);
    await again;
    expect(rb.logs.filter((l) => l.includes('refused'))).toHaveLength(2);
  });

  it('refuses replays and packets from a source that is not the partner', async () => {
    const clock = new ManualClock();
    const b = await heartbeat({ local: { public: B }, partner: { public: A }, clock, nodeId: 2 });
    const rb = record(b);
    const pkt = (seq: bigint) => encodeLvsd({
      state: 'running', isPrimary: true, priority: 100, nodeId: 1, bootId: Buffer.alloc(8, 7), sequence: seq,
      timestamp: clock.wall(), serialNo: 0, configDigest: Buffer.alloc(16),
    }, KEY);
    const fromA = await raw(A);
    const p10 = pkt(10n);
    let got = next<HeartbeatEvent>(b, 'heartbeat');
    await sendTo(fromA, p10, B);
    expect((await got).sequence).toBe(10n);
    // The same bytes again, and an older sequence: replays.
    let rej = next<RejectedEvent>(b, 'rejected');
    await sendTo(fromA, p10, B);
    expect(await rej).toMatchObject({ reason: 'replay', from: A });
    rej = next<RejectedEvent>(b, 'rejected');
    await sendTo(fromA, pkt(9n), B);
    expect(await rej).toMatchObject({ reason: 'replay' });
    got = next<HeartbeatEvent>(b, 'heartbeat');
    await sendTo(fromA, pkt(11n), B);
    expect((await got).sequence).toBe(11n);
    // A valid packet from another address: refused by source.
    const stranger = await raw(STRANGER);
    rej = next<RejectedEvent>(b, 'rejected');
    await sendTo(stranger, pkt(12n), B);
    expect(await rej).toMatchObject({ reason: 'unexpected-source', from: STRANGER });
    // Our own packets sent back to us (with a spoofed partner source): reflected.
    rej = next<RejectedEvent>(b, 'rejected');
    await sendTo(fromA, encodeLvsd({ state: 'running', isPrimary: false, priority: 100, nodeId: 2, bootId: Buffer.alloc(8, 9), sequence: 1n, timestamp: clock.wall(), serialNo: 0, configDigest: Buffer.alloc(16) }, KEY), B);
    expect(await rej).toMatchObject({ reason: 'reflected' });
    // A bare Piranha magic in lvsd mode: unauthenticated.
    rej = next<RejectedEvent>(b, 'rejected');
    const magic = Buffer.alloc(4);
    magic.writeUInt32LE(PIRANHA_MAGIC.running);
    await sendTo(fromA, magic, B);
    expect(await rej).toMatchObject({ reason: 'unauthenticated' });
    expect(rb.heartbeats.map((h) => h.sequence)).toEqual([10n, 11n]);
  });

  it('survives garbage datagrams: each one is refused and counted', async () => {
    const clock = new ManualClock();
    const b = await heartbeat({ local: { public: B }, partner: { public: A }, clock, nodeId: 2 });
    const fromA = await raw(A);
    const n = 200;
    const all = new Promise<void>((res) => { let k = 0; b.on('rejected', () => { if (++k === n) res(); }); });
    for (let i = 0; i < n; i++) {
      const len = (i * 37) % 130;
      const buf = Buffer.alloc(len);
      for (let j = 0; j < len; j++) buf[j] = (i * 131 + j * 17) & 0xff;
      if (i % 2 === 0 && len >= 5) buf.write('LVSD\x01', 0, 'latin1');
      await sendTo(fromA, buf, B);
    }
    await all;
    const total = Object.values(b.stats.rejected).reduce((x, y) => x + (y ?? 0), 0);
    expect(total).toBe(n);
    expect(b.stats.received).toBe(0);
  });
});

describe('Heartbeat (piranha mode)', () => {
  it('sends Piranha\'s bare 4-byte little-endian magics, STOP-ME as RUNNING', async () => {
    const clock = new ManualClock();
    const peer = await raw(B, PORT); // an old pulse, as far as the wire can tell
    const got: Buffer[] = [];
    peer.on('message', (m) => got.push(m));
    const first = new Promise<void>((res) => peer.once('message', () => res()));
    const a = await heartbeat({ mode: 'piranha', key: undefined, local: { public: A }, partner: { public: B }, clock });
    await first;
    a.setState('running');
    const more = new Promise<void>((res) => { peer.on('message', () => { if (got.length === 3) res(); }); });
    clock.advance(100);
    a.sendNow('stop-me');
    await more;
    expect(got.map((m) => m.toString('hex'))).toEqual(['bddabdad', 'dadbadbd', 'dadbadbd']);
  });

  it('accepts Piranha RUNNING/STOPPED from the partner and refuses FOS/HOLD magics and bad lengths', async () => {
    const clock = new ManualClock();
    const b = await heartbeat({ mode: 'piranha', key: undefined, local: { public: B }, partner: { public: A }, clock });
    const rb = record(b);
    const pulse = await raw(A);
    const magic = (v: number) => { const m = Buffer.alloc(4); m.writeUInt32LE(v); return m; };
    let hb = next<HeartbeatEvent>(b, 'heartbeat');
    await sendTo(pulse, magic(PIRANHA_MAGIC.running), B);
    expect(await hb).toEqual({ from: A, format: 'piranha', state: 'running' });
    hb = next<HeartbeatEvent>(b, 'heartbeat');
    await sendTo(pulse, magic(PIRANHA_MAGIC.stopped), B);
    expect(await hb).toEqual({ from: A, format: 'piranha', state: 'stopped' });
    for (const v of [PIRANHA_MAGIC['fos-running'], PIRANHA_MAGIC.hold, PIRANHA_MAGIC['fos-stop-me']]) {
      const rej = next<RejectedEvent>(b, 'rejected');
      await sendTo(pulse, magic(v), B);
      expect(await rej).toMatchObject({ reason: 'foreign-magic' });
    }
    let rej = next<RejectedEvent>(b, 'rejected');
    await sendTo(pulse, Buffer.from([0xda, 0xdb, 0xad, 0xbd, 0]), B);
    expect(await rej).toMatchObject({ reason: 'bad-length' });
    rej = next<RejectedEvent>(b, 'rejected');
    await sendTo(pulse, magic(0x12345678), B);
    expect(await rej).toMatchObject({ reason: 'bad-magic' });
    expect(rb.heartbeats).toHaveLength(2);
    // Only the first refusal from the source was logged.
    expect(rb.logs.filter((l) => l.includes('refused'))).toHaveLength(1);
  });

  it('two piranha-mode nodes hear each other', async () => {
    const clock = new ManualClock();
    const b = await heartbeat({ mode: 'piranha', key: undefined, local: { public: B }, partner: { public: A }, clock });
    const got = next<HeartbeatEvent>(b, 'heartbeat', (e) => e.state === 'running');
    const a = await heartbeat({ mode: 'piranha', key: undefined, local: { public: A }, partner: { public: B }, clock });
    a.setState('running');
    clock.advance(100);
    expect(await got).toMatchObject({ from: A, format: 'piranha' });
  });
});

describe('Heartbeat options', () => {
  it('refuses lvsd mode without a key, bad addresses and bad timers with a code', () => {
    expect(() => new Heartbeat({ local: { public: A }, partner: { public: B } })).toThrowError(expect.objectContaining({ code: 'LVS_INVALID_OPTION' }));
    expect(() => new Heartbeat({ key: KEY, local: { public: 'nope' }, partner: { public: B } })).toThrowError(expect.objectContaining({ code: 'LVS_INVALID_ADDRESS' }));
    expect(() => new Heartbeat({ key: KEY, local: { public: A }, partner: { public: B }, keepalive: 0 })).toThrowError(expect.objectContaining({ code: 'LVS_INVALID_OPTION' }));
    expect(() => new Heartbeat({ key: KEY, local: { public: A }, partner: { public: B }, port: 70000 })).toThrowError(expect.objectContaining({ code: 'LVS_INVALID_OPTION' }));
  });

  it('reports a bind failure (address not local) as LVS_HOST', async () => {
    const hb = new Heartbeat({ key: KEY, local: { public: '198.18.9.9' }, partner: { public: B }, port: PORT });
    await expect(hb.start()).rejects.toMatchObject({ code: 'LVS_HOST' });
  });
});
