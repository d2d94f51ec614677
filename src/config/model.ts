/**
 * The typed lvs.cf model: what parse() produces, format() writes, the daemon maps to a
 * Director (directorConfig) and lvsadm --write-config updates (applyRunningState).
 *
 * Values are Piranha's keys with their defaults applied (docs/lvs.cf.md lists every key);
 * `layout` remembers how the file was written (key order, comments, blank lines, values as
 * typed, source positions), so a file can be read, changed and written back with its
 * comments in place and only the changed lines different.
 */
import { LvsError, type LvsErrorCode } from '../errors.js';
import type { ForwardingMethod, Protocol, SchedulerFlag, SchedulerName } from '../dataplane/types.js';

/** An IP address (canonical text) or, as Piranha allowed for some keys, a host name. */
export type Host = string;

/** Piranha's load_monitor tools. */
export type LoadMonitor = 'none' | 'rup' | 'ruptime' | 'uptime';

/** One `nat_router = IP[/PREFIX] DEVICE` line (one per address family). */
export interface NatRouterSetting {
  address: Host;
  /** As written, alias included (`eth1:1`); the director drops the alias. */
  device: string;
  /** From `IP/PREFIX` (an lvsd extension); otherwise nat_nmask applies to an IPv4 router. */
  prefixLength?: number;
}

/** One `fwmark_rule = [tcp|udp|any] [PORTS] [to DEST] [from SOURCE]` line of a virtual. */
/** `check = KIND ...` (lvsd): a health check beyond Piranha's send/expect. Several may stand
 *  in a virtual; a real is up only when all of them pass. tcp and udp use the virtual's
 *  send/expect/use_regex. */
export interface CheckLine {
  kind: 'tcp' | 'udp' | 'http' | 'https' | 'dns' | 'agent';
  /** Default: the real's port (agent: required). */
  port?: number;
  /** http/https: the path (default /), Host header, status range (default 200-399), body regex. */
  path?: string;
  host?: string;
  status?: [number, number];
  body?: string;
  /** dns: the name asked, its type (default A) and the rcode wanted (default NOERROR). */
  name?: string;
  type?: 'A' | 'AAAA' | 'SOA' | 'NS';
  rcode?: 'NOERROR' | 'NXDOMAIN' | 'any';
  /** agent: what to send first (HAProxy's agent-send). */
  send?: string;
}

export interface FwmarkRule {
  /** `any`: every protocol. */
  protocol: Protocol | 'any';
  /** Ports and inclusive ranges; empty = every port. */
  ports: Array<number | [number, number]>;
  /** An address or prefix; default the virtual's address. */
  destination?: string;
  /** An address or prefix; default any. */
  source?: string;
}

export interface Globals {
  /** serial_no: the GUI bumps it on every save; write() does too. Default 0. */
  serialNo: number;
  primary?: Host;
  primaryPrivate?: Host;
  /** Only `lvs` (failover services, `fos`, are not implemented). */
  service: 'lvs';
  backupActive: boolean;
  backup?: Host;
  backupPrivate?: Host;
  /** heartbeat_port, default 539. */
  heartbeatPort: number;
  /** Seconds between heartbeats (fractions allowed: an lvsd extension). Default 2. */
  keepalive: number;
  /** Seconds of silence before the partner is dead. Default 5. */
  deadtime: number;
  /** The default forwarding method of every real server. Default nat. */
  network: ForwardingMethod;
  natRouters: NatRouterSetting[];
  /** nat_nmask: a dotted netmask, or a prefix length; applies to the IPv4 nat_router. */
  natNmask?: string | number;
  monitorLinks: boolean;
  syncdaemon: boolean;
  /** Default eth0. */
  syncdIface: string;
  syncdId: number;
  tcpTimeout: number;
  tcpfinTimeout: number;
  udpTimeout: number;
  /** Default true. */
  hardShutdown: boolean;
  activeCmd?: string;
  inactiveCmd?: string;
  /** For load_monitor = uptime. Default rsh. */
  rshCommand: 'rsh' | 'ssh';
  /** How tunnel-mode reals are reached; only ipip. Default ipip. */
  tunnelType: 'ipip';
  /** lvsd extension: the shared key file for authenticated heartbeats and the sync channel.
   *  Relative paths are relative to lvs.cf's directory. Default heartbeat.key next to lvs.cf. */
  heartbeatKey?: string;
  /** lvsd extension: `lvsd` (authenticated, default) or `piranha` (pulse's bare magics, for a
   *  mixed pair during a migration; unauthenticated). */
  heartbeatFormat: 'lvsd' | 'piranha';
  /** lvsd extension: how the active router is chosen: `pulse` heartbeats (default) or VRRPv3. */
  election: 'pulse' | 'vrrp';
  /** lvsd extension: take over from a running partner at start (pulse --forceactive; VRRP
   *  preempt). Default false for pulse, true for VRRP (RFC 5798's default). */
  preempt?: boolean;
  /** lvsd extension: priority 1..254 (VRRP priority; pulse: the tie rule between two nodes of
   *  the same role). Default 100. */
  priority: number;
  /** lvsd extension: the VRRP virtual router id (1..255). Default 51 (keepalived's example). */
  vrrpId: number;
  /** lvsd extension: TCP port of the connection/configuration sync channel; 0 turns sync off.
   *  Default 8848 (IPVS's sync port). */
  syncPort: number;
  /** lvsd extension: gratuitous ARPs per address on takeover (Piranha: 5). */
  arpCount: number;
  /** lvsd extension: seconds between them (Piranha: 1). */
  arpInterval: number;
  /** Keys Piranha parsed and never used (heartbeat, debug_level, ...), as written. */
  inert: Record<string, string>;
}

export interface RealServer {
  name: string;
  address?: Host;
  /** Default false, as Piranha (a server without `active = 1` is not used). */
  active: boolean;
  /** Default 1. */
  weight: number;
  /** Undefined: the virtual's port (firewall-mark virtuals: the client's port). */
  port?: number;
  /** Undefined: the global `network`. */
  method?: ForwardingMethod;
  upperThreshold?: number;
  lowerThreshold?: number;
  /** Seconds over which a joining real's weight ramps up. */
  slowStart?: number;
  layout?: BlockLayout;
}

export interface VirtualServer {
  name: string;
  /** Default false. */
  active: boolean;
  /** The VIP. */
  address?: Host;
  /** The VIP's device as written (`eth0:1`); the director drops the alias. */
  device?: string;
  /** vip_nmask: a dotted netmask, or a prefix length (IPv6). */
  vipNmask?: string | number;
  /** Default 80. With `fwmark`, used for health checks only. */
  port: number;
  /** Default tcp. */
  protocol: Protocol;
  /** Default wlc. */
  scheduler: SchedulerName;
  schedulerFlags: SchedulerFlag[];
  mhTableSize?: number;
  /** Persistence timeout in seconds; 0 = none. */
  persistent: number;
  /** pmask: a dotted netmask, or a prefix length (IPv6, or IPv4 too). */
  pmask?: string | number;
  /** 0 = not a firewall-mark service. */
  fwmark: number;
  fwmarkRules: FwmarkRule[];
  /** Health-check strings as written between the quotes (nanny's \r \n \t \\ escapes are not
   *  interpreted here). */
  send?: string;
  expect?: string;
  useRegex: boolean;
  sendProgram?: string;
  loadMonitor: LoadMonitor;
  /** Seconds, default 10. */
  timeout: number;
  /** Seconds, default 180. */
  reentry: number;
  /** lvsd: seconds between checks (default `timeout`, as nanny); consecutive passes to come back
   *  (default reentry / interval) and failures to go down (default 1). */
  interval?: number;
  rise?: number;
  fall?: number;
  checks: CheckLine[];
  quiesceServer: boolean;
  sorryServer?: string;
  tunnelType?: 'ipip';
  inert: Record<string, string>;
  servers: RealServer[];
  layout?: BlockLayout;
}

/** A `failover NAME { ... }` block (service = fos, not implemented): kept as written. */
export interface FailoverService {
  name: string;
  entries: Array<{ key: string; value: string }>;
  layout?: BlockLayout;
}

export interface LvsConfig {
  globals: Globals;
  virtuals: VirtualServer[];
  failovers: FailoverService[];
  /** Host names and the addresses they resolved to (resolveConfig). */
  resolved?: Record<string, string>;
  layout?: FileLayout;
}

/** Where a key was, how it was written, and the comments before it. */
export interface KeyLayout {
  key: string;
  line: number;
  column: number;
  /** Column of the first value token. */
  valueColumn: number;
  /** Comment lines (`# ...`) and blank lines ('') before this line. */
  before: string[];
  /** The value as written (tokens joined by one blank, quotes kept). */
  text: string;
  /** The value's canonical text when it was read: while the value still formats to this,
   *  `text` is written back (so `port = domain` and `fwmark = 0x50` stay as they were). */
  canonical: string;
}

export interface BlockLayout {
  line: number;
  column: number;
  /** Comment and blank lines before the block's opening line. */
  before: string[];
  keys: KeyLayout[];
  /** Comment and blank lines before the closing brace. */
  end: string[];
}

export interface FileLayout {
  keys: KeyLayout[];
  /** Comment and blank lines at the end of the file. */
  end: string[];
  eol: '\n' | '\r\n' | '\r';
  bom: boolean;
}

/** A problem or a note about a file, with where it is. */
export interface ConfigMessage {
  file: string;
  line: number;
  column: number;
  field: string;
  /** `lvs.cf:14:5 scheduler: unknown scheduler ...` */
  message: string;
}

/** One error per problem found; parse() throws an LvsConfigError listing all of them. */
export function configError(code: LvsErrorCode, file: string, line: number, column: number, field: string, text: string): LvsError {
  return new LvsError(code, `${file}:${line}:${column} ${field}: ${text}`, { file, line, column, field });
}

/** The error parse() throws: `errors` has every problem of the file, in line order; its
 *  message lists them, one per line; file/line/column/field are the first one's. */
export class LvsConfigError extends LvsError {
  readonly errors: LvsError[];
  readonly warnings: ConfigMessage[];

  constructor(errors: LvsError[], warnings: ConfigMessage[] = []) {
    const first = errors[0]!;
    super('LVS_CONFIG_INVALID', errors.map((e) => e.message).join('\n'), {
      ...(first.file !== undefined ? { file: first.file } : {}),
      ...(first.line !== undefined ? { line: first.line } : {}),
      ...(first.column !== undefined ? { column: first.column } : {}),
      ...(first.field !== undefined ? { field: first.field } : {}),
    });
    this.errors = errors;
    this.warnings = warnings;
  }
}

export function defaultGlobals(): Globals {
  return {
    serialNo: 0,
    service: 'lvs',
    backupActive: false,
    heartbeatPort: 539,
    keepalive: 2,
    deadtime: 5,
    network: 'nat',
    natRouters: [],
    monitorLinks: false,
    syncdaemon: false,
    syncdIface: 'eth0',
    syncdId: 0,
    tcpTimeout: 0,
    tcpfinTimeout: 0,
    udpTimeout: 0,
    hardShutdown: true,
    rshCommand: 'rsh',
    tunnelType: 'ipip',
    heartbeatFormat: 'lvsd',
    election: 'pulse',
    priority: 100,
    vrrpId: 51,
    syncPort: 8848,
    arpCount: 5,
    arpInterval: 1,
    inert: {},
  };
}

export function defaultVirtual(name: string): VirtualServer {
  return {
    name,
    active: false,
    port: 80,
    protocol: 'tcp',
    scheduler: 'wlc',
    schedulerFlags: [],
    persistent: 0,
    fwmark: 0,
    fwmarkRules: [],
    useRegex: false,
    loadMonitor: 'none',
    timeout: 10,
    reentry: 180,
    checks: [],
    quiesceServer: false,
    inert: {},
    servers: [],
  };
}

export function defaultServer(name: string): RealServer {
  return { name, active: false, weight: 1 };
}

/** An empty configuration (every global at its default, no virtual servers). */
export function emptyConfig(): LvsConfig {
  return { globals: defaultGlobals(), virtuals: [], failovers: [] };
}

/** The configuration without `layout` (positions, comments, spelling): what it means. Two
 *  files mean the same thing exactly when their models without layout are equal. */
export function withoutLayout(cfg: LvsConfig): LvsConfig {
  const { layout: _f, ...rest } = cfg;
  return {
    ...rest,
    globals: { ...cfg.globals, natRouters: cfg.globals.natRouters.map((r) => ({ ...r })), inert: { ...cfg.globals.inert } },
    virtuals: cfg.virtuals.map(({ layout: _v, ...v }) => ({
      ...v,
      schedulerFlags: [...v.schedulerFlags],
      fwmarkRules: v.fwmarkRules.map((r) => ({ ...r, ports: r.ports.map((p) => (Array.isArray(p) ? [p[0], p[1]] as [number, number] : p)) })),
      checks: v.checks.map((c) => ({ ...c, ...(c.status ? { status: [c.status[0], c.status[1]] as [number, number] } : {}) })),
      inert: { ...v.inert },
      servers: v.servers.map(({ layout: _s, ...s }) => ({ ...s })),
    })),
    failovers: cfg.failovers.map(({ layout: _o, ...o }) => ({ ...o, entries: o.entries.map((e) => ({ ...e })) })),
  };
}

/** A deep copy (layout included) that can be changed without touching the original. */
export function cloneConfig(cfg: LvsConfig): LvsConfig {
  return structuredClone(cfg);
}

/** The port a real server's health check uses: its own, or its virtual's. */
export function checkPort(v: VirtualServer, s: RealServer): number {
  return s.port ?? v.port;
}

/** The port the director gives a real. NAT reals: their own port, else the virtual's (for a
 *  firewall-mark virtual, 0: the client's destination port). Direct and tunnel reals cannot
 *  change the port, so, as ipvsadm forced it for Piranha, they get the virtual's port (0 for
 *  a firewall-mark virtual) and their own `port` only serves health checks. */
export function directorPort(cfg: LvsConfig, v: VirtualServer, s: RealServer): number {
  const inherited = v.fwmark ? 0 : v.port;
  return realMethod(cfg, s) === 'nat' ? (s.port ?? inherited) : inherited;
}

/** The forwarding method of a real. */
export function realMethod(cfg: LvsConfig, s: RealServer): ForwardingMethod {
  return s.method ?? cfg.globals.network;
}

/** `eth0:1` -> `eth0`: the device an ifconfig alias label lives on. */
export function baseDevice(device: string): string {
  const i = device.indexOf(':');
  return i < 0 ? device : device.slice(0, i);
}

/** The address a host stands for: itself if it is an IP address, else what it resolved to. */
export function hostAddress(cfg: LvsConfig, host: Host): string | undefined {
  if (isIpLiteral(host)) return host;
  return cfg.resolved?.[host];
}

export function isIpLiteral(s: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(s) || s.includes(':');
}
