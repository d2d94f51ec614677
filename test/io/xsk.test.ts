/**
 * AF_XDP end to end, through the real dataplane, in namespaces this file makes:
 *
 *   client (cl0) <-veth-> (dout) director (din) <-veth-> (rs0) real
 *
 * The director runs the steering program on dout and din and a threaded Dataplane with
 * io.kind 'xdp'. Real programs talk across it: node scripts for UDP and TCP clients and
 * servers, ping. Checked: a NAT UDP service and a NAT TCP service answer from the VIP; a DR
 * service answers from the real directly; traffic the director is not asked to handle (its own
 * addresses, a non-service port, ICMP echo, health checks to a NAT real) is answered by the
 * director's kernel while the steering is attached; with two receive queues, flows on either
 * queue are served; and closing leaves nothing registered or attached.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dataplane } from '../../src/index.js';
import { Steering, xdpQuery, type XdpMode } from '../../src/io/steering.js';
import { packet } from '../../src/lab/frames.js';
import { Netns, cleanupOnExit, removeAllNamespaces, vethPair } from '../../src/lab/netns.js';

cleanupOnExit();
afterAll(() => removeAllNamespaces());

const CLIENT = '198.18.1.2';
const DIR_OUT = '198.18.1.1';
const DIR_IN = '198.19.1.1';
const REAL = '198.19.1.2';
const VIP_NAT = '198.18.0.10'; // also configured on the director (its own address)
const VIP_DR = '198.18.0.20'; // configured on the real only
const CLIENT6 = '2001:db8:1::2';
const DIR_OUT6 = '2001:db8:1::1';
const DIR_IN6 = '2001:db8:2::1';
const REAL6 = '2001:db8:2::2';
const VIP6 = '2001:db8::10';

interface Link {
  ifindex: number;
  mac: string;
}
function link(ns: Netns, name: string): Link {
  const l = (JSON.parse(ns.ip('-j', 'link', 'show', 'dev', name)) as Array<{ ifindex: number; address: string }>)[0]!;
  return { ifindex: l.ifindex, mac: l.address };
}

/** Run a node script in a namespace; resolve with its stdout (it must exit by itself). */
function node(ns: Netns, script: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out.trim());
      else reject(new Error(`node in ${ns.name} exited ${code}: ${err.trim()} ${out.trim()}`));
    });
  });
}

/** Start a long-running node server in a namespace; resolves once it prints "ready". */
function server(ns: Netns, script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = ns.spawn(process.execPath, ['-e', script]);
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server in ${ns.name} did not start: ${out}`)), 10_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server in ${ns.name} exited ${code}: ${out}`));
    });
  });
}

// UDP echo: replies "echo:<sender address>:<payload>".
const udpEcho = (addr: string, port: number) => `
  const s = require('dgram').createSocket(${addr.includes(':') ? "{ type: 'udp6', ipv6Only: true }" : "'udp4'"});
  s.on('message', (m, r) => s.send('echo:' + r.address + ':' + m, r.port, r.address));
  s.bind(${port}, '${addr}', () => console.log('ready'));`;
// TCP echo: replies "tcp:<peer address>:<data>" and closes.
const tcpEcho = (addr: string, port: number) => `
  require('net').createServer((c) => c.once('data', (d) => c.end('tcp:' + c.remoteAddress + ':' + d)))
    .listen(${port}, '${addr}', () => console.log('ready'));`;
// UDP client: `count` flows (own source ports), each sends once a second until answered;
// prints one JSON line per flow: {from, data}.
const udpClient = (dst: string, port: number, count = 1, bind = '') => `
  const dgram = require('dgram');
  let left = ${count};
  const out = [];
  for (let i = 0; i < ${count}; i++) {
    const s = dgram.createSocket('${dst.includes(':') ? 'udp6' : 'udp4'}');
    let timer;
    s.on('message', (m, r) => {
      clearInterval(timer);
      out.push({ from: r.address + ':' + r.port, data: String(m) });
      s.close();
      if (--left === 0) { console.log(JSON.stringify(out)); process.exit(0); }
    });
    s.bind(0, '${bind}' || undefined, () => {
      const send = () => s.send('hello' + i, ${port}, '${dst}');
      send();
      timer = setInterval(send, 500);
    });
  }
  setTimeout(() => { console.log(JSON.stringify(out)); process.exit(3); }, 8000);`;
const tcpClient = (dst: string, port: number) => `
  const c = require('net').connect(${port}, '${dst}', () => c.write('ping'));
  let got = '';
  c.on('data', (d) => (got += d));
  c.on('end', () => { console.log(JSON.stringify({ local: c.localAddress, data: got })); process.exit(0); });
  c.on('error', (e) => { console.error(e.message); process.exit(2); });
  setTimeout(() => process.exit(3), 8000);`;

interface Topology {
  client: Netns;
  director: Netns;
  real: Netns;
  dout: Link;
  din: Link;
  rs0: Link;
}

function topology(tag: string, queues?: number): Topology {
  const client = Netns.create(`${tag}c`);
  const director = Netns.create(`${tag}d`);
  const real = Netns.create(`${tag}r`);
  const opts = queues ? { queues } : {};
  vethPair(client, 'cl0', director, 'dout', opts);
  vethPair(director, 'din', real, 'rs0', opts);
  client.ip('addr', 'add', `${CLIENT}/24`, 'dev', 'cl0');
  client.ip('route', 'add', '198.18.0.0/24', 'via', DIR_OUT);
  director.ip('addr', 'add', `${DIR_OUT}/24`, 'dev', 'dout');
  director.ip('addr', 'add', `${DIR_IN}/24`, 'dev', 'din');
  director.ip('addr', 'add', `${VIP_NAT}/32`, 'dev', 'lo');
  director.sysctl('net.ipv4.ip_forward', 1);
  real.ip('addr', 'add', `${REAL}/24`, 'dev', 'rs0');
  real.ip('addr', 'add', `${VIP_DR}/32`, 'dev', 'lo');
  real.ip('route', 'add', 'default', 'via', DIR_IN);
  client.ip('addr', 'add', `${CLIENT6}/64`, 'dev', 'cl0', 'nodad');
  client.ip('route', 'add', '2001:db8::/64', 'via', DIR_OUT6);
  director.ip('addr', 'add', `${DIR_OUT6}/64`, 'dev', 'dout', 'nodad');
  director.ip('addr', 'add', `${DIR_IN6}/64`, 'dev', 'din', 'nodad');
  real.ip('addr', 'add', `${REAL6}/64`, 'dev', 'rs0', 'nodad');
  real.ip('route', 'add', 'default', 'via', DIR_IN6);
  // A veth peer sends with checksum offload: the checksum field holds only the pseudo-header
  // sum, and XDP sees the frame as it is (no skb, no CHECKSUM_PARTIAL flag to go with it). Real
  // NICs put complete checksums on the wire; on veth the peers must compute them.
  client.exec('ethtool', '-K', 'cl0', 'tx', 'off');
  real.exec('ethtool', '-K', 'rs0', 'tx', 'off');
  return { client, director, real, dout: link(director, 'dout'), din: link(director, 'din'), rs0: link(real, 'rs0') };
}

/** The director: steering on both interfaces, a threaded AF_XDP dataplane, three services. */
async function director(t: Topology, mode: XdpMode | 'auto', workers = 1): Promise<{ steering: Steering; dp: Dataplane }> {
  const steering = new Steering({ netns: t.director.name });
  expect(steering.attach(t.dout.ifindex, mode)).toBe(mode === 'auto' ? 'native' : mode);
  expect(steering.attach(t.din.ifindex, mode)).toBe(mode === 'auto' ? 'native' : mode);
  for (const a of [DIR_OUT, DIR_IN, VIP_NAT, DIR_OUT6, DIR_IN6]) steering.addLocal(a);
  const dp = new Dataplane({
    mode: 'threaded',
    workers,
    io: {
      kind: 'xdp',
      netns: t.director.name,
      interfaces: [
        { id: 0, ifindex: t.dout.ifindex, name: 'dout' },
        { id: 1, ifindex: t.din.ifindex, name: 'din' },
      ],
      steering: steering.native,
      frames: 512,
    },
  });
  dp.setInterface({ id: 0, name: 'dout', mac: t.dout.mac, ipv4: DIR_OUT, ipv6: DIR_OUT6, mtu: 1500 });
  dp.setInterface({ id: 1, name: 'din', mac: t.din.mac, ipv4: DIR_IN, ipv6: DIR_IN6, mtu: 1500 });
  const udp6 = { protocol: 'udp' as const, address: VIP6, port: 5353 };
  dp.addService({ ...udp6, scheduler: 'rr' });
  dp.addReal(udp6, { address: REAL6, port: 5353, method: 'nat', interface: 1, mac: t.rs0.mac });
  const udp = { protocol: 'udp' as const, address: VIP_NAT, port: 5353 };
  const tcp = { protocol: 'tcp' as const, address: VIP_NAT, port: 8080 };
  const dr = { protocol: 'tcp' as const, address: VIP_DR, port: 80 };
  dp.addService({ ...udp, scheduler: 'rr' });
  dp.addReal(udp, { address: REAL, port: 5353, method: 'nat', interface: 1, mac: t.rs0.mac });
  dp.addService({ ...tcp, scheduler: 'rr' });
  dp.addReal(tcp, { address: REAL, port: 8080, method: 'nat', interface: 1, mac: t.rs0.mac });
  dp.addService({ ...dr, scheduler: 'rr' });
  dp.addReal(dr, { address: REAL, method: 'direct', interface: 1, mac: t.rs0.mac });
  const drUdp = { protocol: 'udp' as const, address: VIP_DR, port: 5300 };
  dp.addService({ ...drUdp, scheduler: 'rr' });
  dp.addReal(drUdp, { address: REAL, method: 'direct', interface: 1, mac: t.rs0.mac });
  await dp.settled();
  for (const s of [udp, tcp, dr, udp6, drUdp]) steering.addService(s);
  steering.addNatReal({ protocol: 'udp', address: REAL, port: 5353 });
  steering.addNatReal({ protocol: 'udp', address: REAL6, port: 5353 });
  steering.addNatReal({ protocol: 'tcp', address: REAL, port: 8080 });
  return { steering, dp };
}

describe.each([['native' as const], ['generic' as const]])('AF_XDP director, XDP %s', (mode) => {
  let t: Topology;
  let steering: Steering;
  let dp: Dataplane;

  beforeAll(async () => {
    t = topology(mode === 'native' ? 'xn' : 'xg');
    await server(t.real, udpEcho('0.0.0.0', 5353));
    await server(t.real, udpEcho('::', 5353));
    await server(t.real, tcpEcho('0.0.0.0', 8080));
    await server(t.real, tcpEcho(VIP_DR, 80));
    await server(t.director, tcpEcho('0.0.0.0', 7000));
    ({ steering, dp } = await director(t, mode));
  });
  afterAll(async () => {
    await dp?.close();
    steering?.close();
  });

  it('a NAT UDP service answers from the VIP; the real sees the client', async () => {
    const out = JSON.parse(await node(t.client, udpClient(VIP_NAT, 5353))) as Array<{ from: string; data: string }>;
    expect(out).toEqual([{ from: `${VIP_NAT}:5353`, data: `echo:${CLIENT}:hello0` }]);
    const info = dp.info();
    expect(info.ports[0]!.kind).toBe(`xdp-${mode}-copy`);
    expect(info.ports[0]!.rxPackets).toBeGreaterThanOrEqual(2); // request and reply
    expect(info.ports[0]!.txPackets).toBeGreaterThanOrEqual(2);
    expect(steering.stats().redirected).toBeGreaterThanOrEqual(2);
  });

  it('a NAT UDP service over IPv6 answers from the VIP', async () => {
    const out = JSON.parse(await node(t.client, udpClient(VIP6, 5353))) as Array<{ from: string; data: string }>;
    expect(out).toEqual([{ from: `${VIP6}:5353`, data: `echo:${CLIENT6}:hello0` }]);
  });

  it('a NAT TCP service answers from the VIP', async () => {
    for (let i = 0; i < 3; i++) {
      const r = JSON.parse(await node(t.client, tcpClient(VIP_NAT, 8080))) as { local: string; data: string };
      expect(r).toEqual({ local: CLIENT, data: `tcp:${CLIENT}:ping` });
    }
  });

  it('a DR service: the real answers the client directly from the VIP', async () => {
    const r = JSON.parse(await node(t.client, tcpClient(VIP_DR, 80))) as { local: string; data: string };
    expect(r).toEqual({ local: CLIENT, data: `tcp:${CLIENT}:ping` });
  });

  it("the director's kernel still answers its own traffic: another port, ping, a health check", async () => {
    const passedBefore = steering.stats().passed;
    // A port of the VIP address that is no service, served by a program on the director.
    const r = JSON.parse(await node(t.client, tcpClient(VIP_NAT, 7000))) as { local: string; data: string };
    expect(r.data).toBe(`tcp:${CLIENT}:ping`);
    t.client.exec('ping', '-c', '1', '-W', '3', DIR_OUT);
    t.client.exec('ping', '-c', '1', '-W', '3', VIP_NAT);
    // A health check from the director to the NAT real's service port: the answer comes from
    // (REAL, udp, 5353), a NAT real endpoint, but it is addressed to the director itself.
    const hc = JSON.parse(await node(t.director, udpClient(REAL, 5353, 1, DIR_IN))) as Array<{ from: string; data: string }>;
    expect(hc).toEqual([{ from: `${REAL}:5353`, data: `echo:${DIR_IN}:hello0` }]);
    expect(steering.stats().passed).toBeGreaterThan(passedBefore);
    expect(dp.info().ports[0]!.passDropped).toBe(0);
  });

  it('a frame for a service is redirected to the socket of its queue', () => {
    const frame = packet({ src: CLIENT, dst: VIP_NAT, proto: 'udp', dport: 5353, dstMac: t.dout.mac });
    expect(steering.testRun(frame, t.dout.ifindex, 0).action).toBe('redirect');
    const other = packet({ src: CLIENT, dst: VIP_NAT, proto: 'udp', dport: 5354, dstMac: t.dout.mac });
    expect(steering.testRun(other, t.dout.ifindex, 0).action).toBe('pass');
  });
});

describe('AF_XDP with two receive queues per interface', () => {
  let t: Topology;
  beforeAll(async () => {
    t = topology('xq', 2);
    await server(t.real, udpEcho('0.0.0.0', 5353));
    await server(t.real, udpEcho(VIP_DR, 5300));
  });

  it('one worker serves every queue: many flows, all answered', async () => {
    const { steering, dp } = await director(t, 'native');
    try {
      const out = JSON.parse(await node(t.client, udpClient(VIP_NAT, 5353, 24))) as Array<{ from: string; data: string }>;
      expect(out).toHaveLength(24);
      for (const r of out) expect(r.from).toBe(`${VIP_NAT}:5353`);
      expect(new Set(out.map((r) => r.data)).size).toBe(24);
      expect(steering.stats().noSocket).toBe(0);
    } finally {
      await dp.close();
      steering.close();
    }
  });

  it('two workers split the queues (q % workers): DR flows on both are answered', async () => {
    // DR: only client -> real crosses the dataplane, so each flow stays with the worker of the
    // queue it arrives on.
    const { steering, dp } = await director(t, 'native', 2);
    try {
      const out = JSON.parse(await node(t.client, udpClient(VIP_DR, 5300, 24))) as Array<{ from: string; data: string }>;
      expect(out).toHaveLength(24);
      for (const r of out) expect(r.from).toBe(`${VIP_DR}:5300`);
      expect(steering.stats().noSocket).toBe(0);
      // 24 flows over two queues: both workers received some (all on one: odds 2^-23).
      const ports = dp.info().ports;
      expect(ports).toHaveLength(2);
      expect(ports[0]!.rxPackets).toBeGreaterThan(0);
      expect(ports[1]!.rxPackets).toBeGreaterThan(0);
    } finally {
      await dp.close();
      steering.close();
    }
  });
});

describe('AF_XDP lifecycle', () => {
  it('closing the dataplane unregisters its sockets; closing the steering detaches it', async () => {
    const t = topology('xl');
    const { steering, dp } = await director(t, 'native');
    const frame = packet({ src: CLIENT, dst: VIP_NAT, proto: 'udp', dport: 5353, dstMac: t.dout.mac });
    expect(steering.testRun(frame, t.dout.ifindex, 0).action).toBe('redirect');
    await dp.close();
    const before = steering.stats();
    expect(steering.testRun(frame, t.dout.ifindex, 0).action).toBe('pass');
    expect(steering.stats().noSocket).toBe(before.noSocket + 1);
    // A new dataplane takes the same queues again.
    const dp2 = new Dataplane({
      mode: 'threaded',
      io: { kind: 'xdp', netns: t.director.name, interfaces: [{ id: 0, ifindex: t.dout.ifindex, name: 'dout' }], steering: steering.native, frames: 64 },
    });
    expect(steering.testRun(frame, t.dout.ifindex, 0).action).toBe('redirect');
    await dp2.close();
    steering.close();
    expect(xdpQuery(t.director.name, t.dout.ifindex)).toBeNull();
    expect(xdpQuery(t.director.name, t.din.ifindex)).toBeNull();
  });

  it('a setup failure says what failed and leaves nothing behind', async () => {
    const t = topology('xf');
    const steering = new Steering({ netns: t.director.name });
    try {
      steering.attach(t.dout.ifindex, 'native');
      steering.addService({ protocol: 'udp', address: VIP_NAT, port: 5353 });
      const io = (ifaces: Array<{ id: number; ifindex: number; name: string }>, zeroCopy?: boolean) => ({
        mode: 'threaded' as const,
        io: { kind: 'xdp' as const, netns: t.director.name, interfaces: ifaces, steering: steering.native, frames: 64, ...(zeroCopy === undefined ? {} : { zeroCopy }) },
      });
      // The second interface does not exist: the first one's socket must not stay registered.
      expect(() => new Dataplane(io([{ id: 0, ifindex: t.dout.ifindex, name: 'dout' }, { id: 1, ifindex: 99999, name: 'nope' }]))).toThrow(
        expect.objectContaining({ code: 'LVS_IO_INIT', message: expect.stringContaining('ifindex 99999') }),
      );
      // veth has no zero-copy AF_XDP: asking for it alone fails at bind.
      expect(() => new Dataplane(io([{ id: 0, ifindex: t.dout.ifindex, name: 'dout' }], true))).toThrow(
        expect.objectContaining({ code: 'LVS_IO_INIT', message: expect.stringContaining('zero-copy') }),
      );
      const frame = packet({ src: CLIENT, dst: VIP_NAT, proto: 'udp', dport: 5353, dstMac: t.dout.mac });
      expect(steering.testRun(frame, t.dout.ifindex, 0).action).toBe('pass');
      // And the queue is free for a dataplane that works.
      const dp = new Dataplane(io([{ id: 0, ifindex: t.dout.ifindex, name: 'dout' }]));
      expect(dp.info().ports[0]!.kind).toBe('xdp-native-copy');
      expect(steering.testRun(frame, t.dout.ifindex, 0).action).toBe('redirect');
      await dp.close();
      // Not a Steering object at all.
      expect(() => new Dataplane({ mode: 'threaded', io: { kind: 'xdp', netns: t.director.name, interfaces: [{ id: 0, ifindex: t.dout.ifindex, name: 'dout' }], steering: {} } })).toThrow();
    } finally {
      steering.close();
    }
  });
});
