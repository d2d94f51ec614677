/**
 * The lvsd daemon as an operator runs it: `lvsd -c lvs.cf` in the foreground (here with
 * --netns, so it works in the lab's director namespace), structured logs on stdout, SIGHUP
 * reloads as a difference, a broken file changes nothing, SIGTERM stops cleanly.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/dataplane/native.js';
import type { Lab } from '../../src/lab/lab.js';
import { httpLoad, makeLab, url, waitFor } from './setup.js';

const LVSD = join(packageRoot, 'dist', 'cli', 'lvsd.js');
const LVSADM = join(packageRoot, 'dist', 'cli', 'lvsadm.js');
let lab: Lab;
let dir: string;
let cf: string;
let sock: string;
let daemon: ChildProcess | undefined;
const lines: Array<Record<string, unknown>> = [];

function lvsCf(weights: [number, number, number]): string {
  const n = (i: number) => lab.real(`n${i}`).address4;
  return `serial_no = 1
primary = ${lab.director.address4.pub}
service = lvs
network = nat
nat_router = ${lab.natRouter4} priv:1
virtual web {
     active = 1
     address = ${lab.vip4(0)} pub:1
     port = 80
     protocol = tcp
     scheduler = wrr
     timeout = 1
${[1, 2, 3].map((i) => `     server web${i} {\n         address = ${n(i)}\n         active = 1\n         weight = ${weights[i - 1]}\n     }`).join('\n')}
}
virtual dr {
     active = 1
     address = ${lab.vip4(1)} pub:2
     port = 80
     scheduler = rr
     timeout = 1
     server d1 {
         address = ${lab.real('d1').address4}
         active = 1
         method = direct
     }
}
`;
}

function logged(pred: (l: Record<string, unknown>) => boolean, timeoutMs = 10_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const t = setInterval(() => {
      const hit = lines.find(pred);
      if (hit) {
        clearInterval(t);
        resolve(hit);
      } else if (Date.now() - started > timeoutMs) {
        clearInterval(t);
        reject(new Error(`no such log line within ${timeoutMs} ms; last lines: ${JSON.stringify(lines.slice(-5))}`));
      }
    }, 50);
  });
}

beforeAll(async () => {
  lab = await makeLab({ reals: [{ name: 'n1', method: 'nat' }, { name: 'n2', method: 'nat' }, { name: 'n3', method: 'nat' }, { name: 'd1', method: 'direct' }] });
  await lab.startServers();
  dir = mkdtempSync(join(tmpdir(), 'lvsd-daemon-'));
  cf = join(dir, 'lvs.cf');
  sock = join(dir, 'run', 'lvsd.sock');
  writeFileSync(cf, lvsCf([1, 1, 1]));
});

afterAll(() => {
  daemon?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('lvsd --test-config', () => {
  it('exits 0 for a valid file and 1 with file:line:column errors for a broken one', () => {
    const ok = spawnSync(process.execPath, [LVSD, '--test-config', '-c', cf], { encoding: 'utf8' });
    expect(ok.status).toBe(0);
    const bad = join(dir, 'bad.cf');
    writeFileSync(bad, lvsCf([1, 1, 1]).replace('scheduler = wrr', 'scheduler = wlcx'));
    const r = spawnSync(process.execPath, [LVSD, '--test-config', '-c', bad], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`bad\\.cf:11:\\d+ scheduler: unknown scheduler "wlcx"`));
  });
});

describe('lvsd running on lvs.cf', () => {
  it('starts, logs as JSON lines, brings up the VIPs and serves them', async () => {
    daemon = spawn(process.execPath, [LVSD, '-c', cf, '--socket', sock, '--netns', lab.director.ns.name], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    daemon.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let at: number;
      while ((at = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, at);
        buf = buf.slice(at + 1);
        try {
          lines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          lines.push({ raw: line });
        }
      }
    });
    await logged((l) => l.event === 'ready');
    expect(statSync(sock).mode & 0o777).toBe(0o600);
    // Every real starts down until its first health check passes (within one interval).
    await waitFor('every real to pass its first check', () => (spawnSync(process.execPath, [LVSADM, '--socket', sock, '-L', '-n'], { encoding: 'utf8' }).stdout.match(/Masq|Route/g) ?? []).length === 4);
    const r = await httpLoad(lab, { url: url(lab.vip4(0)), count: 6, concurrency: 1 });
    expect(r.byReal).toEqual({ n1: 2, n2: 2, n3: 2 });
    expect((await lab.curl(url(lab.vip4(1)))).body.startsWith('d1 ')).toBe(true);
    await logged((l) => l.msg === 'gratuitous lvs arps finished', 15_000);
  });

  it('SIGHUP that edits one service leaves long-lived connections of another service intact', async () => {
    const long = lab.run(lab.client.ns, 'curl', ['-sS', '--max-time', '30', url(lab.vip4(1), '/slow?seconds=4')]);
    await new Promise((r) => setTimeout(r, 500));
    writeFileSync(cf, lvsCf([1, 2, 3]));
    daemon!.kill('SIGHUP');
    const applied = await logged((l) => l.event === 'reload');
    expect(applied.servicesChanged).toEqual([]);
    expect(applied.realsChanged).toBe(2);
    const r = await httpLoad(lab, { url: url(lab.vip4(0)), count: 12, concurrency: 1 });
    expect(r.byReal).toEqual({ n1: 2, n2: 4, n3: 6 });
    expect((await long).stdout).toBe('.'.repeat(40));
  });

  it('lvsadm changes the running director at once, and --write-config saves it into lvs.cf', async () => {
    const lvsadm = (...args: string[]) => spawnSync(process.execPath, [LVSADM, '--socket', sock, ...args], { encoding: 'utf8' });
    const n1 = lab.real('n1').address4;
    expect(lvsadm('-e', '-t', `${lab.vip4(0)}:80`, '-r', `${n1}:80`, '-m', '-w', '6').status).toBe(0);
    expect(lvsadm('-L', '-n').stdout).toMatch(new RegExp(`-> ${n1.replaceAll('.', '\\.')}:80 +Masq +6 `));
    const r = await httpLoad(lab, { url: url(lab.vip4(0)), count: 11, concurrency: 1 });
    expect(r.byReal).toEqual({ n1: 6, n2: 2, n3: 3 });
    const saved = lvsadm('--write-config');
    expect(saved.status).toBe(0);
    const text = readFileSync(cf, 'utf8');
    expect(text).toMatch(/^serial_no = 2$/m);
    expect(text).toMatch(/server web1 \{\n {9}address = \S+\n {9}active = 1\n {9}weight = 6\n/);
    expect(spawnSync(process.execPath, [LVSD, '--test-config', '-c', cf]).status).toBe(0);
  });

  it('a broken file on SIGHUP is refused, logged, and traffic keeps flowing', async () => {
    writeFileSync(cf, lvsCf([1, 2, 3]).replace('port = 80\n     protocol = tcp', 'port = 80\n     protocol = tcpx'));
    daemon!.kill('SIGHUP');
    const refused = await logged((l) => l.event === 'reload-failed');
    expect(String(refused.err)).toMatch(/lvs\.cf:\d+:\d+ protocol/);
    const r = await httpLoad(lab, { url: url(lab.vip4(0)), count: 11, concurrency: 1 });
    expect(r.byReal).toEqual({ n1: 6, n2: 2, n3: 3 });
  });

  it('the control socket speaks versioned JSON, refuses other versions and oversized requests', async () => {
    const talk = (payload: string | Buffer) =>
      new Promise<{ reply: string; closed: boolean }>((resolve) => {
        const c = connect(sock);
        let reply = '';
        c.on('data', (d) => (reply += d.toString()));
        c.on('close', () => resolve({ reply, closed: true }));
        c.on('error', () => resolve({ reply, closed: true }));
        c.write(payload);
        setTimeout(() => {
          c.destroy();
          resolve({ reply, closed: false });
        }, 1500);
      });
    const hello = await talk('{"v":1,"id":1,"op":"hello"}\n');
    expect(JSON.parse(hello.reply)).toMatchObject({ v: 1, id: 1, ok: true, result: { daemon: 'lvsd', version: 1 } });
    const v2 = await talk('{"v":2,"id":5,"op":"list"}\n');
    expect(JSON.parse(v2.reply)).toMatchObject({ v: 1, id: 5, ok: false, error: { code: 'LVS_PROTOCOL' } });
    const huge = await talk(Buffer.alloc(2 << 20, 0x61));
    expect(huge).toEqual({ reply: '', closed: true });
    // And the daemon is as it was.
    expect(spawnSync(process.execPath, [LVSADM, '--socket', sock, '-L', '-n'], { encoding: 'utf8' }).status).toBe(0);
  });

  it('SIGTERM stops it cleanly: exit 0, VIPs and the socket gone', async () => {
    const exited = new Promise<number | null>((resolve) => daemon!.once('exit', (code) => resolve(code)));
    daemon!.kill('SIGTERM');
    expect(await exited).toBe(0);
    daemon = undefined;
    const addrs = lab.director.ns.ip('-j', 'addr', 'show');
    expect(addrs).not.toContain(`"${lab.vip4(0)}"`);
    expect(addrs).not.toContain(`"${lab.natRouter4}"`);
    expect(() => statSync(sock)).toThrow();
  });
});
