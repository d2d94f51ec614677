/**
 * lvs.cf and the Director: directorConfig() turns the model into the DirectorConfig a Piranha
 * router's pulse + lvs would have set up; applyRunningState() writes what the running director
 * does (lvsadm changes) back into the model, keeping everything else of the file.
 */
import type { MarkRule, Persistence, RealServerInfo, Timeouts, VirtualServiceInfo } from '../dataplane/types.js';
import { LvsError } from '../errors.js';
import { parseAddress } from '../net/address.js';
import type { DirectorConfig, DirectorRealServer, DirectorService, NatRouter } from '../director/types.js';
import { MH_DEFAULT_SIZE } from '../sched/tables.js';
import { maskPrefix } from './keys.js';
import {
  LvsConfigError,
  baseDevice,
  cloneConfig,
  configError,
  defaultServer,
  defaultVirtual,
  directorPort,
  hostAddress,
  realMethod,
  type FwmarkRule,
  type KeyLayout,
  type LvsConfig,
  type RealServer,
  type VirtualServer,
} from './model.js';
import { serviceName, validateModel } from './validate.js';

/** What a DirectorConfig holds that lvs.cf does not say (namespace, backend, logger, ...). */
export type DirectorOptions = Partial<Omit<DirectorConfig, 'services' | 'natRouters' | 'marks' | 'timeouts'>> & {
  /** The file name errors give. Default `lvs.cf`. */
  file?: string;
};

function familyOfAddress(a: string): 'ipv4' | 'ipv6' {
  return a.includes(':') ? 'ipv6' : 'ipv4';
}

/** The netmask for Persistence: Piranha gave ipvsadm no -M for 255.255.255.255 or 0.0.0.0. */
function persistence(v: VirtualServer): Persistence {
  const p: Persistence = { timeout: v.persistent };
  if (typeof v.pmask === 'number') p.netmask = v.pmask;
  else if (v.pmask !== undefined && v.pmask !== '255.255.255.255' && v.pmask !== '0.0.0.0') p.netmask = v.pmask;
  return p;
}

/** The firewall-mark rules of a virtual, one MarkRule per port or range. */
export function markRules(cfg: LvsConfig, v: VirtualServer): MarkRule[] {
  const vip = v.address === undefined ? undefined : hostAddress(cfg, v.address);
  const out: MarkRule[] = [];
  for (const r of v.fwmarkRules) {
    const destination = r.destination ?? vip;
    if (destination === undefined) continue;
    const base: MarkRule = { mark: v.fwmark, destination, ...(r.protocol === 'any' ? {} : { protocol: r.protocol }), ...(r.source !== undefined ? { source: r.source } : {}) };
    if (r.ports.length === 0) out.push(base);
    for (const p of r.ports) out.push({ ...base, ports: Array.isArray(p) ? [p[0], p[1]] : p });
  }
  return out;
}

/**
 * The Director configuration lvs.cf describes: active virtuals with their active servers,
 * `network` as every real's default method, nat_router as a NAT router (on the device without
 * its alias: `eth1:1` -> `eth1`), persistent/pmask as persistence, firewall-mark virtuals with
 * their VIP in `addresses` and their fwmark_rule lines as mark rules, the IPVS timeouts, and
 * quiesce_server. Host names must have been resolved (readConfig / resolveConfig).
 */
export function directorConfig(cfg: LvsConfig, options: DirectorOptions = {}): DirectorConfig {
  const { file = 'lvs.cf', ...rest } = options;
  const checked = validateModel(cfg, { file });
  const errors: LvsError[] = [...checked.errors];
  const addr = (host: string, layout: { keys: KeyLayout[]; line?: number; column?: number } | undefined, key: string): string => {
    const a = hostAddress(cfg, host);
    if (a !== undefined) return a;
    const k = layout?.keys.find((x) => x.key === key);
    const text = `host name ${host} is not resolved (read the file with readConfig, or call resolveConfig)`;
    errors.push(k ? configError('LVS_CONFIG_HOSTNAME', file, k.line, k.column, key, text) : new LvsError('LVS_CONFIG_HOSTNAME', `${file} ${key}: ${text}`, { file, field: key }));
    return host;
  };
  const g = cfg.globals;
  const services: DirectorService[] = [];
  const marks: MarkRule[] = [];
  let nat = g.network === 'nat';

  for (const v of cfg.virtuals) {
    if (!v.active) continue;
    const vip = v.address === undefined ? undefined : addr(v.address, v.layout, 'address');
    const reals: DirectorRealServer[] = [];
    for (const s of v.servers) {
      if (!s.active || s.address === undefined) continue;
      const method = realMethod(cfg, s);
      if (method === 'nat') nat = true;
      reals.push({
        address: addr(s.address, s.layout, 'address'),
        port: directorPort(cfg, v, s),
        weight: s.weight,
        method,
        ...(s.upperThreshold !== undefined ? { upperThreshold: s.upperThreshold } : {}),
        ...(s.lowerThreshold !== undefined ? { lowerThreshold: s.lowerThreshold } : {}),
        ...(s.slowStart !== undefined ? { slowStart: s.slowStart } : {}),
      });
    }
    // Piranha's lvs added the sorry server when no real server was up; with no active real
    // server configured at all, it is the only one.
    if (reals.length === 0 && v.sorryServer !== undefined) reals.push({ address: v.sorryServer, port: v.fwmark ? 0 : v.port, weight: 1, method: g.network });
    const common = {
      scheduler: v.scheduler,
      ...(v.schedulerFlags.length ? { flags: [...v.schedulerFlags] } : {}),
      ...(v.persistent > 0 ? { persistence: persistence(v) } : {}),
      ...(v.mhTableSize !== undefined && v.scheduler === 'mh' ? { maglevTableSize: v.mhTableSize } : {}),
      ...(v.quiesceServer ? { quiesce: true } : {}),
      ...(v.device !== undefined ? { device: baseDevice(v.device) } : {}),
      reals,
    };
    if (v.fwmark) {
      const rules = markRules(cfg, v);
      marks.push(...rules);
      const family = vip !== undefined ? familyOfAddress(vip) : rules[0] ? familyOfAddress(rules[0].destination) : 'ipv4';
      services.push({ fwmark: v.fwmark, family, addresses: vip === undefined ? [] : [vip], ...common });
    } else if (vip !== undefined) {
      services.push({ protocol: v.protocol, address: vip, port: v.port, ...common });
    }
  }

  const natRouters: NatRouter[] = [];
  if (nat) {
    for (const r of g.natRouters) {
      const address = addr(r.address, cfg.layout, 'nat_router');
      let prefixLength = r.prefixLength;
      if (prefixLength === undefined && g.natNmask !== undefined && familyOfAddress(address) === 'ipv4') {
        prefixLength = typeof g.natNmask === 'number' ? g.natNmask : maskPrefix(g.natNmask);
      }
      natRouters.push({ address, device: baseDevice(r.device), ...(prefixLength !== undefined ? { prefixLength } : {}) });
    }
  }
  if (errors.length) throw new LvsConfigError(errors);

  const timeouts: Partial<Timeouts> = {
    ...(g.tcpTimeout ? { tcp: g.tcpTimeout } : {}),
    ...(g.tcpfinTimeout ? { tcpfin: g.tcpfinTimeout } : {}),
    ...(g.udpTimeout ? { udp: g.udpTimeout } : {}),
  };
  return {
    ...rest,
    services,
    ...(natRouters.length ? { natRouters } : {}),
    ...(marks.length ? { marks } : {}),
    ...(Object.keys(timeouts).length ? { timeouts } : {}),
    ...(g.arpCount !== 5 || g.arpInterval !== 1 ? { announce: { count: g.arpCount, intervalMs: Math.round(g.arpInterval * 1000) } } : {}),
  };
}

// ---------------------------------------------------------------------------------------

/** What applyRunningState needs of a real (RealServerInfo fits). */
export type RealLike = Pick<RealServerInfo, 'address' | 'port' | 'weight' | 'method' | 'upperThreshold' | 'lowerThreshold'>;
/** What applyRunningState needs of a service (VirtualServiceInfo and the daemon's ListedService fit). */
export type ServiceLike = Pick<VirtualServiceInfo, 'family' | 'protocol' | 'address' | 'port' | 'fwmark' | 'scheduler' | 'flags' | 'persistence' | 'maglevTableSize' | 'quiesce'> & { reals: RealLike[] };

export interface ApplyOptions {
  /** The file name errors give. Default `lvs.cf`. */
  file?: string;
  /** IPVS timeouts changed at run time (lvsadm --set): written as tcp_timeout etc. */
  timeouts?: Partial<Timeouts>;
  /** A configured active server that the running director does not have is removed from the
   *  file (lvsadm -d), unless this returns true (e.g. the health checker took it out). */
  retain?: (virtual: VirtualServer, server: RealServer) => boolean;
  /** The running mark rules: a firewall-mark service added at run time gets its rules as
   *  fwmark_rule lines. */
  marks?: MarkRule[];
}

function runningKey(s: ServiceLike): string {
  if (s.fwmark) return `FWM ${s.fwmark} ${s.family}`;
  const a = parseAddress(s.address!).text;
  return `${s.protocol!.toUpperCase()} ${a.includes(':') ? `[${a}]` : a}:${s.port}`;
}

function uniqueName(base: string, taken: Set<string>): string {
  let name = base;
  for (let k = 2; taken.has(name); k++) name = `${base}-${k}`;
  taken.add(name);
  return name;
}

/** The prefix length a running netmask stands for (IPv4 dotted or IPv6 text). */
function runningPrefix(netmask: string): number | undefined {
  if (!netmask.includes(':')) return maskPrefix(netmask);
  const b = parseAddress(netmask).bytes;
  let n = 0;
  for (const x of b) {
    if (x === 0xff) n += 8;
    else {
      n += Math.clz32(~(x << 24));
      break;
    }
  }
  return n;
}

function configuredPrefix(v: VirtualServer, family: 'ipv4' | 'ipv6'): number | string {
  const bits = family === 'ipv4' ? 32 : 128;
  if (v.pmask === undefined || v.pmask === '0.0.0.0') return bits;
  if (typeof v.pmask === 'number') return v.pmask;
  return maskPrefix(v.pmask) ?? v.pmask;
}

function sameFlags(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((f) => b.includes(f));
}

/**
 * The model updated to what the running director does (for lvsadm --write-config): virtual
 * servers' schedulers, flags, persistence and quiesce; real servers' weights, methods and
 * thresholds; services and reals added at run time (with generated names) and removed ones.
 * Everything else stays: comments, health-check keys, names, inactive entries.
 */
export function applyRunningState(cfg: LvsConfig, running: ServiceLike[], options: ApplyOptions = {}): LvsConfig {
  const file = options.file ?? 'lvs.cf';
  const out = cloneConfig(cfg);
  const g = out.globals;
  // Every active host must be known to match services.
  const unresolved: LvsError[] = [];
  for (const v of out.virtuals) {
    if (!v.active) continue;
    for (const [host, layout] of [[v.address, v.layout], ...v.servers.filter((s) => s.active).map((s) => [s.address, s.layout] as const)] as const) {
      if (host !== undefined && hostAddress(out, host) === undefined) {
        unresolved.push(new LvsError('LVS_CONFIG_HOSTNAME', `${file}${layout ? `:${layout.line}:${layout.column}` : ''} address: host name ${host} is not resolved (call resolveConfig first)`, { file, field: 'address', ...(layout ? { line: layout.line, column: layout.column } : {}) }));
      }
    }
  }
  if (unresolved.length) throw new LvsConfigError(unresolved);

  const byKey = new Map<string, VirtualServer>();
  const inactiveByKey = new Map<string, VirtualServer>();
  for (const v of out.virtuals) {
    const id = serviceName(out, v);
    if (id === undefined) continue;
    const map = v.active ? byKey : inactiveByKey;
    if (!map.has(id)) map.set(id, v);
  }
  const names = new Set(out.virtuals.map((v) => v.name));
  const seen = new Set<VirtualServer>();

  for (const svc of running) {
    const id = runningKey(svc);
    let v = byKey.get(id) ?? inactiveByKey.get(id);
    if (!v || seen.has(v)) {
      v = newVirtual(svc, names, options.marks ?? []);
      out.virtuals.push(v);
    }
    v.active = true;
    seen.add(v);
    const family = svc.family;

    v.scheduler = svc.scheduler;
    if (!sameFlags(v.schedulerFlags, svc.flags)) v.schedulerFlags = [...svc.flags];
    if (svc.scheduler === 'mh' && svc.maglevTableSize !== null && (v.mhTableSize !== undefined || svc.maglevTableSize !== MH_DEFAULT_SIZE)) v.mhTableSize = svc.maglevTableSize;
    if (svc.persistence) {
      v.persistent = svc.persistence.timeout;
      const want = runningPrefix(svc.persistence.netmask) ?? svc.persistence.netmask;
      if (configuredPrefix(v, family) !== want) {
        const bits = family === 'ipv4' ? 32 : 128;
        if (want === bits) delete v.pmask;
        else if (family === 'ipv4') v.pmask = svc.persistence.netmask;
        else v.pmask = want;
      }
    } else {
      v.persistent = 0;
      delete v.pmask;
    }
    v.quiesceServer = svc.quiesce;

    // Real servers.
    const matched = new Set<RealServer>();
    const serverNames = new Set(v.servers.map((s) => s.name));
    const hadActive = v.servers.some((s) => s.active);
    for (const r of svc.reals) {
      const address = parseAddress(r.address).text;
      const find = (active: boolean) => v!.servers.find((s) => s.active === active && !matched.has(s) && s.address !== undefined && hostAddress(out, s.address) === address && directorPort(out, v!, s) === r.port);
      let s = find(true) ?? find(false);
      if (!s) {
        // The sorry server directorConfig added for a virtual without active servers.
        if (!hadActive && v.sorryServer === address && r.port === (v.fwmark ? 0 : v.port)) continue;
        s = defaultServer(uniqueName(`real-${address}-${r.port}`, serverNames));
        s.address = address;
        if (r.port !== (v.fwmark ? 0 : v.port)) s.port = r.port;
        v.servers.push(s);
      }
      matched.add(s);
      s.active = true;
      s.weight = r.weight;
      if (r.method !== realMethod(out, s)) {
        if (r.method === g.network) delete s.method;
        else s.method = r.method;
      }
      if (r.upperThreshold || s.upperThreshold !== undefined) s.upperThreshold = r.upperThreshold;
      if (r.lowerThreshold || s.lowerThreshold !== undefined) s.lowerThreshold = r.lowerThreshold;
    }
    v.servers = v.servers.filter((s) => !s.active || matched.has(s) || options.retain?.(v!, s) === true);
  }
  // Services deleted at run time.
  out.virtuals = out.virtuals.filter((v) => !v.active || seen.has(v));

  if (options.timeouts) {
    const t = options.timeouts;
    if (t.tcp !== undefined) g.tcpTimeout = t.tcp;
    if (t.tcpfin !== undefined) g.tcpfinTimeout = t.tcpfin;
    if (t.udp !== undefined) g.udpTimeout = t.udp;
  }
  const checked = validateModel(out, { file });
  if (checked.errors.length) throw new LvsConfigError(checked.errors);
  return out;
}

function newVirtual(svc: ServiceLike, names: Set<string>, marks: MarkRule[]): VirtualServer {
  const base = svc.fwmark ? `fwmark-${svc.fwmark}${svc.family === 'ipv6' ? '-ipv6' : ''}` : `${svc.protocol}-${parseAddress(svc.address!).text}-${svc.port}`;
  const v = defaultVirtual(uniqueName(base, names));
  v.active = true;
  if (svc.fwmark) {
    v.fwmark = svc.fwmark;
    v.fwmarkRules = marks
      .filter((m) => m.mark === svc.fwmark && familyOfAddress(m.destination) === svc.family)
      .map((m): FwmarkRule => ({
        protocol: m.protocol ?? 'any',
        ports: m.ports === undefined ? [] : [Array.isArray(m.ports) ? [m.ports[0], m.ports[1]] : m.ports],
        destination: m.destination,
        ...(m.source !== undefined ? { source: m.source } : {}),
      }));
  } else {
    v.address = parseAddress(svc.address!).text;
    v.port = svc.port;
    v.protocol = svc.protocol!;
  }
  return v;
}
