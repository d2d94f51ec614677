/**
 * The AF_PACKET backend end to end, through the real dataplane, with the kernel's copy of
 * owned traffic suppressed by nftables:
 *
 *   client (198.18.0.2) --veth-- [dpc] director [dpr] --veth-- real (198.18.1.11)
 *        \________________ direct return path (198.18.2.0/24) __________/
 *
 * The director has 198.18.0.1 on dpc, 198.18.1.1 on dpr and the VIP 198.18.0.100 on dpc (so
 * its kernel answers ARP for it, as with IPVS). NAT: TCP VIP:80 -> real:8080, replies back
 * through the director. DR: UDP VIP:7 -> the real, which has the VIP on lo and answers the
 * client directly over the return path (a reply from the VIP through the director's kernel
 * would be a martian there: the VIP is its own address). A third link, client vl0 -- dpv,
 * carries 802.1Q-tagged frames to an interface the dataplane reads but has no settings for.
 */
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Dataplane } from '../../src/index.js';
import { Host } from '../../src/host/host.js';
import { Suppression } from '../../src/host/suppress.js';
import { decode, packet } from '../../src/lab/frames.js';
import { Netns, cleanupOnExit, removeAllNamespaces, vethPair } from '../../src/lab/netns.js';
import { capture } from '../helpers/capture.js';

cleanupOnExit();

const VIP = '198.18.0.100';
const CLIENT = '198.18.0.2';
const REAL = '198.18.1.11';
const BLOB = 300_000; // several GSO super-frames each way

let client: Netns;
let director: Netns;
let real: Netns;
let dp: Dataplane | undefined;
let suppression: Suppression | undefined;
const dhost = () => new Host(director.name);

/** Start a long-running program in a namespace and wait for it to print "ready". */
function startReady(ns: Netns, program: string, args: string[]): Promise<ChildProcess> {
  const child = ns.spawn(program, args);
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve(child);
    });
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => reject(new Error(`${program} exited (${code}) before it was ready: ${err}`)));
  });
}

/** Run a program in a namespace: its exit status and output, whatever the status. */
function runIn(ns: Netns, program: string, ...args: string[]): { status: number | null; stdout: Buffer; stderr: string } {
  const r = spawnSync('ip', ['netns', 'exec', ns.name, program, ...args], { timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

function blob(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 8)) & 0xff;
  return b;
}

beforeAll(async () => {
  client = Netns.create('apc');
  director = Netns.create('apd');
  real = Netns.create('apr');
  vethPair(client, 'eth0', director, 'dpc');
  vethPair(director, 'dpr', real, 'eth0');
  vethPair(client, 'ret0', real, 'ret0');
  vethPair(client, 'vl0', director, 'dpv');
  client.ip('addr', 'add', `${CLIENT}/24`, 'dev', 'eth0');
  client.ip('addr', 'add', '198.18.2.2/24', 'dev', 'ret0');
  client.sysctl('net.ipv4.conf.all.rp_filter', 0);
  client.sysctl('net.ipv4.conf.ret0.rp_filter', 0);
  director.ip('addr', 'add', '198.18.0.1/24', 'dev', 'dpc');
  director.ip('addr', 'add', `${VIP}/32`, 'dev', 'dpc');
  director.ip('addr', 'add', '198.18.1.1/24', 'dev', 'dpr');
  real.ip('addr', 'add', `${REAL}/24`, 'dev', 'eth0');
  real.ip('addr', 'add', '198.18.2.11/24', 'dev', 'ret0');
  real.ip('route', 'add', 'default', 'via', '198.18.1.1');
  // DR: the VIP on lo, not answered for on the wire; replies from it take the return path.
  real.ip('addr', 'add', `${VIP}/32`, 'dev', 'lo');
  real.sysctl('net.ipv4.conf.all.arp_ignore', 1);
  real.sysctl('net.ipv4.conf.all.arp_announce', 2);
  real.ip('rule', 'add', 'from', VIP, 'table', '100');
  real.ip('route', 'add', 'default', 'via', '198.18.2.2', 'table', '100');

  const script = `
    const http = require('http');
    const body = Buffer.alloc(${BLOB}); for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 8)) & 0xff;
    http.createServer((q, s) => {
      if (q.url === '/blob') return s.end(body);
      if (q.method === 'POST') { const h = require('crypto').createHash('sha256'); q.on('data', (d) => h.update(d)); q.on('end', () => s.end(h.digest('hex'))); return; }
      s.end('real ' + q.socket.remoteAddress);
    }).listen(8080, '0.0.0.0', () => {
      const u = require('dgram').createSocket('udp4');
      u.on('message', (m, r) => u.send(Buffer.concat([Buffer.from('echo ' + r.address + ' '), m]), r.port, r.address));
      u.bind(7, '${VIP}', () => console.log('ready'));
    });`;
  await startReady(real, 'node', ['-e', script]);
  await startReady(director, 'node', ['-e', `require('http').createServer((q, s) => s.end('director')).listen(9000, '198.18.0.1', () => console.log('ready'))`]);

  const host = dhost();
  const dpc = host.link('dpc');
  const dpr = host.link('dpr');
  const dpv = host.link('dpv');
  const realMac = await host.resolveNeighbour(dpr.ifindex, REAL, { timeoutMs: 5000 });
  dp = new Dataplane({
    io: {
      kind: 'packet',
      netns: director.name,
      interfaces: [
        { id: 0, ifindex: dpc.ifindex, name: 'dpc' },
        { id: 1, ifindex: dpr.ifindex, name: 'dpr' },
        { id: 2, ifindex: dpv.ifindex, name: 'dpv' },
      ],
    },
  });
  dp.setInterface({ id: 0, name: 'dpc', mac: dpc.mac, ipv4: '198.18.0.1', mtu: dpc.mtu });
  dp.setInterface({ id: 1, name: 'dpr', mac: dpr.mac, ipv4: '198.18.1.1', mtu: dpr.mtu });
  const nat = { protocol: 'tcp' as const, address: VIP, port: 80 };
  const dr = { protocol: 'udp' as const, address: VIP, port: 7 };
  dp.addService({ ...nat, scheduler: 'rr' });
  dp.addReal(nat, { address: REAL, port: 8080, method: 'nat', interface: 1, mac: realMac });
  dp.addService({ ...dr, scheduler: 'rr' });
  dp.addReal(dr, { address: REAL, method: 'direct', interface: 1, mac: realMac });
  await dp.settled();
  suppression = new Suppression(director.name, 'lvsd_test');
  suppression.apply({
    devices: ['dpc', 'dpr'],
    services: [nat, dr],
    natReals: [{ address: REAL, protocol: 'tcp', port: 8080 }],
    locals: ['198.18.0.1', '198.18.1.1', VIP],
    prefixes: [],
  });
});

afterAll(async () => {
  await dp?.close();
  try {
    suppression?.remove();
  } finally {
    removeAllNamespaces();
  }
});

describe('AF_PACKET port through the dataplane', () => {
  test('a NAT TCP service answers a real curl, and the real sees the client address', () => {
    const r = runIn(client, 'curl', '-s', '--max-time', '10', `http://${VIP}/`);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.toString()).toBe(`real ${CLIENT}`);
    const ports = dp!.info().ports;
    expect(ports[0]!.kind).toBe('packet');
    expect(ports[0]!.rxPackets).toBeGreaterThan(0);
    expect(ports[0]!.txPackets).toBeGreaterThan(0);
  });

  test('bulk data both ways through NAT: TSO super-frames from the veth peers are segmented', () => {
    const down = runIn(client, 'curl', '-s', '--max-time', '20', `http://${VIP}/blob`);
    expect(down.status, down.stderr).toBe(0);
    expect(down.stdout.length).toBe(BLOB);
    expect(createHash('sha256').update(down.stdout).digest('hex')).toBe(createHash('sha256').update(blob(BLOB)).digest('hex'));
    const upload = blob(200_000);
    const up = spawnSync('ip', ['netns', 'exec', client.name, 'curl', '-s', '--max-time', '20', '--data-binary', '@-', `http://${VIP}/`], { input: upload, timeout: 30_000 });
    expect(up.status, up.stderr.toString()).toBe(0);
    expect(up.stdout.toString()).toBe(createHash('sha256').update(upload).digest('hex'));
  });

  test('a DR UDP service reaches the real, which answers from the VIP', () => {
    const script = `
      const s = require('dgram').createSocket('udp4');
      const t = setTimeout(() => { console.log('timeout'); process.exit(1); }, 5000);
      s.on('message', (m, r) => { console.log(r.address + ' ' + m.toString()); clearTimeout(t); s.close(); });
      s.send('hello', 7, '${VIP}');`;
    const r = runIn(client, 'node', '-e', script);
    expect(r.status, r.stdout.toString() + r.stderr).toBe(0);
    expect(r.stdout.toString().trim()).toBe(`${VIP} echo ${CLIENT} hello`);
  });

  test("the director's own traffic is the kernel's: ping, a non-VIP TCP port, a VIP port with no service", () => {
    const ping = runIn(client, 'ping', '-c', '1', '-W', '2', '198.18.0.1');
    expect(ping.status, ping.stdout.toString()).toBe(0);
    const pingVip = runIn(client, 'ping', '-c', '1', '-W', '2', VIP);
    expect(pingVip.status, pingVip.stdout.toString()).toBe(0);
    const own = runIn(client, 'curl', '-s', '--max-time', '10', 'http://198.18.0.1:9000/');
    expect(own.status, own.stderr).toBe(0);
    expect(own.stdout.toString()).toBe('director');
    // Port 81 of the VIP is no service: the director's kernel resets it (curl: 7, refused).
    const refused = runIn(client, 'curl', '-s', '--max-time', '5', `http://${VIP}:81/`);
    expect(refused.status).toBe(7);
  });

  test('an 802.1Q tag the kernel took off is put back before the dataplane sees the frame', async () => {
    // TTL 1 to the DR service, tagged, on an interface without settings: the dataplane's time
    // exceeded goes back on the VLAN it saw the packet on (worker.cpp, send_icmp), so the tag
    // the answer carries is the one our port re-inserted.
    const chost = new Host(client.name);
    const frame = packet({
      src: '198.18.5.5',
      dst: VIP,
      proto: 'udp',
      sport: 4000,
      dport: 7,
      ttl: 1,
      payload: 'tagged',
      vlan: 42,
      srcMac: chost.link('vl0').mac,
      dstMac: dhost().link('dpv').mac,
    });
    const [answer] = await capture(client, 'vl0', 'vlan 42 and icmp', 1, () => chost.sendFrame('vl0', frame));
    const d = decode(answer!);
    expect(d.vlan).toBe(42);
    expect(d.icmp).toMatchObject({ type: 11, code: 0, checksumOk: true });
    expect(d).toMatchObject({ src: VIP, dst: '198.18.5.5', dstMac: chost.link('vl0').mac });
    // The quote is the packet as it arrived.
    expect(decode(frame).ip.equals(d.icmp!.quote.subarray(0, decode(frame).ip.length))).toBe(true);
  });

  test('our own transmissions are not received back, and nothing was lost on the way', () => {
    const before = dp!.counters();
    // 50 DR datagrams: each is received once from the client and sent once to the real (the
    // answers take the return path). Were our own transmissions shown to us, rx would double.
    const script = `
      const s = require('dgram').createSocket('udp4');
      let got = 0;
      const t = setTimeout(() => { console.log(got); process.exit(1); }, 10000);
      s.on('message', () => { if (++got === 50) { clearTimeout(t); console.log(got); s.close(); } });
      for (let i = 0; i < 50; i++) s.send('n' + i, 7, '${VIP}');`;
    const r = runIn(client, 'node', '-e', script);
    expect(r.stdout.toString().trim(), r.stderr).toBe('50');
    const after = dp!.counters();
    const rx = after.rx_packets! - before.rx_packets!;
    const tx = after.tx_packets! - before.tx_packets!;
    expect(tx).toBe(50);
    expect(rx).toBeGreaterThanOrEqual(50);
    expect(rx).toBeLessThan(60); // 50 datagrams, perhaps an ARP exchange or two
    const p = dp!.info().ports[0]!;
    expect(p.txFailed).toBe(0);
    expect(p.kernelDropped).toBe(0);
  });
});

describe('AF_PACKET setup failures', () => {
  test('an interface that does not exist fails with LVS_IO_INIT naming the step, and leaves nothing behind', () => {
    const sockets = () => execFileSync('ip', ['netns', 'exec', director.name, 'cat', '/proc/net/packet'], { encoding: 'utf8' }).trim().split('\n').length - 1;
    const before = sockets();
    const dpc = dhost().link('dpc');
    // The first interface's socket and ring are made, then the second fails: both go away.
    expect(
      () =>
        new Dataplane({
          io: { kind: 'packet', netns: director.name, interfaces: [{ id: 0, ifindex: dpc.ifindex, name: 'dpc' }, { id: 1, ifindex: 4242, name: 'nope' }] },
        }),
    ).toThrow(expect.objectContaining({ code: 'LVS_IO_INIT', message: expect.stringMatching(/AF_PACKET: bind on nope \(ifindex 4242\): No such device/) }));
    expect(sockets()).toBe(before);
    expect(() => new Dataplane({ io: { kind: 'packet', netns: 'lvsd-no-such-namespace', interfaces: [{ id: 0, ifindex: 1, name: 'lo' }] } })).toThrow(
      expect.objectContaining({ code: 'LVS_IO_INIT', message: expect.stringContaining('lvsd-no-such-namespace') }),
    );
  });
});

describe('AF_PACKET with two workers', () => {
  test('a fanout group spreads flows over both workers, and DR UDP still works', async () => {
    await dp!.close();
    dp = undefined;
    const host = dhost();
    const dpc = host.link('dpc');
    const dpr = host.link('dpr');
    const realMac = host.neighbour(dpr.ifindex, REAL);
    expect(realMac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    dp = new Dataplane({
      workers: 2,
      io: { kind: 'packet', netns: director.name, interfaces: [{ id: 0, ifindex: dpc.ifindex, name: 'dpc' }, { id: 1, ifindex: dpr.ifindex, name: 'dpr' }] },
    });
    dp.setInterface({ id: 0, name: 'dpc', mac: dpc.mac, ipv4: '198.18.0.1', mtu: dpc.mtu });
    dp.setInterface({ id: 1, name: 'dpr', mac: dpr.mac, ipv4: '198.18.1.1', mtu: dpr.mtu });
    const dr = { protocol: 'udp' as const, address: VIP, port: 7 };
    dp.addService({ ...dr, scheduler: 'rr' });
    dp.addReal(dr, { address: REAL, method: 'direct', interface: 1, mac: realMac! });
    await dp.settled();
    // 64 flows (a socket, so a source port, each): the kernel's flow hash spreads them.
    const script = `
      const dgram = require('dgram');
      let got = 0;
      const t = setTimeout(() => { console.log(got); process.exit(1); }, 10000);
      for (let i = 0; i < 64; i++) {
        const s = dgram.createSocket('udp4');
        s.on('message', () => { s.close(); if (++got === 64) { clearTimeout(t); console.log(got); } });
        s.send('flow' + i, 7, '${VIP}');
      }`;
    const r = runIn(client, 'node', '-e', script);
    expect(r.stdout.toString().trim(), r.stderr).toBe('64');
    const ports = dp.info().ports;
    expect(ports).toHaveLength(2);
    expect(ports.every((p) => p.kind === 'packet' && p.rxPackets > 0)).toBe(true);
    expect(ports[0]!.rxPackets + ports[1]!.rxPackets).toBeGreaterThanOrEqual(64);
  });
});
