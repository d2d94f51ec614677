// Health engine at scale: 10,000 TCP checks at 1 s intervals (10,000 connects per second)
// against local TCP servers in a child process, with the event-loop delay of the process that
// runs the engine (perf_hooks.monitorEventLoopDelay, p99) and its CPU per 1,000 checks. The
// references, measured in the same run: the same process idle (its loop delay floor), and the
// engine alone with an instant probe (its own bookkeeping, without sockets).
//
//   node bench/health.js [--quick] [--json]
//
// Everything runs in a network namespace of its own (needs root): the engine's process moves
// its JS thread there and the server child is born there, so 127.0.0.1 is the bench's alone.
// The servers listen on 127.0.0.1 (64 ports, so the client's ephemeral ports never run out);
// the probe connects and closes with a reset, as a health checker can, so no TIME_WAIT piles
// up. Goal: loop delay p99 under 20 ms with the checks running.
import { fork } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const args = new Set(process.argv.slice(2));

if (args.has('--servers')) {
  // Child: N listening sockets that accept and forget.
  const n = 64;
  const ports = [];
  for (let i = 0; i < n; i++) {
    const s = createServer((sock) => {
      sock.on('error', () => {});
      sock.resume();
    });
    await new Promise((resolve, reject) => {
      s.once('error', reject);
      s.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, resolve);
    });
    ports.push(s.address().port);
  }
  process.send({ ports });
  process.on('disconnect', () => process.exit(0));
} else {
  await main();
}

async function main() {
  const { HealthEngine } = await import('../dist/health/index.js');
  const { Netns, cleanupOnExit } = await import('../dist/lab/netns.js');
  const { native } = await import('../dist/dataplane/native.js');
  cleanupOnExit();
  const ns = Netns.create('health-bench');
  native().host.enterNetns(ns.name);
  const quick = args.has('--quick');
  const CHECKS = 10_000;
  const INTERVAL = 1000;
  const WARMUP = quick ? 2000 : 3000;
  const MEASURE = quick ? 4000 : 10_000;

  const child = fork(fileURLToPath(import.meta.url), ['--servers'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const { ports } = await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`server child exited with ${code}`)));
  });

  /** A plain TCP connect check (what nanny does without send/expect), closed with a reset. */
  const tcp = {
    kind: 'tcp',
    run(target, timeoutMs, signal) {
      const t0 = performance.now();
      return new Promise((resolve) => {
        const sock = connect({ host: target.address, port: target.port });
        let done = false;
        const end = (ok, reason) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          sock.resetAndDestroy();
          resolve({ ok, reason, ms: performance.now() - t0 });
        };
        const onAbort = () => end(false, 'aborted');
        const timer = setTimeout(() => end(false, `connect timed out after ${timeoutMs} ms`), timeoutMs);
        signal?.addEventListener('abort', onAbort);
        sock.once('connect', () => end(true, 'connect ok'));
        sock.once('error', (err) => end(false, `connect: ${err.code ?? err.message}`));
      });
    },
  };
  const instant = { kind: 'noop', run: () => Promise.resolve({ ok: true, reason: 'ok', ms: 0 }) };

  const reals = (probe) =>
    Array.from({ length: CHECKS }, (_, i) => ({
      id: `TCP 198.18.0.100:80 -> 127.0.0.1:${ports[i % ports.length]} #${i}`,
      target: { address: '127.0.0.1', port: ports[i % ports.length] },
      probes: [probe],
      intervalMs: INTERVAL,
      timeoutMs: 500,
      rise: 1,
      fall: 1,
      weight: 1,
      quiesce: false,
    }));

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  /** Loop delay and CPU over `ms`, with `count()` giving checks completed so far. */
  async function measure(ms, count) {
    const h = monitorEventLoopDelay({ resolution: 5 });
    const c0 = count();
    const cpu0 = process.cpuUsage();
    h.enable();
    await sleep(ms);
    h.disable();
    const cpu = process.cpuUsage(cpu0);
    const checks = count() - c0;
    return { p99: h.percentile(99) / 1e6, max: h.max / 1e6, cpuMs: (cpu.user + cpu.system) / 1000, checks };
  }

  async function run(probe) {
    const engine = new HealthEngine();
    let failed = 0;
    let done = 0;
    const counting = {
      kind: probe.kind,
      run: (t, ms, s) =>
        probe.run(t, ms, s).then((r) => {
          done++;
          if (!r.ok) failed++;
          return r;
        }),
    };
    let stalls = 0;
    engine.on('stalled', () => stalls++);
    engine.set(reals(counting));
    await sleep(WARMUP);
    const m = await measure(MEASURE, () => done);
    const up = engine.status().reals.filter((r) => r.up).length;
    engine.stop();
    return { ...m, failed, up, stalls };
  }

  const results = [];
  const report = (name, value, unit) => {
    results.push({ name, value, unit });
    if (!args.has('--json')) console.log(`${name} ${value} ${unit}`);
  };
  const r3 = (x) => +x.toFixed(3);

  const idle = await measure(quick ? 1000 : 2000, () => 0);
  report('health_idle_loop_delay_p99_ms', r3(idle.p99), 'ms');

  const eng = await run(instant);
  report('health_engine_only_checks_per_s', Math.round((eng.checks * 1000) / MEASURE), 'checks/s');
  report('health_engine_only_cpu_ms_per_1000_checks', r3((eng.cpuMs * 1000) / eng.checks), 'ms');
  report('health_engine_only_loop_delay_p99_ms', r3(eng.p99), 'ms');

  const t = await run(tcp);
  if (t.failed > 0) console.error(`bench/health.js: ${t.failed} TCP checks failed (machine overloaded?)`);
  report('health_tcp_checks_per_s', Math.round((t.checks * 1000) / MEASURE), 'checks/s');
  report('health_tcp_failed_checks', t.failed, 'checks');
  report('health_tcp_reals_up', t.up, 'reals');
  report('health_tcp_cpu_ms_per_1000_checks', r3((t.cpuMs * 1000) / t.checks), 'ms');
  report('health_tcp_loop_delay_p99_ms', r3(t.p99), 'ms');
  report('health_tcp_loop_delay_max_ms', r3(t.max), 'ms');
  report('health_tcp_stall_episodes', t.stalls, 'episodes');

  child.disconnect();
  child.kill();
  ns.remove();
  if (args.has('--json')) console.log(JSON.stringify(results));
}
