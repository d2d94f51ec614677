/**
 * A director on a real host: the dataplane on real interfaces (AF_XDP, or AF_PACKET where XDP
 * cannot be used), its services and reals, the VIPs and NAT router addresses brought up on
 * their devices, gratuitous ARP / unsolicited NA (Piranha's send_arp), IP forwarding where
 * NAT needs it, and the MAC addresses of reals and next hops from the kernel's neighbour table.
 *
 *   const director = new Director(config);
 *   await director.start();   // everything up, or (on error) nothing left behind
 *   ...
 *   await director.stop();    // VIPs, steering, sysctls: as they were before start()
 */
import { Dataplane } from '../dataplane/dataplane.js';
import { native, type NativeSteering, type XdpMode } from '../dataplane/native.js';
import type { RealServerSpec, ServiceKey, VirtualServiceSpec } from '../dataplane/types.js';
import { LvsError } from '../errors.js';
import { announce } from '../host/garp.js';
import { Host } from '../host/host.js';
import { Suppression } from '../host/suppress.js';
import { formatAddress, parseAddress, prefixMask, type Family } from '../net/address.js';
import { SteeringMaps, emptyOwnership, type Ownership } from './ownership.js';
import type { DirectorConfig, DirectorService, DirectorStatus, Logger } from './types.js';
import { validateConfig } from './validate.js';

const silent: Logger = { info() {}, warn() {}, error() {}, debug() {} };

interface Iface {
  id: number;
  name: string;
  ifindex: number;
  mac: string;
  mtu: number;
  ipv4?: string;
  ipv6?: string;
  xdpMode?: XdpMode;
}

interface RealPath {
  /** Reals that share this next hop, by service key and real key. */
  users: Array<{ service: ServiceKey; address: string; port: number | undefined }>;
  iface: Iface;
  nextHop: string;
  mac: string | null;
}

export class Director {
  readonly config: DirectorConfig;
  private readonly log: Logger;
  private readonly host: Host;
  private dp: Dataplane | null = null;
  private maps: SteeringMaps | null = null;
  private suppression: Suppression | null = null;
  private ioKind: 'xdp' | 'packet' | null = null;
  private ifaces = new Map<string, Iface>();
  private paths = new Map<string, RealPath>(); // key: `${ifindex} ${nextHop}`
  private vips: Array<{ address: string; device: string; prefixLength: number }> = [];
  private undo: Array<() => void | Promise<void>> = [];
  private timers = new Set<NodeJS.Timeout>();
  private announcing = new AbortController();
  private running = false;

  constructor(config: DirectorConfig) {
    this.config = validateConfig(config);
    this.log = config.logger ?? silent;
    this.host = new Host(config.netns);
  }

  /** The dataplane (listings, statistics, runtime changes); null before start(). */
  get dataplane(): Dataplane | null {
    return this.dp;
  }

  async start(): Promise<void> {
    if (this.running) throw new LvsError('LVS_MODE', 'the director is already running');
    try {
      await this.bringUp();
      this.running = true;
    } catch (e) {
      await this.tearDown();
      throw e;
    }
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    await this.tearDown();
    this.log.info({ event: 'stopped' }, 'director stopped');
  }

  status(): DirectorStatus {
    const info = this.dp?.info();
    return {
      running: this.running,
      io: this.ioKind && info ? { kind: this.ioKind, mode: info.ports[0]?.kind ?? this.ioKind, ports: info.ports } : null,
      interfaces: [...this.ifaces.values()].map((i) => ({ id: i.id, name: i.name, ifindex: i.ifindex, mac: i.mac, ...(i.xdpMode ? { xdpMode: i.xdpMode } : {}) })),
      vips: this.vips.map((v) => ({ address: v.address, device: v.device })),
      reals: [...this.paths.values()].flatMap((p) => p.users.map((u) => ({ address: u.address, device: p.iface.name, nextHop: p.nextHop, mac: p.mac }))),
    };
  }

  // ------------------------------------------------------------------------------------------

  private async bringUp(): Promise<void> {
    const c = this.config;
    this.log.info({ event: 'starting', netns: c.netns ?? null, services: c.services.length }, 'director starting');

    // 1. Interfaces: those of the VIPs, the NAT routers, the routes to the reals, and any named.
    const vipDevice = new Map<string, string>();
    for (const s of c.services) {
      for (const vip of serviceVips(s)) {
        const device = s.device ?? this.host.route(vip).device;
        vipDevice.set(vip, device);
        this.iface(device);
      }
    }
    for (const r of c.natRouters ?? []) this.iface(r.device);
    for (const d of c.devices ?? []) this.iface(d);
    for (const s of c.services) {
      for (const r of s.reals) this.path(s, r.address, r.port);
    }

    // 2. The backend: AF_XDP with the steering program, else AF_PACKET.
    await this.openDataplane();
    const dp = this.dp!;

    // 3. Configuration: interfaces, timeouts, behaviour, marks, services and reals.
    await Promise.all([...this.paths.values()].map((p) => this.resolve(p, c.neighbourTimeoutMs ?? 3000)));
    dp.transaction((tx) => {
      for (const i of this.ifaces.values()) {
        tx.setInterface({ id: i.id, name: i.name, mac: i.mac, mtu: i.mtu, ...(i.ipv4 ? { ipv4: i.ipv4 } : {}), ...(i.ipv6 ? { ipv6: i.ipv6 } : {}) });
      }
      if (c.timeouts) tx.setTimeouts(c.timeouts);
      if (c.behaviour) tx.setBehaviour(c.behaviour);
      if (c.marks) tx.setMarkRules(c.marks);
      for (const s of c.services) {
        const key = serviceKey(s);
        tx.addService({ ...key, ...serviceOptions(s) } as VirtualServiceSpec);
        for (const r of s.reals) tx.addReal(key, this.realSpec(s, r));
      }
    });
    await dp.settled();

    // 4. What the kernel hands to the dataplane.
    this.applyOwnership();

    // 5. Forwarding where the method needs it (the kernel forwards the reals' own traffic).
    const nat = new Set<Family>();
    for (const s of c.services) for (const r of s.reals) if ((r.method ?? 'direct') === 'nat') nat.add(parseAddress(r.address).family);
    if (nat.has('ipv4')) this.sysctl('net/ipv4/ip_forward', '1', 'IP forwarding for LVS-NAT');
    if (nat.has('ipv6')) this.sysctl('net/ipv6/conf/all/forwarding', '1', 'IPv6 forwarding for LVS-NAT');

    // 6. Addresses: NAT routers, then VIPs, then tell the segment.
    for (const r of c.natRouters ?? []) {
      const a = parseAddress(r.address);
      this.addAddress(r.device, a.text, r.prefixLength ?? (a.family === 'ipv4' ? 32 : 128), 'nat router');
    }
    for (const [vip, device] of vipDevice) this.addAddress(device, vip, parseAddress(vip).family === 'ipv4' ? 32 : 128, 'virtual address');
    this.announceAll();

    // 7. Keep next hops fresh and follow their changes.
    this.watchNeighbours();
    dp.on('neighbour-miss', ({ address }) => {
      for (const p of this.paths.values()) {
        if (p.users.some((u) => u.address === address)) this.host.resolveNeighbour(p.iface.ifindex, p.nextHop, { timeoutMs: 1000 }).catch(() => {});
      }
    });
    this.log.info({ event: 'started', io: this.status().io?.mode, interfaces: [...this.ifaces.keys()] }, 'director started');
  }

  private async openDataplane(): Promise<void> {
    const c = this.config;
    const choice = c.io ?? 'auto';
    const interfaces = [...this.ifaces.values()].map((i) => ({ id: i.id, ifindex: i.ifindex, name: i.name }));
    const base = { workers: c.workers ?? 1, ...(c.connectionCapacity ? { connectionCapacity: c.connectionCapacity } : {}) };
    if (choice !== 'packet') {
      try {
        const steering: NativeSteering = new (native().Steering)({ ...(c.netns ? { netns: c.netns } : {}) });
        this.undo.push(() => steering.close());
        for (const i of this.ifaces.values()) {
          i.xdpMode = steering.attach(i.ifindex, c.xdpMode ?? 'auto');
          this.log.info({ event: 'xdp-attached', device: i.name, mode: i.xdpMode }, `XDP steering attached to ${i.name} (${i.xdpMode})`);
        }
        const dp = new Dataplane({ ...base, io: { kind: 'xdp', interfaces, steering, ...(c.netns ? { netns: c.netns } : {}), ...(c.zeroCopy !== undefined ? { zeroCopy: c.zeroCopy } : {}) } });
        this.setDataplane(dp, 'xdp');
        this.maps = new SteeringMaps(steering);
        return;
      } catch (e) {
        for (const i of this.ifaces.values()) delete i.xdpMode;
        await this.runUndo();
        if (choice === 'xdp') throw e;
        this.log.warn({ event: 'xdp-unavailable', err: (e as Error).message }, `AF_XDP unavailable (${(e as Error).message}); using AF_PACKET`);
      }
    }
    const suppression = new Suppression(c.netns ?? '', 'lvsd');
    this.suppression = suppression;
    this.undo.push(() => {
      suppression.remove();
      this.suppression = null;
    });
    const dp = new Dataplane({ ...base, io: { kind: 'packet', interfaces, ...(c.netns ? { netns: c.netns } : {}) } });
    this.setDataplane(dp, 'packet');
  }

  private setDataplane(dp: Dataplane, kind: 'xdp' | 'packet'): void {
    this.dp = dp;
    this.ioKind = kind;
    this.undo.push(async () => {
      await dp.close();
      this.dp = null;
      this.ioKind = null;
    });
    this.log.info({ event: 'io', backend: dp.info().ports[0]?.kind ?? kind, workers: dp.info().workers }, `packet I/O: ${dp.info().ports[0]?.kind ?? kind}`);
  }

  /** The dataplane interface for a device, made on first use. */
  private iface(name: string): Iface {
    const known = this.ifaces.get(name);
    if (known) return known;
    const link = this.host.link(name);
    const addrs = this.host.addresses(name);
    const v4 = addrs.find((a) => parseAddress(a.address).family === 'ipv4');
    const v6 = addrs.find((a) => parseAddress(a.address).family === 'ipv6' && !a.address.toLowerCase().startsWith('fe80:'));
    const i: Iface = { id: this.ifaces.size, name, ifindex: link.ifindex, mac: link.mac, mtu: link.mtu, ...(v4 ? { ipv4: v4.address } : {}), ...(v6 ? { ipv6: v6.address } : {}) };
    this.ifaces.set(name, i);
    return i;
  }

  /** Where a real's frames go: its device and next hop (the real, or the route's gateway). */
  private path(s: DirectorService, address: string, port: number | undefined): RealPath {
    const route = this.host.route(address);
    const iface = this.iface(route.device);
    const nextHop = route.gateway ?? parseAddress(address).text;
    const key = `${iface.ifindex} ${nextHop}`;
    let p = this.paths.get(key);
    if (!p) {
      p = { users: [], iface, nextHop, mac: null };
      this.paths.set(key, p);
    }
    p.users.push({ service: serviceKey(s), address: parseAddress(address).text, port });
    return p;
  }

  private async resolve(p: RealPath, timeoutMs: number): Promise<void> {
    p.mac = this.host.neighbour(p.iface.ifindex, p.nextHop);
    if (p.mac) return;
    try {
      p.mac = await this.host.resolveNeighbour(p.iface.ifindex, p.nextHop, { timeoutMs });
    } catch (e) {
      this.log.warn({ event: 'neighbour-unresolved', nextHop: p.nextHop, device: p.iface.name, err: (e as Error).message }, `no MAC address for ${p.nextHop} on ${p.iface.name} yet; its reals get traffic once it resolves`);
    }
  }

  private realSpec(s: DirectorService, r: DirectorService['reals'][number]): RealServerSpec {
    const route = [...this.paths.values()].find((p) => p.users.some((u) => u.address === parseAddress(r.address).text && sameKey(u.service, serviceKey(s))))!;
    return {
      address: r.address,
      ...(r.port !== undefined ? { port: r.port } : {}),
      ...(r.weight !== undefined ? { weight: r.weight } : {}),
      method: r.method ?? 'direct',
      interface: route.iface.id,
      ...(route.mac ? { mac: route.mac } : {}),
      ...(r.upperThreshold !== undefined ? { upperThreshold: r.upperThreshold } : {}),
      ...(r.lowerThreshold !== undefined ? { lowerThreshold: r.lowerThreshold } : {}),
      ...(r.slowStart !== undefined ? { slowStart: r.slowStart } : {}),
    };
  }

  private ownership(): Ownership {
    const o = emptyOwnership();
    const c = this.config;
    const markServices = new Set<number>();
    for (const s of c.services) {
      if ('fwmark' in s) markServices.add(s.fwmark);
      else o.services.push({ address: parseAddress(s.address).text, protocol: s.protocol, port: s.port });
      for (const r of s.reals) {
        if ((r.method ?? 'direct') !== 'nat') continue;
        const address = parseAddress(r.address).text;
        if ('fwmark' in s) {
          for (const protocol of ['tcp', 'udp'] as const) o.natReals.push({ address, protocol, port: r.port ?? 0 });
        } else o.natReals.push({ address, protocol: s.protocol, port: r.port ?? s.port });
      }
    }
    for (const m of c.marks ?? []) {
      if (!markServices.has(m.mark)) continue;
      const [addr, plen] = m.destination.split('/');
      const a = parseAddress(addr!);
      const prefixLength = plen === undefined ? (a.family === 'ipv4' ? 32 : 128) : Number(plen);
      o.prefixes.push({ address: prefixMaskApply(a.text, a.family, prefixLength), prefixLength });
    }
    for (const i of this.ifaces.values()) {
      for (const a of this.host.addresses(i.name)) o.locals.push(parseAddress(a.address).text);
    }
    for (const r of c.natRouters ?? []) o.locals.push(parseAddress(r.address).text);
    o.locals = [...new Set(o.locals)];
    return dedupe(o);
  }

  private applyOwnership(): void {
    const o = this.ownership();
    if (this.maps) {
      this.maps.apply(o);
      this.undo.push(() => this.maps?.apply(emptyOwnership()));
    } else if (this.suppression) {
      this.suppression.apply({ devices: [...this.ifaces.keys()], ...o });
    }
    this.log.info({ event: 'steering', services: o.services.length, natReals: o.natReals.length, prefixes: o.prefixes.length }, 'traffic steering in place');
  }

  private sysctl(key: string, value: string, why: string): void {
    const before = this.host.sysctl(key).trim();
    if (before === value) return;
    this.host.sysctl(key, value);
    this.log.info({ event: 'sysctl', key, value, before }, `${key.replaceAll('/', '.')}=${value} (${why}); was ${before}`);
    this.undo.push(() => {
      this.host.sysctl(key, before);
      this.log.info({ event: 'sysctl', key, value: before }, `${key.replaceAll('/', '.')}=${before} restored`);
    });
  }

  private addAddress(device: string, address: string, prefixLength: number, what: string): void {
    const exists = this.host.addresses(device).some((a) => parseAddress(a.address).text === address);
    if (exists) {
      this.log.warn({ event: 'address-exists', device, address }, `${what} ${address} is already on ${device}; leaving it as it is`);
      return;
    }
    this.host.addAddress(device, address, prefixLength, { nodad: true });
    this.vips.push({ address, device, prefixLength });
    this.log.info({ event: 'address-up', device, address, what }, `${what} ${address}/${prefixLength} up on ${device}`);
    this.undo.push(() => {
      this.host.delAddress(device, address, prefixLength);
      this.vips = this.vips.filter((v) => !(v.address === address && v.device === device));
      this.log.info({ event: 'address-down', device, address, what }, `${what} ${address} down on ${device}`);
    });
  }

  private announceAll(): void {
    const count = this.config.announce?.count ?? 5;
    const intervalMs = this.config.announce?.intervalMs ?? 1000;
    if (count === 0 || this.vips.length === 0) return;
    this.announcing = new AbortController();
    const signal = this.announcing.signal;
    this.undo.push(() => this.announcing.abort());
    const vips = [...this.vips];
    Promise.all(vips.map((v) => announce(this.host, v.device, v.address, { count, intervalMs, signal })))
      .then(() => {
        if (!signal.aborted) this.log.info({ event: 'garp-finished', addresses: vips.map((v) => v.address) }, 'gratuitous lvs arps finished');
      })
      .catch((e: Error) => {
        if (!signal.aborted) this.log.error({ event: 'garp-failed', err: e.message }, `gratuitous ARP failed: ${e.message}`);
      });
  }

  private watchNeighbours(): void {
    const watcher = this.host.watchNeighbours((events) => {
      for (const ev of events) {
        if (ev.deleted || !ev.mac) continue;
        const p = this.paths.get(`${ev.ifindex} ${ev.address}`);
        if (!p || p.mac === ev.mac) continue;
        const before = p.mac;
        p.mac = ev.mac;
        this.pushMac(p);
        this.log.info({ event: 'neighbour', nextHop: p.nextHop, device: p.iface.name, mac: ev.mac, before }, `${p.nextHop} on ${p.iface.name} is at ${ev.mac}`);
      }
    });
    this.undo.push(() => watcher.close());
    const refresh = this.config.neighbourRefreshMs ?? 30_000;
    const timer = setInterval(() => {
      for (const p of this.paths.values()) {
        try {
          this.host.resolveNeighbour(p.iface.ifindex, p.nextHop, { timeoutMs: refresh }).catch(() => {});
        } catch {
          // The device went away: the next start() will say so.
        }
      }
    }, refresh);
    timer.unref();
    this.timers.add(timer);
    this.undo.push(() => {
      clearInterval(timer);
      this.timers.delete(timer);
    });
  }

  private pushMac(p: RealPath): void {
    const dp = this.dp;
    if (!dp || !p.mac) return;
    dp.transaction((tx) => {
      for (const u of p.users) tx.editReal(u.service, { address: u.address, ...(u.port !== undefined ? { port: u.port } : {}) }, { mac: p.mac! });
    });
  }

  private async runUndo(): Promise<void> {
    while (this.undo.length) {
      const step = this.undo.pop()!;
      try {
        await step();
      } catch (e) {
        this.log.error({ event: 'teardown-failed', err: (e as Error).message }, `while stopping: ${(e as Error).message}`);
      }
    }
  }

  private async tearDown(): Promise<void> {
    await this.runUndo();
    this.maps = null;
    this.paths.clear();
    this.ifaces.clear();
    this.vips = [];
  }
}

function serviceVips(s: DirectorService): string[] {
  return 'fwmark' in s ? (s.addresses ?? []).map((a) => parseAddress(a).text) : [parseAddress(s.address).text];
}

function serviceKey(s: DirectorService): ServiceKey {
  return 'fwmark' in s ? { fwmark: s.fwmark, ...(s.family ? { family: s.family } : {}) } : { protocol: s.protocol, address: s.address, port: s.port };
}

function sameKey(a: ServiceKey, b: ServiceKey): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function serviceOptions(s: DirectorService): Omit<VirtualServiceSpec, 'protocol' | 'address' | 'port' | 'fwmark' | 'family'> {
  return {
    ...(s.scheduler ? { scheduler: s.scheduler } : {}),
    ...(s.flags ? { flags: s.flags } : {}),
    ...(s.persistence !== undefined ? { persistence: s.persistence } : {}),
    ...(s.maglevTableSize ? { maglevTableSize: s.maglevTableSize } : {}),
    ...(s.quiesce !== undefined ? { quiesce: s.quiesce } : {}),
  };
}

function prefixMaskApply(text: string, family: Family, plen: number): string {
  const a = parseAddress(text).bytes;
  const m = prefixMask(family, plen).bytes;
  return formatAddress(family, a.map((b, i) => b & m[i]!));
}

function dedupe(o: Ownership): Ownership {
  const uniq = <T>(xs: T[]) => [...new Map(xs.map((x) => [JSON.stringify(x), x])).values()];
  return { services: uniq(o.services), natReals: uniq(o.natReals), locals: uniq(o.locals), prefixes: uniq(o.prefixes) };
}
