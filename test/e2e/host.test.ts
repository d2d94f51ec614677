/**
 * The director as a guest on its host: what it brings up and takes down, the traffic it leaves
 * alone, and what a client sees when a real dies under it.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Director } from '../../src/director/director.js';
import type { DirectorConfig } from '../../src/director/types.js';
import type { Lab } from '../../src/lab/lab.js';
import { makeLab, memoryLogger, startDirector, stopDirector, url } from './setup.js';

let lab: Lab;

function config(): Omit<DirectorConfig, 'netns'> {
  return {
    io: 'xdp',
    services: [
      { protocol: 'tcp', address: lab.vip4(0), port: 80, scheduler: 'rr', reals: [{ address: lab.real('n1').address4, method: 'nat' }, { address: lab.real('n2').address4, method: 'nat' }] },
      { protocol: 'tcp', address: lab.vip6(0), port: 80, scheduler: 'rr', reals: [{ address: lab.real('n1').address6!, method: 'nat' }] },
      { protocol: 'tcp', address: lab.vip4(1), port: 80, scheduler: 'rr', reals: [{ address: lab.real('d1').address4, method: 'direct' }] },
    ],
    natRouters: [
      { address: lab.natRouter4, device: 'priv' },
      { address: lab.natRouter6, device: 'priv' },
    ],
  };
}

/** What a director could leave behind: addresses, routes, XDP programs, nftables, sysctls. */
function hostState(): Record<string, unknown> {
  const ns = lab.director.ns;
  const links = JSON.parse(ns.ip('-j', '-d', 'link', 'show')) as Array<Record<string, unknown>>;
  return {
    addresses: JSON.parse(ns.ip('-j', 'addr', 'show')).map((l: { ifname: string; addr_info: Array<{ local: string; prefixlen: number }> }) => [l.ifname, l.addr_info.map((a) => `${a.local}/${a.prefixlen}`).sort()]),
    routes4: ns.ip('-4', 'route', 'show', 'table', 'all'),
    routes6: ns.ip('-6', 'route', 'show', 'table', 'all').split('\n').filter((l) => !l.includes('fe80')).join('\n'),
    xdp: links.map((l) => [l.ifname, l.xdp ?? null]),
    nft: ns.exec('nft', 'list', 'ruleset'),
    forward4: ns.exec('sysctl', '-n', 'net.ipv4.ip_forward').trim(),
    forward6: ns.exec('sysctl', '-n', 'net.ipv6.conf.all.forwarding').trim(),
  };
}

beforeAll(async () => {
  lab = await makeLab({
    reals: [
      { name: 'n1', method: 'nat' },
      { name: 'n2', method: 'nat' },
      { name: 'd1', method: 'direct' },
    ],
  });
  await lab.startServers();
});

describe('bringing a director up and down', () => {
  it('brings up VIPs and NAT router addresses, turns on forwarding for NAT and says so, announces the VIPs, and leaves the host as it found it', async () => {
    lab.director.ns.sysctl('net.ipv4.ip_forward', 0);
    lab.director.ns.sysctl('net.ipv6.conf.all.forwarding', 0);
    const before = hostState();
    const { director, log } = await startDirector(lab, { ...config(), announce: { count: 2, intervalMs: 50 } });

    const addrs = lab.director.ns.ip('-j', 'addr', 'show');
    for (const a of [lab.vip4(0), lab.vip6(0), lab.vip4(1), lab.natRouter4, lab.natRouter6]) expect(addrs).toContain(`"${a}"`);
    expect(lab.director.ns.exec('sysctl', '-n', 'net.ipv4.ip_forward').trim()).toBe('1');
    expect(log.lines.some((l) => l.obj.event === 'sysctl' && l.msg.startsWith('net.ipv4.ip_forward=1'))).toBe(true);
    expect(JSON.stringify(hostState().xdp)).toContain('"prog"');
    // The client learns the VIP's MAC (the director's pub device) from the announcements or ARP.
    expect((await lab.curl(url(lab.vip4(0)))).status).toBe(200);
    await expect.poll(() => log.lines.some((l) => l.msg === 'gratuitous lvs arps finished'), { timeout: 5000 }).toBe(true);

    await stopDirector(director);
    expect(hostState()).toEqual(before);
    expect(log.lines.some((l) => l.msg === 'net.ipv4.ip_forward=0 restored')).toBe(true);
    lab.director.ns.sysctl('net.ipv4.ip_forward', 1);
    lab.director.ns.sysctl('net.ipv6.conf.all.forwarding', 1);
  });

  it('a start that fails leaves nothing behind and says why', async () => {
    const before = hostState();
    const bad = new Director({ ...config(), io: 'xdp', netns: lab.director.ns.name, logger: memoryLogger(), devices: ['nosuchdev0'] });
    await expect(bad.start()).rejects.toMatchObject({ code: 'LVS_NO_SUCH_DEVICE' });
    const broken = new Director({
      ...config(),
      netns: lab.director.ns.name,
      logger: memoryLogger(),
      services: [{ protocol: 'tcp', address: lab.vip4(0), port: 80, scheduler: 'wlcx' as 'wlc', reals: [{ address: lab.real('n1').address4, method: 'nat' }] }],
    });
    await expect(broken.start()).rejects.toMatchObject({ code: 'LVS_INVALID_SCHEDULER' });
    expect(hostState()).toEqual(before);
  });
});

describe('while a director runs', () => {
  let director: Director;
  beforeAll(async () => {
    ({ director } = await startDirector(lab, { ...config(), neighbourRefreshMs: 500 }));
  });

  it('leaves the director its own traffic: ping to its address and to a VIP, TCP to a non-VIP port', async () => {
    expect((await lab.run(lab.client.ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', lab.director.address4.pub])).code).toBe(0);
    expect((await lab.run(lab.client.ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', lab.vip4(0)])).code).toBe(0);
    expect((await lab.run(lab.client.ns, 'ping', ['-6', '-c', '2', '-i', '0.2', '-W', '2', lab.director.address6!.pub])).code).toBe(0);
    // A TCP service of the director's own (a Node echo server in its namespace, not a VIP port).
    const server = lab.director.ns.spawn(process.execPath, ['-e', "require('net').createServer((s) => s.pipe(s)).listen(2222, () => console.log('ready'))"]);
    await new Promise<void>((resolve) => server.stdout!.once('data', () => resolve()));
    const echo = await lab.run(lab.client.ns, 'nc', ['-N', '-w', '3', lab.director.address4.pub, '2222'], { input: 'hello director\n' });
    expect(echo.stdout).toBe('hello director\n');
    // The VIP's other ports belong to the director's kernel too: a refused connection, not a hang.
    const closed = await lab.curl(`http://${lab.vip4(0)}:81/`, [], { check: false });
    expect(closed.status).toBe(0);
    expect(closed.stderr).toMatch(/curl: \(7\) Failed to connect/); // refused by the kernel's RST
    server.kill();
    // None of it went near the dataplane: the steering program passed it all to the kernel.
    expect(director.dataplane!.counters().rx_packets).toBe(0);
  });

  it('a real killed mid-transfer: the client sees a reset, not a hang, and the director goes on', async () => {
    // A 20-second download from whichever real the scheduler picks; kill that real's server.
    const started = Date.now();
    const transfer = lab.run(lab.client.ns, 'curl', ['-sS', '-D', '-', '--max-time', '60', url(lab.vip4(0), '/slow?seconds=20')], { check: false });
    await new Promise((r) => setTimeout(r, 1500));
    const victim = (await director.dataplane!.listConnections()).find((c) => c.virtual.port === 80 && c.state === 'ESTABLISHED')!;
    const name = lab.reals.find((r) => r.address4 === victim.destination.address)!.name;
    lab.stopServer(name, 'SIGKILL');
    const r = await transfer;
    expect(r.code).not.toBe(0); // curl: 18 (partial) or 56 (reset)
    expect(r.stdout).toContain(`x-real: ${name}`);
    expect(Date.now() - started).toBeLessThan(15_000);
    // The other real still answers through the same VIP.
    const other = name === 'n1' ? 'n2' : 'n1';
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const res = await lab.curl(url(lab.vip4(0)), [], { check: false });
      if (res.status === 200) seen.add(res.body.split(' ')[0]!);
    }
    expect(seen).toContain(other);
    await lab.startServer(name);
    const back = new Set<string>();
    for (let i = 0; i < 4; i++) back.add((await lab.curl(url(lab.vip4(0)))).body.split(' ')[0]!);
    expect([...back].sort()).toEqual(['n1', 'n2']);
  });

  it("follows a real's MAC address when it changes (new NIC, failover of a real's box)", async () => {
    const d1 = lab.real('d1');
    const before = director.status().reals.find((r) => r.address === d1.address4)!.mac;
    expect(before).toBe(d1.mac);
    const fresh = '02:00:5e:00:53:d1';
    // A host that changes its MAC announces it (arp_notify here; keepalived and most OSes do
    // the same on failover); the director's kernel takes the gratuitous ARP, the neighbour
    // watcher sees the change and hands it to the dataplane: DR traffic reaches the real again.
    d1.ns.sysctl('net.ipv4.conf.eth0.arp_notify', 1);
    d1.ns.ip('link', 'set', 'eth0', 'address', fresh);
    await expect.poll(() => director.status().reals.find((r) => r.address === d1.address4)!.mac, { timeout: 15_000, interval: 200 }).toBe(fresh);
    const r = await lab.curl(url(lab.vip4(1)));
    expect(r.body.startsWith('d1 ')).toBe(true);
  });
});
