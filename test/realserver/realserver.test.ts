/**
 * The real-server helper against the real kernel, in a namespace made here: DR and tunnel
 * preparation and their exact undo, tunnelled datagrams reaching a socket bound to the VIP,
 * rollback of a prepare that fails half-way, and the `lvsd realserver` command across
 * processes. The CLI runs from dist/: `npx tsc -p tsconfig.build.json` first (npm test does).
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { native, packageRoot } from '../../src/dataplane/native.js';
import { ethernet, ipPacket } from '../../src/lab/frames.js';
import { Netns, removeAllNamespaces, removeStaleNamespaces, vethPair } from '../../src/lab/netns.js';
import { DECAP_PROGRAM, prepareRealServer, realServerStatus } from '../../src/realserver/realserver.js';
import { realServerStateFile } from '../../src/cli/lvsd.js';

const CLI = join(packageRoot, 'dist', 'cli', 'lvsd.js');
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npx tsc -p tsconfig.build.json" first (npm test does).`);

const VIP4 = '198.18.0.100';
const VIP6 = '2001:db8::100';
const REAL4 = '198.18.0.11';
const REAL6 = '2001:db8::11';
const PEER4 = '198.18.0.1';
const PEER6 = '2001:db8::1';

let real: Netns;
let peer: Netns;
let realMac: string;
let peerMac: string;

/** Everything a prepare may change, as text: addresses of every device, the IPv4 conf sysctls, XDP programs. */
function snapshot(ns: Netns): string {
  const addrs = ns.ip('-br', 'address', 'show');
  const sysctls = ns
    .exec('sysctl', 'net.ipv4.conf')
    .split('\n')
    .filter((l) => /^net\.ipv4\.conf\..*\.(arp_ignore|arp_announce|rp_filter) =/.test(l))
    .sort()
    .join('\n');
  const xdp = ns.ip('-d', 'link', 'show').split('\n').filter((l) => /prog\/xdp/.test(l)).join('\n');
  return `${addrs}\n${sysctls}\nxdp: ${xdp}`;
}

function rootValues(): string[] {
  return ['all/arp_ignore', 'all/arp_announce', 'all/rp_filter', 'lo/arp_ignore'].map((k) => readFileSync(`/proc/sys/net/ipv4/conf/${k}`, 'utf8'));
}

function ifindex(ns: Netns, dev: string): number {
  return native().host.links(ns.name).find((l) => l.name === dev)!.ifindex;
}

function macOf(ns: Netns, dev: string): string {
  return (JSON.parse(ns.ip('-j', 'link', 'show', 'dev', dev)) as Array<{ address: string }>)[0]!.address;
}

/** A UDP socket in the real bound to vip:port; the frame is sent from the peer; the first datagram it receives. */
async function deliver(vip: string, port: number, frame: Buffer): Promise<{ payload: string; from: string } | null> {
  const script = `
    const s = require('node:dgram').createSocket(process.argv[1].includes(':') ? 'udp6' : 'udp4');
    const t = setTimeout(() => { console.log('null'); process.exit(0); }, 2000);
    s.on('message', (m, r) => { clearTimeout(t); console.log(JSON.stringify({ payload: m.toString(), from: r.address })); process.exit(0); });
    s.bind({ address: process.argv[1], port: Number(process.argv[2]) }, () => console.log('listening'));`;
  const child = real.spawn(process.execPath, ['-e', script, vip, String(port)]);
  let out = '';
  let errText = '';
  child.stderr!.on('data', (d: Buffer) => (errText += d.toString()));
  await new Promise<void>((resolve) => {
    child.stdout!.on('data', (d: Buffer) => {
      const first = !out.includes('listening');
      out += d.toString();
      if (first && out.includes('listening')) native().host.sendFrame(peer.name, ifindex(peer, 'eth0'), frame);
    });
    child.once('exit', () => resolve());
  });
  const line = out.split('\n').find((l) => l.startsWith('{') || l === 'null');
  if (line === undefined) throw new Error(`listener in the real failed: ${errText}`);
  return JSON.parse(line) as { payload: string; from: string } | null;
}

function ipip(outerSrc: string, outerDst: string, inner: Buffer): Buffer {
  const proto = inner[0]! >> 4 === 4 ? 4 : 41;
  return ethernet(ipPacket({ src: outerSrc, dst: outerDst, proto, l4: inner }), { srcMac: peerMac, dstMac: realMac });
}

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: process.env }, (e, stdout, stderr) => {
      resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

beforeAll(() => {
  removeStaleNamespaces();
  real = Netns.create('rs-real');
  peer = Netns.create('rs-peer');
  vethPair(real, 'eth0', peer, 'eth0');
  real.ip('address', 'add', `${REAL4}/24`, 'dev', 'eth0');
  real.ip('address', 'add', `${REAL6}/64`, 'dev', 'eth0', 'nodad');
  peer.ip('address', 'add', `${PEER4}/24`, 'dev', 'eth0');
  peer.ip('address', 'add', `${PEER6}/64`, 'dev', 'eth0', 'nodad');
  // A second device (a bridge, which has no native XDP) for the rollback test.
  real.ip('link', 'add', 'br0', 'type', 'bridge');
  realMac = macOf(real, 'eth0');
  peerMac = macOf(peer, 'eth0');
});

afterAll(() => {
  removeAllNamespaces();
  rmSync(realServerStateFile(real.name), { force: true });
});

describe('prepareRealServer', () => {
  it('direct: VIPs on lo and the ARP sysctls, then undo puts back exactly what was there', async () => {
    // Make "before" unusual: a VIP already on lo (must survive undo) and a non-default sysctl.
    real.ip('address', 'add', `${VIP4}/32`, 'dev', 'lo');
    real.sysctl('net.ipv4.conf.eth0.arp_announce', 1);
    const before = snapshot(real);
    const root = rootValues();

    const rs = await prepareRealServer({ netns: real.name, vips: [VIP4, VIP6, '198.18.0.101'], method: 'direct', device: 'eth0' });
    const lo = real.ip('-br', 'address', 'show', 'dev', 'lo');
    expect(lo).toContain(`${VIP4}/32`);
    expect(lo).toContain('198.18.0.101/32');
    expect(lo).toContain(`${VIP6}/128`);
    for (const dev of ['all', 'lo', 'eth0']) {
      expect(real.exec('sysctl', '-n', `net.ipv4.conf.${dev}.arp_ignore`).trim()).toBe('1');
      expect(real.exec('sysctl', '-n', `net.ipv4.conf.${dev}.arp_announce`).trim()).toBe('2');
    }
    // Only the two it added are recorded; the saved arp_announce of eth0 is the 1 set above.
    expect(rs.state.addedAddresses.map((a) => a.address)).toEqual([VIP6, '198.18.0.101']);
    expect(rs.state.sysctls.find((s) => s.key === 'net/ipv4/conf/eth0/arp_announce')).toEqual({ key: 'net/ipv4/conf/eth0/arp_announce', previous: '1', value: '2' });
    expect(rs.state.decap).toEqual([]);
    expect(native().xdpQuery(real.name, ifindex(real, 'eth0'))).toBeNull();

    rs.undo();
    expect(snapshot(real)).toBe(before);
    rs.undo(); // idempotent
    expect(snapshot(real)).toBe(before);
    expect(rootValues()).toEqual(root);
    real.ip('address', 'del', `${VIP4}/32`, 'dev', 'lo');
    real.sysctl('net.ipv4.conf.eth0.arp_announce', 0);
  });

  it('tunnel: IPIP and IPv6-in-IPv6 datagrams for a VIP reach a socket bound to the VIP; undo removes the program', async () => {
    const before = snapshot(real);
    real.sysctl('net.ipv4.conf.all.rp_filter', 2);
    const beforeRp = snapshot(real);
    expect(beforeRp).not.toBe(before);
    const rs = await prepareRealServer({ netns: real.name, vips: [VIP4, VIP6], method: 'tunnel', device: 'eth0' });
    const prog = native().xdpQuery(real.name, ifindex(real, 'eth0'));
    expect(prog?.name).toBe(DECAP_PROGRAM);
    expect(rs.state.decap).toEqual([{ device: 'eth0', mode: expect.stringMatching(/^(native|generic)$/) }]);
    expect(real.exec('sysctl', '-n', 'net.ipv4.conf.all.rp_filter').trim()).toBe('0');

    const inner4 = ipPacket({ src: '198.18.0.50', dst: VIP4, proto: 'udp', sport: 5001, dport: 9001, payload: 'over ipip' });
    expect(await deliver(VIP4, 9001, ipip(PEER4, REAL4, inner4))).toEqual({ payload: 'over ipip', from: '198.18.0.50' });
    const inner6 = ipPacket({ src: '2001:db8::50', dst: VIP6, proto: 'udp', sport: 5002, dport: 9002, payload: 'over ip6ip6' });
    expect(await deliver(VIP6, 9002, ipip(PEER6, REAL6, inner6))).toEqual({ payload: 'over ip6ip6', from: '2001:db8::50' });
    // Without the program the same frame is an IPIP packet nobody handles.
    rs.undo();
    expect(native().xdpQuery(real.name, ifindex(real, 'eth0'))).toBeNull();
    expect(await deliver(VIP4, 9001, ipip(PEER4, REAL4, inner4))).toBeNull();
    expect(snapshot(real)).toBe(beforeRp);
    real.sysctl('net.ipv4.conf.all.rp_filter', 0);
    expect(snapshot(real)).toBe(before);
  });

  it('refuses bad input before changing anything', async () => {
    const before = snapshot(real);
    await expect(prepareRealServer({ netns: real.name, vips: ['198.18.0.300'], method: 'direct' })).rejects.toMatchObject({ code: 'LVS_INVALID_ADDRESS', field: 'vips[0]' });
    await expect(prepareRealServer({ netns: real.name, vips: [VIP4], method: 'nat' as 'direct' })).rejects.toMatchObject({ code: 'LVS_INVALID_METHOD' });
    await expect(prepareRealServer({ netns: real.name, vips: [], method: 'direct' })).rejects.toMatchObject({ code: 'LVS_INVALID_ARGUMENT' });
    await expect(prepareRealServer({ netns: real.name, vips: [VIP4], method: 'direct', device: 'eth9' })).rejects.toMatchObject({ code: 'LVS_NO_SUCH_DEVICE' });
    await expect(prepareRealServer({ netns: `${real.name}-missing`, vips: [VIP4], method: 'direct' })).rejects.toMatchObject({ code: 'LVS_NETNS' });
    expect(snapshot(real)).toBe(before);
  });

  it('a prepare that fails half-way (no native XDP on a bridge) undoes what it had done', async () => {
    const before = snapshot(real);
    const e = await prepareRealServer({ netns: real.name, vips: [VIP4, VIP6], method: 'tunnel', device: 'br0', xdpMode: 'native' }).catch((x: unknown) => x);
    // The kernel refuses the IFLA_XDP request (a bridge has no native XDP): after the VIPs and sysctls were set.
    expect(e).toMatchObject({ code: 'LVS_NETLINK', message: expect.stringContaining('IFLA_XDP') });
    expect(snapshot(real)).toBe(before);
  });

  it('reports what is in place', async () => {
    const rs = await prepareRealServer({ netns: real.name, vips: [VIP4], method: 'tunnel', device: 'eth0' });
    try {
      const st = realServerStatus(real.name);
      expect(st.loAddresses).toEqual([VIP4]);
      expect(st.sysctls['net/ipv4/conf/eth0/arp_ignore']).toBe('1');
      expect(st.xdp.find((x) => x.device === 'eth0')?.program?.name).toBe(DECAP_PROGRAM);
      expect(st.xdp.find((x) => x.device === 'br0')?.program).toBeNull();
    } finally {
      rs.undo();
    }
  });
});

describe('lvsd realserver', () => {
  it('prepares a namespace in one process and undoes it in another', async () => {
    const before = snapshot(real);
    const file = realServerStateFile(real.name);
    const up = await cli(['realserver', '--vip', VIP4, '--vip', VIP6, '--method', 'tunnel', '--device', 'eth0', '--netns', real.name]);
    expect(up).toMatchObject({ code: 0, stderr: '' });
    expect(up.stdout).toContain(`undo with: lvsd realserver --undo --netns ${real.name}`);
    expect(existsSync(file)).toBe(true);
    expect(native().xdpQuery(real.name, ifindex(real, 'eth0'))?.name).toBe(DECAP_PROGRAM);

    // A second run adds a VIP; the decapsulator then knows both runs' VIPs.
    expect((await cli(['realserver', '--vip', '198.18.0.101', '--method', 'tunnel', '--device', 'eth0', '--netns', real.name])).code).toBe(0);
    const state = JSON.parse(readFileSync(file, 'utf8')) as { vips: string[]; addedAddresses: Array<{ address: string }> };
    expect(state.vips).toEqual([VIP4, VIP6, '198.18.0.101']);
    expect(state.addedAddresses.map((a) => a.address).sort()).toEqual([VIP4, '198.18.0.101', VIP6].sort());
    const inner = ipPacket({ src: '198.18.0.50', dst: VIP4, proto: 'udp', sport: 5003, dport: 9003, payload: 'still decapsulated' });
    expect(await deliver(VIP4, 9003, ipip(PEER4, REAL4, inner))).toEqual({ payload: 'still decapsulated', from: '198.18.0.50' });

    const status = await cli(['realserver', '--status', '--netns', real.name]);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`lo addresses: ${VIP4} 198.18.0.101 ${VIP6}`);
    expect(status.stdout).toMatch(/xdp eth0: lvsd_decap \(id \d+\)/);
    expect(status.stdout).toMatch(/arp_ignore: .*eth0=1/);

    const down = await cli(['realserver', '--undo', '--netns', real.name]);
    expect(down).toMatchObject({ code: 0, stderr: '' });
    expect(existsSync(file)).toBe(false);
    expect(snapshot(real)).toBe(before);
    // Nothing left to undo is not an error.
    expect(await cli(['realserver', '--undo', '--netns', real.name])).toMatchObject({ code: 0 });
  });

  it('fails with an LVS_* code and a non-zero exit on bad input, changing nothing', async () => {
    const before = snapshot(real);
    const cases: Array<[string[], RegExp]> = [
      [['--vip', '198.18.0.999'], /^lvsd: LVS_INVALID_ADDRESS: vips\[0\]: "198\.18\.0\.999" is not an IPv4 or IPv6 address\n$/],
      [['--vip', VIP4, '--device', 'eth7'], /^lvsd: LVS_NO_SUCH_DEVICE: device "eth7" does not exist in namespace /],
      [['--vip', VIP4, '--method', 'masq'], /^lvsd: LVS_INVALID_METHOD: /],
      [[], /^lvsd: LVS_INVALID_ARGUMENT: realserver: give at least one --vip/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(['realserver', ...args, '--netns', real.name]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(message);
    }
    const r = await cli(['realserver', '--vip', VIP4, '--netns', `${real.name}-missing`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^lvsd: LVS_NETNS: /);
    expect(snapshot(real)).toBe(before);
    expect(existsSync(realServerStateFile(real.name))).toBe(false);
  });
});
