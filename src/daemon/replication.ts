/**
 * State that follows the VIP: what the active router sends its backup over the sync channel
 * (src/ha/sync.ts), and what the backup does with it.
 *
 *   active                                      backup
 *   dataplane 'sync' records  --RECORDS-->      dataplane.importSync
 *   link up: dumpSync()       --DUMP------>     importSync, "sync: full table received (N)"
 *   link up, reload, digest   --CONFIG---->     validate, write lvs.cf (its bytes), reload
 *     mismatch heard                <--RESULT-- ok, or why not (logged on both)
 *
 * The dataplane exports only while this router is active (setSyncMaster); the channel dials
 * the partner only then (setSending). A backup's pushed-config refusals are errors on both
 * sides: a backup that cannot run the active's lvs.cf may not be able to take over.
 */
import { readFileSync } from 'node:fs';
import type { Director } from '../director/director.js';
import type { Logger } from '../director/types.js';
import { configDigest } from '../ha/heartbeat.js';
import type { Failover } from '../ha/failover.js';
import type { SyncChannel } from '../ha/sync.js';
import type { HeartbeatEvent } from '../ha/heartbeat.js';

export interface ReplicationOptions {
  channel: SyncChannel;
  failover: Failover;
  director: Director;
  logger: Logger;
  /** The lvs.cf this router runs (its text is what the active pushes). */
  configFile: string;
  /** Backup: validate and apply a pushed lvs.cf; resolves with the errors that refused it. */
  applyConfig(text: string): Promise<{ ok: boolean; errors: string[] }>;
}

export interface ReplicationStatus {
  /** A sync link is up (outgoing on the active, incoming on the backup). */
  linked: boolean;
  dumpsSent: number;
  dumpsReceived: number;
  lastDump: { entries: number; at: string } | null;
  configPushes: number;
  lastConfigResult: { ok: boolean; errors: string[]; serialNo: number } | null;
  channel: SyncChannel['stats'];
}

export class Replication {
  private readonly log: Logger;
  private dumpsSent = 0;
  private dumpsReceived = 0;
  private lastDump: ReplicationStatus['lastDump'] = null;
  private configPushes = 0;
  private lastConfigResult: ReplicationStatus['lastConfigResult'] = null;
  private lastMismatchPushed: string | undefined;
  private dumping = false;
  private unplacedAtRequest = 0;
  private held: Buffer[] = [];
  private dumpAgain = false;
  private applying: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: ReplicationOptions) {
    this.log = o.logger;
    const { channel, failover, director } = o;
    const dp = director.dataplane!;

    // Active: the dataplane's records go out as they come.
    dp.on('sync', (records: Buffer) => {
      if (!failover.active) return;
      // While a dump is being taken, newer records wait for it: sent before the dump, they
      // would be overwritten on the backup by the dump's older copy of the same entries.
      if (this.dumping) this.held.push(records);
      else channel.sendRecords(records);
    });
    failover.on('active', () => {
      dp.setSyncMaster(true);
      channel.setSending(true);
    });
    failover.on('standby', () => {
      dp.setSyncMaster(false);
      channel.setSending(false);
    });
    channel.on('link-up', (ev: { peer: { address: string }; direction: string }) => {
      this.log.info({ event: 'sync-link', peer: ev.peer.address, direction: ev.direction }, `sync: linked with ${ev.peer.address} (${ev.direction})`);
      if (ev.direction === 'outgoing' && failover.active) {
        this.pushConfig('link up');
        void this.sendDump('link up');
      }
    });
    channel.on('link-down', (ev: { peer: { address: string }; reason: string }) => {
      this.log.warn({ event: 'sync-link-down', peer: ev.peer.address, reason: ev.reason }, `sync: link with ${ev.peer.address} down: ${ev.reason}`);
    });
    channel.on('resync-needed', () => {
      if (failover.active) void this.sendDump('the backup fell behind');
    });
    channel.on('config-result', (r: { ok: boolean; errors: string[]; serialNo: number }) => {
      this.lastConfigResult = { ok: r.ok, errors: r.errors, serialNo: r.serialNo };
      if (r.ok) this.log.info({ event: 'config-sync', serialNo: r.serialNo }, `config sync: the backup runs our lvs.cf (serial_no ${r.serialNo})`);
      else this.log.error({ event: 'config-sync-refused', serialNo: r.serialNo, errors: r.errors }, `config sync: the backup refused our lvs.cf (serial_no ${r.serialNo}); it may not be able to take over: ${r.errors.join('; ')}`);
    });
    // Heartbeats carry the partner's config digest: an active router that hears a backup on
    // another configuration pushes its own (once per partner digest).
    failover.on('heartbeat', (ev: HeartbeatEvent) => {
      if (!failover.active || ev.configMatches !== false || !channel.linked) return;
      const key = `${ev.serialNo}/${ev.configDigest}`;
      if (key === this.lastMismatchPushed) return;
      this.lastMismatchPushed = key;
      this.pushConfig(`the backup runs serial_no ${ev.serialNo}, another configuration`);
    });

    // Backup: records and dumps into the dataplane, lvs.cf from the active.
    channel.on('records', (records: Buffer) => {
      if (failover.active) return; // two actives for a moment: our own state wins
      try {
        dp.importSync(records);
      } catch (e) {
        this.log.error({ event: 'sync-import-failed', err: (e as Error).message }, `sync: import failed: ${(e as Error).message}`);
      }
    });
    channel.on('dump-begin', (ev: { count: number }) => this.log.info({ event: 'sync-dump-begin', entries: ev.count }, `sync: receiving the full table (${ev.count} entries)`));
    channel.on('dump-end', (ev: { count: number; received: number }) => {
      this.dumpsReceived++;
      this.lastDump = { entries: ev.received, at: new Date().toISOString() };
      this.log.info({ event: 'sync-dump', entries: ev.received, announced: ev.count }, `sync: full table received (${ev.received} entries)`);
    });
    channel.on('config', (cfg: { serialNo: number; digest: Buffer; text: string }, respond: (r: { ok: boolean; errors?: string[] }) => boolean) => {
      this.applying = this.applying.catch(() => {}).then(async () => {
        const result = await this.receiveConfig(cfg);
        respond(result);
      });
    });
  }

  status(): ReplicationStatus {
    return {
      linked: this.o.channel.stats.links.up > 0,
      dumpsSent: this.dumpsSent,
      dumpsReceived: this.dumpsReceived,
      lastDump: this.lastDump,
      configPushes: this.configPushes,
      lastConfigResult: this.lastConfigResult,
      channel: this.o.channel.stats,
    };
  }

  /**
   * The director's services or reals changed (health verdicts, reload). A backup that had to
   * skip records because it lacked their service or real (its health checks had not passed yet
   * when the active's table arrived, typically right after a restart) asks for the table again.
   */
  directorChanged(): void {
    if (this.o.failover.active) return;
    const c = this.o.director.dataplane?.counters() ?? {};
    const unplaced = (c.sync_rejected_no_real ?? 0) + (c.sync_rejected_no_service ?? 0);
    if (unplaced <= this.unplacedAtRequest) return;
    this.unplacedAtRequest = unplaced;
    if (this.o.channel.requestResync()) this.log.info({ event: 'sync-resync-request', unplaced }, `sync: ${unplaced} record(s) could not be placed before; the services now differ, so the full table is asked for again`);
  }

  /** Our lvs.cf changed (reload): the backup gets it too. */
  configChanged(): void {
    if (this.o.failover.active && this.o.channel.linked) this.pushConfig('reload');
  }

  private pushConfig(why: string): void {
    let text: string;
    try {
      text = readFileSync(this.o.configFile, 'utf8');
    } catch (e) {
      this.log.error({ event: 'config-sync-failed', err: (e as Error).message }, `config sync: cannot read ${this.o.configFile}: ${(e as Error).message}`);
      return;
    }
    const serialNo = serialOf(text);
    if (this.o.channel.sendConfig({ serialNo, digest: configDigest(text), text })) {
      this.configPushes++;
      this.log.info({ event: 'config-sync-push', serialNo, why }, `config sync: lvs.cf (serial_no ${serialNo}) pushed to the backup (${why})`);
    }
  }

  private async sendDump(why: string): Promise<void> {
    if (this.dumping) {
      this.dumpAgain = true;
      return;
    }
    this.dumping = true;
    try {
      do {
        this.dumpAgain = false;
        const dump = await this.o.director.dataplane!.dumpSync();
        if (this.o.channel.sendDump(dump)) {
          this.dumpsSent++;
          this.log.info({ event: 'sync-dump-sent', entries: dump.length / (this.o.channel.recordBytes || 1), why }, `sync: full table sent to the backup (${dump.length / (this.o.channel.recordBytes || 1)} entries; ${why})`);
        }
      } while (this.dumpAgain);
    } catch (e) {
      this.log.error({ event: 'sync-dump-failed', err: (e as Error).message }, `sync: full table dump failed: ${(e as Error).message}`);
    } finally {
      this.dumping = false;
      for (const r of this.held.splice(0)) this.o.channel.sendRecords(r);
    }
  }

  private async receiveConfig(cfg: { serialNo: number; digest: Buffer; text: string }): Promise<{ ok: boolean; errors: string[] }> {
    let current: Buffer | undefined;
    try {
      current = configDigest(readFileSync(this.o.configFile));
    } catch {
      current = undefined;
    }
    if (current && current.equals(cfg.digest)) return { ok: true, errors: [] };
    if (this.o.failover.active) {
      return { ok: false, errors: ['this router is active itself; a pushed configuration is taken only by the backup'] };
    }
    this.log.info({ event: 'config-sync-received', serialNo: cfg.serialNo }, `config sync: lvs.cf serial_no ${cfg.serialNo} received from the active router`);
    const r = await this.o.applyConfig(cfg.text);
    if (r.ok) this.log.info({ event: 'config-sync-applied', serialNo: cfg.serialNo }, `config sync: now running the active router's lvs.cf (serial_no ${cfg.serialNo})`);
    else this.log.error({ event: 'config-sync-refused', serialNo: cfg.serialNo, errors: r.errors }, `config sync: the active router's lvs.cf (serial_no ${cfg.serialNo}) refused; this router may not be able to take over: ${r.errors.join('; ')}`);
    return r;
  }
}

function serialOf(text: string): number {
  const m = text.match(/^[ \t]*serial_no[ \t]*=[ \t]*["']?(\d+)/m);
  const n = m ? Number(m[1]) : 0;
  return Number.isInteger(n) && n >= 0 && n <= 0xffffffff ? n : 0;
}
