/**
 * The state-sync channel between two directors (issue 7): the active streams connection and
 * persistence-template records (opaque fixed-size records from the dataplane) and its lvs.cf to
 * the backup over one authenticated TCP connection. IPVS's sync daemon (reference/ipvs.md
 * section 6) multicasts unauthenticated UDP; here every frame is authenticated and sequenced,
 * and a link that comes up is followed by a full dump (the owner sends it on 'link-up').
 *
 * Both nodes listen on `port` on their own addresses. While sending (the node is active) the
 * channel dials the partner (private address first, then public), with a backoff capped at 1 s
 * and jitter, and keeps one outgoing link. Incoming links are accepted from the partner's
 * addresses only, at most one established per peer node id (a newer one replaces an older
 * one, e.g. after the peer restarted and its old connection is half-open here).
 *
 * Events:
 * - receiving side: 'records' (records: Buffer, { dump }: whole records, a view the listener may
 *   keep), 'dump-begin' ({ count }), 'dump-end' ({ count, received }), 'config' (ConfigPayload,
 *   respond(result) => boolean: false once the link is gone or after the first answer);
 * - sending side: 'config-result' (ConfigResult), 'resync-needed' () after records were dropped
 *   for backpressure and the socket drained;
 * - both: 'link-up' (LinkEvent), 'link-down' (LinkDownEvent), 'rejected' (SyncRejectedEvent).
 */
import { EventEmitter } from 'node:events';
import { statSync } from 'node:fs';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { native } from '../dataplane/native.js';
import type { Logger } from '../director/types.js';
import { LvsError } from '../errors.js';
import {
  ALLOWED_FROM, AUTH_BYTES, FRAME_HEADER_BYTES, FRAME_OVERHEAD, FRAME_TYPE_NAMES, FrameMac, HELLO_BYTES,
  SYNC_DEFAULT_PORT, authMac, checkFrameLength, checkMagic, decodeConfig, decodeConfigResult, decodeCount,
  decodeFrame, decodeHello, decodeStamp, encodeConfig, encodeConfigResult, encodeCount, encodeFrame, encodeHello,
  encodeStamp, newNonce, sealFrame, verifyAuth,
  type ConfigPayload, type FrameType, type Hello, type SyncRejectReason, type SyncRole,
} from './sync-wire.js';

export interface SyncOptions {
  /** This node's sync addresses: the channel listens on each and dials from the matching one. */
  local: { public: string; private?: string };
  /** The partner's sync addresses: dialed private first, then public; accepted only from these. */
  partner: { public: string; private?: string };
  /** TCP port, default 8848 (IPVS's sync port). */
  port?: number;
  /** The shared key (readKeyFile()), at least 16 bytes. */
  key: Buffer;
  /** Size of one record (the dataplane's SYNC_RECORD_BYTES), 1..65535; both nodes must agree. */
  recordBytes: number;
  /** This node's id (0..2^32-1), unique in the pair. Default: derived from local.public. */
  nodeId?: number;
  /** A partly filled batch of records is sent after this many ms (default 20, as IPVS). */
  flushMs?: number;
  /** A batch is sent when it holds this many bytes (default 64 KiB, rounded down to whole records). */
  batchBytes?: number;
  /** Largest frame either side accepts, bytes (default 1 MiB). */
  maxFrameBytes?: number;
  /** Bytes queued on the outgoing socket above which records are dropped (default 8 MiB). */
  maxQueuedBytes?: number;
  /** A connection that has not completed its handshake after this many ms is closed (default 5000). */
  handshakeTimeoutMs?: number;
  /** One connect attempt's timeout, ms (default 2000). */
  connectTimeoutMs?: number;
  /** The dialer pings this often when the link is up, ms (default 1000). */
  pingIntervalMs?: number;
  /** A link on which nothing arrived for this long is closed, ms (default 5000). */
  idleTimeoutMs?: number;
  /** Upper bound of the dial backoff, ms (default 1000). */
  maxBackoffMs?: number;
  /** Minimum ms between two log lines about refusals from one source (default 60 000). */
  rejectLogIntervalMs?: number;
  /**
   * A named network namespace (ip netns) for the sockets. When the calling thread is not in it
   * already, start() moves the JS thread there for good (host.enterNetns, as lvsd --netns does).
   * Default: the namespace the thread is in.
   */
  netns?: string;
  logger?: Logger;
}

export interface LinkPeer { address: string; port: number; nodeId: number }
export type LinkDirection = 'outgoing' | 'incoming';
export interface LinkEvent { peer: LinkPeer; direction: LinkDirection }
export interface LinkDownEvent extends LinkEvent { reason: string }
export interface SyncRejectedEvent { from: string; reason: SyncRejectReason; detail: string }
export interface DumpEndEvent { count: number; received: number }
export type ConfigResponder = (result: { ok: boolean; errors?: string[] }) => boolean;

export interface FrameCounters { frames: number; bytes: number }
export interface SyncStats {
  links: {
    /** Established links now (outgoing + incoming). */
    up: number;
    /** Links that completed the handshake, ever. */
    established: number;
    /** Established links that went down. */
    lost: number;
    /** Connect attempts and how many failed before a TCP connection was made. */
    dials: number;
    dialFailures: number;
  };
  sent: Record<FrameType, FrameCounters>;
  received: Record<FrameType, FrameCounters>;
  records: { sent: number; received: number };
  /** What was not sent: records (no link / backpressure), whole dumps and configs. */
  dropped: { noLink: number; backpressure: number; dumps: number; configs: number };
  rejected: Partial<Record<SyncRejectReason, number>>;
  /** Highest number of bytes seen queued on an outgoing socket (Node's side of it). */
  queuedBytesPeak: number;
  /** Last PING round trip on the outgoing link, ms. */
  rttMs: number | undefined;
}

const silent: Logger = { info() {}, warn() {}, error() {}, debug() {} };
const MAX_PENDING_HANDSHAKES = 8;

function addrKey(a: string | undefined): string {
  if (a === undefined) return '?';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

function counters(): Record<FrameType, FrameCounters> {
  return Object.fromEntries(FRAME_TYPE_NAMES.map((t) => [t, { frames: 0, bytes: 0 }])) as Record<FrameType, FrameCounters>;
}

/** One TCP connection: handshake, then authenticated frames in both directions. */
class Link {
  state: 'hello' | 'auth' | 'up' | 'closed' = 'hello';
  readonly from: string;
  readonly remotePort: number;
  peer: Hello | undefined;
  private readonly ownHello: Buffer;
  private peerHello: Buffer | undefined;
  private sendMac: FrameMac | undefined;
  private recvMac: FrameMac | undefined;
  private sendSeq = 0n;
  private recvSeq = 1n;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private magicChecked = false;
  private frameBytes = 0; // bytes of the frame being read, once its length is known
  private handshakeTimer: NodeJS.Timeout | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private lastRx = performance.now();
  private socketError: string | undefined;
  /** Bytes handed to the socket on this link, and the offset where the last dump sent ends. */
  private written = 0;
  dumpEnd = 0;
  dump: { count: number; received: number } | undefined;

  constructor(private readonly ch: SyncChannel, readonly sock: net.Socket, readonly role: SyncRole) {
    this.from = addrKey(sock.remoteAddress);
    this.remotePort = sock.remotePort ?? 0;
    this.ownHello = encodeHello({ role, recordBytes: ch.recordBytes, nodeId: ch.nodeId, nonce: newNonce() });
    sock.setNoDelay(true);
    sock.setKeepAlive(true, 1000);
    sock.on('data', (d: Buffer) => this.onData(d));
    sock.on('error', (e: NodeJS.ErrnoException) => { this.socketError = e.code ?? e.message; });
    sock.on('close', () => this.close(this.socketError !== undefined ? `socket error ${this.socketError}` : 'closed by peer'));
    sock.on('drain', () => ch.onDrain(this));
    this.handshakeTimer = setTimeout(() => this.reject('handshake-timeout', `no complete handshake within ${ch.handshakeTimeoutMs} ms`), ch.handshakeTimeoutMs);
    this.raw(this.ownHello);
  }

  get direction(): LinkDirection {
    return this.role === 'dialer' ? 'outgoing' : 'incoming';
  }

  get peerInfo(): LinkPeer {
    return { address: this.from, port: this.remotePort, nodeId: this.peer?.nodeId ?? 0 };
  }

  get queued(): number {
    return this.sock.writableLength;
  }

  /** Offset (in bytes written on this link) up to which everything was sent. */
  get sentOffset(): number {
    return this.written;
  }

  /**
   * Bytes queued on the socket beyond the last dump: a dump (bounded by the table the owner
   * holds) is queued whole, and records that follow it are not dropped just because it is big.
   */
  get queuedBeyondDump(): number {
    const q = this.sock.writableLength;
    const dispatched = this.written - q;
    return q - Math.max(0, this.dumpEnd - dispatched);
  }

  private raw(b: Buffer): void {
    this.written += b.length;
    this.sock.write(b);
  }

  /** Send one frame (only when up). */
  send(type: FrameType, payload: Buffer): boolean {
    if (this.state !== 'up') return false;
    this.sendSeq += 1n;
    return this.write(type, encodeFrame(this.sendMac!, type, this.sendSeq, payload), payload.length);
  }

  /** Send a frame whose payload the caller wrote in place at FRAME_HEADER_BYTES of `buf`. */
  sendInPlace(type: FrameType, buf: Buffer, payloadBytes: number): boolean {
    if (this.state !== 'up') return false;
    this.sendSeq += 1n;
    return this.write(type, sealFrame(this.sendMac!, buf, type, this.sendSeq, payloadBytes), payloadBytes);
  }

  private write(type: FrameType, frame: Buffer, payloadBytes: number): boolean {
    const s = this.ch.stats;
    s.sent[type].frames++;
    s.sent[type].bytes += frame.length;
    if (type === 'records') s.records.sent += payloadBytes / this.ch.recordBytes;
    this.raw(frame);
    if (this.sock.writableLength > s.queuedBytesPeak) s.queuedBytesPeak = this.sock.writableLength;
    return true;
  }

  close(reason: string): void {
    if (this.state === 'closed') return;
    const wasUp = this.state === 'up';
    this.state = 'closed';
    clearTimeout(this.handshakeTimer);
    clearInterval(this.tickTimer);
    this.chunks = [];
    this.buffered = 0;
    this.sock.destroy();
    this.ch.onLinkClosed(this, reason, wasUp);
  }

  reject(reason: SyncRejectReason, detail: string): void {
    if (this.state === 'closed') return;
    this.ch.refuse(this.from, reason, detail);
    this.close(reason);
  }

  private onData(d: Buffer): void {
    if (this.state === 'closed') return;
    if (this.state === 'up') this.lastRx = performance.now();
    this.chunks.push(d);
    this.buffered += d.length;
    try {
      this.process();
    } catch (e) {
      // Decoders do not throw: this is a bug, here or in an event listener. The link goes (the
      // next one starts with a full resync), the process stays.
      const msg = (e as Error).message;
      this.ch.log.error({ event: 'sync-error', from: this.from, err: msg }, `sync: link with ${this.from} closed after an internal error: ${msg}`);
      this.close(`internal error: ${msg}`);
    }
  }

  /** Consume `n` buffered bytes (n <= buffered). */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    this.buffered -= n;
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let o = 0;
    while (o < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - o);
      c.copy(out, o, 0, k);
      o += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    return out;
  }

  /** The first 4 buffered bytes as a big-endian u32 (buffered >= 4), not consumed. */
  private peekU32(): number {
    const first = this.chunks[0]!;
    if (first.length >= 4) return first.readUInt32BE(0);
    const b = Buffer.alloc(4);
    let o = 0;
    for (const c of this.chunks) {
      const k = Math.min(c.length, 4 - o);
      c.copy(b, o, 0, k);
      o += k;
      if (o === 4) break;
    }
    return b.readUInt32BE(0);
  }

  private process(): void {
    for (;;) {
      if (this.state === 'closed') return;
      if (this.state === 'hello') {
        if (!this.magicChecked) {
          if (this.buffered < 4) return;
          const b = Buffer.alloc(4);
          b.writeUInt32BE(this.peekU32(), 0);
          const m = checkMagic(b);
          if (!m.ok) return this.reject(m.reason, m.detail);
          this.magicChecked = true;
        }
        if (this.buffered < HELLO_BYTES) return;
        this.onHello(this.take(HELLO_BYTES));
      } else if (this.state === 'auth') {
        if (this.buffered < AUTH_BYTES) return;
        this.onAuth(this.take(AUTH_BYTES));
      } else {
        if (this.frameBytes === 0) {
          if (this.buffered < 4) return;
          const len = checkFrameLength(this.peekU32(), this.ch.maxFrameBytes);
          if (!len.ok) return this.reject(len.reason, len.detail);
          this.frameBytes = len.value;
        }
        if (this.buffered < this.frameBytes) return;
        const frame = this.take(this.frameBytes);
        this.frameBytes = 0;
        this.onFrame(frame);
      }
    }
  }

  private onHello(buf: Buffer): void {
    const h = decodeHello(buf);
    if (!h.ok) return this.reject(h.reason, h.detail);
    const want: SyncRole = this.role === 'dialer' ? 'acceptor' : 'dialer';
    if (h.value.role !== want) return this.reject('bad-role', `sync peer says it is the ${h.value.role} on a connection where we are the ${this.role}`);
    if (h.value.recordBytes !== this.ch.recordBytes) return this.reject('record-size', `sync peer uses ${h.value.recordBytes}-byte records, we use ${this.ch.recordBytes} (different lvsd versions?)`);
    if (h.value.nodeId === this.ch.nodeId) return this.reject('reflected', `sync peer claims our own node id ${h.value.nodeId} (reflected, or both nodes have the same node id)`);
    this.peer = h.value;
    this.peerHello = Buffer.from(buf);
    this.state = 'auth';
    this.raw(authMac(this.ch.key, this.role, this.ownHello, this.peerHello));
  }

  private onAuth(auth: Buffer): void {
    if (!verifyAuth(this.ch.key, this.peer!.role, this.peerHello!, this.ownHello, auth)) {
      return this.reject('bad-auth', 'sync peer failed to prove the shared key (wrong key, or a replayed or reflected handshake)');
    }
    const ownNonce = this.ownHello.subarray(12, 28);
    const dialerNonce = this.role === 'dialer' ? ownNonce : this.peer!.nonce;
    const acceptorNonce = this.role === 'dialer' ? this.peer!.nonce : ownNonce;
    this.sendMac = new FrameMac(this.ch.key, this.role, dialerNonce, acceptorNonce);
    this.recvMac = new FrameMac(this.ch.key, this.peer!.role, dialerNonce, acceptorNonce);
    this.state = 'up';
    clearTimeout(this.handshakeTimer);
    this.lastRx = performance.now();
    const every = Math.max(10, Math.min(this.ch.pingIntervalMs, this.ch.idleTimeoutMs / 2));
    this.tickTimer = setInterval(() => this.tick(), every);
    this.ch.onLinkUp(this);
  }

  private tick(): void {
    if (this.state !== 'up') return;
    const quiet = performance.now() - this.lastRx;
    if (quiet > this.ch.idleTimeoutMs) {
      this.ch.log.warn({ event: 'sync-idle', from: this.from, ms: Math.round(quiet) }, `sync: nothing from ${this.from} for ${Math.round(quiet)} ms; link closed`);
      return this.close('idle');
    }
    if (this.role === 'dialer') this.send('ping', encodeStamp(process.hrtime.bigint() / 1000n));
  }

  private onFrame(buf: Buffer): void {
    const d = decodeFrame(this.recvMac!, buf, this.recvSeq);
    if (!d.ok) return this.reject(d.reason, d.detail);
    this.recvSeq += 1n;
    const { type, payload } = d.value;
    const peerRole = this.peer!.role;
    if (!ALLOWED_FROM[peerRole].has(type)) return this.reject('unexpected-type', `sync ${type} frame from the ${peerRole}`);
    const s = this.ch.stats;
    s.received[type].frames++;
    s.received[type].bytes += buf.length;
    switch (type) {
      case 'records': {
        if (payload.length === 0 || payload.length % this.ch.recordBytes !== 0) {
          return this.reject('bad-payload', `sync records payload of ${payload.length} bytes is not a whole number of ${this.ch.recordBytes}-byte records`);
        }
        const n = payload.length / this.ch.recordBytes;
        s.records.received += n;
        if (this.dump !== undefined) this.dump.received += n;
        this.ch.emit('records', payload, { dump: this.dump !== undefined });
        return;
      }
      case 'dump-begin': {
        const c = decodeCount(payload);
        if (!c.ok) return this.reject(c.reason, c.detail);
        if (this.dump !== undefined) return this.reject('unexpected-type', 'sync dump-begin inside a dump');
        this.dump = { count: c.value, received: 0 };
        this.ch.emit('dump-begin', { count: c.value });
        return;
      }
      case 'dump-end': {
        const c = decodeCount(payload);
        if (!c.ok) return this.reject(c.reason, c.detail);
        const dump = this.dump;
        if (dump === undefined) return this.reject('unexpected-type', 'sync dump-end without dump-begin');
        if (c.value !== dump.count) return this.reject('bad-payload', `sync dump-end count ${c.value} differs from dump-begin ${dump.count}`);
        this.dump = undefined;
        const ev: DumpEndEvent = { count: dump.count, received: dump.received };
        this.ch.emit('dump-end', ev);
        return;
      }
      case 'config': {
        const c = decodeConfig(payload);
        if (!c.ok) return this.reject(c.reason, c.detail);
        const cfg = c.value;
        let answered = false;
        const respond: ConfigResponder = (r) => {
          if (answered) return false;
          answered = true;
          return this.send('config-result', encodeConfigResult({ serialNo: cfg.serialNo, digest: cfg.digest, ok: r.ok, errors: r.errors ?? [] }));
        };
        this.ch.emit('config', cfg, respond);
        return;
      }
      case 'config-result': {
        const r = decodeConfigResult(payload);
        if (!r.ok) return this.reject(r.reason, r.detail);
        this.ch.emit('config-result', r.value);
        return;
      }
      case 'ping': {
        const t = decodeStamp(payload);
        if (!t.ok) return this.reject(t.reason, t.detail);
        this.send('pong', payload);
        return;
      }
      case 'resync-request': {
        if (payload.length !== 0) return this.reject('bad-payload', `sync resync-request with ${payload.length} payload bytes`);
        this.ch.log.info({ event: 'sync-resync-requested', from: this.from }, `sync: ${this.from} asks for a full resync`);
        this.ch.emit('resync-needed');
        return;
      }
      case 'pong': {
        const t = decodeStamp(payload);
        if (!t.ok) return this.reject(t.reason, t.detail);
        const now = process.hrtime.bigint() / 1000n;
        if (now >= t.value) s.rttMs = Number(now - t.value) / 1000;
        return;
      }
    }
  }
}

/** The sync channel of one node (see the file comment). */
export class SyncChannel extends EventEmitter {
  readonly port: number;
  readonly nodeId: number;
  readonly key: Buffer;
  readonly recordBytes: number;
  readonly maxFrameBytes: number;
  readonly handshakeTimeoutMs: number;
  readonly pingIntervalMs: number;
  readonly idleTimeoutMs: number;
  readonly log: Logger;
  readonly stats: SyncStats = {
    links: { up: 0, established: 0, lost: 0, dials: 0, dialFailures: 0 },
    sent: counters(),
    received: counters(),
    records: { sent: 0, received: 0 },
    dropped: { noLink: 0, backpressure: 0, dumps: 0, configs: 0 },
    rejected: {},
    queuedBytesPeak: 0,
    rttMs: undefined,
  };

  private readonly flushMs: number;
  private readonly batchCap: number;
  private readonly maxQueuedBytes: number;
  private readonly connectTimeoutMs: number;
  private readonly maxBackoffMs: number;
  private readonly rejectLogIntervalMs: number;
  private readonly partnerAddrs: string[];
  private readonly dialTargets: { remote: string; local: string | undefined }[];
  private readonly servers: net.Server[] = [];
  private readonly pending = new Set<Link>();
  private readonly incoming = new Map<number, Link>();
  private readonly lastRejectLog = new Map<string, number>();
  private started = false;
  private closed = false;
  private sending = false;
  private out: Link | undefined;
  private dialing: Link | undefined;
  private connecting: net.Socket | undefined;
  private dialTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private resyncPending = false;
  // The batch is built in place in a frame buffer: header | records | room for the MAC.
  private batch: Buffer | undefined;
  private batchFill = 0;
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: SyncOptions) {
    super();
    const bad = (field: string, why: string) => new LvsError('LVS_INVALID_OPTION', `sync ${field}: ${why}`, { field });
    const ms = (field: keyof SyncOptions, v: number | undefined, dflt: number, min = 1): number => {
      const x = v ?? dflt;
      if (!Number.isFinite(x) || x < min) throw bad(field, `${v} is not a number of milliseconds >= ${min}`);
      return x;
    };
    this.port = opts.port ?? SYNC_DEFAULT_PORT;
    if (!Number.isInteger(this.port) || this.port < 1 || this.port > 65535) throw bad('port', `${opts.port} is not a port 1..65535`);
    if (!Buffer.isBuffer(opts.key) || opts.key.length < 16) throw bad('key', 'the sync channel needs a shared key of at least 16 bytes (readKeyFile)');
    this.key = opts.key;
    this.recordBytes = opts.recordBytes;
    if (!Number.isInteger(this.recordBytes) || this.recordBytes < 1 || this.recordBytes > 0xffff) throw bad('recordBytes', `${opts.recordBytes} is not a record size 1..65535`);
    for (const [f, a] of [['local.public', opts.local.public], ['local.private', opts.local.private], ['partner.public', opts.partner.public], ['partner.private', opts.partner.private]] as const) {
      if (a !== undefined && net.isIP(a) === 0) throw new LvsError('LVS_INVALID_ADDRESS', `sync ${f}: ${a} is not an IP address`, { field: f });
    }
    this.nodeId = opts.nodeId ?? createHash('sha256').update(opts.local.public).digest().readUInt32BE(0);
    if (!Number.isInteger(this.nodeId) || this.nodeId < 0 || this.nodeId > 0xffffffff) throw bad('nodeId', 'must be an integer 0..2^32-1');
    this.maxFrameBytes = opts.maxFrameBytes ?? 1 << 20;
    if (!Number.isInteger(this.maxFrameBytes) || this.maxFrameBytes < FRAME_OVERHEAD + this.recordBytes || this.maxFrameBytes > 64 << 20) {
      throw bad('maxFrameBytes', `must be an integer from one record plus ${FRAME_OVERHEAD} bytes to 64 MiB`);
    }
    const batchBytes = opts.batchBytes ?? 64 << 10;
    if (!Number.isInteger(batchBytes) || batchBytes < this.recordBytes || batchBytes > this.maxFrameBytes - FRAME_OVERHEAD) {
      throw bad('batchBytes', `must hold at least one record and fit a frame (${this.maxFrameBytes - FRAME_OVERHEAD} bytes)`);
    }
    this.batchCap = Math.floor(batchBytes / this.recordBytes) * this.recordBytes;
    this.maxQueuedBytes = opts.maxQueuedBytes ?? 8 << 20;
    if (!Number.isInteger(this.maxQueuedBytes) || this.maxQueuedBytes < 1) throw bad('maxQueuedBytes', 'must be a positive integer');
    this.flushMs = ms('flushMs', opts.flushMs, 20, 0);
    this.handshakeTimeoutMs = ms('handshakeTimeoutMs', opts.handshakeTimeoutMs, 5000);
    this.connectTimeoutMs = ms('connectTimeoutMs', opts.connectTimeoutMs, 2000);
    this.pingIntervalMs = ms('pingIntervalMs', opts.pingIntervalMs, 1000);
    this.idleTimeoutMs = ms('idleTimeoutMs', opts.idleTimeoutMs, 5000);
    if (this.idleTimeoutMs <= this.pingIntervalMs) throw bad('idleTimeoutMs', 'must be longer than pingIntervalMs');
    this.maxBackoffMs = ms('maxBackoffMs', opts.maxBackoffMs, 1000);
    this.rejectLogIntervalMs = ms('rejectLogIntervalMs', opts.rejectLogIntervalMs, 60_000, 0);
    this.log = opts.logger ?? silent;
    const { local, partner } = opts;
    this.partnerAddrs = [...new Set([partner.public, ...(partner.private !== undefined ? [partner.private] : [])])];
    this.dialTargets = [];
    if (partner.private !== undefined && partner.private !== partner.public) this.dialTargets.push({ remote: partner.private, local: local.private });
    this.dialTargets.push({ remote: partner.public, local: local.public });
  }

  /** Listen on the local addresses. */
  async start(): Promise<void> {
    if (this.started) return;
    if (this.closed) throw new LvsError('LVS_CLOSED', 'sync channel is closed');
    if (this.opts.netns !== undefined) enterNetnsIfNeeded(this.opts.netns);
    const addrs = [...new Set([this.opts.local.public, ...(this.opts.local.private !== undefined ? [this.opts.local.private] : [])])];
    try {
      for (const a of addrs) {
        const srv = net.createServer((sock) => this.accept(sock));
        await new Promise<void>((res, rej) => {
          srv.once('error', rej);
          srv.listen({ host: a, port: this.port, exclusive: true }, () => { srv.off('error', rej); res(); });
        });
        srv.on('error', (e) => this.log.warn({ event: 'sync-error', address: a, err: e.message }, `sync: listener on ${a}:${this.port}: ${e.message}`));
        this.servers.push(srv);
      }
    } catch (cause) {
      for (const s of this.servers.splice(0)) s.close();
      const e = cause as NodeJS.ErrnoException;
      throw new LvsError('LVS_HOST', `sync: listen on port ${this.port} failed: ${e.code ?? ''} ${e.message}`, { cause });
    }
    this.started = true;
    this.log.info({ event: 'sync-listening', addresses: addrs, port: this.port }, `sync: listening on ${addrs.map((a) => `${a}:${this.port}`).join(', ')}`);
  }

  /**
   * Whether this node sends (it is active): on, it dials the partner and keeps the link up; off,
   * it closes the outgoing link and stops dialing. Incoming links are not affected.
   */
  setSending(on: boolean): void {
    if (this.closed || on === this.sending) return;
    if (on) {
      this.sending = true;
      this.failures = 0;
      this.dialRound();
    } else {
      this.stopSending('sending off');
    }
  }

  private stopSending(reason: string): void {
    this.sending = false;
    clearTimeout(this.dialTimer);
    this.dialTimer = undefined;
    this.connecting?.destroy();
    this.connecting = undefined;
    this.dialing?.close(reason);
    this.out?.close(reason);
  }

  /** True while the outgoing link is established. */
  get linked(): boolean {
    return this.out !== undefined;
  }

  /** Bytes queued on the outgoing socket now (Node's side), 0 without a link. */
  get queuedBytes(): number {
    return this.out?.queued ?? 0;
  }

  /**
   * Queue whole records for the partner; they leave in batches (at `batchBytes` or after
   * `flushMs`). Without a link, or with more than `maxQueuedBytes` waiting on the socket, they
   * are dropped and counted (false); the dump that follows 'link-up' or 'resync-needed' covers
   * them. The bytes are copied: the caller may reuse `records`.
   */
  sendRecords(records: Buffer): boolean {
    this.checkRecords(records, 'sendRecords');
    const n = records.length / this.recordBytes;
    if (n === 0) return true;
    const link = this.out;
    if (link === undefined) {
      this.stats.dropped.noLink += n;
      return false;
    }
    if (this.overBound(link)) {
      this.stats.dropped.backpressure += n;
      return false;
    }
    let o = 0;
    while (o < records.length) {
      if (this.batch === undefined) {
        this.batch = Buffer.allocUnsafe(FRAME_OVERHEAD + this.batchCap);
        this.batchFill = 0;
      }
      const k = Math.min(this.batchCap - this.batchFill, records.length - o);
      records.copy(this.batch, FRAME_HEADER_BYTES + this.batchFill, o, o + k);
      this.batchFill += k;
      o += k;
      if (this.batchFill === this.batchCap) this.flush();
    }
    if (this.batch !== undefined && this.flushTimer === undefined) {
      this.flushTimer = setTimeout(() => { this.flushTimer = undefined; this.flush(); }, this.flushMs);
    }
    return true;
  }

  /** Send the partly filled batch now. */
  flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const batch = this.batch;
    const fill = this.batchFill;
    this.batch = undefined;
    this.batchFill = 0;
    if (batch === undefined || fill === 0) return;
    const link = this.out;
    const n = fill / this.recordBytes;
    if (link === undefined) {
      this.stats.dropped.noLink += n;
      return;
    }
    if (this.overBound(link)) {
      this.stats.dropped.backpressure += n;
      return;
    }
    link.sendInPlace('records', batch, fill);
  }

  /**
   * A full table: DUMP_BEGIN {count}, the records in frames of `batchBytes`, DUMP_END {count},
   * after any batched records. False (and counted) without a link or while the socket is over
   * `maxQueuedBytes` ('resync-needed' follows when it drains).
   */
  sendDump(records: Buffer): boolean {
    this.checkRecords(records, 'sendDump');
    const link = this.out;
    if (link === undefined) {
      this.stats.dropped.dumps++;
      return false;
    }
    this.flush();
    if (this.overBound(link)) {
      this.stats.dropped.dumps++;
      return false;
    }
    const count = records.length / this.recordBytes;
    if (count > 0xffffffff) throw new LvsError('LVS_INVALID_ARGUMENT', `sync dump of ${count} records: at most 2^32-1`);
    link.send('dump-begin', encodeCount(count));
    for (let o = 0; o < records.length; o += this.batchCap) {
      const k = Math.min(this.batchCap, records.length - o);
      const frame = Buffer.allocUnsafe(FRAME_OVERHEAD + k);
      records.copy(frame, FRAME_HEADER_BYTES, o, o + k);
      link.sendInPlace('records', frame, k);
    }
    link.send('dump-end', encodeCount(count));
    link.dumpEnd = link.sentOffset;
    this.log.info({ event: 'sync-dump-sent', to: link.from, count }, `sync: full table sent to ${link.from} (${count} entries)`);
    return true;
  }

  /** The configuration for the partner to validate and apply; its answer is 'config-result'. */
  sendConfig(c: ConfigPayload): boolean {
    const payload = encodeConfig(c);
    if (payload.length + FRAME_OVERHEAD > this.maxFrameBytes) {
      throw new LvsError('LVS_INVALID_ARGUMENT', `sync config of ${payload.length} bytes does not fit a frame (maximum ${this.maxFrameBytes - FRAME_OVERHEAD})`, { field: 'text' });
    }
    const link = this.out;
    if (link === undefined) {
      this.stats.dropped.configs++;
      return false;
    }
    this.flush();
    if (this.overBound(link)) {
      this.stats.dropped.configs++;
      return false;
    }
    return link.send('config', payload);
  }

  /** Stop dialing, close every link and the listeners. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.stopSending('stopped');
    this.closed = true;
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.batch = undefined;
    for (const l of [...this.pending, ...this.incoming.values()]) l.close('stopped');
    await Promise.all(this.servers.splice(0).map((s) => new Promise<void>((res) => s.close(() => res()))));
  }

  // ---------------------------------------------------------------- internals (Link calls these)

  private checkRecords(records: Buffer, what: string): void {
    if (!Buffer.isBuffer(records)) throw new LvsError('LVS_INVALID_ARGUMENT', `sync ${what}: expected a Buffer`);
    if (records.length % this.recordBytes !== 0) {
      throw new LvsError('LVS_INVALID_ARGUMENT', `sync ${what}: ${records.length} bytes is not a whole number of ${this.recordBytes}-byte records`);
    }
  }

  private overBound(link: Link): boolean {
    if (link.queuedBeyondDump <= this.maxQueuedBytes) return false;
    if (!this.resyncPending) {
      this.resyncPending = true;
      this.log.warn({ event: 'sync-backpressure', to: link.from, queued: link.queued }, `sync: ${link.queued} bytes waiting for ${link.from}; dropping records until it drains, then a full resync`);
    }
    return true;
  }

  /**
   * Backup: ask the active router for a full dump (records it sent arrived before this router
   * could place them). Sent on every incoming link; false when there is none.
   */
  requestResync(): boolean {
    let sent = false;
    for (const l of this.incoming.values()) sent = l.send('resync-request', Buffer.alloc(0)) || sent;
    return sent;
  }

  /** @internal */
  onDrain(link: Link): void {
    if (link !== this.out || !this.resyncPending) return;
    this.resyncPending = false;
    this.log.info({ event: 'sync-resync-needed', to: link.from }, `sync: ${link.from} caught up; a full resync is needed`);
    this.emit('resync-needed');
  }

  /** @internal Count, emit and (at most once per source per interval) log a refusal. */
  refuse(from: string, reason: SyncRejectReason, detail: string): void {
    this.stats.rejected[reason] = (this.stats.rejected[reason] ?? 0) + 1;
    const now = performance.now();
    const last = this.lastRejectLog.get(from);
    if (last === undefined || now - last >= this.rejectLogIntervalMs) {
      this.lastRejectLog.set(from, now);
      if (this.lastRejectLog.size > 1024) {
        const first = this.lastRejectLog.keys().next().value;
        if (first !== undefined) this.lastRejectLog.delete(first);
      }
      this.log.warn({ event: 'sync-rejected', from, reason }, `sync: connection from ${from} refused: ${detail} (further refusals from ${from} are not logged for ${Math.round(this.rejectLogIntervalMs / 1000)} s)`);
    }
    const ev: SyncRejectedEvent = { from, reason, detail };
    this.emit('rejected', ev);
  }

  private accept(sock: net.Socket): void {
    const from = addrKey(sock.remoteAddress);
    if (this.closed) {
      sock.destroy();
      return;
    }
    if (!this.partnerAddrs.includes(from)) {
      sock.destroy();
      this.refuse(from, 'unexpected-source', `sync connection from ${from}, which is not the partner (${this.partnerAddrs.join(', ')})`);
      return;
    }
    if (this.pending.size >= MAX_PENDING_HANDSHAKES) {
      sock.destroy();
      this.refuse(from, 'busy', `sync connection from ${from} refused: ${this.pending.size} connections are still in their handshake`);
      return;
    }
    sock.on('error', () => { /* the Link records it; this covers the instant before it exists */ });
    this.pending.add(new Link(this, sock, 'acceptor'));
  }

  /** @internal */
  onLinkUp(link: Link): void {
    const peer = link.peerInfo;
    if (link.role === 'dialer') {
      this.dialing = undefined;
      this.out = link;
      this.failures = 0;
      this.resyncPending = false;
    } else {
      this.pending.delete(link);
      const old = this.incoming.get(peer.nodeId);
      if (old !== undefined) old.close('replaced by a newer link');
      this.incoming.set(peer.nodeId, link);
    }
    this.stats.links.up++;
    this.stats.links.established++;
    this.log.info({ event: 'sync-link-up', peer: peer.address, nodeId: peer.nodeId, direction: link.direction }, `sync: ${link.direction} link with ${peer.address} (node ${peer.nodeId}) up`);
    const ev: LinkEvent = { peer, direction: link.direction };
    this.emit('link-up', ev);
  }

  /** @internal */
  onLinkClosed(link: Link, reason: string, wasUp: boolean): void {
    this.pending.delete(link);
    if (this.incoming.get(link.peer?.nodeId ?? -1) === link) this.incoming.delete(link.peer!.nodeId);
    if (link === this.out) {
      this.out = undefined;
      // Records batched for this link go with it (the resync after the next link-up covers them).
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
      if (this.batch !== undefined) this.stats.dropped.noLink += this.batchFill / this.recordBytes;
      this.batch = undefined;
      this.batchFill = 0;
      this.resyncPending = false;
    }
    if (link === this.dialing) {
      this.dialing = undefined;
      this.failures++;
    }
    if (wasUp) {
      this.stats.links.up--;
      this.stats.links.lost++;
      const peer = link.peerInfo;
      this.log.warn({ event: 'sync-link-down', peer: peer.address, nodeId: peer.nodeId, direction: link.direction, reason }, `sync: ${link.direction} link with ${peer.address} down: ${reason}`);
      const ev: LinkDownEvent = { peer, direction: link.direction, reason };
      this.emit('link-down', ev);
    }
    if (link.role === 'dialer') this.scheduleDial();
  }

  private scheduleDial(): void {
    if (!this.sending || this.closed || this.dialTimer !== undefined || this.out !== undefined || this.dialing !== undefined || this.connecting !== undefined) return;
    // Exponential from 100 ms, capped at maxBackoffMs, with "equal jitter" (half fixed, half
    // random) so two nodes never dial in lock step; the first retry after a lost link is quick.
    const base = this.failures === 0 ? 50 : Math.min(this.maxBackoffMs, 100 * 2 ** Math.min(this.failures - 1, 20));
    const delay = base / 2 + Math.random() * (base / 2);
    this.dialTimer = setTimeout(() => { this.dialTimer = undefined; this.dialRound(); }, delay);
  }

  private dialRound(): void {
    if (!this.sending || this.closed || this.out !== undefined || this.dialing !== undefined || this.connecting !== undefined) return;
    this.tryTarget(0);
  }

  private tryTarget(i: number): void {
    const t = this.dialTargets[i];
    if (t === undefined) {
      this.failures++;
      this.scheduleDial();
      return;
    }
    this.stats.links.dials++;
    const sock = net.connect({ host: t.remote, port: this.port, ...(t.local !== undefined ? { localAddress: t.local } : {}) });
    this.connecting = sock;
    let settled = false;
    const timer = setTimeout(() => sock.destroy(new Error(`no answer within ${this.connectTimeoutMs} ms`)), this.connectTimeoutMs);
    sock.once('connect', () => {
      settled = true;
      clearTimeout(timer);
      this.connecting = undefined;
      if (!this.sending || this.closed) {
        sock.destroy();
        return;
      }
      this.dialing = new Link(this, sock, 'dialer');
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      if (settled) return; // after connect the Link has it
      settled = true;
      clearTimeout(timer);
      if (this.connecting === sock) this.connecting = undefined;
      this.stats.links.dialFailures++;
      const key = `dial ${t.remote}`;
      const now = performance.now();
      const last = this.lastRejectLog.get(key);
      if (last === undefined || now - last >= this.rejectLogIntervalMs) {
        this.lastRejectLog.set(key, now);
        this.log.warn({ event: 'sync-dial-failed', to: t.remote, err: e.code ?? e.message }, `sync: connecting to ${t.remote}:${this.port} failed: ${e.code ?? ''} ${e.message} (retrying; not logged again for ${Math.round(this.rejectLogIntervalMs / 1000)} s)`);
      }
      if (this.sending && !this.closed) this.tryTarget(i + 1);
    });
  }
}

/** Join the named namespace unless this thread is in it already (same inode). */
function enterNetnsIfNeeded(name: string): void {
  let target;
  try {
    target = statSync(`/run/netns/${name}`);
  } catch (cause) {
    throw new LvsError('LVS_NETNS', `sync: network namespace ${name}: ${(cause as Error).message}`, { cause });
  }
  const here = statSync('/proc/thread-self/ns/net');
  if (here.ino === target.ino && here.dev === target.dev) return;
  native().host.enterNetns(name);
}
