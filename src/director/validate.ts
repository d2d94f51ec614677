/**
 * Checks a DirectorConfig's shape before anything on the host changes. Service and real
 * details (schedulers, weights, thresholds, persistence, mark rules) are checked again, whole,
 * by the dataplane's transaction, which also rejects without changing anything.
 */
import { LvsError } from '../errors.js';
import { parseAddress } from '../net/address.js';
import type { DirectorConfig } from './types.js';

function fail(code: ConstructorParameters<typeof LvsError>[0], field: string, msg: string): never {
  throw new LvsError(code, `${field}: ${msg}`, { field });
}

function device(v: unknown, field: string): void {
  if (typeof v !== 'string' || !/^[^\s/]{1,15}$/.test(v)) fail('LVS_INVALID_INTERFACE', field, `expected a device name (1-15 characters), got ${JSON.stringify(v)}`);
}

function port(v: unknown, field: string): void {
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 65535) fail('LVS_INVALID_PORT', field, `expected a port 0-65535, got ${JSON.stringify(v)}`);
}

export function validateConfig(c: DirectorConfig): DirectorConfig {
  if (c === null || typeof c !== 'object') fail('LVS_INVALID_OPTION', 'config', 'expected an object');
  if (c.io !== undefined && !['auto', 'xdp', 'packet'].includes(c.io)) fail('LVS_INVALID_OPTION', 'io', `expected "auto", "xdp" or "packet", got ${JSON.stringify(c.io)}`);
  if (c.xdpMode !== undefined && !['auto', 'native', 'generic'].includes(c.xdpMode)) fail('LVS_INVALID_OPTION', 'xdpMode', `expected "auto", "native" or "generic", got ${JSON.stringify(c.xdpMode)}`);
  if (c.netns !== undefined && (typeof c.netns !== 'string' || c.netns === '')) fail('LVS_INVALID_OPTION', 'netns', 'expected a namespace name');
  if (!Array.isArray(c.services)) fail('LVS_INVALID_OPTION', 'services', 'expected an array');
  c.services.forEach((s, i) => {
    const f = `services[${i}]`;
    if ('fwmark' in s) {
      if (!Number.isInteger(s.fwmark) || s.fwmark < 1 || s.fwmark > 0xffffffff) fail('LVS_INVALID_FWMARK', `${f}.fwmark`, `expected 1-4294967295, got ${JSON.stringify(s.fwmark)}`);
      (s.addresses ?? []).forEach((a, k) => parseAddress(a, `${f}.addresses[${k}]`));
    } else {
      if (s.protocol !== 'tcp' && s.protocol !== 'udp') fail('LVS_INVALID_PROTOCOL', `${f}.protocol`, `expected "tcp" or "udp", got ${JSON.stringify(s.protocol)}`);
      parseAddress(s.address, `${f}.address`);
      port(s.port, `${f}.port`);
    }
    if (s.device !== undefined) device(s.device, `${f}.device`);
    if (!Array.isArray(s.reals)) fail('LVS_INVALID_OPTION', `${f}.reals`, 'expected an array');
    s.reals.forEach((r, k) => {
      parseAddress(r.address, `${f}.reals[${k}].address`);
      if (r.port !== undefined) port(r.port, `${f}.reals[${k}].port`);
      if (r.method !== undefined && !['nat', 'direct', 'tunnel'].includes(r.method)) fail('LVS_INVALID_METHOD', `${f}.reals[${k}].method`, `expected "nat", "direct" or "tunnel", got ${JSON.stringify(r.method)}`);
    });
  });
  if (c.workers !== undefined && (!Number.isInteger(c.workers) || c.workers < 1 || c.workers > 64)) fail('LVS_INVALID_OPTION', 'workers', `expected 1-64, got ${JSON.stringify(c.workers)}`);
  if ((c.workers ?? 1) > 1) {
    // Each worker has its own connection table and templates, and a NIC queue decides which
    // worker sees a packet: a NAT reply or a persistent client's next connection can land on
    // a worker that does not know it. Until packets are handed to the worker that owns their
    // client address, several workers are for stateless-enough services only.
    const i = c.services.findIndex((s) => s.persistence || s.reals.some((r) => r.method === 'nat'));
    if (i >= 0) fail('LVS_INVALID_OPTION', 'workers', `more than one worker cannot serve services[${i}] (NAT or persistence needs every packet of a client on one worker); use workers: 1`);
  }
  (c.natRouters ?? []).forEach((r, i) => {
    parseAddress(r.address, `natRouters[${i}].address`);
    device(r.device, `natRouters[${i}].device`);
  });
  (c.devices ?? []).forEach((d, i) => device(d, `devices[${i}]`));
  const a = c.announce;
  if (a?.count !== undefined && (!Number.isInteger(a.count) || a.count < 0 || a.count > 100)) fail('LVS_INVALID_OPTION', 'announce.count', 'expected 0-100');
  if (a?.intervalMs !== undefined && (!Number.isInteger(a.intervalMs) || a.intervalMs < 10)) fail('LVS_INVALID_OPTION', 'announce.intervalMs', 'expected at least 10');
  return c;
}
