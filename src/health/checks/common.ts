/**
 * What every probe shares: one attempt that settles exactly once (reply, failure, hard timeout or
 * abort), measures itself, and runs its clean-ups (sockets, processes, timers) on settling.
 */
import type { ProbeResult } from '../types.js';

/** Replies are read at most this far (Piranha read one buffer of 255 bytes; we read until the expect is decided). */
export const MAX_REPLY = 64 * 1024;

export type Outcome = Omit<ProbeResult, 'ms'>;

export interface Attempt {
  /** Settle the attempt (the first call wins; later calls are ignored). */
  settle(o: Outcome): void;
  ok(reason: string, extra?: Partial<Outcome>): void;
  fail(reason: string): void;
  /** Run `fn` when the attempt settles (in the order registered). */
  onSettle(fn: () => void): void;
  /** What the probe is waiting for, named in the timeout reason ("connecting", "waiting for a reply"). */
  phase: string;
  readonly settled: boolean;
}

/**
 * Run `body` as one attempt bounded by `timeoutMs`. The timer and the abort listener belong to the
 * attempt and are released when it settles, whatever settled it. `body` must not throw; if it
 * does anyway, the attempt fails with the error's message instead of rejecting.
 */
export function attempt(timeoutMs: number, signal: AbortSignal | undefined, body: (a: Attempt) => void): Promise<ProbeResult> {
  const start = performance.now();
  return new Promise<ProbeResult>((resolve) => {
    let done = false;
    const cleanups: Array<() => void> = [];
    let timer: NodeJS.Timeout | undefined;
    const onAbort = (): void => a.fail('aborted');
    const a: Attempt = {
      phase: 'connecting',
      get settled() { return done; },
      settle(o: Outcome) {
        if (done) return;
        done = true;
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        for (const fn of cleanups) {
          try { fn(); } catch { /* a clean-up that fails has nothing left to release */ }
        }
        resolve({ ...o, ms: Math.round((performance.now() - start) * 10) / 10 });
      },
      ok(reason: string, extra?: Partial<Outcome>) { a.settle({ ...extra, ok: true, reason }); },
      fail(reason: string) { a.settle({ ok: false, reason }); },
      onSettle(fn: () => void) {
        if (done) { try { fn(); } catch { /* as above */ } return; }
        cleanups.push(fn);
      },
    };
    if (signal?.aborted) { a.fail('aborted'); return; }
    const ms = Number.isFinite(timeoutMs) && timeoutMs > 0 ? timeoutMs : 1;
    timer = setTimeout(() => a.fail(`timeout after ${ms} ms (${a.phase})`), ms);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      body(a);
    } catch (e) {
      a.fail(`check failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  });
}

/** A socket error as an operator reads it. */
export function describeError(e: unknown): string {
  const err = e as NodeJS.ErrnoException & { reason?: string };
  switch (err?.code) {
    case 'ECONNREFUSED': return 'connect refused';
    case 'ECONNRESET': return 'connection reset by peer';
    case 'EHOSTUNREACH': return 'host unreachable';
    case 'ENETUNREACH': return 'network unreachable';
    case 'EADDRNOTAVAIL': return 'address not available';
    case 'EPIPE': return 'connection closed by peer while sending';
    case 'ETIMEDOUT': return 'connect timed out (kernel)';
    default: {
      const msg = err?.message ?? String(e);
      return err?.code !== undefined && !msg.includes(err.code) ? `${err.code}: ${msg}` : msg;
    }
  }
}

/** A reply shown in a reason: printable, quoted, at most `max` characters. */
export function show(data: Buffer | string, max = 40): string {
  const s = typeof data === 'string' ? data : data.subarray(0, max * 4).toString('utf8');
  const clipped = s.length > max ? `${s.slice(0, max)}...` : s;
  // JSON quoting escapes control characters and quotes, so the reason stays on one line.
  return JSON.stringify(clipped);
}
