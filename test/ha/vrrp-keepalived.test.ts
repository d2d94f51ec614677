/**
 * lvsd's VRRPv3 against real keepalived (Debian's v2.2.7): two namespaces on a bridge,
 * keepalived in one, our Vrrp in the other, each taking over from the other.
 *
 * Topology (all namespaces made here, removed in afterAll):
 *   vk-ka: pub 198.18.0.2/24, 2001:db8::2/64  -- keepalived
 *   vk-us: pub 198.18.0.1/24, 2001:db8::1/64  -- our Vrrp
 *   vk-sw: bridge br0 with ports ka, us
 */
import { type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Vrrp, type VrrpOptions } from '../../src/ha/vrrp.js';
import { Host } from '../../src/host/host.js';
import { Netns, cleanupOnExit, removeAllNamespaces, vethPair } from '../../src/lab/netns.js';

cleanupOnExit();

const KEEPALIVED = '/usr/sbin/keepalived';
const OURS4 = '198.18.0.1';
const THEIRS4 = '198.18.0.2';
const VIP4 = '198.18.0.100';
const VIP6 = '2001:db8::100';
// Advertisement interval on both sides (keepalived's advert_int 1, its default).
const ADVERT_MS = 1000;

let sw: Netns;
let ka: Netns;
let us: Netns;
let dir: string;
const keepaliveds = new Set<Keepalived>();
const vrrps = new Set<Vrrp>();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'lvsd-vrrp-'));
  sw = Netns.create('vk-sw');
  ka = Netns.create('vk-ka');
  us = Netns.create('vk-us');
  for (const n of [sw, ka, us]) {
    // Addresses usable at once (link-local ones included): no duplicate address detection.
    n.sysctl('net.ipv6.conf.all.accept_dad', 0);
    n.sysctl('net.ipv6.conf.default.accept_dad', 0);
  }
  sw.ip('link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0');
  sw.ip('link', 'set', 'br0', 'up');
  vethPair(sw, 'ka', ka, 'pub');
  vethPair(sw, 'us', us, 'pub');
  sw.ip('link', 'set', 'ka', 'master', 'br0');
  sw.ip('link', 'set', 'us', 'master', 'br0');
  ka.ip('addr', 'add', `${THEIRS4}/24`, 'dev', 'pub');
  us.ip('addr', 'add', `${OURS4}/24`, 'dev', 'pub');
  ka.ip('addr', 'add', '2001:db8::2/64', 'dev', 'pub', 'nodad');
  us.ip('addr', 'add', '2001:db8::1/64', 'dev', 'pub', 'nodad');
  writeFileSync(join(dir, 'notify.sh'), `#!/bin/sh\n# keepalived calls: notify.sh INSTANCE <name> <state> <priority>\necho "$3" > "${dir}/state-$2"\n`);
  chmodSync(join(dir, 'notify.sh'), 0o755);
});

afterAll(async () => {
  for (const v of vrrps) await v.stop();
  for (const k of keepaliveds) k.kill();
  removeAllNamespaces();
  rmSync(dir, { recursive: true, force: true });
});

/** keepalived in namespace vk-ka, one VRRP instance, its own config and pid files. */
class Keepalived {
  private child: ChildProcess | undefined;
  output = '';
  constructor(readonly name: string, private readonly family: 4 | 6, private readonly vrid: number) {}

  start(priority: number): void {
    const conf = join(dir, `${this.name}.conf`);
    const vip = this.family === 4 ? `${VIP4}/24` : `${VIP6}/64`;
    writeFileSync(conf, [
      'global_defs {',
      '  vrrp_version 3',
      '  script_user root',
      `  router_id lvsd-test-${this.name}`,
      '}',
      `vrrp_instance ${this.name} {`,
      '  state BACKUP',
      '  interface pub',
      `  virtual_router_id ${this.vrid}`,
      `  priority ${priority}`,
      `  advert_int ${ADVERT_MS / 1000}`,
      `  virtual_ipaddress {\n    ${vip}\n  }`,
      `  notify ${join(dir, 'notify.sh')}`,
      '}',
      '',
    ].join('\n'));
    rmSync(this.stateFile, { force: true });
    this.output = '';
    // -n: stay in the foreground; -l -D: detailed log on stdout; -P: the VRRP process only.
    // Its own pid files: two keepalived on one host must not share them. detached: a process
    // group of its own, so kill() ends the VRRP child with its parent.
    const child = ka.spawn(KEEPALIVED, ['-n', '-l', '-D', '-G', '-P', '-f', conf,
      '-p', join(dir, `${this.name}.pid`), '-r', join(dir, `${this.name}-vrrp.pid`)], { detached: true });
    child.stdout?.on('data', (b: Buffer) => { this.output += b.toString(); });
    child.stderr?.on('data', (b: Buffer) => { this.output += b.toString(); });
    this.child = child;
    keepaliveds.add(this);
  }

  get stateFile(): string {
    return join(dir, `state-${this.name}`);
  }

  /** What its notify script last wrote: MASTER, BACKUP, FAULT, STOP; '' before the first call. */
  state(): string {
    return existsSync(this.stateFile) ? readFileSync(this.stateFile, 'utf8').trim() : '';
  }

  /** SIGKILL to the whole group at once: no priority 0 advert, as when the machine dies. */
  kill(): void {
    const c = this.child;
    this.child = undefined;
    if (c?.pid === undefined) return;
    try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ }
    keepaliveds.delete(this);
  }
}

async function until(what: string, cond: () => boolean, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return performance.now() - t0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function hasAddress(ns: Netns, addr: string): boolean {
  return new Host(ns.name).addresses('pub').some((a) => a.address === addr);
}

/** Our Vrrp in vk-us, doing what lvsd's caller does: the VIP on 'master', off on 'backup'. */
function ours(family: 4 | 6, vrid: number, priority: number, extra: Partial<VrrpOptions> = {}): Vrrp {
  const host = new Host(us.name);
  const [vip, plen] = family === 4 ? [VIP4, 24] : [VIP6, 64];
  const v = new Vrrp({ netns: us.name, interface: 'pub', family, vrid, priority, advertIntervalMs: ADVERT_MS, preempt: true, addresses: [vip], ...extra });
  v.on('master', () => host.addAddress('pub', vip, plen, { nodad: true }));
  const drop = () => host.delAddress('pub', vip, plen);
  v.on('backup', drop);
  v.on('stopped', drop);
  vrrps.add(v);
  return v;
}

/** Master_Down_Interval of a router with this priority, ms (RFC 5798 6.1). */
const masterDown = (priority: number) => 3 * ADVERT_MS + ((256 - priority) * ADVERT_MS) / 256;
const MARGIN = 2000;

function expectNoRejections(v: Vrrp): void {
  expect(v.stats.rejected).toEqual({});
  expect(v.stats.addressMismatches).toBe(0);
}

describe('VRRPv3 against keepalived v2.2.7 (IPv4)', () => {
  it('higher priority wins both ways; takeover on death, on priority 0 and by preemption', async () => {
    const k = new Keepalived('V4', 4, 51);
    const times: Record<string, number> = {};

    // 1. Ours higher (200 against 100): we are master, keepalived stays BACKUP and never
    //    holds the VIP, although it runs for longer than its Master_Down_Interval.
    const a = ours(4, 51, 200);
    await a.start();
    expect(a.sourceAddress).toBe(OURS4);
    await until('our master state', () => a.state === 'master', masterDown(200) + MARGIN);
    k.start(100);
    await until('keepalived BACKUP', () => k.state() === 'BACKUP', 10_000);
    await sleep(masterDown(100) + 1500);
    expect(k.state()).toBe('BACKUP');
    expect(k.output).not.toMatch(/Entering MASTER STATE/);
    // keepalived found nothing wrong with our adverts (checksum, TTL, interval, address list).
    expect(k.output).not.toMatch(/invalid|error|mismatch/i);
    expect(hasAddress(ka, VIP4)).toBe(false);
    expect(hasAddress(us, VIP4)).toBe(true);
    expect(a.state).toBe('master');

    // 2. We stop while master: a priority 0 advert; keepalived takes over after its Skew_Time,
    //    well before its Master_Down_Interval.
    let t0 = performance.now();
    await a.stop();
    await until('keepalived MASTER after our priority 0', () => k.state() === 'MASTER', masterDown(100) + MARGIN);
    times.priority0 = performance.now() - t0;
    expect(k.output).toMatch(/received priority 0 advertisement/i);
    await until('the VIP on keepalived', () => hasAddress(ka, VIP4), 5000);
    expect(hasAddress(us, VIP4)).toBe(false);

    // 3. Keepalived higher (100 against 50): we start, hear it and stay backup; its adverts pass
    //    every check (checksum over the pseudo-header, TTL, version, addresses).
    const b = ours(4, 51, 50);
    await b.start();
    await until('three adverts from keepalived', () => b.stats.received >= 3, 5 * ADVERT_MS + MARGIN);
    expect(b.state).toBe('backup');
    expect(b.master).toBe(THEIRS4);
    expect(b.masterAdverInterval).toBe(ADVERT_MS);
    expectNoRejections(b);
    expect(hasAddress(us, VIP4)).toBe(false);

    // 4. Keepalived dies while master (SIGKILL, no priority 0): we take over once
    //    Master_Down_Interval passes without an advert.
    t0 = performance.now();
    k.kill();
    await until('our master state after keepalived died', () => b.state === 'master', masterDown(50) + MARGIN);
    times.masterDown = performance.now() - t0;
    await until('the VIP on our side', () => hasAddress(us, VIP4), 2000);
    ka.ip('addr', 'del', `${VIP4}/24`, 'dev', 'pub'); // a dead machine's addresses are gone with it

    // 5. Keepalived comes back with the higher priority: it preempts us (its Master_Down_Timer
    //    ignores our lower adverts), we go backup and drop the VIP.
    k.start(100);
    await until('keepalived MASTER by preemption', () => k.state() === 'MASTER', 3 * masterDown(100) + MARGIN);
    await until('our backup state', () => b.state === 'backup', 3 * ADVERT_MS + MARGIN);
    expect(b.master).toBe(THEIRS4);
    await until('the VIP only on keepalived', () => hasAddress(ka, VIP4) && !hasAddress(us, VIP4), 5000);
    expectNoRejections(b);
    expect(b.stats.sendErrors).toBe(0);
    await b.stop();
    k.kill();
    console.log(`VRRP IPv4 interop, advert ${ADVERT_MS} ms: keepalived took over after our priority 0 in ${times.priority0!.toFixed(0)} ms (its Master_Down_Interval ${masterDown(100).toFixed(0)} ms); we took over from dead keepalived in ${times.masterDown!.toFixed(0)} ms (our Master_Down_Interval ${masterDown(50).toFixed(0)} ms)`);
  });
});

describe('VRRPv3 against keepalived v2.2.7 (IPv6)', () => {
  it('higher priority wins both ways over ff02::12 with link-local sources', async () => {
    const k = new Keepalived('V6', 6, 52);
    const a = ours(6, 52, 200);
    await a.start();
    expect(a.sourceAddress).toMatch(/^fe80:/);
    await until('our master state', () => a.state === 'master', masterDown(200) + MARGIN);
    k.start(100);
    await until('keepalived BACKUP', () => k.state() === 'BACKUP', 10_000);
    await sleep(masterDown(100) + 1500);
    expect(k.state()).toBe('BACKUP');
    expect(hasAddress(ka, VIP6)).toBe(false);
    expect(hasAddress(us, VIP6)).toBe(true);
    expect(k.output).not.toMatch(/invalid|error|mismatch/i);

    const t0 = performance.now();
    await a.stop();
    await until('keepalived MASTER after our priority 0', () => k.state() === 'MASTER', masterDown(100) + MARGIN);
    const p0 = performance.now() - t0;
    expect(k.output).toMatch(/received priority 0 advertisement/i);
    await until('the VIP on keepalived', () => hasAddress(ka, VIP6), 5000);

    const b = ours(6, 52, 50);
    await b.start();
    await until('three adverts from keepalived', () => b.stats.received >= 3, 5 * ADVERT_MS + MARGIN);
    expect(b.state).toBe('backup');
    expect(b.master).toMatch(/^fe80:/);
    expectNoRejections(b);

    k.kill();
    await until('our master state after keepalived died', () => b.state === 'master', masterDown(50) + MARGIN);
    expect(b.stats.sendErrors).toBe(0);
    await b.stop();
    console.log(`VRRP IPv6 interop: keepalived took over after our priority 0 in ${p0.toFixed(0)} ms`);
  });
});

describe('the VRRP socket', () => {
  it('fails with coded errors for a missing device or namespace', async () => {
    const noDev = new Vrrp({ netns: us.name, interface: 'nope0', family: 4, vrid: 9, priority: 100, addresses: [VIP4], sourceAddress: OURS4 });
    await expect(noDev.start()).rejects.toMatchObject({ code: 'LVS_NO_SUCH_DEVICE' });
    expect(noDev.state).toBe('initialize');
    const noNs = new Vrrp({ netns: 'lvsd-no-such-namespace', interface: 'pub', family: 4, vrid: 9, priority: 100, addresses: [VIP4], sourceAddress: OURS4 });
    await expect(noNs.start()).rejects.toMatchObject({ code: 'LVS_NETNS' });
    // No address to send from: said before any socket is opened.
    sw.ip('link', 'add', 'bare0', 'type', 'veth', 'peer', 'name', 'bare1');
    const noAddr = new Vrrp({ netns: sw.name, interface: 'bare0', family: 4, vrid: 9, priority: 100, addresses: [VIP4] });
    await expect(noAddr.start()).rejects.toMatchObject({ code: 'LVS_HOST', field: 'sourceAddress' });
  });

  it('two of ours elect one master; stopping it hands over in Skew_Time', async () => {
    // Ours on both sides (vk-ka has no keepalived now): the higher priority wins, then the
    // other one takes over after the priority 0 advert.
    const hi = new Vrrp({ netns: ka.name, interface: 'pub', family: 4, vrid: 60, priority: 150, advertIntervalMs: 100, addresses: [VIP4] });
    const logged: string[] = [];
    const logger = { info: (o: object) => { logged.push((o as { event: string }).event); }, warn() {}, debug() {} };
    const lo = ours(4, 60, 120, { advertIntervalMs: 100, logger });
    vrrps.add(hi);
    await hi.start();
    await lo.start();
    await until('one master', () => hi.state === 'master' && lo.state === 'backup' && lo.stats.received >= 5, 5000);
    expect(lo.master).toBe(THEIRS4);
    expectNoRejections(lo);
    expectNoRejections(hi);
    const leaving = new Promise<void>((res) => lo.once('master', () => res()));
    await hi.stop();
    await leaving;
    expect(lo.state).toBe('master');
    // It took over because it heard the priority 0 advert, not because the master fell silent.
    expect(logged).toContain('vrrp-master-leaving');
    await lo.stop();
  });
});
