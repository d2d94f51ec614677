/**
 * lvsd as a library: embed the director's dataplane in your own Node daemon.
 */
export { Dataplane, MemoryBackend, type DataplaneTransaction, type DataplaneEvents } from './dataplane/dataplane.js';
export * from './dataplane/types.js';
export { LvsError, isLvsError, type LvsErrorCode, type LvsErrorDetails } from './errors.js';
export { parseAddress, formatAddress, parseMac, formatMac, type IpAddress, type MacAddress } from './net/address.js';
export { Director } from './director/director.js';
export type { DirectorConfig, DirectorService, DirectorAddressService, DirectorMarkService, DirectorRealServer, DirectorStatus, NatRouter, Logger } from './director/types.js';
export { Host } from './host/host.js';
export { announce, gratuitousArp, unsolicitedNeighbourAdvertisement } from './host/garp.js';
export { prepareRealServer, type RealServerOptions, type PreparedRealServer } from './realserver/realserver.js';
