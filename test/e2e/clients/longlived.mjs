// Long-lived TCP connections for failover tests, run inside the lab's client namespace:
//   node longlived.mjs HOST PORT [--connections N] [--interval-ms MS] [--sources K]
//                      [--source-list A,B,..] [--connect-concurrency C] [--connect-timeout-ms MS]
//                      [--duration-ms MS] [--drain-ms MS]
//
// Talks to the lab real's TCP echo (src/lab/real-app.ts, port 7): opens N connections to
// HOST:PORT, at most C (default 256) being set up at a time; on each reads the HELLO line
// ("HELLO <real>\n": which real it reached); then sends "<connection> <seq>\n" on it every
// interval (default 1000 ms; the connections' ticks are spread over the interval) and checks
// that every echo comes back, in order and unchanged. A connection that breaks is never
// reopened: the point is to count the ones that survive (a director failover, say).
//
// Sources: --sources K spreads the connections over the first K of the lab's extra client
// addresses of HOST's family (connection i binds to address i mod K; the same list as
// clientExtraAddress() in src/lab/lab.ts: 198.18.0.20-.29, then 198.18.128.1 ...; IPv6
// 2001:db8::20-::29, then 2001:db8:2::1 ...), so persistence per client address can be
// checked; --source-list gives the addresses instead. Without either, the kernel picks.
//
// It runs until stdin says "stop" (a line), SIGTERM or SIGINT, or --duration-ms passes (stdin
// reaching its end does not stop it, so lab.runClient with --duration-ms works). Stopping:
// no more lines are sent, the echoes still owed are awaited for --drain-ms (default 2000; a
// connection still owed one then gets error "echo-timeout"), every connection is closed, and
// one JSON line is printed:
//   {type: "result",
//    connections: [{source, real, sent, echoed, maxGapMs, error, closedByPeer}, ...],
//    totals: {connections, survived, failed, maxGapMs, opened, sent, echoed, reals: {real: n},
//             bySource: {source: [reals]}, openMs}}
// source is the local address (null if never connected); real is null without a HELLO.
// maxGapMs is the longest time between two echoes on the connection, the HELLO counting as
// the first (so about interval-ms when all is well); totals.maxGapMs is the largest over all
// connections. error is the first thing that went wrong, or null: a socket error code
// (ECONNRESET, ECONNREFUSED, ETIMEDOUT for a connect or HELLO that took longer than
// --connect-timeout-ms (default 10000), EPIPE ...), "closed-by-peer" (the real closed it),
// "mismatch" (an echo that is not the next line sent), "bad-hello", "echo-timeout" (see
// above) or "not-opened" (stopped before it was tried). survived = connections with no error.
// closedByPeer: the peer ended the connection before we stopped.
//
// A line "status" on stdin prints a status line at once:
//   {type: "status", phase, elapsedMs, connections, opened, open, failed, sent, echoed,
//    outstanding, oldestOutstandingMs, maxGapMs, reals: {real: n}}
// (open: connections alive now; outstanding: lines sent and not echoed yet; oldestOutstandingMs:
// how long the longest-waiting live connection has waited for an echo). One status line is
// also printed by itself when every connection has been tried (phase "running"): wait for it
// before breaking things.
//
// File descriptors: Node raises its soft RLIMIT_NOFILE to the hard limit at start; if N
// connections still do not fit, it says so and exits 2: run it under `sh -c 'ulimit -n 65536
// && exec node longlived.mjs ...'` (raising the hard limit takes CAP_SYS_RESOURCE; where even
// root may not, as in a container, N is bounded by the hard limit less about 64). The reals'
// application needs one descriptor per connection too.
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

function usage(message) {
  process.stderr.write(`longlived: ${message}\n`);
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      connections: { type: 'string', short: 'n', default: '10' },
      'interval-ms': { type: 'string', default: '1000' },
      sources: { type: 'string', default: '0' },
      'source-list': { type: 'string' },
      'connect-concurrency': { type: 'string', default: '256' },
      'connect-timeout-ms': { type: 'string', default: '10000' },
      'duration-ms': { type: 'string' },
      'drain-ms': { type: 'string', default: '2000' },
    },
  });
} catch (e) {
  usage(e.message);
}
const { values, positionals } = parsed;
if (positionals.length !== 2) usage('expected HOST PORT');
const host = positionals[0].replace(/^\[|\]$/g, '');
const port = Number(positionals[1]);
if (!net.isIP(host)) usage(`HOST "${host}" is not an IP address`);
if (!Number.isInteger(port) || port < 1 || port > 65535) usage(`PORT "${positionals[1]}" is not a port`);
function int(name, min) {
  const v = Number(values[name]);
  if (!Number.isInteger(v) || v < min) usage(`--${name} must be an integer >= ${min}`);
  return v;
}
const count = int('connections', 1);
const intervalMs = int('interval-ms', 1);
const concurrency = int('connect-concurrency', 1);
const connectTimeoutMs = int('connect-timeout-ms', 1);
const drainMs = int('drain-ms', 0);
const durationMs = values['duration-ms'] === undefined ? null : int('duration-ms', 0);
const family = net.isIPv6(host) ? 6 : 4;

/** The lab's extra client address k (clientExtraAddress in src/lab/lab.ts). */
function labSource(k) {
  if (k < 10) return family === 4 ? `198.18.0.${20 + k}` : `2001:db8::${20 + k}`;
  const m = k - 10;
  return family === 4 ? `198.18.${128 + Math.floor(m / 250)}.${1 + (m % 250)}` : `2001:db8:2::${(m + 1).toString(16)}`;
}
let sources = [];
if (values['source-list'] !== undefined) {
  sources = values['source-list'].split(',').map((a) => a.trim()).filter(Boolean);
  for (const a of sources) if (net.isIP(a) !== family) usage(`--source-list: "${a}" is not an IPv${family} address`);
} else {
  const k = int('sources', 0);
  for (let i = 0; i < k; i++) sources.push(labSource(i));
}

// One descriptor per connection, plus Node's own (stdio, epoll, the event loop's pipes...).
try {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  if (m && m[1] !== 'unlimited' && count + 64 > Number(m[1])) {
    usage(`${count} connections need about ${count + 64} file descriptors; RLIMIT_NOFILE is ${m[1]}: raise it (ulimit -n) for this process`);
  }
} catch {
  // No /proc: connect() reports EMFILE per connection instead.
}

const started = performance.now();
let phase = 'opening';
let openMs = null;

/** Per connection: the socket and what it has seen. */
const conns = Array.from({ length: count }, (_, i) => ({
  i,
  socket: null,
  source: null,
  real: null,
  sent: 0,
  echoed: 0,
  maxGapMs: 0,
  lastEchoAt: 0,
  /** performance.now() of each line sent and not yet echoed, oldest first (index = echoed). */
  sentAt: [],
  error: null,
  closedByPeer: false,
  alive: false,
  timer: null,
  buffer: '',
}));

function fail(c, error) {
  if (c.error === null) c.error = error;
  if (c.timer) {
    clearTimeout(c.timer);
    clearInterval(c.timer);
    c.timer = null;
  }
  c.alive = false;
  c.socket?.destroy();
  checkDrained();
}

function sendLine(c) {
  if (!c.alive || phase === 'stopping' || phase === 'done') return;
  c.sent++;
  c.sentAt.push(performance.now());
  c.socket.write(`${c.i} ${c.sent}\n`);
}

function onLine(c, line) {
  if (c.real === null) {
    const m = /^HELLO (\S+)$/.exec(line);
    if (!m) return fail(c, 'bad-hello');
    c.real = m[1];
    c.alive = true;
    c.lastEchoAt = performance.now();
    return false;
  }
  if (line !== `${c.i} ${c.echoed + 1}` || c.echoed + 1 > c.sent) return fail(c, 'mismatch');
  const now = performance.now();
  c.echoed++;
  c.sentAt.shift();
  c.maxGapMs = Math.max(c.maxGapMs, now - c.lastEchoAt);
  c.lastEchoAt = now;
  return true;
}

/** Open connection c; resolves once it has its HELLO or has failed. */
function open(c) {
  return new Promise((resolve) => {
    const options = { host, port, noDelay: true, ...(sources.length ? { localAddress: sources[c.i % sources.length] } : {}) };
    const socket = net.connect(options);
    c.socket = socket;
    socket.setEncoding('utf8');
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timeout);
      resolve();
    };
    const timeout = setTimeout(() => {
      if (c.real === null) fail(c, 'ETIMEDOUT');
      settle();
    }, connectTimeoutMs);
    socket.once('connect', () => {
      c.source = socket.localAddress ?? null;
    });
    socket.on('data', (d) => {
      c.buffer += d;
      let nl;
      while (c.error === null && (nl = c.buffer.indexOf('\n')) >= 0) {
        const line = c.buffer.slice(0, nl);
        c.buffer = c.buffer.slice(nl + 1);
        const wasHello = c.real === null;
        onLine(c, line);
        if (wasHello && c.alive) {
          settle();
          if (phase === 'stopping' || phase === 'done') continue;
          // Spread the connections' ticks over the interval.
          const offset = (c.i * intervalMs) / count;
          c.timer = setTimeout(() => {
            if (!c.alive) return;
            sendLine(c);
            c.timer = setInterval(() => sendLine(c), intervalMs);
          }, offset);
        }
      }
      checkDrained();
    });
    socket.on('end', () => {
      if (phase === 'done') return; // the answer to our own FIN
      c.closedByPeer = true;
      fail(c, 'closed-by-peer');
    });
    socket.on('error', (e) => fail(c, e.code ?? e.message));
    socket.on('close', () => {
      c.alive = false;
      settle();
      checkDrained();
    });
  });
}

function status() {
  const now = performance.now();
  let opened = 0;
  let open = 0;
  let failed = 0;
  let sent = 0;
  let echoed = 0;
  let oldest = 0;
  let maxGap = 0;
  const reals = {};
  for (const c of conns) {
    if (c.real !== null) {
      opened++;
      reals[c.real] = (reals[c.real] ?? 0) + 1;
    }
    if (c.alive) {
      open++;
      if (c.sentAt.length) oldest = Math.max(oldest, now - c.sentAt[0]);
    }
    if (c.error !== null) failed++;
    sent += c.sent;
    echoed += c.echoed;
    maxGap = Math.max(maxGap, c.maxGapMs);
  }
  return {
    type: 'status',
    phase,
    elapsedMs: round(now - started),
    connections: count,
    opened,
    open,
    failed,
    sent,
    echoed,
    outstanding: sent - echoed,
    oldestOutstandingMs: round(oldest),
    maxGapMs: round(maxGap),
    reals,
  };
}

function round(ms) {
  return Math.round(ms * 1000) / 1000;
}

function print(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

let drained = null;
function checkDrained() {
  if (phase !== 'stopping' || !drained) return;
  if (conns.every((c) => !c.alive || c.echoed === c.sent)) drained();
}

let stopping = null;
function stop() {
  if (stopping) return stopping;
  stopping = (async () => {
    // Let the opening finish its current attempts: a stop during opening marks the rest.
    phase = 'stopping';
    for (const c of conns) {
      if (c.timer) {
        clearTimeout(c.timer);
        clearInterval(c.timer);
        c.timer = null;
      }
      if (c.socket === null && c.error === null) c.error = 'not-opened';
    }
    await new Promise((resolve) => {
      const t = setTimeout(resolve, drainMs);
      drained = () => {
        clearTimeout(t);
        resolve();
      };
      checkDrained();
    });
    for (const c of conns) {
      if (c.alive && c.echoed < c.sent) fail(c, 'echo-timeout');
      else if (c.socket && c.real === null && c.error === null) fail(c, 'not-opened');
    }
    phase = 'done';
    const closed = conns.filter((c) => c.socket && !c.socket.destroyed).map((c) => new Promise((resolve) => {
      c.socket.once('close', resolve);
      c.socket.end();
    }));
    // A peer that never answers our FIN does not hold the result back.
    await Promise.race([Promise.all(closed), new Promise((resolve) => setTimeout(resolve, 2000))]);
    const reals = {};
    const bySource = {};
    let maxGap = 0;
    let survived = 0;
    for (const c of conns) {
      if (c.real !== null) reals[c.real] = (reals[c.real] ?? 0) + 1;
      if (c.source !== null && c.real !== null) {
        const list = (bySource[c.source] ??= []);
        if (!list.includes(c.real)) list.push(c.real);
      }
      if (c.error === null) survived++;
      maxGap = Math.max(maxGap, c.maxGapMs);
    }
    const result = {
      type: 'result',
      connections: conns.map((c) => ({
        source: c.source,
        real: c.real,
        sent: c.sent,
        echoed: c.echoed,
        maxGapMs: round(c.maxGapMs),
        error: c.error,
        closedByPeer: c.closedByPeer,
      })),
      totals: {
        connections: count,
        survived,
        failed: count - survived,
        maxGapMs: round(maxGap),
        opened: conns.filter((c) => c.real !== null).length,
        sent: conns.reduce((n, c) => n + c.sent, 0),
        echoed: conns.reduce((n, c) => n + c.echoed, 0),
        reals,
        bySource,
        openMs: openMs === null ? null : round(openMs),
      },
    };
    for (const c of conns) c.socket?.destroy();
    // Exit only once the whole line is out: a pipe takes it in pieces (10,000 connections
    // make some 1.3 MB), and process.exit() would cut it short.
    process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
  })();
  return stopping;
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const cmd = line.trim();
  if (cmd === 'status') print(status());
  else if (cmd === 'stop') void stop();
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => void stop());
if (durationMs !== null) setTimeout(() => void stop(), durationMs);

let next = 0;
async function opener() {
  while (next < count && phase === 'opening') await open(conns[next++]);
}
await Promise.all(Array.from({ length: Math.min(concurrency, count) }, opener));
if (phase === 'opening') {
  phase = 'running';
  openMs = performance.now() - started;
  print(status());
}
