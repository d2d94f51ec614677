/**
 * Argument checks for the dataplane API. Everything the native side could reject is caught
 * here first, with a stable code and the field it concerns (DESIGN.md rules 4 and 6).
 */
import { LvsError, type LvsErrorCode } from '../errors.js';
import { parseAddress, prefixMask, type Family, type IpAddress } from '../net/address.js';
import type { ParsedMarkRule, PersistenceState, ServiceState } from './model.js';
import {
  SCHEDULERS,
  type DataplaneIo,
  type DataplaneOptions,
  type ForwardingMethod,
  type MarkRule,
  type Protocol,
  type SchedulerFlag,
  type SchedulerName,
  type ServiceKey,
  type ServiceOptions,
} from './types.js';

export function integer(value: unknown, field: string, min: number, max: number, code: LvsErrorCode): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new LvsError(code, `${field}: expected an integer from ${min} to ${max}, got ${JSON.stringify(value)}`, { field });
  }
  return value;
}

export function port(value: unknown, field = 'port'): number {
  return integer(value, field, 0, 65535, 'LVS_INVALID_PORT');
}

export function protocol(value: unknown, field = 'protocol'): Protocol {
  if (value === 'tcp' || value === 'udp') return value;
  throw new LvsError('LVS_INVALID_PROTOCOL', `${field}: expected "tcp" or "udp", got ${JSON.stringify(value)}`, { field });
}

export function family(value: unknown, field = 'family'): Family {
  if (value === 'ipv4' || value === 'ipv6') return value;
  throw new LvsError('LVS_INVALID_ARGUMENT', `${field}: expected "ipv4" or "ipv6", got ${JSON.stringify(value)}`, { field });
}

export function scheduler(value: unknown, field = 'scheduler'): SchedulerName {
  if (SCHEDULERS.includes(value as SchedulerName)) return value as SchedulerName;
  throw new LvsError(
    'LVS_INVALID_SCHEDULER',
    `${field}: unknown scheduler ${JSON.stringify(value)} (expected one of ${SCHEDULERS.join(', ')})`,
    { field },
  );
}

export function method(value: unknown, field = 'method'): ForwardingMethod {
  if (value === 'nat' || value === 'direct' || value === 'tunnel') return value;
  throw new LvsError(
    'LVS_INVALID_METHOD',
    `${field}: expected "nat", "direct" or "tunnel", got ${JSON.stringify(value)}`,
    { field },
  );
}

export function weight(value: unknown, field = 'weight'): number {
  return integer(value, field, 0, 65535, 'LVS_INVALID_WEIGHT');
}

export interface ParsedServiceKey {
  /** Canonical text, unique per service: "TCP 198.18.0.10:80", "FWM 5 ipv4". */
  id: string;
  family: Family;
  protocol: Protocol | null;
  address: IpAddress | null;
  port: number;
  fwmark: number;
}

export function serviceKey(key: ServiceKey, field = 'service'): ParsedServiceKey {
  if (key === null || typeof key !== 'object') {
    throw new LvsError('LVS_INVALID_ARGUMENT', `${field}: expected {protocol, address, port} or {fwmark}`, { field });
  }
  if ('fwmark' in key && key.fwmark !== undefined) {
    const mark = integer(key.fwmark, `${field}.fwmark`, 1, 0xffffffff, 'LVS_INVALID_FWMARK');
    const fam = key.family === undefined ? 'ipv4' : family(key.family, `${field}.family`);
    return { id: `FWM ${mark} ${fam}`, family: fam, protocol: null, address: null, port: 0, fwmark: mark };
  }
  const k = key as { protocol: unknown; address: unknown; port: unknown };
  const proto = protocol(k.protocol, `${field}.protocol`);
  const addr = parseAddress(k.address as string, `${field}.address`);
  const p = port(k.port, `${field}.port`);
  const shown = addr.family === 'ipv6' ? `[${addr.text}]` : addr.text;
  return { id: `${proto.toUpperCase()} ${shown}:${p}`, family: addr.family, protocol: proto, address: addr, port: p, fwmark: 0 };
}

export function optionalPowerOfTwo(value: unknown, field: string, def: number, min: number, max: number): number {
  if (value === undefined) return def;
  const v = integer(value, field, min, max, 'LVS_INVALID_OPTION');
  if (v & (v - 1)) throw new LvsError('LVS_INVALID_OPTION', `${field}: must be a power of two, got ${v}`, { field });
  return v;
}

export type ServiceSettings = Pick<ServiceState, 'scheduler' | 'flags' | 'persistence' | 'mhSize' | 'quiesce'>;

const MAX_PERSISTENCE_S = 31 * 24 * 3600; // ipvsadm: 1 second to 31 days
const DEFAULT_PERSISTENCE_S = 360; // ipvsadm's IPVS_SVC_PERSISTENT_TIMEOUT (its man page says 300)

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/** Service options over the current settings `base`; unknown or inconsistent ones are errors. */
export function serviceOptions(o: ServiceOptions, family: Family, base: ServiceSettings): ServiceSettings {
  const sched = o.scheduler === undefined ? base.scheduler : scheduler(o.scheduler);
  let flags = base.flags;
  if (o.flags !== undefined) {
    if (!Array.isArray(o.flags)) throw new LvsError('LVS_INVALID_SCHEDULER', 'flags: expected a list such as ["sh-fallback", "sh-port"]', { field: 'flags' });
    flags = [...new Set(o.flags)];
  }
  for (const f of flags) {
    if (!['sh-fallback', 'sh-port', 'mh-fallback', 'mh-port', 'flag-1', 'flag-2', 'flag-3'].includes(f)) {
      throw new LvsError('LVS_INVALID_SCHEDULER', `flags: unknown scheduler flag ${JSON.stringify(f)}`, { field: 'flags' });
    }
    if ((f.startsWith('sh-') && sched !== 'sh') || (f.startsWith('mh-') && sched !== 'mh')) {
      throw new LvsError('LVS_INVALID_SCHEDULER', `flags: ${f} is a flag of the ${f.slice(0, 2)} scheduler, not of ${sched}`, { field: 'flags' });
    }
  }
  let persistence = base.persistence;
  if (o.persistence !== undefined) persistence = persistenceOptions(o.persistence, family);
  let mhSize = base.mhSize;
  if (o.maglevTableSize !== undefined) {
    mhSize = integer(o.maglevTableSize, 'maglevTableSize', 251, 1 << 20, 'LVS_INVALID_SCHEDULER');
    if (!isPrime(mhSize)) throw new LvsError('LVS_INVALID_SCHEDULER', `maglevTableSize: ${mhSize} is not prime (IPVS uses 4093, the Maglev paper 65537)`, { field: 'maglevTableSize' });
  }
  let quiesce = base.quiesce;
  if (o.quiesce !== undefined) {
    if (typeof o.quiesce !== 'boolean') throw new LvsError('LVS_INVALID_OPTION', 'quiesce: expected true or false', { field: 'quiesce' });
    quiesce = o.quiesce;
  }
  return { scheduler: sched, flags: flags as SchedulerFlag[], persistence, mhSize, quiesce };
}

export function persistenceOptions(p: ServiceOptions['persistence'], family: Family): PersistenceState | null {
  if (p === false || p === null) return null;
  const spec = p === true ? {} : typeof p === 'number' ? { timeout: p } : p;
  if (typeof spec !== 'object') throw new LvsError('LVS_INVALID_PERSISTENCE', 'persistence: expected true, a timeout in seconds or {timeout, netmask}', { field: 'persistence' });
  const timeout = spec.timeout === undefined ? DEFAULT_PERSISTENCE_S : integer(spec.timeout, 'persistence.timeout', 1, MAX_PERSISTENCE_S, 'LVS_INVALID_PERSISTENCE');
  const bits = family === 'ipv4' ? 32 : 128;
  let mask = prefixMask(family, bits);
  let plen = bits;
  if (typeof spec.netmask === 'number') {
    plen = integer(spec.netmask, 'persistence.netmask', 1, bits, 'LVS_INVALID_PERSISTENCE');
    mask = prefixMask(family, plen);
  } else if (spec.netmask !== undefined) {
    if (family === 'ipv6') throw new LvsError('LVS_INVALID_PERSISTENCE', 'persistence.netmask: IPv6 services take a prefix length (1-128)', { field: 'persistence.netmask' });
    mask = parseAddress(spec.netmask, 'persistence.netmask');
    if (mask.family !== 'ipv4') throw new LvsError('LVS_INVALID_PERSISTENCE', `persistence.netmask: ${spec.netmask} is not an IPv4 netmask`, { field: 'persistence.netmask' });
    // IPVS ANDs the mask as given (ipvsadm -M accepts any dotted mask); the prefix length
    // reported is its count of leading ones.
    const word = (mask.bytes[0]! << 24) | (mask.bytes[1]! << 16) | (mask.bytes[2]! << 8) | mask.bytes[3]!;
    plen = Math.clz32(~word);
  }
  return { timeout, mask, plen };
}

export function markRule(r: MarkRule, field: string): ParsedMarkRule {
  if (r === null || typeof r !== 'object') throw new LvsError('LVS_INVALID_MARK', `${field}: expected {mark, destination, ...}`, { field });
  integer(r.mark, `${field}.mark`, 1, 0xffffffff, 'LVS_INVALID_MARK');
  const proto = r.protocol === undefined ? 0 : protocol(r.protocol, `${field}.protocol`) === 'tcp' ? 6 : 17;
  const prefix = (text: unknown, f: string) => {
    if (typeof text !== 'string') throw new LvsError('LVS_INVALID_MARK', `${f}: expected an address or prefix`, { field: f });
    const [a, len] = text.split('/');
    const address = parseAddress(a!, f);
    const max = address.family === 'ipv4' ? 32 : 128;
    const plen = len === undefined ? max : Number(len);
    if (!Number.isInteger(plen) || plen < 0 || plen > max || (len !== undefined && !/^\d+$/.test(len))) {
      throw new LvsError('LVS_INVALID_MARK', `${f}: "${text}" has a bad prefix length`, { field: f });
    }
    return { address, plen };
  };
  const dst = prefix(r.destination, `${field}.destination`);
  const src = r.source === undefined ? undefined : prefix(r.source, `${field}.source`);
  if (src && src.address.family !== dst.address.family) throw new LvsError('LVS_FAMILY_MISMATCH', `${field}.source: not the family of the destination`, { field: `${field}.source` });
  let from = 0;
  let to = 65535;
  if (typeof r.ports === 'number') from = to = port(r.ports, `${field}.ports`);
  else if (Array.isArray(r.ports) && r.ports.length === 2) {
    from = port(r.ports[0], `${field}.ports[0]`);
    to = port(r.ports[1], `${field}.ports[1]`);
    if (from > to) throw new LvsError('LVS_INVALID_MARK', `${field}.ports: ${from}-${to} is an empty range`, { field: `${field}.ports` });
  } else if (r.ports !== undefined) throw new LvsError('LVS_INVALID_MARK', `${field}.ports: expected a port or [from, to]`, { field: `${field}.ports` });
  return {
    rule: { ...r },
    family: dst.address.family,
    protocol: proto,
    destination: dst.address,
    destinationPrefix: dst.plen,
    source: src?.address,
    sourcePrefix: src?.plen ?? 0,
    portFrom: from,
    portTo: to,
  };
}

export function dataplaneOptions(o: DataplaneOptions): Required<Omit<DataplaneOptions, 'io'>> & Pick<DataplaneOptions, 'io'> {
  if (o === null || typeof o !== 'object') throw new LvsError('LVS_INVALID_OPTION', 'options: expected an object', { field: 'options' });
  const mode = o.mode ?? 'threaded';
  if (mode !== 'threaded' && mode !== 'manual') throw new LvsError('LVS_INVALID_OPTION', `mode: expected "threaded" or "manual", got ${JSON.stringify(mode)}`, { field: 'mode' });
  const clock = o.clock ?? 'monotonic';
  if (clock !== 'monotonic' && clock !== 'manual') throw new LvsError('LVS_INVALID_OPTION', `clock: expected "monotonic" or "manual", got ${JSON.stringify(clock)}`, { field: 'clock' });
  return {
    workers: o.workers === undefined ? 1 : integer(o.workers, 'workers', 1, 64, 'LVS_INVALID_OPTION'),
    mode,
    clock,
    connectionCapacity: o.connectionCapacity === undefined ? 1 << 18 : integer(o.connectionCapacity, 'connectionCapacity', 1, 1 << 27, 'LVS_INVALID_OPTION'),
    maxServices: o.maxServices === undefined ? 256 : integer(o.maxServices, 'maxServices', 1, 65536, 'LVS_INVALID_OPTION'),
    maxReals: o.maxReals === undefined ? 4096 : integer(o.maxReals, 'maxReals', 1, 1 << 20, 'LVS_INVALID_OPTION'),
    memorySlots: optionalPowerOfTwo(o.memorySlots, 'memorySlots', 1024, 2, 1 << 16),
    seed: o.seed === undefined ? 0 : integer(o.seed, 'seed', 0, 0xffffffff, 'LVS_INVALID_OPTION'),
    io: o.io === undefined ? undefined : dataplaneIo(o.io, mode),
  };
}

function dataplaneIo(io: DataplaneIo, mode: string): DataplaneIo {
  if (io === null || typeof io !== 'object') throw new LvsError('LVS_INVALID_OPTION', 'io: expected an object', { field: 'io' });
  if (io.kind !== 'xdp' && io.kind !== 'packet') throw new LvsError('LVS_INVALID_OPTION', `io.kind: expected "xdp" or "packet", got ${JSON.stringify(io.kind)}`, { field: 'io.kind' });
  if (mode !== 'threaded') throw new LvsError('LVS_INVALID_OPTION', 'io: real packet I/O needs mode "threaded"', { field: 'io' });
  if (!Array.isArray(io.interfaces) || io.interfaces.length === 0) throw new LvsError('LVS_INVALID_OPTION', 'io.interfaces: expected at least one interface', { field: 'io.interfaces' });
  io.interfaces.forEach((f, i) => {
    integer(f.id, `io.interfaces[${i}].id`, 0, 0xffff, 'LVS_INVALID_OPTION');
    integer(f.ifindex, `io.interfaces[${i}].ifindex`, 1, 0x7fffffff, 'LVS_INVALID_OPTION');
    if (typeof f.name !== 'string' || f.name.length === 0 || f.name.length > 15) throw new LvsError('LVS_INVALID_OPTION', `io.interfaces[${i}].name: expected an interface name`, { field: `io.interfaces[${i}].name` });
  });
  if (io.kind === 'xdp' && (io.steering === null || typeof io.steering !== 'object')) throw new LvsError('LVS_INVALID_OPTION', 'io.steering: AF_XDP needs the Steering object', { field: 'io.steering' });
  if (io.frames !== undefined) optionalPowerOfTwo(io.frames, 'io.frames', 4096, 64, 1 << 16);
  if (io.netns !== undefined && (typeof io.netns !== 'string' || io.netns.length === 0)) throw new LvsError('LVS_INVALID_OPTION', 'io.netns: expected a namespace name', { field: 'io.netns' });
  return io;
}
