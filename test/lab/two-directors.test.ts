/**
 * The lab with two directors (option directors: 2): director2's namespace, addresses, kernel
 * settings and routes; both directors reach the client and every real; destroy() removes both.
 * And the failover clock (src/lab/failover-clock.ts) on a synthetic switch-over: traffic from
 * the first director, a pause, then traffic from the second.
 * The lab runs the built real application: `npx tsc -p tsconfig.build.json` first (npm test does).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/dataplane/native.js';
import { FailoverClock } from '../../src/lab/failover-clock.js';
import { LAB, Lab, type LabDirector, type LabReal } from '../../src/lab/lab.js';
import { removeAllNamespaces, type Netns } from '../../src/lab/netns.js';

const realApp = join(packageRoot, 'dist', 'lab', 'real-app.js');
if (!existsSync(realApp)) {
  throw new Error(`${realApp} is missing: the lab runs the built JavaScript. Run "npx tsc -p tsconfig.build.json" first (npm test does).`);
}

const LONGLIVED = join(packageRoot, 'test', 'e2e', 'clients', 'longlived.mjs');

function ours(): string[] {
  return existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(`lvsd-${process.pid}-`)) : [];
}

function addressesOf(ns: Netns, dev: string): string[] {
  const [line] = ns.ip('-br', 'address', 'show', 'dev', dev).trim().split('\n');
  return line!.split(/\s+/).slice(2).filter((a) => !a.startsWith('fe80:')).sort();
}

const sysctl = (ns: Netns, key: string) => ns.exec('sysctl', '-n', key).trim();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterAll(() => removeAllNamespaces());

describe('a lab with two directors', () => {
  let lab: Lab;
  let nat: LabReal;
  let dr: LabReal;
  let d1: LabDirector;
  let d2: LabDirector;

  beforeAll(async () => {
    lab = await Lab.create({ reals: [{ method: 'nat' }, { method: 'direct' }, { method: 'tunnel' }], directors: 2 });
    [nat, dr] = lab.reals as [LabReal, LabReal];
    [d1, d2] = lab.directors as [LabDirector, LabDirector];
    await lab.startServers();
  });
  afterAll(() => lab?.destroy());

  it('builds director2 like the first: its namespace, both bridges, .3 / ::3, the same kernel settings and default route', () => {
    expect(ours().sort()).toEqual(['client', 'director', 'director2', 'r1', 'r2', 'r3', 'sw'].map((r) => `lvsd-${process.pid}-lab-${r}`).sort());
    expect(lab.directors).toHaveLength(2);
    expect(lab.director).toBe(d1);
    expect([d1.index, d1.role, d1.ports, d2.index, d2.role, d2.ports]).toEqual([
      0, 'director', { pub: 'd-pub', priv: 'd-priv' },
      1, 'director2', { pub: 'd-pub2', priv: 'd-priv2' },
    ]);
    expect(d2.ns.name).toBe(`lvsd-${process.pid}-lab-director2`);
    expect(d2.address4).toEqual({ pub: '198.18.0.3', priv: '198.18.1.3' });
    expect(d2.address6).toEqual({ pub: '2001:db8::3', priv: '2001:db8:1::3' });
    expect(d2.address4).toEqual(LAB.director2_4);
    expect(addressesOf(d2.ns, 'pub')).toEqual(['198.18.0.3/24', '2001:db8::3/64']);
    expect(addressesOf(d2.ns, 'priv')).toEqual(['198.18.1.3/24', '2001:db8:1::3/64']);
    expect(addressesOf(d1.ns, 'pub')).toEqual(['198.18.0.1/24', '2001:db8::1/64']);
    expect(new Set([d1.macs.pub, d1.macs.priv, d2.macs.pub, d2.macs.priv]).size).toBe(4);
    expect(lab.switch.ip('-o', 'link', 'show', 'master', 'br-pub')).toMatch(/d-pub2@/);
    expect(lab.switch.ip('-o', 'link', 'show', 'master', 'br-priv')).toMatch(/d-priv2@/);
    for (const d of [d1, d2]) {
      for (const port of [d.ports.pub, d.ports.priv]) expect(lab.switch.exec('ethtool', '-k', port)).toMatch(/generic-receive-offload: on/);
      expect(sysctl(d.ns, 'net.ipv4.ip_forward')).toBe('1');
      expect(sysctl(d.ns, 'net.ipv6.conf.all.forwarding')).toBe('1');
      expect(sysctl(d.ns, 'net.ipv4.conf.all.send_redirects')).toBe('0');
      expect(sysctl(d.ns, 'net.ipv6.conf.all.accept_dad')).toBe('0');
      expect(sysctl(d.ns, 'net.ipv4.conf.all.rp_filter')).toBe('0');
      expect(d.ns.ip('route', 'show', 'default').trim()).toBe('default via 198.18.0.2 dev pub');
      expect(d.ns.ip('-6', 'route', 'show', 'default')).toMatch(/^default via 2001:db8::2 dev pub/);
    }
    // The client's way to the private LAN stays through the first director.
    expect(lab.client.ns.ip('route', 'get', nat.address4)).toMatch(/via 198\.18\.0\.1 dev eth0/);
    expect(lab.client.ns.ip('-6', 'route', 'get', nat.address6!)).toMatch(/via 2001:db8::1 dev eth0/);
  });

  it('both directors reach the client and every real on both LANs (ping and HTTP, IPv4 and IPv6)', async () => {
    for (const d of lab.directors) {
      for (const target of [lab.client.address4, lab.client.address6!, ...lab.reals.flatMap((r) => [r.address4, r.address6!])]) {
        const r = await lab.run(d.ns, 'ping', ['-c', '1', '-W', '2', target], { check: false });
        expect({ from: d.role, target, code: r.code }).toEqual({ from: d.role, target, code: 0 });
      }
      for (const r of lab.reals) {
        const http = await lab.run(d.ns, 'curl', ['-sS', '--max-time', '10', `http://${r.address4}/`]);
        expect(http.stdout).toBe(`${r.name} ${d.address4[r.method === 'nat' ? 'priv' : 'pub']}\n`);
        const http6 = await lab.run(d.ns, 'curl', ['-sS', '--max-time', '10', `http://[${r.address6}]/`]);
        expect(http6.stdout).toBe(`${r.name} ${d.address6![r.method === 'nat' ? 'priv' : 'pub']}\n`);
      }
    }
    // And the directors each other, on both LANs.
    for (const a of [d2.address4.pub, d2.address4.priv, d2.address6!.pub, d2.address6!.priv]) {
      expect((await lab.run(d1.ns, 'ping', ['-c', '1', '-W', '2', a], { check: false })).code).toBe(0);
    }
  });

  it('the failover clock: pings from the first director, a pause, pings from the second (traffic "all")', async () => {
    const clock = new FailoverClock(lab, { traffic: 'all' });
    await clock.start();
    try {
      const t0 = Date.now();
      await lab.run(d1.ns, 'ping', ['-c', '5', '-i', '0.2', dr.address4]);
      // Director to director (a heartbeat's way) is never counted.
      await lab.run(d1.ns, 'ping', ['-c', '2', '-i', '0.2', d2.address4.pub]);
      const t1 = Date.now();
      await sleep(300);
      const t2 = Date.now();
      await lab.run(d2.ns, 'ping', ['-c', '4', '-i', '0.2', nat.address4]);
      await lab.run(d2.ns, 'ping', ['-c', '3', '-i', '0.2', dr.address6!]);
      const t3 = Date.now();
      const r = await clock.stop();
      expect(r).toMatchObject({ framesOld: 5, framesNew: 7, overlapFrames: 0, dropped: 0 });
      console.log(`failover clock, pings with a 300 ms pause: gap ${r.gapMs!.toFixed(1)} ms`);
      // Date.now() is whole milliseconds, the capture's times are not: 1 ms of slack.
      expect(r.lastFromOld!).toBeGreaterThanOrEqual(t0 - 1);
      expect(r.lastFromOld!).toBeLessThanOrEqual(t1 + 1);
      expect(r.firstFromNew!).toBeGreaterThanOrEqual(t2 - 1);
      expect(r.firstFromNew!).toBeLessThanOrEqual(t3 + 1);
      expect(r.gapMs).toBe(r.firstFromNew! - r.lastFromOld!);
      expect(r.gapMs!).toBeGreaterThan(0);
    } finally {
      clock.abort();
    }
  });

  it('the failover clock counts what a director forwards: the client through the first director to a NAT real, then through the second', async () => {
    const client = lab.client.ns;
    const clock = new FailoverClock(lab); // traffic "forwarded"
    // The first director is the NAT reals' gateway and the client's way to them.
    d1.ns.ip('address', 'add', `${lab.natRouter4}/32`, 'dev', 'priv');
    nat.ns.ip('neigh', 'flush', 'dev', 'eth0');
    await clock.start();
    try {
      const t0 = Date.now();
      const first = await lab.run(client, 'ping', ['-c', '5', '-i', '0.2', nat.address4]);
      // What the directors send for themselves is not forwarding: the second director's
      // health-check-like ping of a real, the first one's ping of the second.
      await lab.run(d2.ns, 'ping', ['-c', '2', '-i', '0.2', nat.address4]);
      await lab.run(d1.ns, 'ping', ['-c', '2', '-i', '0.2', d2.address4.priv]);
      const t1 = Date.now();
      // Switch over by hand, as a takeover would: the NAT router address moves, the real
      // forgets the old gateway's MAC, the client routes through the second director.
      d1.ns.ip('address', 'del', `${lab.natRouter4}/32`, 'dev', 'priv');
      d2.ns.ip('address', 'add', `${lab.natRouter4}/32`, 'dev', 'priv');
      nat.ns.ip('neigh', 'flush', 'dev', 'eth0');
      client.ip('route', 'replace', LAB.privNet4, 'via', d2.address4.pub);
      await sleep(300);
      const t2 = Date.now();
      const second = await lab.run(client, 'ping', ['-c', '4', '-i', '0.2', nat.address4]);
      const t3 = Date.now();
      const r = await clock.stop();
      // Every ping was answered: the capture takes copies and disturbs nothing.
      expect(first.stdout).toMatch(/5 packets transmitted, 5 received/);
      expect(second.stdout).toMatch(/4 packets transmitted, 4 received/);
      // Each ping is two forwarded frames: the request towards the real, the reply towards the client.
      expect(r).toMatchObject({ framesOld: 10, framesNew: 8, overlapFrames: 0, dropped: 0 });
      expect(r.lastFromOld!).toBeGreaterThanOrEqual(t0 - 1);
      expect(r.lastFromOld!).toBeLessThanOrEqual(t1 + 1);
      expect(r.firstFromNew!).toBeGreaterThanOrEqual(t2 - 1);
      expect(r.firstFromNew!).toBeLessThanOrEqual(t3 + 1);
      expect(r.gapMs!).toBeGreaterThan(0);
    } finally {
      clock.abort();
      client.ip('route', 'replace', LAB.privNet4, 'via', d1.address4.pub);
      for (const d of [d1, d2]) d.ns.ip('address', 'flush', 'dev', 'priv', 'to', `${lab.natRouter4}/32`);
      nat.ns.ip('neigh', 'flush', 'dev', 'eth0');
    }
  });

  it('a hand-made switch-over under 200 long-lived connections: all survive, the clock sees the old director stop before the new one starts', async () => {
    const client = lab.client.ns;
    d1.ns.ip('address', 'add', `${lab.natRouter4}/32`, 'dev', 'priv');
    nat.ns.ip('neigh', 'flush', 'dev', 'eth0'); // it may know the gateway by another MAC from before
    const ll = lab.client.ns.spawn(process.execPath, [LONGLIVED, nat.address4, '7', '-n', '200', '--interval-ms', '100'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const lines: Array<Record<string, unknown>> = [];
    let waiting: (() => void) | undefined;
    createInterface({ input: ll.stdout! }).on('line', (l) => {
      lines.push(JSON.parse(l) as Record<string, unknown>);
      waiting?.();
    });
    const next = async (type: string): Promise<Record<string, unknown>> => {
      for (;;) {
        const i = lines.findIndex((x) => x.type === type);
        if (i >= 0) return lines.splice(0, i + 1).at(-1)!;
        await new Promise<void>((r) => (waiting = r));
      }
    };
    const clock = new FailoverClock(lab, { filter: 'tcp port 7' });
    try {
      expect(await next('status')).toMatchObject({ phase: 'running', opened: 200 });
      await clock.start();
      await sleep(500);
      // The old director stops forwarding (as if it died)...
      d1.ns.sysctl('net.ipv4.ip_forward', 0);
      const tStopped = Date.now();
      await sleep(500);
      // ...and the new one takes over: the NAT router address, the real's gateway MAC, the client's route.
      const tTakeover = Date.now();
      d1.ns.ip('address', 'del', `${lab.natRouter4}/32`, 'dev', 'priv');
      d2.ns.ip('address', 'add', `${lab.natRouter4}/32`, 'dev', 'priv');
      nat.ns.ip('neigh', 'flush', 'dev', 'eth0');
      client.ip('route', 'replace', LAB.privNet4, 'via', d2.address4.pub);
      await sleep(2000);
      const r = await clock.stop();
      ll.stdin!.write('stop\n');
      const result = (await next('result')) as { totals: { connections: number; survived: number; failed: number; maxGapMs: number; sent: number; echoed: number } };
      expect(result.totals).toMatchObject({ connections: 200, survived: 200, failed: 0 });
      expect(result.totals.echoed).toBe(result.totals.sent);
      expect(r.framesOld).toBeGreaterThan(0);
      expect(r.framesNew).toBeGreaterThan(0);
      expect(r).toMatchObject({ overlapFrames: 0, dropped: 0 });
      expect(r.lastFromOld!).toBeLessThanOrEqual(tStopped + 1);
      expect(r.firstFromNew!).toBeGreaterThanOrEqual(tTakeover - 1);
      console.log(`hand-made switch-over, 200 connections: clock gap ${r.gapMs!.toFixed(1)} ms (old ${r.framesOld} frames, new ${r.framesNew}); longest echo gap seen by the client ${result.totals.maxGapMs} ms`);
    } finally {
      clock.abort();
      ll.kill('SIGKILL');
      d1.ns.sysctl('net.ipv4.ip_forward', 1);
      client.ip('route', 'replace', LAB.privNet4, 'via', d1.address4.pub);
      for (const d of [d1, d2]) d.ns.ip('address', 'flush', 'dev', 'priv', 'to', `${lab.natRouter4}/32`);
      nat.ns.ip('neigh', 'flush', 'dev', 'eth0');
    }
  });

  it('the failover clock refuses a lab with one director', async () => {
    const one = await Lab.create({ reals: [{ method: 'direct' }], ipv6: false, clientAddresses: 0, tag: 'one' });
    try {
      expect(one.directors).toHaveLength(1);
      expect(() => new FailoverClock(one)).toThrow(expect.objectContaining({ code: 'LVS_INVALID_ARGUMENT' }));
    } finally {
      one.destroy();
    }
  });

  it('destroy() removes both directors and everything else', () => {
    lab.destroy();
    expect(ours()).toEqual([]);
    expect(() => lab.directors).toThrow(expect.objectContaining({ code: 'LVS_CLOSED' }));
  });
});

describe('the directors option', () => {
  it('is 1 or 2', async () => {
    await expect(Lab.create({ reals: [], directors: 3 as 2 })).rejects.toMatchObject({ code: 'LVS_INVALID_OPTION', field: 'directors' });
    expect(ours()).toEqual([]);
  });
});
