/**
 * lvsd as a child process in a lab namespace (`lvsd -c FILE --netns NS --socket PATH`), with
 * its JSON log lines kept for the test to wait on. Processes are killed after the file, also
 * after a failure.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { packageRoot } from '../../src/dataplane/native.js';

export const LVSD = join(packageRoot, 'dist', 'cli', 'lvsd.js');
export const LVSADM = join(packageRoot, 'dist', 'cli', 'lvsadm.js');

export type LogRecord = Record<string, unknown> & { time?: number; msg?: string; event?: string };

const running = new Set<LvsdProcess>();
afterAll(async () => {
  for (const p of running) await p.kill('SIGKILL');
});

export class LvsdProcess {
  readonly lines: LogRecord[] = [];
  readonly stderr: string[] = [];
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private waiters: Array<() => void> = [];

  constructor(readonly name: string, readonly config: string, readonly netns: string, readonly socket: string, extra: string[] = []) {
    this.child = spawn(process.execPath, [LVSD, '-c', config, '--socket', socket, '--netns', netns, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(this);
    let buf = '';
    this.child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let at: number;
      while ((at = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, at);
        buf = buf.slice(at + 1);
        try {
          this.lines.push(JSON.parse(line) as LogRecord);
        } catch {
          this.lines.push({ raw: line });
        }
      }
      for (const w of this.waiters.splice(0)) w();
    });
    this.child.stderr!.on('data', (d: Buffer) => this.stderr.push(d.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => {
      running.delete(this);
      resolve({ code, signal });
      for (const w of this.waiters.splice(0)) w();
    }));
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The first log line (from `from` on) that `pred` accepts, waiting up to timeoutMs. */
  async waitLog(what: string, pred: (l: LogRecord) => boolean, timeoutMs = 15_000, from = 0): Promise<LogRecord> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.slice(from).find(pred);
      if (hit) return hit;
      if (!this.alive) throw new Error(`${this.name}: exited while waiting for ${what}\n${this.tail()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.name}: no ${what} within ${timeoutMs} ms\n${this.tail()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  has(pred: (l: LogRecord) => boolean, from = 0): boolean {
    return this.lines.slice(from).some(pred);
  }

  /** The last lines, for failure messages. */
  tail(n = 25): string {
    return [...this.lines.slice(-n).map((l) => (l.msg ? `${String(l.event ?? '')}: ${l.msg}` : JSON.stringify(l))), ...this.stderr.slice(-5)].join('\n');
  }

  lvsadm(...args: string[]): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync(process.execPath, [LVSADM, '--socket', this.socket, ...args], { encoding: 'utf8' });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.alive) this.child.kill(signal);
    return this.exited;
  }
}
