/**
 * The dataplane's mirror of what it has been told: the state every change is validated
 * against, and what listServices() reports. Internal to src/dataplane.
 */
import type { IpAddress, MacAddress } from '../net/address.js';
import type { ForwardingMethod, InterfaceSpec, MarkRule, SchedulerFlag, SchedulerName } from './types.js';
import type { ParsedServiceKey } from './validate.js';

export interface PersistenceState {
  timeout: number;
  /** The mask ANDed with client addresses (IPv4 bytes, or the IPv6 prefix as bytes). */
  mask: IpAddress;
  plen: number;
}

export interface ServiceState {
  slot: number;
  key: ParsedServiceKey;
  scheduler: SchedulerName;
  flags: SchedulerFlag[];
  persistence: PersistenceState | null;
  mhSize: number;
  quiesce: boolean;
  /** Bumped to reset the counts least-connection schedulers see. */
  lcEpoch: number;
  /** IPVS list order: new reals go to the head. */
  reals: RealState[];
  byId: Map<string, RealState>;
}

export interface RealState {
  slot: number;
  id: string;
  address: IpAddress;
  port: number;
  /** As configured. */
  weight: number;
  /** As pushed to the dataplane (below `weight` during slow start). */
  current: number;
  /** IPVS's last_weight: the latest non-zero weight pushed (Maglev places reals by it). */
  lastWeight: number;
  method: ForwardingMethod;
  iface: number;
  mac: MacAddress | undefined;
  upper: number;
  lower: number;
  /** Slow start length in ms (0: none), and when the current ramp began (dataplane clock). */
  slowStart: number;
  rampFrom: number | null;
}

export interface InterfaceState {
  spec: InterfaceSpec;
  mac: MacAddress;
  mtu: number;
  vlan: number;
  ipv4: IpAddress | undefined;
  ipv6: IpAddress | undefined;
}

export interface ParsedMarkRule {
  rule: MarkRule;
  family: 'ipv4' | 'ipv6';
  protocol: number;
  destination: IpAddress;
  destinationPrefix: number;
  source: IpAddress | undefined;
  sourcePrefix: number;
  portFrom: number;
  portTo: number;
}
