/**
 * Argument checks for the dataplane API. Everything the native side could reject is caught
 * here first, with a stable code and the field it concerns (DESIGN.md rules 4 and 6).
 */
import { LvsError, type LvsErrorCode } from '../errors.js';
import { parseAddress, type Family, type IpAddress } from '../net/address.js';
import { SCHEDULERS, type ForwardingMethod, type Protocol, type SchedulerName, type ServiceKey } from './types.js';

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
