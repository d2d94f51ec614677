/**
 * ipvsadm's command line, parsed as ipvsadm 1.31 parses it (cezarsa/ipvsadm ipvsadm.c, with
 * popt 1.19's option rules), into a typed command for lvsadm to carry out.
 *
 * popt: long options need their full name (`--stats`, `--weight=3` or `--weight 3`); short
 * options combine (`-Ln`, `-At 10.0.0.1:80`) and take their value from the rest of the cluster
 * or the next word (`-w3`, `-w 3`, `-p=600`); `-p/--persistent` takes a value only when the next
 * word does not start with "-"; words that are not options are collected as arguments (`--set`
 * takes three), and `--` ends options.
 *
 * ipvsadm: the first option must be the command (-A -E -D -C -a -e -d -L/-l -Z --set -S -R -h
 * -v --start-daemon --stop-daemon); every later option is checked against its table of legal
 * command/option combinations, and the same messages come out, with the same exit statuses:
 * 2 for ipvsadm's fail(), 255 for "Try ... -h" and for option errors popt reports. Host names
 * and service names resolve through /etc/hosts and /etc/services only (the NSS "files" source:
 * no DNS, so parsing never waits on a resolver).
 *
 * lvsadm adds one command, `--write-config [FILE]` (the running configuration to lvs.cf); its
 * `--socket PATH` option is taken off the command line by lvsadm before this parser runs.
 */
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import type { Family, SchedulerFlag, Timeouts } from '../dataplane/types.js';
import { parseAddress } from '../net/address.js';
import { ntop, ntop4, type NameLookup } from './format.js';

export const PROGRAM = 'lvsadm';

// ---- how a command line ends ----

/** The program ends here: ipvsadm's exit() (fail() is status 2, "Try ... -h" 255, -h/-v 0). */
export class IpvsadmExit extends Error {
  constructor(
    readonly status: number,
    readonly stderr: string,
    readonly stdout = '',
  ) {
    super(stderr.trim() || stdout.trim());
  }
}

/** This command fails, but the program goes on (ipvsadm's `return -1`: with -R, the next
 *  line runs). Status 255. */
export class IpvsadmLineError extends Error {
  readonly status = 255;
  constructor(readonly stderr: string) {
    super(stderr.trim());
  }
}

function fail(message: string): never {
  throw new IpvsadmExit(2, `${message}\n`);
}

function tryHelp(program: string): never {
  throw new IpvsadmExit(255, `Try \`${program} -h' or '${program} --help' for more information.\n`);
}

// ---- names: /etc/hosts and /etc/services ----

/** Name lookups both ways, as ipvsadm makes them through NSS. */
export interface NameService extends NameLookup {
  /** gethostbyname(): an IPv4 address for the name, or null. */
  hostAddress(name: string): Uint8Array | null;
  /** getservbyname(): the port of a service name for the protocol, or null. */
  servicePort(name: string, protocol: 'tcp' | 'udp' | 'sctp' | null): number | null;
}

/** No names at all: every lookup fails (what ipvsadm sees with empty NSS databases). */
export const NO_NAMES: NameService = {
  hostName: () => null,
  serviceName: () => null,
  hostAddress: () => null,
  servicePort: () => null,
};

interface HostEntry {
  family: Family;
  bytes: Uint8Array;
  names: string[];
}
interface ServiceEntry {
  name: string;
  aliases: string[];
  port: number;
  protocol: string;
}

function readLines(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').split('\n');
  } catch {
    return [];
  }
}

/**
 * The NSS "files" source: /etc/hosts (first line with the address gives the name; first line
 * with the name and an IPv4 address gives the address) and /etc/services. Read once, lazily.
 */
export function filesNameService(hostsFile = '/etc/hosts', servicesFile = '/etc/services'): NameService {
  let hosts: HostEntry[] | null = null;
  let services: ServiceEntry[] | null = null;
  const loadHosts = (): HostEntry[] => {
    hosts ??= readLines(hostsFile).flatMap((line) => {
      const f = line.replace(/#.*/, '').trim().split(/\s+/);
      if (f.length < 2) return [];
      try {
        const a = parseAddress(f[0]!);
        return [{ family: a.family, bytes: a.bytes, names: f.slice(1) }];
      } catch {
        return [];
      }
    });
    return hosts;
  };
  const loadServices = (): ServiceEntry[] => {
    services ??= readLines(servicesFile).flatMap((line) => {
      const f = line.replace(/#.*/, '').trim().split(/\s+/);
      const m = f.length >= 2 ? /^(\d+)\/(\w+)$/.exec(f[1]!) : null;
      return m ? [{ name: f[0]!, aliases: f.slice(2), port: Number(m[1]), protocol: m[2]! }] : [];
    });
    return services;
  };
  const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);
  return {
    hostName(family, bytes) {
      return loadHosts().find((h) => h.family === family && same(h.bytes, bytes))?.names[0] ?? null;
    },
    hostAddress(name) {
      const n = name.toLowerCase();
      return loadHosts().find((h) => h.family === 'ipv4' && h.names.some((x) => x.toLowerCase() === n))?.bytes ?? null;
    },
    serviceName(port, protocol) {
      if (!protocol) return null;
      return loadServices().find((s) => s.port === port && s.protocol === protocol)?.name ?? null;
    },
    servicePort(name, protocol) {
      if (!protocol) return null;
      return loadServices().find((s) => s.protocol === protocol && (s.name === name || s.aliases.includes(name)))?.port ?? null;
    },
  };
}

// ---- C library number and address parsing ----

/** strtol(s, &end, 10) that must consume all of s (ipvsadm's string_to_number test). */
function strtolWhole(s: string): number | null {
  const m = /^[ \t\n\v\f\r]*([+-]?\d+)$/.exec(s);
  if (!m) return null;
  const n = Number(m[1]);
  return Math.abs(n) > Number.MAX_SAFE_INTEGER ? Number.POSITIVE_INFINITY * Math.sign(n) : n;
}

/** ipvsadm's string_to_number: a whole decimal in [min, max], else -1. */
function stringToNumber(s: string, min: number, max: number): number {
  const n = strtolWhole(s);
  return n !== null && n >= min && n <= max ? n : -1;
}

/** C's atoi. */
function atoi(s: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?\d+)/.exec(s);
  return m ? Number(m[1]) | 0 : 0;
}

/** glibc's inet_aton: 1 to 4 parts, each decimal, 0-octal or 0x-hex; the last fills the rest;
 *  anything after a blank is ignored. */
export function inetAton(s: string): Uint8Array | null {
  const parts: number[] = [];
  let i = 0;
  let val = 0;
  for (;;) {
    if (!/[0-9]/.test(s[i] ?? '')) return null;
    let m: RegExpExecArray | null;
    const rest = s.slice(i);
    if ((m = /^0[xX]([0-9a-fA-F]+)/.exec(rest))) val = parseInt(m[1]!, 16);
    else if ((m = /^0[0-7]*/.exec(rest))) val = m[0].length > 1 ? parseInt(m[0], 8) : 0;
    else if ((m = /^[0-9]+/.exec(rest))) val = Number(m[0]);
    i += m![0].length;
    if (val > 0xffffffff) return null;
    if (s[i] === '.') {
      if (parts.length > 2 || val > 0xff) return null;
      parts.push(val);
      i++;
      continue;
    }
    break;
  }
  if (i < s.length && !/[ \t\n\v\f\r]/.test(s[i]!)) return null;
  const max = [0xffffffff, 0xffffff, 0xffff, 0xff][parts.length]!;
  if (val > max) return null;
  const word = parts.reduce((acc, p, k) => acc + p * 2 ** (24 - 8 * k), 0) + val;
  return Uint8Array.of((word / 2 ** 24) & 0xff, (word / 2 ** 16) & 0xff, (word / 2 ** 8) & 0xff, word & 0xff);
}

/** inet_pton(AF_INET6). */
function inetPton6(s: string): Uint8Array | null {
  if (!isIPv6(s) || s.includes('%')) return null;
  return parseAddress(s).bytes;
}

/** inet_pton(AF_INET): four decimal parts without leading zeros. */
function inetPton4(s: string): Uint8Array | null {
  if (!/^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/.test(s)) return null;
  return Uint8Array.from(s.split('.').map(Number));
}

// ---- the typed command ----

export type ServiceProtocol = 'tcp' | 'udp' | 'sctp';

/** A virtual service as named on the command line (-t/-u/--sctp-service host:port, -f mark [-6]). */
export interface ServiceArg {
  family: Family;
  /** null for a firewall-mark service. */
  protocol: ServiceProtocol | null;
  /** Canonical text; null for a firewall-mark service. */
  address: string | null;
  port: number;
  fwmark: number;
}

/** -A/-E: everything ipvsadm sends (what is not given takes ipvsadm's default: an edit sets
 *  them all). */
export interface ServiceSettingsArg {
  /** -s, default wlc; any name (lvsd knows its own). */
  scheduler: string;
  /** -p [timeout]: null = not persistent. */
  persistence: { timeout: number; netmask: string | number } | null;
  /** -b, by bit, named for the scheduler. */
  flags: SchedulerFlag[];
  /** -o */
  onePacket: boolean;
  /** --pe */
  persistenceEngine: string | null;
}

export type TunnelType = 'ipip' | 'gue' | 'gre';

/** -a/-e: the real and everything ipvsadm sends for it. */
export interface ServerArg {
  family: Family;
  address: string;
  port: number;
  method: 'direct' | 'nat' | 'tunnel';
  weight: number;
  upperThreshold: number;
  lowerThreshold: number;
  tunnel: { type: TunnelType; port: number; checksum: 'nocsum' | 'csum' | 'remcsum' | null };
}

/** -L's format flags (ipvsadm's FMT_*). */
export interface FormatArg {
  numeric: boolean;
  stats: boolean;
  rate: boolean;
  thresholds: boolean;
  persistentConn: boolean;
  tunInfo: boolean;
  exact: boolean;
  sort: boolean;
}

export interface DaemonArg {
  mcastInterface: string;
  syncId: number;
  syncMaxlen: number;
  mcastGroup: string | null;
  mcastPort: number;
  mcastTtl: number;
}

export type IpvsadmCommand =
  | { command: 'add-service' | 'edit-service'; service: ServiceArg; settings: ServiceSettingsArg }
  | { command: 'delete-service'; service: ServiceArg }
  | { command: 'flush' }
  | { command: 'list'; service: ServiceArg | null; show: 'services' | 'connections' | 'timeout' | 'daemon'; format: FormatArg }
  | { command: 'add-server' | 'edit-server'; service: ServiceArg; server: ServerArg }
  | { command: 'delete-server'; service: ServiceArg; server: Pick<ServerArg, 'family' | 'address' | 'port'> }
  | { command: 'set'; timeouts: Timeouts }
  | { command: 'start-daemon' | 'stop-daemon'; state: 'master' | 'backup'; daemon: DaemonArg }
  | { command: 'restore' }
  | { command: 'save'; format: FormatArg }
  | { command: 'zero'; service: ServiceArg | null }
  | { command: 'write-config'; file: string | null };

// ---- ipvsadm's tables ----

const CMD = ['add-service', 'edit-service', 'delete-service', 'flush', 'list', 'add-server', 'delete-server', 'edit-server', 'set', 'start-daemon', 'stop-daemon', 'restore', 'save', 'zero', 'write-config'] as const;
type Cmd = (typeof CMD)[number];

/** ipvsadm's optnames, in OPTC_ order (bit numbers). */
const OPTNAMES = [
  'numeric', 'connection', 'service-address', 'scheduler', 'persistent', 'netmask', 'real-server', 'forwarding-method', 'weight', 'u-threshold',
  'l-threshold', 'mcast-interface', 'timeout', 'daemon', 'stats', 'rate', 'thresholds', 'persistent-conn', 'nosort', 'syncid',
  'exact', 'ops', 'pe', 'sched-flags', 'mcast-group', 'mcast-port', 'mcast-ttl', 'sync-maxlen', 'tun-info', 'tun-type',
  'tun-port', 'tun-nocsum', 'tun-csum', 'tun-remcsum',
] as const;
const O = Object.fromEntries(OPTNAMES.map((n, i) => [n, i])) as Record<(typeof OPTNAMES)[number], number>;

/**
 * ipvsadm's commands_v_options: per command, per option: '+' required, 'x' illegal, '1' at most
 * one of the '1's, ' ' optional. Columns in OPTNAMES order. The last row is lvsadm's
 * --write-config, which takes no options.
 */
//                 -n-c svc -s -p -M -r fwd -w -x -y mc tot dmn st rt thr pc srt sid ex ops pe -b grp port ttl size tinf type tprt nocs csum remc
const TABLE: Record<Cmd, string> = {
  'add-service':   'xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx',
  'edit-service':  'xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx',
  'delete-service':'xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  flush:           'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  list:            ' 11xxxxxxxxx11       xxxxxxx xxxxx',
  'add-server':    'xx+xxx+    xxxxxxxxxxxxxxxxxx     ',
  'delete-server': 'xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx',
  'edit-server':   'xx+xxx+    xxxxxxxxxxxxxxxxxx     ',
  set:             'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  'start-daemon':  'xxxxxxxxxxx xxxxxxx xxxx    xxxxxx',
  'stop-daemon':   'xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxx',
  restore:         'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  save:            ' xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  zero:            'xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  'write-config':  'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
};

/** tunnel_types_v_options: tun-port, tun-nocsum, tun-csum, tun-remcsum per tunnel type. */
const TUNNEL_TABLE: Record<TunnelType, string> = { ipip: 'xxxx', gue: '+111', gre: 'x11x' };
const TUNNEL_OPTS = [O['tun-port'], O['tun-nocsum'], O['tun-csum'], O['tun-remcsum']];

// ---- popt ----

type ArgKind = 'none' | 'string' | 'optional';
interface PoptOption {
  long?: string;
  short?: string;
  arg: ArgKind;
  val: string;
}

/** ipvsadm's poptOption table (plus lvsadm's --write-config), in its order. */
const POPT: PoptOption[] = [
  { long: 'add-service', short: 'A', arg: 'none', val: 'A' },
  { long: 'edit-service', short: 'E', arg: 'none', val: 'E' },
  { long: 'delete-service', short: 'D', arg: 'none', val: 'D' },
  { long: 'clear', short: 'C', arg: 'none', val: 'C' },
  { long: 'list', short: 'L', arg: 'none', val: 'L' },
  { long: 'list', short: 'l', arg: 'none', val: 'l' },
  { long: 'zero', short: 'Z', arg: 'none', val: 'Z' },
  { long: 'add-server', short: 'a', arg: 'none', val: 'a' },
  { long: 'edit-server', short: 'e', arg: 'none', val: 'e' },
  { long: 'delete-server', short: 'd', arg: 'none', val: 'd' },
  { long: 'set', arg: 'none', val: 'set' },
  { long: 'help', short: 'h', arg: 'none', val: 'h' },
  { long: 'version', short: 'v', arg: 'none', val: 'v' },
  { long: 'restore', short: 'R', arg: 'none', val: 'R' },
  { long: 'save', short: 'S', arg: 'none', val: 'S' },
  { long: 'start-daemon', arg: 'string', val: 'start-daemon' },
  { long: 'stop-daemon', arg: 'string', val: 'stop-daemon' },
  { long: 'tcp-service', short: 't', arg: 'string', val: 't' },
  { long: 'udp-service', short: 'u', arg: 'string', val: 'u' },
  { long: 'sctp-service', arg: 'string', val: 'sctp-service' },
  { long: 'fwmark-service', short: 'f', arg: 'string', val: 'f' },
  { long: 'scheduler', short: 's', arg: 'string', val: 's' },
  { long: 'persistent', short: 'p', arg: 'optional', val: 'p' },
  { long: 'netmask', short: 'M', arg: 'string', val: 'M' },
  { long: 'real-server', short: 'r', arg: 'string', val: 'r' },
  { long: 'masquerading', short: 'm', arg: 'none', val: 'm' },
  { long: 'ipip', short: 'i', arg: 'none', val: 'i' },
  { long: 'gatewaying', short: 'g', arg: 'none', val: 'g' },
  { long: 'weight', short: 'w', arg: 'string', val: 'w' },
  { long: 'u-threshold', short: 'x', arg: 'string', val: 'x' },
  { long: 'l-threshold', short: 'y', arg: 'string', val: 'y' },
  { long: 'numeric', short: 'n', arg: 'none', val: 'n' },
  { long: 'connection', short: 'c', arg: 'none', val: 'c' },
  { long: 'mcast-interface', arg: 'string', val: 'mcast-interface' },
  { long: 'syncid', arg: 'string', val: 'syncid' },
  { long: 'timeout', arg: 'none', val: 'timeout' },
  { long: 'daemon', arg: 'none', val: 'daemon' },
  { long: 'stats', arg: 'none', val: 'stats' },
  { long: 'rate', arg: 'none', val: 'rate' },
  { long: 'thresholds', arg: 'none', val: 'thresholds' },
  { long: 'persistent-conn', arg: 'none', val: 'persistent-conn' },
  { long: 'nosort', arg: 'none', val: 'nosort' },
  { long: 'sort', arg: 'none', val: 'sort' },
  { long: 'exact', short: 'X', arg: 'none', val: 'X' },
  { long: 'ipv6', short: '6', arg: 'none', val: '6' },
  { long: 'ops', short: 'o', arg: 'none', val: 'o' },
  { long: 'pe', arg: 'string', val: 'pe' },
  { long: 'sched-flags', short: 'b', arg: 'string', val: 'b' },
  { long: 'mcast-group', arg: 'string', val: 'mcast-group' },
  { long: 'mcast-port', arg: 'string', val: 'mcast-port' },
  { long: 'mcast-ttl', arg: 'string', val: 'mcast-ttl' },
  { long: 'sync-maxlen', arg: 'string', val: 'sync-maxlen' },
  { long: 'tun-info', arg: 'none', val: 'tun-info' },
  { long: 'tun-type', arg: 'string', val: 'tun-type' },
  { long: 'tun-port', arg: 'string', val: 'tun-port' },
  { long: 'tun-nocsum', arg: 'none', val: 'tun-nocsum' },
  { long: 'tun-csum', arg: 'none', val: 'tun-csum' },
  { long: 'tun-remcsum', arg: 'none', val: 'tun-remcsum' },
  { long: 'write-config', arg: 'optional', val: 'write-config' },
];

const POPT_ERRORS = { NOARG: 'missing argument', BADOPT: 'unknown option', UNWANTEDARG: 'option does not take an argument' } as const;
type PoptError = keyof typeof POPT_ERRORS;
type PoptResult = { val: string; arg: string | null } | { end: true } | { error: PoptError };

/** popt's poptGetNextOpt over argv (without the program name), for ipvsadm's table. */
class Popt {
  private next = 0;
  private nextCharArg: string | null = null;
  private restLeftover = false;
  private readonly leftovers: string[] = [];
  private nextLeftover = 0;

  constructor(private readonly argv: readonly string[]) {}

  getNextOpt(): PoptResult {
    for (;;) {
      if (this.nextCharArg === null && this.next === this.argv.length) return { end: true };
      let opt: PoptOption | undefined;
      let longArg: string | null = null;
      if (this.nextCharArg === null) {
        const orig = this.argv[this.next++]!;
        if (this.restLeftover || orig[0] !== '-' || orig === '-') {
          this.leftovers.push(orig);
          continue;
        }
        if (orig === '--') {
          this.restLeftover = true;
          continue;
        }
        let s = orig.slice(1);
        const oneDash = s[0] !== '-';
        if (!oneDash) s = s.slice(1);
        const eq = s.indexOf('=');
        const name = eq >= 0 ? s.slice(0, eq) : s;
        if (eq >= 0) longArg = s.slice(eq + 1);
        // A single dash never names a long option here (none has POPT_ARGFLAG_ONEDASH).
        opt = oneDash ? undefined : POPT.find((o) => o.long === name);
        if (!opt) {
          if (!oneDash) return { error: 'BADOPT' };
          this.nextCharArg = orig.slice(1);
          longArg = null;
        }
      }
      if (this.nextCharArg !== null) {
        const c = this.nextCharArg[0]!;
        const rest = this.nextCharArg.slice(1);
        this.nextCharArg = null;
        opt = POPT.find((o) => o.short === c);
        if (!opt) return { error: 'BADOPT' };
        if (rest) this.nextCharArg = rest;
      }
      const o = opt!;
      if (o.arg === 'none') {
        if (longArg !== null || (this.nextCharArg !== null && this.nextCharArg[0] === '=')) return { error: 'UNWANTEDARG' };
        return { val: o.val, arg: null };
      }
      let arg: string | null;
      if (longArg !== null) arg = longArg;
      else if (this.nextCharArg !== null) {
        arg = this.nextCharArg[0] === '=' ? this.nextCharArg.slice(1) : this.nextCharArg;
        this.nextCharArg = null;
      } else if (this.next === this.argv.length) {
        if (o.arg !== 'optional') return { error: 'NOARG' };
        arg = null;
      } else if (o.arg === 'optional' && this.argv[this.next]![0] === '-') arg = null;
      else arg = this.argv[this.next++]!;
      return { val: o.val, arg };
    }
  }

  /** poptGetArg: the next word that was not an option. */
  getArg(): string | null {
    return this.nextLeftover < this.leftovers.length ? this.leftovers[this.nextLeftover++]! : null;
  }

  /** poptBadOption(POPT_BADOPTION_NOALIAS): the word last taken. */
  badOption(): string {
    return this.argv[this.next - 1] ?? '';
  }
}

// ---- ipvsadm's parse_options and process_options ----

interface SvcState {
  af: Family | null;
  protocol: ServiceProtocol | null;
  addr: Uint8Array | null;
  port: number;
  fwmark: number;
  sched: string;
  persistent: boolean;
  onePacket: boolean;
  timeout: number;
  /** IPv4: the mask's bytes; IPv6 (after -t [v6] or -6, or -M for an IPv6 service): a prefix length. */
  netmask: Uint8Array | number;
  pe: string;
  schedBits: number;
}

interface DestState {
  af: Family | null;
  addr: Uint8Array | null;
  port: number;
  method: 'direct' | 'nat' | 'tunnel';
  weight: number;
  upper: number;
  lower: number;
  tunType: TunnelType;
  tunPort: number;
  tunFlags: 'nocsum' | 'csum' | 'remcsum' | null;
}

const SERVICE_ADDR = 1;
const SERVICE_PORT = 2;
const MAX_TIMEOUT = 86400 * 31;
/** IPVS_SVC_PERSISTENT_TIMEOUT */
const DEFAULT_PERSISTENCE = 360;
const DEF_SCHED = 'wlc';

export interface ParseOptions {
  /** For "Try `lvsadm -h'" and the usage text. Default "lvsadm". */
  program?: string;
  /** Name lookups for host:port arguments. Default: /etc/hosts and /etc/services. */
  names?: NameService;
  /** Parsing a line of -R input (a -R there is refused, as ipvsadm refuses it). */
  readingStdin?: boolean;
  /** For -v and -h. */
  version?: string;
}

function isDigits(s: string): boolean {
  return /^\d*$/.test(s);
}

/**
 * ipvsadm's parse_service: "host[:port]", "[v6]:port" or a bare IPv6 address. Returns the
 * SERVICE_ADDR/SERVICE_PORT bits, 0 when it is not one.
 */
function parseService(input: string, svc: Pick<SvcState, 'af' | 'addr' | 'port' | 'protocol' | 'netmask'>, names: NameService): number {
  if (isDigits(input)) return 0;
  let buf = input;
  let portText: string | null = null;
  if (buf[0] === '[') {
    const close = buf.indexOf(']', 1);
    if (close < 0) return 0;
    if (buf[close + 1] !== ':') return 0;
    portText = buf.slice(close + 2);
    buf = buf.slice(1, close);
  }
  const v6 = inetPton6(buf);
  if (v6) {
    svc.addr = v6;
    svc.af = 'ipv6';
    svc.netmask = 128;
  } else {
    // Not IPv6: the port is after the last colon (of what is left inside brackets, which
    // then has none: "[10.0.0.1]:80" names the address without a port, as in ipvsadm).
    portText = null;
    const colon = buf.lastIndexOf(':');
    if (colon >= 0) {
      portText = buf.slice(colon + 1);
      buf = buf.slice(0, colon);
    }
    const a = inetAton(buf) ?? names.hostAddress(buf);
    if (!a) return 0;
    svc.addr = a;
    svc.af = 'ipv4';
  }
  let result = SERVICE_ADDR;
  if (portText !== null) {
    result |= SERVICE_PORT;
    const n = stringToNumber(portText, 0, 65535);
    const port = n !== -1 ? n : names.servicePort(portText, svc.protocol);
    if (port === null) return 0;
    svc.port = port;
  }
  return result;
}

/** parse_sched_flags: comma-separated names to IP_VS_SVC_F_SCHED1..3 bits. */
function parseSchedFlags(sched: string, arg: string): number {
  const s = sched || DEF_SCHED;
  let bits = 0;
  const tokens = arg.split(',').filter((t) => t !== '');
  if (!tokens.length) fail("invalid scheduler flag `'");
  for (const flag of tokens) {
    const own = (name: string) => {
      if (s !== name) fail(`incompatible scheduler flag \`${flag}'`);
    };
    if (flag === 'flag-1') bits |= 1;
    else if (flag === 'flag-2') bits |= 2;
    else if (flag === 'flag-3') bits |= 4;
    else if (flag === 'sh-fallback') (bits |= 1), own('sh');
    else if (flag === 'sh-port') (bits |= 2), own('sh');
    else if (flag === 'mh-fallback') (bits |= 1), own('mh');
    else if (flag === 'mh-port') (bits |= 2), own('mh');
    else fail(`invalid scheduler flag \`${flag}'`);
  }
  return bits;
}

/** Scheduler-flag bits as lvsd's names for the scheduler. */
function flagNames(sched: string, bits: number): SchedulerFlag[] {
  const names: SchedulerFlag[] =
    sched === 'sh' ? ['sh-fallback', 'sh-port', 'flag-3'] : sched === 'mh' ? ['mh-fallback', 'mh-port', 'flag-3'] : ['flag-1', 'flag-2', 'flag-3'];
  return names.filter((_, i) => bits & (1 << i));
}

function parseTimeout(arg: string | null, min: number, max: number): number {
  if (arg === null) return DEFAULT_PERSISTENCE;
  const n = stringToNumber(arg, min, max);
  if (n === -1) fail(`invalid timeout value \`${arg}' specified`);
  return n;
}

function parseFwmark(arg: string): number {
  const n = strtolWhole(arg);
  if (n === null || n <= 0 || n > 0xffffffff) fail(`invalid fwmark value \`${arg}' specified`);
  return n;
}

function addrText(family: Family, bytes: Uint8Array): string {
  return ntop({ family, bytes });
}

/**
 * Parse one ipvsadm command line (argv without the program name). Throws IpvsadmExit when
 * ipvsadm would exit (usage, version, fail(), "Try -h"), IpvsadmLineError when it would
 * return -1 (popt's option errors).
 */
export function parseIpvsadm(argv: readonly string[], options: ParseOptions = {}): IpvsadmCommand {
  const program = options.program ?? PROGRAM;
  const names = options.names ?? filesNameService();
  const popt = new Popt(argv);

  const svc: SvcState = { af: null, protocol: null, addr: null, port: 0, fwmark: 0, sched: '', persistent: false, onePacket: false, timeout: 0, netmask: Uint8Array.of(255, 255, 255, 255), pe: '', schedBits: 0 };
  const dest: DestState = { af: null, addr: null, port: 0, method: 'direct', weight: 1, upper: 0, lower: 0, tunType: 'ipip', tunPort: 0, tunFlags: null };
  const daemon: DaemonArg = { mcastInterface: '', syncId: 0, syncMaxlen: 0, mcastGroup: null, mcastPort: 0, mcastTtl: 0 };
  const fmt: FormatArg = { numeric: false, stats: false, rate: false, thresholds: false, persistentConn: false, tunInfo: false, exact: false, sort: true };
  const opts = new Set<number>();
  let daemonState: 'master' | 'backup' = 'master';
  let writeConfigFile: string | null = null;
  let schedFlagsArg = '';

  const setOption = (o: number) => {
    if (opts.has(o)) fail(`multiple '${OPTNAMES[o]}' options specified`);
    opts.add(o);
  };

  // The first option is the command.
  const first = popt.getNextOpt();
  if (!('val' in first)) tryHelp(program);
  let cmd: Cmd;
  switch (first.val) {
    case 'A': cmd = 'add-service'; break;
    case 'E': cmd = 'edit-service'; break;
    case 'D': cmd = 'delete-service'; break;
    case 'a': cmd = 'add-server'; break;
    case 'e': cmd = 'edit-server'; break;
    case 'd': cmd = 'delete-server'; break;
    case 'C': cmd = 'flush'; break;
    case 'L':
    case 'l': cmd = 'list'; break;
    case 'Z': cmd = 'zero'; break;
    case 'set': cmd = 'set'; break;
    case 'R': cmd = 'restore'; break;
    case 'S': cmd = 'save'; break;
    case 'start-daemon':
      cmd = 'start-daemon';
      if (first.arg === 'master') daemonState = 'master';
      else if (first.arg === 'backup') daemonState = 'backup';
      else fail('illegal start-daemon parameter specified');
      break;
    case 'stop-daemon':
      cmd = 'stop-daemon';
      if (first.arg === 'master') daemonState = 'master';
      else if (first.arg === 'backup') daemonState = 'backup';
      else fail('illegal start_daemon specified');
      break;
    case 'write-config':
      cmd = 'write-config';
      writeConfigFile = first.arg;
      break;
    case 'h':
      throw new IpvsadmExit(0, '', usage(program, options.version));
    case 'v':
      throw new IpvsadmExit(0, '', versionLine(program, options.version));
    default:
      tryHelp(program);
  }

  for (;;) {
    const r = popt.getNextOpt();
    if ('end' in r) break;
    if ('error' in r) throw new IpvsadmLineError(`${popt.badOption()}: ${POPT_ERRORS[r.error]}\n`);
    const arg = r.arg;
    switch (r.val) {
      case 't':
      case 'u':
      case 'sctp-service':
        setOption(O['service-address']);
        svc.protocol = r.val === 't' ? 'tcp' : r.val === 'u' ? 'udp' : 'sctp';
        if (!(parseService(arg!, svc, names) & SERVICE_ADDR)) fail('illegal virtual server address[:port] specified');
        break;
      case 'f':
        setOption(O['service-address']);
        // ipvsadm sets an IPv4 TCP service "to sane values", though a mark needs neither.
        svc.af = 'ipv4';
        svc.protocol = 'tcp';
        svc.fwmark = parseFwmark(arg!);
        break;
      case 's':
        setOption(O.scheduler);
        svc.sched = arg!.slice(0, 15);
        break;
      case 'p':
        setOption(O.persistent);
        svc.persistent = true;
        svc.timeout = parseTimeout(arg, 1, MAX_TIMEOUT);
        break;
      case 'M':
        setOption(O.netmask);
        if (svc.af !== 'ipv6') {
          const m = inetAton(arg!) ?? names.hostAddress(arg!);
          if (!m) fail('illegal virtual server persistent mask specified');
          svc.netmask = m;
        } else {
          const n = atoi(arg!);
          if (n < 1 || n > 128) fail('illegal ipv6 netmask specified');
          svc.netmask = n;
        }
        break;
      case 'r': {
        setOption(O['real-server']);
        const t = { af: svc.af, addr: svc.addr, port: svc.port, protocol: svc.protocol, netmask: svc.netmask };
        const parsed = parseService(arg!, t, names);
        dest.af = t.af;
        dest.addr = t.addr;
        dest.port = t.port;
        if (!(parsed & SERVICE_ADDR)) fail('illegal real server address[:port] specified');
        // The service's port when none is given.
        if (parsed === SERVICE_ADDR) dest.port = svc.port;
        break;
      }
      case 'i':
        setOption(O['forwarding-method']);
        dest.method = 'tunnel';
        break;
      case 'g':
        setOption(O['forwarding-method']);
        dest.method = 'direct';
        break;
      case 'm':
        setOption(O['forwarding-method']);
        dest.method = 'nat';
        break;
      case 'w':
        setOption(O.weight);
        if ((dest.weight = stringToNumber(arg!, 0, 65535)) === -1) fail('illegal weight specified');
        break;
      case 'x':
        setOption(O['u-threshold']);
        if ((dest.upper = stringToNumber(arg!, 0, 0x7fffffff)) === -1) fail('illegal u_threshold specified');
        break;
      case 'y':
        setOption(O['l-threshold']);
        if ((dest.lower = stringToNumber(arg!, 0, 0x7fffffff)) === -1) fail('illegal l_threshold specified');
        break;
      case 'c':
        setOption(O.connection);
        break;
      case 'n':
        setOption(O.numeric);
        fmt.numeric = true;
        break;
      case 'mcast-interface':
        setOption(O['mcast-interface']);
        daemon.mcastInterface = arg!.slice(0, 15);
        break;
      case 'syncid':
        setOption(O.syncid);
        if ((daemon.syncId = stringToNumber(arg!, 0, 255)) === -1) fail('illegal syncid specified');
        break;
      case 'timeout':
        setOption(O.timeout);
        break;
      case 'daemon':
        setOption(O.daemon);
        break;
      case 'stats':
        setOption(O.stats);
        fmt.stats = true;
        break;
      case 'rate':
        setOption(O.rate);
        fmt.rate = true;
        break;
      case 'thresholds':
        setOption(O.thresholds);
        fmt.thresholds = true;
        break;
      case 'persistent-conn':
        setOption(O['persistent-conn']);
        fmt.persistentConn = true;
        break;
      case 'nosort':
        setOption(O.nosort);
        fmt.sort = false;
        break;
      case 'sort':
        // Sorting is the default; accepted for compatibility.
        break;
      case 'X':
        setOption(O.exact);
        fmt.exact = true;
        break;
      case '6':
        if (!svc.fwmark) fail('-6 used before -f\n');
        svc.af = 'ipv6';
        svc.netmask = 128;
        break;
      case 'o':
        setOption(O.ops);
        svc.onePacket = true;
        break;
      case 'pe':
        setOption(O.pe);
        svc.pe = arg!.slice(0, 32);
        break;
      case 'b':
        setOption(O['sched-flags']);
        schedFlagsArg = arg!.slice(0, 127);
        break;
      case 'mcast-group': {
        setOption(O['mcast-group']);
        if (arg!.includes(':')) {
          const a = inetPton6(arg!);
          if (!a || a[0] !== 0xff) fail(`invalid IPv6 mcast-group \`${arg}'`);
          daemon.mcastGroup = addrText('ipv6', a);
        } else {
          const a = inetPton4(arg!);
          if (!a || a[0]! < 224 || a[0]! > 239) fail(`invalid IPv4 mcast-group \`${arg}'`);
          daemon.mcastGroup = ntop4(a);
        }
        break;
      }
      case 'mcast-port':
        setOption(O['mcast-port']);
        if ((daemon.mcastPort = stringToNumber(arg!, 1, 65535)) === -1) fail('illegal mcast-port specified');
        break;
      case 'mcast-ttl':
        setOption(O['mcast-ttl']);
        if ((daemon.mcastTtl = stringToNumber(arg!, 1, 255)) === -1) fail('illegal mcast-ttl specified');
        break;
      case 'sync-maxlen':
        setOption(O['sync-maxlen']);
        if ((daemon.syncMaxlen = stringToNumber(arg!, 1, 65535 - 20 - 8)) === -1) fail('illegal sync-maxlen specified');
        break;
      case 'tun-info':
        setOption(O['tun-info']);
        fmt.tunInfo = true;
        break;
      case 'tun-type': {
        setOption(O['tun-type']);
        if (arg !== 'ipip' && arg !== 'gue' && arg !== 'gre') fail('illegal tunnel type specified');
        dest.tunType = arg;
        break;
      }
      case 'tun-port':
        setOption(O['tun-port']);
        if ((dest.tunPort = stringToNumber(arg!, 1, 65535)) === -1) fail('illegal tunnel port specified');
        break;
      case 'tun-nocsum':
        setOption(O['tun-nocsum']);
        dest.tunFlags = 'nocsum';
        break;
      case 'tun-csum':
        setOption(O['tun-csum']);
        dest.tunFlags = 'csum';
        break;
      case 'tun-remcsum':
        setOption(O['tun-remcsum']);
        dest.tunFlags = 'remcsum';
        break;
      default:
        fail(`invalid option \`${popt.badOption()}'`);
    }
  }

  let timeouts: Timeouts = { tcp: 0, tcpfin: 0, udp: 0 };
  if (cmd === 'set') {
    const a = popt.getArg();
    const b = a === null ? null : popt.getArg();
    const c = b === null ? null : popt.getArg();
    if (a === null || b === null || c === null) fail('--set option requires 3 timeout values');
    timeouts = { tcp: parseTimeout(a, 0, MAX_TIMEOUT), tcpfin: parseTimeout(b, 0, MAX_TIMEOUT), udp: parseTimeout(c, 0, MAX_TIMEOUT) };
  }
  const extra = popt.getArg();
  if (extra !== null) fail(`unexpected argument ${extra}`);
  if (schedFlagsArg) svc.schedBits = parseSchedFlags(svc.sched, schedFlagsArg);

  // process_options: the command/option table first.
  const row = TABLE[cmd];
  let count = 0;
  let last = 0;
  for (let j = 0; j < OPTNAMES.length; j++) {
    if (!opts.has(j)) {
      if (row[j] === '+') fail(`You need to supply the '${OPTNAMES[j]}' option for the '${cmd}' command`);
    } else {
      if (row[j] === 'x') fail(`Illegal '${OPTNAMES[j]}' option with the '${cmd}' command`);
      if (row[j] === '1') {
        count++;
        if (count === 1) {
          last = j;
          continue;
        }
        fail(`The option '${OPTNAMES[j]}' conflicts with the '${OPTNAMES[last]}' option in the '${cmd}' command`);
      }
    }
  }

  if (cmd === 'add-service' || cmd === 'edit-service') {
    if (!svc.fwmark && !svc.port && !svc.persistent) fail('Zero port specified for non-persistent service');
    if (svc.onePacket && !svc.fwmark && svc.protocol !== 'udp') fail('One-Packet Scheduling is only for UDP virtual services');
    if (!svc.sched) svc.sched = DEF_SCHED;
  }
  if (cmd === 'start-daemon' && !daemon.mcastInterface) daemon.mcastInterface = 'eth0';

  if (cmd === 'add-server' || cmd === 'edit-server') {
    // Direct routing and tunnelling keep the service's port (ipvsadm overrides what was given).
    if (!svc.fwmark && (dest.method === 'tunnel' || dest.method === 'direct')) dest.port = svc.port;
    if (dest.af !== svc.af && dest.method !== 'tunnel') fail('Different address family is allowed only for tunneling servers');
    const tunnelOptions = [O['tun-type'], O['tun-port'], O['tun-nocsum'], O['tun-csum'], O['tun-remcsum']].some((o) => opts.has(o));
    if (tunnelOptions && dest.method !== 'tunnel') fail('Tunnel options conflict with forward method');
    // tunnel_opt_check
    const trow = TUNNEL_TABLE[dest.tunType];
    let tcount = 0;
    let tlast = 0;
    TUNNEL_OPTS.forEach((k, j) => {
      if (!opts.has(k)) {
        if (trow[j] === '+') fail(`You need to supply the '${OPTNAMES[k]}' option for the '${dest.tunType}' tunnel type`);
      } else {
        if (trow[j] === 'x') fail(`Illegal '${OPTNAMES[k]}' option with the '${dest.tunType}' tunnel type`);
        if (trow[j] === '1') {
          tcount++;
          if (tcount === 1) {
            tlast = k;
            return;
          }
          fail(`The option '${OPTNAMES[k]}' conflicts with the '${OPTNAMES[tlast]}' option in the '${dest.tunType}' tunnel type`);
        }
      }
    });
  }

  const service = (): ServiceArg => ({
    family: svc.af ?? 'ipv4',
    protocol: svc.fwmark ? null : svc.protocol,
    address: svc.fwmark || !svc.addr ? null : addrText(svc.af!, svc.addr),
    port: svc.fwmark ? 0 : svc.port,
    fwmark: svc.fwmark,
  });
  const serviceIf = () => (opts.has(O['service-address']) ? service() : null);

  switch (cmd) {
    case 'list': {
      if ((opts.has(O.connection) || opts.has(O.timeout) || opts.has(O.daemon)) && (opts.has(O.stats) || opts.has(O.rate) || opts.has(O.thresholds))) {
        fail('options conflicts in the list command');
      }
      if ((opts.has(O.timeout) || opts.has(O.daemon)) && opts.has(O['persistent-conn'])) fail('options conflicts in the list command');
      const show = opts.has(O.connection) ? 'connections' : opts.has(O['service-address']) ? 'services' : opts.has(O.timeout) ? 'timeout' : opts.has(O.daemon) ? 'daemon' : 'services';
      return { command: 'list', service: serviceIf(), show, format: fmt };
    }
    case 'restore':
      if (options.readingStdin) tryHelp(program);
      return { command: 'restore' };
    case 'save':
      return { command: 'save', format: fmt };
    case 'flush':
      return { command: 'flush' };
    case 'add-service':
    case 'edit-service': {
      const netmask = typeof svc.netmask === 'number' ? svc.netmask : ntop4(svc.netmask);
      return {
        command: cmd,
        service: service(),
        settings: {
          scheduler: svc.sched,
          persistence: svc.persistent ? { timeout: svc.timeout, netmask } : null,
          flags: flagNames(svc.sched, svc.schedBits),
          onePacket: svc.onePacket,
          persistenceEngine: svc.pe || null,
        },
      };
    }
    case 'delete-service':
      return { command: 'delete-service', service: service() };
    case 'zero':
      return { command: 'zero', service: serviceIf() };
    case 'add-server':
    case 'edit-server':
      return {
        command: cmd,
        service: service(),
        server: {
          family: dest.af!,
          address: addrText(dest.af!, dest.addr!),
          port: dest.port,
          method: dest.method,
          weight: dest.weight,
          upperThreshold: dest.upper,
          lowerThreshold: dest.lower,
          tunnel: { type: dest.tunType, port: dest.tunPort, checksum: dest.tunFlags },
        },
      };
    case 'delete-server':
      return { command: 'delete-server', service: service(), server: { family: dest.af!, address: addrText(dest.af!, dest.addr!), port: dest.port } };
    case 'set':
      return { command: 'set', timeouts };
    case 'start-daemon':
    case 'stop-daemon':
      return { command: cmd, state: daemonState, daemon };
    case 'write-config':
      return { command: 'write-config', file: writeConfigFile };
  }
}

/**
 * ipvsadm -R's reader (config_stream_read): each line is one command; words are split on
 * blanks; the word "ipvsadm" (and "lvsadm") is dropped wherever it stands; lines with no
 * words are skipped. As in ipvsadm, "#" does not start a comment, and a last line without a
 * newline that ends in blanks is lost.
 */
export function restoreLines(text: string): string[][] {
  const out: string[][] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (i === lines.length - 1 && /[ \t\r]$/.test(line)) return;
    const words = line.split(/[ \t\r]+/).filter((w) => w !== '' && w !== 'ipvsadm' && w !== 'lvsadm');
    if (words.length) out.push(words);
  });
  return out;
}

// ---- -v and -h ----

export function versionLine(program = PROGRAM, version = '0.0.0'): string {
  return `${program} v${version} (compiled with popt-compatible options and IPVS v1.2.1)\n`;
}

/** ipvsadm's usage text, for lvsadm: lvsd's schedulers, no persistence engines, ipip only. */
export function usage(program = PROGRAM, version = '0.0.0'): string {
  const p = program;
  return (
    versionLine(program, version) +
    'Usage:\n' +
    `  ${p} -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]\n` +
    `  ${p} -D virtual-service\n` +
    `  ${p} -C\n` +
    `  ${p} -R\n` +
    `  ${p} -S [-n]\n` +
    `  ${p} -a|e virtual-service -r server-address [options]\n` +
    `  ${p} -d virtual-service -r server-address\n` +
    `  ${p} -L|l [virtual-service] [options]\n` +
    `  ${p} -Z [virtual-service]\n` +
    `  ${p} --set tcp tcpfin udp\n` +
    `  ${p} --start-daemon {master|backup} [daemon-options]\n` +
    `  ${p} --stop-daemon {master|backup}\n` +
    `  ${p} --write-config [file]\n` +
    `  ${p} -h\n\n` +
    'Commands:\n' +
    'Either long or short options are allowed.\n' +
    '  --add-service     -A        add virtual service with options\n' +
    '  --edit-service    -E        edit virtual service with options\n' +
    '  --delete-service  -D        delete virtual service\n' +
    '  --clear           -C        clear the whole table\n' +
    '  --restore         -R        restore rules from stdin\n' +
    '  --save            -S        save rules to stdout\n' +
    '  --add-server      -a        add real server with options\n' +
    '  --edit-server     -e        edit real server with options\n' +
    '  --delete-server   -d        delete real server\n' +
    '  --list            -L|-l     list the table\n' +
    '  --zero            -Z        zero counters in a service or all services\n' +
    '  --set tcp tcpfin udp        set connection timeout values\n' +
    "  --start-daemon              start connection sync daemon (not in lvsd: its sync is its own)\n" +
    "  --stop-daemon               stop connection sync daemon (not in lvsd: its sync is its own)\n" +
    '  --write-config [file]       save the running configuration to lvs.cf (or file)\n' +
    '  --help            -h        display this help message\n\n' +
    'virtual-service:\n' +
    '  --tcp-service|-t  service-address   service-address is host[:port]\n' +
    '  --udp-service|-u  service-address   service-address is host[:port]\n' +
    '  --sctp-service    service-address   service-address is host[:port]\n' +
    '  --fwmark-service|-f fwmark          fwmark is an integer greater than zero\n' +
    '\n' +
    'Options:\n' +
    '  --ipv6         -6                   fwmark entry uses IPv6\n' +
    '  --scheduler    -s scheduler         one of rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh|twos,\n' +
    `                                      the default scheduler is ${DEF_SCHED}.\n` +
    '  --pe            engine              alternate persistence engine (lvsd has none),\n' +
    '                                      not set by default.\n' +
    '  --persistent   -p [timeout]         persistent service\n' +
    '  --netmask      -M netmask           persistent granularity mask\n' +
    '  --real-server  -r server-address    server-address is host (and port)\n' +
    '  --gatewaying   -g                   gatewaying (direct routing) (default)\n' +
    '  --ipip         -i                   ipip encapsulation (tunneling)\n' +
    '  --masquerading -m                   masquerading (NAT)\n' +
    '  --tun-type      type                ipip (gue and gre are not in lvsd),\n' +
    '                                      the default tunnel type is ipip.\n' +
    '  --tun-port      port                tunnel destination port\n' +
    '  --tun-nocsum                        tunnel encapsulation without checksum\n' +
    '  --tun-csum                          tunnel encapsulation with checksum\n' +
    '  --tun-remcsum                       tunnel encapsulation with remote checksum\n' +
    '  --weight       -w weight            capacity of real server\n' +
    '  --u-threshold  -x uthreshold        upper threshold of connections\n' +
    '  --l-threshold  -y lthreshold        lower threshold of connections\n' +
    '  --connection   -c                   output of current IPVS connections\n' +
    '  --timeout                           output of timeout (tcp tcpfin udp)\n' +
    '  --daemon                            output of daemon information\n' +
    '  --stats                             output of statistics information\n' +
    '  --rate                              output of rate information\n' +
    '  --exact                             expand numbers (display exact values)\n' +
    '  --thresholds                        output of thresholds information\n' +
    '  --persistent-conn                   output of persistent connection info\n' +
    '  --tun-info                          output of tunnel information\n' +
    '  --nosort                            disable sorting output of service/server entries\n' +
    '  --sort                              does nothing, for backwards compatibility\n' +
    '  --ops          -o                   one-packet scheduling\n' +
    '  --numeric      -n                   numeric output of addresses and ports\n' +
    '  --sched-flags  -b flags             scheduler flags (comma-separated)\n' +
    'Daemon Options:\n' +
    '  --syncid sid                        syncid for connection sync (default=255)\n' +
    '  --sync-maxlen length                Max sync message length (default=1472)\n' +
    '  --mcast-interface interface         multicast interface for connection sync\n' +
    '  --mcast-group address               IPv4/IPv6 group (default=224.0.0.81)\n' +
    '  --mcast-port port                   UDP port (default=8848)\n' +
    '  --mcast-ttl ttl                     Multicast TTL (default=1)\n' +
    'lvsadm Options:\n' +
    '  --socket path                       lvsd\'s control socket (default /run/lvsd/lvsd.sock,\n' +
    '                                      or $LVSD_SOCKET)\n'
  );
}
