/**
 * Checks that concern a whole lvs.cf model rather than one line: required keys, services and
 * reals that collide, keys that contradict each other, and notes about keys that have no
 * effect. parse() runs it on every file; write() and applyRunningState() on every model they
 * produce, so a file lvsd writes always reads back.
 */
import { LvsError, type LvsErrorCode } from '../errors.js';
import { configError, directorPort, hostAddress, realMethod, type BlockLayout, type ConfigMessage, type KeyLayout, type LvsConfig, type RealServer, type VirtualServer } from './model.js';

export interface ValidationResult {
  errors: LvsError[];
  warnings: ConfigMessage[];
}

export interface ValidateOptions {
  file?: string;
  /** Blocks that already had errors on their lines: no further checks there (they would
   *  only repeat the same problem). */
  skip?: Set<object>;
}

type Family = 'ipv4' | 'ipv6';

interface Where {
  line?: number;
  column?: number;
}

function lastKey(keys: KeyLayout[] | undefined, key: string): KeyLayout | undefined {
  if (!keys) return undefined;
  for (let i = keys.length - 1; i >= 0; i--) if (keys[i]!.key === key) return keys[i];
  return undefined;
}

/** Where a key of a block is, or the block itself if the key is not written. */
function at(layout: { keys: KeyLayout[]; line?: number; column?: number } | undefined, key?: string): Where {
  const k = key === undefined ? undefined : lastKey(layout?.keys, key);
  if (k) return { line: k.line, column: k.column };
  return layout && 'line' in layout ? { line: layout.line, column: layout.column } : {};
}

/** Where the k-th line of a repeating key is. */
function nth(layout: BlockLayout | undefined, key: string, k: number): Where {
  const kl = layout?.keys.filter((x) => x.key === key)[k];
  return kl ? { line: kl.line, column: kl.column } : blockAt(layout);
}

function blockAt(layout: BlockLayout | undefined): Where {
  return layout ? { line: layout.line, column: layout.column } : {};
}

export function message(file: string, where: Where, field: string, text: string): string {
  return where.line === undefined ? `${file} ${field}: ${text}` : `${file}:${where.line}:${where.column} ${field}: ${text}`;
}

function familyOf(cfg: LvsConfig, host: string | undefined): Family | undefined {
  if (host === undefined) return undefined;
  const a = hostAddress(cfg, host);
  if (a === undefined) return undefined;
  return a.includes(':') ? 'ipv6' : 'ipv4';
}

function prefixFamily(p: string): Family {
  return p.includes(':') ? 'ipv6' : 'ipv4';
}

/** The service a virtual defines, as ipvsadm names it (for collisions). */
export function serviceName(cfg: LvsConfig, v: VirtualServer): string | undefined {
  const fam = familyOf(cfg, v.address) ?? (v.fwmarkRules.find((r) => r.destination) ? prefixFamily(v.fwmarkRules.find((r) => r.destination)!.destination!) : undefined);
  if (v.fwmark) return `FWM ${v.fwmark} ${fam ?? 'ipv4'}`;
  const a = v.address === undefined ? undefined : hostAddress(cfg, v.address);
  if (a === undefined) return undefined;
  return `${v.protocol.toUpperCase()} ${a.includes(':') ? `[${a}]` : a}:${v.port}`;
}

export function validateModel(cfg: LvsConfig, options: ValidateOptions = {}): ValidationResult {
  const file = options.file ?? 'lvs.cf';
  const skip = options.skip ?? new Set<object>();
  const errors: LvsError[] = [];
  const warnings: ConfigMessage[] = [];
  const error = (code: LvsErrorCode, where: Where, field: string, text: string) => {
    errors.push(where.line === undefined ? configErrorNoPos(code, file, field, text) : configError(code, file, where.line, where.column!, field, text));
  };
  const warn = (where: Where, field: string, text: string) => {
    warnings.push({ file, line: where.line ?? 0, column: where.column ?? 0, field, message: message(file, where, field, text) });
  };
  const g = cfg.globals;
  const gl = cfg.layout ? { keys: cfg.layout.keys } : undefined;

  // Globals.
  if (g.backupActive && g.backup === undefined) warn(at(gl, 'backup_active'), 'backup_active', 'backup_active = 1 but there is no backup: no heartbeats can be sent');
  if (g.deadtime <= g.keepalive) warn(at(gl, 'deadtime'), 'deadtime', `deadtime (${g.deadtime} s) is not longer than keepalive (${g.keepalive} s): the partner will be declared dead between two heartbeats`);
  if (g.natNmask !== undefined) {
    const v4 = g.natRouters.find((r) => familyOf(cfg, r.address) === 'ipv4');
    if (!v4) warn(at(gl, 'nat_nmask'), 'nat_nmask', 'has no effect without an IPv4 nat_router');
    else if (typeof g.natNmask === 'number' && g.natNmask > 32) error('LVS_CONFIG_VALUE', at(gl, 'nat_nmask'), 'nat_nmask', `prefix length ${g.natNmask} is out of range for IPv4 (0 to 32)`);
  }
  for (const k of ['active_cmd', 'inactive_cmd'] as const) {
    const v = k === 'active_cmd' ? g.activeCmd : g.inactiveCmd;
    if (v !== undefined && !writable(v)) error('LVS_CONFIG_VALUE', at(gl, k), k, 'contains both quote characters and cannot be written to lvs.cf');
  }

  // Virtual servers.
  const names = new Map<string, VirtualServer>();
  const services = new Map<string, VirtualServer>();
  let active = 0;
  for (const v of cfg.virtuals) {
    const vl = v.layout;
    const vf = familyOf(cfg, v.address);
    if (names.has(v.name)) warn(blockAt(vl), 'virtual', `another virtual is named ${v.name} (line ${names.get(v.name)!.layout?.line ?? '?'}); lvsadm --write-config tells them apart by their service`);
    else names.set(v.name, v);
    if (skip.has(v)) continue;
    if (v.active) active++;

    // Masks of the right family.
    for (const [key, m] of [['pmask', v.pmask], ['vip_nmask', v.vipNmask]] as const) {
      if (m === undefined || vf === undefined) continue;
      if (typeof m === 'string' && vf === 'ipv6') error('LVS_CONFIG_CONFLICT', at(vl, key), key, `virtual ${v.name} has an IPv6 address: ${key} takes a prefix length (e.g. ${key} = 64)`);
      if (typeof m === 'number' && vf === 'ipv4' && m > 32) error('LVS_CONFIG_VALUE', at(vl, key), key, `prefix length ${m} is out of range for IPv4 (${key === 'pmask' ? 1 : 0} to 32)`);
      else if (typeof m === 'number' && key === 'pmask' && m === 0) error('LVS_CONFIG_VALUE', at(vl, key), key, `prefix length 0 is out of range (1 to ${vf === 'ipv4' ? 32 : 128})`);
    }
    if (v.pmask !== undefined && v.persistent === 0) warn(at(vl, 'pmask'), 'pmask', `has no effect without persistent (virtual ${v.name})`);
    // Scheduler flags belong to their scheduler.
    for (const f of v.schedulerFlags) {
      if ((f.startsWith('sh-') && v.scheduler !== 'sh') || (f.startsWith('mh-') && v.scheduler !== 'mh')) {
        error('LVS_CONFIG_CONFLICT', at(vl, 'scheduler_flags'), 'scheduler_flags', `${f} is a flag of the ${f.slice(0, 2)} scheduler, not of ${v.scheduler} (virtual ${v.name})`);
      }
    }
    if (v.mhTableSize !== undefined && v.scheduler !== 'mh') warn(at(vl, 'mh_table_size'), 'mh_table_size', `has no effect with scheduler ${v.scheduler} (virtual ${v.name})`);
    for (const k of ['send', 'expect', 'send_program'] as const) {
      const s = k === 'send' ? v.send : k === 'expect' ? v.expect : v.sendProgram;
      if (s !== undefined && !writable(s)) error('LVS_CONFIG_VALUE', at(vl, k), k, 'contains both quote characters and cannot be written to lvs.cf');
    }
    if (v.send !== undefined && v.sendProgram !== undefined) warn(at(vl, 'send'), 'send', `has no effect: send_program replaces send (virtual ${v.name})`);

    // Firewall marks.
    if (v.fwmarkRules.length && !v.fwmark) error('LVS_CONFIG_CONFLICT', at(vl, 'fwmark_rule'), 'fwmark_rule', `needs fwmark = MARK in the same virtual (virtual ${v.name})`);
    if (v.fwmark) {
      if (v.active && v.fwmarkRules.length === 0) {
        warn(at(vl, 'fwmark'), 'fwmark', `virtual ${v.name} has no fwmark_rule: lvsd classifies packets itself (iptables marks do not reach it), so nothing is sent to this service; add e.g. fwmark_rule = ${v.protocol} ${v.port}`);
      }
      v.fwmarkRules.forEach((r, k) => {
        const where = nth(vl, 'fwmark_rule', k);
        const dst = r.destination ?? (v.address === undefined ? undefined : hostAddress(cfg, v.address));
        if (r.destination === undefined && v.address === undefined) {
          error('LVS_CONFIG_MISSING', where, 'fwmark_rule', `needs "to DESTINATION" when virtual ${v.name} has no address`);
          return;
        }
        if (dst === undefined) return;
        const df = prefixFamily(dst);
        if (vf !== undefined && df !== vf) error('LVS_CONFIG_CONFLICT', where, 'fwmark_rule', `destination ${dst} is ${df === 'ipv6' ? 'IPv6' : 'IPv4'} but virtual ${v.name} is ${vf === 'ipv6' ? 'IPv6' : 'IPv4'}`);
        if (r.source !== undefined && prefixFamily(r.source) !== df) error('LVS_CONFIG_CONFLICT', where, 'fwmark_rule', `source ${r.source} is not of the destination's address family`);
      });
    }

    if (v.sorryServer !== undefined && vf !== undefined && familyOf(cfg, v.sorryServer) !== vf && g.network !== 'tunnel') {
      error('LVS_CONFIG_CONFLICT', at(vl, 'sorry_server'), 'sorry_server', `${v.sorryServer} is not of the address family of virtual ${v.name} (only tunnel forwarding may mix families)`);
    }

    if (v.active) {
      if (v.address === undefined && !v.fwmark) error('LVS_CONFIG_MISSING', blockAt(vl), 'address', `virtual ${v.name} is active but has no address (address = VIP DEVICE)`);
      if (!v.fwmark && v.port === 0 && v.persistent === 0) error('LVS_CONFIG_CONFLICT', at(vl, 'port'), 'port', `port 0 (every port) needs persistent > 0, as ipvsadm (virtual ${v.name})`);
      const id = serviceName(cfg, v);
      if (id !== undefined) {
        const other = services.get(id);
        if (other) error('LVS_CONFIG_DUPLICATE', at(vl, v.fwmark ? 'fwmark' : 'address'), v.fwmark ? 'fwmark' : 'address', `virtual ${v.name} is the same service as virtual ${other.name}${other.layout ? ` (line ${other.layout.line})` : ''}: ${id}`);
        else services.set(id, v);
      }
    }

    // Real servers.
    const serverNames = new Map<string, RealServer>();
    const reals = new Map<string, RealServer>();
    let activeServers = 0;
    for (const s of v.servers) {
      const sl = s.layout;
      if (serverNames.has(s.name)) warn(blockAt(sl), 'server', `virtual ${v.name} has another server named ${s.name} (line ${serverNames.get(s.name)!.layout?.line ?? '?'})`);
      else serverNames.set(s.name, s);
      if (skip.has(s)) continue;
      if (s.lowerThreshold !== undefined && s.lowerThreshold > 0 && s.lowerThreshold > (s.upperThreshold ?? 0)) {
        error('LVS_CONFIG_CONFLICT', at(sl, 'lower_threshold'), 'lower_threshold', `${s.lowerThreshold} is above upper_threshold ${s.upperThreshold ?? 0} (server ${s.name})`);
      }
      if (!s.active || !v.active) continue;
      activeServers++;
      if (s.address === undefined) {
        error('LVS_CONFIG_MISSING', blockAt(sl), 'address', `server ${s.name} of virtual ${v.name} is active but has no address`);
        continue;
      }
      const method = realMethod(cfg, s);
      const sf = familyOf(cfg, s.address);
      if (vf !== undefined && sf !== undefined && sf !== vf && method !== 'tunnel') {
        error('LVS_CONFIG_CONFLICT', at(sl, 'address'), 'address', `${s.address} is ${sf === 'ipv6' ? 'IPv6' : 'IPv4'} but virtual ${v.name} is ${vf === 'ipv6' ? 'IPv6' : 'IPv4'} (only tunnel forwarding may mix families)`);
      }
      if (method !== 'nat' && !v.fwmark && s.port !== undefined && s.port !== v.port) {
        warn(at(sl, 'port'), 'port', `${method} forwarding cannot change the port: server ${s.name} gets port ${v.port} traffic (as ipvsadm did); port = ${s.port} is used for health checks only`);
      }
      if (method === 'nat' && !v.fwmark && s.port === 0 && v.port !== 0) error('LVS_CONFIG_CONFLICT', at(sl, 'port'), 'port', `a NAT real server needs a port (server ${s.name})`);
      const a = hostAddress(cfg, s.address);
      if (a !== undefined) {
        const id = `${a} ${directorPort(cfg, v, s)}`;
        const other = reals.get(id);
        if (other) error('LVS_CONFIG_DUPLICATE', at(sl, 'address'), 'address', `server ${s.name} is the same real server as ${other.name}${other.layout ? ` (line ${other.layout.line})` : ''} in virtual ${v.name}: ${id.replace(' ', ' port ')}`);
        else reals.set(id, s);
      }
    }
    if (v.active && activeServers === 0 && v.sorryServer === undefined) warn(blockAt(vl), 'virtual', `virtual ${v.name} has no active server`);
  }
  if (active === 0) warn({}, 'virtual', 'no active virtual server (Piranha\'s pulse refused to start so; lvsd starts with no services)');
  for (const f of cfg.failovers) warn(blockAt(f.layout), 'failover', `failover ${f.name} is ignored: lvsd implements virtual servers (service = lvs) only`);
  return { errors, warnings };
}

function writable(s: string): boolean {
  return !(s.includes('"') && s.includes("'")) && !/[\r\n]/.test(s);
}

function configErrorNoPos(code: LvsErrorCode, file: string, field: string, text: string): LvsError {
  return new LvsError(code, `${file} ${field}: ${text}`, { file, field });
}
