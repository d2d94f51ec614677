/**
 * Loads the addon (build/Release from a source build, else prebuilds/linux-x64) through
 * node-gyp-build, and describes its thin surface. Nothing here validates: callers do.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LvsError } from '../errors.js';
import type { DataplaneIo, PortInfo } from './types.js';

export interface NativeLayoutOptions {
  workers: number;
  maxServices: number;
  maxReals: number;
  commandRingWords: number;
  eventRingWords: number;
}

export interface NativeLayout {
  totalBytes: number;
  clockWord: number;
  notifyWord: number;
  commandRing: number;
  commandRingWords: number;
  ringHeaderBytes: number;
  eventRings: number[];
  eventRingWords: number;
  stats: number;
  stripeBytes: number;
  stripeServices: number;
  stripeReals: number;
}

export interface NativeConstants {
  ops: Record<string, number>;
  events: Record<string, number>;
  counters: string[];
  dropParseBase: number;
  states: string[];
  defaultTimeouts: number[];
  slotCounters: number;
  markRuleWords: number;
  schedulers: Record<string, number>;
  dumpRecordBytes: number;
  syncRecordBytes: number;
  syncVersion: number;
  optionFlags: Record<string, number>;
  dumpFormats: Record<string, number>;
  syncFlags: Record<string, number>;
  connEntryBytes: number;
  maxFrame: number;
  maxInterfaces: number;
}

export interface NativeOutput {
  iface: number;
  verdict: number;
  data: Buffer;
}

export interface NativeReplayResult {
  packets: number;
  tx: number;
  pass: number;
  drop: number;
  txBytes: number;
  ns: number;
}

export interface NativeDataplaneOptions extends NativeLayoutOptions {
  connectionCapacity: number;
  threaded: boolean;
  manualClock: boolean;
  memorySlots: number;
  seed: number;
  io?: DataplaneIo | undefined;
}

export interface NativeDataplane {
  poll(): void;
  kick(): void;
  close(): void;
  inject(worker: number, ifaces: Uint16Array, frames: Uint8Array[]): number;
  collect(worker: number, max: number): NativeOutput[];
  replay(frames: Uint8Array[], ifaces: Uint16Array, total: number, worker: number): NativeReplayResult;
  takeDump(worker: number): Buffer | null;
  info(): { tableBytes: number; tableCapacity: number; workers: number; threaded: boolean; ports: PortInfo[] };
}

/** Addresses cross the binding as bytes: 4 for IPv4, 16 for IPv6 (network order). */
export type AddressBytes = Uint8Array;
export type XdpMode = 'native' | 'generic';

/** The XDP steering program and its maps (bindings/steer.cc, native/io/steer.hpp). */
export interface NativeSteering {
  /** Attach to an interface of the steering's namespace; 'auto' tries native, then generic.
   *  The attachment is a bpf_link: it goes away with close() or with the process. */
  attach(ifindex: number, mode: XdpMode | 'auto'): XdpMode;
  detach(ifindex: number): void;
  /** Traffic to addr:port/proto goes to the dataplane (port 0: any port of that protocol).
   *  ICMP errors to addr go too once any service has that address. */
  addService(proto: number, port: number, addr: AddressBytes): void;
  delService(proto: number, port: number, addr: AddressBytes): void;
  /** Replies from a NAT real (addr, source port, protocol) go to the dataplane unless they are
   *  addressed to one of the director's own addresses (health checks, heartbeats). */
  addNatReal(proto: number, port: number, addr: AddressBytes): void;
  delNatReal(proto: number, port: number, addr: AddressBytes): void;
  /** The director's own addresses (never steered as NAT replies). */
  addLocal(addr: AddressBytes): void;
  delLocal(addr: AddressBytes): void;
  /** Firewall-mark rules' destinations: TCP/UDP (and ICMP errors) to the prefix are steered. */
  addPrefix(addr: AddressBytes, prefixLength: number): void;
  delPrefix(addr: AddressBytes, prefixLength: number): void;
  /** Packet counts by decision, summed over CPUs. */
  stats(): { redirected: number; passed: number; noSocket: number; parseFailed: number };
  /** The mode an interface was attached in, or null. */
  mode(ifindex: number): XdpMode | null;
  /** Run the program on one frame (BPF_PROG_TEST_RUN) as if it arrived on ifindex/queue. */
  testRun(frame: Uint8Array, ifindex: number, queue?: number): { action: number; frame: Buffer };
  close(): void;
}

/** The host's network state over rtnetlink (bindings/host.cc, native/io/netlink.hpp). Every
 *  function takes the namespace first ('' = the process's own). */
export interface NativeLink {
  ifindex: number;
  name: string;
  mac: string; // aa:bb:cc:dd:ee:ff
  mtu: number;
  up: boolean;
  rxQueues: number;
  kind: string; // 'veth', 'bridge', 'loopback', '' when the kernel does not say
  xdpProgId: number; // 0 when none is attached
}
export interface NativeAddressEntry {
  ifindex: number;
  address: AddressBytes;
  prefixLength: number;
  flags: number; // IFA_F_* (permanent, nodad, tentative, dadfailed, ...)
}
export interface NativeRoute {
  ifindex: number;
  gateway: AddressBytes | null;
  source: AddressBytes | null;
  type: number; // RTN_* (1 unicast, 2 local, ...)
}
export interface NativeNeighbour {
  ifindex: number;
  address: AddressBytes;
  mac: string | null;
  state: number; // NUD_* bits
}
export interface NativeNeighbourEvent extends NativeNeighbour {
  deleted: boolean;
}
export interface NativeHost {
  links(netns: string): NativeLink[];
  addresses(netns: string): NativeAddressEntry[];
  /** nodad: IPv6 without duplicate address detection (VIPs). Existing address: no error. */
  addAddress(netns: string, ifindex: number, address: AddressBytes, prefixLength: number, nodad: boolean): void;
  /** Missing address: no error. */
  delAddress(netns: string, ifindex: number, address: AddressBytes, prefixLength: number): void;
  routeGet(netns: string, address: AddressBytes): NativeRoute;
  neighbours(netns: string): NativeNeighbour[];
  /** Ask the kernel to resolve (ARP / neighbour solicitation) now. */
  resolve(netns: string, ifindex: number, address: AddressBytes): void;
  /** Subscribe to neighbour changes; the callback runs on the JS thread, batched. If the
   *  subscription fails it stops, after one last call with no events and the error. */
  watchNeighbours(netns: string, onChange: (events: NativeNeighbourEvent[], error?: Error) => void): { close(): void };
  /** Transmit one Ethernet frame as it is (gratuitous ARP, unsolicited NA). */
  sendFrame(netns: string, ifindex: number, frame: Uint8Array): void;
  /** Read (value undefined) or write a /proc/sys key ("net/ipv4/ip_forward"); returns the
   *  value read, or the previous value when writing. */
  sysctl(netns: string, key: string, value?: string): string;
  /** Move the JS thread into `netns` for good: Node's own sockets and children live there
   *  from then on (lvsd --netns, and tests that run servers and clients in one namespace). */
  enterNetns(netns: string): void;
  /** A raw socket for VRRP (IP protocol 112) on `ifname` in `netns`: bound to the device, joined
   *  to 224.0.0.18 / ff02::12 there, TTL / hop limit 255, multicast loopback off. Received
   *  packets arrive batched on the JS thread; after a socket failure one last call carries the
   *  error (LVS_HOST) and no packets. The socket does not keep the process alive.
   *  Throws LVS_NETNS, LVS_NO_SUCH_DEVICE or LVS_HOST (with errno). */
  vrrpOpen(netns: string, ifname: string, family: 4 | 6, onPackets: (packets: NativeVrrpPacket[], error?: Error) => void): NativeVrrpSocket;
}
/** One received VRRP packet: the IP addresses, TTL / hop limit (-1: unknown) and the VRRP message. */
export interface NativeVrrpPacket {
  source: AddressBytes | null;
  destination: AddressBytes | null;
  ttl: number;
  payload: Uint8Array;
  /** Longer than the receive buffer (64 KiB): payload is cut. */
  truncated: boolean;
}
export interface NativeVrrpSocket {
  readonly ifindex: number;
  /** Send one message to the group; `source` (the interface's primary IPv4 / IPv6 link-local
   *  address, the checksum covers it) or null for the kernel's choice. LVS_HOST, LVS_CLOSED. */
  send(payload: Uint8Array, source: AddressBytes | null): void;
  /** Idempotent; stops the receive thread and closes the socket. */
  close(): void;
}

/** Benchmark tools (bindings/bench.cc, native/io/gen.hpp): bench/net.js, bench/conn.js. */
export interface NativeBenchGenerateOptions {
  /** Namespace of the device ('' or absent: the process's own). */
  netns?: string;
  ifname: string;
  /** Complete Ethernet frames, sent in turn (vary the UDP source port across them for many flows). */
  frames: Uint8Array[];
  /** Stop after this many seconds; and/or */
  seconds?: number;
  /** stop after exactly this many frames (each one accepted by the device). */
  count?: number;
  /** Frames per sendmmsg() (1-1024, default 64). */
  batch?: number;
  /** Pin the generating thread to this CPU while it runs (-1 or absent: not pinned). */
  cpu?: number;
}
export interface NativeBenchGenerateResult {
  /** Frames the device accepted (AF_PACKET, PACKET_QDISC_BYPASS). */
  sent: number;
  /** Attempts the device refused (its queue was full); those frames were tried again. */
  failed: number;
  calls: number;
  /** From the first send to the last. */
  seconds: number;
}
/** A counting XDP sink: UDP frames are counted and dropped, everything else passes. */
export interface NativeBenchSink {
  attach(netns: string, ifindex: number, mode?: XdpMode | 'auto'): XdpMode;
  /** Summed over CPUs. packets/bytes: UDP to the device's MAC; foreign: UDP for another MAC
   *  (dropped, not in packets); passed: everything else, given to the kernel. */
  count(): { packets: number; bytes: number; foreign: number; passed: number };
  close(): void;
}
/** A tiny HTTP server on a native thread: every request gets `body`, then the connection closes. */
export interface NativeBenchResponder {
  stats(): { responses: number; aborted: number };
  close(): void;
}

export interface NativeAddon {
  Dataplane: new (options: NativeDataplaneOptions, region: Uint8Array, onEvents?: () => void) => NativeDataplane;
  layout(options: NativeLayoutOptions): NativeLayout;
  constants(): NativeConstants;
  maglevPopulate(offset: Uint32Array, skip: Uint32Array, turns: Int32Array, slots: Int32Array, size: number): Int32Array;
  /** new Steering({netns?, maxEntries?}): make the maps and load the program (LVS_BPF). */
  Steering: new (options: { netns?: string; maxEntries?: number }) => NativeSteering;
  /** Real-server side: an XDP program that strips IPIP / IPv6 tunnel headers from packets for
   *  `vips` and passes the inner packet to the kernel. Attached through netlink, so it stays
   *  after the process exits; attaching again replaces it; detach removes only ours. */
  decapAttach(netns: string, ifindex: number, vips: AddressBytes[], mode: XdpMode | 'auto'): XdpMode;
  decapDetach(netns: string, ifindex: number): boolean;
  /** The XDP program attached to ifindex: its id, name and mode, or null. */
  xdpQuery(netns: string, ifindex: number): { id: number; name: string; mode: XdpMode | 'other' } | null;
  /** Run the XDP program attached to ifindex on one frame (BPF_PROG_TEST_RUN); null if none. */
  xdpTestRun(netns: string, ifindex: number, frame: Uint8Array, queue?: number): { action: number; frame: Buffer } | null;
  host: NativeHost;
  /** Run the packet generator on a pool thread. Rejects with LVS_NETNS, LVS_NO_SUCH_DEVICE,
   *  LVS_INVALID_ARGUMENT or LVS_IO_INIT. */
  benchGenerate(options: NativeBenchGenerateOptions): Promise<NativeBenchGenerateResult>;
  BenchSink: new () => NativeBenchSink;
  /** Listens on 0.0.0.0:port (and [::]:port with ipv6) in netns (LVS_NETNS, LVS_IO_INIT). */
  BenchResponder: new (options: { netns?: string; port: number; body: string; ipv6?: boolean }) => NativeBenchResponder;
}

/** The package root: two levels up from both src/dataplane and dist/dataplane. */
export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

let addon: NativeAddon | undefined;
let table: NativeConstants | undefined;

/** The addon's constants (opcodes, counter names, sizes), read once. */
export function constants(): NativeConstants {
  return (table ??= native().constants());
}

export function native(): NativeAddon {
  if (addon) return addon;
  const require = createRequire(import.meta.url);
  try {
    // LVSD_ADDON names a specific build (a second build directory, a debug build).
    const explicit = process.env.LVSD_ADDON;
    addon = (explicit ? require(explicit) : require('node-gyp-build')(packageRoot)) as NativeAddon;
  } catch (cause) {
    throw new LvsError(
      'LVS_NATIVE_MISSING',
      'the lvsd dataplane addon is not built: run "npm install" (needs g++ and cmake) or "npm run build:native"',
      { cause },
    );
  }
  return addon;
}
