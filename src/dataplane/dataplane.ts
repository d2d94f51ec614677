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
import {
  addressWords,
  familyNumber,
  formatAddress,
  macWords,
  parseAddress,
  parseMac,
  type Family,
  type IpAddress,
  type MacAddress,
} from '../net/address.js';
import { constants, native, type NativeDataplane, type NativeLayout } from './native.js';
import { ConnFlag, Ev, Fwd, Op, SchedulerCode, SLOT_COUNTERS, STATE_NAMES, SlotCounter, State, Verdict } from './protocol.js';
import { RingConsumer, RingProducer } from './ring.js';
import type {
  ConnectionEntry,
  DataplaneOptions,
  ForwardingMethod,
  Frame,
  InterfaceSpec,
  OutputFrame,
  RealServerChanges,
  RealServerInfo,
  RealServerKey,
  RealServerSpec,
  ReplayResult,
  SchedulerName,
  ServiceKey,
  Timeouts,
  TrafficStats,
  VirtualServiceChanges,
  VirtualServiceInfo,
  VirtualServiceSpec,
} from './types.js';
import * as v from './validate.js';

interface ServiceState {
  slot: number;
  key: v.ParsedServiceKey;
  scheduler: SchedulerName;
  /** IPVS list order: new reals go to the head. */
  reals: RealState[];
  byId: Map<string, RealState>;
}

interface RealState {
  slot: number;
  id: string;
  address: IpAddress;
  port: number;
  weight: number;
  method: ForwardingMethod;
  iface: number;
  mac: MacAddress | undefined;
}

interface InterfaceState {
  spec: InterfaceSpec;
  mac: MacAddress;
  mtu: number;
  vlan: number;
  ipv4: IpAddress | undefined;
  ipv6: IpAddress | undefined;
}

type Command = [op: number, payload: number[]];

const METHOD_OF_FWD: Record<number, ForwardingMethod> = { [Fwd.nat]: 'nat', [Fwd.direct]: 'direct', [Fwd.tunnel]: 'tunnel' };
const SETTLE_TIMEOUT_MS = 10_000;

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
}

export interface DataplaneEvents {
  /** A real's next-hop MAC address is unknown: resolve it and editReal({mac}). */
  'neighbour-miss': [{ iface: number; address: string }];
  /** The native side refused a command: a bug in this library, reported with its code. */
  rejected: [LvsError];
}

export class Dataplane extends EventEmitter<DataplaneEvents> {
  readonly options: Required<DataplaneOptions>;
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
  private readonly drainingReals = new Map<number, { service: string; real: string }>();
  /** "service|real" -> slot of drainingReals, to revive a re-added real in O(1). */
  private readonly drainingRealIndex = new Map<string, number>();
  private readonly zeroServices = new Map<number, number[]>();
  private readonly zeroReals = new Map<number, number[]>();
  private timeoutsS: Timeouts;

  private committedGen = 0;
  private appliedGen = 0;
  private settleWaiters: Array<{ gen: number; resolve: () => void; reject: (e: Error) => void; timer: NodeJS.Timeout }> = [];
  private dumpRequest = 0;
  private dumpWaiter: { request: number; pending: Set<number>; resolve: () => void; reject: (e: Error) => void } | undefined;
  private closed = false;

  constructor(options: DataplaneOptions = {}) {
    super();
    this.options = normaliseOptions(options);
    const addon = native();
    const o = this.options;
    const layoutOptions = {
      workers: o.workers,
      maxServices: o.maxServices,
      maxReals: o.maxReals,
      commandRingWords: 1 << 16,
      eventRingWords: 1 << 14,
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
        { ...layoutOptions, connectionCapacity: o.connectionCapacity, threaded: o.mode === 'threaded', manualClock: o.clock === 'manual', memorySlots: o.memorySlots, seed: o.seed },
        new Uint8Array(this.region),
        () => this.onWake(),
      );
    } catch (cause) {
      throw new LvsError('LVS_DATAPLANE_INIT', `cannot start the dataplane: ${(cause as Error).message}`, { cause });
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
    const tx = this.makeTransaction(undo, commands);
    try {
      fn(tx);
    } catch (e) {
      for (let i = undo.length - 1; i >= 0; i--) undo[i]!();
      throw e;
    }
    if (commands.length === 0) return;
    this.committedGen++;
    commands.push([Op.COMMIT, [this.committedGen & 0xffffffff, Math.floor(this.committedGen / 2 ** 32)]]);
    this.send(commands);
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
    this.ensureOpen();
    if (this.dumpWaiter) throw new LvsError('LVS_INVALID_ARGUMENT', 'a connection listing is already in progress');
    const request = (this.dumpRequest = (this.dumpRequest % 0x7fffffff) + 1);
    const buffers: Buffer[] = [];
    const done = new Promise<void>((resolve, reject) => {
      this.dumpWaiter = { request, pending: new Set(Array.from({ length: this.options.workers }, (_, i) => i)), resolve, reject };
    });
    this.send([[Op.DUMP_CONNS, [request]]]);
    if (this.options.mode === 'manual') this.poll();
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
    return buffers.flatMap((b) => this.decodeDump(b));
  }

  /** Table memory and capacity, for operators and benchmarks. */
  info(): { tableBytes: number; tableCapacity: number; workers: number; connectionEntryBytes: number } {
    const i = this.nd.info();
    return { tableBytes: i.tableBytes, tableCapacity: i.tableCapacity, workers: i.workers, connectionEntryBytes: constants().connEntryBytes };
  }

  // ------------------------------------------------------------------------------------------
  // Driving it

  /** Manual mode: apply pending commands and run every worker over its pending frames. */
  poll(): void {
    this.ensureOpen();
    if (this.options.mode !== 'manual') throw new LvsError('LVS_MODE', 'poll() is for mode "manual"; threaded dataplanes run by themselves');
    for (let round = 0; round < 1000; round++) {
      this.flushBacklog();
      this.nd.poll();
      this.drainEvents();
      if (this.backlog.length === 0) return;
    }
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

  private makeTransaction(undo: Array<() => void>, commands: Command[]): DataplaneTransaction {
    const dp = this;
    const o = this.options;
    return {
      setInterface(spec) {
        const st = dp.checkInterface(spec);
        const prev = dp.interfaces.get(spec.id);
        dp.interfaces.set(spec.id, st);
        undo.push(() => (prev ? dp.interfaces.set(spec.id, prev) : dp.interfaces.delete(spec.id)));
        const flags = (st.ipv4 ? 1 : 0) | (st.ipv6 ? 2 : 0);
        commands.push([Op.SET_INTERFACE, [spec.id, st.mtu, st.vlan, flags, ...macWords(st.mac), addressWords(st.ipv4)[0], ...addressWords(st.ipv6)]]);
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
        const sched = spec.scheduler === undefined ? 'rr' : v.scheduler(spec.scheduler);
        if (dp.services.has(key.id)) throw new LvsError('LVS_SERVICE_EXISTS', `Service already exists: ${key.id}`, { field: 'service' });
        if (!key.fwmark && key.port === 0) {
          throw new LvsError('LVS_PORT_ZERO', `Zero port specified for non-persistent service: ${key.id}`, { field: 'port' });
        }
        // Re-adding a service that is still draining revives its slot, as IPVS revives dests.
        let slot = [...dp.drainingServices].find(([, id]) => id === key.id)?.[0];
        if (slot !== undefined) {
          dp.drainingServices.delete(slot);
          const s = slot;
          undo.push(() => dp.drainingServices.set(s, key.id));
        } else {
          slot = dp.freeServiceSlots.pop();
          if (slot === undefined) throw new LvsError('LVS_CAPACITY', `no room for another service (maxServices ${o.maxServices})`, { field: 'service' });
          const s = slot;
          undo.push(() => dp.freeServiceSlots.push(s));
        }
        const st: ServiceState = { slot, key, scheduler: sched, reals: [], byId: new Map() };
        dp.services.set(key.id, st);
        undo.push(() => dp.services.delete(key.id));
        commands.push(serviceCommand(st));
      },
      editService(k, changes) {
        const s = dp.findService(k);
        if (changes === null || typeof changes !== 'object') throw new LvsError('LVS_INVALID_ARGUMENT', 'changes: expected an object', { field: 'changes' });
        const sched = changes.scheduler === undefined ? s.scheduler : v.scheduler(changes.scheduler);
        const prev = s.scheduler;
        s.scheduler = sched;
        undo.push(() => (s.scheduler = prev));
        commands.push(serviceCommand(s));
      },
      deleteService(k) {
        const s = dp.findService(k);
        dp.services.delete(s.key.id);
        dp.drainingServices.set(s.slot, s.key.id);
        for (const r of s.reals) dp.drain(r.slot, s.key.id, r.id);
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
        if (draining !== undefined) {
          r.slot = draining;
          dp.undrain(draining);
          undo.push(() => dp.drain(draining, s.key.id, r.id));
        } else {
          const slot = dp.freeRealSlots.pop();
          if (slot === undefined) throw new LvsError('LVS_CAPACITY', `no room for another real server (maxReals ${o.maxReals})`, { field: 'real' });
          r.slot = slot;
          undo.push(() => dp.freeRealSlots.push(slot));
        }
        s.reals.unshift(r);
        s.byId.set(r.id, r);
        undo.push(() => {
          s.reals.shift();
          s.byId.delete(r.id);
        });
        commands.push(realCommand(s, r, true));
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
          ...((changes.mac ?? r.mac?.text) !== undefined ? { mac: changes.mac ?? r.mac!.text } : {}),
        });
        const prev = { ...r };
        Object.assign(r, { weight: next.weight, method: next.method, iface: next.iface, mac: next.mac });
        undo.push(() => Object.assign(r, prev));
        commands.push(realCommand(s, r, false));
      },
      deleteReal(k, key) {
        const s = dp.findService(k);
        const r = dp.findReal(s, key);
        const at = s.reals.indexOf(r);
        s.reals.splice(at, 1);
        s.byId.delete(r.id);
        dp.drain(r.slot, s.key.id, r.id);
        undo.push(() => {
          s.reals.splice(at, 0, r);
          s.byId.set(r.id, r);
          dp.undrain(r.slot);
        });
        commands.push([Op.DEL_REAL, [r.slot]]);
      },
      clear() {
        for (const s of [...dp.services.values()]) this.deleteService(s.key.protocol ? { protocol: s.key.protocol, address: s.key.address!.text, port: s.key.port } : { fwmark: s.key.fwmark, family: s.key.family });
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
        const ms = new Array<number>(STATE_NAMES.length).fill(0);
        ms[State.ESTABLISHED] = tcp * 1000;
        ms[State.FIN_WAIT] = tcpfin * 1000;
        ms[State.UDP] = udp * 1000;
        commands.push([Op.SET_TIMEOUTS, [ms.length, ...ms]]);
      },
    };
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
    if (method === 'nat' && !s.key.fwmark && port === 0) throw new LvsError('LVS_INVALID_PORT', 'port: a nat real server needs a port', { field: 'port' });
    const iface = v.integer(spec.interface, 'interface', 0, 255, 'LVS_INVALID_INTERFACE');
    if (!this.interfaces.has(iface)) throw new LvsError('LVS_INVALID_INTERFACE', `interface: ${iface} is not configured (setInterface first)`, { field: 'interface' });
    const mac = spec.mac === undefined ? undefined : parseMac(spec.mac, 'mac');
    const shown = address.family === 'ipv6' ? `[${address.text}]` : address.text;
    return { slot: -1, id: `${shown}:${port}`, address, port, weight, method, iface, mac };
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

  private drain(slot: number, service: string, real: string): void {
    this.drainingReals.set(slot, { service, real });
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
        protocol: template && b.readUInt32LE(off + 24) ? 'IP' : proto === 6 ? 'TCP' : proto === 17 ? 'UDP' : 'IP',
        state: STATE_NAMES[b[off + 3]!] ?? 'NONE',
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

function serviceCommand(s: ServiceState): Command {
  const k = s.key;
  return [
    Op.SET_SERVICE,
    [s.slot, familyNumber(k.family), k.protocol === 'udp' ? 17 : k.protocol === 'tcp' ? 6 : 0, k.port, k.fwmark | 0, SchedulerCode[s.scheduler], 0, 0, 0, ...addressWords(k.address ?? undefined), 0, 0, 0, 0],
  ];
}

function realCommand(s: ServiceState, r: RealState, isNew: boolean): Command {
  return [
    Op.SET_REAL,
    [r.slot, s.slot, familyNumber(r.address.family), r.port, r.weight, Fwd[r.method], 0, 0, r.iface, isNew ? 1 : 0, ...macWords(r.mac), ...addressWords(r.address)],
  ];
}

function normaliseOptions(o: DataplaneOptions): Required<DataplaneOptions> {
  if (o === null || typeof o !== 'object') throw new LvsError('LVS_INVALID_OPTION', 'options: expected an object', { field: 'options' });
  const mode = o.mode ?? 'threaded';
  if (mode !== 'threaded' && mode !== 'manual') throw new LvsError('LVS_INVALID_OPTION', `mode: expected "threaded" or "manual", got ${JSON.stringify(mode)}`, { field: 'mode' });
  const clock = o.clock ?? 'monotonic';
  if (clock !== 'monotonic' && clock !== 'manual') throw new LvsError('LVS_INVALID_OPTION', `clock: expected "monotonic" or "manual", got ${JSON.stringify(clock)}`, { field: 'clock' });
  return {
    workers: o.workers === undefined ? 1 : v.integer(o.workers, 'workers', 1, 64, 'LVS_INVALID_OPTION'),
    mode,
    clock,
    connectionCapacity: o.connectionCapacity === undefined ? 1 << 18 : v.integer(o.connectionCapacity, 'connectionCapacity', 1, 1 << 27, 'LVS_INVALID_OPTION'),
    maxServices: o.maxServices === undefined ? 256 : v.integer(o.maxServices, 'maxServices', 1, 65536, 'LVS_INVALID_OPTION'),
    maxReals: o.maxReals === undefined ? 4096 : v.integer(o.maxReals, 'maxReals', 1, 1 << 20, 'LVS_INVALID_OPTION'),
    memorySlots: v.optionalPowerOfTwo(o.memorySlots, 'memorySlots', 1024, 2, 1 << 16),
    seed: o.seed === undefined ? 0 : v.integer(o.seed, 'seed', 0, 0xffffffff, 'LVS_INVALID_OPTION'),
  };
}

/** The memory backend: push frames in, read out what would leave and where. */
export class MemoryBackend {
  constructor(
    private readonly dp: Dataplane,
    private readonly nd: NativeDataplane,
  ) {}

  /** Queue frames for a worker; returns how many fit. */
  send(frames: Frame[], worker = 0): number {
    this.dp.ensureOpen();
    this.checkWorker(worker);
    const max = constants().maxFrame;
    frames.forEach((f, i) => {
      v.integer(f.iface, `frames[${i}].iface`, 0, 255, 'LVS_INVALID_INTERFACE');
      if (!(f.data instanceof Uint8Array)) throw new LvsError('LVS_INVALID_ARGUMENT', `frames[${i}].data: expected a Uint8Array`, { field: `frames[${i}].data` });
      if (f.data.length > max) throw new LvsError('LVS_FRAME_TOO_LARGE', `frames[${i}]: ${f.data.length} bytes exceed the memory backend's ${max}`, { field: `frames[${i}].data` });
    });
    return this.nd.inject(worker, Uint16Array.from(frames, (f) => f.iface), frames.map((f) => f.data));
  }

  /** Frames the worker has finished with: transmitted (tx) or handed to the kernel (pass). */
  receive(worker = 0, max = 1 << 16): OutputFrame[] {
    this.dp.ensureOpen();
    this.checkWorker(worker);
    return this.nd.collect(worker, max).map((o) => ({ iface: o.iface, action: o.verdict === Verdict.pass ? 'pass' : 'tx', data: o.data }));
  }

  /** Send frames through and return everything that comes out (any number of frames). */
  async process(frames: Frame[], worker = 0): Promise<OutputFrame[]> {
    const out: OutputFrame[] = [];
    const manual = this.dp.options.mode === 'manual';
    let at = 0;
    while (at < frames.length) {
      const before = this.dp.rxPackets(worker);
      const n = this.send(frames.slice(at), worker);
      at += n;
      if (manual) {
        this.dp.poll();
      } else {
        const deadline = Date.now() + SETTLE_TIMEOUT_MS;
        while (this.dp.rxPackets(worker) < before + n) {
          if (Date.now() > deadline) throw new LvsError('LVS_TIMEOUT', 'the dataplane did not process the frames in time');
          await new Promise((r) => setTimeout(r, 1));
        }
      }
      out.push(...this.receive(worker));
    }
    return out;
  }

  /** Manual mode: run `frames` round and round through one worker, `packets` in all, and time it. */
  replay(frames: Frame[], packets: number, worker = 0): ReplayResult {
    this.dp.ensureOpen();
    if (this.dp.options.mode !== 'manual') throw new LvsError('LVS_MODE', 'replay() needs mode "manual"');
    this.checkWorker(worker);
    v.integer(packets, 'packets', 0, Number.MAX_SAFE_INTEGER, 'LVS_INVALID_ARGUMENT');
    this.dp.poll();
    const r = this.nd.replay(frames.map((f) => f.data), Uint16Array.from(frames, (f) => f.iface), packets, worker);
    const seconds = r.ns / 1e9;
    return { packets: r.packets, tx: r.tx, pass: r.pass, drop: r.drop, txBytes: r.txBytes, seconds, packetsPerSecond: seconds > 0 ? r.packets / seconds : 0 };
  }

  private checkWorker(worker: number): void {
    v.integer(worker, 'worker', 0, this.dp.options.workers - 1, 'LVS_INVALID_ARGUMENT');
  }
}

