import type { Clock } from '../../src/ha/heartbeat.js';

/** Time that moves only when the test says so: timers fire inside advance(), in order. */
export class ManualClock implements Clock {
  t = 0;
  private id = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  now(): number { return this.t; }
  wall(): number { return 1_800_000_000_000 + this.t; }
  setTimer(fn: () => void, ms: number): unknown { const id = ++this.id; this.timers.set(id, { at: this.t + ms, fn }); return id; }
  clearTimer(h: unknown): void { this.timers.delete(h as number); }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (next === undefined || e[1].at < next[1].at)) next = e;
      if (next === undefined) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}
