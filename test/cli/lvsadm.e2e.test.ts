/**
 * lvsadm against the real lvsd: the namespace lab (a client, a director, NAT and DR reals),
 * lvsd started on an lvs.cf in the director's namespace with its control socket in a
 * temporary directory, and lvsadm run in this process (and once as the installed program).
 * The changes lvsadm makes must show in -L -n exactly and carry real traffic; -S | -C | -R must
 * give back the same table; -Z must zero the counters traffic raised; --set must show in
 * --timeout; --rate must see a burst of connections; and with lvsd gone lvsadm must say so.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lvsadm } from '../../src/cli/lvsadm.js';
import { NO_NAMES } from '../../src/cli/ipvsadm-args.js';
import { startDaemon, type Daemon } from '../../src/daemon/daemon.js';
import { packageRoot } from '../../src/dataplane/native.js';
import type { Lab } from '../../src/lab/lab.js';
import { removeAllNamespaces } from '../../src/lab/netns.js';
import { httpLoad, makeLab, url, waitFor } from '../e2e/setup.js';

const dir = mkdtempSync(join(tmpdir(), 'lvsadm-e2e-'));
const socket = join(dir, 'lvsd.sock');
const config = join(dir, 'lvs.cf');
let lab: Lab;
let daemon: Daemon | null = null;
let VIP0: string;
let VIP1: string;
let N1: string;
let N2: string;
let D1: string;

async function run(line: string, stdin = ''): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const status = await lvsadm(line.split(' ').filter(Boolean), {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    readStdin: async () => stdin,
    env: { LVSD_SOCKET: socket },
    names: NO_NAMES,
  });
  return { status, stdout, stderr };
}

async function ok(line: string, stdin = ''): Promise<string> {
  const r = await run(line, stdin);
  expect(r, `lvsadm ${line}`).toMatchObject({ status: 0, stderr: '' });
  return r.stdout;
}

const pad = (s: string, n: number) => s.padEnd(n);
const realLine = (addr: string, fwd: string, weight: number, active = 0, inactive = 0) =>
  `  -> ${pad(addr, 28)} ${pad(fwd, 7)} ${pad(String(weight), 6)} ${pad(String(active), 10)} ${pad(String(inactive), 10)}\n`;
let HEAD: string;

/** A listing with its ActiveConn/InActConn columns masked (widths kept): connections that
 *  traffic left behind (FIN_WAIT, TIME_WAIT) count there until they expire. */
const masked = (text: string) =>
  text.replace(/^( {2}-> .{28} .{7} .{6} )(\d+ *) (\d+ *)$/gm, (_, head: string, a: string, b: string) => `${head}${'A'.padEnd(a.length)} ${'I'.padEnd(b.length)}`);
const maskedLine = (addr: string, fwd: string, weight: number) => realLine(addr, fwd, weight).replace(/0( +)0( +)\n$/, 'A$1I$2\n');
/** Active + inactive connections of a real in a -L -n listing. */
const connections = (text: string, addr: string) => {
  const m = new RegExp(String.raw`^ {2}-> ${addr.replace(/\./g, '\\.')} +\S+ +\d+ +(\d+) +(\d+) *$`, 'm').exec(text);
  return m ? Number(m[1]) + Number(m[2]) : -1;
};

beforeAll(async () => {
  lab = await makeLab({ reals: [{ name: 'n1', method: 'nat' }, { name: 'n2', method: 'nat' }, { name: 'd1', method: 'direct' }], ipv6: false });
  await lab.startServers();
  VIP0 = lab.vip4(0);
  VIP1 = lab.vip4(1);
  N1 = lab.real('n1').address4;
  N2 = lab.real('n2').address4;
  D1 = lab.real('d1').address4;
  writeFileSync(
    config,
    [
      `primary = ${lab.director.address4.pub}`,
      'service = lvs',
      'network = nat',
      `nat_router = ${lab.natRouter4} priv`,
      'virtual web {',
      '     active = 1',
      `     address = ${VIP0} pub`,
      '     port = 80',
      '     scheduler = rr',
      '     timeout = 1',
      '     server n1 {',
      `         address = ${N1}`,
      '         active = 1',
      '     }',
      '}',
      '',
    ].join('\n'),
  );
  daemon = await startDaemon({ config, socket, netns: lab.director.ns.name, announce: { count: 1 } });
  // n1 starts down until its first health check passes.
  await waitFor('n1 to pass its first check', () => daemon!.director.dataplane!.listServices()[0]?.reals.length === 1);
  HEAD = `IP Virtual Server version 1.2.1 (size=${daemon.director.dataplane!.info().tableCapacity})\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n`;
});

afterAll(async () => {
  await daemon?.stop();
  rmSync(dir, { recursive: true, force: true });
  removeAllNamespaces();
});

describe('lvsadm and lvsd', () => {
  it('-L -n shows what lvs.cf set up, byte for byte', async () => {
    expect(await ok('-L -n')).toBe(HEAD + `TCP  ${VIP0}:80 rr\n` + realLine(`${N1}:80`, 'Masq', 1));
  });

  it('adds, edits and deletes a service and its reals; the table and the traffic follow', async () => {
    await ok(`-A -t ${VIP1}:80 -s wrr`);
    await ok(`-a -t ${VIP1}:80 -r ${N2} -m -w 2`);
    await ok(`-a -t ${VIP1}:80 -r ${D1} -g`);
    // Reals sorted by address: d1 (198.18.0.13) before n2 (198.18.1.12).
    expect(await ok('-L -n')).toBe(HEAD + `TCP  ${VIP0}:80 rr\n` + realLine(`${N1}:80`, 'Masq', 1) + `TCP  ${VIP1}:80 wrr\n` + realLine(`${D1}:80`, 'Route', 1) + realLine(`${N2}:80`, 'Masq', 2));
    // The new service answers, from both its reals.
    const load = await httpLoad(lab, { url: url(VIP1), count: 9, concurrency: 1 });
    expect(load.failed).toBe(0);
    expect(load.byReal).toEqual({ n2: 6, d1: 3 });

    // Every connection is counted at its real, active or (closed) inactive.
    const after = await ok('-L -n');
    expect([connections(after, `${N2}:80`), connections(after, `${D1}:80`)]).toEqual([6, 3]);

    await ok(`-E -t ${VIP1}:80 -s rr -p 120`);
    await ok(`-e -t ${VIP1}:80 -r ${N2} -m -w 5 -x 100 -y 10`);
    expect(masked(await ok(`-L -n -t ${VIP1}:80`))).toBe(
      'Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n' + `TCP  ${VIP1}:80 rr persistent 120\n` + maskedLine(`${D1}:80`, 'Route', 1) + maskedLine(`${N2}:80`, 'Masq', 5),
    );
    const thresholds = `  -> ${pad(`${N2}:80`, 28)} ${pad('100', 10)} ${pad('10', 10)} `;
    expect((await ok('-L -n --thresholds')).split('\n').filter((l) => l.startsWith(thresholds))).toHaveLength(1);

    await ok(`-d -t ${VIP1}:80 -r ${D1}`);
    expect(await run(`-d -t ${VIP1}:80 -r ${D1}`)).toEqual({ status: 255, stdout: '', stderr: 'No such destination\n' });
    await ok(`-D -t ${VIP1}:80`);
    expect(await run(`-D -t ${VIP1}:80`)).toEqual({ status: 255, stdout: '', stderr: 'No such service\n' });
    expect(await run(`-a -t ${VIP1}:80 -r ${N2} -m`)).toEqual({ status: 255, stdout: '', stderr: 'Service not defined\n' });
    expect(masked(await ok('-L -n'))).toBe(HEAD + `TCP  ${VIP0}:80 rr\n` + maskedLine(`${N1}:80`, 'Masq', 1));
    // And the deleted service no longer answers.
    expect((await lab.curl(url(VIP1), ['--max-time', '2'], { check: false })).status).toBe(0);
  });

  it('-S -n, then -C, then -R rebuilds the same table', async () => {
    await ok(`-A -t ${VIP1}:80 -s sh -b sh-port -p 300 -M 255.255.255.0`);
    await ok(`-a -t ${VIP1}:80 -r ${N2}:8080 -m -w 4`);
    await ok(`-a -t ${VIP1}:80 -r ${D1} -g -w 0`);
    const before = await ok('-L -n');
    const saved = await ok('-S -n');
    expect(saved).toBe(
      `-A -t ${VIP0}:80 -s rr\n` +
        `-a -t ${VIP0}:80 -r ${N1}:80 -m -w 1\n` +
        `-A -t ${VIP1}:80 -s sh -p 300 -M 255.255.255.0 -b sh-port\n` +
        `-a -t ${VIP1}:80 -r ${D1}:80 -g -w 0\n` +
        `-a -t ${VIP1}:80 -r ${N2}:8080 -m -w 4\n`,
    );
    await ok('-C');
    expect(await ok('-L -n')).toBe(HEAD);
    await ok('-R', saved);
    expect(masked(await ok('-L -n'))).toBe(masked(before));
    expect(await ok('-S -n')).toBe(saved);
    expect((await lab.curl(url(VIP0))).status).toBe(200);
    await ok(`-D -t ${VIP1}:80`);
  });

  it('-Z zeroes what traffic counted; --rate sees a burst of connections', async () => {
    const load = await httpLoad(lab, { url: url(VIP0), count: 40, concurrency: 4 });
    expect(load.failed).toBe(0);
    const statsLine = async () => (await ok('-L -n --stats --exact')).split('\n')[3]!;
    const counted = (await statsLine()).trim().split(/\s+/);
    expect(counted[0]).toBe('TCP');
    expect(Number(counted[2])).toBeGreaterThanOrEqual(40); // connections
    expect(Number(counted[3])).toBeGreaterThan(0); // packets in
    // Within two estimator periods the burst shows as connections per second.
    await new Promise((r) => setTimeout(r, 4500));
    const rate = (await ok('-L -n --rate')).split('\n')[3]!.trim().split(/\s+/);
    expect(Number(rate[2])).toBeGreaterThan(0);
    // Let the last packets of the connections arrive, then zero.
    await new Promise((r) => setTimeout(r, 500));
    await ok('-Z');
    expect(await statsLine()).toBe(`${pad(`TCP  ${VIP0}:80`, 33)}        0        0        0        0        0`);
    expect(await ok(`-Z -t ${VIP0}:80`)).toBe('');
    expect(await run(`-Z -t ${VIP1}:80`)).toEqual({ status: 255, stdout: '', stderr: 'No such service\n' });
  });

  it('--set changes what --timeout shows (0 keeps a value)', async () => {
    await ok('--set 1000 100 200');
    expect(await ok('-L --timeout')).toBe('Timeout (tcp tcpfin udp): 1000 100 200\n');
    await ok('--set 0 60 0');
    expect(await ok('-L --timeout')).toBe('Timeout (tcp tcpfin udp): 1000 60 200\n');
  });

  it('the installed program: same output, ipvsadm exit statuses', async () => {
    // Asynchronously: lvsd answers from this very process.
    const bin = join(packageRoot, 'dist', 'cli', 'lvsadm.js');
    const lvsadmBin = (...args: string[]) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [bin, ...args], { env: { ...process.env, LVSD_SOCKET: socket } }, (err, stdout, stderr) => {
          resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
        });
      });
    const listed = await lvsadmBin('-L', '-n');
    expect({ ...listed, stdout: masked(listed.stdout) }).toEqual({ status: 0, stdout: masked(await ok('-L -n')), stderr: '' });
    expect(listed.stdout.startsWith(HEAD + `TCP  ${VIP0}:80 rr\n`)).toBe(true);
    expect(await lvsadmBin('-A', '-t', VIP1)).toEqual({ status: 2, stdout: '', stderr: 'Zero port specified for non-persistent service\n' });
    expect(await lvsadmBin('-A', '-t', `${VIP0}:80`)).toEqual({ status: 255, stdout: '', stderr: 'Service already exists\n' });
  });

  it('with lvsd gone: "cannot reach lvsd", exit 2', async () => {
    await daemon!.stop();
    daemon = null;
    expect(await run('-L -n')).toEqual({ status: 2, stdout: '', stderr: `lvsadm: cannot reach lvsd at ${socket}: No such file or directory\n` });
  });
});
