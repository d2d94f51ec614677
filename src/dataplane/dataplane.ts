/**
 * The Dataplane: the TypeScript face of the native packet engine.
 *
 * It keeps a mirror of the configuration it has pushed (services, reals, interfaces,
 * timeouts), validates every change against it, and turns accepted changes into commands on
 * the shared command ring, followed by a COMMIT that the native side applies atomically.
 * Statistics are read straight from the shared stats stripes; events (configuration applied,
 * slots released, neighbours missing, dumps ready) arrive on the event rings with one
 * coalesced wake-up.
 */
import { EventEmitter } from 'node:events';
import { LvsError } from '../errors.js';
import { formatAddress, parseAddress, parseMac, type Family } from '../net/address.js';
import { schedulingTables } from '../sched/plan.js';
import { MH_DEFAULT_SIZE } from '../sched/tables.js';
import {
  interfaceCommand,
  markCommands,
  optionsCommand,
  realCommand,
  serviceCommand,
  tableCommands,
  timeoutsCommand,
  type Command,
} from './commands.js';
import { MemoryBackend } from './memory.js';
import type { InterfaceState, ParsedMarkRule, RealState, ServiceState } from './model.js';
import { constants, native, type NativeDataplane, type NativeLayout } from './native.js';
import { ConnFlag, DumpFormat, Ev, Fwd, Op, OptionFlag, SLOT_COUNTERS, STATE_NAMES, SlotCounter, State } from './protocol.js';
import { RingConsumer, RingProducer } from './ring.js';
import { SYNC_RECORD_BYTES, SyncFlag } from './sync.js';
import type {
  ConnectionEntry,
  DataplaneBehaviour,
  DataplaneOptions,
  ForwardingMethod,
  InterfaceSpec,
  PortInfo,
  MarkRule,
  RealServerChanges,
  RealServerInfo,
  RealServerKey,
  RealServerSpec,
  ServiceKey,
  Timeouts,
  TrafficStats,
  VirtualServiceChanges,
  VirtualServiceInfo,
  VirtualServiceSpec,
} from './types.js';
import * as v from './validate.js';

export { MemoryBackend };
export { SYNC_RECORD_BYTES, SYNC_VERSION, SyncFlag, decodeSyncRecord, type SyncRecord, type SyncRecordProblem, type SyncRecordResult } from './sync.js';

const METHOD_OF_FWD: Record<number, ForwardingMethod> = { [Fwd.nat]: 'nat', [Fwd.direct]: 'direct', [Fwd.tunnel]: 'tunnel' };
const SETTLE_TIMEOUT_MS = 10_000;
/** Sync records per OP_SYNC_IMPORT command (29 words each): well inside a ring message. */
const SYNC_IMPORT_CHUNK = 64;
/** How often slow-start ramps are advanced. */
const RAMP_TICK_MS = 250;

/** The changes one transaction makes, applied all together or not at all. */
export interface DataplaneTransaction {
  setInterface(spec: InterfaceSpec): void;
  deleteInterface(id: number): void;
  addService(spec: VirtualServiceSpec): void;
  editService(key: ServiceKey, changes: VirtualServiceChanges): void;
  deleteService(key: ServiceKey): void;
  addReal(service: ServiceKey, real: RealServerSpec): void;
  editReal(service: ServiceKey, real: RealServerKey, changes: RealServerChanges): void;
  deleteReal(service: ServiceKey, real: RealServerKey): void;
  clear(): void;
  setTimeouts(timeouts: Partial<Timeouts>): void;
  /** Reset the connection counts the least-connection schedulers see, as quiesce does. */
  resetLeastConnection(key: ServiceKey): void;
  setMarkRules(rules: MarkRule[]): void;
  setBehaviour(behaviour: Partial<DataplaneBehaviour>): void;
}

export interface DataplaneEvents {
  /** A real's next-hop MAC address is unknown: resolve it and editReal({mac}). */
  'neighbour-miss': [{ iface: number; address: string }];
  /** The native side refused a command: a bug in this library, reported with its code. */
  rejected: [LvsError];
  /**
   * Connection sync (setSyncMaster(true)): records (SYNC_RECORD_BYTES each, concatenated) for
   * the backup's importSync(). At most one emit per drain of the event rings.
   */
  sync: [Buffer];
}

export class Dataplane extends EventEmitter<DataplaneEvents> {
  readonly options: Required<Omit<DataplaneOptions, 'io'>> & Pick<DataplaneOptions, 'io'>;
  /** Frame I/O of the memory backend (tests, benchmarks, and embedding without a NIC). */
  readonly memory: MemoryBackend;

  private readonly nd: NativeDataplane;
  private readonly layout: NativeLayout;
  private readonly region: SharedArrayBuffer;
  private readonly words: Int32Array;
  private readonly stats64: BigUint64Array;
  private readonly commands: RingProducer;
  private readonly events: RingConsumer[];
  private readonly backlog: Command[] = [];
  private backlogTimer: NodeJS.Timeout | undefined;

  private readonly services = new Map<string, ServiceState>();
  private readonly interfaces = new Map<number, InterfaceState>();
  private readonly freeServiceSlots: number[];
  private readonly freeRealSlots: number[];
  /** Deleted, waiting for the dataplane to release them (IPVS keeps such dests in a trash). */
  private readonly drainingServices = new Map<number, string>();
  private readonly drainingReals = new Map<number, { service: string; real: string; lastWeight: number }>();
  /** "service|real" -> slot of drainingReals, to revive a re-added real in O(1). */
  private readonly drainingRealIndex = new Map<string, number>();
  private readonly zeroServices = new Map<number, number[]>();
  private readonly zeroReals = new Map<number, number[]>();
  private timeoutsS: Timeouts;
  private marks: ParsedMarkRule[] = [];
  private behaviour: DataplaneBehaviour = { expireNodestConn: false, expireQuiescentTemplate: false };
  private syncMaster = false;
  private syncChunks: Buffer[] = [];
  private rampTimer: NodeJS.Timeout | undefined;

  private committedGen = 0;
  private appliedGen = 0;
  private settleWaiters: Array<{ gen: number; resolve: () => void; reject: (e: Error) => void; timer: NodeJS.Timeout }> = [];
  private dumpRequest = 0;
  private dumpWaiter: { request: number; pending: Set<number>; resolve: () => void; reject: (e: Error) => void } | undefined;
  private closed = false;

  constructor(options: DataplaneOptions = {}) {
    super();
    this.options = v.dataplaneOptions(options);
    const addon = native();
    const o = this.options;
    const layoutOptions = {
      workers: o.workers,
      maxServices: o.maxServices,
      maxReals: o.maxReals,
      commandRingWords: 1 << 16,
      // 256 KiB per producer: room for ~2,000 sync records between two drains.
      eventRingWords: 1 << 16,
    };
    this.layout = addon.layout(layoutOptions);
    this.region = new SharedArrayBuffer(this.layout.totalBytes);
    this.words = new Int32Array(this.region);
    this.stats64 = new BigUint64Array(this.region, this.layout.stats, (this.layout.stripeBytes * o.workers) / 8);
    this.commands = new RingProducer(new Int32Array(this.region, this.layout.commandRing), this.layout.commandRingWords);
    this.events = this.layout.eventRings.map((off) => new RingConsumer(new Int32Array(this.region, off), this.layout.eventRingWords));
    this.freeServiceSlots = Array.from({ length: o.maxServices }, (_, i) => o.maxServices - 1 - i);
    this.freeRealSlots = Array.from({ length: o.maxReals }, (_, i) => o.maxReals - 1 - i);
    const defaults = constants().defaultTimeouts;
    this.timeoutsS = { tcp: defaults[State.ESTABLISHED]!, tcpfin: defaults[State.FIN_WAIT]!, udp: defaults[State.UDP]! };
    try {
      this.nd = new addon.Dataplane(
        { ...layoutOptions, connectionCapacity: o.connectionCapacity, threaded: o.mode === 'threaded', manualClock: o.clock === 'manual', memorySlots: o.memorySlots, seed: o.seed, io: o.io },
        new Uint8Array(this.region),
        () => this.onWake(),
      );
    } catch (cause) {
      const code = (cause as { code?: string }).code === 'LVS_IO_INIT' ? 'LVS_IO_INIT' : 'LVS_DATAPLANE_INIT';
      throw new LvsError(code, `cannot start the dataplane: ${(cause as Error).message}`, { cause });
    }
    this.memory = new MemoryBackend(this, this.nd);
  }

  // ------------------------------------------------------------------------------------------
  // Configuration

  /** Apply several changes at once: all of them, or (on the first error) none. */
  transaction(fn: (tx: DataplaneTransaction) => void): void {
    this.ensureOpen();
    const undo: Array<() => void> = [];
    const commands: Command[] = [];
    const touched = new Set<ServiceState>();
    const tx = this.makeTransaction(undo, commands, touched);
    try {
      fn(tx);
    } catch (e) {
      for (let i = undo.length - 1; i >= 0; i--) undo[i]!();
      throw e;
    }
    this.commit(commands, touched);
  }

  /** Send a transaction's commands, with fresh scheduling tables for the services it touched. */
  private commit(commands: Command[], touched: Set<ServiceState>): void {
    for (const s of touched) {
      if (this.services.get(s.key.id) !== s) continue; // deleted in the same transaction
      const reals = s.reals.map((r) => ({ slot: r.slot, weight: r.current, lastWeight: r.lastWeight, family: r.address.family, address: r.address.bytes, port: r.port }));
      for (const t of schedulingTables(s.scheduler, reals, s.mhSize)) commands.push(...tableCommands(s.slot, t.kind, t.table));
    }
    if (commands.length === 0) return;
    this.committedGen++;
    commands.push([Op.COMMIT, [this.committedGen & 0xffffffff, Math.floor(this.committedGen / 2 ** 32)]]);
    this.send(commands);
    this.scheduleRamp();
  }

  setInterface(spec: InterfaceSpec): void { this.transaction((tx) => tx.setInterface(spec)); }
  deleteInterface(id: number): void { this.transaction((tx) => tx.deleteInterface(id)); }
  addService(spec: VirtualServiceSpec): void { this.transaction((tx) => tx.addService(spec)); }
  editService(key: ServiceKey, changes: VirtualServiceChanges): void { this.transaction((tx) => tx.editService(key, changes)); }
  deleteService(key: ServiceKey): void { this.transaction((tx) => tx.deleteService(key)); }
  addReal(service: ServiceKey, real: RealServerSpec): void { this.transaction((tx) => tx.addReal(service, real)); }
  editReal(service: ServiceKey, real: RealServerKey, changes: RealServerChanges): void { this.transaction((tx) => tx.editReal(service, real, changes)); }
  deleteReal(service: ServiceKey, real: RealServerKey): void { this.transaction((tx) => tx.deleteReal(service, real)); }
  /** ipvsadm -C: delete every virtual service. */
  clear(): void { this.transaction((tx) => tx.clear()); }
  /** ipvsadm --set tcp tcpfin udp (seconds; 0 = unchanged). */
  setTimeouts(t: Partial<Timeouts>): void { this.transaction((tx) => tx.setTimeouts(t)); }
  getTimeouts(): Timeouts { return { ...this.timeoutsS }; }
  /** Reset the connection counts the least-connection schedulers see (Piranha's quiesce). */
  resetLeastConnection(key: ServiceKey): void { this.transaction((tx) => tx.resetLeastConnection(key)); }
  /** Replace the firewall-mark classification rules (first match wins). */
  setMarkRules(rules: MarkRule[]): void { this.transaction((tx) => tx.setMarkRules(rules)); }
  getMarkRules(): MarkRule[] { return this.marks.map((m) => ({ ...m.rule })); }
  /** IPVS's expire_nodest_conn and expire_quiescent_template. */
  setBehaviour(b: Partial<DataplaneBehaviour>): void { this.transaction((tx) => tx.setBehaviour(b)); }
  getBehaviour(): DataplaneBehaviour { return { ...this.behaviour }; }

  // ------------------------------------------------------------------------------------------
  // Connection sync (docs/failover.md, "Connection sync record")

  /**
   * Active director: export connection and template state as 'sync' events (new templates,
   * TCP state changes past the handshake, new UDP flows, packets 3, 53, 103... of an entry,
   * and any packet once half its timeout has passed since its last export).
   */
  setSyncMaster(on: boolean): void {
    this.ensureOpen();
    if (typeof on !== 'boolean') throw new LvsError('LVS_INVALID_OPTION', 'syncMaster: expected true or false', { field: 'syncMaster' });
    if (on === this.syncMaster) return;
    this.syncMaster = on;
    this.commit([optionsCommand(this.optionFlags())], new Set());
  }

  get isSyncMaster(): boolean {
    return this.syncMaster;
  }

  /**
   * Backup director: apply sync records from the active one. Every worker applies every record
   * (a flow may arrive on any queue). Records that are malformed or name a service or real this
   * dataplane does not have are counted (sync_rejected_*) and skipped, never thrown.
   */
  importSync(records: Uint8Array): void {
    this.ensureOpen();
    if (!(records instanceof Uint8Array)) throw new LvsError('LVS_INVALID_OPTION', 'records: expected a Buffer', { field: 'records' });
    if (records.length % SYNC_RECORD_BYTES !== 0) {
      throw new LvsError('LVS_INVALID_OPTION', `records: ${records.length} bytes is not a whole number of ${SYNC_RECORD_BYTES}-byte sync records`, { field: 'records' });
    }
    const commands: Command[] = [];
    const step = SYNC_IMPORT_CHUNK * SYNC_RECORD_BYTES;
    for (let at = 0; at < records.length; at += step) {
      // A copy: aligned for the word view, and independent of the caller's buffer.
      const chunk = new Uint8Array(Math.min(step, records.length - at));
      chunk.set(records.subarray(at, at + chunk.length));
      commands.push([Op.SYNC_IMPORT, new Int32Array(chunk.buffer)]);
    }
    if (commands.length) this.send(commands);
  }

  /**
   * Every live entry as sync records, templates first (a backup that (re)connects imports this,
   * then the incremental stream).
   */
  async dumpSync(): Promise<Buffer> {
    const buffers = await this.dump(DumpFormat.SYNC);
    const templates: Buffer[] = [];
    const conns: Buffer[] = [];
    for (const b of buffers) {
      for (let off = 0; off + SYNC_RECORD_BYTES <= b.length; off += SYNC_RECORD_BYTES) {
        const rec = b.subarray(off, off + SYNC_RECORD_BYTES);
        ((b.readUInt16BE(off + 12) & SyncFlag.TEMPLATE) !== 0 ? templates : conns).push(rec);
      }
    }
    return Buffer.concat([...templates, ...conns]);
  }

  private optionFlags(): number {
    return (
      (this.behaviour.expireNodestConn ? OptionFlag.EXPIRE_NODEST_CONN : 0) |
      (this.behaviour.expireQuiescentTemplate ? OptionFlag.EXPIRE_QUIESCENT_TEMPLATE : 0) |
      (this.syncMaster ? OptionFlag.SYNC_MASTER : 0)
    );
  }

  /** Resolves once the dataplane uses everything committed so far. */
  settled(): Promise<void> {
    if (this.closed) return Promise.reject(new LvsError('LVS_CLOSED', 'the dataplane was closed'));
    if (this.options.mode === 'manual') {
      this.poll();
      return Promise.resolve();
    }
    if (this.appliedGen >= this.committedGen) return Promise.resolve();
    const gen = this.committedGen;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.settleWaiters = this.settleWaiters.filter((w) => w.timer !== timer);
        reject(new LvsError('LVS_TIMEOUT', `the dataplane did not apply configuration ${gen} within ${SETTLE_TIMEOUT_MS} ms`));
      }, SETTLE_TIMEOUT_MS);
      this.settleWaiters.push({ gen, resolve, reject, timer });
    });
  }

  // ------------------------------------------------------------------------------------------
  // Reading state

  /** Every virtual service with its reals, live connection counts and statistics. */
  listServices(): VirtualServiceInfo[] {
    return [...this.services.values()].map((s) => this.serviceInfo(s));
  }

  getService(key: ServiceKey): VirtualServiceInfo {
    return this.serviceInfo(this.findService(key));
  }

  /** Global counters summed over the workers: packets, drops by reason, connections... */
  counters(): Record<string, number> {
    const { counters: names, dropParseBase } = constants();
    const out: Record<string, number> = {};
    for (let c = 0; c < names.length; c++) {
      const name = names[c]!;
      if (!name || name === 'ok' || name === 'not_ip' || name === 'unhandled') continue;
      let sum = 0n;
      for (let w = 0; w < this.options.workers; w++) sum += this.stats64[(w * this.layout.stripeBytes) / 8 + c]!;
      out[c >= dropParseBase ? `drop_${name}` : name] = Number(sum);
    }
    return out;
  }

  /** ipvsadm -Z: zero the statistics of one service (and its reals) or of all. */
  zero(key?: ServiceKey): void {
    const list = key ? [this.findService(key)] : [...this.services.values()];
    for (const s of list) {
      this.zeroServices.set(s.slot, this.rawCounters(false, s.slot));
      for (const r of s.reals) this.zeroReals.set(r.slot, this.rawCounters(true, r.slot));
    }
  }

  /** ipvsadm -L -n -c: the connection entries of every worker. */
  async listConnections(): Promise<ConnectionEntry[]> {
    const buffers = await this.dump(DumpFormat.ROWS);
    return buffers.flatMap((b) => this.decodeDump(b));
  }

  /** Every worker's connection table in `format`, one buffer per worker. */
  private async dump(format: number): Promise<Buffer[]> {
    this.ensureOpen();
    if (this.dumpWaiter) throw new LvsError('LVS_INVALID_ARGUMENT', 'a connection listing is already in progress');
    const request = (this.dumpRequest = (this.dumpRequest % 0x7fffffff) + 1);
    const buffers: Buffer[] = [];
    const done = new Promise<void>((resolve, reject) => {
      this.dumpWaiter = { request, pending: new Set(Array.from({ length: this.options.workers }, (_, i) => i)), resolve, reject };
    });
    this.send([[Op.DUMP_CONNS, [request, format]]]);
    if (this.options.mode === 'manual') {
      // Every poll runs each worker's housekeeping at least once: one more slice of its dump
      // (all of it with the manual clock, 16384 entries per slice with a monotonic one).
      const waiter = this.dumpWaiter!;
      for (let i = 0; i < 1 << 20 && waiter.pending.size > 0 && !this.closed; i++) this.poll();
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        done,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new LvsError('LVS_TIMEOUT', 'the dataplane did not list its connections in time')), SETTLE_TIMEOUT_MS);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      this.dumpWaiter = undefined;
    }
    for (let w = 0; w < this.options.workers; w++) {
      const b = this.nd.takeDump(w);
      if (b) buffers.push(b);
    }
    return buffers;
  }

  /** Table memory and capacity, for operators and benchmarks. */
  info(): { tableBytes: number; tableCapacity: number; workers: number; connectionEntryBytes: number; ports: PortInfo[] } {
    const i = this.nd.info();
    return { tableBytes: i.tableBytes, tableCapacity: i.tableCapacity, workers: i.workers, connectionEntryBytes: constants().connEntryBytes, ports: i.ports };
  }

  // ------------------------------------------------------------------------------------------
  // Driving it

  /** Manual mode: apply pending commands and run every worker over its pending frames. */
  poll(): void {
    this.ensureOpen();
    if (this.options.mode !== 'manual') throw new LvsError('LVS_MODE', 'poll() is for mode "manual"; threaded dataplanes run by themselves');
    this.rampTick();
    for (let round = 0; round < 1000; round++) {
      this.flushBacklog();
      this.nd.poll();
      this.drainEvents();
      if (this.backlog.length === 0) return;
    }
  }

  /** "Now" as the dataplane sees it (ms): the manual clock, or a monotonic one. */
  now(): number {
    if (this.options.clock === 'manual') return Number(new BigUint64Array(this.region, 0, 1)[0]);
    return Math.floor(performance.now());
  }

  /** Manual clock: set "now" (milliseconds) as the dataplane sees it. */
  setClock(ms: number): void {
    if (this.options.clock !== 'manual') throw new LvsError('LVS_MODE', 'setClock() needs clock "manual"');
    v.integer(ms, 'ms', 0, Number.MAX_SAFE_INTEGER, 'LVS_INVALID_ARGUMENT');
    new BigUint64Array(this.region, 0, 1)[0] = BigInt(ms);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.backlogTimer);
    clearInterval(this.rampTimer);
    this.nd.close();
    const err = new LvsError('LVS_CLOSED', 'the dataplane was closed');
    for (const w of this.settleWaiters) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.settleWaiters = [];
    this.dumpWaiter?.reject(err);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** @internal the global rx counter of a worker (MemoryBackend waits on it). */
  rxPackets(worker: number): number {
    return Number(this.stats64[(worker * this.layout.stripeBytes) / 8]!);
  }

  /** @internal */
  ensureOpen(): void {
    if (this.closed) throw new LvsError('LVS_CLOSED', 'the dataplane was closed');
  }

  // ------------------------------------------------------------------------------------------
  // Internals: transactions

  private makeTransaction(undo: Array<() => void>, commands: Command[], touched: Set<ServiceState>): DataplaneTransaction {
    const dp = this;
    const o = this.options;
    /** Record a change to a service: its SET_SERVICE goes out, and its tables are recomputed. */
    const serviceChanged = (s: ServiceState) => {
      touched.add(s);
      commands.push(serviceCommand(s));
    };
    const bumpEpoch = (s: ServiceState) => {
      const prev = s.lcEpoch;
      s.lcEpoch = (s.lcEpoch + 1) >>> 0;
      undo.push(() => (s.lcEpoch = prev));
      serviceChanged(s);
    };
    const tx: DataplaneTransaction = {
      setInterface(spec) {
        const st = dp.checkInterface(spec);
        const prev = dp.interfaces.get(spec.id);
        dp.interfaces.set(spec.id, st);
        undo.push(() => (prev ? dp.interfaces.set(spec.id, prev) : dp.interfaces.delete(spec.id)));
        commands.push(interfaceCommand(spec.id, st));
      },
      deleteInterface(id) {
        v.integer(id, 'id', 0, 255, 'LVS_INVALID_INTERFACE');
        const prev = dp.interfaces.get(id);
        if (!prev) throw new LvsError('LVS_INVALID_INTERFACE', `interface ${id} is not configured`, { field: 'id' });
        for (const s of dp.services.values()) {
          const user = s.reals.find((r) => r.iface === id);
          if (user) throw new LvsError('LVS_INVALID_INTERFACE', `interface ${id} is used by real ${user.id} of ${s.key.id}`, { field: 'id' });
        }
        dp.interfaces.delete(id);
        undo.push(() => dp.interfaces.set(id, prev));
        commands.push([Op.DEL_INTERFACE, [id]]);
      },
      addService(spec) {
        const key = v.serviceKey(spec);
        const opts = v.serviceOptions(spec, key.family, { scheduler: 'wlc', flags: [], persistence: null, mhSize: MH_DEFAULT_SIZE, quiesce: false });
        if (dp.services.has(key.id)) throw new LvsError('LVS_SERVICE_EXISTS', `Service already exists: ${key.id}`, { field: 'service' });
        if (!key.fwmark && key.port === 0 && !opts.persistence) {
          throw new LvsError('LVS_PORT_ZERO', `Zero port specified for non-persistent service: ${key.id}`, { field: 'port' });
        }
        // Re-adding a service that is still draining revives its slot, as IPVS revives dests.
        let slot = [...dp.drainingServices].find(([, id]) => id === key.id)?.[0];
        if (slot !== undefined) {
          dp.drainingServices.delete(slot);
          const sl = slot;
          undo.push(() => dp.drainingServices.set(sl, key.id));
        } else {
          slot = dp.freeServiceSlots.pop();
          if (slot === undefined) throw new LvsError('LVS_CAPACITY', `no room for another service (maxServices ${o.maxServices})`, { field: 'service' });
          const sl = slot;
          undo.push(() => dp.freeServiceSlots.push(sl));
        }
        const st: ServiceState = { slot, key, ...opts, lcEpoch: 0, reals: [], byId: new Map() };
        dp.services.set(key.id, st);
        undo.push(() => dp.services.delete(key.id));
        serviceChanged(st);
      },
      editService(k, changes) {
        const s = dp.findService(k);
        if (changes === null || typeof changes !== 'object') throw new LvsError('LVS_INVALID_ARGUMENT', 'changes: expected an object', { field: 'changes' });
        const next = v.serviceOptions(changes, s.key.family, s);
        if (!s.key.fwmark && s.key.port === 0 && !next.persistence) {
          throw new LvsError('LVS_PORT_ZERO', `Zero port specified for non-persistent service: ${s.key.id}`, { field: 'persistence' });
        }
        const prev = { scheduler: s.scheduler, flags: s.flags, persistence: s.persistence, mhSize: s.mhSize, quiesce: s.quiesce };
        Object.assign(s, next);
        undo.push(() => Object.assign(s, prev));
        serviceChanged(s);
      },
      deleteService(k) {
        const s = dp.findService(k);
        dp.services.delete(s.key.id);
        dp.drainingServices.set(s.slot, s.key.id);
        for (const r of s.reals) dp.drain(r.slot, s.key.id, r.id, r.lastWeight);
        undo.push(() => {
          dp.services.set(s.key.id, s);
          dp.drainingServices.delete(s.slot);
          for (const r of s.reals) dp.undrain(r.slot);
        });
        commands.push([Op.DEL_SERVICE, [s.slot]]);
      },
      addReal(k, spec) {
        const s = dp.findService(k);
        const r = dp.checkReal(s, spec);
        if (s.byId.has(r.id)) throw new LvsError('LVS_REAL_EXISTS', `Destination already exists: ${r.id} in ${s.key.id}`, { field: 'real' });
        const draining = dp.drainingRealIndex.get(`${s.key.id}|${r.id}`);
        let revivedLastWeight = 0;
        if (draining !== undefined) {
          // IPVS takes the dest back from its trash, connections, counters and last_weight too.
          r.slot = draining;
          const d = dp.drainingReals.get(draining)!;
          revivedLastWeight = d.lastWeight;
          dp.undrain(draining);
          undo.push(() => dp.drain(draining, s.key.id, r.id, d.lastWeight));
        } else {
          const slot = dp.freeRealSlots.pop();
          if (slot === undefined) throw new LvsError('LVS_CAPACITY', `no room for another real server (maxReals ${o.maxReals})`, { field: 'real' });
          r.slot = slot;
          undo.push(() => dp.freeRealSlots.push(slot));
        }
        if (r.weight > 0 && r.slowStart) r.rampFrom = dp.now();
        r.current = dp.rampWeight(r, dp.now());
        r.lastWeight = r.current > 0 ? r.current : revivedLastWeight;
        s.reals.unshift(r);
        s.byId.set(r.id, r);
        undo.push(() => {
          s.reals.shift();
          s.byId.delete(r.id);
        });
        commands.push(realCommand(s, r, true));
        touched.add(s);
        if (s.quiesce && r.weight > 0) bumpEpoch(s);
      },
      editReal(k, key, changes) {
        const s = dp.findService(k);
        const r = dp.findReal(s, key);
        if (changes === null || typeof changes !== 'object') throw new LvsError('LVS_INVALID_ARGUMENT', 'changes: expected an object', { field: 'changes' });
        const next = dp.checkReal(s, {
          address: r.address.text,
          port: r.port,
          weight: changes.weight ?? r.weight,
          method: changes.method ?? r.method,
          interface: changes.interface ?? r.iface,
          upperThreshold: changes.upperThreshold ?? r.upper,
          lowerThreshold: changes.lowerThreshold ?? r.lower,
          slowStart: changes.slowStart ?? r.slowStart / 1000,
          ...((changes.mac ?? r.mac?.text) !== undefined ? { mac: changes.mac ?? r.mac!.text } : {}),
        });
        const prev = { ...r };
        const rejoins = r.weight === 0 && next.weight > 0;
        Object.assign(r, { weight: next.weight, method: next.method, iface: next.iface, mac: next.mac, upper: next.upper, lower: next.lower, slowStart: next.slowStart });
        if (rejoins && r.slowStart) r.rampFrom = dp.now();
        if (!r.slowStart || r.weight === 0) r.rampFrom = null;
        r.current = dp.rampWeight(r, dp.now());
        if (r.current > 0) r.lastWeight = r.current;
        undo.push(() => Object.assign(r, prev));
        commands.push(realCommand(s, r, false));
        touched.add(s);
        if (s.quiesce && rejoins) bumpEpoch(s);
      },
      deleteReal(k, key) {
        const s = dp.findService(k);
        const r = dp.findReal(s, key);
        const at = s.reals.indexOf(r);
        s.reals.splice(at, 1);
        s.byId.delete(r.id);
        dp.drain(r.slot, s.key.id, r.id, r.lastWeight);
        undo.push(() => {
          s.reals.splice(at, 0, r);
          s.byId.set(r.id, r);
          dp.undrain(r.slot);
        });
        commands.push([Op.DEL_REAL, [r.slot]]);
        touched.add(s);
      },
      clear() {
        for (const s of [...dp.services.values()]) tx.deleteService(keyOf(s));
      },
      setTimeouts(t) {
        if (t === null || typeof t !== 'object') throw new LvsError('LVS_INVALID_TIMEOUT', 'timeouts: expected {tcp, tcpfin, udp}', { field: 'timeouts' });
        const max = 2_147_483; // seconds that fit the dataplane's 32-bit millisecond timeouts
        const tcp = t.tcp === undefined ? 0 : v.integer(t.tcp, 'tcp', 0, max, 'LVS_INVALID_TIMEOUT');
        const tcpfin = t.tcpfin === undefined ? 0 : v.integer(t.tcpfin, 'tcpfin', 0, max, 'LVS_INVALID_TIMEOUT');
        const udp = t.udp === undefined ? 0 : v.integer(t.udp, 'udp', 0, max, 'LVS_INVALID_TIMEOUT');
        const prev = { ...dp.timeoutsS };
        if (tcp) dp.timeoutsS.tcp = tcp;
        if (tcpfin) dp.timeoutsS.tcpfin = tcpfin;
        if (udp) dp.timeoutsS.udp = udp;
        undo.push(() => (dp.timeoutsS = prev));
        commands.push(timeoutsCommand(tcp, tcpfin, udp));
      },
      resetLeastConnection(k) {
        bumpEpoch(dp.findService(k));
      },
      setMarkRules(rules) {
        if (!Array.isArray(rules)) throw new LvsError('LVS_INVALID_ARGUMENT', 'rules: expected an array', { field: 'rules' });
        const parsed = rules.map((r, i) => v.markRule(r, `rules[${i}]`));
        const prev = dp.marks;
        dp.marks = parsed;
        undo.push(() => (dp.marks = prev));
        commands.push(...markCommands(parsed));
      },
      setBehaviour(b) {
        if (b === null || typeof b !== 'object') throw new LvsError('LVS_INVALID_OPTION', 'behaviour: expected an object', { field: 'behaviour' });
        for (const [k, val] of Object.entries(b)) {
          if (k !== 'expireNodestConn' && k !== 'expireQuiescentTemplate') throw new LvsError('LVS_INVALID_OPTION', `behaviour: unknown option "${k}"`, { field: k });
          if (typeof val !== 'boolean') throw new LvsError('LVS_INVALID_OPTION', `${k}: expected true or false`, { field: k });
        }
        const prev = dp.behaviour;
        dp.behaviour = { ...prev, ...b };
        undo.push(() => (dp.behaviour = prev));
        commands.push(optionsCommand(dp.optionFlags()));
      },
    };
    return tx;
  }

  private checkInterface(spec: InterfaceSpec): InterfaceState {
    if (spec === null || typeof spec !== 'object') throw new LvsError('LVS_INVALID_INTERFACE', 'interface: expected an object', { field: 'interface' });
    v.integer(spec.id, 'id', 0, 255, 'LVS_INVALID_INTERFACE');
    const mac = parseMac(spec.mac, 'mac');
    const mtu = spec.mtu === undefined ? 1500 : v.integer(spec.mtu, 'mtu', 68, 65535, 'LVS_INVALID_INTERFACE');
    const vlan = spec.vlan === undefined ? 0 : v.integer(spec.vlan, 'vlan', 0, 4094, 'LVS_INVALID_INTERFACE');
    const ipv4 = spec.ipv4 === undefined ? undefined : parseAddress(spec.ipv4, 'ipv4');
    const ipv6 = spec.ipv6 === undefined ? undefined : parseAddress(spec.ipv6, 'ipv6');
    if (ipv4 && ipv4.family !== 'ipv4') throw new LvsError('LVS_FAMILY_MISMATCH', `ipv4: ${spec.ipv4} is not an IPv4 address`, { field: 'ipv4' });
    if (ipv6 && ipv6.family !== 'ipv6') throw new LvsError('LVS_FAMILY_MISMATCH', `ipv6: ${spec.ipv6} is not an IPv6 address`, { field: 'ipv6' });
    return { spec: { ...spec }, mac, mtu, vlan, ipv4, ipv6 };
  }

  private checkReal(s: ServiceState, spec: RealServerSpec): RealState {
    if (spec === null || typeof spec !== 'object') throw new LvsError('LVS_INVALID_ARGUMENT', 'real: expected an object', { field: 'real' });
    const address = parseAddress(spec.address, 'address');
    const method = spec.method === undefined ? 'direct' : v.method(spec.method);
    const weight = spec.weight === undefined ? 1 : v.weight(spec.weight);
    const port = spec.port === undefined ? s.key.port : v.port(spec.port);
    if (address.family !== s.key.family && method !== 'tunnel') {
      throw new LvsError('LVS_FAMILY_MISMATCH', `address: ${address.text} is ${address.family} but ${s.key.id} is ${s.key.family} (only tunnel mode may mix families)`, { field: 'address' });
    }
    if (method !== 'nat' && !s.key.fwmark && port !== s.key.port) {
      throw new LvsError('LVS_PORT_MAPPING', `port: ${method} forwarding cannot change the port (${port} vs the service's ${s.key.port}); use nat`, { field: 'port' });
    }
    if (method === 'nat' && !s.key.fwmark && port === 0 && s.key.port !== 0) throw new LvsError('LVS_INVALID_PORT', 'port: a nat real server needs a port', { field: 'port' });
    const iface = v.integer(spec.interface, 'interface', 0, 255, 'LVS_INVALID_INTERFACE');
    if (!this.interfaces.has(iface)) throw new LvsError('LVS_INVALID_INTERFACE', `interface: ${iface} is not configured (setInterface first)`, { field: 'interface' });
    const mac = spec.mac === undefined ? undefined : parseMac(spec.mac, 'mac');
    const upper = spec.upperThreshold === undefined ? 0 : v.integer(spec.upperThreshold, 'upperThreshold', 0, 0x7fffffff, 'LVS_INVALID_THRESHOLD');
    const lower = spec.lowerThreshold === undefined ? 0 : v.integer(spec.lowerThreshold, 'lowerThreshold', 0, 0x7fffffff, 'LVS_INVALID_THRESHOLD');
    if (lower > upper) {
      // As the kernel (ERANGE): the lower threshold may not exceed the upper one.
      throw new LvsError('LVS_INVALID_THRESHOLD', `lowerThreshold: ${lower} is above the upper threshold ${upper}`, { field: 'lowerThreshold' });
    }
    const slowStart = spec.slowStart === undefined ? 0 : v.integer(spec.slowStart, 'slowStart', 0, 86_400, 'LVS_INVALID_ARGUMENT');
    const shown = address.family === 'ipv6' ? `[${address.text}]` : address.text;
    return { slot: -1, id: `${shown}:${port}`, address, port, weight, current: weight, lastWeight: weight, method, iface, mac, upper, lower, slowStart: slowStart * 1000, rampFrom: null };
  }

  private findService(key: ServiceKey): ServiceState {
    const k = v.serviceKey(key);
    const s = this.services.get(k.id);
    if (!s) throw new LvsError('LVS_NO_SUCH_SERVICE', `No such service: ${k.id}`, { field: 'service' });
    return s;
  }

  private findReal(s: ServiceState, key: RealServerKey): RealState {
    if (key === null || typeof key !== 'object') throw new LvsError('LVS_INVALID_ARGUMENT', 'real: expected {address, port}', { field: 'real' });
    const a = parseAddress(key.address, 'address');
    const port = key.port === undefined ? s.key.port : v.port(key.port);
    const shown = a.family === 'ipv6' ? `[${a.text}]` : a.text;
    const r = s.byId.get(`${shown}:${port}`);
    if (!r) throw new LvsError('LVS_NO_SUCH_REAL', `No such destination: ${shown}:${port} in ${s.key.id}`, { field: 'real' });
    return r;
  }

  /** The weight slow start allows `r` at `now`: from 1 up to its weight over its slow-start time. */
  private rampWeight(r: RealState, now: number): number {
    if (r.rampFrom === null || r.weight === 0) return r.weight;
    const elapsed = now - r.rampFrom;
    if (elapsed >= r.slowStart) return r.weight;
    return Math.max(1, Math.ceil((r.weight * Math.max(0, elapsed)) / r.slowStart));
  }

  /** Advance every ramp; the weights that change go out in one transaction. */
  private rampTick(): void {
    const now = this.now();
    const commands: Command[] = [];
    const touched = new Set<ServiceState>();
    for (const s of this.services.values()) {
      for (const r of s.reals) {
        if (r.rampFrom === null) continue;
        const w = this.rampWeight(r, now);
        if (now - r.rampFrom >= r.slowStart) r.rampFrom = null;
        if (w === r.current) continue;
        r.current = w;
        if (w > 0) r.lastWeight = w;
        commands.push(realCommand(s, r, false));
        touched.add(s);
      }
    }
    this.commit(commands, touched);
  }

  /** With a monotonic clock, ramps advance on a timer while any is running. */
  private scheduleRamp(): void {
    if (this.options.clock === 'manual' || this.rampTimer || this.closed) return;
    const ramping = () => [...this.services.values()].some((s) => s.reals.some((r) => r.rampFrom !== null));
    if (!ramping()) return;
    this.rampTimer = setInterval(() => {
      if (this.closed) return;
      this.rampTick();
      if (!ramping()) {
        clearInterval(this.rampTimer);
        this.rampTimer = undefined;
      }
    }, RAMP_TICK_MS);
    this.rampTimer.unref();
  }

  private drain(slot: number, service: string, real: string, lastWeight: number): void {
    this.drainingReals.set(slot, { service, real, lastWeight });
    this.drainingRealIndex.set(`${service}|${real}`, slot);
  }

  private undrain(slot: number): void {
    const d = this.drainingReals.get(slot);
    if (!d) return;
    this.drainingReals.delete(slot);
    this.drainingRealIndex.delete(`${d.service}|${d.real}`);
  }

  // ------------------------------------------------------------------------------------------
  // Internals: rings and events

  private send(commands: Command[]): void {
    this.backlog.push(...commands);
    this.flushBacklog();
  }

  private flushBacklog(): void {
    let sent = 0;
    while (sent < this.backlog.length) {
      const [op, payload] = this.backlog[sent]!;
      if (!this.commands.push(op, payload)) break;
      sent++;
    }
    if (sent) this.backlog.splice(0, sent);
    if (this.options.mode === 'threaded') {
      if (sent && this.commands.consumerSleeping()) this.nd.kick();
      if (this.backlog.length && !this.backlogTimer) {
        this.backlogTimer = setTimeout(() => {
          this.backlogTimer = undefined;
          if (!this.closed) this.flushBacklog();
        }, 1);
      }
    }
  }

  private onWake(): void {
    if (this.closed) return;
    Atomics.store(this.words, this.layout.notifyWord, 0);
    this.drainEvents();
    this.flushBacklog();
  }

  private drainEvents(): void {
    for (const ring of this.events) {
      for (const m of ring.drain()) this.onEvent(m.op, m.payload);
    }
    if (this.syncChunks.length) {
      // One 'sync' per drain, however many messages and workers the records came from.
      const records = this.syncChunks.length === 1 ? this.syncChunks[0]! : Buffer.concat(this.syncChunks);
      this.syncChunks = [];
      this.emit('sync', records);
    }
    if (this.settleWaiters.length) {
      const ready = this.settleWaiters.filter((w) => w.gen <= this.appliedGen);
      this.settleWaiters = this.settleWaiters.filter((w) => w.gen > this.appliedGen);
      for (const w of ready) {
        clearTimeout(w.timer);
        w.resolve();
      }
    }
  }

  private onEvent(op: number, p: Int32Array): void {
    switch (op) {
      case Ev.APPLIED:
        this.appliedGen = Math.max(this.appliedGen, (p[0]! >>> 0) + (p[1]! >>> 0) * 2 ** 32);
        return;
      case Ev.REAL_RELEASED: {
        const slot = p[0]!;
        if (this.drainingReals.has(slot)) {
          this.undrain(slot);
          this.zeroReals.delete(slot);
          this.freeRealSlots.push(slot);
        }
        return;
      }
      case Ev.SERVICE_RELEASED: {
        const slot = p[0]!;
        if (this.drainingServices.delete(slot)) {
          this.zeroServices.delete(slot);
          this.freeServiceSlots.push(slot);
        }
        return;
      }
      case Ev.REJECTED:
        this.emit('rejected', new LvsError('LVS_DATAPLANE_REJECTED', `the dataplane rejected command ${p[0]} (reason ${p[1]})`));
        return;
      case Ev.DUMP_READY: {
        const w = this.dumpWaiter;
        if (w && p[1] === w.request) {
          w.pending.delete(p[0]!);
          if (w.pending.size === 0) w.resolve();
        }
        return;
      }
      case Ev.SYNC:
        // The payload is a fresh copy of the ring words: its bytes are the records as written.
        this.syncChunks.push(Buffer.from(p.buffer, p.byteOffset, p.byteLength));
        return;
      case Ev.NEIGH_MISS: {
        const fam: Family = p[1] === 4 ? 'ipv4' : 'ipv6';
        const bytes = new Uint8Array(16);
        const dv = new DataView(bytes.buffer);
        for (let i = 0; i < 4; i++) dv.setUint32(i * 4, p[2 + i]! >>> 0);
        this.emit('neighbour-miss', { iface: p[0]!, address: formatAddress(fam, fam === 'ipv4' ? bytes.subarray(0, 4) : bytes) });
        return;
      }
    }
  }

  // ------------------------------------------------------------------------------------------
  // Internals: statistics and dumps

  private rawCounters(real: boolean, slot: number): number[] {
    const base = (real ? this.layout.stripeReals : this.layout.stripeServices) / 8 + slot * SLOT_COUNTERS;
    const out = new Array<number>(SLOT_COUNTERS).fill(0);
    for (let w = 0; w < this.options.workers; w++) {
      const off = (w * this.layout.stripeBytes) / 8 + base;
      for (let c = 0; c < SLOT_COUNTERS; c++) out[c]! += Number(this.stats64[off + c]!);
    }
    return out;
  }

  private traffic(real: boolean, slot: number): TrafficStats {
    const c = this.rawCounters(real, slot);
    const z = (real ? this.zeroReals : this.zeroServices).get(slot);
    const d = (i: number) => c[i]! - (z ? z[i]! : 0);
    return {
      connections: d(SlotCounter.CONNS),
      packetsIn: d(SlotCounter.INPKTS),
      packetsOut: d(SlotCounter.OUTPKTS),
      bytesIn: d(SlotCounter.INBYTES),
      bytesOut: d(SlotCounter.OUTBYTES),
    };
  }

  private serviceInfo(s: ServiceState): VirtualServiceInfo {
    return {
      family: s.key.family,
      protocol: s.key.protocol,
      address: s.key.address?.text ?? null,
      port: s.key.port,
      fwmark: s.key.fwmark,
      scheduler: s.scheduler,
      flags: [...s.flags],
      persistence: s.persistence ? { timeout: s.persistence.timeout, netmask: s.persistence.mask.text } : null,
      maglevTableSize: s.scheduler === 'mh' ? s.mhSize : null,
      quiesce: s.quiesce,
      reals: s.reals.map((r) => this.realInfo(r)),
      stats: this.traffic(false, s.slot),
    };
  }

  private realInfo(r: RealState): RealServerInfo {
    const c = this.rawCounters(true, r.slot);
    return {
      address: r.address.text,
      family: r.address.family,
      port: r.port,
      weight: r.weight,
      currentWeight: r.current,
      upperThreshold: r.upper,
      lowerThreshold: r.lower,
      method: r.method,
      interface: r.iface,
      mac: r.mac?.text ?? null,
      activeConnections: c[SlotCounter.ACTIVE]!,
      inactiveConnections: c[SlotCounter.INACTIVE]!,
      persistentConnections: c[SlotCounter.PERSIST]!,
      stats: this.traffic(true, r.slot),
    };
  }

  private decodeDump(b: Buffer): ConnectionEntry[] {
    const size = constants().dumpRecordBytes;
    const out: ConnectionEntry[] = [];
    for (let off = 0; off + size <= b.length; off += size) {
      const af: Family = b[off + 1] === 4 ? 'ipv4' : 'ipv6';
      const daf: Family = b[off + 2] === 4 ? 'ipv4' : 'ipv6';
      const addr = (at: number, f: Family) => formatAddress(f, b.subarray(off + at, off + at + (f === 'ipv4' ? 4 : 16)));
      const proto = b[off]!;
      const flags = b.readUInt16LE(off + 6);
      const template = (flags & ConnFlag.TEMPLATE) !== 0;
      out.push({
        protocol: proto === 6 ? 'TCP' : proto === 17 ? 'UDP' : 'IP',
        state: template ? ((flags & ConnFlag.ASSURED) !== 0 ? 'ASSURED' : 'NONE') : (STATE_NAMES[b[off + 3]!] ?? 'NONE'),
        expiresIn: b.readUInt32LE(off + 32),
        client: { address: addr(40, af), port: b.readUInt16LE(off + 8) },
        virtual: { address: addr(56, af), port: b.readUInt16LE(off + 10) },
        destination: { address: addr(72, daf), port: b.readUInt16LE(off + 12) },
        fwmark: b.readUInt32LE(off + 24),
        method: METHOD_OF_FWD[b[off + 4]!] ?? 'direct',
        template,
        packetsIn: b.readUInt32LE(off + 36),
      });
    }
    return out;
  }
}

function keyOf(s: ServiceState): ServiceKey {
  return s.key.protocol ? { protocol: s.key.protocol, address: s.key.address!.text, port: s.key.port } : { fwmark: s.key.fwmark, family: s.key.family };
}


