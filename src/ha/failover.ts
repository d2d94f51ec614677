/**
 * Failover: Piranha's pulse inside lvsd. One router is active (it holds the VIPs and the NAT
 * router address, and directs), the other is the backup (its dataplane runs with the same
 * services and the connections the active syncs to it, addresses down). The heartbeat
 * (src/ha/heartbeat.ts) and the election (src/ha/election.ts), or VRRPv3 (src/ha/vrrp.ts),
 * decide; this module carries out what they decide: Director.setActive, active_cmd /
 * inactive_cmd, the heartbeat's advertised state, and which way connection state flows.
 *
 * The pieces that move state (the sync channel, config sync) are attached by the daemon
 * through `onActive`/`onStandby` hooks, so this module stays about the election.
 */
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createHash } from 'node:crypto';
import type { Director } from '../director/director.js';
import type { Logger } from '../director/types.js';
import { LvsError } from '../errors.js';
import { parseAddress } from '../net/address.js';
import { Election, type ElectionAction, type ElectionInput } from './election.js';
import { Heartbeat, type Clock, type HeartbeatEvent, type RejectedEvent } from './heartbeat.js';
import { Vrrp, type VrrpStats } from './vrrp.js';

/** Who is who, from lvs.cf's primary/backup (and _private) addresses and this host's addresses. */
export interface FailoverRoles {
  isPrimary: boolean;
  local: { public: string; private?: string };
  partner: { public: string; private?: string };
}

export interface FailoverGlobals {
  primary?: string;
  primaryPrivate?: string;
  backup?: string;
  backupPrivate?: string;
  backupActive: boolean;
}

/**
 * Whether this lvs.cf asks for failover and, if it does, this router's role. null: no
 * failover (no backup, or backup_active = 0 on the primary: Piranha's primary then runs alone).
 * Throws LVS_FAILOVER when the file names a pair but this host is neither of them.
 */
export function failoverRoles(g: FailoverGlobals, localAddresses: string[]): FailoverRoles | 'backup-inactive' | null {
  if (g.backup === undefined || g.primary === undefined) return null;
  const mine = new Set(localAddresses.map((a) => parseAddress(a).text));
  const norm = (a: string | undefined) => (a === undefined ? undefined : parseAddress(a).text);
  const primary = { public: norm(g.primary)!, private: norm(g.primaryPrivate) };
  const backup = { public: norm(g.backup)!, private: norm(g.backupPrivate) };
  const isPrimary = mine.has(primary.public);
  const isBackup = mine.has(backup.public);
  if (isPrimary && isBackup) throw new LvsError('LVS_FAILOVER', `this host has both the primary (${primary.public}) and the backup (${backup.public}) address`, { field: 'primary' });
  if (!isPrimary && !isBackup) {
    throw new LvsError('LVS_FAILOVER', `this host has neither the primary address ${primary.public} nor the backup address ${backup.public} (lvs.cf primary/backup): which router is this?`, { field: 'primary' });
  }
  if (!g.backupActive) return isPrimary ? null : 'backup-inactive';
  const strip = (r: { public: string; private: string | undefined }) => ({ public: r.public, ...(r.private !== undefined && r.private !== r.public ? { private: r.private } : {}) });
  const self = isPrimary ? primary : backup;
  if (self.private !== undefined && self.private !== self.public && !mine.has(self.private)) {
    throw new LvsError('LVS_FAILOVER', `this router's private address ${self.private} (lvs.cf ${isPrimary ? 'primary_private' : 'backup_private'}) is not on any of its interfaces`, { field: isPrimary ? 'primary_private' : 'backup_private' });
  }
  return { isPrimary, local: strip(self), partner: strip(isPrimary ? backup : primary) };
}

/** A node id both routers derive the same way: from the node's own public address. */
export function nodeIdOf(address: string): number {
  return createHash('sha256').update(parseAddress(address).text).digest().readUInt32BE(0);
}

/** VRRPv3 election (lvs.cf election = vrrp) instead of pulse heartbeats. */
export interface FailoverVrrp {
  /** The device the router's public address is on: adverts go out there. */
  interface: string;
  family: 4 | 6;
  vrid: number;
  advertIntervalMs: number;
  /** The VIPs of that family (what the adverts list; keepalived compares them). */
  addresses: string[];
  netns?: string;
}

export interface FailoverOptions {
  director: Director;
  roles: FailoverRoles;
  logger: Logger;
  /** Set: elect with VRRPv3 (priority, preempt) instead of pulse heartbeats. */
  vrrp?: FailoverVrrp;
  /** 'lvsd' (authenticated, default) or 'piranha' (pulse's magics). */
  format?: 'lvsd' | 'piranha';
  key?: Buffer;
  port?: number;
  keepalive?: number;
  deadtime?: number;
  priority?: number;
  /** Take over at start (pulse --forceactive). */
  preempt?: boolean;
  activeCmd?: string;
  inactiveCmd?: string;
  serialNo?: number;
  configDigest?: Buffer;
  clock?: Clock;
}

export interface FailoverStatus {
  mode: 'pulse' | 'vrrp';
  vrrp?: { state: string; vrid: number; priority: number; stats: VrrpStats };
  role: 'primary' | 'backup';
  active: boolean;
  partnerAlive: boolean;
  local: FailoverRoles['local'];
  partner: FailoverRoles['partner'];
  heartbeats: { sent: number; received: number; rejected: Record<string, number> };
  transitions: number;
}

/**
 * Events: 'active' and 'standby' (after the director changed), 'heartbeat' (HeartbeatEvent),
 * 'rejected' (RejectedEvent), 'exit' (the election asks lvsd to stop: a backup with
 * backup_active = 0).
 */
export class Failover extends EventEmitter {
  /** pulse mode: the heartbeat transport (null in VRRP mode). */
  readonly heartbeat: Heartbeat | null = null;
  /** VRRP mode: the VRRP instance (null in pulse mode). */
  readonly vrrp: Vrrp | null = null;
  private readonly election: Election;
  private vrrpActive = false;
  private readonly log: Logger;
  private queue: Promise<void> = Promise.resolve();
  private transitions = 0;
  private stopped = false;

  constructor(private readonly opts: FailoverOptions) {
    super();
    this.log = opts.logger;
    const nodeId = nodeIdOf(opts.roles.local.public);
    this.election = new Election({ isPrimary: opts.roles.isPrimary, preempt: opts.preempt ?? false, backupActive: true, priority: opts.priority ?? 100, nodeId });
    if (opts.vrrp) {
      const v = opts.vrrp;
      this.vrrp = new Vrrp({
        ...(v.netns ? { netns: v.netns } : {}),
        interface: v.interface,
        family: v.family,
        vrid: v.vrid,
        priority: opts.priority ?? 100,
        advertIntervalMs: v.advertIntervalMs,
        preempt: opts.preempt ?? true,
        addresses: v.addresses,
        logger: this.log,
        ...(opts.clock ? { clock: opts.clock } : {}),
      });
      this.vrrp.on('master', () => this.vrrpTransition(true, 'VRRP master: activating lvs'));
      this.vrrp.on('backup', () => this.vrrpTransition(false, 'VRRP backup: deactivating LVS'));
      this.vrrp.on('stopped', () => this.vrrpTransition(false, 'VRRP stopped: deactivating LVS'));
      this.vrrp.on('rejected', (ev) => this.emit('rejected', ev));
      return;
    }
    this.heartbeat = new Heartbeat({
      mode: opts.format ?? 'lvsd',
      local: opts.roles.local,
      partner: opts.roles.partner,
      ...(opts.port !== undefined ? { port: opts.port } : {}),
      ...(opts.keepalive !== undefined ? { keepalive: opts.keepalive } : {}),
      ...(opts.deadtime !== undefined ? { deadtime: opts.deadtime } : {}),
      ...(opts.key ? { key: opts.key } : {}),
      nodeId,
      priority: opts.priority ?? 100,
      isPrimary: opts.roles.isPrimary,
      preempt: opts.preempt ?? false,
      ...(opts.serialNo !== undefined ? { serialNo: opts.serialNo } : {}),
      ...(opts.configDigest ? { configDigest: opts.configDigest } : {}),
      ...(opts.clock ? { clock: opts.clock } : {}),
      log: (level, message) => (level === 'warn' ? this.log.warn({ event: 'heartbeat' }, message) : this.log.info({ event: 'heartbeat' }, message)),
    });
    const hb = this.heartbeat;
    hb.on('dead', () => this.input({ type: 'dead' }));
    hb.on('heartbeat', (ev: HeartbeatEvent) => {
      this.emit('heartbeat', ev);
      const peer = ev.format === 'lvsd' && ev.isPrimary !== undefined ? { isPrimary: ev.isPrimary, priority: ev.priority ?? 100, nodeId: ev.nodeId ?? 0 } : undefined;
      this.input({ type: 'heartbeat', state: ev.state, ...(peer ? { peer } : {}) });
    });
    hb.on('rejected', (ev: RejectedEvent) => this.emit('rejected', ev));
  }

  get active(): boolean {
    return this.vrrp ? this.vrrpActive : this.election.active;
  }

  /** Start heartbeats and the election; the director must be running (in standby). */
  async start(): Promise<void> {
    const { roles } = this.opts;
    this.log.info({ event: 'failover', role: roles.isPrimary ? 'primary' : 'backup', local: roles.local, partner: roles.partner, keepalive: this.opts.keepalive, deadtime: this.opts.deadtime },
      `failover: this router is the ${roles.isPrimary ? 'primary' : 'backup'}; partner ${roles.partner.public}${roles.partner.private ? ` / ${roles.partner.private}` : ''}`);
    // pulse runs inactive_cmd at start: whatever an earlier run left active is undone.
    this.runCommand(this.opts.inactiveCmd, 'inactive_cmd');
    if (this.vrrp) {
      await this.vrrp.start();
      return;
    }
    await this.heartbeat!.start();
    this.input({ type: 'start' });
    await this.queue;
  }

  /** Stand down (addresses down, STOPPED sent so the partner takes over at once) and stop. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    if (this.vrrp) {
      // Priority 0 first (the backup takes over after its skew time), then our addresses down.
      await this.vrrp.stop();
      await this.queue;
      this.stopped = true;
      return;
    }
    this.input({ type: 'stop' });
    this.stopped = true;
    await this.queue;
    await this.heartbeat!.stop();
  }

  /** A new configuration runs (reload, pushed lvs.cf): heartbeats carry its serial and digest. */
  setConfig(serialNo: number, digest: Buffer): void {
    this.heartbeat?.setConfig(serialNo, digest);
  }

  status(): FailoverStatus {
    const s = this.heartbeat?.stats ?? { sent: 0, received: 0, rejected: {} };
    return {
      mode: this.vrrp ? 'vrrp' : 'pulse',
      ...(this.vrrp ? { vrrp: { state: this.vrrp.state, vrid: this.opts.vrrp!.vrid, priority: this.opts.priority ?? 100, stats: this.vrrp.stats } } : {}),
      role: this.opts.roles.isPrimary ? 'primary' : 'backup',
      active: this.active,
      // VRRP: a backup hears a master; a master hears nobody (or a lower priority).
      partnerAlive: this.heartbeat ? this.heartbeat.alive : this.vrrp?.state === 'backup',
      local: this.opts.roles.local,
      partner: this.opts.roles.partner,
      heartbeats: { sent: s.sent, received: s.received, rejected: { ...s.rejected } as Record<string, number> },
      transitions: this.transitions,
    };
  }

  /** VRRP decided: the same actions pulse's election takes, in order. */
  private vrrpTransition(on: boolean, line: string): void {
    if (on === this.vrrpActive) return;
    this.vrrpActive = on;
    this.log.info({ event: 'failover', input: 'vrrp' }, line);
    this.queue = this.queue.then(() => this.run([{ kind: on ? 'activate' : 'deactivate' }])).catch((e: Error) => {
      this.log.error({ event: 'failover-error', err: e.message }, `failover: ${e.message}`);
    });
  }

  /** Feed the election; its actions run in order, one input after another. */
  private input(i: ElectionInput): void {
    if (this.stopped) return;
    const { actions, log } = this.election.handle(i);
    for (const line of log) this.log.info({ event: 'failover', input: i.type }, line);
    this.heartbeat?.setState(this.election.advertised);
    if (!actions.length) return;
    this.queue = this.queue.then(() => this.run(actions)).catch((e: Error) => {
      this.log.error({ event: 'failover-error', err: e.message }, `failover: ${e.message}`);
    });
  }

  private async run(actions: ElectionAction[]): Promise<void> {
    for (const a of actions) {
      switch (a.kind) {
        case 'activate':
          this.transitions++;
          await this.opts.director.setActive(true);
          this.runCommand(this.opts.activeCmd, 'active_cmd');
          this.emit('active');
          break;
        case 'deactivate':
          this.transitions++;
          await this.opts.director.setActive(false);
          this.runCommand(this.opts.inactiveCmd, 'inactive_cmd');
          this.emit('standby');
          break;
        case 'send':
          this.heartbeat?.sendNow(a.state);
          break;
        case 'resend-arps':
          this.opts.director.reannounce();
          this.runCommand(this.opts.activeCmd, 'active_cmd');
          break;
        case 'exit':
          this.emit('exit');
          break;
      }
    }
  }

  /** active_cmd / inactive_cmd: split on blanks and run without a shell, not waited for (pulse). */
  private runCommand(cmd: string | undefined, what: string): void {
    if (!cmd) return;
    const argv = cmd.trim().split(/\s+/);
    try {
      const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
      child.on('error', (e) => this.log.error({ event: 'command-failed', what, cmd, err: e.message }, `${what} ${cmd}: ${e.message}`));
      child.on('exit', (code, signal) => {
        if (code === 0) this.log.info({ event: 'command', what, cmd, code }, `${what} ${cmd} exited 0`);
        else this.log.warn({ event: 'command-failed', what, cmd, code, signal }, `${what} ${cmd} exited ${code ?? signal}`);
      });
    } catch (e) {
      this.log.error({ event: 'command-failed', what, cmd, err: (e as Error).message }, `${what} ${cmd}: ${(e as Error).message}`);
    }
  }
}
