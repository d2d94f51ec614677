/**
 * Typed access to the XDP side of lvsd (bindings/steer.cc, native/io/steer.hpp and decap.hpp):
 * the director's steering program, the real server's tunnel decapsulator, and XDP inspection.
 * Addresses are strings here and bytes across the binding; native errors come back as
 * LvsError with their code (LVS_BPF, LVS_NO_SUCH_DEVICE, LVS_NETNS, ...).
 */
import { LvsError, type LvsErrorCode } from '../errors.js';
import { native, type AddressBytes, type NativeAddon, type NativeSteering, type XdpMode } from '../dataplane/native.js';
import { parseAddress } from '../net/address.js';

export type { XdpMode };
export type SteeringProtocol = 'tcp' | 'udp' | number;
/** What an XDP program returned (enum xdp_action). */
export type XdpAction = 'aborted' | 'drop' | 'pass' | 'tx' | 'redirect';
const ACTIONS: XdpAction[] = ['aborted', 'drop', 'pass', 'tx', 'redirect'];

export interface SteeringStats {
  /** Sent to an AF_XDP socket. */
  redirected: number;
  /** Not for the dataplane: given to the kernel. */
  passed: number;
  /** For the dataplane, but no socket serves that interface and queue: given to the kernel. */
  noSocket: number;
  /** Shorter than the headers it announces (or a bad IP version): given to the kernel. */
  parseFailed: number;
}

export interface TestRunResult {
  action: XdpAction;
  /** The frame as the program left it. */
  frame: Buffer;
}

function addon(): NativeAddon {
  return native();
}

/** Run a native call; its Error (with a code) becomes an LvsError. */
function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (cause) {
    const e = cause as { code?: unknown; message?: string };
    if (typeof e.code === 'string' && e.code.startsWith('LVS_')) {
      throw new LvsError(e.code as LvsErrorCode, e.message ?? String(cause), { cause });
    }
    throw cause;
  }
}

function bytes(address: string, field = 'address'): AddressBytes {
  return parseAddress(address, field).bytes;
}

function protocolNumber(p: SteeringProtocol): number {
  if (p === 'tcp') return 6;
  if (p === 'udp') return 17;
  if (Number.isInteger(p) && (p as number) >= 0 && (p as number) <= 255) return p as number;
  throw new LvsError('LVS_INVALID_PROTOCOL', `protocol: expected "tcp", "udp" or 0-255, got ${JSON.stringify(p)}`, { field: 'protocol' });
}

function portNumber(p: number | undefined): number {
  const v = p ?? 0;
  if (!Number.isInteger(v) || v < 0 || v > 65535) throw new LvsError('LVS_INVALID_PORT', `port: expected 0-65535, got ${String(p)}`, { field: 'port' });
  return v;
}

/** "198.18.0.0/24" or "2001:db8::/48" (a bare address is a host prefix). */
function prefix(text: string): { address: AddressBytes; length: number } {
  const [addr, len] = text.split('/');
  const a = parseAddress(addr ?? '', 'prefix');
  const max = a.family === 'ipv4' ? 32 : 128;
  const length = len === undefined ? max : Number(len);
  if (!Number.isInteger(length) || length < 0 || length > max) {
    throw new LvsError('LVS_INVALID_ADDRESS', `prefix: "${text}" has no valid length (0-${max})`, { field: 'prefix' });
  }
  return { address: a.bytes, length };
}

/** An endpoint the steering program matches: port 0 stands for every port of the protocol. */
export interface SteeringEndpoint {
  protocol: SteeringProtocol;
  address: string;
  port?: number;
}

/**
 * The director's XDP steering program. Entries are reference-counted: each add needs its own
 * delete, so two services on one VIP stay steered until both are gone.
 */
export class Steering {
  /** The native object, for `io.steering` of a Dataplane. */
  readonly native: NativeSteering;
  readonly netns: string;

  constructor(options: { netns?: string; maxEntries?: number } = {}) {
    this.netns = options.netns ?? '';
    const Ctor = addon().Steering;
    this.native = call(() => new Ctor({ ...(options.netns ? { netns: options.netns } : {}), ...(options.maxEntries ? { maxEntries: options.maxEntries } : {}) }));
  }

  /** Attach to an interface (bpf_link; gone with close() or the process). 'auto': native, else generic. */
  attach(ifindex: number, mode: XdpMode | 'auto' = 'auto'): XdpMode {
    return call(() => this.native.attach(ifindex, mode));
  }
  detach(ifindex: number): void {
    call(() => this.native.detach(ifindex));
  }
  /** The mode the interface was attached in by this steering, or null. */
  mode(ifindex: number): XdpMode | null {
    return this.native.mode(ifindex);
  }

  addService(e: SteeringEndpoint): void {
    call(() => this.native.addService(protocolNumber(e.protocol), portNumber(e.port), bytes(e.address)));
  }
  delService(e: SteeringEndpoint): void {
    call(() => this.native.delService(protocolNumber(e.protocol), portNumber(e.port), bytes(e.address)));
  }
  /** Replies from a NAT real: its address and (source) port. */
  addNatReal(e: SteeringEndpoint): void {
    call(() => this.native.addNatReal(protocolNumber(e.protocol), portNumber(e.port), bytes(e.address)));
  }
  delNatReal(e: SteeringEndpoint): void {
    call(() => this.native.delNatReal(protocolNumber(e.protocol), portNumber(e.port), bytes(e.address)));
  }
  addLocal(address: string): void {
    call(() => this.native.addLocal(bytes(address)));
  }
  delLocal(address: string): void {
    call(() => this.native.delLocal(bytes(address)));
  }
  addPrefix(text: string): void {
    const p = prefix(text);
    call(() => this.native.addPrefix(p.address, p.length));
  }
  delPrefix(text: string): void {
    const p = prefix(text);
    call(() => this.native.delPrefix(p.address, p.length));
  }

  stats(): SteeringStats {
    return call(() => this.native.stats());
  }

  /** What the program does with a frame received on (ifindex, queue), without sending it. */
  testRun(frame: Uint8Array, ifindex: number, queue = 0): TestRunResult {
    const r = call(() => this.native.testRun(frame, ifindex, queue));
    return { action: ACTIONS[r.action] ?? 'aborted', frame: r.frame };
  }

  close(): void {
    this.native.close();
  }
}

/** Real-server decapsulator for `vips` on an interface (persistent; replaces our previous one). */
export function decapAttach(netns: string, ifindex: number, vips: string[], mode: XdpMode | 'auto' = 'auto'): XdpMode {
  const list = vips.map((v, i) => bytes(v, `vips[${i}]`));
  return call(() => addon().decapAttach(netns, ifindex, list, mode));
}

/** Remove our decapsulator; false when the interface has none (or someone else's program). */
export function decapDetach(netns: string, ifindex: number): boolean {
  return call(() => addon().decapDetach(netns, ifindex));
}

/** The XDP program on an interface: id, name and mode, or null. */
export function xdpQuery(netns: string, ifindex: number): { id: number; name: string; mode: XdpMode | 'other' } | null {
  return call(() => addon().xdpQuery(netns, ifindex));
}

/** Run the program attached to an interface once on a frame (BPF_PROG_TEST_RUN); null: none attached. */
export function xdpTestRun(netns: string, ifindex: number, frame: Uint8Array, queue = 0): TestRunResult | null {
  const r = call(() => addon().xdpTestRun(netns, ifindex, frame, queue));
  return r ? { action: ACTIONS[r.action] ?? 'aborted', frame: r.frame } : null;
}
