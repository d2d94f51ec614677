/**
 * The long-lived-connection client (test/e2e/clients/longlived.mjs) against the reals' TCP
 * echo, without a Director: straight to a NAT real's own address (through the director
 * namespace's kernel forwarding, as the lab routes it) and to a DR real's own address. Every
 * connection survives while nothing breaks; when the real's application is killed, every
 * connection is reported failed, with the error that ended it.
 * The lab runs the built real application: `npx tsc -p tsconfig.build.json` first (npm test does).
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/dataplane/native.js';
import { Lab, type LabReal } from '../../src/lab/lab.js';
import { removeAllNamespaces } from '../../src/lab/netns.js';

const realApp = join(packageRoot, 'dist', 'lab', 'real-app.js');
if (!existsSync(realApp)) {
  throw new Error(`${realApp} is missing: the lab runs the built JavaScript. Run "npx tsc -p tsconfig.build.json" first (npm test does).`);
}
const LONGLIVED = join(packageRoot, 'test', 'e2e', 'clients', 'longlived.mjs');

interface Conn {
  source: string | null;
  real: string | null;
  sent: number;
  echoed: number;
  maxGapMs: number;
  error: string | null;
  closedByPeer: boolean;
}
interface Result {
  type: 'result';
  connections: Conn[];
  totals: { connections: number; survived: number; failed: number; maxGapMs: number; opened: number; sent: number; echoed: number; reals: Record<string, number>; bySource: Record<string, string[]>; openMs: number };
}
interface Status {
  type: 'status';
  phase: string;
  connections: number;
  opened: number;
  open: number;
  failed: number;
  sent: number;
  echoed: number;
  outstanding: number;
  reals: Record<string, number>;
}

/** longlived.mjs in the client namespace, driven over stdin; lines from stdout as they come. */
class Longlived {
  private readonly lines: unknown[] = [];
  private waiters: Array<() => void> = [];
  readonly child: ChildProcess;
  stderr = '';

  constructor(lab: Lab, args: string[]) {
    this.child = lab.client.ns.spawn(process.execPath, [LONGLIVED, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: this.child.stdout! }).on('line', (l) => {
      this.lines.push(JSON.parse(l));
      for (const w of this.waiters.splice(0)) w();
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.child.once('exit', () => {
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** The next line from stdout that satisfies `pred`, waiting for it (the process must still run). */
  async next<T>(pred: (x: any) => boolean): Promise<T> {
    for (;;) {
      const i = this.lines.findIndex(pred);
      if (i >= 0) return this.lines.splice(0, i + 1).at(-1) as T;
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`longlived exited (${this.child.exitCode ?? this.child.signalCode}): ${this.stderr}`);
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  async status(): Promise<Status> {
    this.child.stdin!.write('status\n');
    return this.next<Status>((x) => x.type === 'status');
  }

  /** Poll the status until `pred` holds. */
  async until(pred: (s: Status) => boolean): Promise<Status> {
    for (;;) {
      const s = await this.status();
      if (pred(s)) return s;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(): Promise<Result> {
    this.child.stdin!.write('stop\n');
    return this.next<Result>((x) => x.type === 'result');
  }
}

afterAll(() => removeAllNamespaces());

describe('longlived.mjs against the reals, without a director', () => {
  let lab: Lab;
  let nat: LabReal;
  let dr: LabReal;
  const clients: Longlived[] = [];

  beforeAll(async () => {
    lab = await Lab.create({ reals: [{ method: 'nat' }, { method: 'direct' }], clientAddresses: 12 });
    [nat, dr] = lab.reals as [LabReal, LabReal];
    await lab.startServers();
    // Stand in for the Director: the NAT reals' gateway (their answers to the client go through it).
    lab.director.ns.ip('address', 'add', `${lab.natRouter4}/32`, 'dev', 'priv');
    lab.director.ns.ip('address', 'add', `${lab.natRouter6}/128`, 'dev', 'priv', 'nodad');
  });
  afterAll(() => {
    for (const c of clients) c.child.kill('SIGKILL');
    lab?.destroy();
  });

  it('50 connections to a NAT real (through the director namespace) and to a DR real, 1 s: all survive, every echo in order', async () => {
    for (const r of [nat, dr]) {
      const out = await lab.runClient(LONGLIVED, [r.address4, '7', '--connections', '50', '--interval-ms', '100', '--duration-ms', '1000'], { timeoutMs: 30_000 });
      const result = JSON.parse(out.stdout.trim().split('\n').at(-1)!) as Result;
      expect(result.type).toBe('result');
      expect(result.totals).toMatchObject({ connections: 50, survived: 50, failed: 0, opened: 50, reals: { [r.name]: 50 } });
      expect(result.connections).toHaveLength(50);
      for (const c of result.connections) {
        expect(c).toMatchObject({ source: lab.client.address4, real: r.name, error: null, closedByPeer: false });
        expect(c.sent).toBeGreaterThan(0);
        expect(c.echoed).toBe(c.sent);
      }
      expect(result.totals.echoed).toBe(result.totals.sent);
    }
  });

  it('--sources spreads the connections over the extra client addresses (IPv4 and IPv6) and says which real each reached', async () => {
    const four = JSON.parse((await lab.runClient(LONGLIVED, [dr.address4, '7', '-n', '20', '--sources', '5', '--interval-ms', '200', '--duration-ms', '600'])).stdout.trim().split('\n').at(-1)!) as Result;
    expect(four.totals.survived).toBe(20);
    expect(four.connections.map((c) => c.source)).toEqual(Array.from({ length: 20 }, (_, i) => lab.client.extra4[i % 5]));
    expect(four.totals.bySource).toEqual(Object.fromEntries(lab.client.extra4.slice(0, 5).map((a) => [a, ['r2']])));
    const six = JSON.parse((await lab.runClient(LONGLIVED, [nat.address6!, '7', '-n', '12', '--sources', '12', '--interval-ms', '200', '--duration-ms', '600'])).stdout.trim().split('\n').at(-1)!) as Result;
    expect(six.totals).toMatchObject({ survived: 12, reals: { r1: 12 } });
    // Past the tenth, the extra addresses are off the LAN (2001:db8:2::/64), reached through the client.
    expect(six.connections.map((c) => c.source)).toEqual(lab.client.extra6.slice(0, 12));
  });

  it('killing the real mid-run: every connection is reported failed, with the error that ended it', async () => {
    for (const r of [nat, dr]) {
      const ll = new Longlived(lab, [r.address4, '7', '-n', '50', '--interval-ms', '100']);
      clients.push(ll);
      const running = await ll.next<Status>((x) => x.type === 'status' && x.phase === 'running');
      expect(running).toMatchObject({ connections: 50, opened: 50, open: 50, failed: 0, reals: { [r.name]: 50 } });
      // Echoes flow on every connection before the real dies.
      await ll.until((s) => s.echoed >= 150);
      lab.stopServer(r);
      const after = await ll.until((s) => s.open === 0);
      expect(after.failed).toBe(50);
      const result = await ll.stop();
      expect(result.totals).toMatchObject({ connections: 50, survived: 0, failed: 50 });
      for (const c of result.connections) {
        expect(c.real).toBe(r.name);
        expect(c.echoed).toBeGreaterThan(0);
        // A killed process's sockets are closed by the kernel: a FIN (closed-by-peer), or a
        // reset when our next line arrived first.
        expect(c.error).toMatch(/^(closed-by-peer|ECONNRESET|EPIPE)$/);
        expect(c.closedByPeer).toBe(c.error === 'closed-by-peer');
      }
      await lab.startServer(r);
    }
  });

  it('holds 10,000 connections to one real, each echoing a line a second', async () => {
    const ll = new Longlived(lab, [dr.address4, '7', '-n', '10000', '--interval-ms', '1000', '--sources', '10']);
    clients.push(ll);
    const running = await ll.next<Status>((x) => x.type === 'status' && x.phase === 'running');
    expect(running).toMatchObject({ connections: 10000, opened: 10000, open: 10000, failed: 0 });
    // Two rounds of lines on every connection.
    await ll.until((s) => s.echoed >= 20000);
    const result = await ll.stop();
    expect(result.totals).toMatchObject({ connections: 10000, survived: 10000, failed: 0, reals: { r2: 10000 } });
    expect(result.totals.echoed).toBe(result.totals.sent);
    console.log(`longlived: 10,000 connections opened in ${Math.round(result.totals.openMs)} ms; ${result.totals.echoed} echoes, longest gap ${result.totals.maxGapMs} ms`);
  }, 120_000);

  it('a connection the real refuses is a failure too, and the other options are checked', async () => {
    const refused = JSON.parse((await lab.runClient(LONGLIVED, [dr.address4, '9', '-n', '3', '--duration-ms', '300'])).stdout.trim().split('\n').at(-1)!) as Result;
    expect(refused.totals).toMatchObject({ connections: 3, survived: 0, failed: 3, opened: 0 });
    expect(refused.connections.map((c) => c.error)).toEqual(['ECONNREFUSED', 'ECONNREFUSED', 'ECONNREFUSED']);
    const bad = await lab.runClient(LONGLIVED, ['not-an-address', '7'], { check: false });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/HOST "not-an-address" is not an IP address/);
    const mixed = await lab.runClient(LONGLIVED, [dr.address4, '7', '--source-list', '2001:db8::20'], { check: false });
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toMatch(/not an IPv4 address/);
  });
});
