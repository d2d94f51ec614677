/**
 * The host's network state over rtnetlink, against the real kernel, in namespaces made here:
 *
 *   dir (198.18.0.1, 2001:db8::1) --veth-- peer (198.18.0.2, 2001:db8::2)
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Host, IFA_F, NUD, NUD_VALID, sysctlPath, type NeighbourEvent } from '../../src/host/host.js';
import { native, packageRoot } from '../../src/dataplane/native.js';
import { Netns, cleanupOnExit, removeAllNamespaces, vethPair } from '../../src/lab/netns.js';

cleanupOnExit();

let dir: Netns;
let peer: Netns;
let host: Host;

function linkJson(ns: Netns, dev: string): { ifindex: number; address: string; mtu: number } {
  return JSON.parse(ns.ip('-j', 'link', 'show', 'dev', dev))[0];
}

function neighJson(ns: Netns, dev: string, address: string): { lladdr?: string; state?: string[] } | undefined {
  const all = JSON.parse(ns.ip('-j', 'neigh', 'show', 'dev', dev)) as Array<{ dst: string; lladdr?: string; state?: string[] }>;
  return all.find((n) => n.dst === address);
}

/** Collect watcher events until `pred` holds for one of them. */
function waitFor(h: Host, pred: (e: NeighbourEvent) => boolean, action: () => void, ms = 10_000): Promise<NeighbourEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      w.close();
      reject(new Error('no matching neighbour event'));
    }, ms);
    const w = h.watchNeighbours((events) => {
      const hit = events.find(pred);
      if (hit) {
        clearTimeout(timer);
        w.close();
        resolve(hit);
      }
    });
    action();
  });
}

beforeAll(() => {
  dir = Netns.create('nld');
  peer = Netns.create('nlp');
  vethPair(dir, 'vd', peer, 'vp');
  dir.ip('addr', 'add', '198.18.0.1/24', 'dev', 'vd');
  dir.ip('addr', 'add', '2001:db8::1/64', 'dev', 'vd', 'nodad');
  peer.ip('addr', 'add', '198.18.0.2/24', 'dev', 'vp');
  peer.ip('addr', 'add', '2001:db8::2/64', 'dev', 'vp', 'nodad');
  host = new Host(dir.name);
});

afterAll(() => removeAllNamespaces());

describe('links', () => {
  test("the namespace's devices with their index, MAC, MTU, state, queues and kind", () => {
    const links = host.links();
    const lo = links.find((l) => l.name === 'lo')!;
    expect(lo).toMatchObject({ ifindex: 1, kind: 'loopback', up: true });
    const vd = host.link('vd');
    const ip = linkJson(dir, 'vd');
    expect(vd).toMatchObject({ ifindex: ip.ifindex, mac: ip.address, mtu: ip.mtu, up: true, kind: 'veth', xdpProgId: 0 });
    expect(vd.rxQueues).toBeGreaterThanOrEqual(1);
    // Only this namespace's devices.
    expect(links.map((l) => l.name).sort()).toEqual(['lo', 'vd']);
  });

  test('a device that is not there is LVS_NO_SUCH_DEVICE; a namespace that is not there LVS_NETNS', () => {
    expect(() => host.link('nosuch0')).toThrow(expect.objectContaining({ code: 'LVS_NO_SUCH_DEVICE' }));
    expect(() => host.addAddress('nosuch0', '198.18.0.50', 32)).toThrow(expect.objectContaining({ code: 'LVS_NO_SUCH_DEVICE' }));
    expect(() => new Host('lvsd-no-such-namespace').links()).toThrow(expect.objectContaining({ code: 'LVS_NETNS' }));
    // By index, at the native boundary: the kernel's ENODEV becomes the same code.
    expect(() => native().host.addAddress(dir.name, 9999, Uint8Array.of(198, 18, 0, 50), 32, false)).toThrow(
      expect.objectContaining({ code: 'LVS_NO_SUCH_DEVICE', errno: 'ENODEV', message: expect.stringContaining('RTM_NEWADDR 198.18.0.50/32 on ifindex 9999') }),
    );
    expect(() => host.sendFrame(9999, new Uint8Array(60))).toThrow(expect.objectContaining({ code: 'LVS_NO_SUCH_DEVICE' }));
  });
});

describe('addresses', () => {
  test('add and delete are idempotent, IPv4 and IPv6', () => {
    host.addAddress('vd', '198.18.0.100', 32);
    host.addAddress('vd', '198.18.0.100', 32);
    host.addAddress('vd', '2001:db8::100', 128, { nodad: true });
    host.addAddress('vd', '2001:DB8:0::100', 128, { nodad: true });
    const mine = host.addresses('vd');
    expect(mine.filter((a) => a.address === '198.18.0.100')).toEqual([{ ifindex: host.link('vd').ifindex, family: 'ipv4', address: '198.18.0.100', prefixLength: 32, flags: expect.any(Number) }]);
    const v6 = mine.filter((a) => a.address === '2001:db8::100');
    expect(v6).toHaveLength(1);
    // nodad: usable at once, never tentative.
    expect(v6[0]!.flags & IFA_F.NODAD).toBe(IFA_F.NODAD);
    expect(v6[0]!.flags & IFA_F.TENTATIVE).toBe(0);
    // The kernel agrees.
    const shown = dir.ip('-j', 'addr', 'show', 'dev', 'vd');
    expect(shown).toContain('"local":"198.18.0.100"');
    expect(shown).toContain('"local":"2001:db8::100"');
    // Only vd's addresses were asked for; lo's are in the whole list.
    expect(mine.every((a) => a.ifindex === host.link('vd').ifindex)).toBe(true);
    expect(host.addresses().some((a) => a.address === '127.0.0.1')).toBe(true);

    host.delAddress('vd', '198.18.0.100', 32);
    host.delAddress('vd', '198.18.0.100', 32);
    host.delAddress('vd', '2001:db8::100', 128);
    host.delAddress('vd', '2001:db8::100', 128);
    expect(host.addresses('vd').map((a) => a.address)).not.toContain('198.18.0.100');
    expect(host.addresses('vd').map((a) => a.address)).not.toContain('2001:db8::100');
    expect(dir.ip('-j', 'addr', 'show', 'dev', 'vd')).not.toContain('198.18.0.100');
  });

  test('bad input is refused before the kernel sees it', () => {
    expect(() => host.addAddress('vd', '198.18.0.300', 32)).toThrow(expect.objectContaining({ code: 'LVS_INVALID_ADDRESS' }));
    expect(() => host.addAddress('vd', '198.18.0.100', 33)).toThrow(expect.objectContaining({ code: 'LVS_INVALID_ARGUMENT' }));
    expect(() => host.addAddress('', '198.18.0.100', 32)).toThrow(expect.objectContaining({ code: 'LVS_INVALID_INTERFACE' }));
  });
});

describe('routes', () => {
  beforeAll(() => {
    dir.ip('route', 'add', '198.19.0.0/16', 'via', '198.18.0.2');
    dir.ip('-6', 'route', 'add', '2001:db8:99::/48', 'via', '2001:db8::2');
  });

  test('on-link: the device and our source address, no gateway', () => {
    expect(host.route('198.18.0.2')).toEqual({ ifindex: host.link('vd').ifindex, device: 'vd', source: '198.18.0.1', local: false });
    expect(host.route('2001:db8::2')).toMatchObject({ device: 'vd', local: false });
    expect(host.route('2001:db8::2').gateway).toBeUndefined();
  });

  test('through a gateway', () => {
    expect(host.route('198.19.7.7')).toEqual({ ifindex: host.link('vd').ifindex, device: 'vd', gateway: '198.18.0.2', source: '198.18.0.1', local: false });
    expect(host.route('2001:db8:99::7')).toMatchObject({ device: 'vd', gateway: '2001:db8::2' });
  });

  test('our own address is local; no route is LVS_NETLINK with the errno', () => {
    expect(host.route('198.18.0.1')).toMatchObject({ device: 'lo', local: true });
    expect(() => host.route('203.0.113.1')).toThrow(
      expect.objectContaining({ code: 'LVS_NETLINK', message: expect.stringContaining('RTM_GETROUTE 203.0.113.1: Network is unreachable') }),
    );
  });
});

describe('neighbours', () => {
  test('resolveNeighbour makes the kernel ask, and the watcher delivers the MAC (IPv4 and IPv6)', async () => {
    const peerMac = linkJson(peer, 'vp').address;
    const ifindex = host.link('vd').ifindex;
    expect(host.neighbour(ifindex, '198.18.0.2')).toBeNull();
    // A watcher of our own, next to the one resolveNeighbour uses.
    const seen: NeighbourEvent[] = [];
    let saw: () => void = () => {};
    const both = new Promise<void>((resolve) => (saw = resolve));
    const has = (address: string) => seen.some((e) => e.address === address && e.mac === peerMac && e.state & NUD_VALID && !e.deleted);
    const w = host.watchNeighbours((events) => {
      seen.push(...events);
      if (has('198.18.0.2') && has('2001:db8::2')) saw();
    });
    try {
      expect(await host.resolveNeighbour(ifindex, '198.18.0.2', { timeoutMs: 5000 })).toBe(peerMac);
      expect(await host.resolveNeighbour(ifindex, '2001:db8::2', { timeoutMs: 5000 })).toBe(peerMac);
      // The kernel's table has it too, reachable.
      expect(neighJson(dir, 'vd', '198.18.0.2')).toMatchObject({ lladdr: peerMac, state: ['REACHABLE'] });
      expect(host.neighbour(ifindex, '198.18.0.2')).toBe(peerMac);
      const entry = host.neighbours().find((n) => n.address === '2001:db8::2')!;
      expect(entry).toMatchObject({ ifindex, mac: peerMac });
      expect(entry.state & NUD_VALID).toBeGreaterThan(0);
      // A second resolution is answered from the table.
      expect(await host.resolveNeighbour(ifindex, '198.18.0.2')).toBe(peerMac);
      // The other watcher saw the same answers arrive.
      await both;
      expect(seen.find((e) => e.address === '198.18.0.2' && e.state & NUD.REACHABLE)).toBeDefined();
    } finally {
      w.close();
    }
  });

  test('the watcher reports a deleted entry and a changed MAC', async () => {
    const ifindex = host.link('vd').ifindex;
    await host.resolveNeighbour(ifindex, '198.18.0.2', { timeoutMs: 5000 });
    const gone = await waitFor(host, (e) => e.address === '198.18.0.2' && e.deleted, () => dir.ip('neigh', 'del', '198.18.0.2', 'dev', 'vd'));
    expect(gone).toMatchObject({ ifindex, deleted: true });
    expect(host.neighbour(ifindex, '198.18.0.2')).toBeNull();

    await host.resolveNeighbour(ifindex, '198.18.0.2', { timeoutMs: 5000 });
    // The peer gets a new MAC and says so (arp_notify: a gratuitous ARP on the change).
    peer.sysctl('net.ipv4.conf.vp.arp_notify', 1);
    const newMac = '02:00:00:00:77:02';
    const moved = await waitFor(host, (e) => e.address === '198.18.0.2' && e.mac === newMac, () => peer.ip('link', 'set', 'dev', 'vp', 'address', newMac));
    expect(moved).toMatchObject({ ifindex, deleted: false, mac: newMac });
    expect(host.neighbour(ifindex, '198.18.0.2')).toBe(newMac);
  });

  test('no answer is LVS_NEIGHBOUR after the timeout', async () => {
    const ifindex = host.link('vd').ifindex;
    await expect(host.resolveNeighbour(ifindex, '198.18.0.77', { timeoutMs: 1500 })).rejects.toMatchObject({ code: 'LVS_NEIGHBOUR' });
    // The kernel was asked: it has an entry it could not complete.
    const e = neighJson(dir, 'vd', '198.18.0.77');
    expect(e?.lladdr).toBeUndefined();
    expect(e?.state?.[0]).toMatch(/INCOMPLETE|FAILED/);
  });

  test('close() stops the deliveries and may be called twice', async () => {
    const ifindex = host.link('vd').ifindex;
    let calls = 0;
    const w = host.watchNeighbours(() => calls++);
    w.close();
    w.close();
    await host.resolveNeighbour(ifindex, '198.18.0.2', { timeoutMs: 5000 });
    dir.ip('neigh', 'del', '198.18.0.2', 'dev', 'vd');
    await host.resolveNeighbour(ifindex, '198.18.0.2', { timeoutMs: 5000 });
    expect(calls).toBe(0);
  });

  test('an open watcher does not keep the process alive', () => {
    const addon = process.env.LVSD_ADDON ? JSON.stringify(process.env.LVSD_ADDON) : `require('node-gyp-build').path(${JSON.stringify(packageRoot)})`;
    const script = `
      const addon = require(${addon});
      addon.host.watchNeighbours(${JSON.stringify(dir.name)}, () => {});
      console.log('watching');`;
    const r = spawnSync(process.execPath, ['-e', script], { cwd: packageRoot, timeout: 20_000, encoding: 'utf8' });
    expect(r.stdout.trim(), r.stderr).toBe('watching');
    expect(r.signal).toBeNull(); // it exited by itself, not by the guard's SIGTERM
    expect(r.status).toBe(0);
  });
});

describe('sysctl', () => {
  test('read and write inside the namespace; the root namespace keeps its value', () => {
    const root = new Host('').sysctl('net.ipv4.conf.all.forwarding');
    const inside = host.sysctl('net/ipv4/conf/all/forwarding');
    const flipped = inside === '1' ? '0' : '1';
    expect(host.sysctl('net.ipv4.conf.all.forwarding', flipped)).toBe(inside);
    expect(host.sysctl('net.ipv4.conf.all.forwarding')).toBe(flipped);
    expect(dir.exec('sysctl', '-n', 'net.ipv4.conf.all.forwarding').trim()).toBe(flipped);
    expect(new Host('').sysctl('net.ipv4.conf.all.forwarding')).toBe(root);
    // Per-device keys of this namespace's devices.
    expect(host.sysctl('net/ipv4/conf/vd/arp_ignore', 1)).toBe('0');
    expect(dir.exec('sysctl', '-n', 'net.ipv4.conf.vd.arp_ignore').trim()).toBe('1');
  });

  test('keys outside /proc/sys and missing keys are refused', () => {
    expect(() => host.sysctl('../../etc/passwd')).toThrow(expect.objectContaining({ code: 'LVS_INVALID_ARGUMENT' }));
    expect(() => sysctlPath('/net/ipv4/ip_forward')).toThrow(expect.objectContaining({ code: 'LVS_INVALID_ARGUMENT' }));
    expect(() => native().host.sysctl(dir.name, 'net/../../../etc/passwd')).toThrow(expect.objectContaining({ code: 'LVS_HOST' }));
    expect(() => host.sysctl('net.ipv4.conf.nosuch0.arp_ignore')).toThrow(expect.objectContaining({ code: 'LVS_HOST', cause: expect.objectContaining({ errno: 'ENOENT' }) }));
    expect(() => host.sysctl('net.ipv4.ip_forward', 'banana')).toThrow(expect.objectContaining({ code: 'LVS_HOST', cause: expect.objectContaining({ errno: 'EINVAL' }) }));
  });
});
