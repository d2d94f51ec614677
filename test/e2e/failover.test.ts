/**
 * Active/backup failover with two lvsd processes, as two routers run it: the lab's two
 * director namespaces on the same client and real segments, each lvsd with its own copy of
 * lvs.cf and the shared key. The primary takes the VIPs; the backup follows its heartbeats
 * and its connection state; kill -9 of the active and the backup takes over with the
 * established connections still flowing.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Lab } from '../../src/lab/lab.js';
import { CLIENTS, makeLab, waitFor } from './setup.js';
import { LvsdProcess, type LogRecord } from './lvsd-process.js';
import { ControlClient } from '../../src/cli/client.js';

let lab: Lab;
let dir: string;
const KEY = 'bHZzZC10ZXN0LWtleS1mb3ItZmFpbG92ZXItb25seQ==\n';

interface Node { name: 'a' | 'b'; cf: string; sock: string; ns: string }
let A: Node;
let B: Node;

export function pairCf(lab: Lab, opts: { serial?: number; keepalive?: number; deadtime?: number; extra?: string; weight?: number } = {}): string {
  const [d1, d2] = lab.directors;
  return `serial_no = ${opts.serial ?? 1}
primary = ${d1!.address4.pub}
primary_private = ${d1!.address4.priv}
backup = ${d2!.address4.pub}
backup_private = ${d2!.address4.priv}
backup_active = 1
heartbeat_port = 539
keepalive = ${opts.keepalive ?? 0.25}
deadtime = ${opts.deadtime ?? 2}
heartbeat_key = heartbeat.key
arp_count = 3
arp_interval = 0.3
service = lvs
network = nat
nat_router = ${lab.natRouter4} priv
${opts.extra ?? ''}
virtual echo-nat {
     active = 1
     address = ${lab.vip4(0)} pub
     port = 7
     protocol = tcp
     scheduler = rr
     persistent = 600
     timeout = 1
     server n1 {
         address = ${lab.real('n1').address4}
         active = 1
         weight = ${opts.weight ?? 1}
     }
     server n2 {
         address = ${lab.real('n2').address4}
         active = 1
     }
}
virtual echo-dr {
     active = 1
     address = ${lab.vip4(1)} pub
     port = 7
     protocol = tcp
     scheduler = rr
     timeout = 1
     server d1 {
         address = ${lab.real('d1').address4}
         active = 1
         method = direct
     }
     server d2 {
         address = ${lab.real('d2').address4}
         active = 1
         method = direct
     }
}
`;
}

function node(name: 'a' | 'b', ns: string): Node {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'heartbeat.key'), KEY, { mode: 0o600 });
  chmodSync(join(d, 'heartbeat.key'), 0o600);
  const cf = join(d, 'lvs.cf');
  writeFileSync(cf, pairCf(lab));
  return { name, cf, sock: join(d, 'lvsd.sock'), ns };
}

function start(n: Node, extra: string[] = []): LvsdProcess {
  return new LvsdProcess(n.name === 'a' ? 'primary' : 'backup', n.cf, n.ns, n.sock, extra);
}

const isActive = (l: LogRecord) => l.event === 'active';
const isStandby = (l: LogRecord) => l.event === 'standby';

/** The long-lived client: N connections, a line each every interval, until "stop". */
function longlived(address: string, port: number, n: number, extra: string[] = []) {
  const child = spawn('ip', ['netns', 'exec', lab.client.ns.name, 'sh', '-c', `exec ${process.execPath} ${join(CLIENTS, 'longlived.mjs')} ${address} ${port} --connections ${n} --interval-ms 100 ${extra.join(' ')}`], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let running!: () => void;
  const started = new Promise<void>((r) => (running = r));
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('"phase":"running"')) running();
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<Record<string, any>>((resolve, reject) => {
    child.on('exit', () => {
      const line = out.split('\n').find((l) => l.includes('"type":"result"'));
      if (!line) reject(new Error(`longlived gave no result: ${err}`));
      else resolve(JSON.parse(line));
    });
  });
  const status = async (): Promise<Record<string, any>> => {
    const seen = out.length;
    child.stdin.write('status\n');
    for (let i = 0; i < 100; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const line = out.slice(seen).split('\n').find((l) => l.includes('"type":"status"'));
      if (line) return JSON.parse(line);
    }
    throw new Error('longlived: no status line');
  };
  return { started, status, stop: () => { child.stdin.write('stop\n'); return done; }, kill: () => child.kill('SIGKILL') };
}

beforeAll(async () => {
  lab = await makeLab({ tag: 'fo', directors: 2, reals: [{ name: 'n1', method: 'nat' }, { name: 'n2', method: 'nat' }, { name: 'd1', method: 'direct' }, { name: 'd2', method: 'direct' }], vips: 2, ipv6: false });
  await lab.startServers();
  dir = mkdtempSync(join(tmpdir(), 'lvsd-failover-'));
  A = node('a', lab.directors[0]!.ns.name);
  B = node('b', lab.directors[1]!.ns.name);
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('two lvsd routers', () => {
  let a: LvsdProcess;
  let b: LvsdProcess;

  it('the primary takes the VIPs, the backup stays standby and follows its heartbeats', async () => {
    a = start(A);
    await a.waitLog('the primary going active', isActive, 20_000);
    b = start(B);
    await b.waitLog('the backup hearing the primary', (l) => l.event === 'heartbeat' || l.event === 'failover', 20_000);
    await waitFor('the backup to see the primary alive', async () => JSON.stringify(b.lines).includes('STARTING PULSE AS BACKUP'));
    // Health checks first: every real up on the active.
    await waitFor('every real up on the primary', () => (a.lvsadm('-L', '-n').stdout.match(/Masq|Route/g) ?? []).length === 4, 20_000);
    const echo = await lab.run(lab.client.ns, process.execPath, [join(CLIENTS, 'longlived.mjs'), lab.vip4(0), '7', '--connections', '4', '--duration-ms', '500']);
    const r = JSON.parse(echo.stdout.trim().split('\n').pop()!);
    expect(r.totals.survived).toBe(4);
    expect(b.has(isActive)).toBe(false);
    // The control socket's status: roles, who is active, the partner heard, the sync link up.
    const status = async (p: LvsdProcess) => {
      const c = await ControlClient.connect(p.socket);
      try {
        return (await c.request({ op: 'status' })) as { director: { active: boolean }; failover: Record<string, any> };
      } finally {
        c.close();
      }
    };
    await waitFor('the sync link', async () => (await status(b)).failover.sync.linked === true);
    const sa = await status(a);
    const sb = await status(b);
    expect(sa).toMatchObject({ director: { active: true }, failover: { mode: 'pulse', role: 'primary', active: true, partnerAlive: true } });
    expect(sb).toMatchObject({ director: { active: false }, failover: { mode: 'pulse', role: 'backup', active: false, partnerAlive: true } });
    expect(sb.failover.sync.dumpsReceived).toBeGreaterThanOrEqual(1);
    expect(sa.failover.sync.lastConfigResult).toMatchObject({ ok: true });
  }, 60_000);

  it('kill -9 of the active: the backup takes the VIPs after deadtime and serves new connections; the guardian takes the dead router\'s addresses down', async () => {
    const from = b.lines.length;
    const killedAt = Date.now();
    await a.kill('SIGKILL');
    const took = await b.waitLog('the backup going active', isActive, 10_000, from);
    expect(b.has((l) => String(l.msg ?? '').includes('partner dead: activating lvs'), from)).toBe(true);
    // The backup's health checks have been running all along: its reals are up already.
    const echo = await lab.run(lab.client.ns, process.execPath, [join(CLIENTS, 'longlived.mjs'), lab.vip4(1), '7', '--connections', '4', '--duration-ms', '300']);
    expect(JSON.parse(echo.stdout.trim().split('\n').pop()!).totals.survived).toBe(4);
    await b.waitLog('the gratuitous ARPs', (l) => l.msg === 'gratuitous lvs arps finished', 10_000, from);
    // The dead router holds no VIP any more (its guardian took them down), so only the new
    // active answers ARP for them.
    await waitFor('the guardian to take the VIPs down', () => !ipAddrs(lab.directors[0]!.ns.name).includes(lab.vip4(0)));
    expect(ipAddrs(lab.directors[0]!.ns.name)).not.toContain(lab.natRouter4);
    // Its crash guard stays: NAT replies still reaching the dead router are dropped there, not
    // forwarded untranslated (the client would answer those with resets).
    expect(() => execFileSync('ip', ['netns', 'exec', lab.directors[0]!.ns.name, 'nft', 'list', 'table', 'netdev', 'lvsd'], { stdio: 'pipe' })).not.toThrow();
    expect(ipAddrs(lab.directors[1]!.ns.name)).toEqual(expect.arrayContaining([lab.vip4(0), lab.vip4(1), lab.natRouter4]));
    console.log(`takeover logged ${Number(took.time) - killedAt} ms after kill -9 (keepalive 0.25 s, deadtime 2 s)`);
  }, 60_000);

  it('the returning primary stays backup (no preemption)', async () => {
    a = start(A);
    await a.waitLog('the primary starting', (l) => String(l.msg ?? '').includes('STARTING PULSE AS MASTER'), 20_000);
    // It hears the backup's RUNNING and stays standby: several keepalives and a deadtime pass.
    await a.waitLog('lvsd ready', (l) => l.event === 'ready', 20_000);
    await new Promise((r) => setTimeout(r, 1500));
    expect(a.has(isActive)).toBe(false);
    expect(ipAddrs(lab.directors[0]!.ns.name)).not.toContain(lab.vip4(0));
    expect(b.has(isStandby)).toBe(false);
  }, 60_000);

  it('forged heartbeats (wrong key, Piranha\'s bare magic) from the partner\'s own address are refused and logged', async () => {
    const from = b.lines.length;
    const script = `
      const { encodeLvsd, encodePiranha } = await import(${JSON.stringify(join(process.cwd(), 'dist', 'ha', 'heartbeat-wire.js'))});
      const dgram = await import('node:dgram');
      const forged = encodeLvsd({ state: 'stop-me', isPrimary: true, priority: 255, nodeId: 1, bootId: Buffer.alloc(8, 7), sequence: 1n, timestamp: Date.now(), serialNo: 1, configDigest: Buffer.alloc(16) }, Buffer.from('not the key of this pair at all'));
      const send = (src, dst, buf) => new Promise((done) => {
        const s = dgram.createSocket('udp4');
        s.bind(0, src, () => s.send(buf, 539, dst, () => { s.close(); done(); }));
      });
      await send(${JSON.stringify(lab.directors[0]!.address4.priv)}, ${JSON.stringify(lab.directors[1]!.address4.priv)}, forged);
      await send(${JSON.stringify(lab.directors[0]!.address4.pub)}, ${JSON.stringify(lab.directors[1]!.address4.pub)}, encodePiranha('stopped'));`;
    await lab.run(lab.directors[0]!.ns, process.execPath, ['--input-type=module', '-e', script]);
    const refused = await b.waitLog('the refusal', (l) => String(l.msg ?? '').includes('refused') && String(l.msg ?? '').includes(lab.directors[0]!.address4.priv), 5000, from);
    expect(String(refused.msg)).toMatch(/heartbeat from 198\.18\.1\.1 refused: .*(MAC|mac|authenticat)/);
    await b.waitLog('the bare magic refused', (l) => String(l.msg ?? '').includes('refused') && String(l.msg ?? '').includes(lab.directors[0]!.address4.pub) && String(l.msg ?? '').includes('unauthenticated'), 5000, from);
    // The forged STOP-ME did not make the active router stand down.
    await new Promise((r) => setTimeout(r, 500));
    expect(b.has(isStandby, from)).toBe(false);
  }, 30_000);

  it('split brain (heartbeats cut both ways): both go active; when they hear each other again the primary wins, and both say why', async () => {
    const fromA = a.lines.length;
    const fromB = b.lines.length;
    const cut = (on: boolean) => nft(lab.directors[1]!.ns.name, on
      ? 'table inet cut {\n chain in {\n  type filter hook input priority 0; udp dport 539 drop\n }\n chain out {\n  type filter hook output priority 0; udp dport 539 drop\n }\n}'
      : 'delete table inet cut');
    cut(true);
    try {
      await a.waitLog('the primary going active', isActive, 10_000, fromA);
      expect(b.has(isStandby, fromB)).toBe(false);
    } finally {
      cut(false);
    }
    await b.waitLog('the backup giving way', (l) => String(l.msg ?? '').startsWith('both routers active: partner stays active (the primary wins)'), 10_000, fromB);
    await b.waitLog('the backup standing down', isStandby, 10_000, fromB);
    await a.waitLog('the primary keeping the VIPs', (l) => String(l.msg ?? '').startsWith('both routers active: staying active (the primary wins)'), 10_000, fromA);
    await waitFor('the VIPs only on the primary', () => ipAddrs(lab.directors[0]!.ns.name).includes(lab.vip4(0)) && !ipAddrs(lab.directors[1]!.ns.name).includes(lab.vip4(0)));
    expect(a.has(isStandby, fromA)).toBe(false);
  }, 60_000);

  // From here on: connection and configuration sync. Two sets of long-lived connections run
  // through both takeovers below: 25 to the NAT service (persistent, from 10 client
  // addresses) and 25 to the DR service, each sending a line every 100 ms.
  let nat: ReturnType<typeof longlived>;
  let dr: ReturnType<typeof longlived>;
  let placement: Record<string, string[]>;

  it('kill -9 of the active with 50 established connections (NAT and DR): every one keeps exchanging data through the backup, and persistence holds', async () => {
    const fromB = b.lines.length;
    nat = longlived(lab.vip4(0), 7, 25, ['--sources', '10']);
    dr = longlived(lab.vip4(1), 7, 25);
    await Promise.all([nat.started, dr.started]);
    placement = await probePlacement();
    expect(Object.keys(placement)).toHaveLength(10);
    // The backup has the active's table (the dump at link-up, then the stream).
    await waitFor('the backup to hold the 50 connections', () => established(b) >= 50, 10_000);
    await a.kill('SIGKILL');
    await b.waitLog('the takeover', isActive, 10_000, fromB);
    await new Promise((r) => setTimeout(r, 2000));
    for (const [what, c] of [['NAT', nat], ['DR', dr]] as const) {
      const st = await c.status();
      expect(st.failed, what).toBe(0);
      expect(st.open, what).toBe(25);
      expect(st.oldestOutstandingMs, what).toBeLessThan(1500);
    }
    // New connections from each client address go to the real its template names.
    expect(await probePlacement()).toEqual(placement);
  }, 60_000);

  it('a restarted router resyncs the whole table before it could take over, then takes over again with every connection intact', async () => {
    a = start(A);
    const dump = await a.waitLog('the full table from the new active', (l) => l.event === 'sync-dump', 20_000);
    expect(Number(dump.entries)).toBeGreaterThanOrEqual(50 + 10);
    expect(a.has(isActive)).toBe(false);
    await waitFor('the restarted router to hold the 50 connections', () => established(a) >= 50, 10_000);
    const fromA = a.lines.length;
    await b.kill('SIGKILL');
    await a.waitLog('the takeover', isActive, 10_000, fromA);
    await new Promise((r) => setTimeout(r, 2000));
    const [n, d] = await Promise.all([nat.stop(), dr.stop()]);
    for (const [what, r] of [['NAT', n], ['DR', d]] as const) {
      const failed = (r.connections as Array<{ error: string | null }>).filter((c) => c.error);
      expect(failed, `${what}: ${JSON.stringify(failed.slice(0, 3))}`).toEqual([]);
      expect(r.totals.survived, what).toBe(25);
      expect(r.totals.echoed, what).toBe(r.totals.sent);
    }
    // Each NAT client address stayed on one real through both takeovers.
    for (const [src, reals] of Object.entries(n.totals.bySource as Record<string, string[]>)) expect(reals, src).toEqual(placement[src]);
    expect(await probePlacement()).toEqual(placement);
  }, 90_000);

  it('a configuration change on the active appears on the backup, byte for byte, and runs there', async () => {
    b = start(B);
    await b.waitLog('the backup linked', (l) => l.event === 'sync-dump', 20_000);
    const fromB = b.lines.length;
    writeFileSync(A.cf, pairCf(lab, { serial: 2, weight: 5 }));
    a.child.kill('SIGHUP');
    await b.waitLog('the pushed configuration applied', (l) => l.event === 'config-sync-applied', 10_000, fromB);
    expect(readFileSync(B.cf, 'utf8')).toBe(readFileSync(A.cf, 'utf8'));
    await a.waitLog('the backup\'s confirmation', (l) => l.event === 'config-sync' && l.serialNo === 2, 10_000);
    await waitFor('weight 5 on the backup', () => /198\.18\.1\.11:7\s+Masq\s+5/.test(b.lvsadm('-L', '-n').stdout), 10_000);
  }, 60_000);

  it('a configuration the backup cannot run is refused there, nothing changes, and both routers report it', async () => {
    const fromA = a.lines.length;
    const fromB = b.lines.length;
    const good = readFileSync(B.cf, 'utf8');
    // The active runs it (its own devices), the backup has no such device: mismatched routers.
    writeFileSync(A.cf, pairCf(lab, { serial: 3, weight: 5 }).replace(`address = ${lab.vip4(1)} pub`, `address = ${lab.vip4(1)} pub`).replace('backup_private = ' + lab.directors[1]!.address4.priv, 'backup_private = 198.18.1.77'));
    a.child.kill('SIGHUP');
    const refused = await b.waitLog('the refusal on the backup', (l) => l.event === 'config-sync-refused', 10_000, fromB);
    expect(String(refused.msg)).toMatch(/may not be able to take over/);
    await a.waitLog('the refusal reported on the active', (l) => l.event === 'config-sync-refused', 10_000, fromA);
    expect(readFileSync(B.cf, 'utf8')).toBe(good);
    writeFileSync(A.cf, pairCf(lab, { serial: 4, weight: 5 }));
    a.child.kill('SIGHUP');
  }, 60_000);
});

function established(p: LvsdProcess): number {
  return (p.lvsadm('-L', '-n', '-c').stdout.match(/ESTABLISHED/g) ?? []).length;
}

/** Which real each of the 10 client addresses reaches on the persistent NAT service. */
async function probePlacement(): Promise<Record<string, string[]>> {
  const probe = await lab.run(lab.client.ns, process.execPath, [join(CLIENTS, 'longlived.mjs'), lab.vip4(0), '7', '--connections', '10', '--sources', '10', '--duration-ms', '200']);
  const r = JSON.parse(probe.stdout.trim().split('\n').pop()!);
  expect(r.totals.survived).toBe(10);
  return r.totals.bySource as Record<string, string[]>;
}

function nft(ns: string, script: string): void {
  execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: `${script}\n` });
}

function ipAddrs(ns: string): string[] {
  const out = execFileSync('ip', ['-n', ns, '-o', 'addr', 'show'], { encoding: 'utf8' });
  return [...out.matchAll(/inet6? ([0-9a-f.:]+)\//g)].map((m) => m[1]!);
}
