// Failover on the namespace lab with two directors (src/lab/lab.ts, directors: 2): two lvsd
// processes (primary and backup, pulse heartbeats, connection sync), N long-lived TCP
// connections through the NAT VIP to two NAT reals (test/e2e/clients/longlived.mjs: each
// connection sends a line and waits for its echo, every interval), then kill -9 of the active
// lvsd. Measured:
//
//   takeover        kill -9 of the active to the backup's "director active" log line (its VIPs
//                   are up and the first gratuitous ARPs out): the dead time as the backup
//                   sees it (the last heartbeat it heard was up to one keepalive before the
//                   kill) plus lvsd's own work
//   failover time   the last frame forwarded by the old active to the first frame forwarded by
//                   the new one, from a capture on the switch ports (src/lab/failover-clock.ts);
//                   it includes the takeover, the gratuitous ARPs reaching the client and reals,
//                   and the wait for the next packet: a TCP retransmission, whose timer has
//                   backed off (0.2, 0.4, 0.8, 1.6, 3.2 s ...) while the VIP was unreachable
//   surviving       connections that, a few seconds after the takeover, have lost no echo
//
// with Piranha's default timing (keepalive 2 s, deadtime 5 s) and a sub-second one (keepalive
// 0.1 s, deadtime 0.3 s), for 10, 1,000 and 10,000 connections. The reference is the dead
// time itself, which bounds what any heartbeat failover can do: the backup cannot tell a dead
// partner from a slow one sooner (it last heard the partner up to one keepalive before the
// kill, so the takeover may come in less than deadtime after it).
//
//   node bench/failover.js [--quick] [--json]      (root: it makes network namespaces)
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab } from '../dist/lab/lab.js';
import { FailoverClock } from '../dist/lab/failover-clock.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const quick = args.has('--quick');
const LVSD = join(root, 'dist', 'cli', 'lvsd.js');
const LONGLIVED = join(root, 'test', 'e2e', 'clients', 'longlived.mjs');

if (process.getuid?.() !== 0) {
  console.error('bench/failover.js needs root (it makes network namespaces)');
  process.exit(2);
}

const results = [];
const report = (name, value, unit) => {
  results.push({ name, value, unit });
  if (!args.has('--json')) console.log(`${name} ${value} ${unit}`);
};
const log = (msg) => console.error(`failover: ${msg}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const TIMINGS = quick
  ? [{ name: 'sub-second', keepalive: 0.1, deadtime: 0.3 }]
  : [{ name: 'default', keepalive: 2, deadtime: 5 }, { name: 'sub-second', keepalive: 0.1, deadtime: 0.3 }];
const COUNTS = quick ? [10, 1000] : [10, 1000, 10000];

const lab = await Lab.create({ reals: [{ name: 'n1', method: 'nat' }, { name: 'n2', method: 'nat' }], directors: 2, ipv6: false, vips: 1, clientAddresses: 10, tag: 'bfo' });
const tmp = mkdtempSync(join(tmpdir(), 'lvsd-bench-failover-'));
const procs = new Set();

function lvsCf(t) {
  const [d1, d2] = lab.directors;
  return `serial_no = 1
primary = ${d1.address4.pub}
primary_private = ${d1.address4.priv}
backup = ${d2.address4.pub}
backup_private = ${d2.address4.priv}
backup_active = 1
keepalive = ${t.keepalive}
deadtime = ${t.deadtime}
heartbeat_key = heartbeat.key
service = lvs
network = nat
nat_router = ${lab.natRouter4} priv
virtual echo {
     active = 1
     address = ${lab.vip4(0)} pub
     port = 7
     protocol = tcp
     scheduler = rr
     timeout = 1
     server n1 {
         address = ${lab.real('n1').address4}
         active = 1
     }
     server n2 {
         address = ${lab.real('n2').address4}
         active = 1
     }
}
`;
}

/** lvsd in a director namespace; resolves lines as they come. */
function lvsd(name, ns, t) {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'heartbeat.key'), 'bHZzZC1iZW5jaC1rZXktZm9yLWZhaWxvdmVyLW9ubHk=\n', { mode: 0o600 });
  chmodSync(join(dir, 'heartbeat.key'), 0o600);
  writeFileSync(join(dir, 'lvs.cf'), lvsCf(t));
  const child = spawn(process.execPath, [LVSD, '-c', join(dir, 'lvs.cf'), '--socket', join(dir, 'sock'), '--netns', ns, '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const p = { child, lines: [] };
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d.toString();
    let at;
    while ((at = buf.indexOf('\n')) >= 0) {
      try {
        p.lines.push(JSON.parse(buf.slice(0, at)));
      } catch {
        // not JSON
      }
      buf = buf.slice(at + 1);
    }
  });
  p.exited = new Promise((r) => child.once('exit', r));
  procs.add(p);
  p.exited.then(() => procs.delete(p));
  p.wait = async (what, pred, timeoutMs = 60_000) => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const hit = p.lines.find(pred);
      if (hit) return hit;
      if (child.exitCode !== null) throw new Error(`${name} exited while waiting for ${what}`);
      if (Date.now() > end) throw new Error(`${name}: no ${what} in ${timeoutMs} ms`);
      await sleep(50);
    }
  };
  return p;
}

function client(n, intervalMs) {
  const child = spawn('ip', ['netns', 'exec', lab.client.ns.name, process.execPath, LONGLIVED, lab.vip4(0), '7', '--connections', String(n), '--interval-ms', String(intervalMs), '--sources', '10', '--drain-ms', '3000'], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d.toString()));
  const running = (async () => {
    while (!out.includes('"phase":"running"')) {
      if (child.exitCode !== null) throw new Error('longlived exited');
      await sleep(50);
    }
  })();
  const done = new Promise((resolve) => child.once('exit', () => resolve(JSON.parse(out.split('\n').find((l) => l.includes('"type":"result"'))))));
  return { running, stop: () => (child.stdin.write('stop\n'), done) };
}

try {
  await lab.startServers();
  for (const t of TIMINGS) {
    for (const n of COUNTS) {
      log(`${t.name} timing (keepalive ${t.keepalive} s, deadtime ${t.deadtime} s), ${n} connections`);
      const a = lvsd('a', lab.directors[0].ns.name, t);
      await a.wait('the primary going active', (l) => l.event === 'active');
      const b = lvsd('b', lab.directors[1].ns.name, t);
      await b.wait('the backup', (l) => l.event === 'ready');
      await a.wait('every real up', () => a.lines.filter((x) => /^real n\d .* up/.test(x.msg ?? '')).length >= 2);
      await b.wait('the backup linked', (l) => l.event === 'sync-dump');
      // One line per connection per interval: 10 ms apart over all of them at most 10,000/s.
      const interval = Math.max(100, n / 10);
      const c = client(n, interval);
      await c.running;
      await sleep(Math.max(1000, 2 * interval)); // the stream reaches the backup (state ES)
      const clock = new FailoverClock(lab);
      await clock.start();
      await sleep(500);
      const killedAt = Date.now();
      a.child.kill('SIGKILL');
      const took = await b.wait('the takeover', (l) => l.event === 'active', (t.deadtime + 10) * 1000);
      await sleep(Math.max(3000, 3 * interval));
      const gap = await clock.stop();
      const r = await c.stop();
      report(`${t.name}, ${n} connections: kill -9 to VIPs up on the backup`, Math.round(took.time - killedAt), 'ms');
      report(`${t.name}, ${n} connections: failover time`, Math.round(gap.gapMs ?? -1), 'ms');
      report(`${t.name}, ${n} connections: surviving`, r.totals.survived, `of ${r.totals.connections}`);
      if (r.totals.failed) log(`failed: ${JSON.stringify(r.connections.filter((x) => x.error).slice(0, 3))}`);
      b.child.kill('SIGTERM');
      await b.exited;
      await a.exited;
      await sleep(500);
    }
  }
} finally {
  for (const p of procs) p.child.kill('SIGKILL');
  lab.destroy();
  rmSync(tmp, { recursive: true, force: true });
}
if (args.has('--json')) console.log(JSON.stringify(results));
