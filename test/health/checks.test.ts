import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLvsError } from '../../src/errors.js';
import { decodeResponse, encodeQuery, ExpectMatcher, makeProbe, parseAgentLine, programArgv, unescape } from '../../src/health/checks/index.js';
import type { ProbeResult } from '../../src/health/types.js';
import { native } from '../../src/dataplane/native.js';
import { Netns, cleanupOnExit, removeAllNamespaces } from '../../src/lab/netns.js';

const LO = '127.0.0.1';
const dir = mkdtempSync(join(tmpdir(), 'lvsd-checks-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Every server and probe of this file runs in a namespace of its own: the test process's JS
// thread moves there (its loopback, 127.0.0.0/8 and ::1, is this file's alone), so nothing here
// touches the host's network.
cleanupOnExit();
beforeAll(() => native().host.enterNetns(Netns.create('checks').name));
afterAll(() => removeAllNamespaces());

// ---------------------------------------------------------------- helpers

interface Srv { port: number; stop(): Promise<void> }

/** A TCP server on `host` whose connections are handed to `onConn`; stop() destroys them all. */
async function tcpServer(onConn: (s: net.Socket) => void, host = LO, port = 0): Promise<Srv> {
  const socks = new Set<net.Socket>();
  const server = net.createServer((s) => {
    socks.add(s);
    s.on('close', () => socks.delete(s));
    s.on('error', () => {});
    onConn(s);
    // Read (and drop) what the handler does not: a paused socket would never see the probe's
    // FIN and would stay open, hiding whether the probe closed its side.
    s.resume();
  });
  await new Promise<void>((res, rej) => { server.once('error', rej); server.listen(port, host, () => res()); });
  return {
    port: (server.address() as net.AddressInfo).port,
    stop: () => new Promise<void>((res) => { for (const s of socks) s.destroy(); server.close(() => res()); }),
  };
}

/** A port on 127.0.0.1 where nothing listens (bound, then released). */
async function closedPort(): Promise<number> {
  const s = await tcpServer(() => {});
  await s.stop();
  return s.port;
}

async function udpServer(onMsg: (msg: Buffer, reply: (b: Buffer) => void) => void, type: 'udp4' | 'udp6' = 'udp4'): Promise<Srv> {
  const sock = dgram.createSocket(type);
  sock.on('message', (msg, rinfo) => onMsg(msg, (b) => sock.send(b, rinfo.port, rinfo.address)));
  await new Promise<void>((res) => sock.bind(0, type === 'udp4' ? LO : '::1', () => res()));
  return { port: sock.address().port, stop: () => new Promise<void>((res) => sock.close(() => res())) };
}

async function closedUdpPort(): Promise<number> {
  const s = await udpServer(() => {});
  await s.stop();
  return s.port;
}

/** Whether `pid` has stopped running (gone, or a zombie waiting for init to reap it), polling up to 5 s. */
async function goneSoon(pid: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    let stat: string;
    try { stat = readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { return true; }
    if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') return true;
    await tick(50);
  }
  return false;
}

const tick = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Handles a probe could leave behind, by type. */
function handles(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of process.getActiveResourcesInfo()) {
    if (['TCPSocketWrap', 'TCPServerWrap', 'UDPWrap', 'ProcessWrap', 'PipeWrap', 'TTYWrap', 'Timeout', 'TLSWrap'].includes(t)) out[t] = (out[t] ?? 0) + 1;
  }
  return out;
}

async function settledHandles(): Promise<Record<string, number>> {
  // Closing a handle completes on a later loop turn; give it a few.
  for (let i = 0; i < 5; i++) { await new Promise((r) => setImmediate(r)); await tick(20); }
  return handles();
}

function expectTimeout(r: ProbeResult, timeoutMs: number): void {
  expect(r.ok).toBe(false);
  expect(r.reason).toMatch(new RegExp(`^timeout after ${timeoutMs} ms`));
  expect(r.ms).toBeGreaterThanOrEqual(timeoutMs - 5);
}

// ---------------------------------------------------------------- escapes and matching

describe('escapes and expect matching', () => {
  it('unescape interprets nanny escapes and leaves the rest as written', () => {
    expect(unescape('GET / HTTP/1.0\\r\\n\\r\\n')).toBe('GET / HTTP/1.0\r\n\r\n');
    expect(unescape('a\\tb')).toBe('a\tb');
    expect(unescape('back\\\\slash')).toBe('back\\slash');
    expect(unescape("it\\'s \\\"q\\\"")).toBe('it\'s "q"');
    expect(unescape('\\x41 \\d')).toBe('\\x41 \\d');
    expect(unescape('end\\')).toBe('end\\');
    expect(unescape('\\\\n')).toBe('\\n');
  });

  it('literal expect passes on a prefix, waits for more bytes, fails on the first mismatch', () => {
    const m = new ExpectMatcher('HTTP/1.', false);
    expect(m.check(Buffer.from('HT'), false)).toBeUndefined();
    expect(m.check(Buffer.from('HTTP/1.1 200 OK'), false)).toEqual({ ok: true });
    expect(m.check(Buffer.from('HTTX'), false)?.ok).toBe(false);
    expect(m.check(Buffer.from('HT'), true)).toEqual({ ok: false, reason: 'expect "HTTP/1." got only "HT"' });
    expect(m.check(Buffer.alloc(0), true)).toEqual({ ok: false, reason: 'expect "HTTP/1." got no reply' });
  });

  it('"*" passes on any byte; regex is searched unanchored, POSIX classes translated', () => {
    const any = new ExpectMatcher('*', false);
    expect(any.check(Buffer.from([0]), false)).toEqual({ ok: true });
    expect(any.check(Buffer.alloc(0), true)?.ok).toBe(false);
    const re = new ExpectMatcher('OK [[:digit:]]+', true);
    expect(re.check(Buffer.from('+ OK '), false)).toBeUndefined();
    expect(re.check(Buffer.from('+ OK 42 ready'), false)).toEqual({ ok: true });
    expect(re.check(Buffer.from('+ OK x'), true)?.ok).toBe(false);
    let err: unknown;
    try { makeProbe({ kind: 'tcp', expect: '(unclosed', regex: true }); } catch (e) { err = e; }
    expect(isLvsError(err, 'LVS_INVALID_OPTION')).toBe(true);
  });
});

// ---------------------------------------------------------------- TCP

describe('tcp probe', () => {
  it('connect only: up when the port listens (IPv4 and IPv6), "connect refused" when not', async () => {
    const s4 = await tcpServer((s) => s.end());
    const s6 = await tcpServer((s) => s.end(), '::1');
    try {
      const p = makeProbe({ kind: 'tcp' });
      expect(await p.run({ address: LO, port: s4.port }, 2000)).toMatchObject({ ok: true, reason: 'connected' });
      expect(await p.run({ address: '::1', port: s6.port }, 2000)).toMatchObject({ ok: true, reason: 'connected' });
      expect(await p.run({ address: LO, port: await closedPort() }, 2000)).toMatchObject({ ok: false, reason: 'connect refused' });
    } finally { await s4.stop(); await s6.stop(); }
  });

  it('send + expect: a reply split over several segments still passes; a wrong reply fails with it quoted', async () => {
    const got: string[] = [];
    const srv = await tcpServer((s) => {
      s.once('data', (d) => {
        got.push(d.toString());
        if (d.toString().startsWith('PING')) {
          s.write('+PO');
          setTimeout(() => s.end('NG\r\n'), 50);
        } else s.end('-ERR unknown command\r\n');
      });
    });
    try {
      const ok = await makeProbe({ kind: 'tcp', send: 'PING\\r\\n', expect: '+PONG' }).run({ address: LO, port: srv.port }, 2000);
      expect(ok).toMatchObject({ ok: true });
      expect(got[0]).toBe('PING\r\n');
      const bad = await makeProbe({ kind: 'tcp', send: 'QUIT\\r\\n', expect: '+PONG' }).run({ address: LO, port: srv.port }, 2000);
      expect(bad).toMatchObject({ ok: false, reason: 'expect "+PONG" got "-ERR unknown command\\r\\n"' });
      const re = await makeProbe({ kind: 'tcp', send: 'PING\\n', expect: 'PO+NG', regex: true }).run({ address: LO, port: srv.port }, 2000);
      expect(re.ok).toBe(true);
    } finally { await srv.stop(); }
  });

  it('a server that accepts and never answers, or trickles bytes that never match, settles at the timeout', async () => {
    const silent = await tcpServer(() => {});
    const trickle = await tcpServer((s) => {
      const t = setInterval(() => s.write('x'), 20);
      s.on('close', () => clearInterval(t));
    });
    try {
      expectTimeout(await makeProbe({ kind: 'tcp', expect: 'OK' }).run({ address: LO, port: silent.port }, 300), 300);
      const r = await makeProbe({ kind: 'tcp', expect: 'OK', regex: true }).run({ address: LO, port: trickle.port }, 300);
      expectTimeout(r, 300);
      expect(r.reason).toMatch(/waiting for a reply, got \d+ bytes/);
    } finally { await silent.stop(); await trickle.stop(); }
  });

  it('port 80 with nothing configured sends GET / HTTP/1.0 and expects "HTTP" (nanny default)', async () => {
    // A loopback address of its own, so nothing else on this host's port 80 is involved.
    const addr = '127.80.0.1';
    let request = '';
    const good = await tcpServer((s) => s.once('data', (d) => { request = d.toString(); s.end('HTTP/1.0 200 OK\r\n\r\n'); }), addr, 80);
    try {
      const r = await makeProbe({ kind: 'tcp' }).run({ address: addr, port: 80 }, 2000);
      expect(r.ok).toBe(true);
      expect(request).toBe('GET / HTTP/1.0\r\n\r\n');
    } finally { await good.stop(); }
    const bad = await tcpServer((s) => s.once('data', () => s.end('SSH-2.0-OpenSSH\r\n')), addr, 80);
    try {
      expect(await makeProbe({ kind: 'tcp' }).run({ address: addr, port: 80 }, 2000)).toMatchObject({ ok: false, reason: 'expect "HTTP" got "SSH-2.0-OpenSSH\\r\\n"' });
    } finally { await bad.stop(); }
  });

  it('an abort signal settles the probe at once', async () => {
    const silent = await tcpServer(() => {});
    try {
      const ac = new AbortController();
      const pending = makeProbe({ kind: 'tcp', expect: 'x' }).run({ address: LO, port: silent.port }, 30_000, ac.signal);
      setTimeout(() => ac.abort(), 50);
      const r = await pending;
      expect(r).toMatchObject({ ok: false, reason: 'aborted' });
      expect(r.ms).toBeLessThan(30_000);
    } finally { await silent.stop(); }
  });
});

// ---------------------------------------------------------------- UDP

describe('udp probe', () => {
  it('one datagram out, one back: match up, mismatch down, closed port refused, silent timeout', async () => {
    const echo = await udpServer((m, reply) => reply(Buffer.concat([Buffer.from('echo:'), m])));
    const silent = await udpServer(() => {});
    const echo6 = await udpServer((m, reply) => reply(m), 'udp6');
    try {
      expect(await makeProbe({ kind: 'udp', send: 'hi\\n', expect: 'echo:hi\\n' }).run({ address: LO, port: echo.port }, 2000)).toMatchObject({ ok: true });
      expect(await makeProbe({ kind: 'udp', send: 'hi', expect: 'nope' }).run({ address: LO, port: echo.port }, 2000)).toMatchObject({ ok: false, reason: 'expect "nope" got "echo:hi"' });
      expect(await makeProbe({ kind: 'udp', send: 'ping' }).run({ address: '::1', port: echo6.port }, 2000)).toMatchObject({ ok: true, reason: 'reply of 4 bytes' });
      expect(await makeProbe({ kind: 'udp', expect: '*' }).run({ address: LO, port: await closedUdpPort() }, 2000)).toMatchObject({ ok: false, reason: 'connect refused' });
      expectTimeout(await makeProbe({ kind: 'udp', send: 'x', expect: '*' }).run({ address: LO, port: silent.port }, 300), 300);
    } finally { await echo.stop(); await silent.stop(); await echo6.stop(); }
  });
});

// ---------------------------------------------------------------- send_program

describe('program probe', () => {
  const script = (name: string, body: string): string => {
    const p = join(dir, name);
    writeFileSync(p, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    return p;
  };

  it('argv: blanks split, only whole %h/%p tokens replaced', () => {
    expect(programArgv('/bin/check  -H %h\t-p %p host=%h', { address: '198.18.0.5', port: 8080 })).toEqual(['/bin/check', '-H', '198.18.0.5', '-p', '8080', 'host=%h']);
  });

  it('exit 0 and matching output up; other output, non-zero exit, a signal, a missing program down', async () => {
    const t = { address: '198.18.0.5', port: 8080 };
    const ok = script('ok.sh', 'echo "up $1 $2"');
    expect(await makeProbe({ kind: 'program', command: `${ok} %h %p`, expect: 'up 198.18.0.5 8080' }).run(t, 5000)).toMatchObject({ ok: true, reason: 'program said "up 198.18.0.5 8080"' });
    expect(await makeProbe({ kind: 'program', command: `${ok} %h %p` }).run(t, 5000)).toMatchObject({ ok: true, reason: 'program exited 0' });
    expect(await makeProbe({ kind: 'program', command: `${ok} %h`, expect: 'up 198.18.0.5 8080' }).run(t, 5000)).toMatchObject({ ok: false, reason: 'expect "up 198.18.0.5 8080" got "up 198.18.0.5 "' });
    const two = script('two.sh', 'echo OK; exit 2');
    // nanny counted this as UP (a failed program with an expect set); we do not.
    expect(await makeProbe({ kind: 'program', command: two, expect: 'OK' }).run(t, 5000)).toMatchObject({ ok: false, reason: 'program exited 2' });
    const seg = script('seg.sh', 'kill -SEGV $$');
    expect(await makeProbe({ kind: 'program', command: seg }).run(t, 5000)).toMatchObject({ ok: false, reason: 'program killed by SIGSEGV' });
    expect(await makeProbe({ kind: 'program', command: join(dir, 'absent') }).run(t, 5000)).toMatchObject({ ok: false, reason: `program not found: ${join(dir, 'absent')}` });
  });

  it('never runs a shell: shell syntax in the command or the address stays literal arguments', async () => {
    const marker = join(dir, 'injected');
    const args = join(dir, 'args.txt');
    const rec = script('rec.sh', `for a in "$@"; do printf '%s|' "$a"; done > ${args}; echo ok`);
    const evil = { address: `198.18.0.5; touch ${marker}`, port: 80 };
    const r1 = await makeProbe({ kind: 'program', command: `${rec} %h $(touch${' '}${marker}) \`touch ${marker}\` ; touch ${marker} | touch ${marker} && touch ${marker}`, expect: 'ok' }).run(evil, 5000);
    expect(r1.ok).toBe(true);
    expect(existsSync(marker)).toBe(false);
    expect(readFileSync(args, 'utf8')).toBe(`198.18.0.5; touch ${marker}|$(touch|${marker})|\`touch|${marker}\`|;|touch|${marker}|||touch|${marker}|&&|touch|${marker}|`);
    const r2 = await makeProbe({ kind: 'program', command: `/bin/true;touch ${marker}` }).run(evil, 5000);
    expect(r2.ok).toBe(false);
    expect(existsSync(marker)).toBe(false);
  });

  it('a program still running at the timeout is killed with its whole process group', async () => {
    const pidFile = join(dir, 'child.pid');
    const slow = script('slow.sh', `sleep 300 & echo $! > ${pidFile}; wait`);
    const r = await makeProbe({ kind: 'program', command: slow }).run({ address: LO, port: 1 }, 500);
    expectTimeout(r, 500);
    expect(r.reason).toContain('killed');
    expect(await goneSoon(Number(readFileSync(pidFile, 'utf8')))).toBe(true);
  });

  it('children left behind by a program that exited are killed and do not hold the check open', async () => {
    const pidFile = join(dir, 'orphan.pid');
    const leaves = script('leaves.sh', `sleep 300 & echo $! > ${pidFile}; echo ready`);
    const r = await makeProbe({ kind: 'program', command: leaves, expect: 'ready' }).run({ address: LO, port: 1 }, 5000);
    expect(r).toMatchObject({ ok: true });
    expect(await goneSoon(Number(readFileSync(pidFile, 'utf8')))).toBe(true);
  });
});

// ---------------------------------------------------------------- HTTP / HTTPS

describe('http and https probes', () => {
  let cert = '';
  let key = '';
  beforeAll(() => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=real.example', '-addext', 'subjectAltName=DNS:real.example',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
    key = readFileSync(join(dir, 'key.pem'), 'utf8');
  });

  const handler = (seen: string[]) => (req: http.IncomingMessage, res: http.ServerResponse) => {
    seen.push(`${req.url} ${req.headers.host}`);
    if (req.url === '/health') { res.writeHead(200, { 'content-type': 'text/plain' }); res.write('status: '); setTimeout(() => res.end('green\n'), 30); }
    else if (req.url === '/broken') { res.writeHead(500); res.end('Internal Server Error'); }
    else { res.writeHead(302, { location: '/health' }); res.end(); }
  };

  async function listen(server: http.Server | https.Server, host = LO): Promise<Srv> {
    await new Promise<void>((r) => server.listen(0, host, () => r()));
    return { port: (server.address() as net.AddressInfo).port, stop: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) };
  }

  it('status range, body regex and Host header', async () => {
    const seen: string[] = [];
    const srv = await listen(http.createServer(handler(seen)));
    const srv6 = await listen(http.createServer(handler(seen)), '::1');
    try {
      const t = { address: LO, port: srv.port };
      expect(await makeProbe({ kind: 'http' }).run(t, 2000)).toMatchObject({ ok: true, reason: 'status 302' });
      expect(seen.pop()).toBe(`/ 127.0.0.1:${srv.port}`);
      expect(await makeProbe({ kind: 'http', path: '/health', host: 'www.example', body: 'status: (green|yellow)' }).run(t, 2000)).toMatchObject({ ok: true });
      expect(seen.pop()).toBe('/health www.example');
      expect(await makeProbe({ kind: 'http', path: '/health', body: 'red' }).run(t, 2000)).toMatchObject({ ok: false, reason: 'status 200, body "status: green\\n" does not match /red/' });
      expect(await makeProbe({ kind: 'http', path: '/broken' }).run(t, 2000)).toMatchObject({ ok: false, reason: 'status "500 Internal Server Error" not in 200-399' });
      expect(await makeProbe({ kind: 'http', path: '/broken', status: [500, 599] }).run(t, 2000)).toMatchObject({ ok: true });
      expect(await makeProbe({ kind: 'http', status: [200, 299] }).run(t, 2000)).toMatchObject({ ok: false });
      expect(await makeProbe({ kind: 'http' }).run({ address: '::1', port: srv6.port }, 2000)).toMatchObject({ ok: true });
      expect(seen.pop()).toBe(`/ [::1]:${srv6.port}`);
      expect(await makeProbe({ kind: 'http' }).run({ address: LO, port: await closedPort() }, 2000)).toMatchObject({ ok: false, reason: 'connect refused' });
    } finally { await srv.stop(); await srv6.stop(); }
  });

  it('a server that accepts and never answers, or sends a non-HTTP reply, is down', async () => {
    const silent = await tcpServer(() => {});
    const garbage = await tcpServer((s) => s.once('data', () => s.end('SSH-2.0-OpenSSH_9.2\r\n')));
    try {
      expectTimeout(await makeProbe({ kind: 'http' }).run({ address: LO, port: silent.port }, 300), 300);
      const r = await makeProbe({ kind: 'http' }).run({ address: LO, port: garbage.port }, 2000);
      expect(r.ok).toBe(false);
      expect(r.reason).toMatch(/^bad HTTP response/);
    } finally { await silent.stop(); await garbage.stop(); }
  });

  it('https: self-signed certificate accepted by default (verification off), refused with insecure: false', async () => {
    const seen: string[] = [];
    const srv = await listen(https.createServer({ cert, key }, handler(seen)));
    try {
      const t = { address: LO, port: srv.port };
      expect(await makeProbe({ kind: 'https', path: '/health', body: 'green' }).run(t, 3000)).toMatchObject({ ok: true });
      const strict = await makeProbe({ kind: 'https', host: 'real.example', insecure: false }).run(t, 3000);
      expect(strict.ok).toBe(false);
      expect(strict.reason).toMatch(/^TLS: .*self.signed/i);
      const plain = await makeProbe({ kind: 'http' }).run(t, 1000);
      expect(plain.ok).toBe(false);
    } finally { await srv.stop(); }
  });
});

// ---------------------------------------------------------------- DNS

describe('dns probe', () => {
  function answer(q: Buffer, rcode: number, withAnswer: boolean, idDelta = 0): Buffer {
    // Header copied from the query with QR, RA and the rcode set; the question echoed; one A record.
    const qEnd = q.length;
    const out = Buffer.from(q.subarray(0, qEnd));
    out.writeUInt16BE((q.readUInt16BE(0) + idDelta) & 0xffff, 0);
    out.writeUInt16BE(0x8180 | rcode, 2);
    out.writeUInt16BE(withAnswer ? 1 : 0, 6);
    if (!withAnswer) return out;
    const rr = Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 18, 0, 7]);
    return Buffer.concat([out, rr]);
  }

  it('query encoding and response decoding (and malformed input never throws)', () => {
    const q = encodeQuery(0x1234, 'www.Example.', 'AAAA');
    expect(q.toString('hex')).toBe('123401000001000000000000' + '03777777' + '074578616d706c65' + '00' + '001c0001');
    expect(decodeResponse(answer(q, 0, true))).toEqual({ id: 0x1234, rcode: 0, answers: 1, truncated: false, qname: 'www.example', qtype: 28 });
    expect(typeof decodeResponse(q)).toBe('string');
    for (let n = 0; n < q.length; n++) expect(() => decodeResponse(answer(q, 0, false).subarray(0, n))).not.toThrow();
    let err: unknown;
    try { makeProbe({ kind: 'dns', name: 'a'.repeat(64) + '.example' }); } catch (e) { err = e; }
    expect(isLvsError(err, 'LVS_INVALID_OPTION')).toBe(true);
  });

  it('rcode checked, answer required for NOERROR, foreign ids and garbage ignored, silence times out', async () => {
    const srv = await udpServer((m, reply) => {
      const r = decodeResponse(Buffer.concat([m.subarray(0, 2), Buffer.from([0x80, 0]), m.subarray(4)]));
      const name = typeof r === 'string' ? '' : r.qname;
      if (name === 'ok.example') { reply(Buffer.from('garbage')); reply(answer(m, 0, true, 1)); setTimeout(() => reply(answer(m, 0, true)), 20); }
      else if (name === 'missing.example') reply(answer(m, 3, false));
      else if (name === 'empty.example') reply(answer(m, 0, false));
      else if (name === 'broken.example') reply(answer(m, 2, false));
    });
    try {
      const t = { address: LO, port: srv.port };
      expect(await makeProbe({ kind: 'dns', name: 'ok.example' }).run(t, 2000)).toMatchObject({ ok: true, reason: 'NOERROR, 1 answer' });
      expect(await makeProbe({ kind: 'dns', name: 'missing.example' }).run(t, 2000)).toMatchObject({ ok: false, reason: 'NXDOMAIN, 0 answers (expected NOERROR)' });
      expect(await makeProbe({ kind: 'dns', name: 'missing.example', expectRcode: 'NXDOMAIN' }).run(t, 2000)).toMatchObject({ ok: true });
      expect(await makeProbe({ kind: 'dns', name: 'empty.example', type: 'SOA' }).run(t, 2000)).toMatchObject({ ok: false, reason: 'NOERROR, 0 answers (expected an answer for empty.example SOA)' });
      expect(await makeProbe({ kind: 'dns', name: 'broken.example', expectRcode: 'any' }).run(t, 2000)).toMatchObject({ ok: true, reason: 'SERVFAIL, 0 answers' });
      expectTimeout(await makeProbe({ kind: 'dns', name: 'silent.example' }).run(t, 300), 300);
      expect(await makeProbe({ kind: 'dns', name: 'ok.example' }).run({ address: LO, port: await closedUdpPort() }, 2000)).toMatchObject({ ok: false, reason: 'connect refused' });
    } finally { await srv.stop(); }
  });
});

// ---------------------------------------------------------------- agent

describe('agent probe', () => {
  it('parses HAProxy agent lines', () => {
    expect(parseAgentLine('75%')).toEqual({ percent: 75, unknown: [] });
    expect(parseAgentLine('UP, 50% ready maxconn:30')).toEqual({ percent: 50, state: 'ready', unknown: [] });
    expect(parseAgentLine('drain\t#draining for upgrade')).toEqual({ state: 'drain', description: 'draining for upgrade', unknown: [] });
    expect(parseAgentLine('maint 0%')).toEqual({ state: 'maint', percent: 0, unknown: [] });
    expect(parseAgentLine('ready down # disk full')).toEqual({ state: 'down', description: 'disk full', unknown: [] });
    expect(parseAgentLine('stopped')).toEqual({ state: 'stopped', unknown: [] });
    expect(parseAgentLine('fail #x')).toEqual({ state: 'fail', description: 'x', unknown: [] });
    expect(parseAgentLine('12 bogus')).toEqual({ weight: 12, unknown: ['bogus'] });
  });

  it('reads one line from the agent port, sends agent-send first', async () => {
    const seen: string[] = [];
    const agent = await tcpServer((s) => {
      let buf = '';
      s.on('data', (d) => {
        buf += d.toString();
        if (!buf.includes('\n')) return;
        seen.push(buf);
        const who = buf.trim();
        if (who === 'be/web1') s.end('up 75%\n');
        else if (who === 'be/web2') s.end('drain #rolling upgrade\r\n');
        else if (who === 'be/web3') s.end('down #disk full\n');
        else if (who === 'be/web4') { s.write('50'); setTimeout(() => s.end('% maint'), 30); }
        else s.end('\n');
      });
    });
    const silent = await tcpServer(() => {});
    try {
      const t = { address: LO, port: 9 };
      const a = (n: string) => makeProbe({ kind: 'agent', port: agent.port, send: `be/${n}\\n` });
      expect(await a('web1').run(t, 2000)).toMatchObject({ ok: true, agent: { state: 'up', percent: 75 } });
      expect(seen[0]).toBe('be/web1\n');
      expect(await a('web2').run(t, 2000)).toMatchObject({ ok: true, agent: { state: 'drain' } });
      expect(await a('web3').run(t, 2000)).toMatchObject({ ok: false, reason: 'agent said "down #disk full"', agent: { state: 'down' } });
      expect(await a('web4').run(t, 2000)).toMatchObject({ ok: true, agent: { state: 'maint', percent: 50 } });
      expect(await a('nobody').run(t, 2000)).toMatchObject({ ok: false, reason: 'agent said nothing' });
      expect(await makeProbe({ kind: 'agent', port: await closedPort() }).run(t, 2000)).toMatchObject({ ok: false, reason: 'agent: connect refused' });
      expectTimeout(await makeProbe({ kind: 'agent', port: silent.port }).run(t, 300), 300);
    } finally { await agent.stop(); await silent.stop(); }
  });
});

// ---------------------------------------------------------------- resources

describe('resource release', () => {
  it('many runs of every probe, passing, failing and timing out, leave no socket, process, pipe or timer behind', async () => {
    const http1 = http.createServer((_q, r) => { r.writeHead(200); r.end('ok'); });
    await new Promise<void>((r) => http1.listen(0, LO, () => r()));
    const hport = (http1.address() as net.AddressInfo).port;
    const echo = await tcpServer((s) => s.on('data', (d) => s.end(d)));
    const silent = await tcpServer(() => {});
    const uecho = await udpServer((m, reply) => reply(m));
    const usilent = await udpServer(() => {});
    const dnsSrv = await udpServer((m, reply) => { const o = Buffer.from(m); o.writeUInt16BE(0x8183, 2); reply(o); });
    const refused = await closedPort();
    const sleeper = join(dir, 'sleeper.sh');
    writeFileSync(sleeper, '#!/bin/sh\nsleep 300 &\nsleep 300\n', { mode: 0o755 });
    // Counted with the servers running: a probe that kept its socket open would also keep the
    // server's side of the connection open, so both show up.
    const before = await settledHandles();
    const runs: Array<Promise<ProbeResult>> = [];
    // Failing probes time out fast; passing ones get room, as the machine is shared.
    const T = 200;
    const OK_T = 10_000;
    for (let i = 0; i < 20; i++) {
      runs.push(makeProbe({ kind: 'tcp', send: 'x', expect: 'x' }).run({ address: LO, port: echo.port }, OK_T));
      runs.push(makeProbe({ kind: 'tcp', expect: 'x' }).run({ address: LO, port: silent.port }, T));
      runs.push(makeProbe({ kind: 'tcp' }).run({ address: LO, port: refused }, T));
      runs.push(makeProbe({ kind: 'udp', send: 'x', expect: 'x' }).run({ address: LO, port: uecho.port }, OK_T));
      runs.push(makeProbe({ kind: 'udp', send: 'x' }).run({ address: LO, port: usilent.port }, T));
      runs.push(makeProbe({ kind: 'http' }).run({ address: LO, port: hport }, OK_T));
      runs.push(makeProbe({ kind: 'http' }).run({ address: LO, port: silent.port }, T));
      runs.push(makeProbe({ kind: 'https' }).run({ address: LO, port: silent.port }, T));
      runs.push(makeProbe({ kind: 'dns', name: 'x.example', expectRcode: 'NXDOMAIN' }).run({ address: LO, port: dnsSrv.port }, OK_T));
      runs.push(makeProbe({ kind: 'agent', port: echo.port, send: '50%\\n' }).run({ address: LO, port: 1 }, OK_T));
      runs.push(makeProbe({ kind: 'agent', port: silent.port }).run({ address: LO, port: 1 }, T));
      if (i % 4 === 0) {
        runs.push(makeProbe({ kind: 'program', command: '/bin/echo ok', expect: 'ok' }).run({ address: LO, port: 1 }, OK_T));
        runs.push(makeProbe({ kind: 'program', command: sleeper }).run({ address: LO, port: 1 }, T));
      }
    }
    const results = await Promise.all(runs);
    const oks = results.filter((r) => r.ok).length;
    // echo tcp, echo udp, http 200, dns NXDOMAIN, agent 50%: 5 of 11 per round, plus 5 echo programs.
    expect(oks).toBe(20 * 5 + 5);
    await tick(200);
    expect(await settledHandles()).toEqual(before);
    for (const s of [echo, silent, uecho, usilent, dnsSrv]) await s.stop();
    await new Promise<void>((r) => { http1.closeAllConnections(); http1.close(() => r()); });
  });
});
