/**
 * The host's network state, as the Director needs it: interfaces, addresses (VIPs), routes,
 * the kernel's neighbour table (MAC addresses of reals and next hops, and their changes), raw
 * frames and sysctls. One Host works in one network namespace ('' = the process's own); the
 * native side enters it per call, so the process itself never moves.
 *
 * Addresses are strings here ("198.18.0.100", "2001:db8::100"); every failure is an LvsError
 * with a stable code: LVS_NO_SUCH_DEVICE, LVS_NETLINK (the kernel refused; errno in the
 * message), LVS_NETNS, LVS_HOST, LVS_NEIGHBOUR (resolution timed out), LVS_INVALID_*.
 */
import { LvsError, type LvsErrorCode } from '../errors.js';
import { formatAddress, parseAddress, type Family, type IpAddress } from '../net/address.js';
import { native, type NativeHost } from '../dataplane/native.js';

/** Neighbour (NUD) states, as the kernel reports them (include/uapi/linux/neighbour.h). */
export const NUD = {
  NONE: 0x00,
  INCOMPLETE: 0x01,
  REACHABLE: 0x02,
  STALE: 0x04,
  DELAY: 0x08,
  PROBE: 0x10,
  FAILED: 0x20,
  NOARP: 0x40,
  PERMANENT: 0x80,
} as const;
/** States in which the entry's MAC address may be used (the kernel's NUD_VALID). */
export const NUD_VALID = NUD.PERMANENT | NUD.NOARP | NUD.REACHABLE | NUD.PROBE | NUD.STALE | NUD.DELAY;

/** Address flags (IFA_F_*) worth knowing about. */
export const IFA_F = { NODAD: 0x02, DADFAILED: 0x08, TENTATIVE: 0x40, PERMANENT: 0x80 } as const;

const RTN_LOCAL = 2;

export interface LinkInfo {
  ifindex: number;
  name: string;
  /** aa:bb:cc:dd:ee:ff ('' for devices without one). */
  mac: string;
  mtu: number;
  up: boolean;
  rxQueues: number;
  /** 'veth', 'bridge', 'loopback', ... ('' when the kernel does not say). */
  kind: string;
  /** The attached XDP program's id, 0 when none. */
  xdpProgId: number;
}

export interface AddressInfo {
  ifindex: number;
  family: Family;
  address: string;
  prefixLength: number;
  /** IFA_F_* bits: tentative (DAD running), dadfailed, nodad, permanent. */
  flags: number;
}

export interface RouteInfo {
  ifindex: number;
  device: string;
  /** The next hop, when the destination is not on-link. */
  gateway?: string;
  /** The source address the kernel would use. */
  source?: string;
  /** The destination is one of this host's own addresses. */
  local: boolean;
}

export interface NeighbourInfo {
  ifindex: number;
  address: string;
  mac: string | null;
  /** NUD_* bits; see NUD and NUD_VALID. */
  state: number;
}

export interface NeighbourEvent extends NeighbourInfo {
  /** The entry was removed from the table. */
  deleted: boolean;
}

export interface Watcher {
  close(): void;
}

const DEFAULT_RESOLVE_TIMEOUT_MS = 3000;

/** A native failure as an LvsError with the code the native side gave. */
function coded(e: unknown): LvsError {
  if (e instanceof LvsError) return e;
  const err = e as { code?: unknown; message?: unknown };
  if (e instanceof TypeError) return new LvsError('LVS_INVALID_ARGUMENT', String(err.message), { cause: e });
  const code = typeof err.code === 'string' && err.code.startsWith('LVS_') ? (err.code as LvsErrorCode) : 'LVS_HOST';
  return new LvsError(code, String(err.message ?? e), { cause: e });
}

function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw coded(e);
  }
}

function ifindexArg(value: unknown, field = 'ifindex'): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 0x7fffffff) {
    throw new LvsError('LVS_INVALID_INTERFACE', `${field}: expected an interface index, got ${String(value)}`, { field });
  }
  return value;
}

function prefixArg(value: unknown, a: IpAddress, field = 'prefixLength'): number {
  const max = a.family === 'ipv4' ? 32 : 128;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new LvsError('LVS_INVALID_ARGUMENT', `${field}: expected 0..${max} for ${a.text}, got ${String(value)}`, { field });
  }
  return value;
}

/** A sysctl key as a path below /proc/sys: "net.ipv4.ip_forward" or "net/ipv4/ip_forward". */
export function sysctlPath(key: string): string {
  if (typeof key !== 'string' || key.length === 0) throw new LvsError('LVS_INVALID_ARGUMENT', 'sysctl key: expected a non-empty string', { field: 'key' });
  // With slashes the key is a path already (interface names may contain dots).
  const path = key.includes('/') ? key : key.replaceAll('.', '/');
  if (path.startsWith('/') || path.split('/').some((p) => p === '' || p === '.' || p === '..')) {
    throw new LvsError('LVS_INVALID_ARGUMENT', `sysctl key: "${key}" is not a key below /proc/sys`, { field: 'key' });
  }
  return path;
}

interface Waiter {
  ifindex: number;
  address: string;
  resolve: (mac: string) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class Host {
  /** The namespace this Host acts in ('' = the process's own). */
  readonly netns: string;
  private readonly nh: NativeHost;
  private readonly waiters = new Set<Waiter>();
  private internal: { close(): void } | undefined;

  constructor(netns = '') {
    if (typeof netns !== 'string') throw new LvsError('LVS_INVALID_ARGUMENT', 'netns: expected a namespace name', { field: 'netns' });
    this.netns = netns;
    this.nh = native().host;
  }

  // ------------------------------------------------------------------------------------------
  // Links and addresses

  links(): LinkInfo[] {
    return call(() => this.nh.links(this.netns)).map((l) => ({ ...l }));
  }

  /** The interface called `name`; LVS_NO_SUCH_DEVICE if there is none. */
  link(name: string): LinkInfo {
    if (typeof name !== 'string' || name.length === 0 || name.length > 15) {
      throw new LvsError('LVS_INVALID_INTERFACE', `interface: expected a device name, got ${JSON.stringify(name)}`, { field: 'interface' });
    }
    const l = this.links().find((x) => x.name === name);
    if (!l) throw new LvsError('LVS_NO_SUCH_DEVICE', `no device "${name}"${this.netns ? ` in namespace ${this.netns}` : ''}`, { field: 'interface' });
    return l;
  }

  /** Every address, or those of one interface. */
  addresses(ifname?: string): AddressInfo[] {
    const only = ifname === undefined ? undefined : this.link(ifname).ifindex;
    return call(() => this.nh.addresses(this.netns))
      .filter((a) => only === undefined || a.ifindex === only)
      .map((a) => {
        const family: Family = a.address.length === 4 ? 'ipv4' : 'ipv6';
        return { ifindex: a.ifindex, family, address: formatAddress(family, a.address), prefixLength: a.prefixLength, flags: a.flags };
      });
  }

  /** Add an address (a VIP: /32 or /128 usually). Already there: nothing happens.
   *  nodad: an IPv6 address usable at once, without duplicate address detection. */
  addAddress(ifname: string, address: string, prefixLength: number, options: { nodad?: boolean } = {}): void {
    const a = parseAddress(address);
    const plen = prefixArg(prefixLength, a);
    const ifindex = this.link(ifname).ifindex;
    call(() => this.nh.addAddress(this.netns, ifindex, a.bytes, plen, options.nodad === true));
  }

  /** Remove an address. Not there: nothing happens. */
  delAddress(ifname: string, address: string, prefixLength: number): void {
    const a = parseAddress(address);
    const plen = prefixArg(prefixLength, a);
    const ifindex = this.link(ifname).ifindex;
    call(() => this.nh.delAddress(this.netns, ifindex, a.bytes, plen));
  }

  // ------------------------------------------------------------------------------------------
  // Routes

  /** Where the kernel would send a packet for `address` (ip route get). */
  route(address: string): RouteInfo {
    const a = parseAddress(address);
    const r = call(() => this.nh.routeGet(this.netns, a.bytes));
    const device = this.links().find((l) => l.ifindex === r.ifindex)?.name ?? '';
    const out: RouteInfo = { ifindex: r.ifindex, device, local: r.type === RTN_LOCAL };
    if (r.gateway) out.gateway = formatAddress(r.gateway.length === 4 ? 'ipv4' : 'ipv6', r.gateway);
    if (r.source) out.source = formatAddress(r.source.length === 4 ? 'ipv4' : 'ipv6', r.source);
    return out;
  }

  // ------------------------------------------------------------------------------------------
  // Neighbours

  neighbours(): NeighbourInfo[] {
    return call(() => this.nh.neighbours(this.netns)).map((n) => toInfo(n));
  }

  /** The MAC address the kernel has for `address` on `ifindex` (in a usable state), or null. */
  neighbour(ifindex: number, address: string): string | null {
    const i = ifindexArg(ifindex);
    const a = parseAddress(address).text;
    const n = this.neighbours().find((x) => x.ifindex === i && x.address === a);
    return n && n.mac && n.state & NUD_VALID ? n.mac : null;
  }

  /** Make the kernel resolve `address` on `ifindex` now (ARP / neighbour solicitation). */
  resolve(ifindex: number, address: string): void {
    const i = ifindexArg(ifindex);
    const a = parseAddress(address);
    call(() => this.nh.resolve(this.netns, i, a.bytes));
  }

  /**
   * The MAC address of `address` on `ifindex`: from the table when the kernel has a usable
   * entry (a stale one is confirmed in the background), else after asking the kernel to
   * resolve it and waiting for the answer. LVS_NEIGHBOUR when none came within timeoutMs.
   */
  async resolveNeighbour(ifindex: number, address: string, options: { timeoutMs?: number } = {}): Promise<string> {
    const i = ifindexArg(ifindex);
    const a = parseAddress(address);
    const timeoutMs = options.timeoutMs ?? DEFAULT_RESOLVE_TIMEOUT_MS;
    if (typeof timeoutMs !== 'number' || !(timeoutMs > 0) || timeoutMs > 0x7fffffff) {
      throw new LvsError('LVS_INVALID_TIMEOUT', `timeoutMs: expected a positive number of milliseconds (at most 2147483647), got ${String(timeoutMs)}`, { field: 'timeoutMs' });
    }
    // Subscribe before looking, so an answer between the look and the wait is not missed.
    this.startInternal();
    return new Promise<string>((resolve, reject) => {
      const w: Waiter = {
        ifindex: i,
        address: a.text,
        resolve: (mac) => this.finish(w, () => resolve(mac)),
        reject: (e) => this.finish(w, () => reject(e)),
        timer: setTimeout(() => {
          w.reject(new LvsError('LVS_NEIGHBOUR', `no neighbour answer for ${a.text} on ifindex ${i} within ${timeoutMs} ms${this.netns ? ` (namespace ${this.netns})` : ''}`));
        }, timeoutMs),
      };
      this.waiters.add(w);
      try {
        const known = this.neighbours().find((n) => n.ifindex === i && n.address === a.text);
        if (known?.mac && known.state & NUD_VALID) {
          // Usable now; a stale entry is confirmed in the background (a change is reported
          // to watchers).
          if (known.state & NUD.STALE) {
            try {
              this.nh.resolve(this.netns, i, a.bytes);
            } catch {
              // Best effort: the entry is usable as it is.
            }
          }
          w.resolve(known.mac);
          return;
        }
        call(() => this.nh.resolve(this.netns, i, a.bytes));
      } catch (e) {
        w.reject(coded(e));
      }
    });
  }

  /** Neighbour table changes, one call per batch. `onError` (or, without it, an uncaught
   *  exception) reports a subscription that failed and stopped. */
  watchNeighbours(onChange: (events: NeighbourEvent[]) => void, onError?: (e: LvsError) => void): Watcher {
    if (typeof onChange !== 'function') throw new LvsError('LVS_INVALID_ARGUMENT', 'watchNeighbours: expected a callback', { field: 'onChange' });
    let closed = false;
    const handle = call(() =>
      this.nh.watchNeighbours(this.netns, (events, error) => {
        if (closed) return;
        if (events.length) onChange(events.map((e) => ({ ...toInfo(e), deleted: e.deleted })));
        if (error) {
          closed = true;
          const e = new LvsError('LVS_NETLINK', error.message, { cause: error });
          if (onError) onError(e);
          else throw e;
        }
      }),
    );
    return {
      close: () => {
        closed = true;
        handle.close();
      },
    };
  }

  private startInternal(): void {
    if (this.internal) return;
    this.internal = this.watchNeighbours(
      (events) => this.onNeighbours(events),
      (e) => {
        this.internal = undefined;
        for (const w of [...this.waiters]) w.reject(e);
      },
    );
  }

  private onNeighbours(events: NeighbourEvent[]): void {
    for (const e of events) {
      if (e.deleted) continue;
      for (const w of [...this.waiters]) {
        if (w.ifindex !== e.ifindex || w.address !== e.address) continue;
        if (e.mac && e.state & NUD_VALID) {
          w.resolve(e.mac);
        } else if (e.state & NUD.FAILED) {
          // The kernel gave up (its probes went unanswered); ask again while time is left.
          try {
            this.nh.resolve(this.netns, w.ifindex, parseAddress(w.address).bytes);
          } catch (err) {
            w.reject(coded(err));
          }
        }
      }
    }
  }

  private finish(w: Waiter, settle: () => void): void {
    if (!this.waiters.delete(w)) return;
    clearTimeout(w.timer);
    if (this.waiters.size === 0 && this.internal) {
      this.internal.close();
      this.internal = undefined;
    }
    settle();
  }

  // ------------------------------------------------------------------------------------------
  // Frames and sysctls

  /** Transmit one complete Ethernet frame, as it is, on an interface (name or ifindex). */
  sendFrame(iface: string | number, frame: Uint8Array): void {
    const ifindex = typeof iface === 'string' ? this.link(iface).ifindex : ifindexArg(iface, 'interface');
    if (!(frame instanceof Uint8Array) || frame.length < 14 || frame.length > 65535) {
      throw new LvsError('LVS_INVALID_ARGUMENT', 'frame: expected an Ethernet frame of 14 to 65535 bytes', { field: 'frame' });
    }
    call(() => this.nh.sendFrame(this.netns, ifindex, frame));
  }

  /** Read a sysctl ("net.ipv4.ip_forward" or "net/ipv4/ip_forward"), or write it and get the
   *  value it had before. */
  sysctl(key: string, value?: string | number): string {
    const path = sysctlPath(key);
    if (value === undefined) return call(() => this.nh.sysctl(this.netns, path));
    if (typeof value !== 'string' && typeof value !== 'number') {
      throw new LvsError('LVS_INVALID_ARGUMENT', `sysctl ${key}: expected a string or number value`, { field: 'value' });
    }
    return call(() => this.nh.sysctl(this.netns, path, String(value)));
  }
}

function toInfo(n: { ifindex: number; address: Uint8Array; mac: string | null; state: number }): NeighbourInfo {
  return { ifindex: n.ifindex, address: formatAddress(n.address.length === 4 ? 'ipv4' : 'ipv6', n.address), mac: n.mac, state: n.state };
}
