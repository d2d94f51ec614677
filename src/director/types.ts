/**
 * The Director's configuration: what a Piranha router did with lvs.cf, pulse, lvs and
 * send_arp, as one object. The lvs.cf parser (src/config) produces this; embedders write it.
 */
import type { DataplaneBehaviour, ForwardingMethod, MarkRule, Protocol, SchedulerFlag, SchedulerName, Persistence, Timeouts } from '../dataplane/types.js';
import type { Family } from '../net/address.js';

/** What the director logs with: pino's shape (a pino logger fits). */
export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export type IoChoice = 'auto' | 'xdp' | 'packet';
export type XdpModeChoice = 'auto' | 'native' | 'generic';

export interface DirectorRealServer {
  address: string;
  /** Default: the service's port (firewall-mark services: the client's port). */
  port?: number;
  /** Default 1. */
  weight?: number;
  /** Default `direct` (ipvsadm -g). */
  method?: ForwardingMethod;
  upperThreshold?: number;
  lowerThreshold?: number;
  slowStart?: number;
}

interface ServiceCommon {
  scheduler?: SchedulerName;
  flags?: SchedulerFlag[];
  persistence?: Persistence | boolean | number;
  maglevTableSize?: number;
  quiesce?: boolean;
  /** Device the VIP is brought up on; default: the device of the kernel's route to it. */
  device?: string;
  reals: DirectorRealServer[];
}

/** -t/-u VIP:port. */
export interface DirectorAddressService extends ServiceCommon {
  protocol: Protocol;
  address: string;
  port: number;
}

/** -f fwmark: packets classified by `marks` rules. `addresses` are the VIPs the director
 *  brings up for it (Piranha's fwmark virtual server still has an `address`). */
export interface DirectorMarkService extends ServiceCommon {
  fwmark: number;
  family?: Family;
  addresses?: string[];
}

export type DirectorService = DirectorAddressService | DirectorMarkService;

export interface NatRouter {
  /** Piranha's nat_router: the address NAT reals use as their default gateway. */
  address: string;
  device: string;
  /** Default /32 or /128: the reals' subnet route already exists on the device. */
  prefixLength?: number;
}

export interface DirectorConfig {
  /** A named network namespace (`ip netns`) the director works in; default the process's. */
  netns?: string;
  /** Packet backend: `auto` (default) uses AF_XDP and falls back to AF_PACKET. */
  io?: IoChoice;
  /** XDP attach mode: `auto` (default) is native where the driver has it, else generic. */
  xdpMode?: XdpModeChoice;
  /** AF_XDP: true = zero-copy or fail; false = copy; default try zero-copy. */
  zeroCopy?: boolean;
  /** Dataplane workers; worker w serves queues q with q % workers == w. Default 1. */
  workers?: number;
  connectionCapacity?: number;
  /** Devices to attach to besides those the services, NAT routers and reals need. */
  devices?: string[];
  services: DirectorService[];
  natRouters?: NatRouter[];
  /** Firewall-mark classification (the mark recipes: Piranha's HTTP+HTTPS, FTP). */
  marks?: MarkRule[];
  timeouts?: Partial<Timeouts>;
  behaviour?: Partial<DataplaneBehaviour>;
  /** Gratuitous ARP / unsolicited NA per VIP when it comes up: default 5, one second apart. */
  announce?: { count?: number; intervalMs?: number };
  /** How long start() waits for a real's MAC address before going on without it. Default 3000. */
  neighbourTimeoutMs?: number;
  /** Re-resolve every next hop this often (the kernel does not see our traffic). Default 30000. */
  neighbourRefreshMs?: number;
  /** Start as a failover backup: the dataplane, steering and services are ready, but the VIPs
   *  and NAT router addresses stay down (and are taken down if an earlier run left them up)
   *  until setActive(true). Default false: active at once. */
  standby?: boolean;
  /** AF_XDP: also install the nftables table that AF_PACKET uses, so that if lvsd is killed the
   *  kernel drops (rather than resets) directed traffic until the partner takes over. lvsd
   *  turns it on with failover. Default false. */
  crashGuard?: boolean;
  /** Default: silent. Pass a pino logger to see what the director does. */
  logger?: Logger;
}

export interface DirectorStatus {
  running: boolean;
  /** Whether this director holds its VIPs (false: a failover backup in standby). */
  active: boolean;
  io: { kind: 'xdp' | 'packet'; mode: string; ports: Array<{ kind: string; rxPackets: number; txPackets: number; txFailed: number; passDropped: number; kernelDropped: number; fillEmpty: number }> } | null;
  interfaces: Array<{ id: number; name: string; ifindex: number; mac: string; xdpMode?: string }>;
  vips: Array<{ address: string; device: string }>;
  reals: Array<{ address: string; device: string; nextHop: string; mac: string | null }>;
}
