/**
 * The namespace lab: a client, a director (or two: option `directors`) and N real servers
 * wired for LVS-NAT, LVS-DR and LVS-TUN, IPv4 and IPv6, for the end-to-end tests, the
 * benchmarks and the `npm start` demo.
 *
 *   namespace / device                switch (namespace sw)                  namespace / device
 *   client    eth0  -- c-pub ---+                                    +-- d-priv --- priv  director
 *   director  pub   -- d-pub ---+-- br-pub          br-priv ----------+-- d-priv2 -- priv  director2
 *   director2 pub   -- d-pub2 --+                                    +-- p-rK ----- eth0  NAT real rK
 *   DR/TUN rK eth0  -- p-rK ----+
 *
 * Each `--` is a veth pair: one end in the switch (enslaved to the bridge), the other in the
 * namespace. Namespaces are named lvsd-<pid>-<tag>-<role>: sw, client, director, director2
 * (only with `directors: 2`), r1, r2, ...
 *
 * Two directors (option `directors: 2`, for active/backup failover; default 1): the second,
 * role `director2`, is built exactly like the first (same device names `pub` and `priv`, same
 * kernel settings, GRO on its switch-side ends d-pub2 and d-priv2, same default route) and
 * joins the same two bridges. lab.directors is [director] or [director, director2];
 * lab.director is lab.directors[0]. The lab puts no shared address (VIP, NAT router) on
 * either: which of them is active is the Director's business.
 *
 * Addressing (IPv6 addresses mirror the IPv4 host number digit for digit: 198.18.0.13 and
 * 2001:db8::13 are the same machine):
 *   public LAN   198.18.0.0/24, 2001:db8::/64 on bridge br-pub
 *     .1   / ::1       the director's device `pub`
 *     .2   / ::2       the client (also the "upstream router": see routes below)
 *     .3   / ::3       director2's device `pub` (directors: 2)
 *     .H   / ::H       DR and tunnel reals
 *     .20-.29 / ::20-::29   the client's first 10 extra source addresses (IPv6 ones are
 *                           preferred_lft 0, so only a socket bound to one uses it)
 *     .100+i / ::100+i      VIP i (lab.vip4(i), lab.vip6(i); i < 100). The lab does NOT add
 *                           VIPs to the director: the Director does that when it starts.
 *   private LAN  198.18.1.0/24, 2001:db8:1::/64 on bridge br-priv
 *     .1   / ::1       the director's device `priv`
 *     .3   / ::3       director2's device `priv` (directors: 2)
 *     .H   / ::H       NAT reals
 *     .254 / ::254     the NAT router address (Piranha's nat_router): the NAT reals' default
 *                      gateway. The Director brings it up on `priv`; the lab only names it.
 *   H, the host number of real i (0-based, in the order given; r1 is i = 0):
 *     11 + i for i < 9 (.11-.19), then 30 + (i - 9) (.30-.99): at most 79 reals. (.20-.29
 *     are the client's.)
 *   More than 10 client source addresses: the rest come from 198.18.128.0/17 (198.18.128.1,
 *     .2, ... .250, 198.18.129.1, ...) and 2001:db8:2::/64 (2001:db8:2::1, ::2, ... in hex),
 *     off the LAN: the director and the DR/tunnel reals reach them through the client as
 *     their default gateway.
 *
 * Routes:
 *   client        198.18.1.0/24 via 198.18.0.1, 2001:db8:1::/64 via 2001:db8::1 (so the client
 *                 reaches NAT reals on their own addresses through the director's kernel).
 *                 With two directors this stays via the first one's own address (.1 / ::1),
 *                 not a shared one: it is the lab's management path to the NAT reals, and it
 *                 breaks when the first director's namespace stops forwarding, whichever
 *                 director is active for the VIPs.
 *   director(s)   default via 198.18.0.2 / 2001:db8::2 (director2 too)
 *   DR/TUN reals  default via 198.18.0.2 / 2001:db8::2
 *   NAT reals     default via 198.18.1.254 / 2001:db8:1::254 (the NAT router)
 *
 * Every real's device is `eth0`. DR and tunnel reals are prepared with the real-server helper
 * (src/realserver/realserver.ts): VIPs 0..vips-1 of both families on lo, arp_ignore=1 and
 * arp_announce=2, and for tunnel reals the decapsulating XDP program on eth0 and rp_filter=0.
 *
 * Kernel settings the lab makes, all inside its own namespaces:
 *   - every namespace: net.ipv6.conf.{all,default}.accept_dad=0 before its devices exist (the
 *     link-local addresses skip DAD too), and every global address is added `nodad`, so
 *     nothing waits for DAD; rp_filter=0 ({all,default}) so no real drops what the director
 *     tunnels or routes to it.
 *   - sw: IPv6 off (the switch has no addresses and sends nothing), bridges without
 *     multicast snooping (neighbour solicitations are flooded) and without STP (ports forward
 *     at once).
 *   - director (and director2): forwarding on for IPv4 and IPv6 (option `forwarding`, default
 *     true; the client reaches NAT reals' own addresses and the NAT reals reach the client
 *     through it; traffic the Director's XDP steering takes never gets to the kernel) and
 *     send_redirects=0.
 *   - GRO is on for the switch-side ends of the director's veths (d-pub, d-priv; director2's
 *     d-pub2, d-priv2): a veth can transmit frames given to it by XDP_REDIRECT (ndo_xdp_xmit)
 *     only when its peer runs an XDP program or has GRO on (drivers/net/veth.c; Linux commit
 *     8267fc71 "veth: take into account peer device for NETDEV_XDP_ACT_NDO_XMIT"), so pub and
 *     priv can be redirect targets. Native XDP on pub/priv themselves, passing or taking what
 *     they receive, and AF_XDP copy-mode transmission (the ordinary transmit path) need
 *     nothing more: checked with a native program on both while the client talked to the
 *     reals through them.
 *   - client and reals: transmit checksum offload off on eth0 (ethtool -K eth0 tx off). A veth
 *     hands its peer packets whose TCP/UDP checksum is only partial (CHECKSUM_PARTIAL: "the
 *     NIC will finish it"); the kernel finishes it when it forwards, but the director's XDP
 *     path sees raw frames and forwards them as they are, so the receiver would drop them.
 *     Real NICs put complete checksums on the wire, which is what this makes the veths do.
 *   - reals: net.core.somaxconn and net.ipv4.tcp_max_syn_backlog 65535 (1000 concurrent
 *     connections to one real complete without SYN drops).
 *
 * Processes: lab.startServers() runs src/lab/real-app.ts (built to dist/lab/real-app.js) in
 * every real (HTTP on 80, UDP echo on 7, TCP echo with a HELLO line on 7, on every local
 * address including the VIPs on lo); lab.stopServer/startServer kill and restart one;
 * lab.startFtp runs vsftpd (src/lab/ftp.ts). lab.curl, lab.udp, lab.runClient and lab.run run programs in the
 * namespaces without blocking the event loop (test/e2e/clients/*.mjs are the Node clients run
 * there; longlived.mjs holds long-lived TCP connections for failover tests). destroy() kills
 * every process the lab started and deletes every namespace; it works on a half-built lab,
 * and create() calls it itself when a step fails. src/lab/failover-clock.ts measures, on the
 * switch, the gap between the old director's last forwarded frame and the new one's first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { LvsError } from '../errors.js';
import { packageRoot } from '../dataplane/native.js';
import { prepareRealServer } from '../realserver/realserver.js';
import { startFtp, type FtpOptions, type FtpServer } from './ftp.js';
import { Netns, cleanupOnExit, removeStaleNamespaces, run, vethPair } from './netns.js';

export type LabMethod = 'nat' | 'direct' | 'tunnel';

export interface LabRealOptions {
  /** Default r1, r2, ... by position. Letters and digits, at most 10. */
  name?: string;
  method: LabMethod;
  /** Carried for the Director's configuration (lab.reals[i].weight); default 1. */
  weight?: number;
}

export interface LabOptions {
  reals: LabRealOptions[];
  /** IPv6 addresses too (default true). */
  ipv6?: boolean;
  /** MTU of every lab device (default 1500). */
  mtu?: number;
  /** Extra client source addresses of each family (default 10: .20-.29 / ::20-::29). */
  clientAddresses?: number;
  /** VIPs 0..vips-1 of each family are put on the DR and tunnel reals (default 4). */
  vips?: number;
  /** RX/TX queues of the director's devices (default 1). */
  directorQueues?: number;
  /** Kernel forwarding in the director namespace(s) (default true). */
  forwarding?: boolean;
  /** One director, or two (role director2, .3 / ::3 on both LANs) for failover (default 1). */
  directors?: 1 | 2;
  /** XDP mode of the tunnel reals' decapsulator (default auto). */
  decapMode?: 'auto' | 'native' | 'generic';
  /** Namespace names are lvsd-<pid>-<tag>-<role> (default "lab", then lab2, lab3, ...). */
  tag?: string;
}

export interface LabReal {
  index: number;
  name: string;
  ns: Netns;
  method: LabMethod;
  weight: number;
  device: 'eth0';
  mac: string;
  address4: string;
  /** null when the lab has no IPv6. */
  address6: string | null;
}

export interface LabClient {
  ns: Netns;
  device: 'eth0';
  mac: string;
  address4: string;
  address6: string | null;
  /** The extra source addresses (option clientAddresses). */
  extra4: string[];
  extra6: string[];
}

export interface LabDirector {
  /** 0 for the first director, 1 for director2. */
  index: number;
  /** Its namespace's role: director, director2. */
  role: 'director' | 'director2';
  ns: Netns;
  devices: { pub: 'pub'; priv: 'priv' };
  /** Its veths' switch-side ends (bridge ports in lab.switch): d-pub/d-priv, d-pub2/d-priv2. */
  ports: { pub: string; priv: string };
  macs: { pub: string; priv: string };
  address4: { pub: string; priv: string };
  address6: { pub: string; priv: string } | null;
}

export interface CurlResult {
  /** The HTTP status (0 when no response came). */
  status: number;
  body: string;
  bytes: Buffer;
  /** curl's time_total, seconds. */
  time: number;
  stderr: string;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export const LAB = {
  pubNet4: '198.18.0.0/24',
  pubNet6: '2001:db8::/64',
  privNet4: '198.18.1.0/24',
  privNet6: '2001:db8:1::/64',
  director4: { pub: '198.18.0.1', priv: '198.18.1.1' },
  director6: { pub: '2001:db8::1', priv: '2001:db8:1::1' },
  /** director2's addresses (option directors: 2). */
  director2_4: { pub: '198.18.0.3', priv: '198.18.1.3' },
  director2_6: { pub: '2001:db8::3', priv: '2001:db8:1::3' },
  client4: '198.18.0.2',
  client6: '2001:db8::2',
  natRouter4: '198.18.1.254',
  natRouter6: '2001:db8:1::254',
  maxReals: 79,
  maxVips: 100,
  maxClientAddresses: 10 + 32000,
} as const;

/** Host number H of real i: .11-.19, then .30-.99. */
export function realHostNumber(i: number): number {
  return i < 9 ? 11 + i : 30 + (i - 9);
}

/** Extra client source address k of a family. */
export function clientExtraAddress(family: 4 | 6, k: number): string {
  if (k < 10) return family === 4 ? `198.18.0.${20 + k}` : `2001:db8::${20 + k}`;
  const m = k - 10;
  return family === 4 ? `198.18.${128 + Math.floor(m / 250)}.${1 + (m % 250)}` : `2001:db8:2::${(m + 1).toString(16)}`;
}

const REAL_APP = () => join(packageRoot, 'dist', 'lab', 'real-app.js');
const RESERVED = new Set(['sw', 'client', 'director', 'director2']);
let labs = 0;

function optionError(field: string, message: string): LvsError {
  return new LvsError('LVS_INVALID_OPTION', `lab ${field}: ${message}`, { field });
}

function checkOptions(o: LabOptions): void {
  if (!Array.isArray(o.reals)) throw optionError('reals', 'expected an array of {method, name?, weight?}');
  if (o.reals.length > LAB.maxReals) throw optionError('reals', `at most ${LAB.maxReals} reals`);
  const names = new Set<string>();
  o.reals.forEach((r, i) => {
    if (!['nat', 'direct', 'tunnel'].includes(r.method)) {
      throw new LvsError('LVS_INVALID_METHOD', `lab reals[${i}].method: "${String(r.method)}" is not nat, direct or tunnel`, { field: `reals[${i}].method` });
    }
    const name = r.name ?? `r${i + 1}`;
    if (!/^[a-z][a-z0-9]{0,9}$/i.test(name) || RESERVED.has(name)) throw optionError(`reals[${i}].name`, `"${name}" must be 1-10 letters and digits, starting with a letter, and not sw/client/director/director2`);
    if (names.has(name)) throw optionError(`reals[${i}].name`, `"${name}" is used twice`);
    names.add(name);
    if (r.weight !== undefined && !(Number.isInteger(r.weight) && r.weight >= 0)) throw optionError(`reals[${i}].weight`, 'must be a non-negative integer');
  });
  const int = (field: string, v: number | undefined, min: number, max: number): void => {
    if (v !== undefined && !(Number.isInteger(v) && v >= min && v <= max)) throw optionError(field, `must be an integer from ${min} to ${max}`);
  };
  // The MTU's range is the kernel's to judge (veth and bridge limits, and IPv6 needs 1280).
  int('mtu', o.mtu, 1, 1 << 20);
  int('clientAddresses', o.clientAddresses, 0, LAB.maxClientAddresses);
  int('vips', o.vips, 0, LAB.maxVips);
  int('directorQueues', o.directorQueues, 1, 64);
  if (o.directors !== undefined && o.directors !== 1 && o.directors !== 2) throw optionError('directors', 'must be 1 or 2');
  if (o.tag !== undefined && !/^[a-z][a-z0-9]{0,9}$/i.test(o.tag)) throw optionError('tag', 'must be 1-10 letters and digits');
}

function readMac(ns: Netns, dev: string): string {
  const j = JSON.parse(ns.ip('-j', 'link', 'show', 'dev', dev)) as Array<{ address: string }>;
  return j[0]!.address;
}

/** Run a program in a namespace without blocking the event loop. */
function runIn(ns: Netns, program: string, args: readonly string[], options: { input?: Buffer | string; timeoutMs?: number } = {}): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns.name, program, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = options.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), options.timeoutMs) : undefined;
    child.once('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(new LvsError('LVS_LAB_COMMAND', `${program} in ${ns.name}: ${e.message}`, { cause: e }));
    });
    child.once('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() });
    });
    // A program that exits without reading its input (ping) closes the pipe: EPIPE here is
    // not a failure, the exit code says how it went.
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}

/** Reads "ready" from a starting real-app, or fails with what it printed on stderr. */
function waitReady(child: ChildProcess, what: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const done = (e?: Error): void => {
      clearTimeout(timer);
      child.stdout?.removeListener('data', onOut);
      child.removeListener('exit', onExit);
      child.stdout?.resume(); // keep draining so the child never blocks on a full pipe
      if (e) reject(e);
      else resolve();
    };
    const onOut = (d: Buffer): void => {
      out += d.toString();
      if (/^ready$/m.test(out)) done();
    };
    const onErr = (d: Buffer): void => {
      err = (err + d.toString()).slice(-4000);
    };
    const onExit = (code: number | null, signal: string | null): void =>
      done(new LvsError('LVS_LAB_COMMAND', `${what} exited (${code ?? signal}) before it was ready: ${err.trim()}`));
    const timer = setTimeout(() => done(new LvsError('LVS_TIMEOUT', `${what} was not ready after ${timeoutMs} ms: ${err.trim()}`)), timeoutMs);
    child.stdout?.on('data', onOut);
    child.stderr?.on('data', onErr);
    child.once('exit', onExit);
  });
}

/** Make the namespace's eth0 put complete checksums on the wire (see the notes at the top). */
function txChecksumOff(ns: Netns): void {
  ns.exec('ethtool', '-K', 'eth0', 'tx', 'off');
}

export class Lab {
  readonly options: Required<Omit<LabOptions, 'tag'>> & { tag: string };
  readonly reals: LabReal[] = [];
  private sw: Netns | undefined;
  private clientInfo: LabClient | undefined;
  private directorInfo: LabDirector[] = [];
  private readonly namespaces: Netns[] = [];
  private readonly servers = new Map<string, ChildProcess>();
  private readonly ftps = new Set<FtpServer>();
  private destroyed = false;

  private constructor(options: LabOptions) {
    checkOptions(options);
    labs++;
    this.options = {
      reals: options.reals,
      ipv6: options.ipv6 ?? true,
      mtu: options.mtu ?? 1500,
      clientAddresses: options.clientAddresses ?? 10,
      vips: options.vips ?? 4,
      directorQueues: options.directorQueues ?? 1,
      forwarding: options.forwarding ?? true,
      directors: options.directors ?? 1,
      decapMode: options.decapMode ?? 'auto',
      tag: options.tag ?? (labs === 1 ? 'lab' : `lab${labs}`),
    };
  }

  /** Build the lab. On any failure everything built so far is removed before the error is thrown. */
  static async create(options: LabOptions): Promise<Lab> {
    const lab = new Lab(options);
    removeStaleNamespaces();
    cleanupOnExit();
    try {
      await lab.build();
    } catch (e) {
      lab.destroy();
      throw e;
    }
    return lab;
  }

  get client(): LabClient {
    return this.need(this.clientInfo, 'client');
  }
  /** The first director: lab.directors[0]. */
  get director(): LabDirector {
    return this.need(this.directorInfo[0], 'director');
  }
  /** [director] or, with directors: 2, [director, director2]. */
  get directors(): readonly LabDirector[] {
    this.need(this.directorInfo[0], 'director');
    return this.directorInfo;
  }
  get directorDevices(): { pub: 'pub'; priv: 'priv' } {
    return { pub: 'pub', priv: 'priv' };
  }
  /** The switch namespace (bridges br-pub and br-priv; ports c-pub, d-pub, d-priv, d-pub2, d-priv2, p-<real>). */
  get switch(): Netns {
    return this.need(this.sw, 'switch');
  }
  get natRouter4(): string {
    return LAB.natRouter4;
  }
  get natRouter6(): string {
    return LAB.natRouter6;
  }
  vip4(i: number): string {
    return `198.18.0.${100 + this.vipIndex(i)}`;
  }
  vip6(i: number): string {
    return `2001:db8::${100 + this.vipIndex(i)}`;
  }
  /** The real called `name` (r1, ...). */
  real(name: string): LabReal {
    const r = this.reals.find((x) => x.name === name);
    if (!r) throw new LvsError('LVS_INVALID_ARGUMENT', `the lab has no real "${name}"`);
    return r;
  }

  private vipIndex(i: number): number {
    if (!Number.isInteger(i) || i < 0 || i >= LAB.maxVips) throw new LvsError('LVS_INVALID_ARGUMENT', `VIP index ${i}: 0 to ${LAB.maxVips - 1}`);
    return i;
  }

  private need<T>(v: T | undefined, what: string): T {
    if (v === undefined) throw new LvsError('LVS_CLOSED', `the lab's ${what} does not exist (the lab was not built or was destroyed)`);
    return v;
  }

  private ns(role: string): Netns {
    const ns = Netns.create(`${this.options.tag}-${role}`);
    this.namespaces.push(ns);
    // Before any device exists here: link-local addresses skip DAD too.
    ns.sysctl('net.ipv6.conf.all.accept_dad', 0);
    ns.sysctl('net.ipv6.conf.default.accept_dad', 0);
    ns.sysctl('net.ipv4.conf.all.rp_filter', 0);
    ns.sysctl('net.ipv4.conf.default.rp_filter', 0);
    return ns;
  }

  /** A veth from a bridge of the switch to `dev` in `ns`. */
  private plug(bridge: 'br-pub' | 'br-priv', port: string, ns: Netns, dev: string, queues?: number): void {
    const sw = this.switch;
    vethPair(sw, port, ns, dev, { mtu: this.options.mtu, ...(queues && queues > 1 ? { queues } : {}) });
    sw.ip('link', 'set', port, 'master', bridge);
  }

  private async build(): Promise<void> {
    const o = this.options;
    const v6 = o.ipv6;

    // The switch.
    this.sw = this.ns('sw');
    const sw = this.sw;
    sw.sysctl('net.ipv6.conf.all.disable_ipv6', 1);
    sw.sysctl('net.ipv6.conf.default.disable_ipv6', 1);
    for (const br of ['br-pub', 'br-priv']) {
      sw.ip('link', 'add', br, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0', 'mcast_snooping', '0');
      sw.ip('link', 'set', br, 'mtu', String(o.mtu));
      sw.ip('link', 'set', br, 'up');
    }

    // The director(s).
    for (let k = 0; k < o.directors; k++) this.buildDirector(k);
    const d = LAB.director4;
    const d6 = LAB.director6;

    // The client.
    const client = this.ns('client');
    this.plug('br-pub', 'c-pub', client, 'eth0');
    const extra4: string[] = [];
    const extra6: string[] = [];
    for (let k = 0; k < o.clientAddresses; k++) {
      extra4.push(clientExtraAddress(4, k));
      if (v6) extra6.push(clientExtraAddress(6, k));
    }
    batchAddresses(
      client,
      'eth0',
      [[LAB.client4, 24], ...(v6 ? ([[LAB.client6, 64]] as Array<[string, number]>) : [])],
      [...extra4.map((a): [string, number] => [a, 32]), ...extra6.map((a): [string, number] => [a, 128])],
    );
    txChecksumOff(client);
    client.ip('route', 'add', LAB.privNet4, 'via', d.pub);
    if (v6) client.ip('-6', 'route', 'add', LAB.privNet6, 'via', d6.pub);
    this.clientInfo = { ns: client, device: 'eth0', mac: readMac(client, 'eth0'), address4: LAB.client4, address6: v6 ? LAB.client6 : null, extra4, extra6 };

    // The reals.
    const vips: string[] = [];
    for (let i = 0; i < o.vips; i++) vips.push(this.vip4(i), ...(v6 ? [this.vip6(i)] : []));
    for (const [i, spec] of o.reals.entries()) {
      const name = spec.name ?? `r${i + 1}`;
      const ns = this.ns(name);
      const nat = spec.method === 'nat';
      this.plug(nat ? 'br-priv' : 'br-pub', `p-${name}`, ns, 'eth0');
      const h = realHostNumber(i);
      const address4 = `198.18.${nat ? 1 : 0}.${h}`;
      const address6 = v6 ? `2001:db8:${nat ? '1:' : ''}:${h}` : null;
      batchAddresses(ns, 'eth0', [[address4, 24], ...(address6 ? ([[address6, 64]] as Array<[string, number]>) : [])]);
      ns.ip('route', 'add', 'default', 'via', nat ? LAB.natRouter4 : LAB.client4);
      if (v6) ns.ip('-6', 'route', 'add', 'default', 'via', nat ? LAB.natRouter6 : LAB.client6);
      txChecksumOff(ns);
      ns.sysctl('net.core.somaxconn', 65535);
      ns.sysctl('net.ipv4.tcp_max_syn_backlog', 65535);
      const real: LabReal = { index: i, name, ns, method: spec.method, weight: spec.weight ?? 1, device: 'eth0', mac: readMac(ns, 'eth0'), address4, address6 };
      this.reals.push(real);
      if (!nat && vips.length) {
        // Never undone: it lives in the real's namespace and goes with it.
        await prepareRealServer({ netns: ns.name, vips, method: spec.method as 'direct' | 'tunnel', device: 'eth0', xdpMode: o.decapMode });
      }
    }
  }

  /** Director k (0: role director, .1; 1: role director2, .3), as described at the top. */
  private buildDirector(k: number): void {
    const o = this.options;
    const v6 = o.ipv6;
    const sw = this.switch;
    const role = k === 0 ? 'director' : 'director2';
    const suffix = k === 0 ? '' : '2';
    const ports = { pub: `d-pub${suffix}`, priv: `d-priv${suffix}` };
    const a4 = k === 0 ? LAB.director4 : LAB.director2_4;
    const a6 = k === 0 ? LAB.director6 : LAB.director2_6;
    const director = this.ns(role);
    this.plug('br-pub', ports.pub, director, 'pub', o.directorQueues);
    this.plug('br-priv', ports.priv, director, 'priv', o.directorQueues);
    for (const port of [ports.pub, ports.priv]) sw.exec('ethtool', '-K', port, 'gro', 'on');
    batchAddresses(director, 'pub', [[a4.pub, 24], ...(v6 ? ([[a6.pub, 64]] as Array<[string, number]>) : [])]);
    batchAddresses(director, 'priv', [[a4.priv, 24], ...(v6 ? ([[a6.priv, 64]] as Array<[string, number]>) : [])]);
    director.ip('route', 'add', 'default', 'via', LAB.client4);
    if (v6) director.ip('-6', 'route', 'add', 'default', 'via', LAB.client6);
    director.sysctl('net.ipv4.conf.all.send_redirects', 0);
    director.sysctl('net.ipv4.conf.default.send_redirects', 0);
    if (o.forwarding) {
      director.sysctl('net.ipv4.ip_forward', 1);
      if (v6) director.sysctl('net.ipv6.conf.all.forwarding', 1);
    }
    this.directorInfo.push({
      index: k,
      role,
      ns: director,
      devices: { pub: 'pub', priv: 'priv' },
      ports,
      macs: { pub: readMac(director, 'pub'), priv: readMac(director, 'priv') },
      address4: { ...a4 },
      address6: v6 ? { ...a6 } : null,
    });
  }

  // ------------------------------------------------------------------------------------------
  // Processes

  /** Start the real application (dist/lab/real-app.js) in every real (or the ones named). */
  async startServers(names?: string[]): Promise<void> {
    const list = names ? names.map((n) => this.real(n)) : this.reals;
    await Promise.all(list.map((r) => this.startServer(r)));
  }

  /** Start (or restart) the real application in one real; resolves once it prints "ready". */
  async startServer(real: LabReal | string): Promise<void> {
    const r = typeof real === 'string' ? this.real(real) : real;
    const app = REAL_APP();
    if (!existsSync(app)) {
      throw new LvsError('LVS_LAB_COMMAND', `${app} is missing: the lab runs the built JavaScript; build it with "npx tsc -p tsconfig.build.json" (npm test does)`);
    }
    this.stopServer(r);
    const child = r.ns.spawn(process.execPath, [app, '--name', r.name, '--http', '80', '--udp', '7', '--echo', '7', ...(this.options.ipv6 ? ['--bind-v6'] : [])]);
    this.servers.set(r.name, child);
    child.once('exit', () => {
      if (this.servers.get(r.name) === child) this.servers.delete(r.name);
    });
    await waitReady(child, `real-app in ${r.name}`, 30_000);
  }

  /** The real application's process in a real, while it runs. */
  serverProcess(real: LabReal | string): ChildProcess | undefined {
    return this.servers.get(typeof real === 'string' ? real : real.name);
  }

  /** The pids of every process the lab runs now (real applications, vsftpd). */
  pids(): number[] {
    return [...this.servers.values(), ...[...this.ftps].map((f) => f.process)].map((c) => c.pid).filter((p): p is number => p !== undefined);
  }

  /** Kill a real's application (SIGKILL by default: a real that dies). */
  stopServer(real: LabReal | string, signal: NodeJS.Signals = 'SIGKILL'): void {
    const r = typeof real === 'string' ? this.real(real) : real;
    const child = this.servers.get(r.name);
    if (!child) return;
    this.servers.delete(r.name);
    child.kill(signal);
  }

  /** Start vsftpd in a real (src/lab/ftp.ts); pasvAddress defaults to VIP 0. Stopped by destroy(). */
  async startFtp(real: LabReal | string, options: Omit<FtpOptions, 'ns'> = {}): Promise<FtpServer> {
    const r = typeof real === 'string' ? this.real(real) : real;
    const ftp = await startFtp({ ns: r.ns, pasvAddress: this.vip4(0), ...options });
    this.ftps.add(ftp);
    const stop = ftp.stop.bind(ftp);
    ftp.stop = () => {
      this.ftps.delete(ftp);
      stop();
    };
    return ftp;
  }

  /**
   * Debian's curl in the client namespace: `curl -sS <args> <url>`. Resolves with the status,
   * the body and curl's total time; throws LVS_LAB_COMMAND when curl fails (no connection,
   * timeout), unless `check: false` (then status 0 and the error in stderr).
   */
  async curl(url: string, args: string[] = [], options: { check?: boolean; timeoutMs?: number } = {}): Promise<CurlResult> {
    const marker = '\n@@lab-curl ';
    const r = await runIn(this.client.ns, 'curl', ['-sS', '--max-time', '60', '-w', `%{stderr}${marker}%{http_code} %{time_total}\n`, ...args, url], {
      timeoutMs: options.timeoutMs ?? 120_000,
    });
    const at = r.stderr.lastIndexOf(marker);
    const tail = at >= 0 ? r.stderr.slice(at + marker.length).trim().split(/\s+/) : [];
    const stderr = at >= 0 ? r.stderr.slice(0, at) : r.stderr;
    const result: CurlResult = { status: Number(tail[0] ?? 0) || 0, body: r.stdout.toString(), bytes: r.stdout, time: Number(tail[1] ?? 0), stderr };
    if (r.code !== 0 && options.check !== false) {
      throw new LvsError('LVS_LAB_COMMAND', `curl ${[...args, url].join(' ')} in the client: exit ${r.code}: ${stderr.trim()}`);
    }
    return result;
  }

  /** Run a Node script (plain JavaScript) in the client namespace; throws on a non-zero exit unless check: false. */
  async runClient(script: string, args: string[] = [], options: { check?: boolean; timeoutMs?: number; input?: string } = {}): Promise<CommandResult> {
    return this.run(this.client.ns, process.execPath, [script, ...args], options);
  }

  /** Run any program in one of the lab's namespaces without blocking the event loop. */
  async run(ns: Netns, program: string, args: string[], options: { check?: boolean; timeoutMs?: number; input?: string | Buffer } = {}): Promise<CommandResult> {
    const r = await runIn(ns, program, args, { timeoutMs: options.timeoutMs ?? 120_000, ...(options.input !== undefined ? { input: options.input } : {}) });
    const out = { code: r.code, stdout: r.stdout.toString(), stderr: r.stderr };
    if (r.code !== 0 && options.check !== false) {
      throw new LvsError('LVS_LAB_COMMAND', `${program} ${args.join(' ')} in ${ns.name}: exit ${r.code}: ${r.stderr.trim()}`);
    }
    return out;
  }

  /**
   * One UDP datagram from the client (from `source` if given) to address:port, and the first
   * reply: its text and the address it came from; reply null after timeoutMs (default 2000).
   */
  async udp(address: string, port: number, payload: string, options: { source?: string; timeoutMs?: number } = {}): Promise<{ reply: string | null; from: string | null }> {
    const script = `
      const dgram = require('node:dgram');
      const [address, port, payload, source, ms] = process.argv.slice(1);
      const s = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
      const t = setTimeout(() => { console.log(JSON.stringify({ reply: null, from: null })); s.close(); }, Number(ms));
      s.on('message', (m, r) => { clearTimeout(t); console.log(JSON.stringify({ reply: m.toString(), from: r.address })); s.close(); });
      const go = () => s.send(payload, Number(port), address);
      if (source) s.bind({ address: source, port: 0 }, go); else go();`;
    const r = await this.run(this.client.ns, process.execPath, ['-e', script, address, String(port), payload, options.source ?? '', String(options.timeoutMs ?? 2000)]);
    return JSON.parse(r.stdout) as { reply: string | null; from: string | null };
  }

  // ------------------------------------------------------------------------------------------

  /** Kill everything the lab started and delete every namespace. Safe to call more than once. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const f of [...this.ftps]) {
      try {
        f.stop();
      } catch {
        // Its namespace goes below anyway.
      }
    }
    for (const c of this.servers.values()) c.kill('SIGKILL');
    this.servers.clear();
    for (const ns of [...this.namespaces].reverse()) ns.remove();
    this.namespaces.length = 0;
    this.sw = undefined;
    this.clientInfo = undefined;
    this.directorInfo = [];
  }
}

/**
 * Add addresses to a device in one `ip -batch` (IPv6 nodad). `extra` addresses (the client's
 * additional sources) are IPv6 `preferred_lft 0`, so the kernel never picks one as the default
 * source (RFC 6724 avoids deprecated addresses) while a socket bound to it still works; IPv4
 * needs nothing: the connected route's preferred source is the device's first address.
 */
function batchAddresses(ns: Netns, dev: string, list: Array<[string, number]>, extra: Array<[string, number]> = []): void {
  const line = ([a, plen]: [string, number], deprecated: boolean): string =>
    `address add ${a}/${plen} dev ${dev}${a.includes(':') ? ` nodad${deprecated ? ' preferred_lft 0' : ''}` : ''}`;
  const lines = [...list.map((x) => line(x, false)), ...extra.map((x) => line(x, true))];
  if (!lines.length) return;
  run('ip', ['-n', ns.name, '-batch', '-'], `${lines.join('\n')}\n`);
}
