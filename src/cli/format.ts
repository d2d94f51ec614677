/**
 * ipvsadm's listing formats, byte for byte (reference/ipvs.md section 7; ipvsadm.c's printf
 * formats, cezarsa/ipvsadm, ipvsadm 1.31), so that scripts which parse ipvsadm output can parse
 * lvsd's: -L [-n], --stats, --rate, --thresholds, --persistent-conn, --tun-info, --exact,
 * --nosort, -c, --timeout and -S/--save.
 *
 * Without a NameLookup everything is numeric (-n). With one, addresses and ports are named as
 * ipvsadm names them (its addrport_to_anyname: "[host]:service" for IPv6), and the same
 * truncations apply (59 characters for a name, 33 for an IPv4 service column, 28 for an IPv4
 * real).
 */
import type { ConnectionEntry, Family, ForwardingMethod, RealServerInfo, SchedulerFlag, Timeouts, VirtualServiceInfo } from '../dataplane/types.js';
import type { Rates } from '../daemon/protocol.js';
import { formatIpv4, formatIpv6, parseAddress } from '../net/address.js';

/** What ipvsadm asks NSS when it is not given -n. */
export interface NameLookup {
  /** gethostbyaddr(): the host's name, or null. */
  hostName(family: Family, bytes: Uint8Array): string | null;
  /** getservbyport(): the port's service name for the protocol, or null. */
  serviceName(port: number, protocol: 'tcp' | 'udp' | null): string | null;
}

/** ipvsadm's format flags (FMT_*). At most one of stats/rate/thresholds/persistentConn/
 *  tunInfo is shown; when several are given ipvsadm's precedence applies (in that order). */
export interface ListFormat {
  stats?: boolean;
  rate?: boolean;
  thresholds?: boolean;
  persistentConn?: boolean;
  tunInfo?: boolean;
  /** --exact: counters unscaled. */
  exact?: boolean;
  /** --nosort: keep lvsd's order (default: sorted as ipvsadm sorts). */
  sort?: boolean;
  /** -S: the rules that make this table. */
  rule?: boolean;
  /** Not -n: name addresses and ports. Absent: numeric. */
  names?: NameLookup;
}

export interface ListOptions extends ListFormat {
  /** The "size=" of the header: the connection table's size. */
  tableSize: number;
}

/** A real as `list` reports it, with the estimator's rates (zeros when absent). */
export type RatedReal = RealServerInfo & { rates?: Rates };
/** A service as `list` reports it, with the estimator's rates (zeros when absent). */
export type RatedService = Omit<VirtualServiceInfo, 'reals'> & { rates?: Rates; reals: RatedReal[] };

const FORWARD: Record<ForwardingMethod, string> = { nat: 'Masq', direct: 'Route', tunnel: 'Tunnel' };
const SWITCH: Record<ForwardingMethod, string> = { nat: '-m', direct: '-g', tunnel: '-i' };
const NO_RATES: Rates = { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 };

/** printf("%-Ns") */
function pad(s: string, width: number): string {
  return s.length >= width ? s : s + ' '.repeat(width - s.length);
}
/** printf("%Ns") */
function lpad(s: string, width: number): string {
  return s.length >= width ? s : ' '.repeat(width - s.length) + s;
}

// ---- addresses, as glibc prints them ----

interface Addr {
  family: Family;
  bytes: Uint8Array;
}

function addr(text: string): Addr {
  const a = parseAddress(text);
  return { family: a.family, bytes: a.bytes };
}

/** inet_ntoa / inet_ntop(AF_INET). */
export const ntop4 = formatIpv4;
/** glibc's inet_ntop(AF_INET6) (see formatIpv6). */
export const ntop6 = formatIpv6;

export function ntop(a: Addr): string {
  return a.family === 'ipv4' ? ntop4(a.bytes) : ntop6(a.bytes);
}

/** ipvsadm's addrport_to_anyname: "addr:port", "[addr]:port", or with names; at most 59
 *  characters (its 60-byte buffer). */
function addrPort(a: Addr, port: number, protocol: 'tcp' | 'udp' | null, names: NameLookup | undefined): string {
  const [open, close] = a.family === 'ipv4' ? ['', ''] : ['[', ']'];
  if (!names) return `${open}${ntop(a)}${close}:${port}`;
  const host = names.hostName(a.family, a.bytes) ?? ntop(a);
  const service = names.serviceName(port, protocol) ?? String(port);
  return `${open}${host}${close}:${service}`.slice(0, 59);
}

// ---- sorting, as libipvs sorts ----

/** C's `int r = (u32)a - (u32)b`: the difference wraps into a signed 32-bit int, so values
 *  more than 2^31 apart compare "backwards" (10.0.0.1 sorts after 192.168.0.1) — exactly
 *  as ipvs_cmp_services / ipvs_cmp_dests do. */
function cmp32(a: number, b: number): number {
  return (a - b) | 0;
}

function words(a: Addr): number[] {
  const w: number[] = [];
  for (let i = 0; i < a.bytes.length; i += 4) w.push(((a.bytes[i]! << 24) | (a.bytes[i + 1]! << 16) | (a.bytes[i + 2]! << 8) | a.bytes[i + 3]!) >>> 0);
  return w;
}

const AF: Record<Family, number> = { ipv4: 2, ipv6: 10 };
const PROTO = { tcp: 6, udp: 17 } as const;

function cmpAddr(family: Family, a: Addr | null, b: Addr | null): number {
  const wa = a ? words(a) : [0, 0, 0, 0];
  const wb = b ? words(b) : [0, 0, 0, 0];
  if (family === 'ipv6') {
    let r = 0;
    for (let i = 0; !r && i < 4; i++) r = cmp32(wa[i] ?? 0, wb[i] ?? 0);
    return r;
  }
  return cmp32(wa[0]!, wb[0]!);
}

/** ipvs_cmp_services: fwmark, address family, protocol, address, port. */
function cmpServices(a: RatedService, b: RatedService): number {
  return (
    cmp32(a.fwmark >>> 0, b.fwmark >>> 0) ||
    AF[a.family] - AF[b.family] ||
    (a.protocol && !a.fwmark ? PROTO[a.protocol] : 0) - (b.protocol && !b.fwmark ? PROTO[b.protocol] : 0) ||
    cmpAddr(a.family, a.address && !a.fwmark ? addr(a.address) : null, b.address && !b.fwmark ? addr(b.address) : null) ||
    a.port - b.port
  );
}

/** ipvs_cmp_dests: address (in the first real's family), port. */
function cmpReals(a: RatedReal, b: RatedReal): number {
  return cmpAddr(a.family, addr(a.address), addr(b.address)) || a.port - b.port;
}

/**
 * glibc's qsort is a top-down merge sort (msort: halves of n/2 and n - n/2, the left element
 * first on ties). For a consistent comparator any sort agrees; with libipvs's wrapping one
 * (addresses more than 2^31 apart) the order is the merge sort's, so this follows it.
 */
function mergeSort<T>(items: T[], cmp: (a: T, b: T) => number): T[] {
  if (items.length <= 1) return [...items];
  const n1 = Math.floor(items.length / 2);
  const left = mergeSort(items.slice(0, n1), cmp);
  const right = mergeSort(items.slice(n1), cmp);
  const out: T[] = [];
  let i = 0;
  let j = 0;
  while (i < left.length && j < right.length) out.push(cmp(left[i]!, right[j]!) <= 0 ? left[i++]! : right[j++]!);
  while (i < left.length) out.push(left[i++]!);
  while (j < right.length) out.push(right[j++]!);
  return out;
}

function ordered(services: RatedService[], sort: boolean): RatedService[] {
  if (!sort) return services;
  return mergeSort(services, cmpServices).map((s) => ({ ...s, reals: mergeSort(s.reals, cmpReals) }));
}

// ---- the pieces of a listing ----

/** ipvsadm's print_sched_flags: sh and mh flags by name for those schedulers, else flag-N. */
function schedulerFlagText(s: RatedService): string {
  const bits = flagBits(s.flags);
  const names =
    s.scheduler === 'sh' ? ['sh-fallback', 'sh-port'] : s.scheduler === 'mh' ? ['mh-fallback', 'mh-port'] : ['flag-1', 'flag-2', 'flag-3'];
  return names.filter((_, i) => bits & (1 << i)).join(',');
}

/** IP_VS_SVC_F_SCHED1..3 as bits 0..2. */
export function flagBits(flags: readonly SchedulerFlag[]): number {
  let bits = 0;
  for (const f of flags) {
    if (f === 'sh-fallback' || f === 'mh-fallback' || f === 'flag-1') bits |= 1;
    else if (f === 'sh-port' || f === 'mh-port' || f === 'flag-2') bits |= 2;
    else if (f === 'flag-3') bits |= 4;
  }
  return bits;
}

/** The prefix length of an IPv6 mask: its leading one bits. */
function prefixLength(bytes: Uint8Array): number {
  let n = 0;
  for (const byte of bytes) {
    if (byte === 0xff) {
      n += 8;
      continue;
    }
    n += Math.clz32(~byte & 0xff) - 24;
    break;
  }
  return n;
}

/** The netmask as ipvsadm shows it, or null when it is the whole address (/32, /128). */
function shownMask(s: RatedService): string | null {
  if (!s.persistence) return null;
  const m = addr(s.persistence.netmask);
  if (s.family === 'ipv4') return ntop4(m.bytes) === '255.255.255.255' ? null : ntop4(m.bytes);
  const plen = m.family === 'ipv6' ? prefixLength(m.bytes) : 128;
  return plen === 128 ? null : String(plen);
}

function protocolOf(s: RatedService): 'tcp' | 'udp' | null {
  // The kernel reports no protocol for a firewall-mark service.
  return s.fwmark ? null : s.protocol;
}

/** The service's name column (svc_name in ipvsadm). */
function serviceName(s: RatedService, o: ListFormat): string {
  if (s.fwmark) {
    if (o.rule) return s.family === 'ipv6' ? `-f ${s.fwmark} -6` : `-f ${s.fwmark}`;
    return s.family === 'ipv6' ? `FWM  ${s.fwmark} IPv6` : `FWM  ${s.fwmark}`;
  }
  const v = addrPort(addr(s.address!), s.port, s.protocol, o.names);
  if (o.rule) return `${s.protocol === 'udp' ? '-u' : '-t'} ${v}`;
  const name = `${pad(s.protocol!.toUpperCase(), 4)} ${v}`;
  return s.family === 'ipv6' ? name : name.slice(0, 33);
}

function realName(s: RatedService, r: RatedReal, o: ListFormat): string {
  const name = addrPort(addr(r.address), r.port, protocolOf(s), o.names);
  return !o.rule && r.family !== 'ipv6' ? name.slice(0, 28) : name;
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

function header(o: ListOptions): string {
  return `IP Virtual Server version 1.2.1 (size=${o.tableSize})\n`;
}

/** ipvsadm's print_title. */
function title(o: ListFormat): string {
  const numbers = (a: string[]) => `${pad('Prot LocalAddress:Port', 33)} ${a.map((t) => lpad(t, 8)).join(' ')}\n  -> RemoteAddress:Port\n`;
  if (o.stats) return numbers(['Conns', 'InPkts', 'OutPkts', 'InBytes', 'OutBytes']);
  if (o.rate) return numbers(['CPS', 'InPPS', 'OutPPS', 'InBPS', 'OutBPS']);
  if (o.thresholds) return `${pad('Prot LocalAddress:Port', 33)} ${['Uthreshold', 'Lthreshold', 'ActiveConn', 'InActConn'].map((t) => pad(t, 10)).join(' ')}\n  -> RemoteAddress:Port\n`;
  if (o.persistentConn) return `${pad('Prot LocalAddress:Port', 33)} ${pad('Weight', 9)} ${pad('PersistConn', 11)} ${pad('ActiveConn', 10)} ${pad('InActConn', 10)}\n  -> RemoteAddress:Port\n`;
  if (o.tunInfo) return 'Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n';
  if (o.rule) return '';
  return 'Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n';
}

/** ipvsadm's print_service_entry: the service line, then its reals. */
function serviceEntry(s: RatedService, o: ListFormat): string {
  const name = serviceName(s, o);
  const bits = flagBits(s.flags);
  const mask = shownMask(s);
  let out: string;
  if (o.rule) {
    out = `-A ${name} -s ${s.scheduler}`;
    if (s.persistence) out += ` -p ${s.persistence.timeout}${mask === null ? '' : ` -M ${mask}`}`;
    if (bits) out += ` -b ${schedulerFlagText(s)}`;
  } else if (o.stats) {
    const st = s.stats;
    out = pad(name, 33) + [st.connections, st.packetsIn, st.packetsOut, st.bytesIn, st.bytesOut].map((n) => largeNumber(n, o.exact)).join('');
  } else if (o.rate) {
    const r = s.rates ?? NO_RATES;
    out = pad(name, 33) + [r.cps, r.inpps, r.outpps, r.inbps, r.outbps].map((n) => largeNumber(n, o.exact)).join('');
  } else {
    out = `${name} ${s.scheduler}`;
    if (bits) out += ` (${schedulerFlagText(s)})`;
    if (s.persistence) out += ` persistent ${s.persistence.timeout}${mask === null ? '' : ` mask ${mask}`}`;
  }
  out += '\n';
  for (const r of s.reals) {
    const d = realName(s, r, o);
    if (o.rule) {
      // ipvsadm saves the configured weight; lvsd tunnels are ipip, which -S names.
      out += `-a ${name} -r ${d} ${SWITCH[r.method]} -w ${r.weight}${r.method === 'tunnel' ? ' --tun-type ipip' : ''}\n`;
    } else if (o.stats) {
      const st = r.stats;
      out += `  -> ${pad(d, 28)}${[st.connections, st.packetsIn, st.packetsOut, st.bytesIn, st.bytesOut].map((n) => largeNumber(n, o.exact)).join('')}\n`;
    } else if (o.rate) {
      const rt = r.rates ?? NO_RATES;
      out += `  -> ${pad(d, 28)} ${lpad(String(rt.cps), 8)} ${lpad(String(rt.inpps), 8)} ${lpad(String(rt.outpps), 8)}${largeNumber(rt.inbps, o.exact)}${largeNumber(rt.outbps, o.exact)}\n`;
    } else if (o.thresholds) {
      out += `  -> ${pad(d, 28)} ${[r.upperThreshold, r.lowerThreshold, r.activeConnections, r.inactiveConnections].map((n) => pad(String(n), 10)).join(' ')}\n`;
    } else if (o.persistentConn) {
      out += `  -> ${pad(d, 28)} ${pad(String(r.currentWeight), 9)} ${pad(String(r.persistentConnections), 11)} ${pad(String(r.activeConnections), 10)} ${pad(String(r.inactiveConnections), 10)}\n`;
    } else if (o.tunInfo) {
      out += `  -> ${pad(d, 28)} ${pad(FORWARD[r.method], 7)} ${pad(r.method === 'tunnel' ? 'ipip' : 'n/a', 13)} ${pad(String(r.currentWeight), 6)} ${pad(String(r.activeConnections), 10)} ${pad(String(r.inactiveConnections), 10)}\n`;
    } else {
      out += `  -> ${pad(d, 28)} ${pad(FORWARD[r.method], 7)} ${pad(String(r.currentWeight), 6)} ${pad(String(r.activeConnections), 10)} ${pad(String(r.inactiveConnections), 10)}\n`;
    }
  }
  return out;
}

// ---- the listings ----

/**
 * ipvsadm -L (list_all): the header, the title for the format, then every service and its
 * reals. With `rule` (-S) neither header nor title. The Weight column shows the weight in use
 * (`currentWeight`: lower than the configured one while slow start ramps it up); -S saves the
 * configured one.
 */
export function formatServices(services: readonly RatedService[], o: ListOptions): string {
  let out = o.rule ? '' : header(o);
  out += title(o);
  for (const s of ordered([...services], o.sort !== false)) out += serviceEntry(s, o);
  return out;
}

/** ipvsadm -L <service> (list_service): the title and that one service, no header. */
export function formatService(service: RatedService, o: ListFormat): string {
  return title(o) + serviceEntry(ordered([service], o.sort !== false)[0]!, o);
}

/** ipvsadm -S [-n] (ipvsadm-save): the commands that rebuild the table. */
export function formatSave(services: readonly RatedService[], o: Pick<ListFormat, 'names' | 'sort'> = {}): string {
  return formatServices(services, { ...o, tableSize: 0, rule: true });
}

/** ipvsadm -L -n */
export function formatList(services: readonly RatedService[], o: ListOptions): string {
  return formatServices(services, { tableSize: o.tableSize, exact: o.exact, sort: o.sort, names: o.names });
}

/** ipvsadm -L -n --stats */
export function formatStats(services: readonly RatedService[], o: ListOptions): string {
  return formatServices(services, { ...o, stats: true });
}

/** ipvsadm -L -n --rate */
export function formatRate(services: readonly RatedService[], o: ListOptions): string {
  return formatServices(services, { ...o, rate: true });
}

/** ipvsadm -L -n --thresholds */
export function formatThresholds(services: readonly RatedService[], o: ListOptions): string {
  return formatServices(services, { ...o, thresholds: true });
}

/** ipvsadm -L -n --persistent-conn */
export function formatPersistentConnections(services: readonly RatedService[], o: ListOptions): string {
  return formatServices(services, { ...o, persistentConn: true });
}

/** ipvsadm -L -n --tun-info */
export function formatTunnelInfo(services: readonly RatedService[], o: ListOptions): string {
  return formatServices(services, { ...o, tunInfo: true });
}

/** ipvsadm -L --timeout */
export function formatTimeouts(t: Timeouts): string {
  return `Timeout (tcp tcpfin udp): ${t.tcp} ${t.tcpfin} ${t.udp}\n`;
}

/**
 * ipvsadm -L [-n] -c [--persistent-conn]: the connection table (ipvsadm reads it from
 * /proc/net/ip_vs_conn; lvsd's `connections` request gives the same rows). Expire is mm:ss of
 * whole seconds left. --persistent-conn adds the persistence-engine columns to the title; lvsd
 * has no persistence engines, so rows stay as they are (ipvsadm prints the wide row only for
 * entries that carry engine data).
 */
export function formatConnections(conns: readonly ConnectionEntry[], o: Pick<ListFormat, 'names' | 'persistentConn'> = {}): string {
  let out = 'IPVS connection entries\n';
  if (o.persistentConn) out += `pro expire ${pad('state', 11)} ${pad('source', 18)} ${pad('virtual', 18)} ${pad('destination', 18)} ${pad('pe name', 16)} pe_data\n`;
  else out += `pro expire ${pad('state', 11)} ${pad('source', 18)} ${pad('virtual', 18)} destination\n`;
  for (const c of conns) {
    const secs = Math.max(0, Math.floor(c.expiresIn / 1000));
    const expire = `${String(Math.floor(secs / 60)).padStart(2, '0')}:${String(secs % 60).padStart(2, '0')}`;
    const proto = c.protocol === 'TCP' ? 'tcp' : c.protocol === 'UDP' ? 'udp' : null;
    const client = addrPort(addr(c.client.address), c.client.port, proto, o.names);
    const virtual = addrPort(addr(c.virtual.address), c.virtual.port, proto, o.names);
    const dest = addrPort(addr(c.destination.address), c.destination.port, proto, o.names);
    out += `${pad(c.protocol, 3)} ${pad(expire, 6)} ${pad(c.state, 11)} ${pad(client, 18)} ${pad(virtual, 18)} ${dest}\n`;
  }
  return out;
}
