// The state-sync channel over real TCP. The test process's JS thread moves into a namespace of its
// own; every address below lives on that namespace's loopback, nothing touches the host's network.
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { native } from '../../src/dataplane/native.js';
import type { Logger } from '../../src/director/types.js';
import { isLvsError } from '../../src/errors.js';
import {
  SyncChannel, type DumpEndEvent, type LinkDownEvent, type LinkEvent, type SyncOptions, type SyncRejectedEvent,
} from '../../src/ha/sync.js';
import {
  AUTH_BYTES, FRAME_OVERHEAD, FrameMac, HELLO_BYTES, authMac, checkFrameLength, decodeConfigResult, decodeFrame,
  decodeHello, encodeConfigResult, encodeFrame, encodeHello, newNonce, verifyAuth, type ConfigResult,
} from '../../src/ha/sync-wire.js';
import { Netns, cleanupOnExit, removeAllNamespaces } from '../../src/lab/netns.js';

const A = '198.18.0.1';        // the active's public address
const A_PRIV = '198.18.1.1';   // its private address
const B = '198.18.0.2';        // the backup's public address
const B_PRIV = '198.18.1.2';
const PROXY = '198.18.0.3';    // a man in the middle, or a stranger
const PORT = 8848;
const KEY = Buffer.from('the shared sync key, 32 bytes...');
const RB = 128;                // record size used throughout

let nsName = '';
cleanupOnExit();
beforeAll(() => {
  const ns = Netns.create('ha-sync');
  for (const a of [A, A_PRIV, B, B_PRIV, PROXY]) ns.ip('addr', 'add', `${a}/32`, 'dev', 'lo');
  native().host.enterNetns(ns.name);
  nsName = ns.name;
});
afterAll(() => removeAllNamespaces());

const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tick = () => new Promise((r) => setImmediate(r));

/** The next `event` on `em` that satisfies `pred` (fails after 10 s instead of hanging). */
function next<T>(em: EventEmitter, event: string, pred: (v: T) => boolean = () => true): Promise<T> {
  return new Promise((res, rej) => {
    const timer = setTimeout(() => { em.off(event, on); rej(new Error(`no ${event} event`)); }, 10_000);
    const on = (v: T) => { if (pred(v)) { clearTimeout(timer); em.off(event, on); res(v); } };
    em.on(event, on);
  });
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Record i: its index, then a pattern derived from it (any bit flip shows). */
function record(i: number): Buffer {
  const b = Buffer.alloc(RB);
  b.writeUInt32BE(i, 0);
  for (let j = 4; j < RB; j++) b[j] = (i * 31 + j) & 0xff;
  return b;
}
function records(from: number, n: number): Buffer {
  return Buffer.concat(Array.from({ length: n }, (_, k) => record(from + k)));
}
function intact(b: Buffer, o: number): boolean {
  const i = b.readUInt32BE(o);
  for (let j = 4; j < RB; j++) if (b[o + j] !== ((i * 31 + j) & 0xff)) return false;
  return true;
}

interface LogLine { level: string; event?: string; from?: string; reason?: string; msg?: string }
function capture(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: string) => (obj: object, msg?: string) => lines.push({ level, ...(obj as object), msg });
  return { logger: { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') }, lines };
}

/** What a receiving channel got. */
function sink(ch: SyncChannel) {
  const s = {
    indices: [] as number[], corrupt: 0, dumpRecords: 0,
    dumpBegin: [] as number[], dumpEnd: [] as DumpEndEvent[], rejected: [] as SyncRejectedEvent[],
    up: [] as LinkEvent[], down: [] as LinkDownEvent[],
  };
  ch.on('records', (buf: Buffer, info: { dump: boolean }) => {
    for (let o = 0; o < buf.length; o += RB) {
      if (!intact(buf, o)) s.corrupt++;
      s.indices.push(buf.readUInt32BE(o));
    }
    if (info.dump) s.dumpRecords += buf.length / RB;
  });
  ch.on('dump-begin', (e: { count: number }) => s.dumpBegin.push(e.count));
  ch.on('dump-end', (e: DumpEndEvent) => s.dumpEnd.push(e));
  ch.on('rejected', (e: SyncRejectedEvent) => s.rejected.push(e));
  ch.on('link-up', (e: LinkEvent) => s.up.push(e));
  ch.on('link-down', (e: LinkDownEvent) => s.down.push(e));
  return s;
}

async function channel(opts: Partial<SyncOptions> & Pick<SyncOptions, 'local' | 'partner'>) {
  const log = capture();
  const ch = new SyncChannel({ key: KEY, recordBytes: RB, port: PORT, logger: log.logger, ...opts });
  await ch.start();
  closers.push(() => ch.close());
  return { ch, lines: log.lines, got: sink(ch) };
}

/** Active at A (dials), backup at B (accepts), each with a private address too. */
async function pair(extra: Partial<SyncOptions> = {}, extraB: Partial<SyncOptions> = {}) {
  const b = await channel({ local: { public: B, private: B_PRIV }, partner: { public: A, private: A_PRIV }, nodeId: 2, ...extra, ...extraB });
  const a = await channel({ local: { public: A, private: A_PRIV }, partner: { public: B, private: B_PRIV }, nodeId: 1, ...extra });
  return { a, b };
}

/**
 * A man in the middle on PROXY:8848 forwarding to B:8848 from A's address (B accepts only its
 * partner's addresses). It parses the active's frames (HELLO and AUTH, then u32-length frames)
 * and, on the first connection only, alters the `frame`-th RECORDS frame. It can also stop
 * reading from the active (backpressure).
 */
class Mitm {
  readonly helloNonces: string[] = [];
  connections = 0;
  private readonly server: net.Server;
  private readonly inbound: net.Socket[] = [];
  private readonly sockets: net.Socket[] = [];

  constructor(private readonly attack?: { kind: 'flip' | 'replay' | 'drop'; frame: number }) {
    this.server = net.createServer((a) => this.relay(a));
  }

  async listen(): Promise<void> {
    await new Promise<void>((res) => this.server.listen(PORT, PROXY, () => res()));
    closers.push(() => this.close());
  }

  pause(): void { for (const s of this.inbound) s.pause(); }
  resume(): void { for (const s of this.inbound) s.resume(); }

  private relay(a: net.Socket): void {
    const n = ++this.connections;
    const b = net.connect({ host: B, port: PORT, localAddress: A });
    this.inbound.push(a);
    this.sockets.push(a, b);
    a.on('error', () => {});
    b.on('error', () => {});
    a.on('close', () => b.destroy());
    b.on('close', () => a.destroy());
    let fromB = Buffer.alloc(0);
    b.on('data', (d: Buffer) => {
      if (fromB.length < HELLO_BYTES) {
        fromB = Buffer.concat([fromB, d]);
        if (fromB.length >= HELLO_BYTES) this.helloNonces.push(`B${n}:${fromB.subarray(12, 28).toString('hex')}`);
      }
      a.write(d);
    });
    let buf = Buffer.alloc(0);
    let handshake = HELLO_BYTES + AUTH_BYTES;
    let recordsFrames = 0;
    const attack = n === 1 ? this.attack : undefined;
    a.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (handshake > 0) {
        if (handshake === HELLO_BYTES + AUTH_BYTES && buf.length >= HELLO_BYTES) this.helloNonces.push(`A${n}:${buf.subarray(12, 28).toString('hex')}`);
        const k = Math.min(handshake, buf.length);
        if (handshake === HELLO_BYTES + AUTH_BYTES && k < HELLO_BYTES) return;
        b.write(buf.subarray(0, k));
        buf = buf.subarray(k);
        handshake -= k;
      }
      while (handshake === 0 && buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const len = 4 + buf.readUInt32BE(0);
        const frame = Buffer.from(buf.subarray(0, len));
        buf = buf.subarray(len);
        const isRecords = frame[4] === 3;
        if (isRecords && attack !== undefined && recordsFrames++ === attack.frame) {
          if (attack.kind === 'flip') { frame[13 + 5]! ^= 0x10; b.write(frame); }
          if (attack.kind === 'replay') { b.write(frame); b.write(frame); }
          // 'drop': nothing
          continue;
        }
        b.write(frame);
      }
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((res) => this.server.close(() => res()));
  }
}

/** Reads exactly n bytes from a socket, in order. */
class Reader {
  private buf = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  closed = false;
  constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => { this.buf = Buffer.concat([this.buf, d]); this.waiter?.(); });
    sock.on('close', () => { this.closed = true; this.waiter?.(); });
    sock.on('error', () => {});
  }
  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n) {
      if (this.closed) throw new Error('closed');
      await new Promise<void>((r) => { this.waiter = r; });
      this.waiter = undefined;
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
  whenClosed(): Promise<void> {
    return this.closed ? Promise.resolve() : new Promise((r) => this.sock.once('close', () => r()));
  }
}

async function connectRaw(from: string, to = B): Promise<Reader> {
  const s = net.connect({ host: to, port: PORT, localAddress: from });
  closers.push(() => s.destroy());
  await new Promise<void>((res, rej) => { s.once('connect', () => res()); s.once('error', rej); });
  return new Reader(s);
}

/** A peer that knows the key and completes the handshake as a dialer, then does what it likes. */
async function fakeDialer(nodeId: number): Promise<{ r: Reader; mac: FrameMac }> {
  const r = await connectRaw(A);
  const own = encodeHello({ role: 'dialer', recordBytes: RB, nodeId, nonce: newNonce() });
  r.sock.write(own);
  const peer = await r.read(HELLO_BYTES);
  const h = decodeHello(peer);
  if (!h.ok) throw new Error(h.detail);
  r.sock.write(authMac(KEY, 'dialer', own, peer));
  expect(verifyAuth(KEY, 'acceptor', peer, own, await r.read(AUTH_BYTES))).toBe(true);
  return { r, mac: new FrameMac(KEY, 'dialer', own.subarray(12, 28), h.value.nonce) };
}

describe('sync wire', () => {
  const hello = (role: 'dialer' | 'acceptor', nodeId: number) => encodeHello({ role, recordBytes: RB, nodeId, nonce: newNonce() });

  it('an AUTH proves the key for exactly this pair of HELLOs and this role', () => {
    const d = hello('dialer', 1);
    const a = hello('acceptor', 2);
    const auth = authMac(KEY, 'dialer', d, a);
    expect(verifyAuth(KEY, 'dialer', d, a, auth)).toBe(true);
    // Reflected back at the dialer (as if the acceptor had said it): fails.
    expect(verifyAuth(KEY, 'acceptor', a, d, auth)).toBe(false);
    // Replayed on a new connection: the acceptor's nonce is new.
    expect(verifyAuth(KEY, 'dialer', d, hello('acceptor', 2), auth)).toBe(false);
    expect(verifyAuth(Buffer.from('another key of at least 16 bytes'), 'dialer', d, a, auth)).toBe(false);
  });

  it('frames verify only in their direction, on their link, at their sequence', () => {
    const dn = newNonce();
    const an = newNonce();
    const tx = new FrameMac(KEY, 'dialer', dn, an);
    const f = encodeFrame(tx, 'records', 1n, records(0, 2));
    const ok = decodeFrame(new FrameMac(KEY, 'dialer', dn, an), f, 1n);
    expect(ok.ok && ok.value.type === 'records' && ok.value.payload.equals(records(0, 2))).toBe(true);
    expect(decodeFrame(new FrameMac(KEY, 'acceptor', dn, an), f, 1n)).toMatchObject({ ok: false, reason: 'bad-mac' });
    expect(decodeFrame(new FrameMac(KEY, 'dialer', newNonce(), an), f, 1n)).toMatchObject({ ok: false, reason: 'bad-mac' });
    expect(decodeFrame(new FrameMac(KEY, 'dialer', dn, an), f, 2n)).toMatchObject({ ok: false, reason: 'sequence' });
    const flipped = Buffer.from(f);
    flipped[20]! ^= 1;
    expect(decodeFrame(new FrameMac(KEY, 'dialer', dn, an), flipped, 1n)).toMatchObject({ ok: false, reason: 'bad-mac' });
    expect(checkFrameLength(0xfffffff0, 1 << 20)).toMatchObject({ ok: false, reason: 'oversized' });
    expect(checkFrameLength(3, 1 << 20)).toMatchObject({ ok: false, reason: 'bad-length' });
  });

  it('config results round trip and malformed ones are refused', () => {
    const r: ConfigResult = { serialNo: 9, digest: Buffer.alloc(16, 7), ok: false, errors: ['line 3: bad', 'ünïcode'] };
    const d = decodeConfigResult(encodeConfigResult(r));
    expect(d).toEqual({ ok: true, value: r });
    const bad = encodeConfigResult(r);
    expect(decodeConfigResult(bad.subarray(0, bad.length - 1))).toMatchObject({ ok: false, reason: 'bad-payload' });
    expect(decodeHello(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.padEnd(HELLO_BYTES)))).toMatchObject({ ok: false, reason: 'bad-magic' });
  });
});

describe('SyncChannel over TCP', () => {
  it('links up, round-trips a config, carries 100k records in order in batches, and a dump with counts', async () => {
    const { a, b } = await pair();
    const upA = next<LinkEvent>(a.ch, 'link-up');
    const upB = next<LinkEvent>(b.ch, 'link-up');
    a.ch.setSending(true);
    const [ea, eb] = await Promise.all([upA, upB]);
    // Private addresses are preferred.
    expect(ea).toMatchObject({ direction: 'outgoing', peer: { address: B_PRIV, port: PORT, nodeId: 2 } });
    expect(eb).toMatchObject({ direction: 'incoming', peer: { address: A_PRIV, nodeId: 1 } });

    // Configuration: the backup validates and answers.
    b.ch.on('config', (c: { serialNo: number; text: string }, respond: (r: { ok: boolean; errors?: string[] }) => boolean) => {
      expect(respond({ ok: false, errors: [`serial ${c.serialNo}: line 3: ${c.text.split('\n')[2]}`] })).toBe(true);
    });
    const digest = Buffer.alloc(16, 0xab);
    const result = next<ConfigResult>(a.ch, 'config-result');
    expect(a.ch.sendConfig({ serialNo: 7, digest, text: 'serial_no = 7\nprimary = 198.18.0.1\nbogus = 1\n' })).toBe(true);
    expect(await result).toEqual({ serialNo: 7, digest, ok: false, errors: ['serial 7: line 3: bogus = 1'] });

    // 100k records in calls of 1..7 records.
    const total = 100_000;
    let calls = 0;
    const t0 = performance.now();
    for (let i = 0; i < total;) {
      const n = Math.min(1 + (calls % 7), total - i);
      expect(a.ch.sendRecords(records(i, n))).toBe(true);
      i += n;
      calls++;
      if (calls % 500 === 0) {
        await tick();
        while (a.ch.queuedBytes > 2 << 20) await sleep(1);
      }
    }
    await until(() => b.got.indices.length >= total, 'all records');
    const ms = performance.now() - t0;
    expect(b.got.indices.length).toBe(total);
    expect(b.got.indices.every((v, k) => v === k)).toBe(true);
    expect(b.got.corrupt).toBe(0);
    const frames = a.ch.stats.sent.records.frames;
    expect(frames).toBeLessThan(calls / 20);
    expect(b.ch.stats.received.records.frames).toBe(frames);
    expect(a.ch.stats.records.sent).toBe(total);
    expect(a.ch.stats.dropped).toEqual({ noLink: 0, backpressure: 0, dumps: 0, configs: 0 });
    console.log(`sync: ${total} records of ${RB} bytes in ${calls} sendRecords calls -> ${frames} frames, ${ms.toFixed(0)} ms, ${Math.round(total / (ms / 1000))} records/s (both ends in one process)`);

    // A dump: BEGIN, chunks, END with counts.
    b.got.indices.length = 0;
    const end = next<DumpEndEvent>(b.ch, 'dump-end');
    const t1 = performance.now();
    expect(a.ch.sendDump(records(0, 10_000))).toBe(true);
    expect(await end).toEqual({ count: 10_000, received: 10_000 });
    console.log(`sync: a 10000-record dump carried in ${(performance.now() - t1).toFixed(1)} ms`);
    expect(b.got.dumpBegin).toEqual([10_000]);
    expect(b.got.dumpRecords).toBe(10_000);
    expect(b.got.indices.every((v, k) => v === k)).toBe(true);
    expect(b.got.rejected).toEqual([]);
    expect(a.ch.stats.links.up).toBe(1);
  });

  it('wrong key: no link, both sides refuse, count and log (once per source), nothing delivered', async () => {
    const { a, b } = await pair({}, { key: Buffer.from('not the same key, also 32 bytes.') });
    let configs = 0;
    b.ch.on('config', () => configs++);
    a.ch.setSending(true);
    await until(() => (b.ch.stats.rejected['bad-auth'] ?? 0) >= 2 && (a.ch.stats.rejected['bad-auth'] ?? 0) >= 2, 'two refused attempts');
    a.ch.sendConfig({ serialNo: 1, digest: Buffer.alloc(16), text: 'x' });
    expect(a.ch.sendRecords(records(0, 3))).toBe(false);
    expect(a.got.up).toEqual([]);
    expect(b.got.up).toEqual([]);
    expect(b.got.indices).toEqual([]);
    expect(configs).toBe(0);
    expect(b.got.rejected[0]).toMatchObject({ from: A_PRIV, reason: 'bad-auth' });
    expect(a.got.rejected[0]).toMatchObject({ from: B_PRIV, reason: 'bad-auth' });
    // Logged once per source per minute although refused twice or more.
    expect(b.lines.filter((l) => l.event === 'sync-rejected')).toEqual([expect.objectContaining({ level: 'warn', from: A_PRIV, reason: 'bad-auth' })]);
    expect(a.lines.filter((l) => l.event === 'sync-rejected')).toEqual([expect.objectContaining({ from: B_PRIV, reason: 'bad-auth' })]);
    expect(a.ch.stats.dropped.noLink).toBe(3);
    expect(a.ch.stats.dropped.configs).toBe(1);
  });

  for (const [kind, reason, delivered] of [['flip', 'bad-mac', 20], ['replay', 'sequence', 30], ['drop', 'sequence', 20]] as const) {
    it(`a man in the middle who ${kind === 'flip' ? 'flips a payload bit' : kind === 'replay' ? 'replays a frame' : 'drops a frame'}: link killed, counted, nothing bad delivered, link back with new nonces`, async () => {
      const mitm = new Mitm({ kind, frame: 2 });
      await mitm.listen();
      const b = await channel({ local: { public: B }, partner: { public: A }, nodeId: 2, pingIntervalMs: 10_000, idleTimeoutMs: 30_000 });
      const a = await channel({ local: { public: A }, partner: { public: PROXY }, nodeId: 1, pingIntervalMs: 10_000, idleTimeoutMs: 30_000 });
      const up = next<LinkEvent>(a.ch, 'link-up');
      a.ch.setSending(true);
      await up;
      const rejected = next<SyncRejectedEvent>(b.ch, 'rejected');
      const upAgain = next<LinkEvent>(a.ch, 'link-up');
      // Six RECORDS frames of ten records each; the third is attacked.
      for (let f = 0; f < 6; f++) {
        a.ch.sendRecords(records(f * 10, 10));
        a.ch.flush();
      }
      expect(await rejected).toMatchObject({ from: A, reason });
      expect(b.ch.stats.rejected[reason]).toBe(1);
      expect(b.lines.some((l) => l.event === 'sync-rejected' && l.reason === reason)).toBe(true);
      // What reached the backup: whole frames before the attack (and the original of a replayed one), once, intact.
      expect(b.got.indices).toEqual(Array.from({ length: delivered }, (_, k) => k));
      expect(b.got.corrupt).toBe(0);
      expect(b.got.down[0]).toMatchObject({ direction: 'incoming', reason });
      // The active sees the link go and dials again: a second link-up, so the owner sends a dump.
      const e = await upAgain;
      expect(e.direction).toBe('outgoing');
      expect(a.got.up).toHaveLength(2);
      expect(a.got.down).toHaveLength(1);
      expect(mitm.connections).toBe(2);
      const nonces = new Set(mitm.helloNonces.map((n) => n.split(':')[1]));
      expect(nonces.size).toBe(4);
      const end = next<DumpEndEvent>(b.ch, 'dump-end');
      a.ch.sendDump(records(0, 100));
      expect(await end).toEqual({ count: 100, received: 100 });
      expect(b.got.corrupt).toBe(0);
    });
  }

  it('garbage or a huge length before the handshake, a silent peer and a stranger are closed without buffering', async () => {
    const b = await channel({ local: { public: B }, partner: { public: A }, nodeId: 2, handshakeTimeoutMs: 300 });
    // An HTTP request instead of a HELLO.
    const http = await connectRaw(A);
    http.sock.write('GET / HTTP/1.1\r\nHost: backup\r\n\r\n');
    await http.whenClosed();
    // A 4 GiB length field where the HELLO belongs.
    const huge = await connectRaw(A);
    huge.sock.write(Buffer.from([0xff, 0xff, 0xff, 0xf0, 1, 2, 3]));
    await huge.whenClosed();
    expect(b.ch.stats.rejected['bad-magic']).toBe(2);
    // Says nothing: closed after the handshake timeout.
    const mute = await connectRaw(A);
    await mute.whenClosed();
    expect(b.ch.stats.rejected['handshake-timeout']).toBe(1);
    // From an address that is not the partner's.
    const stranger = await connectRaw(PROXY);
    await stranger.whenClosed();
    expect(b.ch.stats.rejected['unexpected-source']).toBe(1);
    expect(b.got.up).toEqual([]);
    expect(b.got.rejected.map((r) => r.reason)).toEqual(['bad-magic', 'bad-magic', 'handshake-timeout', 'unexpected-source']);
  });

  it('an authenticated peer announcing a huge frame is cut off at the length field; a newer link replaces an older one', async () => {
    const b = await channel({ local: { public: B }, partner: { public: A }, nodeId: 2 });
    const first = await fakeDialer(1);
    await until(() => b.got.up.length === 1, 'first link');
    const second = await fakeDialer(1);
    await first.r.whenClosed();
    await until(() => b.got.down.length === 1, 'old link down');
    expect(b.got.down[0]!.reason).toMatch(/replaced/);
    expect(b.ch.stats.links.up).toBe(1);
    // A valid frame first, then 0xfffffff0 announced: closed at once, without the rest arriving.
    second.r.sock.write(encodeFrame(second.mac, 'records', 1n, records(5, 2)));
    const h = Buffer.alloc(4 + 9);
    h.writeUInt32BE(0xfffffff0, 0);
    second.r.sock.write(h);
    await second.r.whenClosed();
    expect(b.got.indices).toEqual([5, 6]);
    expect(b.ch.stats.rejected.oversized).toBe(1);
    expect(b.got.down[1]).toMatchObject({ reason: 'oversized' });
    // A record payload that is not whole records, from a third authenticated peer.
    const third = await fakeDialer(1);
    third.r.sock.write(encodeFrame(third.mac, 'records', 1n, Buffer.alloc(RB + 1)));
    await third.r.whenClosed();
    expect(b.ch.stats.rejected['bad-payload']).toBe(1);
    // And a type only the backup may send.
    const fourth = await fakeDialer(1);
    fourth.r.sock.write(encodeFrame(fourth.mac, 'config-result', 1n, encodeConfigResult({ serialNo: 1, digest: Buffer.alloc(16), ok: true, errors: [] })));
    await fourth.r.whenClosed();
    expect(b.ch.stats.rejected['unexpected-type']).toBe(1);
    expect(b.got.indices).toEqual([5, 6]);
    // HELLOs that fail before any key is involved: our own node id, another record size.
    const mirror = await connectRaw(A);
    mirror.sock.write(encodeHello({ role: 'dialer', recordBytes: RB, nodeId: 2, nonce: newNonce() }));
    await mirror.whenClosed();
    expect(b.ch.stats.rejected.reflected).toBe(1);
    const older = await connectRaw(A);
    older.sock.write(encodeHello({ role: 'dialer', recordBytes: 64, nodeId: 1, nonce: newNonce() }));
    await older.whenClosed();
    expect(b.ch.stats.rejected['record-size']).toBe(1);
    const twin = await connectRaw(A);
    twin.sock.write(encodeHello({ role: 'acceptor', recordBytes: RB, nodeId: 1, nonce: newNonce() }));
    await twin.whenClosed();
    expect(b.ch.stats.rejected['bad-role']).toBe(1);
    expect(FRAME_OVERHEAD).toBe(45);
  });

  it('the backup restarts: the active dials again and link-up fires again', async () => {
    const { a, b } = await pair();
    const up1 = next<LinkEvent>(a.ch, 'link-up');
    a.ch.setSending(true);
    await up1;
    const down = next<LinkDownEvent>(a.ch, 'link-down');
    const up2 = next<LinkEvent>(a.ch, 'link-up');
    await b.ch.close();
    expect((await down).direction).toBe('outgoing');
    // Records while there is no link are dropped and counted.
    expect(a.ch.sendRecords(records(0, 4))).toBe(false);
    expect(a.ch.stats.dropped.noLink).toBe(4);
    const b2 = await channel({ local: { public: B, private: B_PRIV }, partner: { public: A, private: A_PRIV }, nodeId: 2 });
    expect(await up2).toMatchObject({ direction: 'outgoing', peer: { nodeId: 2 } });
    // The owner answers link-up with a dump; the new backup gets it.
    const end = next<DumpEndEvent>(b2.ch, 'dump-end');
    a.ch.sendDump(records(0, 50));
    expect(await end).toEqual({ count: 50, received: 50 });
    expect(a.ch.stats.links).toMatchObject({ up: 1, established: 2, lost: 1 });
    // setSending(false) closes the outgoing link.
    const off = next<LinkDownEvent>(b2.ch, 'link-down');
    a.ch.setSending(false);
    expect(a.ch.linked).toBe(false);
    expect((await off).direction).toBe('incoming');
  });

  it('the backup asks for the table again (resync-request): the active gets resync-needed; without a link nothing is sent', async () => {
    const { a, b } = await pair();
    expect(b.ch.requestResync()).toBe(false);
    const up = next<LinkEvent>(a.ch, 'link-up');
    a.ch.setSending(true);
    await up;
    await until(() => b.ch.stats.links.up === 1, 'the incoming link on the backup');
    const asked = next<void>(a.ch, 'resync-needed');
    expect(b.ch.requestResync()).toBe(true);
    await asked;
    expect(a.ch.stats.received['resync-request'].frames).toBe(1);
    // The dialer may not send one: the frame type belongs to the acceptor.
    expect(a.ch.requestResync()).toBe(false);
  });

  it('backpressure: a receiver that stops reading keeps the sender bounded, drops are counted, resync-needed after it drains', async () => {
    const mitm = new Mitm();
    await mitm.listen();
    const opts = { pingIntervalMs: 10_000, idleTimeoutMs: 60_000 };
    const b = await channel({ local: { public: B }, partner: { public: A }, nodeId: 2, ...opts });
    const maxQueuedBytes = 1 << 20;
    const a = await channel({ local: { public: A }, partner: { public: PROXY }, nodeId: 1, maxQueuedBytes, ...opts });
    const up = next<LinkEvent>(a.ch, 'link-up');
    a.ch.setSending(true);
    await up;
    mitm.pause();
    let resync = 0;
    a.ch.on('resync-needed', () => resync++);
    const chunk = records(0, 64); // 8 KiB a call
    let sent = 0;
    let peakSeen = 0;
    let afterDrop = 0;
    // Kernel buffers on both sides of the proxy fill first (several MiB), then Node's queue.
    while (afterDrop < 400) {
      a.ch.sendRecords(chunk);
      sent++;
      if (a.ch.stats.dropped.backpressure > 0) afterDrop++;
      peakSeen = Math.max(peakSeen, a.ch.queuedBytes);
      if (sent % 64 === 0) await tick();
      if (sent > 40_000) throw new Error('no backpressure after 320 MiB');
    }
    const bound = maxQueuedBytes + (64 << 10) + FRAME_OVERHEAD;
    expect(a.ch.stats.queuedBytesPeak).toBeLessThanOrEqual(bound);
    expect(peakSeen).toBeLessThanOrEqual(bound);
    expect(a.ch.stats.dropped.backpressure).toBeGreaterThan(0);
    expect(a.lines.filter((l) => l.event === 'sync-backpressure')).toHaveLength(1);
    expect(resync).toBe(0);
    const resyncing = next<void>(a.ch, 'resync-needed');
    mitm.resume();
    await resyncing;
    expect(resync).toBe(1);
    // What was queued arrives intact; the owner's answer (a dump) too.
    const end = next<DumpEndEvent>(b.ch, 'dump-end');
    expect(a.ch.sendDump(records(0, 1000))).toBe(true);
    expect(await end).toEqual({ count: 1000, received: 1000 });
    // A dump far larger than the bound is queued whole, and records right behind it are not
    // dropped for it (else every resync of a big table would cause the next one).
    mitm.pause();
    const dropped = a.ch.stats.dropped.backpressure;
    const bigEnd = next<DumpEndEvent>(b.ch, 'dump-end');
    const big = 24 * 8192; // 24 MiB
    expect(a.ch.sendDump(records(0, big))).toBe(true);
    expect(a.ch.queuedBytes).toBeGreaterThan(maxQueuedBytes);
    expect(a.ch.sendRecords(chunk)).toBe(true);
    a.ch.flush();
    expect(a.ch.stats.dropped.backpressure).toBe(dropped);
    mitm.resume();
    expect(await bigEnd).toEqual({ count: big, received: big });
    await until(() => b.ch.stats.records.received === a.ch.stats.records.sent, 'the records behind the dump');
    expect(b.got.corrupt).toBe(0);
    expect(a.ch.stats.records.sent + a.ch.stats.dropped.backpressure).toBe((sent + 1) * 64 + 1000 + big);
    expect(b.got.down).toEqual([]);
  });

  it('netns: a namespace the thread is in already is kept; an unknown one is LVS_NETNS', async () => {
    const { ch } = await channel({ local: { public: B }, partner: { public: A }, netns: nsName });
    expect(ch.linked).toBe(false);
    const bad = new SyncChannel({ key: KEY, recordBytes: RB, local: { public: A }, partner: { public: B }, netns: 'lvsd-no-such-namespace' });
    await expect(bad.start()).rejects.toSatisfy((e: unknown) => isLvsError(e, 'LVS_NETNS'));
  });

  it('refuses options that would make it unbounded or inconsistent', () => {
    const base = { key: KEY, recordBytes: RB, local: { public: A }, partner: { public: B } };
    expect(() => new SyncChannel({ ...base, key: Buffer.from('short') })).toThrow(/key/);
    expect(() => new SyncChannel({ ...base, batchBytes: 2 << 20 })).toThrow(/batchBytes/);
    expect(() => new SyncChannel({ ...base, recordBytes: 0 })).toThrow(/recordBytes/);
    expect(() => new SyncChannel({ ...base, partner: { public: 'backup' } })).toThrow(/not an IP address/);
    const ch = new SyncChannel(base);
    expect(() => ch.sendRecords(Buffer.alloc(RB + 1))).toThrow(/whole number/);
  });
});
