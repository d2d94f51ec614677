/**
 * The health engine: Piranha's nanny state machine (reference/piranha.md section 2) run as
 * timers on the Node event loop instead of one process per real server.
 *
 * One scheduler (a binary heap of due times behind a single timer) starts every check; each
 * check runs its probes (all must pass), bounded by its timeout plus a grace; results move a
 * rise/fall state machine; state changes and weight changes are emitted as events and logged.
 *
 * Events:
 *   change  { id, up, weight, reason }   up: weight is the effective weight; down: 0 with
 *                                        quiesce (keep the entry, drain), null = remove it
 *   weight  { id, weight, reason }       effective weight changed while up (agent, config)
 *   sorry   { group, active, server }    every real of a group is down (active) / one is up
 *   stalled { overdue, lagMs }           the engine itself fell behind (once per episode)
 *   recovered { lagMs }                  the stall episode ended
 *
 * See docs/health.md for the semantics and how Piranha's timeout/reentry map onto them.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '../director/types.js';
import type { Probe, ProbeResult, ProbeTarget } from './types.js';

/** One real server's checks, as the director hands them over. */
export interface RealCheck {
  /** Stable identity, e.g. "TCP 198.18.0.100:80 -> 198.18.1.11:80". */
  id: string;
  /** A short name for logs (lvs.cf's server name, e.g. "r2"). */
  name?: string;
  /** The service group the real belongs to (for the sorry server). */
  group?: string;
  target: ProbeTarget;
  /** All must pass for the real to count as passing. An empty list always passes. */
  probes: Probe[];
  /** Time between the starts of two checks. Piranha: `timeout`. */
  intervalMs: number;
  /** Handed to each probe as its own bound. Piranha: `timeout`. */
  timeoutMs: number;
  /** Consecutive passes that bring a down real up. Default: from reentryMs, else 1. */
  rise?: number;
  /** Consecutive failures that take an up real down. Default 1 (nanny). */
  fall?: number;
  /** Piranha's `reentry`: when rise is not given, rise = max(1, floor(reentryMs / intervalMs)). */
  reentryMs?: number;
  /** The configured weight. */
  weight: number;
  /** Down = weight 0 (keep the entry, let connections drain) instead of removing the real. */
  quiesce: boolean;
}

export interface SorryServer {
  target: ProbeTarget;
  weight: number;
}

export interface HealthEngineOptions {
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
  random?: () => number;
  logger?: Logger;
  /** A probe that has not settled by timeoutMs + graceMs counts as failed. Default 500. */
  graceMs?: number;
  /** A check is overdue when not started within intervalMs + overdueMs of its due time. Default 1000. */
  overdueMs?: number;
  /** How often the watchdog looks. Default 500. */
  watchdogMs?: number;
  /** Loop lag (ms) that alone counts as a stall. Default 1000. */
  stallLagMs?: number;
}

export interface ChangeEvent { id: string; up: boolean; weight: number | null; reason: string }
export interface WeightEvent { id: string; weight: number; reason: string }
export interface SorryEvent { group: string; active: boolean; server: SorryServer }
export interface StalledEvent { overdue: number; lagMs: number }

export interface RealStatus {
  id: string;
  name?: string;
  group?: string;
  target: ProbeTarget;
  up: boolean;
  /** Effective weight while up; 0 (quiesced) or null (removed) while down. */
  weight: number | null;
  /** The last check's outcome (null before the first). */
  last: (ProbeResult & { at: number }) | null;
  passes: number;
  fails: number;
  /** When the real last went up or down (null: never, it is still down from the start). */
  lastChange: number | null;
  checks: number;
  /** Checks not started because the previous run's probes were still outstanding. */
  skips: number;
  /** Probe runs that did not settle within timeout + grace. */
  hung: number;
  nextDueAt: number | null;
  running: boolean;
}

export interface EngineStatus {
  reals: RealStatus[];
  sorry: Array<{ group: string; active: boolean }>;
  stalled: boolean;
  lastLagMs: number;
  overdueTotal: number;
}

type AgentState = NonNullable<NonNullable<ProbeResult['agent']>['state']>;
const AGENT_DOWN: ReadonlySet<AgentState> = new Set(['down', 'maint', 'stopped', 'fail']);

/** Piranha's nanny timing (seconds, as in lvs.cf) as engine fields. reentry 0 means 180 (nanny's default). */
export function piranhaTiming(timeoutS: number, reentryS: number): { intervalMs: number; timeoutMs: number; rise: number; fall: number; reentryMs: number } {
  if (!(timeoutS > 0)) throw new RangeError(`timeout must be > 0 seconds, got ${timeoutS}`);
  const reentry = reentryS > 0 ? reentryS : 180;
  // nanny: interval = timeout; countThresh = reentry / timeout (C integer division); one
  // failure takes the server out.
  return { intervalMs: timeoutS * 1000, timeoutMs: timeoutS * 1000, rise: Math.max(1, Math.floor(reentry / timeoutS)), fall: 1, reentryMs: reentry * 1000 };
}

function riseOf(c: RealCheck): number {
  if (c.rise !== undefined) return Math.max(1, Math.floor(c.rise));
  if (c.reentryMs !== undefined && c.intervalMs > 0) return Math.max(1, Math.floor(c.reentryMs / c.intervalMs));
  return 1;
}
function fallOf(c: RealCheck): number {
  return c.fall !== undefined ? Math.max(1, Math.floor(c.fall)) : 1;
}

interface Run {
  controller: AbortController;
  outstanding: number;
  settled: boolean;
  /** Given up at its deadline: its unsettled probes are counted in Entry.stuck. */
  hung: boolean;
  /** The timer that gives up on it at timeout + grace. */
  deadline: unknown;
}

interface Entry {
  cfg: RealCheck;
  rise: number;
  fall: number;
  up: boolean;
  /** No result yet: the first check, if it passes, admits the real at once. */
  fresh: boolean;
  /** Up at least once since set() (a quiesced real only has a table entry after that). */
  everUp: boolean;
  passes: number;
  fails: number;
  last: (ProbeResult & { at: number }) | null;
  lastChange: number | null;
  checks: number;
  skips: number;
  hung: number;
  /** Heap position, -1 when not scheduled. */
  hi: number;
  due: number;
  /** The current run (null between runs). Its probes may outlive it (hung). */
  run: Run | null;
  /** Probe promises of earlier runs still unsettled (hung). No new run while > 0. */
  stuck: number;
  /** Agent state, sticky until the agent says otherwise. */
  agentWeight: number | null;
  agentPercent: number | null;
  agentDrain: boolean;
  effective: number;
  removed: boolean;
}

function sameTarget(a: ProbeTarget, b: ProbeTarget): boolean {
  return a.address === b.address && a.port === b.port;
}
function sameProbes(a: Probe[], b: Probe[]): boolean {
  return a.length === b.length && a.every((p, i) => p === b[i]);
}

const silent: Logger = { info() {}, warn() {}, error() {}, debug() {} };

export class HealthEngine extends EventEmitter {
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;
  private readonly random: () => number;
  private readonly log: Logger;
  private readonly graceMs: number;
  private readonly overdueMs: number;
  private readonly watchdogMs: number;
  private readonly stallLagMs: number;

  private readonly entries = new Map<string, Entry>();
  private readonly heap: Entry[] = [];
  private timer: unknown = null;
  private timerAt = Infinity;
  private readonly sorryServers = new Map<string, SorryServer>();
  private readonly sorryActive = new Map<string, boolean>();
  private watchdog: unknown = null;
  private watchdogDue = 0;
  private overdueSinceTick = 0;
  private overdueTotal = 0;
  private stalled = false;
  private lastLagMs = 0;
  private stopped = false;

  constructor(options: HealthEngineOptions = {}) {
    super();
    this.now = options.now ?? (() => performance.now());
    this.setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = options.clearTimer ?? ((h) => clearTimeout(h as NodeJS.Timeout));
    this.random = options.random ?? Math.random;
    this.log = options.logger ?? silent;
    this.graceMs = options.graceMs ?? 500;
    this.overdueMs = options.overdueMs ?? 1000;
    this.watchdogMs = options.watchdogMs ?? 500;
    this.stallLagMs = options.stallLagMs ?? 1000;
  }

  /**
   * The full desired set of checks, applied as a difference: a real whose target and probes did
   * not change keeps its state and schedule (weight, quiesce, timing and group updates apply in
   * place); a new real starts down and is first checked at a random point of its interval;
   * a real whose target changed starts over as new; a real not listed is forgotten.
   * `sorryServers` maps a group to its sorry server.
   */
  set(checks: RealCheck[], sorryServers: Record<string, SorryServer> = {}): void {
    if (this.stopped) throw new Error('health engine is stopped');
    const seen = new Set<string>();
    for (const c of checks) {
      if (seen.has(c.id)) throw new RangeError(`duplicate health check id ${c.id}`);
      seen.add(c.id);
      if (!(c.intervalMs > 0) || !(c.timeoutMs > 0)) throw new RangeError(`${c.id}: intervalMs and timeoutMs must be > 0`);
      if (!(c.weight >= 0)) throw new RangeError(`${c.id}: weight must be >= 0`);
    }
    for (const [id, e] of this.entries) {
      if (!seen.has(id)) this.forget(e);
    }
    this.sorryServers.clear();
    for (const [g, s] of Object.entries(sorryServers)) this.sorryServers.set(g, s);

    const now = this.now();
    for (const c of checks) {
      const old = this.entries.get(c.id);
      if (old && sameTarget(old.cfg.target, c.target)) this.update(old, c, now);
      else {
        if (old) this.forget(old);
        this.add(c, now);
      }
    }
    for (const g of [...this.sorryActive.keys()]) {
      if (!this.sorryServers.has(g)) this.sorryActive.delete(g);
    }
    for (const g of this.sorryServers.keys()) this.updateSorry(g);
    this.arm();
    this.startWatchdog();
  }

  /** Per-real state, in the order the reals were added. */
  status(): EngineStatus {
    const reals: RealStatus[] = [];
    for (const e of this.entries.values()) {
      const s: RealStatus = {
        id: e.cfg.id,
        target: { ...e.cfg.target },
        up: e.up,
        weight: e.up ? e.effective : e.cfg.quiesce ? 0 : null,
        last: e.last,
        passes: e.passes,
        fails: e.fails,
        lastChange: e.lastChange,
        checks: e.checks,
        skips: e.skips,
        hung: e.hung,
        nextDueAt: e.hi >= 0 ? e.due : null,
        running: e.run !== null,
      };
      if (e.cfg.name !== undefined) s.name = e.cfg.name;
      if (e.cfg.group !== undefined) s.group = e.cfg.group;
      reals.push(s);
    }
    return {
      reals,
      sorry: [...this.sorryActive].map(([group, active]) => ({ group, active })),
      stalled: this.stalled,
      lastLagMs: this.lastLagMs,
      overdueTotal: this.overdueTotal,
    };
  }

  /** Cancels every timer and aborts every probe in flight. The engine cannot be restarted. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const e of this.entries.values()) this.forget(e);
    this.entries.clear();
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
    if (this.watchdog !== null) this.clearTimer(this.watchdog);
    this.watchdog = null;
  }

  // ---- set() helpers

  private add(c: RealCheck, now: number): void {
    const e: Entry = {
      cfg: c,
      rise: riseOf(c),
      fall: fallOf(c),
      up: false,
      fresh: true,
      everUp: false,
      passes: 0,
      fails: 0,
      last: null,
      lastChange: null,
      checks: 0,
      skips: 0,
      hung: 0,
      hi: -1,
      due: 0,
      run: null,
      stuck: 0,
      agentWeight: null,
      agentPercent: null,
      agentDrain: false,
      effective: c.weight,
      removed: false,
    };
    this.entries.set(c.id, e);
    // Jitter: the first check lands anywhere in the first interval, so that a thousand reals
    // configured at once are not probed in the same millisecond, then every interval after.
    this.schedule(e, now + Math.floor(this.random() * c.intervalMs));
  }

  private update(e: Entry, c: RealCheck, now: number): void {
    const prev = e.cfg;
    e.cfg = c;
    e.rise = riseOf(c);
    e.fall = fallOf(c);
    if (!sameProbes(prev.probes, c.probes)) {
      // Different probes: the run in flight answers a question nobody asks any more.
      if (e.run) this.abandon(e, 'check changed');
      e.passes = 0;
      e.fails = 0;
    }
    if (prev.intervalMs !== c.intervalMs && e.hi >= 0) {
      const next = now + Math.floor(this.random() * c.intervalMs);
      if (next < e.due) this.schedule(e, next);
    }
    if (e.up) {
      const before = e.effective;
      e.effective = this.effectiveWeight(e);
      if (e.effective !== before) this.emitWeight(e, `configured weight ${c.weight}`);
    } else if (prev.quiesce !== c.quiesce && e.everUp) {
      const ev: ChangeEvent = { id: c.id, up: false, weight: c.quiesce ? 0 : null, reason: c.quiesce ? 'quiesce_server turned on' : 'quiesce_server turned off' };
      this.emit('change', ev);
    }
  }

  private forget(e: Entry): void {
    e.removed = true;
    this.unschedule(e);
    if (e.run) this.abandon(e, 'check removed');
    this.entries.delete(e.cfg.id);
  }

  /** Abort the current run and ignore its result (its probes may still settle later). */
  private abandon(e: Entry, why: string): void {
    const run = e.run;
    if (!run) return;
    run.settled = true;
    if (run.deadline !== null) this.clearTimer(run.deadline);
    run.controller.abort(new Error(why));
    e.run = null;
  }

  // ---- scheduling: an indexed binary min-heap on `due`, one timer for its head

  private schedule(e: Entry, due: number): void {
    e.due = due;
    if (e.hi < 0) {
      e.hi = this.heap.length;
      this.heap.push(e);
      this.up(e.hi);
    } else {
      this.up(e.hi);
      this.down(e.hi);
    }
  }

  private unschedule(e: Entry): void {
    const i = e.hi;
    if (i < 0) return;
    const last = this.heap.pop()!;
    e.hi = -1;
    if (last !== e) {
      this.heap[i] = last;
      last.hi = i;
      this.up(i);
      this.down(i);
    }
  }

  private up(i: number): void {
    const h = this.heap;
    const x = h[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const y = h[p]!;
      if (y.due <= x.due) break;
      h[i] = y;
      y.hi = i;
      i = p;
    }
    h[i] = x;
    x.hi = i;
  }

  private down(i: number): void {
    const h = this.heap;
    const n = h.length;
    const x = h[i]!;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && h[c + 1]!.due < h[c]!.due) c++;
      const y = h[c]!;
      if (y.due >= x.due) break;
      h[i] = y;
      y.hi = i;
      i = c;
    }
    h[i] = x;
    x.hi = i;
  }

  /** Keep one timer armed for the earliest due check. */
  private arm(): void {
    if (this.stopped) return;
    const head = this.heap[0];
    const at = head ? head.due : Infinity;
    if (at === this.timerAt && this.timer !== null) return;
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
    this.timerAt = at;
    if (at === Infinity) return;
    this.timer = this.setTimer(() => this.tick(), Math.max(0, at - this.now()));
  }

  private tick(): void {
    this.timer = null;
    this.timerAt = Infinity;
    if (this.stopped) return;
    const now = this.now();
    while (this.heap.length > 0 && this.heap[0]!.due <= now) {
      const e = this.heap[0]!;
      this.unschedule(e);
      this.start(e, now);
    }
    this.arm();
  }

  // ---- one check

  private start(e: Entry, now: number): void {
    const c = e.cfg;
    if (now - e.due > c.intervalMs + this.overdueMs) {
      this.overdueSinceTick++;
      this.overdueTotal++;
    }
    // The next start is one interval after this one was due (fixed rate), or one interval
    // from now when the engine fell behind by more than an interval.
    const next = now - e.due > c.intervalMs ? now + c.intervalMs : e.due + c.intervalMs;
    if (e.run !== null || e.stuck > 0) {
      // Never run the same check twice at once. A check still within its timeout (longer than
      // the interval) is simply skipped; one whose probe hung past its deadline counts as a
      // failure each time, so a stuck probe cannot keep a real up.
      e.skips++;
      this.schedule(e, next);
      if (e.run === null) this.result(e, { ok: false, reason: 'previous probe still hung, check skipped', ms: 0 }, now);
      return;
    }
    this.schedule(e, next);
    e.checks++;
    const run: Run = { controller: new AbortController(), outstanding: c.probes.length, settled: false, hung: false, deadline: null };
    e.run = run;
    if (c.probes.length === 0) {
      e.run = null;
      this.result(e, { ok: true, reason: 'no probes', ms: 0 }, now);
      return;
    }
    const results: Array<ProbeResult | undefined> = new Array(c.probes.length);
    const budget = c.timeoutMs + this.graceMs;
    run.deadline = this.setTimer(() => {
      if (run.settled) return;
      run.settled = true;
      run.hung = true;
      e.run = null;
      e.hung++;
      const pending = c.probes.filter((_, i) => results[i] === undefined).map((p) => p.kind);
      e.stuck += run.outstanding;
      run.controller.abort(new Error(`no answer within ${budget} ms`));
      this.log.warn({ id: c.id, probes: pending, ms: budget }, `health check ${this.label(e)}: ${pending.join(', ')} probe did not settle within ${budget} ms; counted as failed`);
      const t = this.now();
      this.result(e, { ok: false, reason: `${pending[0]} probe did not settle within ${budget} ms`, ms: t - now }, t);
    }, budget);
    const finish = (): void => {
      if (run.settled) return;
      run.settled = true;
      e.run = null;
      this.clearTimer(run.deadline);
      const t = this.now();
      const failedAt = results.findIndex((r) => !r!.ok);
      let merged: ProbeResult;
      if (failedAt >= 0) {
        const r = results[failedAt]!;
        merged = { ...r, reason: c.probes.length > 1 ? `${c.probes[failedAt]!.kind}: ${r.reason}` : r.reason, ms: t - now };
      } else {
        merged = { ok: true, reason: results.map((r) => r!.reason).join('; '), ms: t - now };
      }
      const agent = results.find((r) => r!.agent !== undefined)?.agent;
      if (agent) merged.agent = agent;
      this.result(e, merged, t);
    };
    c.probes.forEach((p, i) => {
      let promise: Promise<ProbeResult>;
      try {
        promise = p.run(c.target, c.timeoutMs, run.controller.signal);
      } catch (err) {
        promise = Promise.reject(err);
      }
      promise.then(
        (r) => r,
        (err: unknown): ProbeResult => ({ ok: false, reason: `${p.kind} probe threw: ${err instanceof Error ? err.message : String(err)}`, ms: 0 }),
      ).then((r) => {
        run.outstanding--;
        if (run.settled) {
          // Late: this run was given up (hung) or abandoned.
          if (run.hung) e.stuck--;
          return;
        }
        results[i] = r;
        if (run.outstanding === 0) finish();
      });
    });
  }

  private label(e: Entry): string {
    const t = e.cfg.target;
    const addr = t.address.includes(':') ? `[${t.address}]:${t.port}` : `${t.address}:${t.port}`;
    return e.cfg.name !== undefined ? `${e.cfg.name} ${addr}` : `${addr} (${e.cfg.id})`;
  }

  /** Apply one check's outcome to the state machine. */
  private result(e: Entry, r: ProbeResult, at: number): void {
    if (e.removed || this.stopped) return;
    e.last = { ...r, at };
    const first = e.fresh;
    e.fresh = false;
    const state = r.agent?.state;
    let ok = r.ok;
    let reason = r.reason;
    if (r.agent) {
      if (r.agent.weight !== undefined) {
        e.agentWeight = r.agent.weight;
        e.agentPercent = null;
      } else if (r.agent.percent !== undefined) {
        e.agentPercent = r.agent.percent;
        e.agentWeight = null;
      }
      if (state === 'drain') e.agentDrain = true;
      else if (state === 'up' || state === 'ready') e.agentDrain = false;
      if (state !== undefined && AGENT_DOWN.has(state)) {
        ok = false;
        if (!/agent/.test(reason)) reason = `agent says ${state}${reason ? ` (${reason})` : ''}`;
      }
    }
    if (ok) {
      e.passes++;
      e.fails = 0;
      // The first check of a new real admits it at once (nanny starts currCount at its
      // threshold); after a failure it takes `rise` consecutive passes.
      if (!e.up && (e.passes >= e.rise || first)) {
        this.transition(e, true, reason, at);
      } else if (e.up) {
        const before = e.effective;
        e.effective = this.effectiveWeight(e);
        if (e.effective !== before) this.emitWeight(e, r.agent ? `agent: ${this.agentText(e, state)}` : reason);
      }
    } else {
      e.fails++;
      e.passes = 0;
      if (e.up && e.fails >= e.fall) this.transition(e, false, reason, at);
      // A real that has never been up (it starts down) says once why it stays out, so an
      // operator wondering why it gets no traffic finds the answer in the log.
      else if (!e.up && !e.everUp && e.fails === 1) this.log.warn({ id: e.cfg.id, up: false, reason }, `real ${this.label(e)} down: ${reason}`);
    }
  }

  private agentText(e: Entry, state: AgentState | undefined): string {
    if (e.agentDrain) return 'drain';
    if (e.agentWeight !== null) return `weight ${e.agentWeight}`;
    if (e.agentPercent !== null) return `${e.agentPercent}%`;
    return state ?? 'no weight';
  }

  private effectiveWeight(e: Entry): number {
    if (e.agentDrain) return 0;
    let w = e.cfg.weight;
    if (e.agentWeight !== null) w = e.agentWeight;
    else if (e.agentPercent !== null) w = Math.round((e.cfg.weight * e.agentPercent) / 100);
    return Math.max(0, Math.min(0x7fffffff, Math.floor(w)));
  }

  private transition(e: Entry, up: boolean, reason: string, at: number): void {
    e.up = up;
    e.lastChange = at;
    const c = e.cfg;
    if (up) {
      e.everUp = true;
      e.effective = this.effectiveWeight(e);
      const why = e.rise > 1 && e.passes >= e.rise ? `${e.passes} checks passed: ${reason}` : reason;
      this.log.info({ id: c.id, up: true, weight: e.effective, reason: why }, `real ${this.label(e)} up: ${why}`);
      const ev: ChangeEvent = { id: c.id, up: true, weight: e.effective, reason: why };
      this.emit('change', ev);
    } else {
      const why = e.fall > 1 ? `${e.fails} checks failed: ${reason}` : reason;
      const weight = c.quiesce ? 0 : null;
      this.log.warn({ id: c.id, up: false, weight, reason: why }, `real ${this.label(e)} down: ${why}`);
      const ev: ChangeEvent = { id: c.id, up: false, weight, reason: why };
      this.emit('change', ev);
    }
    if (c.group !== undefined) this.updateSorry(c.group);
  }

  private emitWeight(e: Entry, reason: string): void {
    this.log.info({ id: e.cfg.id, weight: e.effective, reason }, `real ${this.label(e)} weight ${e.effective}: ${reason}`);
    const ev: WeightEvent = { id: e.cfg.id, weight: e.effective, reason };
    this.emit('weight', ev);
  }

  private updateSorry(group: string): void {
    const server = this.sorryServers.get(group);
    if (!server) return;
    let any = false;
    for (const e of this.entries.values()) {
      if (e.cfg.group === group && e.up) {
        any = true;
        break;
      }
    }
    const active = !any;
    if (this.sorryActive.get(group) === active) return;
    this.sorryActive.set(group, active);
    const t = server.target;
    if (active) this.log.warn({ group, sorry: t }, `group ${group}: no real servers up; activating sorry server ${t.address}:${t.port}`);
    else this.log.info({ group, sorry: t }, `group ${group}: a real server is up; deactivating sorry server ${t.address}:${t.port}`);
    const ev: SorryEvent = { group, active, server };
    this.emit('sorry', ev);
  }

  // ---- watchdog: the engine watches its own timeliness (keepalived #2523)

  private startWatchdog(): void {
    if (this.watchdog !== null || this.stopped) return;
    this.watchdogDue = this.now() + this.watchdogMs;
    this.watchdog = this.setTimer(() => this.watch(), this.watchdogMs);
  }

  private watch(): void {
    this.watchdog = null;
    if (this.stopped) return;
    const now = this.now();
    const lag = Math.max(0, now - this.watchdogDue);
    this.lastLagMs = lag;
    // Checks started late since the last look, plus those still waiting that are already late.
    let overdue = this.overdueSinceTick;
    this.overdueSinceTick = 0;
    for (const e of this.heap) {
      if (now - e.due > e.cfg.intervalMs + this.overdueMs) overdue++;
    }
    if (overdue > 0 || lag >= this.stallLagMs) {
      if (!this.stalled) {
        this.stalled = true;
        const lagMs = Math.round(lag);
        this.log.error({ overdue, lagMs }, `health engine stalled: ${overdue} checks overdue, loop lag ${lagMs} ms`);
        const ev: StalledEvent = { overdue, lagMs };
        this.emit('stalled', ev);
      }
    } else if (this.stalled) {
      this.stalled = false;
      const lagMs = Math.round(lag);
      this.log.info({ lagMs }, 'health engine recovered: checks on time again');
      this.emit('recovered', { lagMs });
    }
    this.watchdogDue = now + this.watchdogMs;
    this.watchdog = this.setTimer(() => this.watch(), this.watchdogMs);
  }
}
