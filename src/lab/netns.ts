/**
 * Network namespaces for the lab, the tests and the benchmarks: create, run commands inside,
 * connect with veth pairs, and remove again, also after a failure.
 *
 * Every namespace made here is named `lvsd-<pid>-<name>`, so a namespace left behind by a
 * process that died (kill -9, a crashed CI runner) is recognised and removed by
 * `removeStaleNamespaces()`. Nothing here touches the namespace the process runs in.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { LvsError } from '../errors.js';

const PREFIX = 'lvsd-';

/** Run a program and return its stdout; a failure throws LVS_LAB_COMMAND with stderr. */
export function run(program: string, args: readonly string[], input?: string): string {
  try {
    return execFileSync(program, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  } catch (cause) {
    const e = cause as { stderr?: string; status?: number };
    throw new LvsError('LVS_LAB_COMMAND', `${program} ${args.join(' ')}: exit ${e.status ?? '?'}: ${(e.stderr ?? '').trim()}`, { cause });
  }
}

export class Netns {
  private removed = false;
  private readonly children = new Set<ChildProcess>();

  private constructor(
    /** The full name, as `ip netns` knows it. */
    readonly name: string,
  ) {}

  /** A new namespace `lvsd-<pid>-<short>` with its loopback up. */
  static create(short: string): Netns {
    const name = `${PREFIX}${process.pid}-${short}`;
    run('ip', ['netns', 'add', name]);
    const ns = new Netns(name);
    live.add(ns);
    ns.ip('link', 'set', 'lo', 'up');
    return ns;
  }

  /** Run a program inside the namespace and return its stdout. */
  exec(program: string, ...args: string[]): string {
    return run('ip', ['netns', 'exec', this.name, program, ...args]);
  }

  /** `ip ...` inside the namespace. */
  ip(...args: string[]): string {
    return run('ip', ['-n', this.name, ...args]);
  }

  /** Write a sysctl inside the namespace (`net.ipv4.ip_forward`, value). */
  sysctl(key: string, value: string | number): void {
    this.exec('sysctl', '-qw', `${key}=${value}`);
  }

  /** Start a long-running program inside the namespace; it is killed when the namespace goes. */
  spawn(program: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.name, program, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Kill what was spawned here, then delete the namespace (its veth ends go with it). */
  remove(): void {
    if (this.removed) return;
    this.removed = true;
    for (const c of this.children) c.kill('SIGKILL');
    this.children.clear();
    // A namespace whose processes are gone is freed at once; `ip netns del` also unmounts.
    try {
      run('ip', ['netns', 'del', this.name]);
    } catch {
      // Already gone (removed by hand, or by removeStaleNamespaces in another process).
    }
    live.delete(this);
  }
}

/** A veth pair with one end in each namespace, both up. Names are at most 15 characters. */
export function vethPair(a: Netns, aName: string, b: Netns, bName: string, options: { mtu?: number; queues?: number } = {}): void {
  const q = options.queues ? ['numrxqueues', String(options.queues), 'numtxqueues', String(options.queues)] : [];
  const pq = options.queues ? ['numrxqueues', String(options.queues), 'numtxqueues', String(options.queues)] : [];
  a.ip('link', 'add', aName, ...q, 'type', 'veth', 'peer', 'name', bName, ...pq, 'netns', b.name);
  if (options.mtu) {
    a.ip('link', 'set', aName, 'mtu', String(options.mtu));
    b.ip('link', 'set', bName, 'mtu', String(options.mtu));
  }
  a.ip('link', 'set', aName, 'up');
  b.ip('link', 'set', bName, 'up');
}

const live = new Set<Netns>();
let hooked = false;

/** Remove every namespace this process made (tests call it in afterAll; exit calls it too). */
export function removeAllNamespaces(): void {
  for (const ns of [...live]) ns.remove();
}

/** Remove `lvsd-<pid>-*` namespaces whose process is gone. */
export function removeStaleNamespaces(): string[] {
  const removed: string[] = [];
  const dir = '/run/netns';
  if (!existsSync(dir)) return removed;
  for (const name of readdirSync(dir)) {
    const m = /^lvsd-(\d+)-/.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || existsSync(`/proc/${pid}`)) continue;
    try {
      run('ip', ['netns', 'del', name]);
      removed.push(name);
    } catch {
      // Raced with another cleaner.
    }
  }
  return removed;
}

/** Remove this process's namespaces when it exits or is interrupted. */
export function cleanupOnExit(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', removeAllNamespaces);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      removeAllNamespaces();
      process.kill(process.pid, sig);
    });
  }
}
