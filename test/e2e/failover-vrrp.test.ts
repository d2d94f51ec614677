/**
 * lvsd with `election = vrrp` against keepalived (Debian's v2.2.7, VRRPv3) on the lab's two
 * director namespaces: lvsd on the first, keepalived on the second, one virtual router with
 * one VIP. They elect by priority and each takes over from the other.
 */
import { type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Lab } from '../../src/lab/lab.js';
import { CLIENTS, makeLab, waitFor } from './setup.js';
import { LvsdProcess } from './lvsd-process.js';

let lab: Lab;
let dir: string;
let keepalived: ChildProcess | undefined;
const VRID = 61;

function lvsCf(priority: number): string {
  return `serial_no = 1
primary = ${lab.directors[0]!.address4.pub}
backup = ${lab.directors[1]!.address4.pub}
backup_active = 1
election = vrrp
vrrp_id = ${VRID}
priority = ${priority}
keepalive = 1
sync_port = 0
arp_count = 2
arp_interval = 0.2
service = lvs
network = direct
virtual echo {
     active = 1
     address = ${lab.vip4(0)} pub
     port = 7
     protocol = tcp
     scheduler = rr
     timeout = 1
     server d1 {
         address = ${lab.real('d1').address4}
         active = 1
     }
}
`;
}

function startKeepalived(priority: number): void {
  const conf = join(dir, 'keepalived.conf');
  writeFileSync(conf, [
    'global_defs {', '  vrrp_version 3', '  script_user root', '  router_id lvsd-e2e', '}',
    'vrrp_instance lvs {', '  state BACKUP', '  interface pub', `  virtual_router_id ${VRID}`, `  priority ${priority}`, '  advert_int 1',
    `  virtual_ipaddress {\n    ${lab.vip4(0)}/32\n  }`, `  notify ${join(dir, 'notify.sh')}`, '}', '',
  ].join('\n'));
  rmSync(join(dir, 'state'), { force: true });
  keepalived = lab.directors[1]!.ns.spawn('/usr/sbin/keepalived', ['-n', '-l', '-D', '-G', '-P', '-f', conf, '-p', join(dir, 'k.pid'), '-r', join(dir, 'k-vrrp.pid')], { detached: true });
}

function killKeepalived(): void {
  const c = keepalived;
  keepalived = undefined;
  if (c?.pid !== undefined) {
    try {
      process.kill(-c.pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
}

const kaState = () => (existsSync(join(dir, 'state')) ? readFileSync(join(dir, 'state'), 'utf8').trim() : '');
const vipOn = (i: number) => execFileSync('ip', ['-n', lab.directors[i]!.ns.name, '-o', 'addr', 'show', 'dev', 'pub'], { encoding: 'utf8' }).includes(` ${lab.vip4(0)}/`);

async function echoWorks(): Promise<boolean> {
  const r = await lab.run(lab.client.ns, process.execPath, [join(CLIENTS, 'longlived.mjs'), lab.vip4(0), '7', '--connections', '2', '--duration-ms', '200', '--connect-timeout-ms', '2000']);
  return JSON.parse(r.stdout.trim().split('\n').pop()!).totals.survived === 2;
}

beforeAll(async () => {
  lab = await makeLab({ tag: 'vr', directors: 2, reals: [{ name: 'd1', method: 'direct' }], vips: 1, ipv6: false });
  await lab.startServers();
  dir = mkdtempSync(join(tmpdir(), 'lvsd-vrrp-'));
  writeFileSync(join(dir, 'notify.sh'), `#!/bin/sh\necho "$3" > "${dir}/state"\n`);
  chmodSync(join(dir, 'notify.sh'), 0o755);
}, 120_000);

afterAll(() => {
  killKeepalived();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('lvsd (election = vrrp) and keepalived', () => {
  let d: LvsdProcess;
  const cf = () => join(dir, 'lvs.cf');
  const start = (priority: number) => {
    writeFileSync(cf(), lvsCf(priority));
    return new LvsdProcess('lvsd', cf(), lab.directors[0]!.ns.name, join(dir, 'lvsd.sock'));
  };

  it('lvsd with the higher priority is master: it holds the VIP and directs; keepalived stays BACKUP', async () => {
    startKeepalived(100);
    d = start(200);
    await d.waitLog('lvsd master', (l) => l.event === 'active', 15_000);
    await waitFor('keepalived BACKUP', () => kaState() === 'BACKUP', 15_000);
    await waitFor('the real up', () => /Route/.test(d.lvsadm('-L', '-n').stdout), 10_000);
    expect(vipOn(0)).toBe(true);
    expect(vipOn(1)).toBe(false);
    expect(await echoWorks()).toBe(true);
  }, 60_000);

  it('lvsd stops (priority 0): keepalived takes over at once', async () => {
    await d.kill('SIGTERM');
    await waitFor('keepalived MASTER', () => kaState() === 'MASTER', 5000);
    await waitFor('the VIP on keepalived\'s side', () => vipOn(1) && !vipOn(0), 5000);
  }, 30_000);

  it('lvsd back with a lower priority stays backup; keepalived killed: lvsd takes over and directs', async () => {
    d = start(50);
    await d.waitLog('lvsd ready', (l) => l.event === 'ready', 15_000);
    await d.waitLog('lvsd backup', (l) => String(l.msg ?? '').includes('VRRP') || l.event === 'vrrp-state', 10_000);
    await new Promise((r) => setTimeout(r, 4000)); // longer than lvsd's Master_Down_Interval
    expect(d.has((l) => l.event === 'active')).toBe(false);
    const from = d.lines.length;
    killKeepalived();
    await d.waitLog('lvsd master', (l) => l.event === 'active', 10_000, from);
    // keepalived was SIGKILLed: its VIP is still on its device, as after a crash. lvsd's
    // gratuitous ARPs move the client over.
    await waitFor('the real up', () => /Route/.test(d.lvsadm('-L', '-n').stdout), 10_000);
    await waitFor('traffic through lvsd', () => echoWorks(), 10_000);
  }, 60_000);

  it('keepalived returns with a higher priority: it preempts, and lvsd gives the VIP up', async () => {
    execFileSync('ip', ['-n', lab.directors[1]!.ns.name, 'addr', 'flush', 'dev', 'pub', 'to', `${lab.vip4(0)}/32`]);
    const from = d.lines.length;
    startKeepalived(250);
    await waitFor('keepalived MASTER', () => kaState() === 'MASTER', 15_000);
    await d.waitLog('lvsd standby', (l) => l.event === 'standby', 10_000, from);
    await waitFor('the VIP only on keepalived\'s side', () => vipOn(1) && !vipOn(0), 5000);
    await d.kill('SIGTERM');
  }, 60_000);
});
