/**
 * VRRP version 3 (RFC 5798) as lvsd's other election mode, interoperable with keepalived: one
 * virtual router (VRID) on one interface, the state machine of RFC 5798 section 6.4 over a raw
 * IP protocol 112 socket (bindings/host.cc vrrpOpen, native/io/vrrp_sock.cpp).
 *
 * The instance only elects. It does not add the virtual addresses or announce them: the caller
 * does that on 'master' and undoes it on 'backup' / 'stopped' (lvsd's Director owns address
 * handling and gratuitous ARP / unsolicited NA).
 *
 * Events:
 * - `master` ({ reason }): this router is master now (reason: 'owner', 'master-down').
 * - `backup` ({ reason, master? }): this router is backup now ('startup', 'preempted' by a
 *   higher priority or the tie rule; `master` is the address heard).
 * - `rejected` ({ reason, from, detail }): every discarded packet (logged rate-limited).
 * - `stopped` ({ wasMaster }): after stop().
 * - `error` (Error): the socket failed after start (also logged; without a listener only logged).
 */
import { EventEmitter } from 'node:events';
import { LvsError } from '../errors.js';
import { Host, IFA_F } from '../host/host.js';
import { native, type NativeVrrpPacket } from '../dataplane/native.js';
import { formatAddress, parseAddress } from '../net/address.js';
import { systemClock, type Clock } from './heartbeat.js';
import {
  VRRP_GROUP4, VRRP_GROUP6, VRRP_MAX_INTERVAL_CS, compareAddresses, decodeAdvert, encodeAdvert,
  type VrrpAdvert, type VrrpRejectReason,
} from './vrrp-wire.js';

export type { Clock } from './heartbeat.js';

/** pino's shape (a pino logger fits). */
export interface VrrpLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

/** One received packet as the socket delivers it (NativeVrrpPacket). */
export type VrrpPacket = Pick<NativeVrrpPacket, 'source' | 'destination' | 'ttl' | 'payload'> & { truncated?: boolean };

/** What the instance sends and receives through. The default is the raw socket of vrrpOpen;
 *  embedders (and the state machine's unit tests) may pass their own. */
export interface VrrpTransport {
  send(payload: Uint8Array, source: Uint8Array | null): void;
  close(): void;
}
export type VrrpTransportFactory = (
  o: { netns: string; interface: string; family: 4 | 6 },
  onPackets: (packets: VrrpPacket[], error?: Error) => void,
) => VrrpTransport;

export interface VrrpOptions {
  /** The namespace whose interface we use (the socket is opened there). Default: our own. */
  netns?: string;
  interface: string;
  family: 4 | 6;
  /** Virtual router id, 1..255. */
  vrid: number;
  /** 1..255; 255 = the owner of the addresses (RFC 5798). */
  priority: number;
  /** Advertisement_Interval in ms, a multiple of 10 (centiseconds on the wire). Default 1000. */
  advertIntervalMs?: number;
  /** RFC 5798 Preempt_Mode. Default true. */
  preempt?: boolean;
  /** RFC 5798 Accept_Mode, kept for the caller (which answers for the addresses). Default false. */
  acceptMode?: boolean;
  /** The virtual addresses, all of `family`. */
  addresses: string[];
  /** The interface's primary IPv4 address / IPv6 link-local address. Default: found on the
   *  interface at start() (the first address not among `addresses`). */
  sourceAddress?: string;
  logger?: VrrpLogger;
  clock?: Clock;
  /** Minimum ms between two log lines about discarded packets from one source. Default 60 000. */
  rejectLogIntervalMs?: number;
  transport?: VrrpTransportFactory;
}

export type VrrpState = 'initialize' | 'backup' | 'master';

export interface VrrpStats {
  /** Adverts sent (priority 0 ones included). */
  sent: number;
  sendErrors: number;
  /** Packets that arrived (accepted or not). */
  received: number;
  /** Discarded packets by reason. */
  rejected: Partial<Record<VrrpRejectReason, number>>;
  /** Adverts processed whose address list differs from ours (logged, not discarded: RFC 5798 7.1). */
  addressMismatches: number;
  /** State changes (initialize -> backup counts). */
  transitions: number;
}

export interface VrrpRejectedEvent { reason: VrrpRejectReason; from: string; detail: string }

const silentLogger: VrrpLogger = { info() {}, warn() {}, debug() {} };

const nativeTransport: VrrpTransportFactory = (o, onPackets) => {
  try {
    return native().host.vrrpOpen(o.netns, o.interface, o.family, onPackets);
  } catch (e) {
    if (e instanceof LvsError) throw e;
    const err = e as { code?: unknown; message?: unknown };
    const code = typeof err.code === 'string' && err.code.startsWith('LVS_') ? err.code : 'LVS_HOST';
    throw new LvsError(code as 'LVS_HOST', String(err.message ?? e), { cause: e });
  }
};

export class Vrrp extends EventEmitter {
  readonly stats: VrrpStats = { sent: 0, sendErrors: 0, received: 0, rejected: {}, addressMismatches: 0, transitions: 0 };
  readonly vrid: number;
  readonly priority: number;
  readonly family: 4 | 6;
  readonly advertIntervalMs: number;
  readonly preempt: boolean;
  readonly acceptMode: boolean;
  readonly addresses: readonly string[];
  private readonly addressSet: Set<string>;
  private readonly clock: Clock;
  private readonly log: VrrpLogger;
  private readonly rejectLogIntervalMs: number;
  private readonly lastRejectLog = new Map<string, number>();
  private lastSendErrorLog = -Infinity;
  private current: VrrpState = 'initialize';
  private transport: VrrpTransport | undefined;
  private source: Uint8Array | undefined;
  private sourceText = '';
  private adverTimer: unknown;
  private masterDownTimer: unknown;
  private masterAdverIntervalMs: number;
  private masterHeard: string | undefined;
  private running = false;

  constructor(private readonly opts: VrrpOptions) {
    super();
    const bad = (field: string, why: string) => new LvsError('LVS_INVALID_OPTION', `vrrp ${field}: ${why}`, { field });
    const int = (v: unknown, lo: number, hi: number, field: string): number => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw bad(field, `${String(v)} is not an integer ${lo}..${hi}`);
      return v;
    };
    if (opts.family !== 4 && opts.family !== 6) throw bad('family', `${String(opts.family)} is not 4 or 6`);
    this.family = opts.family;
    if (typeof opts.interface !== 'string' || opts.interface.length === 0 || opts.interface.length > 15) {
      throw new LvsError('LVS_INVALID_INTERFACE', `vrrp interface: expected a device name, got ${JSON.stringify(opts.interface)}`, { field: 'interface' });
    }
    this.vrid = int(opts.vrid, 1, 255, 'vrid');
    this.priority = int(opts.priority, 1, 255, 'priority');
    this.advertIntervalMs = opts.advertIntervalMs ?? 1000;
    if (!Number.isInteger(this.advertIntervalMs) || this.advertIntervalMs % 10 !== 0 || this.advertIntervalMs < 10 || this.advertIntervalMs > VRRP_MAX_INTERVAL_CS * 10) {
      throw bad('advertIntervalMs', `${this.advertIntervalMs} is not a multiple of 10 ms in 10..${VRRP_MAX_INTERVAL_CS * 10}`);
    }
    this.preempt = opts.preempt ?? true;
    this.acceptMode = opts.acceptMode ?? false;
    if (!Array.isArray(opts.addresses) || opts.addresses.length === 0 || opts.addresses.length > 255) throw bad('addresses', 'expected 1..255 virtual addresses');
    this.addresses = opts.addresses.map((a, i) => {
      const p = parseAddress(a, `addresses[${i}]`);
      if ((p.family === 'ipv4' ? 4 : 6) !== this.family) {
        throw new LvsError('LVS_FAMILY_MISMATCH', `vrrp addresses[${i}]: ${a} is not an IPv${this.family} address`, { field: `addresses[${i}]` });
      }
      return p.text;
    });
    this.addressSet = new Set(this.addresses);
    if (opts.sourceAddress !== undefined) {
      const p = parseAddress(opts.sourceAddress, 'sourceAddress');
      if ((p.family === 'ipv4' ? 4 : 6) !== this.family) throw new LvsError('LVS_FAMILY_MISMATCH', `vrrp sourceAddress: ${opts.sourceAddress} is not IPv${this.family}`, { field: 'sourceAddress' });
      this.source = p.bytes;
      this.sourceText = p.text;
    }
    this.clock = opts.clock ?? systemClock;
    this.log = opts.logger ?? silentLogger;
    this.rejectLogIntervalMs = opts.rejectLogIntervalMs ?? 60_000;
    this.masterAdverIntervalMs = this.advertIntervalMs;
  }

  get state(): VrrpState {
    return this.current;
  }

  /** The address the current master sends from, as heard in backup (undefined otherwise). */
  get master(): string | undefined {
    return this.current === 'master' ? this.sourceText : this.masterHeard;
  }

  /** The address our adverts come from (known after start()). */
  get sourceAddress(): string {
    return this.sourceText;
  }

  /** Skew_Time (RFC 5798 6.1), ms: ((256 - Priority) * Master_Adver_Interval) / 256. */
  get skewTimeMs(): number {
    return ((256 - this.priority) * this.masterAdverIntervalMs) / 256;
  }

  /** Master_Down_Interval (RFC 5798 6.1), ms: 3 * Master_Adver_Interval + Skew_Time. */
  get masterDownIntervalMs(): number {
    return 3 * this.masterAdverIntervalMs + this.skewTimeMs;
  }

  /** Master_Adver_Interval: ours in master, the master's (learned from its adverts) in backup. */
  get masterAdverInterval(): number {
    return this.masterAdverIntervalMs;
  }

  /** Open the socket and run the Startup event (RFC 5798 6.4.1). */
  async start(): Promise<void> {
    if (this.running) return;
    if (this.source === undefined) this.findSource();
    const factory = this.opts.transport ?? nativeTransport;
    this.transport = factory({ netns: this.opts.netns ?? '', interface: this.opts.interface, family: this.family }, (pkts, err) => {
      for (const p of pkts) this.receive(p);
      if (err) this.socketFailed(err);
    });
    this.running = true;
    this.log.info({ event: 'vrrp-start', vrid: this.vrid, interface: this.opts.interface, family: this.family, priority: this.priority, advertIntervalMs: this.advertIntervalMs, preempt: this.preempt, source: this.sourceText, addresses: this.addresses },
      `VRRP ${this.vrid} on ${this.opts.interface}: priority ${this.priority}, advert every ${this.advertIntervalMs} ms, from ${this.sourceText}`);
    if (this.priority === 255) {
      this.sendAdvert(this.priority);
      this.armAdver();
      this.become('master', { reason: 'owner' });
    } else {
      this.masterAdverIntervalMs = this.advertIntervalMs;
      this.armMasterDown(this.masterDownIntervalMs);
      this.become('backup', { reason: 'startup' });
    }
  }

  /** The Shutdown event (RFC 5798 6.4.2 / 6.4.3): a master sends one advert with priority 0, so
   *  a backup takes over after Skew_Time instead of Master_Down_Interval. */
  async stop(): Promise<void> {
    if (!this.running) return;
    const wasMaster = this.current === 'master';
    this.clock.clearTimer(this.adverTimer);
    this.clock.clearTimer(this.masterDownTimer);
    if (wasMaster) this.sendAdvert(0);
    this.running = false;
    try { this.transport?.close(); } catch { /* already closed */ }
    this.transport = undefined;
    this.become('initialize', {});
    this.emit('stopped', { wasMaster });
  }

  /** Handle one received packet (the socket calls this; exposed for tests of the decision only). */
  receive(p: VrrpPacket): void {
    if (!this.running) return;
    this.stats.received++;
    const from = p.source === null ? '?' : formatAddress(p.source.length === 4 ? 'ipv4' : 'ipv6', p.source);
    if (p.truncated) return this.refuse(from, 'truncated', `packet longer than the receive buffer (${p.payload.length} bytes kept)`);
    if (p.source === null || p.destination === null || p.source.length !== (this.family === 4 ? 4 : 16) || p.destination.length !== p.source.length) {
      return this.refuse(from, 'family', 'no source or destination address of our family');
    }
    if (p.ttl !== 255) return this.refuse(from, 'ttl', `TTL / hop limit ${p.ttl}, must be 255 (sent from another link?)`);
    if (this.source !== undefined && compareAddresses(p.source, this.source) === 0) return this.refuse(from, 'own', 'our own advert');
    const d = decodeAdvert(p.payload, { family: this.family, source: p.source, destination: p.destination });
    if (!d.ok) return this.refuse(from, d.reason, d.detail);
    const a = d.advert;
    if (a.vrid !== this.vrid) return this.refuse(from, 'vrid', `virtual router ${a.vrid}, ours is ${this.vrid}`);
    if (this.priority === 255) return this.refuse(from, 'owner', `priority ${a.priority} advert for VRID ${a.vrid}, but we own its addresses (priority 255)`);
    this.checkAddresses(from, a);
    if (this.current === 'backup') this.backupReceive(from, a);
    else if (this.current === 'master') this.masterReceive(from, p.source, a);
  }

  private backupReceive(from: string, a: VrrpAdvert): void {
    if (a.priority === 0) {
      // The master is leaving: take over after Skew_Time.
      this.log.info({ event: 'vrrp-master-leaving', vrid: this.vrid, from }, `VRRP ${this.vrid}: master ${from} is leaving (priority 0); taking over in ${this.skewTimeMs.toFixed(0)} ms unless another backup does`);
      this.armMasterDown(this.skewTimeMs);
      return;
    }
    if (!this.preempt || a.priority >= this.priority) {
      this.learnInterval(from, a);
      this.masterHeard = from;
      this.armMasterDown(this.masterDownIntervalMs);
    }
    // Otherwise a lower priority master and Preempt_Mode: let Master_Down_Timer run out.
  }

  private masterReceive(from: string, src: Uint8Array, a: VrrpAdvert): void {
    if (a.priority === 0) {
      // Another master leaving: answer at once so backups see a master.
      this.sendAdvert(this.priority);
      this.armAdver();
      return;
    }
    const tie = a.priority === this.priority && this.source !== undefined && compareAddresses(src, this.source) > 0;
    if (a.priority > this.priority || tie) {
      this.clock.clearTimer(this.adverTimer);
      this.learnInterval(from, a);
      this.masterHeard = from;
      this.armMasterDown(this.masterDownIntervalMs);
      this.become('backup', { reason: 'preempted', master: from, priority: a.priority, tie });
    }
  }

  private learnInterval(from: string, a: VrrpAdvert): void {
    const ms = a.intervalCs * 10;
    if (ms !== this.masterAdverIntervalMs) {
      this.log.info({ event: 'vrrp-interval', vrid: this.vrid, from, masterAdverIntervalMs: ms, ours: this.advertIntervalMs },
        `VRRP ${this.vrid}: master ${from} advertises every ${ms} ms (ours: ${this.advertIntervalMs} ms); Master_Down_Interval follows it`);
      this.masterAdverIntervalMs = ms;
    }
  }

  private checkAddresses(from: string, a: VrrpAdvert): void {
    const theirs = new Set(a.addresses);
    const same = theirs.size === this.addressSet.size && [...theirs].every((x) => this.addressSet.has(x));
    if (same) return;
    this.stats.addressMismatches++;
    if (this.mayLog(`${from}/addresses`)) {
      this.log.warn({ event: 'vrrp-address-mismatch', vrid: this.vrid, from, theirs: a.addresses, ours: this.addresses },
        `VRRP ${this.vrid}: ${from} advertises ${a.addresses.length} address(es) [${a.addresses.join(', ')}], we have [${this.addresses.join(', ')}] (misconfiguration; advert still used)`);
    }
  }

  private become(state: VrrpState, info: Record<string, unknown>): void {
    const was = this.current;
    if (was === state) return;
    this.current = state;
    this.stats.transitions++;
    if (state === 'master') this.masterAdverIntervalMs = this.advertIntervalMs;
    if (state !== 'backup') this.masterHeard = state === 'master' ? undefined : this.masterHeard;
    this.log.info({ event: 'vrrp-state', vrid: this.vrid, interface: this.opts.interface, from: was, to: state, ...info },
      `VRRP ${this.vrid} on ${this.opts.interface}: ${was} -> ${state}${info.reason ? ` (${String(info.reason)}${info.master ? ` by ${String(info.master)}` : ''})` : ''}`);
    if (state !== 'initialize') this.emit(state, info);
  }

  private armAdver(): void {
    this.clock.clearTimer(this.adverTimer);
    this.adverTimer = this.clock.setTimer(() => {
      if (!this.running || this.current !== 'master') return;
      this.sendAdvert(this.priority);
      this.armAdver();
    }, this.advertIntervalMs);
  }

  private armMasterDown(ms: number): void {
    this.clock.clearTimer(this.masterDownTimer);
    this.masterDownTimer = this.clock.setTimer(() => {
      if (!this.running || this.current !== 'backup') return;
      this.log.info({ event: 'vrrp-master-down', vrid: this.vrid, lastMaster: this.masterHeard ?? null, waitedMs: ms }, `VRRP ${this.vrid}: no usable advert for ${ms.toFixed(0)} ms; becoming master`);
      this.sendAdvert(this.priority);
      this.armAdver();
      this.become('master', { reason: 'master-down' });
    }, ms);
  }

  private sendAdvert(priority: number): void {
    if (!this.transport || this.source === undefined) return;
    try {
      const msg = encodeAdvert(
        { vrid: this.vrid, priority, intervalCs: this.advertIntervalMs / 10, addresses: [...this.addresses] },
        { family: this.family, source: this.source, destination: this.family === 4 ? VRRP_GROUP4 : VRRP_GROUP6 },
      );
      this.transport.send(msg, this.source);
      this.stats.sent++;
    } catch (e) {
      this.stats.sendErrors++;
      const now = this.clock.now();
      if (now - this.lastSendErrorLog >= this.rejectLogIntervalMs) {
        this.lastSendErrorLog = now;
        this.log.warn({ event: 'vrrp-send-failed', vrid: this.vrid, err: (e as Error).message, errors: this.stats.sendErrors },
          `VRRP ${this.vrid}: sending an advert failed: ${(e as Error).message} (further failures are not logged for ${Math.round(this.rejectLogIntervalMs / 1000)} s)`);
      }
    }
  }

  private socketFailed(err: Error): void {
    this.log.warn({ event: 'vrrp-socket-failed', vrid: this.vrid, err: err.message }, `VRRP ${this.vrid}: ${err.message}`);
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  private mayLog(key: string): boolean {
    const now = this.clock.now();
    const last = this.lastRejectLog.get(key);
    if (last !== undefined && now - last < this.rejectLogIntervalMs) return false;
    this.lastRejectLog.delete(key);
    this.lastRejectLog.set(key, now);
    if (this.lastRejectLog.size > 1024) {
      const first = this.lastRejectLog.keys().next().value;
      if (first !== undefined) this.lastRejectLog.delete(first);
    }
    return true;
  }

  private refuse(from: string, reason: VrrpRejectReason, detail: string): void {
    this.stats.rejected[reason] = (this.stats.rejected[reason] ?? 0) + 1;
    if (this.mayLog(`${from}/${reason}`)) {
      this.log.warn({ event: 'vrrp-rejected', vrid: this.vrid, from, reason, detail, count: this.stats.rejected[reason] },
        `VRRP ${this.vrid}: packet from ${from} discarded: ${detail} (further ${reason} discards from ${from} are not logged for ${Math.round(this.rejectLogIntervalMs / 1000)} s)`);
    }
    const ev: VrrpRejectedEvent = { reason, from, detail };
    this.emit('rejected', ev);
  }

  private findSource(): void {
    const host = new Host(this.opts.netns ?? '');
    const addrs = host.addresses(this.opts.interface).filter((a) => a.family === (this.family === 4 ? 'ipv4' : 'ipv6'));
    const usable = addrs.filter((a) => (a.flags & (IFA_F.TENTATIVE | IFA_F.DADFAILED)) === 0 && !this.addressSet.has(a.address));
    const pick = this.family === 4 ? usable[0] : usable.find((a) => a.address.startsWith('fe8') || a.address.startsWith('fe9') || a.address.startsWith('fea') || a.address.startsWith('feb'));
    if (pick === undefined) {
      const what = this.family === 4 ? 'an IPv4 address' : 'a usable IPv6 link-local address (fe80::/10, not tentative)';
      throw new LvsError('LVS_HOST', `vrrp: ${this.opts.interface} has no ${what} to send adverts from (set sourceAddress or add one)`, { field: 'sourceAddress' });
    }
    const p = parseAddress(pick.address);
    this.source = p.bytes;
    this.sourceText = p.text;
  }
}
