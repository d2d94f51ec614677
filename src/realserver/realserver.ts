/**
 * The real-server side of LVS-DR and LVS-TUN: what an administrator did by hand on every real
 * server behind a Piranha director, as one call that can be undone.
 *
 * Direct routing (and tunnelling) deliver packets addressed to the VIP, so every real must
 * accept the VIP as a local address without answering ARP for it (only the director may):
 *   - each VIP on `lo` (/32 or /128; IPv6 with nodad);
 *   - net.ipv4.conf.{all,lo,<device>}.arp_ignore = 1: answer ARP only for addresses of the
 *     interface the request came in on (the VIP is on lo, so never);
 *   - net.ipv4.conf.{all,lo,<device>}.arp_announce = 2: never use the VIP as the sender of
 *     our own ARP requests (the kernel picks the best address of the outgoing interface).
 *   IPv6 needs nothing more: the kernel answers neighbour solicitations only for addresses of
 *   the interface they arrive on.
 * Tunnelling (the kernels here have no ipip/ip6_tunnel modules) additionally:
 *   - the lvsd decapsulating XDP program on the device(s), with the VIP list, which strips
 *     the director's outer IPv4/IPv6 header and passes the inner packet to the kernel;
 *   - net.ipv4.conf.{all,<device>}.rp_filter = 0 (the kernel uses the maximum of `all` and the
 *     device's value, so both are needed).
 * No device given: every device of the namespace except lo.
 *
 * Every sysctl's previous value is saved; undo() puts each one back, removes only the VIPs it
 * added (not ones that were there before) and detaches the decapsulator. undo() is
 * idempotent, and a prepare that fails half-way undoes what it did before throwing. The state
 * is plain JSON (`RealServerState`) so `lvsd realserver --undo` can reverse it from another
 * process.
 *
 * Everything goes through the addon's netlink/sysctl/XDP surface (native().host,
 * decapAttach/decapDetach/xdpQuery), inside the namespace given (netns '' = this process's).
 */
import { LvsError, isLvsError, type LvsErrorCode } from '../errors.js';
import { native, type NativeAddon, type NativeLink, type XdpMode } from '../dataplane/native.js';
import { formatAddress, parseAddress, type IpAddress } from '../net/address.js';

export type RealServerMethod = 'direct' | 'tunnel';

export interface RealServerOptions {
  /** A named namespace (`ip netns`); default the process's own. */
  netns?: string;
  vips: string[];
  method: RealServerMethod;
  /** The device facing the director; default every device except lo. */
  device?: string;
  /** XDP attach mode of the decapsulator (tunnel); default 'auto' (native, else generic). */
  xdpMode?: XdpMode | 'auto';
}

export interface SavedSysctl {
  /** As under /proc/sys: net/ipv4/conf/lo/arp_ignore. */
  key: string;
  previous: string;
  value: string;
}

/** What a prepare did, in the order it did it. */
export interface RealServerState {
  version: 1;
  netns: string;
  method: RealServerMethod;
  /** Every VIP asked for (canonical text). */
  vips: string[];
  devices: string[];
  /** VIPs this prepare put on lo (ones already there are not listed). */
  addedAddresses: Array<{ device: string; address: string; prefixLength: number }>;
  sysctls: SavedSysctl[];
  /** Devices that got the decapsulator, and how it attached. */
  decap: Array<{ device: string; mode: XdpMode }>;
}

export interface PreparedRealServer {
  readonly state: RealServerState;
  /** Put everything back; idempotent. */
  undo(): void;
}

/** The name the decapsulating program is loaded under (native/io/decap.cpp). */
export const DECAP_PROGRAM = 'lvsd_decap';

const METHODS: readonly RealServerMethod[] = ['direct', 'tunnel'];

function addon(): NativeAddon {
  return native();
}

/** The addon throws plain Errors with an LVS_* `code`: make them LvsErrors (same code, same message). */
function asLvsError(e: unknown): unknown {
  if (e instanceof LvsError) return e;
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code.startsWith('LVS_')) return new LvsError(code as LvsErrorCode, (e as Error).message, { cause: e });
  return e;
}

function coded<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw asLvsError(e);
  }
}

function findLink(links: NativeLink[], name: string, netns: string): NativeLink {
  const l = links.find((x) => x.name === name);
  if (!l) {
    const where = netns ? `namespace ${netns}` : 'this namespace';
    throw new LvsError('LVS_NO_SUCH_DEVICE', `device "${name}" does not exist in ${where} (devices: ${links.map((x) => x.name).join(', ')})`, { field: 'device' });
  }
  return l;
}

function loopback(links: NativeLink[], netns: string): NativeLink {
  return links.find((l) => l.kind === 'loopback') ?? findLink(links, 'lo', netns);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Validate the options without touching anything: parsed VIPs, or an LvsError. */
export function checkRealServerOptions(options: RealServerOptions): IpAddress[] {
  if (!METHODS.includes(options.method)) {
    throw new LvsError('LVS_INVALID_METHOD', `method: "${String(options.method)}" is not a real-server method (direct or tunnel; a NAT real needs nothing)`, { field: 'method' });
  }
  if (!Array.isArray(options.vips) || options.vips.length === 0) {
    throw new LvsError('LVS_INVALID_ARGUMENT', 'vips: at least one VIP is needed', { field: 'vips' });
  }
  const seen = new Set<string>();
  const vips: IpAddress[] = [];
  options.vips.forEach((v, i) => {
    const a = parseAddress(v, `vips[${i}]`);
    if (!seen.has(a.text)) vips.push(a);
    seen.add(a.text);
  });
  if (options.xdpMode !== undefined && !['auto', 'native', 'generic'].includes(options.xdpMode)) {
    throw new LvsError('LVS_INVALID_OPTION', `xdpMode: "${String(options.xdpMode)}" is not auto, native or generic`, { field: 'xdpMode' });
  }
  return vips;
}

/**
 * Prepare this (or the named) namespace as an LVS-DR or LVS-TUN real server for `vips`.
 * Throws LVS_INVALID_ADDRESS / LVS_INVALID_METHOD / LVS_NO_SUCH_DEVICE for bad input (before
 * anything is changed), LVS_NETLINK / LVS_HOST / LVS_BPF / LVS_NETNS from the kernel.
 */
export async function prepareRealServer(options: RealServerOptions): Promise<PreparedRealServer> {
  const vips = checkRealServerOptions(options);
  const netns = options.netns ?? '';
  const n = addon();
  const links = coded(() => n.host.links(netns));
  const lo = loopback(links, netns);
  const devices = options.device !== undefined ? [findLink(links, options.device, netns)] : links.filter((l) => l.ifindex !== lo.ifindex);
  if (options.device !== undefined && devices[0]!.ifindex === lo.ifindex) {
    throw new LvsError('LVS_INVALID_INTERFACE', 'device: lo cannot face the director', { field: 'device' });
  }

  const state: RealServerState = {
    version: 1,
    netns,
    method: options.method,
    vips: vips.map((v) => v.text),
    devices: devices.map((d) => d.name),
    addedAddresses: [],
    sysctls: [],
    decap: [],
  };
  try {
    // A decapsulator can only replace our own program: refuse before changing anything.
    if (options.method === 'tunnel') {
      for (const d of devices) {
        const prog = n.xdpQuery(netns, d.ifindex);
        if (prog && prog.name !== DECAP_PROGRAM) {
          throw new LvsError('LVS_BPF', `device ${d.name} already has XDP program "${prog.name}" (id ${prog.id}); not replacing it`, { field: 'device' });
        }
      }
    }
    const present = n.host.addresses(netns).filter((a) => a.ifindex === lo.ifindex);
    for (const v of vips) {
      const plen = v.family === 'ipv4' ? 32 : 128;
      if (present.some((a) => sameBytes(a.address, v.bytes))) continue;
      n.host.addAddress(netns, lo.ifindex, v.bytes, plen, true);
      state.addedAddresses.push({ device: lo.name, address: v.text, prefixLength: plen });
    }
    const set = (key: string, value: string): void => {
      const previous = n.host.sysctl(netns, key, value).trim();
      state.sysctls.push({ key, previous, value });
    };
    const arpDevices = ['all', lo.name, ...devices.map((d) => d.name)];
    for (const dev of arpDevices) set(`net/ipv4/conf/${dev}/arp_ignore`, '1');
    for (const dev of arpDevices) set(`net/ipv4/conf/${dev}/arp_announce`, '2');
    if (options.method === 'tunnel') {
      for (const dev of ['all', ...devices.map((d) => d.name)]) set(`net/ipv4/conf/${dev}/rp_filter`, '0');
      const bytes = vips.map((v) => v.bytes);
      for (const d of devices) {
        const mode = n.decapAttach(netns, d.ifindex, bytes, options.xdpMode ?? 'auto');
        state.decap.push({ device: d.name, mode });
      }
    }
  } catch (e) {
    try {
      undoRealServer(state);
    } catch {
      // The first failure is the one to report.
    }
    throw asLvsError(e);
  }
  return handle(state);
}

function handle(state: RealServerState): PreparedRealServer {
  let done = false;
  return {
    state,
    undo() {
      if (done) return;
      done = true;
      undoRealServer(state);
    },
  };
}

/**
 * Reverse a prepare from its state (also from another process): detach the decapsulator,
 * restore the sysctls (last change first), delete the VIPs it added. A device or namespace
 * that has gone meanwhile has nothing left to undo and is skipped; any other failure is
 * reported after every other step was tried.
 */
export function undoRealServer(state: RealServerState): void {
  const n = addon();
  const netns = state.netns;
  let links: NativeLink[];
  try {
    links = coded(() => n.host.links(netns));
  } catch (e) {
    // The namespace is gone, and everything in it.
    if (isLvsError(e, 'LVS_NETNS')) return;
    throw e;
  }
  const byName = new Map(links.map((l) => [l.name, l]));
  const failures: string[] = [];
  const attempt = (what: string, fn: () => void): void => {
    try {
      fn();
    } catch (e) {
      failures.push(`${what}: ${(e as Error).message}`);
    }
  };
  for (const d of [...state.decap].reverse()) {
    const l = byName.get(d.device);
    if (l) attempt(`detach ${DECAP_PROGRAM} from ${d.device}`, () => void n.decapDetach(netns, l.ifindex));
  }
  for (const s of [...state.sysctls].reverse()) {
    const dev = /^net\/ipv[46]\/conf\/([^/]+)\//.exec(s.key)?.[1];
    if (dev && dev !== 'all' && dev !== 'default' && !byName.has(dev)) continue;
    attempt(`restore ${s.key}=${s.previous}`, () => void n.host.sysctl(netns, s.key, s.previous));
  }
  for (const a of [...state.addedAddresses].reverse()) {
    const l = byName.get(a.device);
    if (!l) continue;
    attempt(`remove ${a.address}/${a.prefixLength} from ${a.device}`, () => n.host.delAddress(netns, l.ifindex, parseAddress(a.address).bytes, a.prefixLength));
  }
  if (failures.length) {
    throw new LvsError('LVS_HOST', `undoing the real-server setup${netns ? ` in ${netns}` : ''} failed: ${failures.join('; ')}`);
  }
}

export interface RealServerStatus {
  netns: string;
  /** Addresses on lo other than loopback ones. */
  loAddresses: string[];
  sysctls: Record<string, string>;
  /** Each non-lo device's XDP program, or null. */
  xdp: Array<{ device: string; program: { id: number; name: string } | null }>;
}

/** What is in place now: lo's addresses, the ARP/rp_filter sysctls, XDP programs. */
export function realServerStatus(netns = ''): RealServerStatus {
  return coded(() => status(netns));
}

function status(netns: string): RealServerStatus {
  const n = addon();
  const links = n.host.links(netns);
  const lo = loopback(links, netns);
  const loAddresses = n.host
    .addresses(netns)
    .filter((a) => a.ifindex === lo.ifindex)
    .map((a) => formatAddress(a.address.length === 4 ? 'ipv4' : 'ipv6', a.address))
    .filter((t) => !t.startsWith('127.') && t !== '::1');
  const sysctls: Record<string, string> = {};
  const devices = links.filter((l) => l.ifindex !== lo.ifindex);
  for (const dev of ['all', lo.name, ...devices.map((d) => d.name)]) {
    for (const k of ['arp_ignore', 'arp_announce', 'rp_filter']) {
      const key = `net/ipv4/conf/${dev}/${k}`;
      try {
        sysctls[key] = n.host.sysctl(netns, key).trim();
      } catch {
        // A device without IPv4 configuration has no such keys.
      }
    }
  }
  const xdp = devices.map((d) => ({ device: d.name, program: n.xdpQuery(netns, d.ifindex) }));
  return { netns, loAddresses, sysctls, xdp };
}

/**
 * Fold a later prepare of the same namespace into an earlier one's state (the CLI keeps one
 * state per namespace): the earliest saved value of each sysctl wins, added VIPs and
 * decapsulated devices are the union.
 */
export function mergeRealServerStates(earlier: RealServerState, later: RealServerState): RealServerState {
  const sysctls = [...earlier.sysctls];
  for (const s of later.sysctls) if (!sysctls.some((x) => x.key === s.key)) sysctls.push(s);
  const added = [...earlier.addedAddresses];
  for (const a of later.addedAddresses) if (!added.some((x) => x.device === a.device && x.address === a.address)) added.push(a);
  const decap = [...earlier.decap.filter((d) => !later.decap.some((x) => x.device === d.device)), ...later.decap];
  return {
    version: 1,
    netns: later.netns,
    method: earlier.method === 'tunnel' || later.method === 'tunnel' ? 'tunnel' : 'direct',
    vips: [...new Set([...earlier.vips, ...later.vips])],
    devices: [...new Set([...earlier.devices, ...later.devices])],
    addedAddresses: added,
    sysctls,
    decap,
  };
}
