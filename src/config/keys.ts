/**
 * Every lvs.cf key: where it may stand, how many value tokens it takes, how its value is read
 * and written back, and its default (reference/piranha.md 1.2-1.4 and docs/lvs.cf.md).
 * The table's order per scope is the canonical order format() uses for keys a file did not
 * have (the Piranha GUI's order, extensions next to the key they extend).
 */
import { readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { SCHEDULERS, type ForwardingMethod, type Protocol, type SchedulerFlag, type SchedulerName } from '../dataplane/types.js';
import type { LvsErrorCode } from '../errors.js';
import { parseAddress } from '../net/address.js';
import type { Token } from './lexer.js';
import { defaultGlobals, defaultServer, defaultVirtual, type CheckLine, type FwmarkRule, type Globals, type LoadMonitor, type NatRouterSetting, type RealServer, type VirtualServer } from './model.js';

export type Scope = 'global' | 'virtual' | 'server';

/** A value that cannot be read; `token` is the index (among the value tokens) at fault. */
export class ValueError extends Error {
  constructor(
    message: string,
    readonly token = 0,
    readonly code: LvsErrorCode = 'LVS_CONFIG_VALUE',
  ) {
    super(message);
  }
}

/** /etc/services: name (and alias) -> port per protocol. */
export type ServiceNames = Map<string, { tcp?: number; udp?: number }>;

export function parseServices(text: string): ServiceNames {
  const map: ServiceNames = new Map();
  for (const line of text.split('\n')) {
    const words = line.replace(/#.*/, '').trim().split(/\s+/);
    const m = words[1]?.match(/^(\d+)\/(tcp|udp)$/);
    if (!words[0] || !m) continue;
    const port = Number(m[1]);
    for (const name of [words[0], ...words.slice(2)]) {
      const e = map.get(name) ?? {};
      if (e[m[2] as 'tcp' | 'udp'] === undefined) e[m[2] as 'tcp' | 'udp'] = port;
      map.set(name, e);
    }
  }
  return map;
}

let systemServices: ServiceNames | undefined;
/** The system's /etc/services (read once; empty if the file is missing). */
export function systemServiceNames(): ServiceNames {
  if (!systemServices) {
    try {
      systemServices = parseServices(readFileSync('/etc/services', 'utf8'));
    } catch {
      systemServices = new Map();
    }
  }
  return systemServices;
}

export interface ValueContext {
  services: ServiceNames;
}

export interface KeySpec<T = unknown> {
  key: string;
  scope: Scope;
  /** Value tokens: at least, at most. */
  args: [number, number];
  /** How the line is written, for "missing arguments" hints. */
  usage: string;
  /** Reads the value tokens into `target`; returns the canonical text of what was read, and
   *  for keys that may repeat, the index of the earlier value this one replaced (-1: none). */
  read(target: T, tokens: Token[], ctx: ValueContext): { canonical: string; replaced?: number };
  /** The canonical text of each value now set, in order (several for repeating keys). */
  values(target: T): string[];
  /** Every value is the default (the key need not be written). */
  isDefault(target: T): boolean;
  /** The key may stand several times, each line adding a value (fwmark_rule, nat_router). */
  repeats?: boolean;
  /** Parsed but without effect: the warning given when it is present. */
  inert?: string;
}

// ---------------------------------------------------------------------------------------
// Value readers. Numbers are read as Piranha's strtol(s, 0): 0x10 is 16 and 010 is 8.

const C_INT = /^[+-]?(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/;

export function cInteger(s: string): number | undefined {
  if (!C_INT.test(s)) return undefined;
  const neg = s.startsWith('-');
  const body = s.replace(/^[+-]/, '');
  const v = /^0[xX]/.test(body) ? parseInt(body.slice(2), 16) : body.length > 1 && body.startsWith('0') ? parseInt(body, 8) : parseInt(body, 10);
  return neg ? -v : v;
}

export function readInt(t: Token, min: number, max: number, index = 0): number {
  const v = cInteger(t.text);
  if (v === undefined) throw new ValueError(`integer expected, got ${JSON.stringify(t.text)}`, index);
  if (v < min || v > max) throw new ValueError(`${t.text} is out of range (expected ${min} to ${max})`, index);
  return v;
}

export function readBool(t: Token): boolean {
  const v = cInteger(t.text);
  if (v === undefined || (v !== 0 && v !== 1)) throw new ValueError(`boolean expected (0 or 1), got ${JSON.stringify(t.text)}`);
  return v === 1;
}

/** Seconds: an integer as Piranha reads it, or (an lvsd extension) a decimal such as 0.1. */
export function readSeconds(t: Token, max: number): number {
  let v = cInteger(t.text);
  if (v === undefined && /^(\d+\.\d*|\.\d+)$/.test(t.text)) v = Number(t.text);
  if (v === undefined) throw new ValueError(`number of seconds expected, got ${JSON.stringify(t.text)}`);
  if (!(v > 0 && v <= max)) throw new ValueError(`${t.text} is out of range (expected more than 0, at most ${max} seconds)`);
  if (Math.abs(Math.round(v * 1000) - v * 1000) > 1e-6) throw new ValueError(`${t.text} is finer than a millisecond`);
  return v;
}

/** A port number, or a name from /etc/services (Piranha: getservbyname(name, "tcp")). */
export function readPort(t: Token, ctx: ValueContext, min = 0, index = 0): number {
  const n = cInteger(t.text);
  if (n !== undefined) {
    if (n < min || n > 65535) throw new ValueError(`${t.text} is out of range (expected ${min} to 65535)`, index);
    return n;
  }
  const s = ctx.services.get(t.text);
  const p = s?.tcp ?? s?.udp;
  if (p === undefined) throw new ValueError(`invalid argument ${JSON.stringify(t.text)} (expected a port number or a service name from /etc/services)`, index);
  return p;
}

const HOSTNAME = /^(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** An IP address, in canonical text. */
export function readIp(t: Token, index = 0): string {
  if (isIPv4(t.text) || isIPv6(t.text)) return parseAddress(t.text).text;
  throw new ValueError(`invalid ip address ${JSON.stringify(t.text)} (expected an IPv4 or IPv6 address)`, index);
}

/** An IP address or a host name (resolved by resolveConfig). */
export function readHost(t: Token, index = 0): string {
  if (isIPv4(t.text) || isIPv6(t.text)) return parseAddress(t.text).text;
  if (HOSTNAME.test(t.text) && /[A-Za-z]/.test(t.text)) return t.text;
  throw new ValueError(`invalid host name or ip address ${JSON.stringify(t.text)}`, index);
}

/** A netmask: dotted (as Piranha) or (an lvsd extension, needed for IPv6) a prefix length. */
export function readMask(t: Token, contiguous: boolean): string | number {
  const m = t.text.match(/^\/?(\d{1,3})$/);
  if (m) {
    const n = Number(m[1]);
    if (n > 128) throw new ValueError(`prefix length ${n} is out of range (expected 0 to 128)`);
    return n;
  }
  if (isIPv4(t.text)) {
    if (contiguous && maskPrefix(t.text) === undefined) throw new ValueError(`Bad subnet mask specified: ${t.text} is not a contiguous netmask`);
    return t.text;
  }
  throw new ValueError(`Bad subnet mask specified: ${JSON.stringify(t.text)} (expected a netmask such as 255.255.255.0 or a prefix length)`);
}

/** The prefix length of a contiguous dotted netmask. */
export function maskPrefix(mask: string): number | undefined {
  const b = mask.split('.').map(Number);
  const w = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
  const plen = Math.clz32(~w >>> 0);
  const back = plen === 0 ? 0 : (0xffffffff << (32 - plen)) >>> 0;
  return back === w ? plen : undefined;
}

/** A device, or an ifconfig alias label (`eth0:1`) as Piranha wrote them. */
export function readDevice(t: Token, index = 0): string {
  const [base, alias, more] = t.text.split(':');
  if (more === undefined && base && base.length <= 15 && !/[/\s]/.test(base) && base !== '.' && base !== '..' && t.text.length <= 15 && (alias === undefined || /^[^/\s]+$/.test(alias))) return t.text;
  throw new ValueError(`invalid device ${JSON.stringify(t.text)} (expected an interface name such as eth0, or an alias such as eth0:1)`, index);
}

function readEnum<V extends string>(t: Token, values: readonly V[], what = 'invalid argument'): V {
  if ((values as readonly string[]).includes(t.text)) return t.text as V;
  throw new ValueError(`${what} ${JSON.stringify(t.text)} (expected ${values.length === 2 ? `${values[0]} or ${values[1]}` : `one of ${values.join(', ')}`})`);
}

const METHODS: readonly ForwardingMethod[] = ['nat', 'direct', 'tunnel'];
const FLAGS: readonly SchedulerFlag[] = ['sh-fallback', 'sh-port', 'mh-fallback', 'mh-port', 'flag-1', 'flag-2', 'flag-3'];

export function readScheduler(t: Token): SchedulerName {
  if ((SCHEDULERS as readonly string[]).includes(t.text)) return t.text as SchedulerName;
  throw new ValueError(`unknown scheduler ${JSON.stringify(t.text)} (expected one of ${SCHEDULERS.join(', ')})`);
}

function readFlags(t: Token): SchedulerFlag[] {
  const out: SchedulerFlag[] = [];
  for (const f of t.text.split(',')) {
    if (!(FLAGS as readonly string[]).includes(f)) throw new ValueError(`unknown scheduler flag ${JSON.stringify(f)} (expected ${FLAGS.join(', ')}, separated by commas)`);
    if (!out.includes(f as SchedulerFlag)) out.push(f as SchedulerFlag);
  }
  return out;
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/** An address or prefix for a firewall-mark rule. */
function readPrefix(t: Token, index: number): string {
  const [a, len, more] = t.text.split('/');
  if (more === undefined && a && (isIPv4(a) || isIPv6(a))) {
    const addr = parseAddress(a);
    const max = addr.family === 'ipv4' ? 32 : 128;
    if (len === undefined) return addr.text;
    if (/^\d{1,3}$/.test(len) && Number(len) <= max) return `${addr.text}/${Number(len)}`;
  }
  throw new ValueError(`invalid address or prefix ${JSON.stringify(t.text)} (expected e.g. 198.18.0.10, 198.18.0.0/24 or 2001:db8::/64)`, index);
}

function readPorts(t: Token, ctx: ValueContext, index: number): Array<number | [number, number]> {
  const out: Array<number | [number, number]> = [];
  for (const item of t.text.split(',')) {
    const tok = (text: string): Token => ({ ...t, text });
    const whole = cInteger(item) !== undefined || ctx.services.has(item);
    const range = whole ? null : item.match(/^([^-:]+)[-:]([^-:]+)$/);
    if (range) {
      const from = readPort(tok(range[1]!), ctx, 0, index);
      const to = readPort(tok(range[2]!), ctx, 0, index);
      if (from > to) throw new ValueError(`port range ${item} is empty`, index);
      out.push([from, to]);
    } else out.push(readPort(tok(item), ctx, 0, index));
  }
  return out;
}

export function formatRule(r: FwmarkRule): string {
  const parts: string[] = [r.protocol];
  if (r.ports.length) parts.push(r.ports.map((p) => (Array.isArray(p) ? `${p[0]}-${p[1]}` : String(p))).join(','));
  if (r.destination !== undefined) parts.push('to', r.destination);
  if (r.source !== undefined) parts.push('from', r.source);
  return parts.join(' ');
}

/** `fwmark_rule = [tcp|udp|any] [PORTS] [to DEST] [from SOURCE]`. */
export function readRule(tokens: Token[], ctx: ValueContext): FwmarkRule {
  const first = tokens[0]!;
  if (!['tcp', 'udp', 'any'].includes(first.text)) throw new ValueError(`expected tcp, udp or any first, got ${JSON.stringify(first.text)} (e.g. fwmark_rule = tcp 80,443)`);
  const rule: FwmarkRule = { protocol: first.text as FwmarkRule['protocol'], ports: [] };
  let i = 1;
  if (i < tokens.length && tokens[i]!.text !== 'to' && tokens[i]!.text !== 'from') rule.ports = readPorts(tokens[i]!, ctx, i++);
  while (i < tokens.length) {
    const word = tokens[i]!.text;
    if ((word !== 'to' && word !== 'from') || (word === 'to' ? rule.destination : rule.source) !== undefined) {
      throw new ValueError(`unexpected ${JSON.stringify(word)} (expected "to DESTINATION" or "from SOURCE")`, i);
    }
    const v = tokens[i + 1];
    if (!v) throw new ValueError(`"${word}" needs an address or prefix after it`, i, 'LVS_CONFIG_SYNTAX');
    if (word === 'to') rule.destination = readPrefix(v, i + 1);
    else rule.source = readPrefix(v, i + 1);
    i += 2;
  }
  return rule;
}

// ---------------------------------------------------------------------------------------
// Writing values back.

/** A value written as one token: bare if it can be, quoted otherwise. */
export function word(v: string): string {
  if (v !== '' && !/[\s"']/.test(v[0]!) && !/\s/.test(v)) return v;
  return quoted(v);
}

/** A value written in quotes (send, expect, send_program always are). */
export function quoted(v: string): string {
  return v.includes('"') ? `'${v}'` : `"${v}"`;
}

const num = (n: number) => String(n);
const bool = (b: boolean) => (b ? '1' : '0');
const mask = (m: string | number) => String(m);

// ---------------------------------------------------------------------------------------
// The tables.

type Field<T, K extends keyof T> = { [P in K]: T[P] };

/** A key holding one value in property `prop` of the scope object. */
function scalar<T, K extends keyof T>(
  scope: Scope,
  key: string,
  prop: K,
  read: (t: Token, ctx: ValueContext) => T[K],
  fmt: (v: NonNullable<T[K]>) => string,
  def: T[K] | undefined,
  usage = `${key} = VALUE`,
): KeySpec<T> {
  return {
    key,
    scope,
    args: [1, 1],
    usage,
    read(target, tokens, ctx) {
      const v = read(tokens[0]!, ctx);
      (target as Field<T, K>)[prop] = v;
      return { canonical: fmt(v as NonNullable<T[K]>) };
    },
    values: (target) => (target[prop] === undefined ? [] : [fmt(target[prop] as NonNullable<T[K]>)]),
    isDefault: (target) => (def === undefined ? target[prop] === undefined : target[prop] === def),
  };
}

/** A key parsed and stored as written, without effect (Piranha's unused keys). */
function inert<T extends { inert: Record<string, string> }>(scope: Scope, key: string, check: (tokens: Token[]) => void, warning: string, args: [number, number] = [1, 1]): KeySpec<T> {
  return {
    key,
    scope,
    args,
    usage: `${key} = VALUE`,
    inert: warning,
    read(target, tokens) {
      check(tokens);
      const text = tokens.map((t) => t.raw).join(' ');
      target.inert[key] = text;
      return { canonical: text };
    },
    values: (target) => (target.inert[key] === undefined ? [] : [target.inert[key]!]),
    isDefault: (target) => target.inert[key] === undefined,
  };
}

const G = defaultGlobals();
const V = defaultVirtual('');
const S = defaultServer('');

const anyString = () => undefined;
const boolCheck = (tokens: Token[]) => void readBool(tokens[0]!);

export const GLOBAL_KEYS: KeySpec<Globals>[] = [
  scalar<Globals, 'serialNo'>('global', 'serial_no', 'serialNo', (t) => readInt(t, 0, 0x7fffffff), num, G.serialNo),
  scalar<Globals, 'primary'>('global', 'primary', 'primary', (t) => readHost(t), String, undefined, 'primary = IP'),
  scalar<Globals, 'primaryPrivate'>('global', 'primary_private', 'primaryPrivate', (t) => readHost(t), String, undefined, 'primary_private = IP'),
  inert('global', 'primary_shared', anyString, 'ignored: shared SCSI is for failover services (service = fos) only'),
  scalar<Globals, 'service'>('global', 'service', 'service', (t) => {
    if (t.text === 'fos') throw new ValueError('fos (failover services) is not supported by lvsd; only lvs', 0, 'LVS_CONFIG_UNSUPPORTED');
    return readEnum(t, ['lvs', 'fos']) as 'lvs';
  }, String, G.service),
  scalar<Globals, 'rshCommand'>('global', 'rsh_command', 'rshCommand', (t) => readEnum(t, ['rsh', 'ssh']), String, G.rshCommand),
  scalar<Globals, 'backupActive'>('global', 'backup_active', 'backupActive', readBool, bool, G.backupActive),
  scalar<Globals, 'backup'>('global', 'backup', 'backup', (t) => readHost(t), String, undefined, 'backup = IP'),
  scalar<Globals, 'backupPrivate'>('global', 'backup_private', 'backupPrivate', (t) => readHost(t), String, undefined, 'backup_private = IP'),
  inert('global', 'backup_shared', anyString, 'ignored: shared SCSI is for failover services (service = fos) only'),
  inert('global', 'heartbeat', boolCheck, 'ignored: Piranha never used it (heartbeats are sent when backup_active = 1)'),
  scalar<Globals, 'heartbeatPort'>('global', 'heartbeat_port', 'heartbeatPort', (t, ctx) => readPort(t, ctx, 1), num, G.heartbeatPort),
  scalar<Globals, 'keepalive'>('global', 'keepalive', 'keepalive', (t) => readSeconds(t, 3600), num, G.keepalive),
  scalar<Globals, 'deadtime'>('global', 'deadtime', 'deadtime', (t) => readSeconds(t, 3600), num, G.deadtime),
  scalar<Globals, 'network'>('global', 'network', 'network', (t) => readEnum(t, METHODS), String, G.network),
  {
    key: 'nat_router',
    scope: 'global',
    args: [2, 2],
    usage: 'nat_router = IP DEVICE',
    repeats: true,
    read(g, tokens) {
      const [ip, len, more] = tokens[0]!.text.split('/');
      const address = readIp({ ...tokens[0]!, text: ip! });
      const r: NatRouterSetting = { address, device: readDevice(tokens[1]!, 1) };
      if (len !== undefined) {
        const max = address.includes(':') ? 128 : 32;
        if (more !== undefined || !/^\d{1,3}$/.test(len) || Number(len) > max) throw new ValueError(`invalid prefix length in ${JSON.stringify(tokens[0]!.text)} (expected 0 to ${max})`);
        r.prefixLength = Number(len);
      }
      // One nat_router per address family: a later one replaces an earlier one (Piranha kept
      // the last nat_router line).
      const family = (a: string) => a.includes(':');
      const replaced = g.natRouters.findIndex((x) => family(x.address) === family(address));
      if (replaced >= 0) g.natRouters.splice(replaced, 1);
      g.natRouters.push(r);
      return { canonical: natRouterText(r), replaced };
    },
    values: (g) => g.natRouters.map(natRouterText),
    isDefault: (g) => g.natRouters.length === 0,
  },
  scalar<Globals, 'natNmask'>('global', 'nat_nmask', 'natNmask', (t) => readMask(t, true), mask, undefined, 'nat_nmask = NETMASK'),
  inert('global', 'reservation_conflict_action', (tokens) => void readEnum(tokens[0]!, ['nothing', 'preempt']), 'ignored: it is for failover services (service = fos) only'),
  inert('global', 'debug_level', anyString, 'ignored: Piranha never used it (lvsd logs with pino; see lvsd --log-level)'),
  scalar<Globals, 'activeCmd'>('global', 'active_cmd', 'activeCmd', (t) => t.text, word, undefined, 'active_cmd = COMMAND'),
  scalar<Globals, 'inactiveCmd'>('global', 'inactive_cmd', 'inactiveCmd', (t) => t.text, word, undefined, 'inactive_cmd = COMMAND'),
  scalar<Globals, 'monitorLinks'>('global', 'monitor_links', 'monitorLinks', (t) => {
    const v = cInteger(t.text);
    if (v === undefined) throw new ValueError(`integer expected, got ${JSON.stringify(t.text)}`);
    return v !== 0;
  }, bool, G.monitorLinks),
  scalar<Globals, 'heartbeatKey'>('global', 'heartbeat_key', 'heartbeatKey', (t) => {
    if (!t.text || t.text.includes('\0')) throw new ValueError('a file name expected');
    return t.text;
  }, word, undefined, 'heartbeat_key = FILE'),
  scalar<Globals, 'heartbeatFormat'>('global', 'heartbeat_format', 'heartbeatFormat', (t) => readEnum(t, ['lvsd', 'piranha']), String, G.heartbeatFormat),
  scalar<Globals, 'election'>('global', 'election', 'election', (t) => readEnum(t, ['pulse', 'vrrp']), String, G.election),
  scalar<Globals, 'preempt'>('global', 'preempt', 'preempt', readBool, bool, undefined, 'preempt = 0|1'),
  scalar<Globals, 'priority'>('global', 'priority', 'priority', (t) => readInt(t, 1, 254), num, G.priority),
  scalar<Globals, 'vrrpId'>('global', 'vrrp_id', 'vrrpId', (t) => readInt(t, 1, 255), num, G.vrrpId),
  scalar<Globals, 'syncPort'>('global', 'sync_port', 'syncPort', (t, ctx) => readPort(t, ctx, 0), num, G.syncPort),
  scalar<Globals, 'arpCount'>('global', 'arp_count', 'arpCount', (t) => readInt(t, 0, 100), num, G.arpCount),
  scalar<Globals, 'arpInterval'>('global', 'arp_interval', 'arpInterval', (t) => readSeconds(t, 60), num, G.arpInterval),
  scalar<Globals, 'syncdaemon'>('global', 'syncdaemon', 'syncdaemon', readBool, bool, G.syncdaemon),
  scalar<Globals, 'syncdIface'>('global', 'syncd_iface', 'syncdIface', (t) => readDevice(t), String, G.syncdIface),
  scalar<Globals, 'syncdId'>('global', 'syncd_id', 'syncdId', (t) => readInt(t, 0, 255), num, G.syncdId),
  scalar<Globals, 'tcpTimeout'>('global', 'tcp_timeout', 'tcpTimeout', (t) => readInt(t, 0, 2_147_483), num, G.tcpTimeout),
  scalar<Globals, 'tcpfinTimeout'>('global', 'tcpfin_timeout', 'tcpfinTimeout', (t) => readInt(t, 0, 2_147_483), num, G.tcpfinTimeout),
  scalar<Globals, 'udpTimeout'>('global', 'udp_timeout', 'udpTimeout', (t) => readInt(t, 0, 2_147_483), num, G.udpTimeout),
  scalar<Globals, 'hardShutdown'>('global', 'hard_shutdown', 'hardShutdown', readBool, bool, G.hardShutdown),
  inert('global', 'ipvsadm', anyString, 'ignored: lvsd does not run ipvsadm'),
  inert('global', 'sync', boolCheck, 'ignored: Piranha never used it'),
  scalar<Globals, 'tunnelType'>('global', 'tunnel_type', 'tunnelType', readTunnelType, String, G.tunnelType),
];

function readTunnelType(t: Token): 'ipip' {
  if (t.text === 'ipip') return 'ipip';
  if (['gue', 'gre'].includes(t.text)) throw new ValueError(`${t.text} is not supported (only ipip)`, 0, 'LVS_CONFIG_UNSUPPORTED');
  throw new ValueError(`invalid argument ${JSON.stringify(t.text)} (expected ipip)`);
}

export function natRouterText(r: NatRouterSetting): string {
  return `${r.address}${r.prefixLength === undefined ? '' : `/${r.prefixLength}`} ${r.device}`;
}

export const VIRTUAL_KEYS: KeySpec<VirtualServer>[] = [
  scalar<VirtualServer, 'active'>('virtual', 'active', 'active', readBool, bool, V.active),
  {
    key: 'address',
    scope: 'virtual',
    args: [1, 2],
    usage: 'address = IP DEVICE',
    read(v, tokens) {
      v.address = readHost(tokens[0]!);
      if (tokens[1]) v.device = readDevice(tokens[1], 1);
      else delete v.device;
      return { canonical: virtualAddressText(v) };
    },
    values: (v) => (v.address === undefined ? [] : [virtualAddressText(v)]),
    isDefault: (v) => v.address === undefined,
  },
  scalar<VirtualServer, 'sorryServer'>('virtual', 'sorry_server', 'sorryServer', (t) => readIp(t), String, undefined, 'sorry_server = IP'),
  scalar<VirtualServer, 'vipNmask'>('virtual', 'vip_nmask', 'vipNmask', (t) => readMask(t, false), mask, undefined, 'vip_nmask = NETMASK'),
  scalar<VirtualServer, 'fwmark'>('virtual', 'fwmark', 'fwmark', (t) => readInt(t, 0, 0xffffffff), num, V.fwmark),
  {
    key: 'fwmark_rule',
    scope: 'virtual',
    args: [1, 6],
    usage: 'fwmark_rule = tcp|udp|any [PORTS] [to DESTINATION] [from SOURCE]',
    repeats: true,
    read(v, tokens, ctx) {
      const r = readRule(tokens, ctx);
      v.fwmarkRules.push(r);
      return { canonical: formatRule(r), replaced: -1 };
    },
    values: (v) => v.fwmarkRules.map(formatRule),
    isDefault: (v) => v.fwmarkRules.length === 0,
  },
  scalar<VirtualServer, 'port'>('virtual', 'port', 'port', (t, ctx) => readPort(t, ctx), num, V.port),
  scalar<VirtualServer, 'persistent'>('virtual', 'persistent', 'persistent', (t) => readInt(t, 0, 31 * 24 * 3600), num, V.persistent),
  scalar<VirtualServer, 'pmask'>('virtual', 'pmask', 'pmask', (t) => readMask(t, false), mask, undefined, 'pmask = NETMASK'),
  scalar<VirtualServer, 'send'>('virtual', 'send', 'send', (t) => t.text, quoted, undefined, 'send = "STRING"'),
  scalar<VirtualServer, 'expect'>('virtual', 'expect', 'expect', (t) => t.text, quoted, undefined, 'expect = "STRING"'),
  scalar<VirtualServer, 'useRegex'>('virtual', 'use_regex', 'useRegex', readBool, bool, V.useRegex),
  scalar<VirtualServer, 'sendProgram'>('virtual', 'send_program', 'sendProgram', (t) => t.text, quoted, undefined, 'send_program = "PATH ARGS %h"'),
  scalar<VirtualServer, 'loadMonitor'>('virtual', 'load_monitor', 'loadMonitor', (t) => readEnum<LoadMonitor>(t, ['none', 'rup', 'ruptime', 'uptime']), String, V.loadMonitor),
  scalar<VirtualServer, 'scheduler'>('virtual', 'scheduler', 'scheduler', readScheduler, String, V.scheduler),
  {
    key: 'scheduler_flags',
    scope: 'virtual',
    args: [1, 1],
    usage: 'scheduler_flags = FLAG,FLAG',
    read(v, tokens) {
      v.schedulerFlags = readFlags(tokens[0]!);
      return { canonical: v.schedulerFlags.join(',') };
    },
    values: (v) => (v.schedulerFlags.length ? [v.schedulerFlags.join(',')] : []),
    isDefault: (v) => v.schedulerFlags.length === 0,
  },
  scalar<VirtualServer, 'mhTableSize'>('virtual', 'mh_table_size', 'mhTableSize', (t) => {
    const n = readInt(t, 251, 1 << 20);
    if (!isPrime(n)) throw new ValueError(`${n} is not prime (IPVS uses 4093, the Maglev paper 65537)`);
    return n;
  }, num, undefined, 'mh_table_size = PRIME'),
  scalar<VirtualServer, 'protocol'>('virtual', 'protocol', 'protocol', (t) => readEnum<Protocol>(t, ['tcp', 'udp']), String, V.protocol),
  scalar<VirtualServer, 'timeout'>('virtual', 'timeout', 'timeout', (t) => readInt(t, 1, 86400), num, V.timeout),
  scalar<VirtualServer, 'reentry'>('virtual', 'reentry', 'reentry', (t) => readInt(t, 0, 7 * 86400), num, V.reentry),
  scalar<VirtualServer, 'interval'>('virtual', 'interval', 'interval', (t) => readSeconds(t, 86400), num, undefined, 'interval = SECONDS'),
  scalar<VirtualServer, 'rise'>('virtual', 'rise', 'rise', (t) => readInt(t, 1, 1000), num, undefined, 'rise = CHECKS'),
  scalar<VirtualServer, 'fall'>('virtual', 'fall', 'fall', (t) => readInt(t, 1, 1000), num, undefined, 'fall = CHECKS'),
  {
    key: 'check',
    scope: 'virtual',
    args: [1, 20],
    repeats: true,
    usage: 'check = tcp|udp|http|https|dns NAME|agent PORT [port N] [path P] [host H] [status A-B] [body "REGEX"] [type T] [rcode R] [send "S"]',
    read(v, tokens, ctx) {
      const c = readCheck(tokens, ctx);
      v.checks.push(c);
      return { canonical: formatCheck(c), replaced: -1 };
    },
    values: (v) => v.checks.map(formatCheck),
    isDefault: (v) => v.checks.length === 0,
  },
  scalar<VirtualServer, 'quiesceServer'>('virtual', 'quiesce_server', 'quiesceServer', readBool, bool, V.quiesceServer),
  scalar<VirtualServer, 'tunnelType'>('virtual', 'tunnel_type', 'tunnelType', readTunnelType, String, undefined, 'tunnel_type = ipip'),
  inert('virtual', 'client_monitor', anyString, 'ignored: lvsd checks real servers itself (there is no nanny)'),
  inert('virtual', 'master', (tokens) => void readHost(tokens[0]!), 'ignored: Piranha never used it'),
  inert('virtual', 'dirs', (tokens) => {
    if (tokens[0]!.text !== '[' || tokens[tokens.length - 1]!.text !== ']') throw new ValueError('list expected (dirs = [ DIR DIR ])');
  }, 'ignored: Piranha never used it', [2, 1000]),
  inert('virtual', 'start_cmd', anyString, 'ignored: it is for failover services (service = fos) only'),
  inert('virtual', 'stop_cmd', anyString, 'ignored: it is for failover services (service = fos) only'),
];

const CHECK_KINDS = ['tcp', 'udp', 'http', 'https', 'dns', 'agent'] as const;

/** `check = KIND [ARG] [option value]...` (see CheckLine). */
export function readCheck(tokens: Token[], ctx: ValueContext): CheckLine {
  const kind = tokens[0]!.text as CheckLine['kind'];
  if (!(CHECK_KINDS as readonly string[]).includes(kind)) throw new ValueError(`expected one of ${CHECK_KINDS.join(', ')} first, got ${JSON.stringify(kind)} (e.g. check = http path /health)`);
  const c: CheckLine = { kind };
  let i = 1;
  if (kind === 'dns') {
    const name = tokens[i++];
    if (!name) throw new ValueError('check = dns NAME: the name to ask for is missing');
    c.name = name.text;
  }
  if (kind === 'agent') {
    const port = tokens[i++];
    if (!port) throw new ValueError('check = agent PORT: the agent port is missing');
    c.port = readPort(port, ctx, 1);
  }
  const allowed: Record<CheckLine['kind'], string[]> = {
    tcp: ['port'],
    udp: ['port'],
    http: ['port', 'path', 'host', 'status', 'body'],
    https: ['port', 'path', 'host', 'status', 'body'],
    dns: ['port', 'type', 'rcode'],
    agent: ['send'],
  };
  for (; i < tokens.length; i += 2) {
    const opt = tokens[i]!.text;
    const val = tokens[i + 1];
    if (!allowed[kind].includes(opt)) throw new ValueError(`check = ${kind}: unknown option ${JSON.stringify(opt)} (expected ${allowed[kind].join(', ') || 'none'})`);
    if (!val) throw new ValueError(`check = ${kind}: ${opt} needs a value`);
    switch (opt) {
      case 'port':
        c.port = readPort(val, ctx, 1);
        break;
      case 'path':
        if (!val.text.startsWith('/')) throw new ValueError(`path must start with /, got ${JSON.stringify(val.text)}`);
        c.path = val.text;
        break;
      case 'host':
        c.host = val.text;
        break;
      case 'status': {
        const m = /^(\d{3})(?:-(\d{3}))?$/.exec(val.text);
        if (!m || Number(m[1]) > Number(m[2] ?? m[1])) throw new ValueError(`status: expected CODE or FROM-TO (e.g. 200-299), got ${JSON.stringify(val.text)}`);
        c.status = [Number(m[1]), Number(m[2] ?? m[1])];
        break;
      }
      case 'body':
        try {
          new RegExp(val.text);
        } catch (e) {
          throw new ValueError(`body: not a regular expression: ${(e as Error).message}`);
        }
        c.body = val.text;
        break;
      case 'type':
        if (!['A', 'AAAA', 'SOA', 'NS'].includes(val.text)) throw new ValueError(`type: expected A, AAAA, SOA or NS, got ${JSON.stringify(val.text)}`);
        c.type = val.text as CheckLine['type'];
        break;
      case 'rcode':
        if (!['NOERROR', 'NXDOMAIN', 'any'].includes(val.text)) throw new ValueError(`rcode: expected NOERROR, NXDOMAIN or any, got ${JSON.stringify(val.text)}`);
        c.rcode = val.text as CheckLine['rcode'];
        break;
      case 'send':
        c.send = val.text;
        break;
    }
  }
  return c;
}

export function formatCheck(c: CheckLine): string {
  const out: string[] = [c.kind];
  if (c.kind === 'dns') out.push(word(c.name!));
  if (c.kind === 'agent') out.push(String(c.port));
  else if (c.port !== undefined) out.push('port', String(c.port));
  if (c.path !== undefined) out.push('path', word(c.path));
  if (c.host !== undefined) out.push('host', word(c.host));
  if (c.status) out.push('status', c.status[0] === c.status[1] ? String(c.status[0]) : `${c.status[0]}-${c.status[1]}`);
  if (c.body !== undefined) out.push('body', quoted(c.body));
  if (c.type !== undefined) out.push('type', c.type);
  if (c.rcode !== undefined) out.push('rcode', c.rcode);
  if (c.send !== undefined) out.push('send', quoted(c.send));
  return out.join(' ');
}

export function virtualAddressText(v: VirtualServer): string {
  return v.device === undefined ? `${v.address}` : `${v.address} ${v.device}`;
}

export const SERVER_KEYS: KeySpec<RealServer>[] = [
  scalar<RealServer, 'address'>('server', 'address', 'address', (t) => readHost(t), String, undefined, 'address = IP'),
  scalar<RealServer, 'active'>('server', 'active', 'active', readBool, bool, S.active),
  scalar<RealServer, 'port'>('server', 'port', 'port', (t, ctx) => readPort(t, ctx), num, undefined, 'port = PORT'),
  scalar<RealServer, 'weight'>('server', 'weight', 'weight', (t) => readInt(t, 0, 65535), num, S.weight),
  scalar<RealServer, 'method'>('server', 'method', 'method', (t) => readEnum(t, METHODS), String, undefined, 'method = nat|direct|tunnel'),
  scalar<RealServer, 'upperThreshold'>('server', 'upper_threshold', 'upperThreshold', (t) => readInt(t, 0, 0x7fffffff), num, undefined, 'upper_threshold = CONNECTIONS'),
  scalar<RealServer, 'lowerThreshold'>('server', 'lower_threshold', 'lowerThreshold', (t) => readInt(t, 0, 0x7fffffff), num, undefined, 'lower_threshold = CONNECTIONS'),
  scalar<RealServer, 'slowStart'>('server', 'slow_start', 'slowStart', (t) => readInt(t, 0, 86400), num, undefined, 'slow_start = SECONDS'),
];

export const KEYS: Record<Scope, KeySpec<never>[]> = {
  global: GLOBAL_KEYS as KeySpec<never>[],
  virtual: VIRTUAL_KEYS as KeySpec<never>[],
  server: SERVER_KEYS as KeySpec<never>[],
};

export function keySpec(scope: Scope, key: string): KeySpec<unknown> | undefined {
  return (KEYS[scope] as KeySpec<unknown>[]).find((k) => k.key === key);
}
