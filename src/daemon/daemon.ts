/**
 * lvsd, the daemon: lvs.cf -> a Director, reloaded on SIGHUP as a difference, and a control
 * socket (src/daemon/protocol.ts) through which lvsadm and other tools read and change the
 * running director. The command line (src/cli/lvsd.ts) wires signals and logging to this.
 */
import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { Estimator, type EstimatorCounters } from '../dataplane/estimator.js';
import type { ServiceKey, TrafficStats, VirtualServiceInfo, VirtualServiceSpec } from '../dataplane/types.js';
import { Director, serviceId, type ApplySummary } from '../director/director.js';
import type { DirectorConfig, DirectorRealServer, DirectorService, IoChoice, Logger } from '../director/types.js';
import { LvsError, isLvsError } from '../errors.js';
import { parseAddress } from '../net/address.js';
import type { ConfigMessage } from '../config/model.js';
import { loadConfig, saveRunningConfig } from './lvscf.js';
import { effectiveConfig, healthChecks, sorryServers, type Verdict } from './health.js';
import { HealthEngine, type ChangeEvent, type RealCheck, type SorryEvent, type WeightEvent } from '../health/engine.js';
import { native } from '../dataplane/native.js';
import { Host } from '../host/host.js';
import { configDigest, readKeyFile } from '../ha/index.js';
import { Failover, failoverRoles, type FailoverRoles, type FailoverVrrp } from '../ha/failover.js';
import { Guardian } from '../ha/guardian.js';
import { SyncChannel } from '../ha/sync.js';
import { SYNC_RECORD_BYTES } from '../dataplane/sync.js';
import { Replication } from './replication.js';
import { parseConfig, resolveConfig, directorConfig, writeConfigText } from '../config/index.js';
import { nodeIdOf } from '../ha/failover.js';
import { hostAddress } from '../config/model.js';
import { readFileSync } from 'node:fs';
import { dirname as pathDirname, resolve as pathResolve } from 'node:path';
import type { LvsConfig } from '../config/model.js';
import type { ServiceLike } from '../config/index.js';
import { CONTROL_PROTOCOL_VERSION, DEFAULT_CONTROL_SOCKET, type ControlMessage, type ControlResponse, type ListedService, type Rates } from './protocol.js';

export interface DaemonOptions {
  /** The lvs.cf to run (default /etc/sysconfig/ha/lvs.cf). */
  config: string;
  /** The control socket (default /run/lvsd/lvsd.sock). */
  socket?: string;
  /** Run the director in this named network namespace. The calling JS thread moves into it for
   *  good (health checks are Node sockets and must leave from there): in lvsd that is the whole
   *  point; an embedder that wants to stay put runs the daemon in a child process. */
  netns?: string;
  io?: IoChoice;
  workers?: number;
  logger?: Logger;
  /** Gratuitous ARP rounds per VIP (default 5, one second apart, as pulse). */
  announce?: { count?: number; intervalMs?: number };
  /** Failover: take over at start even if the partner is active (pulse --forceactive). */
  forceActive?: boolean;
}

export interface Daemon {
  readonly director: Director;
  /** The failover controller, when lvs.cf names a primary and a backup with backup_active = 1. */
  readonly failover: Failover | null;
  readonly socket: string;
  /** Re-read lvs.cf and apply the difference; a bad file changes nothing and says why. */
  reload(): Promise<{ ok: true; summary: ApplySummary } | { ok: false; error: LvsError }>;
  stop(): Promise<void>;
}

const silent: Logger = { info() {}, warn() {}, error() {}, debug() {} };
const ESTIMATOR_PERIOD_MS = 2000; // IPVS's estimator runs every 2 s
const MAX_REQUEST_BYTES = 1 << 20;

export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  const log = options.logger ?? silent;
  const socketPath = options.socket ?? DEFAULT_CONTROL_SOCKET;
  const overrides = (): Partial<DirectorConfig> => ({
    ...(options.netns ? { netns: options.netns } : {}),
    ...(options.io ? { io: options.io } : {}),
    ...(options.workers ? { workers: options.workers } : {}),
    ...(options.announce ? { announce: options.announce } : {}),
    logger: log,
  });
  // With --netns, lvsd lives in that namespace: the director's sockets (through the addon) and
  // Node's own (health checks) alike.
  if (options.netns) native().host.enterNetns(options.netns);
  const warn = (w: ConfigMessage) => log.warn({ event: 'config-warning', file: w.file, line: w.line, field: w.field }, w.message);
  const loaded = await loadConfig(options.config, warn);
  // What lvs.cf (and lvsadm) configure; the director runs it with the health verdicts applied.
  let configured: DirectorConfig = { ...loaded.director, ...overrides() };
  log.info({ event: 'config', file: options.config, services: configured.services.length }, `read ${options.config}: ${configured.services.length} active virtual server(s)`);
  const ha = planFailover(loaded.lvs, options, log);
  if (ha) Object.assign(configured, { standby: true, crashGuard: true });
  const verdicts = new Map<string, Verdict>();
  const engine = new HealthEngine({ logger: log });
  const planChecks = (lvs: LvsConfig): RealCheck[] => {
    for (const v of lvs.virtuals) {
      if (v.active && v.loadMonitor !== 'none') {
        log.warn({ event: 'config-warning', virtual: v.name, field: 'load_monitor' }, `virtual ${v.name}: load_monitor = ${v.loadMonitor} is not run (no rup/ruptime/rsh); run an agent on the reals and add "check = agent PORT" (docs/lvs.cf.md)`);
      }
    }
    const checks = healthChecks(lvs, configured);
    // A real lvsd has not checked yet is down (keepalived's alpha): no traffic before a pass.
    for (const c of checks) if (!verdicts.has(c.id)) verdicts.set(c.id, { up: false, quiesced: c.quiesce });
    return checks;
  };
  /** Forget the verdicts of reals no longer checked (once the configuration without them runs). */
  const forgetOthers = (checks: RealCheck[]) => {
    const ids = new Set(checks.map((c) => c.id));
    for (const id of verdicts.keys()) if (!ids.has(id)) verdicts.delete(id);
  };
  // Sorry servers: configured per service; standing in (active) while its reals are all down.
  let sorry = sorryServers(loaded.lvs, configured);
  const sorryActive = new Map<string, DirectorRealServer>();
  const engineSorry = () => Object.fromEntries([...sorry].map(([g, r]) => [g, { target: { address: parseAddress(r.address).text, port: r.port ?? 0 }, weight: r.weight ?? 1 }]));
  const effective = () => effectiveConfig(configured, verdicts, sorryActive);
  const checks = planChecks(loaded.lvs);
  const director = new Director(effective());
  await director.start();
  let failover: Failover | null = null;
  let guardian: Guardian | null = null;
  let channel: SyncChannel | null = null;
  let replication: Replication | null = null;
  if (ha) {
    guardian = new Guardian(options.netns, log);
    director.onAddressesChanged = (held) => guardian!.update(held);
    guardian.update(director.heldAddresses());
    failover = new Failover({ director, logger: log, ...ha.options });
    try {
      if (ha.sync) {
        channel = new SyncChannel({ local: ha.roles.local, partner: ha.roles.partner, port: ha.sync.port, key: ha.sync.key, recordBytes: SYNC_RECORD_BYTES, nodeId: nodeIdOf(ha.roles.local.public), logger: log });
        await channel.start();
        replication = new Replication({ channel, failover, director, logger: log, configFile: options.config, applyConfig: (text) => applyPushedConfig(text) });
      }
      await failover.start();
    } catch (e) {
      await failover.stop().catch(() => {});
      await channel?.close();
      await director.stop();
      guardian.close();
      throw e;
    }
  }

  /** The backup's side of config sync: the active router's lvs.cf, validated whole, written
   *  as its exact bytes and reloaded; anything wrong changes nothing and says what. */
  async function applyPushedConfig(text: string): Promise<{ ok: boolean; errors: string[] }> {
    const errorsOf = (e: unknown) => ((e as { errors?: Error[] }).errors ?? [e as Error]).map((x) => x.message);
    try {
      const parsed = parseConfig(text, { file: options.config });
      const resolved = await resolveConfig(parsed.config, { file: options.config });
      directorConfig(resolved, { file: options.config });
      const next = planFailover(resolved, options, log);
      if (!next || JSON.stringify(next.roles) !== JSON.stringify(ha!.roles)) {
        return { ok: false, errors: ['it changes the primary/backup addresses or turns failover off for this router; copy it by hand and restart lvsd'] };
      }
    } catch (e) {
      return { ok: false, errors: errorsOf(e) };
    }
    const old = readFileSync(options.config, 'utf8');
    await writeConfigText(options.config, text);
    const r = await reload();
    if (!r.ok) {
      await writeConfigText(options.config, old);
      return { ok: false, errors: errorsOf(r.error) };
    }
    return { ok: true, errors: [] };
  }

  // Verdicts arrive one by one; each burst becomes one difference for the director.
  let applyPending = false;
  const applyVerdicts = () => {
    if (applyPending) return;
    applyPending = true;
    setImmediate(() => {
      applyPending = false;
      director
        .apply(effective())
        .then(() => replication?.directorChanged())
        .catch((e: Error) => log.error({ event: 'health-apply-failed', err: e.message }, `applying health results failed: ${e.message}`));
    });
  };
  engine.on('change', (ev: ChangeEvent) => {
    verdicts.set(ev.id, { up: ev.up, quiesced: ev.weight === 0 });
    applyVerdicts();
  });
  engine.on('weight', (ev: WeightEvent) => {
    const v = verdicts.get(ev.id);
    if (!v) return;
    v.agentWeight = ev.weight;
    applyVerdicts();
  });
  engine.on('sorry', (ev: SorryEvent) => {
    const r = sorry.get(ev.group);
    if (ev.active && r) sorryActive.set(ev.group, r);
    else sorryActive.delete(ev.group);
    log.warn({ event: 'sorry-server', group: ev.group, active: ev.active }, ev.active ? `${ev.group}: every real server is down; sorry server ${ev.server.target.address} takes over` : `${ev.group}: a real server is back; sorry server out`);
    applyVerdicts();
  });
  engine.set(checks, engineSorry());

  const rates = new RateBook();
  const timer = setInterval(() => rates.sample(director), ESTIMATOR_PERIOD_MS);
  timer.unref();

  let server: Server;
  try {
    server = await listen(socketPath, (sock) => serve(sock));
  } catch (e) {
    clearInterval(timer);
    engine.stop();
    await failover?.stop();
    await channel?.close();
    await director.stop();
    guardian?.close();
    throw e;
  }
  log.info({ event: 'control', socket: socketPath }, `control socket ${socketPath}`);

  async function reload(): Promise<{ ok: true; summary: ApplySummary } | { ok: false; error: LvsError }> {
    try {
      const next = await loadConfig(options.config, warn);
      const previous = configured;
      configured = { ...next.director, ...overrides(), ...(ha ? { standby: true, crashGuard: true } : {}) };
      if (ha) checkFailoverUnchanged(ha, next.lvs, options, log);
      let summary: ApplySummary;
      let checks: RealCheck[];
      try {
        // New reals are seeded down before the director sees them: they join once checked.
        checks = planChecks(next.lvs);
        summary = await director.apply(effective());
      } catch (e) {
        configured = previous;
        throw e;
      }
      forgetOthers(checks);
      sorry = sorryServers(next.lvs, configured);
      for (const g of [...sorryActive.keys()]) if (!sorry.has(g)) sorryActive.delete(g);
      engine.set(checks, engineSorry());
      applyVerdicts();
      if (failover) failover.setConfig(next.lvs.globals.serialNo, digestOf(options.config));
      replication?.configChanged();
      log.info({ event: 'reload', file: options.config, ...summary }, `reloaded ${options.config}`);
      return { ok: true, summary };
    } catch (e) {
      const error = isLvsError(e) ? e : new LvsError('LVS_INVALID_ARGUMENT', (e as Error).message, { cause: e });
      log.error({ event: 'reload-failed', file: options.config, code: error.code, err: error.message }, `reload of ${options.config} refused, nothing changed: ${error.message}`);
      return { ok: false, error };
    }
  }

  function serve(sock: Socket): void {
    // A request is one line; one that grows past 1 MiB without ending is not a request.
    let sinceNewline = 0;
    sock.on('data', (chunk: Buffer) => {
      const at = chunk.lastIndexOf(10);
      sinceNewline = at >= 0 ? chunk.length - at - 1 : sinceNewline + chunk.length;
      if (sinceNewline > MAX_REQUEST_BYTES) {
        log.warn({ event: 'control-refused', bytes: sinceNewline }, 'control socket: a request line over 1 MiB; connection closed');
        sock.destroy();
      }
    });
    const lines = createInterface({ input: sock, crlfDelay: Infinity });
    let queue = Promise.resolve();
    lines.on('line', (line) => {
      queue = queue.then(async () => {
        const reply = await handle(line);
        if (!sock.destroyed) sock.write(`${JSON.stringify(reply)}\n`);
      });
    });
    sock.on('error', () => sock.destroy());
  }

  async function handle(line: string): Promise<ControlResponse> {
    let msg: ControlMessage;
    try {
      msg = JSON.parse(line) as ControlMessage;
    } catch {
      return { v: CONTROL_PROTOCOL_VERSION, id: 0, ok: false, error: { code: 'LVS_PROTOCOL', message: 'not a JSON message' } };
    }
    const id = typeof msg.id === 'number' ? msg.id : 0;
    if (msg.v !== CONTROL_PROTOCOL_VERSION) {
      return { v: CONTROL_PROTOCOL_VERSION, id, ok: false, error: { code: 'LVS_PROTOCOL', message: `protocol version ${String(msg.v)} is not spoken here (lvsd speaks ${CONTROL_PROTOCOL_VERSION})` } };
    }
    try {
      return { v: CONTROL_PROTOCOL_VERSION, id, ok: true, result: await dispatch(msg) };
    } catch (e) {
      const err = e as LvsError;
      return { v: CONTROL_PROTOCOL_VERSION, id, ok: false, error: { code: typeof err.code === 'string' ? err.code : 'LVS_INVALID_ARGUMENT', message: err.message, ...(err.field ? { field: err.field } : {}) } };
    }
  }

  async function change(what: string, edit: (c: DirectorConfig) => void): Promise<null> {
    const next = structuredClone({ ...configured, logger: undefined }) as DirectorConfig;
    edit(next);
    const summary = await director.apply(effectiveConfig({ ...next, logger: log }, verdicts, sorryActive));
    configured = { ...next, logger: log };
    log.info({ event: 'control-change', what, ...summary }, `${what} (control socket)`);
    return null;
  }

  async function dispatch(m: ControlMessage): Promise<unknown> {
    const dp = director.dataplane!;
    switch (m.op) {
      case 'hello':
        return { version: CONTROL_PROTOCOL_VERSION, daemon: 'lvsd', pid: process.pid, config: options.config };
      case 'list':
        return { tableSize: dp.info().tableCapacity, services: rates.decorate(dp.listServices()) };
      case 'connections':
        return dp.listConnections();
      case 'timeouts':
        return dp.getTimeouts();
      case 'health':
        return engine.status();
      case 'status':
        return { director: director.status(), failover: failover ? { ...failover.status(), sync: replication?.status() ?? null } : null };
      case 'set-timeouts':
        return change('timeouts set', (c) => {
          c.timeouts = { ...c.timeouts, ...Object.fromEntries(Object.entries(m.timeouts ?? {}).filter(([, v]) => v)) };
        });
      case 'add-service':
        return change(`service ${describeKey(m.service)} added`, (c) => {
          if (findService(c, m.service)) throw new LvsError('LVS_SERVICE_EXISTS', `Service already exists: ${describeKey(m.service)}`, { field: 'service' });
          c.services.push(toDirectorService(m.service));
        });
      case 'edit-service':
        return change(`service ${describeKey(m.key)} edited`, (c) => {
          const s = needService(c, m.key);
          const ch = m.changes ?? {};
          if (ch.scheduler !== undefined) s.scheduler = ch.scheduler;
          if (ch.flags !== undefined) s.flags = ch.flags;
          if (ch.persistence !== undefined) {
            if (ch.persistence === false) delete s.persistence;
            else s.persistence = ch.persistence;
          }
          if (ch.maglevTableSize !== undefined) s.maglevTableSize = ch.maglevTableSize;
          if (ch.quiesce !== undefined) s.quiesce = ch.quiesce;
        });
      case 'delete-service':
        return change(`service ${describeKey(m.key)} deleted`, (c) => {
          const s = needService(c, m.key);
          c.services = c.services.filter((x) => x !== s);
        });
      case 'clear':
        return change('every service deleted', (c) => {
          c.services = [];
        });
      case 'add-real':
        return change(`real ${m.real?.address} added to ${describeKey(m.key)}`, (c) => {
          const s = needService(c, m.key);
          if (findReal(s, m.real)) throw new LvsError('LVS_REAL_EXISTS', `Destination already exists: ${m.real.address}`, { field: 'real' });
          const r: DirectorRealServer = { address: m.real.address };
          if (m.real.port !== undefined) r.port = m.real.port;
          if (m.real.weight !== undefined) r.weight = m.real.weight;
          if (m.real.method !== undefined) r.method = m.real.method;
          if (m.real.upperThreshold !== undefined) r.upperThreshold = m.real.upperThreshold;
          if (m.real.lowerThreshold !== undefined) r.lowerThreshold = m.real.lowerThreshold;
          s.reals.push(r);
        });
      case 'edit-real':
        return change(`real ${m.real?.address} of ${describeKey(m.key)} edited`, (c) => {
          const r = needReal(needService(c, m.key), m.real);
          const ch = m.changes ?? {};
          if (ch.weight !== undefined) r.weight = ch.weight;
          if (ch.method !== undefined) r.method = ch.method;
          if (ch.upperThreshold !== undefined) r.upperThreshold = ch.upperThreshold;
          if (ch.lowerThreshold !== undefined) r.lowerThreshold = ch.lowerThreshold;
          if (ch.slowStart !== undefined) r.slowStart = ch.slowStart;
        });
      case 'delete-real':
        return change(`real ${m.real?.address} deleted from ${describeKey(m.key)}`, (c) => {
          const s = needService(c, m.key);
          const r = needReal(s, m.real);
          s.reals = s.reals.filter((x) => x !== r);
        });
      case 'zero':
        if (m.key) needService(configured, m.key);
        dp.zero(m.key);
        rates.zero(m.key ? serviceId(needService(configured, m.key)) : undefined);
        return null;
      case 'write-config': {
        const saved = await saveRunningConfig(options.config, m.file ?? options.config, savedView(dp.listServices(), configured), configured);
        log.info({ event: 'write-config', file: saved.file, serial: saved.serial }, `running configuration written to ${saved.file} (serial_no ${saved.serial})`);
        return saved;
      }
      default:
        throw new LvsError('LVS_PROTOCOL', `unknown operation ${JSON.stringify((m as { op?: unknown }).op)}`, { field: 'op' });
    }
  }

  let stopped = false;
  return {
    director,
    failover,
    socket: socketPath,
    reload,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      engine.stop();
      // Stand down first: the partner hears STOPPED and takes over at once.
      await failover?.stop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      try {
        unlinkSync(socketPath);
      } catch {
        // Already gone.
      }
      await director.stop();
      guardian?.close();
    },
  };
}

interface FailoverPlan {
  roles: FailoverRoles;
  /** Connection and configuration sync (needs the key; sync_port 0 turns it off). */
  sync: { port: number; key: Buffer } | null;
  options: Omit<ConstructorParameters<typeof Failover>[0], 'director' | 'logger'>;
}

function digestOf(file: string): Buffer {
  try {
    return configDigest(readFileSync(file));
  } catch {
    return Buffer.alloc(16);
  }
}

/** The key file: heartbeat_key, relative to lvs.cf's directory; default heartbeat.key there. */
export function keyFilePath(configFile: string, heartbeatKey: string | undefined): string {
  return pathResolve(pathDirname(pathResolve(configFile)), heartbeatKey ?? 'heartbeat.key');
}

/** What failover lvs.cf asks for on this router (null: none), with every refusal spelled out. */
function planFailover(lvs: LvsConfig, options: DaemonOptions, log: Logger): FailoverPlan | null {
  const g = lvs.globals;
  const host = (h: string | undefined) => (h === undefined ? undefined : hostAddress(lvs, h));
  const locals = new Host(options.netns).addresses().map((a) => a.address);
  const roles = failoverRoles({
    ...(host(g.primary) !== undefined ? { primary: host(g.primary)! } : {}),
    ...(host(g.primaryPrivate) !== undefined ? { primaryPrivate: host(g.primaryPrivate)! } : {}),
    ...(host(g.backup) !== undefined ? { backup: host(g.backup)! } : {}),
    ...(host(g.backupPrivate) !== undefined ? { backupPrivate: host(g.backupPrivate)! } : {}),
    backupActive: g.backupActive,
  }, locals);
  if (roles === 'backup-inactive') {
    // pulse's words: a backup with backup_active = 0 has nothing to do.
    throw new LvsError('LVS_FAILOVER', 'We are backup node and backup is marked inactive -- exiting pulse (lvs.cf backup_active = 0)', { field: 'backup_active' });
  }
  if (!roles) return null;
  let vrrp: FailoverVrrp | undefined;
  if (g.election === 'vrrp') {
    const hostView = new Host(options.netns);
    const own = hostView.addresses().find((a) => parseAddress(a.address).text === roles.local.public);
    const link = own ? hostView.links().find((l) => l.ifindex === own.ifindex) : undefined;
    if (!link) throw new LvsError('LVS_FAILOVER', `election = vrrp: no device holds this router's address ${roles.local.public}`, { field: 'election' });
    const family = parseAddress(roles.local.public).family === 'ipv4' ? 4 : 6;
    const dc = directorConfig(lvs, { file: options.config });
    const vips = [...new Set(dc.services.flatMap((s) => ('fwmark' in s ? s.addresses ?? [] : [s.address])).map((a) => parseAddress(a)).filter((a) => (a.family === 'ipv4' ? 4 : 6) === family).map((a) => a.text))];
    const advert = Math.round(g.keepalive * 100) * 10;
    if (advert < 10 || advert > 40950) throw new LvsError('LVS_FAILOVER', `election = vrrp: keepalive ${g.keepalive} s is the advertisement interval, which VRRPv3 carries in centiseconds: 0.01 to 40.95 s`, { field: 'keepalive' });
    vrrp = { interface: link.name, family, vrid: g.vrrpId, advertIntervalMs: advert, addresses: vips, ...(options.netns ? { netns: options.netns } : {}) };
    log.info({ event: 'failover', election: 'vrrp', interface: link.name, vrid: g.vrrpId, priority: g.priority }, `election = vrrp: VRRPv3 on ${link.name}, virtual router ${g.vrrpId}, priority ${g.priority}, advertisements every ${advert} ms`);
  }
  let key: Buffer | undefined;
  // The key authenticates pulse heartbeats (lvsd format) and the sync channel; VRRP has no
  // authentication of its own (RFC 5798), so with VRRP and sync off no key is needed.
  const needKey = (g.election === 'pulse' && g.heartbeatFormat === 'lvsd') || (g.syncPort !== 0 && g.heartbeatFormat === 'lvsd');
  if (needKey) {
    const path = keyFilePath(options.config, g.heartbeatKey);
    try {
      key = readKeyFile(path);
    } catch (e) {
      const err = e as LvsError;
      throw new LvsError('LVS_FAILOVER', `failover needs the key both routers share (lvs.cf heartbeat_key): ${err.message}. Create it with: head -c 32 /dev/urandom | base64 > ${path}; chmod 600 ${path}; and copy it to the partner`, { field: 'heartbeat_key', file: path, cause: e });
    }
  } else if (g.election === 'pulse') {
    log.warn({ event: 'failover', format: 'piranha' }, 'heartbeat_format = piranha: heartbeats are not authenticated (anyone who can send UDP from the partner\'s address can make this router fail over); use it only while migrating from pulse');
  }
  let sync: FailoverPlan['sync'] = null;
  if (g.syncPort === 0) log.warn({ event: 'failover', field: 'sync_port' }, 'sync_port = 0: connections and lvs.cf are not synced; a takeover breaks established connections');
  else if (!key) log.warn({ event: 'failover', field: 'heartbeat_key' }, 'no heartbeat_key (heartbeat_format = piranha): connection and lvs.cf sync are off, as they need the shared key');
  else sync = { port: g.syncPort, key };
  return {
    roles,
    sync,
    options: {
      roles,
      format: g.heartbeatFormat,
      ...(key ? { key } : {}),
      port: g.heartbeatPort,
      keepalive: g.keepalive,
      deadtime: g.deadtime,
      priority: g.priority,
      preempt: options.forceActive ?? g.preempt ?? g.election === 'vrrp',
      ...(vrrp ? { vrrp } : {}),
      ...(g.activeCmd !== undefined ? { activeCmd: g.activeCmd } : {}),
      ...(g.inactiveCmd !== undefined ? { inactiveCmd: g.inactiveCmd } : {}),
      serialNo: g.serialNo,
      configDigest: digestOf(options.config),
    },
  };
}

/** Failover settings take effect at start only; a reload that changes them says so. */
function checkFailoverUnchanged(ha: FailoverPlan, lvs: LvsConfig, options: DaemonOptions, log: Logger): void {
  let next: FailoverPlan | null = null;
  try {
    next = planFailover(lvs, options, log);
  } catch (e) {
    log.warn({ event: 'failover', err: (e as Error).message }, `reload: the new failover settings would not run (${(e as Error).message}); the running ones stay until lvsd restarts`);
    return;
  }
  const keys = ['port', 'keepalive', 'deadtime', 'priority', 'format'] as const;
  const changed = !next || JSON.stringify(next.roles) !== JSON.stringify(ha.roles) || keys.some((k) => next!.options[k] !== ha.options[k]);
  if (changed) log.warn({ event: 'failover', field: 'failover' }, 'reload: failover settings (primary/backup addresses, heartbeat_port, keepalive, deadtime, priority, heartbeat_format) changed; they take effect when lvsd restarts');
}

/**
 * What --write-config saves: the running services, with each real's configured weight rather
 * than what health checks made of it, and reals the checks took out still there (they are
 * configured; they are only down).
 */
function savedView(running: VirtualServiceInfo[], configured: DirectorConfig): ServiceLike[] {
  return running.map((svc) => {
    const conf = configured.services.find((s) => serviceId(s) === infoId(svc));
    if (!conf) return svc;
    const dflt = 'fwmark' in conf ? 0 : conf.port;
    const key = (address: string, port: number) => `${parseAddress(address).text} ${port}`;
    const have = new Map(svc.reals.map((r) => [key(r.address, r.port), r]));
    const reals = conf.reals.map((r) => {
      const port = r.port ?? dflt;
      const live = have.get(key(r.address, port));
      const weight = r.weight ?? 1;
      if (live) return { ...live, weight };
      return { address: parseAddress(r.address).text, port, weight, method: r.method ?? 'direct', upperThreshold: r.upperThreshold ?? 0, lowerThreshold: r.lowerThreshold ?? 0 };
    });
    // Reals added at run time (lvsadm) that are not in `configured` cannot exist: lvsadm edits it.
    return { ...svc, reals };
  });
}

/** Listen on a unix socket, mode 0600 in a 0700 directory; a stale socket file is replaced, a live one is an error. */
async function listen(path: string, onConnection: (s: Socket) => void): Promise<Server> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  if (existsSync(path)) {
    const alive = await new Promise<boolean>((resolve) => {
      const c = connect(path);
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (alive) throw new LvsError('LVS_HOST', `another lvsd is already listening on ${path}`, { field: 'socket' });
    unlinkSync(path);
  }
  const server = createServer(onConnection);
  const old = process.umask(0o177); // the socket is born 0600: no window with wider access
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
  } finally {
    process.umask(old);
  }
  chmodSync(path, 0o600);
  server.unref();
  return server;
}

function describeKey(k: ServiceKey | VirtualServiceSpec | undefined): string {
  if (!k) return '(none)';
  if ('fwmark' in k) return `FWM ${k.fwmark}`;
  const a = parseAddress(k.address).text;
  return `${k.protocol.toUpperCase()} ${a.includes(':') ? `[${a}]` : a}:${k.port}`;
}

function sameService(s: DirectorService, k: ServiceKey): boolean {
  if ('fwmark' in k) return 'fwmark' in s && s.fwmark === k.fwmark && (s.family ?? 'ipv4') === (k.family ?? 'ipv4');
  return !('fwmark' in s) && s.protocol === k.protocol && s.port === k.port && parseAddress(s.address).text === parseAddress(k.address).text;
}

function findService(c: DirectorConfig, k: ServiceKey): DirectorService | undefined {
  if (!k || typeof k !== 'object') throw new LvsError('LVS_INVALID_ARGUMENT', 'service: expected a service key', { field: 'service' });
  return c.services.find((s) => sameService(s, k));
}

function needService(c: DirectorConfig, k: ServiceKey): DirectorService {
  const s = findService(c, k);
  if (!s) throw new LvsError('LVS_NO_SUCH_SERVICE', `Service not defined: ${describeKey(k)}`, { field: 'service' });
  return s;
}

function findReal(s: DirectorService, r: { address: string; port?: number }): DirectorRealServer | undefined {
  if (!r || typeof r.address !== 'string') throw new LvsError('LVS_INVALID_ARGUMENT', 'real: expected {address, port?}', { field: 'real' });
  const dflt = 'fwmark' in s ? 0 : s.port;
  const want = `${parseAddress(r.address).text} ${r.port ?? dflt}`;
  return s.reals.find((x) => `${parseAddress(x.address).text} ${x.port ?? dflt}` === want);
}

function needReal(s: DirectorService, r: { address: string; port?: number }): DirectorRealServer {
  const x = findReal(s, r);
  if (!x) throw new LvsError('LVS_NO_SUCH_REAL', `No such destination: ${r.address}${r.port !== undefined ? `:${r.port}` : ''}`, { field: 'real' });
  return x;
}

function toDirectorService(spec: VirtualServiceSpec): DirectorService {
  const { scheduler, flags, persistence, maglevTableSize, quiesce } = spec;
  const opts = {
    ...(scheduler !== undefined ? { scheduler } : {}),
    ...(flags !== undefined ? { flags } : {}),
    ...(persistence !== undefined && persistence !== false ? { persistence } : {}),
    ...(maglevTableSize !== undefined ? { maglevTableSize } : {}),
    ...(quiesce !== undefined ? { quiesce } : {}),
    reals: [],
  };
  if ('fwmark' in spec) return { fwmark: spec.fwmark, ...(spec.family ? { family: spec.family } : {}), ...opts };
  return { protocol: spec.protocol, address: spec.address, port: spec.port, ...opts };
}

/** IPVS's estimator for every service and real, sampled every 2 s (ipvsadm --rate). */
class RateBook {
  private estimators = new Map<string, Estimator>();

  sample(director: Director): void {
    const dp = director.dataplane;
    if (!dp) return;
    const seen = new Set<string>();
    for (const s of dp.listServices()) {
      const sid = infoId(s);
      this.feed(sid, s.stats, seen);
      for (const r of s.reals) this.feed(`${sid} -> ${r.address} ${r.port}`, r.stats, seen);
    }
    for (const k of this.estimators.keys()) if (!seen.has(k)) this.estimators.delete(k);
  }

  decorate(services: ReturnType<NonNullable<Director['dataplane']>['listServices']>): ListedService[] {
    return services.map((s) => {
      const sid = infoId(s);
      return { ...s, rates: this.rates(sid), reals: s.reals.map((r) => ({ ...r, rates: this.rates(`${sid} -> ${r.address} ${r.port}`) })) };
    });
  }

  zero(sid?: string): void {
    for (const [k, e] of this.estimators) if (!sid || k === sid || k.startsWith(`${sid} -> `)) e.reset();
  }

  private feed(key: string, stats: TrafficStats, seen: Set<string>): void {
    seen.add(key);
    let e = this.estimators.get(key);
    if (!e) {
      e = new Estimator();
      this.estimators.set(key, e);
    }
    e.sample(counters(stats));
  }

  private rates(key: string): Rates {
    return this.estimators.get(key)?.rates() ?? { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 };
  }
}

function infoId(s: VirtualServiceInfo): string {
  return s.fwmark ? `FWM ${s.fwmark} ${s.family ?? 'ipv4'}` : `${String(s.protocol).toUpperCase()} ${s.address} ${s.port}`;
}

function counters(s: TrafficStats): EstimatorCounters {
  return { conns: s.connections, inpkts: s.packetsIn, outpkts: s.packetsOut, inbytes: s.bytesIn, outbytes: s.bytesOut };
}
