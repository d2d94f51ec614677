// The health engine's state machine, driven by fake probes (the engine's input) on an injected
// clock, except the watchdog test, which blocks the real event loop.
import { describe, expect, it } from 'vitest';
import { HealthEngine, piranhaTiming } from '../../src/health/index.js';
import type { ChangeEvent, RealCheck, SorryEvent, StalledEvent, WeightEvent } from '../../src/health/index.js';
import type { Probe, ProbeResult, ProbeTarget } from '../../src/health/types.js';
import type { Logger } from '../../src/director/types.js';

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A clock and timer queue the test moves by hand. */
class FakeClock {
  t = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  now = (): number => this.t;
  setTimer = (fn: () => void, ms: number): unknown => {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  };
  clearTimer = (h: unknown): void => {
    this.timers.delete(h as number);
  };
  get pending(): number {
    return this.timers.size;
  }
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await flush();
      let best: [number, { at: number; fn: () => void }] | null = null;
      for (const kv of this.timers) if (kv[1].at <= end && (!best || kv[1].at < best[1].at)) best = kv;
      if (!best) break;
      this.timers.delete(best[0]);
      this.t = Math.max(this.t, best[1].at);
      best[1].fn();
    }
    this.t = end;
    await flush();
  }
}

/** A deterministic random source (LCG). */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

type Answer = ProbeResult | 'hang' | 'until-abort';
/** A fake probe that answers from a script (by run number) and records when it ran. */
class ScriptProbe implements Probe {
  runs: number[] = [];
  aborted = 0;
  constructor(
    readonly kind: string,
    private readonly clock: FakeClock | null,
    private readonly answer: (n: number, target: ProbeTarget) => Answer,
  ) {}
  run(target: ProbeTarget, _timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult> {
    const n = this.runs.length;
    this.runs.push(this.clock ? this.clock.t : performance.now());
    const a = this.answer(n, target);
    if (a === 'hang') return new Promise(() => {});
    if (a === 'until-abort') {
      return new Promise((resolve) => {
        signal?.addEventListener('abort', () => {
          this.aborted++;
          resolve({ ok: false, reason: 'aborted', ms: 0 });
        });
      });
    }
    return Promise.resolve(a);
  }
}

const pass = (reason = 'connect ok'): ProbeResult => ({ ok: true, reason, ms: 1 });
const fail = (reason = 'connect refused'): ProbeResult => ({ ok: false, reason, ms: 1 });

function real(id: string, probes: Probe[], over: Partial<RealCheck> = {}): RealCheck {
  return { id, target: { address: '198.18.1.11', port: 80 }, probes, intervalMs: 1000, timeoutMs: 500, rise: 1, fall: 1, weight: 10, quiesce: false, ...over };
}

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const put = (_o: object, msg?: string): void => {
    if (msg !== undefined) lines.push(msg);
  };
  return { lines, info: put, warn: put, error: put, debug: put };
}

function engine(clock: FakeClock, extra: { random?: () => number; logger?: Logger } = {}) {
  const e = new HealthEngine({ now: clock.now, setTimer: clock.setTimer, clearTimer: clock.clearTimer, random: extra.random ?? (() => 0), ...(extra.logger ? { logger: extra.logger } : {}) });
  const changes: ChangeEvent[] = [];
  const weights: WeightEvent[] = [];
  const sorry: SorryEvent[] = [];
  e.on('change', (c: ChangeEvent) => changes.push(c));
  e.on('weight', (w: WeightEvent) => weights.push(w));
  e.on('sorry', (s: SorryEvent) => sorry.push(s));
  return { e, changes, weights, sorry };
}

describe('HealthEngine', () => {
  it('starts every real down and admits it only when its first check passes (alpha)', async () => {
    const clock = new FakeClock();
    const good = new ScriptProbe('tcp', clock, () => pass());
    const bad = new ScriptProbe('tcp', clock, (n) => (n === 0 ? fail() : pass()));
    const { e, changes } = engine(clock, { random: () => 0.5 });
    e.set([real('a', [good]), real('b', [bad], { rise: 3 })]);
    // Before any check: both down, nothing announced, nothing run.
    expect(e.status().reals.map((r) => [r.id, r.up, r.weight, r.lastChange])).toEqual([['a', false, null, null], ['b', false, null, null]]);
    await clock.advance(499);
    expect(good.runs).toEqual([]);
    expect(changes).toEqual([]);
    await clock.advance(1);
    // a's first check passed: up at once, like nanny whose counter starts at its threshold.
    expect(changes).toEqual([{ id: 'a', up: true, weight: 10, reason: 'connect ok' }]);
    // b's first check failed: it now needs `rise` consecutive passes.
    await clock.advance(2000);
    expect(changes.filter((c) => c.id === 'b')).toEqual([]);
    await clock.advance(1000);
    expect(bad.runs).toEqual([500, 1500, 2500, 3500]);
    expect(changes.filter((c) => c.id === 'b')).toEqual([{ id: 'b', up: true, weight: 10, reason: '3 checks passed: connect ok' }]);
    e.stop();
  });

  it('spreads the first checks across the interval, then keeps a fixed rate per real', async () => {
    const clock = new FakeClock();
    const probes = Array.from({ length: 200 }, () => new ScriptProbe('tcp', clock, () => pass()));
    const { e } = engine(clock, { random: seeded(7) });
    e.set(probes.map((p, i) => real(`r${i}`, [p])));
    await clock.advance(3000);
    const first = probes.map((p) => p.runs[0]!);
    expect(first.every((t) => t >= 0 && t < 1000)).toBe(true);
    const buckets = new Set(first.map((t) => Math.floor(t / 100)));
    expect(buckets.size).toBe(10); // every tenth of the interval has some first checks
    expect(new Set(first).size).toBeGreaterThan(100); // not marching in step
    for (const p of probes) expect(p.runs).toEqual([p.runs[0], p.runs[0]! + 1000, p.runs[0]! + 2000]);
    e.stop();
  });

  it('counts rise consecutive passes to come up and fall consecutive failures to go down', async () => {
    const clock = new FakeClock();
    //              0 (up)  1     2 (down) 3     4     5     6     7     8 (up)
    const script = [true, false, false, true, true, false, true, true, true];
    const p = new ScriptProbe('tcp', clock, (n) => (script[n] ?? true ? pass() : fail()));
    const { e, changes } = engine(clock);
    e.set([real('a', [p], { rise: 3, fall: 2 })]);
    const ups: boolean[] = [];
    for (let i = 0; i < script.length; i++) {
      await clock.advance(i === 0 ? 0 : 1000);
      ups.push(e.status().reals[0]!.up);
    }
    expect(ups).toEqual([true, true, false, false, false, false, false, false, true]);
    expect(changes.map((c) => [c.up, c.reason])).toEqual([[true, 'connect ok'], [false, '2 checks failed: connect refused'], [true, '3 checks passed: connect ok']]);
    const st = e.status().reals[0]!;
    expect([st.passes, st.fails, st.checks, st.lastChange]).toEqual([3, 0, 9, 8000]);
    e.stop();
  });

  it("maps Piranha's timeout and reentry: interval = timeout, fall 1, rise = max(1, floor(reentry/timeout))", async () => {
    expect(piranhaTiming(10, 0)).toEqual({ intervalMs: 10_000, timeoutMs: 10_000, rise: 18, fall: 1, reentryMs: 180_000 });
    expect(piranhaTiming(6, 45)).toEqual({ intervalMs: 6000, timeoutMs: 6000, rise: 7, fall: 1, reentryMs: 45_000 });
    expect(piranhaTiming(10, 5).rise).toBe(1);
    expect(() => piranhaTiming(0, 10)).toThrow(RangeError);

    // The same numbers through RealCheck.reentryMs when rise is not given: timeout 2 s,
    // reentry 7 s -> 3 consecutive good checks after one failure.
    const clock = new FakeClock();
    const script = [true, false, true, true, true];
    const p = new ScriptProbe('tcp', clock, (n) => (script[n] ?? true ? pass() : fail()));
    const { e, changes } = engine(clock);
    const { rise: _rise, fall: _fall, ...base } = real('a', [p]);
    e.set([{ ...base, intervalMs: 2000, timeoutMs: 2000, reentryMs: 7000 }]);
    await clock.advance(0);
    expect(changes.map((c) => c.up)).toEqual([true]);
    await clock.advance(2000); // one failure takes it down (fall 1)
    expect(changes.map((c) => c.up)).toEqual([true, false]);
    await clock.advance(4000); // two good checks: not yet
    expect(changes.length).toBe(2);
    await clock.advance(2000); // the third
    expect(changes.map((c) => c.up)).toEqual([true, false, true]);
    e.stop();
  });

  it('quiesces (weight 0, keep the entry) or removes (weight null) a failed real', async () => {
    const clock = new FakeClock();
    const p = new ScriptProbe('tcp', clock, (n) => (n === 1 ? fail('connect timed out') : pass()));
    const q = new ScriptProbe('tcp', clock, (n) => (n === 1 ? fail('connect timed out') : pass()));
    const { e, changes } = engine(clock);
    e.set([real('quiet', [p], { quiesce: true, weight: 4 }), real('gone', [q], { weight: 4 })]);
    await clock.advance(1000);
    expect(changes.filter((c) => !c.up)).toEqual([
      { id: 'quiet', up: false, weight: 0, reason: 'connect timed out' },
      { id: 'gone', up: false, weight: null, reason: 'connect timed out' },
    ]);
    expect(e.status().reals.map((r) => r.weight)).toEqual([0, null]);
    await clock.advance(1000);
    expect(changes.slice(-2)).toEqual([
      { id: 'quiet', up: true, weight: 4, reason: 'connect ok' },
      { id: 'gone', up: true, weight: 4, reason: 'connect ok' },
    ]);
    e.stop();
  });

  it('adjusts the weight from agent replies and emits weight only when it changes', async () => {
    const clock = new FakeClock();
    const replies: Array<ProbeResult> = [
      { ok: true, reason: 'agent: up', agent: { state: 'up' }, ms: 1 }, // 0: up at 10
      { ok: true, reason: 'agent: 50%', agent: { percent: 50 }, ms: 1 }, // 1: 5
      { ok: true, reason: 'agent: 50%', agent: { percent: 50 }, ms: 1 }, // 2: no event
      { ok: true, reason: 'agent: 7', agent: { weight: 7 }, ms: 1 }, // 3: 7
      { ok: true, reason: 'agent: drain', agent: { state: 'drain' }, ms: 1 }, // 4: 0, still up
      { ok: true, reason: 'agent: ready', agent: { state: 'ready' }, ms: 1 }, // 5: 7 again
      { ok: true, reason: 'agent: maint', agent: { state: 'maint' }, ms: 1 }, // 6: down
      { ok: true, reason: 'agent: up', agent: { state: 'up', percent: 200 }, ms: 1 }, // 7: up at 20
    ];
    const p = new ScriptProbe('agent', clock, (n) => replies[n] ?? replies[7]!);
    const { e, changes, weights } = engine(clock);
    e.set([real('a', [p], { weight: 10, quiesce: true })]);
    await clock.advance(7000);
    expect(weights.map((w) => w.weight)).toEqual([5, 7, 0, 7]);
    expect(changes).toEqual([
      { id: 'a', up: true, weight: 10, reason: 'agent: up' },
      { id: 'a', up: false, weight: 0, reason: 'agent: maint' },
      { id: 'a', up: true, weight: 20, reason: 'agent: up' },
    ]);
    expect(e.status().reals[0]).toMatchObject({ up: true, weight: 20 });
    e.stop();
  });

  it('never flaps faster than rise and fall allow against a server that alternates', async () => {
    const clock = new FakeClock();
    const alternating = (): ScriptProbe => new ScriptProbe('http', clock, (n) => (n % 2 === 0 ? pass('HTTP/1.0 200 OK') : fail('expect "HTTP" got "500 Internal Server Error"')));
    // nanny's rule (fall 1, rise 3): down at the first failure, and never back, since three
    // good checks in a row never happen.
    {
      const { e, changes } = engine(clock);
      e.set([real('a', [alternating()], { rise: 3, fall: 1 })]);
      await clock.advance(100_000);
      expect(changes.map((c) => c.up)).toEqual([true, false]);
      expect(e.status().reals[0]!.checks).toBe(101);
      e.stop();
    }
    // fall 2: one failure in between passes never takes it down.
    {
      const { e, changes } = engine(clock);
      e.set([real('a', [alternating()], { rise: 2, fall: 2 })]);
      await clock.advance(100_000);
      expect(changes.map((c) => c.up)).toEqual([true]);
      e.stop();
    }
    // rise 1, fall 1 follows the server exactly: one transition per check, never more.
    {
      const { e, changes } = engine(clock);
      e.set([real('a', [alternating()], { rise: 1, fall: 1 })]);
      await clock.advance(99_000);
      expect(changes.length).toBe(100);
      e.stop();
    }
    // A pseudo-random server: every up needs `rise` passes in a row before it (except the
    // first check), every down `fall` failures in a row.
    {
      const rnd = seeded(99);
      const outcomes: boolean[] = [];
      const p = new ScriptProbe('tcp', clock, () => {
        const ok = rnd() < 0.7;
        outcomes.push(ok);
        return ok ? pass() : fail();
      });
      const { e, changes } = engine(clock);
      const at: number[] = [];
      e.on('change', () => at.push(outcomes.length));
      e.set([real('a', [p], { rise: 3, fall: 2 })]);
      await clock.advance(500_000);
      expect(changes.length).toBeGreaterThan(10);
      changes.forEach((c, i) => {
        const n = at[i]!;
        if (i === 0) expect(n).toBeLessThanOrEqual(3);
        const run = outcomes.slice(n - (c.up ? 3 : 2), n);
        if (i > 0) expect(run.every((ok) => ok === c.up)).toBe(true);
        if (i > 0) expect(n - at[i - 1]!).toBeGreaterThanOrEqual(c.up ? 3 : 2);
      });
      e.stop();
    }
  });

  it('requires every probe to pass and names the one that failed', async () => {
    const clock = new FakeClock();
    const tcp = new ScriptProbe('tcp', clock, () => pass());
    const http = new ScriptProbe('http', clock, (n) => (n === 0 ? pass('200') : fail('status 503 not in 200-399')));
    const log = recordingLogger();
    const { e, changes } = engine(clock, { logger: log });
    e.set([real('TCP 198.18.0.100:80 -> 198.18.2.12:80', [tcp, http], { name: 'r2', target: { address: '198.18.2.12', port: 80 } })]);
    await clock.advance(1000);
    expect(changes.map((c) => [c.up, c.reason])).toEqual([[true, 'connect ok; 200'], [false, 'http: status 503 not in 200-399']]);
    expect(log.lines).toContain('real r2 198.18.2.12:80 down: http: status 503 not in 200-399');
    expect(e.status().reals[0]!.last).toMatchObject({ ok: false, reason: 'http: status 503 not in 200-399', at: 1000 });
    e.stop();
  });

  it('logs every state change with its reason', async () => {
    const clock = new FakeClock();
    const p = new ScriptProbe('tcp', clock, (n) => (n === 1 ? fail('expect "HTTP" got "500 Internal Server Error"') : pass('HTTP/1.1 200 OK')));
    const log = recordingLogger();
    const { e } = engine(clock, { logger: log });
    e.set([real('x', [p], { name: 'r2', target: { address: '198.18.2.12', port: 80 } }), real('y', [new ScriptProbe('tcp', clock, () => pass())], { target: { address: '2001:db8::12', port: 443 } })]);
    await clock.advance(2000);
    expect(log.lines).toEqual([
      'real r2 198.18.2.12:80 up: HTTP/1.1 200 OK',
      'real [2001:db8::12]:443 (y) up: connect ok',
      'real r2 198.18.2.12:80 down: expect "HTTP" got "500 Internal Server Error"',
      'real r2 198.18.2.12:80 up: HTTP/1.1 200 OK',
    ]);
    e.stop();
  });

  it('gives up on a hanging probe at timeout + grace, keeps checking the others, and never runs it twice at once', async () => {
    const clock = new FakeClock();
    const stuck = new ScriptProbe('program', clock, (n) => (n === 0 ? pass() : 'hang'));
    const fine = new ScriptProbe('tcp', clock, () => pass());
    const log = recordingLogger();
    const { e, changes } = engine(clock, { logger: log });
    e.set([real('stuck', [stuck], { fall: 3 }), real('fine', [fine])]);
    await clock.advance(10_000);
    // The healthy real was checked every second throughout.
    expect(fine.runs).toEqual([0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000]);
    // The hung probe ran once more after its first good check and was never started again.
    expect(stuck.runs).toEqual([0, 1000]);
    const st = e.status().reals.find((r) => r.id === 'stuck')!;
    expect(st.hung).toBe(1);
    expect(st.skips).toBe(9);
    // The hang (at 1000 + 500 + 500 ms) and the skips while it is stuck count as failures.
    expect(changes.filter((c) => c.id === 'stuck')).toEqual([
      { id: 'stuck', up: true, weight: 10, reason: 'connect ok' },
      { id: 'stuck', up: false, weight: null, reason: '3 checks failed: previous probe still hung, check skipped' },
    ]);
    expect(log.lines).toContain('health check 198.18.1.11:80 (stuck): program probe did not settle within 1000 ms; counted as failed');
    e.stop();
  });

  it('skips (without failing) a check whose previous run is still within its timeout', async () => {
    const clock = new FakeClock();
    // Answers after 1500 ms on an interval of 1000 ms and a timeout of 2000 ms.
    const slow: Probe = {
      kind: 'slow',
      run: () => new Promise((resolve) => clock.setTimer(() => resolve(pass('slow ok')), 1500)),
    };
    const { e, changes } = engine(clock);
    e.set([real('a', [slow], { timeoutMs: 2000 })]);
    await clock.advance(10_000);
    const st = e.status().reals[0]!;
    expect(st.up).toBe(true);
    expect(st.fails).toBe(0);
    expect(st.checks).toBe(6); // at 0, 2000, ..., 10000
    expect(st.skips).toBe(5); // at 1000, 3000, ..., 9000
    expect(changes.length).toBe(1);
    e.stop();
  });

  it('applies set() as a difference: unchanged reals keep state and schedule', async () => {
    const clock = new FakeClock();
    const pa = new ScriptProbe('tcp', clock, () => pass());
    const pb = new ScriptProbe('tcp', clock, () => pass());
    const pc = new ScriptProbe('tcp', clock, () => pass());
    let r = 0.25;
    const { e, changes, weights } = engine(clock, { random: () => r });
    const a = real('a', [pa], { rise: 5 });
    e.set([a, real('b', [pb], { target: { address: '198.18.1.12', port: 80 } })]);
    await clock.advance(2000);
    const before = e.status().reals.find((x) => x.id === 'a')!;
    expect(before).toMatchObject({ up: true, checks: 2, passes: 2, nextDueAt: 2250 });
    r = 0.75;
    // a: same target and probes, new weight; b: gone; c: new.
    e.set([{ ...a, weight: 3 }, real('c', [pc], { target: { address: '198.18.1.13', port: 80 } })]);
    expect(weights).toEqual([{ id: 'a', weight: 3, reason: 'configured weight 3' }]);
    expect(e.status().reals.map((x) => [x.id, x.up, x.passes, x.nextDueAt])).toEqual([['a', true, 2, 2250], ['c', false, 0, 2750]]);
    await clock.advance(3000);
    expect(pa.runs).toEqual([250, 1250, 2250, 3250, 4250]);
    expect(pb.runs).toEqual([250, 1250]);
    expect(pc.runs).toEqual([2750, 3750, 4750]);
    expect(changes.map((c) => [c.id, c.up])).toEqual([['a', true], ['b', true], ['c', true]]);
    // A new address is a new real: it starts over, down until checked.
    e.set([{ ...a, weight: 3, target: { address: '198.18.1.14', port: 80 } }]);
    expect(e.status().reals).toMatchObject([{ id: 'a', up: false, checks: 0, lastChange: null }]);
    e.stop();
  });

  it('activates the sorry server when every real of a group is down and back when one is up', async () => {
    const clock = new FakeClock();
    const script1 = [false, true, false, false];
    const script2 = [false, false, false, true];
    const p1 = new ScriptProbe('tcp', clock, (n) => (script1[n] ?? true ? pass() : fail()));
    const p2 = new ScriptProbe('tcp', clock, (n) => (script2[n] ?? true ? pass() : fail()));
    const other = new ScriptProbe('tcp', clock, () => pass());
    const { e, sorry } = engine(clock);
    const server = { target: { address: '198.18.3.99', port: 80 }, weight: 1 };
    e.set(
      [real('r1', [p1], { group: 'web' }), real('r2', [p2], { group: 'web', target: { address: '198.18.1.12', port: 80 } }), real('m1', [other], { group: 'mail' })],
      { web: server },
    );
    // Nothing is up before the first checks: the sorry server serves at once.
    expect(sorry).toEqual([{ group: 'web', active: true, server }]);
    await clock.advance(0); // both fail
    expect(sorry.length).toBe(1);
    await clock.advance(1000); // r1 up
    expect(sorry.at(-1)).toEqual({ group: 'web', active: false, server });
    await clock.advance(1000); // r1 down, r2 still down
    expect(sorry.at(-1)).toEqual({ group: 'web', active: true, server });
    await clock.advance(1000);
    await clock.advance(1000); // r2 up
    expect(sorry.map((s) => s.active)).toEqual([true, false, true, false]);
    expect(e.status().sorry).toEqual([{ group: 'web', active: false }]);
    e.stop();
  });

  it('stop() cancels every timer and aborts the probes in flight', async () => {
    const clock = new FakeClock();
    const p = new ScriptProbe('http', clock, () => 'until-abort');
    const { e } = engine(clock);
    e.set([real('a', [p]), real('b', [p], { target: { address: '198.18.1.12', port: 80 } })]);
    await clock.advance(0);
    expect(p.runs.length).toBe(2);
    e.stop();
    await flush();
    expect(p.aborted).toBe(2);
    expect(clock.pending).toBe(0);
    await clock.advance(10_000);
    expect(p.runs.length).toBe(2);
  });

  it('watchdog: a blocked event loop is reported once as a stall, then as recovered', async () => {
    const log = recordingLogger();
    const e = new HealthEngine({ logger: log, watchdogMs: 100 });
    const p: Probe = { kind: 'tcp', run: async () => pass() };
    const stalled: StalledEvent[] = [];
    e.on('stalled', (s: StalledEvent) => stalled.push(s));
    const recovered = new Promise<void>((resolve) => e.once('recovered', () => resolve()));
    e.set(Array.from({ length: 20 }, (_, i) => real(`r${i}`, [p], { intervalMs: 100, timeoutMs: 100, target: { address: '198.18.1.11', port: 1000 + i } })));
    await new Promise((r) => setTimeout(r, 300));
    expect(stalled).toEqual([]);
    // Block the loop well past interval + 1 s.
    const until = performance.now() + 1600;
    while (performance.now() < until) {
      /* deliberately blocking */
    }
    await recovered;
    e.stop();
    expect(stalled.length).toBe(1);
    expect(stalled[0]!.overdue).toBe(20);
    expect(stalled[0]!.lagMs).toBeGreaterThan(1000);
    expect(log.lines.filter((l) => l.startsWith('health engine stalled: 20 checks overdue, loop lag '))).toHaveLength(1);
    expect(e.status().overdueTotal).toBe(20);
  });
});
