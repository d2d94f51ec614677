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
import type { DataplaneTransaction } from '../dataplane/dataplane.js';
import type { RealServerChanges, RealServerKey, RealServerSpec, ServiceKey, VirtualServiceSpec } from '../dataplane/types.js';
import { LvsError } from '../errors.js';
import { announce } from '../host/garp.js';
import { Host } from '../host/host.js';
import { Suppression } from '../host/suppress.js';
import { formatAddress, parseAddress, prefixMask, type Family } from '../net/address.js';
import { SteeringMaps, emptyOwnership, type Ownership } from './ownership.js';
import type { DirectorConfig, DirectorRealServer, DirectorService, DirectorStatus, Logger } from './types.js';
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

export interface ApplySummary {
  servicesAdded: string[];
  servicesRemoved: string[];
  servicesChanged: string[];
  realsAdded: number;
  realsRemoved: number;
  realsChanged: number;
}

export class Director {
  private running: DirectorConfig;
  private readonly log: Logger;
  private readonly host: Host;
  private dp: Dataplane | null = null;
  private maps: SteeringMaps | null = null;
  private suppression: Suppression | null = null;
  private ioKind: 'xdp' | 'packet' | null = null;
  private ifaces = new Map<string, Iface>();
  private paths = new Map<string, RealPath>(); // key: `${ifindex} ${nextHop}`
  /** Addresses this director added (VIPs, NAT routers), by `${device} ${address}`. */
  private addresses = new Map<string, { device: string; address: string; prefixLength: number; what: string }>();
  private undo: Array<() => void | Promise<void>> = [];
  private announcing = new Set<AbortController>();
  private isRunning = false;
  private active: boolean;
  private applying: Promise<unknown> = Promise.resolve();

  constructor(config: DirectorConfig) {
    this.running = validateConfig(config);
    this.active = !config.standby;
    this.log = config.logger ?? silent;
    this.host = new Host(config.netns);
  }

  /** The configuration in force (as given to the constructor, then to apply()). */
  get config(): DirectorConfig {
    return this.running;
  }

  /** The dataplane (listings, statistics); null before start(). */
  get dataplane(): Dataplane | null {
    return this.dp;
  }

  async start(): Promise<void> {
    if (this.isRunning) throw new LvsError('LVS_MODE', 'the director is already running');
    try {
      await this.bringUp();
      this.isRunning = true;
    } catch (e) {
      await this.tearDown();
      throw e;
    }
  }

  async stop(): Promise<void> {
    if (!this.isRunning) return;
    this.isRunning = false;
    await this.applying.catch(() => {});
    await this.tearDown();
    this.log.info({ event: 'stopped' }, 'director stopped');
  }

  /**
   * Change the running director to `next`: validated whole, then applied as a difference.
   * Services, reals and their connections that did not change are not touched; a rejected
   * configuration changes nothing. Changes that need new devices or another backend are
   * refused (restart for those); `netns`, `io`, `xdpMode`, `zeroCopy`, `workers`,
   * `connectionCapacity` and `logger` are kept from the running configuration when omitted.
   */
  async apply(next: DirectorConfig): Promise<ApplySummary> {
    const run = this.applying.catch(() => {}).then(() => this.applyNow(next));
    this.applying = run;
    return run;
  }

  /** Called with the addresses the director holds whenever they change (lvsd's guardian). */
  onAddressesChanged: ((held: Array<{ device: string; address: string; prefixLength: number }>) => void) | null = null;

  /** The VIPs and NAT router addresses this director brought up and holds. */
  heldAddresses(): Array<{ device: string; address: string; prefixLength: number }> {
    return [...this.addresses.values()].map((a) => ({ device: a.device, address: a.address, prefixLength: a.prefixLength }));
  }

  private addressesChanged(): void {
    try {
      this.onAddressesChanged?.(this.heldAddresses());
    } catch (e) {
      this.log.warn({ event: 'address-watch-failed', err: (e as Error).message }, (e as Error).message);
    }
  }

  /** Whether the director holds its VIPs (see setActive). */
  get isActive(): boolean {
    return this.active;
  }

  /**
   * Failover: take the VIPs and NAT router addresses (and announce them with gratuitous ARP /
   * unsolicited NA), or give them up. The dataplane, its services and its connections (synced
   * or not) are not touched either way, so a takeover is only addresses and announcements.
   * Serialised with apply().
   */
  async setActive(on: boolean): Promise<void> {
    const run = this.applying.catch(() => {}).then(() => {
      if (!this.isRunning) throw new LvsError('LVS_MODE', 'the director is not running');
      if (on === this.active) return;
      this.active = on;
      if (on) {
        this.syncAddresses(this.running, true);
      } else {
        for (const c of this.announcing) c.abort();
        this.announcing.clear();
        this.removeAddresses();
        this.clearAddresses(this.running);
      }
      this.log.info({ event: on ? 'active' : 'standby' }, on ? 'director active: virtual addresses up' : 'director standby: virtual addresses down');
    });
    this.applying = run;
    return run;
  }

  /** Send the gratuitous ARPs / unsolicited NAs for every address we hold again (pulse's
   *  "partner active: resending arps"). */
  reannounce(): void {
    if (!this.isRunning || !this.active) return;
    this.announce([...this.addresses.values()]);
  }

  status(): DirectorStatus {
    const info = this.dp?.info();
    return {
      running: this.isRunning,
      active: this.isRunning && this.active,
      io: this.ioKind && info ? { kind: this.ioKind, mode: info.ports[0]?.kind ?? this.ioKind, ports: info.ports } : null,
      interfaces: [...this.ifaces.values()].map((i) => ({ id: i.id, name: i.name, ifindex: i.ifindex, mac: i.mac, ...(i.xdpMode ? { xdpMode: i.xdpMode } : {}) })),
      vips: [...this.addresses.values()].map((v) => ({ address: v.address, device: v.device })),
      reals: [...this.paths.values()].flatMap((p) => p.users.map((u) => ({ address: u.address, device: p.iface.name, nextHop: p.nextHop, mac: p.mac }))),
    };
  }

  // ------------------------------------------------------------------------------------------

  private async bringUp(): Promise<void> {
    const c = this.running;
    this.log.info({ event: 'starting', netns: c.netns ?? null, services: c.services.length }, 'director starting');

    // 1. Interfaces: those of the VIPs, the NAT routers, the routes to the reals, and any named.
    for (const a of this.desiredAddresses(c)) this.iface(a.device);
    for (const d of c.devices ?? []) this.iface(d);
    const paths = this.plan(c, true);

    // 2. The backend: AF_XDP with the steering program, else AF_PACKET.
    await this.openDataplane();
    const dp = this.dp!;

    // 3. Configuration: interfaces, timeouts, behaviour, marks, services and reals.
    await this.resolveAll(paths.values());
    dp.transaction((tx) => {
      for (const i of this.ifaces.values()) {
        tx.setInterface({ id: i.id, name: i.name, mac: i.mac, mtu: i.mtu, ...(i.ipv4 ? { ipv4: i.ipv4 } : {}), ...(i.ipv6 ? { ipv6: i.ipv6 } : {}) });
      }
      if (c.timeouts) tx.setTimeouts(c.timeouts);
      if (c.behaviour) tx.setBehaviour(c.behaviour);
      if (c.marks) tx.setMarkRules(c.marks);
      this.diff(tx, { ...c, services: [] }, c, paths);
    });
    await dp.settled();
    this.paths = paths;

    // 4. What the kernel hands to the dataplane; stop handing it over first thing at the end.
    this.applyOwnership();
    this.undo.push(() => {
      this.maps?.apply(emptyOwnership());
      this.maps = null;
    });

    // 5. Forwarding where the method needs it (the kernel forwards the reals' own traffic).
    this.ensureForwarding(c);

    // 6. Addresses: NAT routers, then VIPs, then tell the segment (a failover backup: none,
    //    and none left behind by an earlier run either).
    if (this.active) this.syncAddresses(c);
    else this.clearAddresses(c);

    // 7. Keep next hops fresh and follow their changes.
    this.watchNeighbours();
    dp.on('neighbour-miss', ({ address }) => {
      for (const p of this.paths.values()) {
        if (p.users.some((u) => u.address === address)) this.host.resolveNeighbour(p.iface.ifindex, p.nextHop, { timeoutMs: 1000 }).catch(() => {});
      }
    });
    this.log.info({ event: 'started', io: this.status().io?.mode, interfaces: [...this.ifaces.keys()] }, 'director started');
  }

  private async applyNow(input: DirectorConfig): Promise<ApplySummary> {
    if (!this.isRunning || !this.dp) throw new LvsError('LVS_MODE', 'the director is not running');
    const cur = this.running;
    // What only a restart can change is inherited when not given (lvs.cf does not say it).
    const fixed = ['netns', 'io', 'xdpMode', 'zeroCopy', 'workers', 'connectionCapacity'] as const;
    const inherited: Partial<DirectorConfig> = { logger: cur.logger };
    for (const k of fixed) if (input[k] === undefined && cur[k] !== undefined) (inherited as Record<string, unknown>)[k] = cur[k];
    const next = validateConfig({ ...input, ...inherited });
    for (const k of fixed) {
      if (JSON.stringify(cur[k]) !== JSON.stringify(next[k])) {
        throw new LvsError('LVS_INVALID_OPTION', `${k}: cannot change while running (restart lvsd for that)`, { field: k });
      }
    }
    for (const a of this.desiredAddresses(next)) this.knownDevice(a.device, a.address);
    const paths = this.plan(next, false);
    await this.resolveAll([...paths.values()].filter((p) => p.mac === null));
    const summary: ApplySummary = { servicesAdded: [], servicesRemoved: [], servicesChanged: [], realsAdded: 0, realsRemoved: 0, realsChanged: 0 };
    this.dp.transaction((tx) => {
      if (JSON.stringify(cur.timeouts ?? {}) !== JSON.stringify(next.timeouts ?? {})) tx.setTimeouts(next.timeouts ?? {});
      if (JSON.stringify(cur.behaviour ?? {}) !== JSON.stringify(next.behaviour ?? {})) tx.setBehaviour(next.behaviour ?? {});
      if (JSON.stringify(cur.marks ?? []) !== JSON.stringify(next.marks ?? [])) tx.setMarkRules(next.marks ?? []);
      Object.assign(summary, this.diff(tx, cur, next, paths));
    });
    await this.dp.settled();
    this.paths = paths;
    this.running = next;
    this.applyOwnership();
    this.ensureForwarding(next);
    if (this.active) this.syncAddresses(next);
    else this.clearAddresses(next);
    this.log.info({ event: 'applied', ...summary }, `configuration applied: ${describe(summary)}`);
    return summary;
  }

  /** The dataplane changes from `cur` to `next`, inside a transaction. */
  private diff(tx: DataplaneTransaction, cur: DirectorConfig, next: DirectorConfig, paths: Map<string, RealPath>): ApplySummary {
    const summary: ApplySummary = { servicesAdded: [], servicesRemoved: [], servicesChanged: [], realsAdded: 0, realsRemoved: 0, realsChanged: 0 };
    const before = new Map(cur.services.map((s) => [serviceId(s), s]));
    const after = new Map(next.services.map((s) => [serviceId(s), s]));
    for (const [id, s] of before) {
      if (after.has(id)) continue;
      tx.deleteService(serviceKey(s));
      summary.servicesRemoved.push(id);
    }
    for (const [id, s] of after) {
      const key = serviceKey(s);
      const old = before.get(id);
      if (!old) {
        tx.addService({ ...key, ...serviceOptions(s) } as VirtualServiceSpec);
        for (const r of s.reals) tx.addReal(key, this.realSpec(s, r, paths));
        summary.servicesAdded.push(id);
        continue;
      }
      const oldOpts = serviceOptions(old);
      const newOpts = serviceOptions(s);
      if (JSON.stringify(oldOpts) !== JSON.stringify(newOpts)) {
        tx.editService(key, {
          scheduler: newOpts.scheduler ?? 'wlc',
          flags: newOpts.flags ?? [],
          persistence: newOpts.persistence ?? false,
          ...(newOpts.maglevTableSize ? { maglevTableSize: newOpts.maglevTableSize } : {}),
          quiesce: newOpts.quiesce ?? false,
        });
        summary.servicesChanged.push(id);
      }
      const oldReals = new Map(old.reals.map((r) => [realId(s, r), r]));
      const newReals = new Map(s.reals.map((r) => [realId(s, r), r]));
      for (const [rid, r] of oldReals) {
        if (newReals.has(rid)) continue;
        tx.deleteReal(key, realKey(r));
        summary.realsRemoved++;
      }
      for (const [rid, r] of newReals) {
        const o = oldReals.get(rid);
        if (!o) {
          tx.addReal(key, this.realSpec(s, r, paths));
          summary.realsAdded++;
          continue;
        }
        const changes = realChanges(o, r);
        if (changes) {
          tx.editReal(key, realKey(r), changes);
          summary.realsChanged++;
        }
      }
    }
    return summary;
  }

  private async openDataplane(): Promise<void> {
    const c = this.running;
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
        if (c.crashGuard) this.installGuard();
        else this.removeStaleGuard();
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

  /**
   * The crash guard (AF_XDP): the same nftables ingress table AF_PACKET uses, dropping in the
   * kernel exactly what the steering program takes. While lvsd runs, nothing it owns reaches
   * the kernel, so the table sees none of it. If lvsd dies without cleaning up (kill -9), its
   * XDP program goes with it but the VIPs stay on the device: without the table the kernel
   * would answer the clients of every directed connection with a reset, and forward NAT replies
   * untranslated, until the partner's gratuitous ARPs move the traffic. With it, those packets
   * are dropped and retransmitted to the new active router, and the connections survive.
   */
  private installGuard(): void {
    const c = this.running;
    const guard = new Suppression(c.netns ?? '', 'lvsd');
    this.suppression = guard;
    this.undo.push(() => {
      try {
        guard.remove();
      } catch {
        // Never installed (nft missing): said when it failed.
      }
      this.suppression = null;
    });
  }

  /** A crash guard a killed failover lvsd left here would drop what this one must pass on. */
  private removeStaleGuard(): void {
    const guard = new Suppression(this.running.netns ?? '', 'lvsd');
    try {
      if (!guard.exists()) return;
      guard.remove();
      this.log.warn({ event: 'crash-guard-removed' }, 'removed the nftables table lvsd left behind when it was killed (its crash guard)');
    } catch {
      // No nft here: there cannot be a table either.
    }
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

  /** The dataplane interface for a device, made on first use (before the dataplane exists). */
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

  /** A device the running dataplane already has (its sockets were made at start). */
  private knownDevice(name: string, forWhat: string): Iface {
    const i = this.ifaces.get(name);
    if (!i) throw new LvsError('LVS_INVALID_INTERFACE', `${forWhat} needs device ${name}, which lvsd did not start on; list it in devices or restart lvsd`, { field: 'device' });
    return i;
  }

  /** Where every real of `c` sends its frames: device and next hop, sharing known paths. */
  private plan(c: DirectorConfig, starting: boolean): Map<string, RealPath> {
    const out = new Map<string, RealPath>();
    for (const s of c.services) {
      for (const r of s.reals) {
        const address = parseAddress(r.address).text;
        const route = this.host.route(address);
        const iface = starting ? this.iface(route.device) : this.knownDevice(route.device, `real ${address}`);
        const nextHop = route.gateway ?? address;
        const key = `${iface.ifindex} ${nextHop}`;
        let p = out.get(key);
        if (!p) {
          const known = this.paths.get(key);
          p = { users: [], iface, nextHop, mac: known?.mac ?? null };
          out.set(key, p);
        }
        p.users.push({ service: serviceKey(s), address, port: r.port });
      }
    }
    return out;
  }

  private async resolveAll(paths: Iterable<RealPath>): Promise<void> {
    const timeoutMs = this.running.neighbourTimeoutMs ?? 3000;
    await Promise.all([...paths].map((p) => this.resolve(p, timeoutMs)));
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

  private realSpec(s: DirectorService, r: DirectorRealServer, paths: Map<string, RealPath>): RealServerSpec {
    const address = parseAddress(r.address).text;
    const key = serviceId(s);
    const path = [...paths.values()].find((p) => p.users.some((u) => u.address === address && serviceId2(u.service) === key))!;
    return {
      address: r.address,
      ...(r.port !== undefined ? { port: r.port } : {}),
      ...(r.weight !== undefined ? { weight: r.weight } : {}),
      method: r.method ?? 'direct',
      interface: path.iface.id,
      ...(path.mac ? { mac: path.mac } : {}),
      ...(r.upperThreshold !== undefined ? { upperThreshold: r.upperThreshold } : {}),
      ...(r.lowerThreshold !== undefined ? { lowerThreshold: r.lowerThreshold } : {}),
      ...(r.slowStart !== undefined ? { slowStart: r.slowStart } : {}),
    };
  }

  private ownership(): Ownership {
    const o = emptyOwnership();
    const c = this.running;
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
    return dedupe(o);
  }

  private applyOwnership(): void {
    const o = this.ownership();
    if (this.maps) this.maps.apply(o);
    if (this.suppression && this.maps) {
      try {
        this.suppression.apply({ devices: [...this.ifaces.keys()], ...o });
      } catch (e) {
        this.log.warn({ event: 'crash-guard-unavailable', err: (e as Error).message }, `crash guard unavailable (${(e as Error).message}): if lvsd is killed, the kernel may reset directed connections before the partner takes over`);
      }
    } else if (this.suppression) this.suppression.apply({ devices: [...this.ifaces.keys()], ...o });
    this.log.info({ event: 'steering', services: o.services.length, natReals: o.natReals.length, prefixes: o.prefixes.length }, 'traffic steering in place');
  }

  private ensureForwarding(c: DirectorConfig): void {
    const nat = new Set<Family>();
    for (const s of c.services) for (const r of s.reals) if ((r.method ?? 'direct') === 'nat') nat.add(parseAddress(r.address).family);
    if (nat.has('ipv4')) this.sysctl('net/ipv4/ip_forward', '1', 'IP forwarding for LVS-NAT');
    if (nat.has('ipv6')) this.sysctl('net/ipv6/conf/all/forwarding', '1', 'IPv6 forwarding for LVS-NAT');
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

  /** NAT router addresses, then VIPs (a VIP's device: the service's, or its route's). */
  private desiredAddresses(c: DirectorConfig): Array<{ device: string; address: string; prefixLength: number; what: string }> {
    const out = new Map<string, { device: string; address: string; prefixLength: number; what: string }>();
    for (const r of c.natRouters ?? []) {
      const a = parseAddress(r.address);
      out.set(`${r.device} ${a.text}`, { device: r.device, address: a.text, prefixLength: r.prefixLength ?? (a.family === 'ipv4' ? 32 : 128), what: 'nat router' });
    }
    for (const s of c.services) {
      for (const vip of serviceVips(s)) {
        const device = s.device ?? this.vipDevice(vip);
        out.set(`${device} ${vip}`, { device, address: vip, prefixLength: parseAddress(vip).family === 'ipv4' ? 32 : 128, what: 'virtual address' });
      }
    }
    return [...out.values()];
  }

  /** Where a VIP without a device lives: where we put it, where it already is, or its route's. */
  private vipDevice(vip: string): string {
    for (const a of this.addresses.values()) if (a.address === vip) return a.device;
    const route = this.host.route(vip);
    if (!route.local) return route.device;
    const owner = this.host.addresses().find((a) => parseAddress(a.address).text === vip);
    const link = owner ? this.host.links().find((l) => l.ifindex === owner.ifindex) : undefined;
    return link?.name ?? route.device;
  }

  /**
   * A backup holds none of the addresses a failover moves: any that are up (an earlier run that
   * was killed before it could take them down, or an operator) are taken down, so that the two
   * routers never both answer ARP for a VIP.
   */
  private clearAddresses(c: DirectorConfig): void {
    for (const a of this.desiredAddresses(c)) {
      if (!this.host.addresses(a.device).some((x) => parseAddress(x.address).text === a.address)) continue;
      const owner = this.host.addresses(a.device).find((x) => parseAddress(x.address).text === a.address)!;
      this.host.delAddress(a.device, a.address, owner.prefixLength);
      this.log.warn({ event: 'address-down', device: a.device, address: a.address, what: a.what }, `${a.what} ${a.address} was up on ${a.device} while this router is the backup; taken down`);
    }
  }

  /** Bring up what `c` needs and is missing, take down what we added and it no longer needs.
   *  `takeover`: addresses already up are announced too (a takeover must move them). */
  private syncAddresses(c: DirectorConfig, takeover = false): void {
    const want = new Map(this.desiredAddresses(c).map((a) => [`${a.device} ${a.address}`, a]));
    for (const [k, a] of this.addresses) {
      if (want.has(k)) continue;
      this.host.delAddress(a.device, a.address, a.prefixLength);
      this.addresses.delete(k);
      this.log.info({ event: 'address-down', device: a.device, address: a.address, what: a.what }, `${a.what} ${a.address} down on ${a.device}`);
    }
    const fresh: Array<{ device: string; address: string }> = [];
    for (const [k, a] of want) {
      if (this.addresses.has(k)) continue;
      if (this.host.addresses(a.device).some((x) => parseAddress(x.address).text === a.address)) {
        if (takeover) {
          // A takeover owns every address the failover moves: announce it, and take it down
          // again when this router stands down.
          this.addresses.set(k, a);
          fresh.push(a);
          this.log.warn({ event: 'address-adopted', device: a.device, address: a.address }, `${a.what} ${a.address} was already up on ${a.device}; taken over`);
          continue;
        }
        this.log.warn({ event: 'address-exists', device: a.device, address: a.address }, `${a.what} ${a.address} is already on ${a.device}; leaving it as it is`);
        continue;
      }
      this.host.addAddress(a.device, a.address, a.prefixLength, { nodad: true });
      this.addresses.set(k, a);
      fresh.push(a);
      this.log.info({ event: 'address-up', device: a.device, address: a.address, what: a.what }, `${a.what} ${a.address}/${a.prefixLength} up on ${a.device}`);
    }
    this.addressesChanged();
    this.announce(fresh);
  }

  private removeAddresses(): void {
    for (const a of [...this.addresses.values()].reverse()) {
      try {
        this.host.delAddress(a.device, a.address, a.prefixLength);
        this.log.info({ event: 'address-down', device: a.device, address: a.address, what: a.what }, `${a.what} ${a.address} down on ${a.device}`);
      } catch (e) {
        this.log.error({ event: 'teardown-failed', err: (e as Error).message }, `while stopping: ${(e as Error).message}`);
      }
    }
    this.addresses.clear();
    this.addressesChanged();
  }

  /** Gratuitous ARP / unsolicited NA for addresses that just came up (Piranha's send_arp). */
  private announce(addrs: Array<{ device: string; address: string }>): void {
    const count = this.running.announce?.count ?? 5;
    const intervalMs = this.running.announce?.intervalMs ?? 1000;
    if (count === 0 || addrs.length === 0) return;
    const ctl = new AbortController();
    this.announcing.add(ctl);
    const signal = ctl.signal;
    Promise.all(addrs.map((v) => announce(this.host, v.device, v.address, { count, intervalMs, signal })))
      .then(() => {
        if (!signal.aborted) this.log.info({ event: 'garp-finished', addresses: addrs.map((v) => v.address) }, 'gratuitous lvs arps finished');
      })
      .catch((e: Error) => {
        if (!signal.aborted) this.log.error({ event: 'garp-failed', err: e.message }, `gratuitous ARP failed: ${e.message}`);
      })
      .finally(() => this.announcing.delete(ctl));
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
    const refresh = this.running.neighbourRefreshMs ?? 30_000;
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
    this.undo.push(() => clearInterval(timer));
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
    for (const c of this.announcing) c.abort();
    this.announcing.clear();
    this.removeAddresses();
    await this.runUndo();
    this.maps = null;
    this.paths.clear();
    this.ifaces.clear();
  }
}

function describe(s: ApplySummary): string {
  const parts: string[] = [];
  if (s.servicesAdded.length) parts.push(`${s.servicesAdded.length} service(s) added`);
  if (s.servicesRemoved.length) parts.push(`${s.servicesRemoved.length} removed`);
  if (s.servicesChanged.length) parts.push(`${s.servicesChanged.length} changed`);
  if (s.realsAdded || s.realsRemoved || s.realsChanged) parts.push(`reals +${s.realsAdded} -${s.realsRemoved} ~${s.realsChanged}`);
  return parts.length ? parts.join(', ') : 'no change';
}

/** A service's identity: what ipvsadm names it by. */
export function serviceId(s: DirectorService): string {
  return serviceId2(serviceKey(s));
}

function serviceId2(k: ServiceKey): string {
  return 'fwmark' in k ? `FWM ${k.fwmark} ${k.family ?? 'ipv4'}` : `${k.protocol.toUpperCase()} ${parseAddress(k.address).text} ${k.port}`;
}

function realId(s: DirectorService, r: DirectorRealServer): string {
  const port = r.port ?? ('fwmark' in s ? 0 : s.port);
  return `${parseAddress(r.address).text} ${port}`;
}

function realKey(r: DirectorRealServer): RealServerKey {
  return { address: r.address, ...(r.port !== undefined ? { port: r.port } : {}) };
}

function realChanges(o: DirectorRealServer, r: DirectorRealServer): RealServerChanges | null {
  const c: RealServerChanges = {};
  if ((o.weight ?? 1) !== (r.weight ?? 1)) c.weight = r.weight ?? 1;
  if ((o.method ?? 'direct') !== (r.method ?? 'direct')) c.method = r.method ?? 'direct';
  if ((o.upperThreshold ?? 0) !== (r.upperThreshold ?? 0)) c.upperThreshold = r.upperThreshold ?? 0;
  if ((o.lowerThreshold ?? 0) !== (r.lowerThreshold ?? 0)) c.lowerThreshold = r.lowerThreshold ?? 0;
  if ((o.slowStart ?? 0) !== (r.slowStart ?? 0)) c.slowStart = r.slowStart ?? 0;
  return Object.keys(c).length ? c : null;
}

function serviceVips(s: DirectorService): string[] {
  return 'fwmark' in s ? (s.addresses ?? []).map((a) => parseAddress(a).text) : [parseAddress(s.address).text];
}

function serviceKey(s: DirectorService): ServiceKey {
  return 'fwmark' in s ? { fwmark: s.fwmark, ...(s.family ? { family: s.family } : {}) } : { protocol: s.protocol, address: s.address, port: s.port };
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
