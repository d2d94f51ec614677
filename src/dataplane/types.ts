/**
 * The dataplane's public types. Names follow ipvsadm and IPVS: a virtual service, its real
 * servers, a forwarding method (nat = masquerading -m, direct = gatewaying -g, tunnel = ipip -i).
 */
import type { Family } from '../net/address.js';
import type { StateName } from './protocol.js';

export type { Family };
export type Protocol = 'tcp' | 'udp';
export type ForwardingMethod = 'nat' | 'direct' | 'tunnel';
/** Schedulers the dataplane runs today; the scheduling issue adds the rest of IPVS's list. */
export type SchedulerName = 'rr';
export const SCHEDULERS: readonly SchedulerName[] = ['rr'];

/** A virtual service is named as ipvsadm names it: -t/-u VIP:port, or -f fwmark. */
export type ServiceKey =
  | { protocol: Protocol; address: string; port: number }
  | { fwmark: number; family?: Family };

export type VirtualServiceSpec = ServiceKey & {
  /** Default `rr` (IPVS's default, wlc, arrives with the scheduling issue). */
  scheduler?: SchedulerName;
};

export type VirtualServiceChanges = {
  scheduler?: SchedulerName;
};

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
}

export type RealServerChanges = Partial<Pick<RealServerSpec, 'weight' | 'method' | 'interface' | 'mac'>>;

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
  weight: number;
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
