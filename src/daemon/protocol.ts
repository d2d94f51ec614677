/**
 * The control socket's protocol: what lvsadm (and any other tool) says to a running lvsd.
 *
 * Transport: a unix stream socket (default /run/lvsd/lvsd.sock, mode 0600), newline-delimited
 * JSON, one request per line, one response per request, in order. Every message carries the
 * protocol version `v`; a daemon answers a request with a `v` it does not speak with an
 * error of code LVS_PROTOCOL and its own version, so tools can say what to upgrade.
 *
 *   -> {"v":1,"id":7,"op":"add-service","service":{"protocol":"tcp","address":"198.18.0.100","port":80,"scheduler":"rr"}}
 *   <- {"v":1,"id":7,"ok":true,"result":null}
 *   <- {"v":1,"id":8,"ok":false,"error":{"code":"LVS_SERVICE_EXISTS","message":"Service already exists: ...","field":"service"}}
 *
 * A change is applied to the running director at once, all or nothing, exactly as the
 * library's Dataplane transaction would; it changes the running state, not lvs.cf, until a
 * `write-config`.
 */
import type {
  ConnectionEntry,
  RealServerChanges,
  RealServerKey,
  ServiceKey,
  Timeouts,
  VirtualServiceChanges,
  VirtualServiceInfo,
  VirtualServiceSpec,
  ForwardingMethod,
} from '../dataplane/types.js';

export const CONTROL_PROTOCOL_VERSION = 1;
export const DEFAULT_CONTROL_SOCKET = '/run/lvsd/lvsd.sock';

/** ipvsadm --rate, per service and real: IPVS's estimator (2 s samples, EWMA 1/4). */
export interface Rates {
  cps: number;
  inpps: number;
  outpps: number;
  inbps: number;
  outbps: number;
}

/** A service as `list` reports it: the dataplane's view plus the estimator's rates. */
export type ListedService = VirtualServiceInfo & { rates: Rates; reals: Array<VirtualServiceInfo['reals'][number] & { rates: Rates }> };

/** A real as lvsadm -a/-e gives it (the daemon finds its interface and MAC itself). */
export interface ControlRealSpec extends RealServerKey {
  weight?: number;
  method?: ForwardingMethod;
  upperThreshold?: number;
  lowerThreshold?: number;
}

export type ControlRequest =
  | { op: 'hello' }
  | { op: 'list' }
  | { op: 'connections' }
  | { op: 'timeouts' }
  /** The health engine's view: every checked real, up or down, and why. */
  | { op: 'health' }
  | { op: 'status' } // director status and failover state (role, active, partner, heartbeats, sync)
  | { op: 'set-timeouts'; timeouts: Partial<Timeouts> }
  | { op: 'add-service'; service: VirtualServiceSpec }
  | { op: 'edit-service'; key: ServiceKey; changes: VirtualServiceChanges }
  | { op: 'delete-service'; key: ServiceKey }
  | { op: 'clear' }
  | { op: 'add-real'; key: ServiceKey; real: ControlRealSpec }
  | { op: 'edit-real'; key: ServiceKey; real: RealServerKey; changes: Omit<RealServerChanges, 'interface' | 'mac'> }
  | { op: 'delete-real'; key: ServiceKey; real: RealServerKey }
  | { op: 'zero'; key?: ServiceKey }
  /** Save the running configuration to lvs.cf (the daemon's file, or `file`). */
  | { op: 'write-config'; file?: string };

export interface ControlResults {
  hello: { version: number; daemon: 'lvsd'; pid: number; config: string };
  list: { tableSize: number; services: ListedService[] };
  connections: ConnectionEntry[];
  timeouts: Timeouts;
  health: unknown;
  status: { director: unknown; failover: unknown };
  'set-timeouts': null;
  'add-service': null;
  'edit-service': null;
  'delete-service': null;
  clear: null;
  'add-real': null;
  'edit-real': null;
  'delete-real': null;
  zero: null;
  'write-config': { file: string; serial: number };
}

export type ControlMessage = ControlRequest & { v: number; id: number };

export type ControlResponse =
  | { v: number; id: number; ok: true; result: unknown }
  | { v: number; id: number; ok: false; error: { code: string; message: string; field?: string } };
