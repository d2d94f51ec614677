/**
 * ipvsadm's listing formats, byte for byte (reference/ipvs.md section 7, from ipvsadm.c's
 * printf formats), so that scripts which parse ipvsadm output can parse lvsd's.
 * Implemented here: -L -n, --stats, --thresholds, --persistent-conn and -c; --rate arrives with
 * lvsadm (it needs the rate estimator).
 */
import type { ConnectionEntry, ForwardingMethod, VirtualServiceInfo } from '../dataplane/types.js';

export interface ListOptions {
  /** The "size=" of the header: the connection table's size. */
  tableSize: number;
  /** --exact: print counters unscaled. */
  exact?: boolean;
  /** --nosort: keep the dataplane's order (default: sorted as ipvsadm sorts). */
  sort?: boolean;
}

const FORWARD: Record<ForwardingMethod, string> = { nat: 'Masq', direct: 'Route', tunnel: 'Tunnel' };

function pad(s: string, width: number): string {
  return s.length >= width ? s : s + ' '.repeat(width - s.length);
}
function lpad(s: string, width: number): string {
  return s.length >= width ? s : ' '.repeat(width - s.length) + s;
}
function endpoint(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

function serviceName(s: VirtualServiceInfo): string {
  if (s.fwmark) return `FWM  ${s.fwmark}`;
  return `${pad(s.protocol!.toUpperCase(), 4)} ${endpoint(s.address!, s.port)}`;
}

/** ipvsadm sorts services by (fwmark, family, protocol, address, port) and reals by (address, port). */
function sortedServices(services: VirtualServiceInfo[], sort: boolean): VirtualServiceInfo[] {
  if (!sort) return services;
  const key = (s: VirtualServiceInfo) => [s.fwmark, s.family === 'ipv4' ? 0 : 1, s.protocol === 'tcp' ? 6 : s.protocol === 'udp' ? 17 : 0];
  return [...services]
    .sort((a, b) => cmpArrays(key(a), key(b)) || cmpAddress(a.address ?? '', b.address ?? '') || a.port - b.port)
    .map((s) => ({ ...s, reals: [...s.reals].sort((a, b) => cmpAddress(a.address, b.address) || a.port - b.port) }));
}

function cmpArrays(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/** Compare addresses numerically (as ipvsadm compares their network-order bytes). */
function cmpAddress(a: string, b: string): number {
  const bytes = (x: string) => (x.includes(':') ? expand6(x) : x.split('.').map(Number));
  return cmpArrays(bytes(a), bytes(b));
}
function expand6(x: string): number[] {
  const [h, t] = x.includes('::') ? x.split('::') : [x, undefined];
  const head = h ? h.split(':') : [];
  const tail = t ? t.split(':') : [];
  const groups = t === undefined ? head : [...head, ...Array(8 - head.length - tail.length).fill('0'), ...tail];
  return groups.map((g) => parseInt(g, 16));
}

/** ipvsadm prints the scheduler's flags by its own names for sh and mh, else as flag-N. */
function schedulerFlags(s: VirtualServiceInfo): string {
  const bit = (f: string): number => (f.endsWith('fallback') || f === 'flag-1' ? 1 : f.endsWith('port') || f === 'flag-2' ? 2 : 3);
  const bits = new Set<number>(s.flags.map(bit));
  const names = s.scheduler === 'sh' || s.scheduler === 'mh' ? [`${s.scheduler}-fallback`, `${s.scheduler}-port`, 'flag-3'] : ['flag-1', 'flag-2', 'flag-3'];
  return names.filter((_, i) => bits.has(i + 1)).join(',');
}

/** The service line: name, scheduler, (flags), persistent T, mask M (when not a single address). */
function serviceLine(s: VirtualServiceInfo): string {
  let line = `${serviceName(s)} ${s.scheduler}`;
  const flags = schedulerFlags(s);
  if (flags) line += ` (${flags})`;
  if (s.persistence) {
    line += ` persistent ${s.persistence.timeout}`;
    const m = s.persistence.netmask;
    if (s.family === 'ipv4' ? m !== '255.255.255.255' : m !== 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff') {
      line += ` mask ${s.family === 'ipv4' ? m : prefixLength(m)}`;
    }
  }
  return line;
}

/** The prefix length of an IPv6 mask: its leading one bits. */
function prefixLength(mask: string): number {
  let n = 0;
  for (const g of expand6(mask)) {
    if (g === 0xffff) {
      n += 16;
      continue;
    }
    n += Math.clz32(~g & 0xffff) - 16;
    break;
  }
  return n;
}

function header(o: ListOptions): string {
  return `IP Virtual Server version 1.2.1 (size=${o.tableSize})\n`;
}

/** ipvsadm -L -n */
export function formatList(services: VirtualServiceInfo[], o: ListOptions): string {
  let out = header(o);
  out += 'Prot LocalAddress:Port Scheduler Flags\n';
  out += '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n';
  for (const s of sortedServices(services, o.sort !== false)) {
    out += `${serviceLine(s)}\n`;
    for (const r of s.reals) {
      out += `  -> ${pad(endpoint(r.address, r.port), 28)} ${pad(FORWARD[r.method], 7)} ${pad(String(r.currentWeight), 6)} ${pad(String(r.activeConnections), 10)} ${pad(String(r.inactiveConnections), 10)}\n`;
    }
  }
  return out;
}

/** ipvsadm's print_largenum: 9 columns, scaled to K/M/G/T unless --exact. */
export function largeNumber(n: number, exact = false): string {
  if (exact) {
    const s = String(n);
    return lpad(s, s.length <= 8 ? 9 : s.length + 1);
  }
  if (n < 1e8) return lpad(String(n), 9);
  if (n < 1e9) return `${lpad(String(Math.floor(n / 1e3)), 8)}K`;
  if (n < 1e11) return `${lpad(String(Math.floor(n / 1e6)), 8)}M`;
  if (n < 1e14) return `${lpad(String(Math.floor(n / 1e9)), 8)}G`;
  return `${lpad(String(Math.floor(n / 1e12)), 8)}T`;
}

/** ipvsadm -L -n --stats */
export function formatStats(services: VirtualServiceInfo[], o: ListOptions): string {
  let out = header(o);
  out += `${pad('Prot LocalAddress:Port', 33)} ${lpad('Conns', 8)} ${lpad('InPkts', 8)} ${lpad('OutPkts', 8)} ${lpad('InBytes', 8)} ${lpad('OutBytes', 8)}\n`;
  out += '  -> RemoteAddress:Port\n';
  const nums = (st: VirtualServiceInfo['stats']) =>
    [st.connections, st.packetsIn, st.packetsOut, st.bytesIn, st.bytesOut].map((n) => largeNumber(n, o.exact)).join('');
  for (const s of sortedServices(services, o.sort !== false)) {
    out += `${pad(serviceName(s), 33)}${nums(s.stats)}\n`;
    for (const r of s.reals) out += `  -> ${pad(endpoint(r.address, r.port), 28)}${nums(r.stats)}\n`;
  }
  return out;
}

/** ipvsadm -L -n --thresholds */
export function formatThresholds(services: VirtualServiceInfo[], o: ListOptions): string {
  let out = header(o);
  out += `${pad('Prot LocalAddress:Port', 33)} ${['Uthreshold', 'Lthreshold', 'ActiveConn', 'InActConn'].map((t) => pad(t, 10)).join(' ')}\n`;
  out += '  -> RemoteAddress:Port\n';
  for (const s of sortedServices(services, o.sort !== false)) {
    out += `${serviceLine(s)}\n`;
    for (const r of s.reals) {
      out += `  -> ${pad(endpoint(r.address, r.port), 28)} ${[r.upperThreshold, r.lowerThreshold, r.activeConnections, r.inactiveConnections].map((n) => pad(String(n), 10)).join(' ')}\n`;
    }
  }
  return out;
}

/** ipvsadm -L -n --persistent-conn */
export function formatPersistentConnections(services: VirtualServiceInfo[], o: ListOptions): string {
  let out = header(o);
  out += `${pad('Prot LocalAddress:Port', 33)} ${pad('Weight', 9)} ${pad('PersistConn', 11)} ${pad('ActiveConn', 10)} ${pad('InActConn', 10)}\n`;
  out += '  -> RemoteAddress:Port\n';
  for (const s of sortedServices(services, o.sort !== false)) {
    out += `${serviceLine(s)}\n`;
    for (const r of s.reals) {
      out += `  -> ${pad(endpoint(r.address, r.port), 28)} ${pad(String(r.currentWeight), 9)} ${pad(String(r.persistentConnections), 11)} ${pad(String(r.activeConnections), 10)} ${pad(String(r.inactiveConnections), 10)}\n`;
    }
  }
  return out;
}

/** ipvsadm -L -n -c */
export function formatConnections(conns: ConnectionEntry[]): string {
  let out = 'IPVS connection entries\n';
  out += 'pro expire state       source             virtual            destination\n';
  for (const c of conns) {
    const secs = Math.floor(c.expiresIn / 1000);
    const expire = `${String(Math.floor(secs / 60)).padStart(2, '0')}:${String(secs % 60).padStart(2, '0')}`;
    out += `${pad(c.protocol, 3)} ${pad(expire, 6)} ${pad(c.state, 11)} ${pad(endpoint(c.client.address, c.client.port), 18)} ${pad(endpoint(c.virtual.address, c.virtual.port), 18)} ${endpoint(c.destination.address, c.destination.port)}\n`;
  }
  return out;
}
