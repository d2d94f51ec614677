/**
 * The dataplane's public types. Names follow ipvsadm and IPVS: a virtual service, its real
 * servers, a forwarding method (nat = masquerading -m, direct = gatewaying -g, tunnel = ipip -i).
 */
import type { Family } from '../net/address.js';
import type { StateName } from './protocol.js';

export type { Family };
export type Protocol = 'tcp' | 'udp';
export type ForwardingMethod = 'nat' | 'direct' | 'tunnel';
/** IPVS's schedulers, all of them, with IPVS's semantics (see docs/scheduling.md). */
export type SchedulerName = 'rr' | 'wrr' | 'lc' | 'wlc' | 'sed' | 'nq' | 'lblc' | 'lblcr' | 'dh' | 'sh' | 'mh' | 'fo' | 'ovf' | 'twos';
export const SCHEDULERS: readonly SchedulerName[] = ['rr', 'wrr', 'lc', 'wlc', 'sed', 'nq', 'lblc', 'lblcr', 'dh', 'sh', 'mh', 'fo', 'ovf', 'twos'];
/** ipvsadm -b: sh-fallback/sh-port for sh, mh-fallback/mh-port for mh, flag-1..3 raw. */
export type SchedulerFlag = 'sh-fallback' | 'sh-port' | 'mh-fallback' | 'mh-port' | 'flag-1' | 'flag-2' | 'flag-3';

/** ipvsadm -p [timeout] -M netmask. */
export interface Persistence {
  /** Seconds, 1 to 31 days; default 360 (ipvsadm's). */
  timeout?: number;
  /** Clients sharing a template: an IPv4 netmask ("255.255.255.0") or a prefix length
   *  (IPv4 or IPv6); default one address (/32, /128). */
  netmask?: string | number;
}

/** A virtual service is named as ipvsadm names it: -t/-u VIP:port, or -f fwmark. */
export type ServiceKey =
  | { protocol: Protocol; address: string; port: number }
  | { fwmark: number; family?: Family };

export interface ServiceOptions {
  /** Default `wlc`, as IPVS. */
  scheduler?: SchedulerName;
  flags?: SchedulerFlag[];
  /** true = ipvsadm -p (360 s); a number = -p seconds; an object for the netmask too. */
  persistence?: Persistence | boolean | number;
  /** mh only: the Maglev table size, a prime (IPVS 4093, the Maglev paper 65537). */
  maglevTableSize?: number;
  /** Piranha's quiesce_server: when a real joins or comes back (weight from 0), the connection
   *  counts the least-connection schedulers see are reset, so the newcomer is not flooded. */
  quiesce?: boolean;
}

export type VirtualServiceSpec = ServiceKey & ServiceOptions;

/** Changes to a service; `persistence: false` turns persistence off. */
export type VirtualServiceChanges = ServiceOptions;

export interface RealServerKey {
  address: string;
  /** Default: the service's port (0 for firewall-mark services: keep the client's port). */
  port?: number;
}

export interface RealServerSpec extends RealServerKey {
  /** 0..65535, default 1; 0 = quiesced (no new connections, existing ones go on). */
  weight?: number;
  /** Default `direct`, as ipvsadm's -g. */
  method?: ForwardingMethod;
  /** Dataplane interface id (see setInterface) towards the real or its next hop. */
  interface: number;
  /** MAC address of the real or its next hop on that interface. Omitted: unresolved (the
   *  dataplane drops its packets and emits `neighbour-miss`). */
  mac?: string;
  /** ipvsadm -x: at this many connections (active + inactive) the real takes no new ones. */
  upperThreshold?: number;
  /** ipvsadm -y: below this it takes them again (default: below 3/4 of the upper one). */
  lowerThreshold?: number;
  /** Seconds over which the weight ramps up when the real joins or comes back from weight 0
   *  (none of IPVS, Piranha or keepalived has this; HAProxy's slowstart). */
  slowStart?: number;
}

export type RealServerChanges = Partial<Pick<RealServerSpec, 'weight' | 'method' | 'interface' | 'mac' | 'upperThreshold' | 'lowerThreshold' | 'slowStart'>>;

/** Dataplane-wide IPVS behaviours (the sysctls of the same names). */
export interface DataplaneBehaviour {
  /** Packets of a connection whose real was deleted end it (and start a new one if they can);
   *  a new SYN to a quiesced real is rescheduled. Default false. */
  expireNodestConn: boolean;
  /** Persistence templates of a quiesced (weight 0) real stop binding clients. Default false. */
  expireQuiescentTemplate: boolean;
}

/** A firewall-mark classification rule: packets starting a connection that match get `mark`,
 *  and go to the firewall-mark service of that mark if there is one. First match wins. */
export interface MarkRule {
  mark: number;
  /** Default: any. */
  protocol?: Protocol;
  /** An address or prefix ("198.18.0.10", "198.18.0.0/24", "2001:db8::/64"). */
  destination: string;
  /** A port, or an inclusive range [from, to]; default all. */
  ports?: number | [number, number];
  /** An address or prefix; default any. */
  source?: string;
}

export interface InterfaceSpec {
  /** 0..255: how frames name their interface. */
  id: number;
  name?: string;
  mac: string;
  /** IP MTU, default 1500. */
  mtu?: number;
  /** 802.1Q VLAN id written on frames leaving here; 0/absent = untagged. */
  vlan?: number;
  /** The director's addresses on this interface: source of ICMP errors and tunnel headers. */
  ipv4?: string;
  ipv6?: string;
}

/** ipvsadm --set: seconds; 0 leaves a value unchanged. */
export interface Timeouts {
  tcp: number;
  tcpfin: number;
  udp: number;
}

/** ipvsadm --stats: totals since creation or the last zero(). */
export interface TrafficStats {
  connections: number;
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
}

export interface RealServerInfo {
  address: string;
  family: Family;
  port: number;
  /** As configured. */
  weight: number;
  /** What the dataplane uses now (less than `weight` while slow start ramps it up). */
  currentWeight: number;
  upperThreshold: number;
  lowerThreshold: number;
  method: ForwardingMethod;
  interface: number;
  mac: string | null;
  activeConnections: number;
  inactiveConnections: number;
  persistentConnections: number;
  stats: TrafficStats;
}

export interface VirtualServiceInfo {
  family: Family;
  protocol: Protocol | null;
  address: string | null;
  port: number;
  fwmark: number;
  scheduler: SchedulerName;
  flags: SchedulerFlag[];
  persistence: { timeout: number; netmask: string } | null;
  maglevTableSize: number | null;
  quiesce: boolean;
  /** In IPVS list order: the most recently added real first. */
  reals: RealServerInfo[];
  stats: TrafficStats;
}

export interface Endpoint {
  address: string;
  port: number;
}

/** One row of ipvsadm -L -n -c. */
export interface ConnectionEntry {
  protocol: 'TCP' | 'UDP' | 'IP';
  state: StateName;
  /** Milliseconds until the entry expires. */
  expiresIn: number;
  client: Endpoint;
  virtual: Endpoint;
  destination: Endpoint;
  fwmark: number;
  method: ForwardingMethod;
  template: boolean;
  packetsIn: number;
}

export interface DataplaneOptions {
  /** Worker threads, each with its own connection table. Default 1. */
  workers?: number;
  /** `threaded` (default): native threads. `manual`: nothing runs until poll(). */
  mode?: 'threaded' | 'manual';
  /** `monotonic` (default) or `manual`: time only moves with setClock() (tests). */
  clock?: 'monotonic' | 'manual';
  /** Connection entries per worker. Default 262144 (32 MiB at 128 bytes each). */
  connectionCapacity?: number;
  maxServices?: number;
  maxReals?: number;
  /** Frames the memory backend can hold in each direction per worker. Default 1024. */
  memorySlots?: number;
  /** Seed for the connection hash (default: random). Tests use it for reproducibility. */
  seed?: number;
  /** Real packet I/O instead of the memory backend (the Director sets this up). */
  io?: DataplaneIo;
}

/** The packet backend of a dataplane on real interfaces (see docs/dataplane.md). */
export interface DataplaneIo {
  /** `xdp`: AF_XDP sockets fed by the steering program; `packet`: AF_PACKET rings. */
  kind: 'xdp' | 'packet';
  /** A named network namespace (`ip netns`) the interfaces live in; default the process's. */
  netns?: string;
  /** Each interface: the dataplane id used in setInterface(), and the kernel's ifindex/name. */
  interfaces: Array<{ id: number; ifindex: number; name: string }>;
  /** `xdp` only: the native Steering object whose XSKMAP the sockets join. */
  steering?: unknown;
  /** Frames per worker and interface queue (UMEM frames / ring slots). Default 4096. */
  frames?: number;
  /** `xdp` only: true = zero-copy or fail, false = copy mode; default: try zero-copy. */
  zeroCopy?: boolean;
}

/** What a worker's port counts (real I/O). */
export interface PortInfo {
  kind: string;
  rxPackets: number;
  txPackets: number;
  txFailed: number;
  passDropped: number;
  kernelDropped: number;
  fillEmpty: number;
}

export interface Frame {
  iface: number;
  data: Uint8Array;
}

export interface OutputFrame {
  /** Where the frame leaves (tx), or arrived (pass: handed to the kernel). */
  iface: number;
  action: 'tx' | 'pass';
  data: Buffer;
}

export interface ReplayResult {
  packets: number;
  tx: number;
  pass: number;
  drop: number;
  txBytes: number;
  seconds: number;
  packetsPerSecond: number;
}
