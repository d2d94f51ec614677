/**
 * The heartbeat transport (Piranha's pulse, reference/piranha.md section 3): UDP sockets on the
 * node's own public (and private) address, a heartbeat every `keepalive` to the partner's
 * addresses, verification of what comes in, and the dead timer.
 *
 * Events:
 * - `heartbeat` (HeartbeatEvent): a valid heartbeat from the partner.
 * - `rejected` ({ from, reason, detail }): every refused packet (the log line is rate-limited).
 * - `dead`: once per silence of `deadtime`; `alive`: the first heartbeat after start or after dead.
 * - `log` ({ level, message }): log lines (also given to the `log` option).
 * - `error` (Error): a socket error after start (also logged; without a listener only logged).
 */
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { LvsError } from '../errors.js';
import {
  CONFIG_DIGEST_LENGTH, ReplayGuard, decode, encodeLvsd, encodePiranha, newBootId,
  type HeartbeatState, type RejectReason,
} from './heartbeat-wire.js';

/** Timers and clocks, injectable so tests step time instead of waiting for it. */
export interface Clock {
  /** Monotonic milliseconds (timers, dead time, rate limits). */
  now(): number;
  /** Wall clock, ms since the epoch (heartbeat timestamps). */
  wall(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wall: () => Date.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface HeartbeatOptions {
  /** 'lvsd' (authenticated, the default) or 'piranha' (bare magics, unauthenticated). */
  mode?: 'lvsd' | 'piranha';
  /** This node's addresses: heartbeat sockets bind here. */
  local: { public: string; private?: string };
  /** The partner's addresses: heartbeats go there and may only come from there. */
  partner: { public: string; private?: string };
  /** heartbeat_port, default 539. */
  port?: number;
  /** Seconds between heartbeats (fractions allowed). Default 2. */
  keepalive?: number;
  /** Seconds of silence before the partner is dead (fractions allowed). Default 5. */
  deadtime?: number;
  /** Shared key ('lvsd' mode), see readKeyFile(). */
  key?: Buffer;
  /** This node's id (0..2^32-1), unique in the pair. Default: derived from local.public. */
  nodeId?: number;
  priority?: number;
  isPrimary?: boolean;
  preempt?: boolean;
  serialNo?: number;
  /** 16 bytes (see configDigest()). Default: zeros. */
  configDigest?: Buffer;
  /** Timestamp window for a peer's new boot id, ms. Default 30 000. */
  replayWindowMs?: number;
  /** Minimum ms between two log lines about refused packets from one source. Default 60 000. */
  rejectLogIntervalMs?: number;
  clock?: Clock;
  log?: (level: 'info' | 'warn', message: string) => void;
}

export interface HeartbeatEvent {
  from: string;
  format: 'lvsd' | 'piranha';
  state: HeartbeatState;
  /** Only in 'lvsd' format. */
  path?: 'public' | 'private';
  nodeId?: number;
  isPrimary?: boolean;
  preempt?: boolean;
  priority?: number;
  sequence?: bigint;
  serialNo?: number;
  configDigest?: string;
  /** false when the partner's configuration digest differs from ours ('lvsd' format only). */
  configMatches?: boolean;
}

export interface RejectedEvent { from: string; reason: RejectReason; detail: string }

export interface HeartbeatStats {
  sent: number;
  sendErrors: number;
  received: number;
  rejected: Partial<Record<RejectReason, number>>;
}

/** The digest lvsd puts in its heartbeats: the first 16 bytes of SHA-256 over `text`. */
export function configDigest(text: string | Buffer): Buffer {
  return createHash('sha256').update(text).digest().subarray(0, CONFIG_DIGEST_LENGTH);
}

function addrKey(a: string): string {
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

export class Heartbeat extends EventEmitter {
  readonly mode: 'lvsd' | 'piranha';
  readonly port: number;
  readonly stats: HeartbeatStats = { sent: 0, sendErrors: 0, received: 0, rejected: {} };
  private readonly keepaliveMs: number;
  private readonly deadtimeMs: number;
  private readonly clock: Clock;
  private readonly key: Buffer | undefined;
  private readonly nodeId: number;
  private readonly bootId = newBootId();
  private sequence = 0n;
  private readonly replay: ReplayGuard;
  private readonly partnerAddrs: string[];
  private readonly sockets: { sock: dgram.Socket; local: string; dest: string[] }[] = [];
  private readonly lastRejectLog = new Map<string, number>();
  private readonly rejectLogIntervalMs: number;
  private digest: Buffer;
  private serialNo: number;
  private state: 'running' | 'stopped' = 'stopped';
  private sendTimer: unknown;
  private deadTimer: unknown;
  private lastHeard = 0;
  private partnerAlive = false;
  private deadReported = false;
  private started = false;
  private lastMismatchLogged: string | undefined;

  constructor(private readonly opts: HeartbeatOptions) {
    super();
    this.mode = opts.mode ?? 'lvsd';
    this.port = opts.port ?? 539;
    this.keepaliveMs = Math.round((opts.keepalive ?? 2) * 1000);
    this.deadtimeMs = Math.round((opts.deadtime ?? 5) * 1000);
    this.clock = opts.clock ?? systemClock;
    this.rejectLogIntervalMs = opts.rejectLogIntervalMs ?? 60_000;
    const bad = (field: string, why: string) => new LvsError('LVS_INVALID_OPTION', `heartbeat ${field}: ${why}`, { field });
    if (!Number.isInteger(this.port) || this.port < 1 || this.port > 65535) throw bad('port', `${opts.port} is not a port 1..65535`);
    if (!(this.keepaliveMs > 0)) throw bad('keepalive', 'must be more than 0 s');
    if (!(this.deadtimeMs > 0)) throw bad('deadtime', 'must be more than 0 s');
    for (const [f, a] of [['local.public', opts.local.public], ['local.private', opts.local.private], ['partner.public', opts.partner.public], ['partner.private', opts.partner.private]] as const) {
      if (a !== undefined && isIP(a) === 0) throw new LvsError('LVS_INVALID_ADDRESS', `heartbeat ${f}: ${a} is not an IP address`, { field: f });
    }
    if (this.mode === 'lvsd') {
      if (opts.key === undefined || opts.key.length < 16) throw bad('key', 'lvsd heartbeats need a shared key of at least 16 bytes (readKeyFile)');
      this.key = opts.key;
    }
    this.digest = opts.configDigest ?? Buffer.alloc(CONFIG_DIGEST_LENGTH);
    this.serialNo = opts.serialNo ?? 0;
    if (this.digest.length !== CONFIG_DIGEST_LENGTH) throw bad('configDigest', `must be ${CONFIG_DIGEST_LENGTH} bytes`);
    this.nodeId = opts.nodeId ?? (createHash('sha256').update(opts.local.public).digest().readUInt32BE(0));
    this.replay = new ReplayGuard({ windowMs: opts.replayWindowMs ?? 30_000, ownNodeId: this.nodeId });
    this.partnerAddrs = [opts.partner.public, ...(opts.partner.private !== undefined && opts.partner.private !== opts.partner.public ? [opts.partner.private] : [])];
  }

  /** Bind the sockets, send the first heartbeat and arm the timers. */
  async start(): Promise<void> {
    if (this.started) return;
    const { local, partner } = this.opts;
    const hasPrivate = local.private !== undefined && local.private !== local.public;
    const plan: { local: string; dest: string[] }[] = [];
    if (hasPrivate) {
      plan.push({ local: local.public, dest: [partner.public] });
      plan.push({ local: local.private!, dest: partner.private !== undefined && partner.private !== partner.public ? [partner.private] : [] });
    } else {
      plan.push({ local: local.public, dest: this.partnerAddrs });
    }
    try {
      for (const p of plan) {
        const sock = dgram.createSocket({ type: isIP(p.local) === 6 ? 'udp6' : 'udp4', reuseAddr: false });
        await new Promise<void>((res, rej) => {
          sock.once('error', rej);
          sock.bind(this.port, p.local, () => { sock.off('error', rej); res(); });
        });
        sock.on('error', (e) => {
          this.log('warn', `heartbeat socket on ${p.local}:${this.port}: ${e.message}`);
          if (this.listenerCount('error') > 0) this.emit('error', e);
        });
        sock.on('message', (msg, rinfo) => this.receive(msg, rinfo.address));
        this.sockets.push({ sock, local: p.local, dest: p.dest });
      }
    } catch (cause) {
      this.closeSockets();
      const e = cause as NodeJS.ErrnoException;
      throw new LvsError('LVS_HOST', `heartbeat: bind to port ${this.port} failed: ${e.code ?? ''} ${e.message}`, { cause });
    }
    this.started = true;
    this.lastHeard = this.clock.now();
    this.armDead(this.deadtimeMs);
    this.tick();
  }

  /** Stop sending and listening. */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.clock.clearTimer(this.sendTimer);
    this.clock.clearTimer(this.deadTimer);
    this.closeSockets();
  }

  /** The configuration our heartbeats describe changed (a reload, a pushed lvs.cf). */
  setConfig(serialNo: number, digest: Buffer): void {
    if (digest.length !== CONFIG_DIGEST_LENGTH) throw new LvsError('LVS_INVALID_OPTION', `configDigest: must be ${CONFIG_DIGEST_LENGTH} bytes`, { field: 'configDigest' });
    this.serialNo = serialNo;
    this.digest = digest;
    this.lastMismatchLogged = undefined;
  }

  /** The state sent in the periodic heartbeats. */
  setState(state: 'running' | 'stopped'): void {
    this.state = state;
  }

  get advertised(): 'running' | 'stopped' {
    return this.state;
  }

  get alive(): boolean {
    return this.partnerAlive;
  }

  /**
   * Send one heartbeat now (the election's "one last RUNNING", STOP-ME). In 'piranha' mode a
   * STOP-ME goes out as RUNNING: that is what makes an active Piranha backup stand down.
   */
  sendNow(state: HeartbeatState = this.state): void {
    if (!this.started) return;
    const partnerPrivate = this.opts.partner.private !== this.opts.partner.public ? this.opts.partner.private : undefined;
    for (const s of this.sockets) {
      for (const d of s.dest) {
        let buf: Buffer;
        if (this.mode === 'piranha') {
          buf = encodePiranha(state === 'stopped' ? 'stopped' : 'running');
        } else {
          // One sequence number per datagram; the path bit keeps the two paths apart.
          this.sequence += 1n;
          buf = encodeLvsd({
            state,
            isPrimary: this.opts.isPrimary ?? false,
            preempt: this.opts.preempt ?? false,
            path: d === partnerPrivate ? 'private' : 'public',
            priority: this.opts.priority ?? 100,
            nodeId: this.nodeId,
            bootId: this.bootId,
            sequence: this.sequence,
            timestamp: Math.max(0, Math.round(this.clock.wall())),
            serialNo: this.serialNo,
            configDigest: this.digest,
          }, this.key!);
        }
        s.sock.send(buf, this.port, d, (err) => {
          if (err) this.stats.sendErrors++;
          else this.stats.sent++;
        });
      }
    }
  }

  private closeSockets(): void {
    for (const s of this.sockets) {
      try { s.sock.close(); } catch { /* already closed */ }
    }
    this.sockets.length = 0;
  }

  private tick(): void {
    if (!this.started) return;
    this.sendNow();
    this.sendTimer = this.clock.setTimer(() => this.tick(), this.keepaliveMs);
  }

  private armDead(ms: number): void {
    this.clock.clearTimer(this.deadTimer);
    this.deadTimer = this.clock.setTimer(() => this.deadCheck(), ms);
  }

  private deadCheck(): void {
    if (!this.started) return;
    const silent = this.clock.now() - this.lastHeard;
    if (silent >= this.deadtimeMs) {
      if (!this.deadReported) {
        this.deadReported = true;
        this.partnerAlive = false;
        this.log('warn', `partner ${this.partnerAddrs.join('/')} silent for ${(silent / 1000).toFixed(2)} s (deadtime ${this.deadtimeMs / 1000} s)`);
        this.emit('dead');
      }
      // Re-check one deadtime later; a heartbeat re-arms it sooner when it matters.
      this.armDead(this.deadtimeMs);
    } else {
      this.armDead(this.deadtimeMs - silent);
    }
  }

  /** Handle one datagram (the sockets call this; exposed for tests of the decision only). */
  receive(msg: Buffer, fromAddr: string): void {
    const from = addrKey(fromAddr);
    const d = decode(msg, { mode: this.mode, key: this.key, from, allowedSources: this.partnerAddrs });
    if (!d.ok) return this.refuse(from, d.reason, d.detail);
    let ev: HeartbeatEvent;
    if (d.format === 'piranha') {
      ev = { from, format: 'piranha', state: d.state };
    } else {
      const p = d.packet;
      const r = this.replay.check(p, this.clock.wall());
      if (!r.ok) return this.refuse(from, r.reason, r.detail);
      const matches = p.configDigest === this.digest.toString('hex');
      ev = {
        from, format: 'lvsd', state: p.state, path: p.path, nodeId: p.nodeId, isPrimary: p.isPrimary,
        preempt: (p.flags & 0x02) !== 0, priority: p.priority, sequence: p.sequence,
        serialNo: p.serialNo, configDigest: p.configDigest, configMatches: matches,
      };
      const mismatchKey = matches ? undefined : `${p.serialNo}/${p.configDigest}`;
      if (mismatchKey !== undefined && mismatchKey !== this.lastMismatchLogged) {
        this.log('warn', `partner's configuration differs from ours (partner serial_no ${p.serialNo}, ours ${this.serialNo})`);
      }
      this.lastMismatchLogged = mismatchKey;
    }
    this.stats.received++;
    this.lastHeard = this.clock.now();
    this.deadReported = false;
    if (!this.partnerAlive) {
      this.partnerAlive = true;
      this.emit('alive');
    }
    this.emit('heartbeat', ev);
  }

  private refuse(from: string, reason: RejectReason, detail: string): void {
    this.stats.rejected[reason] = (this.stats.rejected[reason] ?? 0) + 1;
    const now = this.clock.now();
    const last = this.lastRejectLog.get(from);
    if (last === undefined || now - last >= this.rejectLogIntervalMs) {
      this.lastRejectLog.set(from, now);
      if (this.lastRejectLog.size > 1024) {
        // Bound the table: forget the oldest source.
        const first = this.lastRejectLog.keys().next().value;
        if (first !== undefined) this.lastRejectLog.delete(first);
      }
      this.log('warn', `heartbeat from ${from} refused: ${detail} (further refusals from ${from} are not logged for ${Math.round(this.rejectLogIntervalMs / 1000)} s)`);
    }
    const ev: RejectedEvent = { from, reason, detail };
    this.emit('rejected', ev);
  }

  private log(level: 'info' | 'warn', message: string): void {
    this.opts.log?.(level, message);
    this.emit('log', { level, message });
  }
}
