/**
 * The real server's tunnel decapsulator (XDP "lvsd_decap") against the real kernel.
 *
 * Byte-exact behaviour is checked with BPF_PROG_TEST_RUN on the attached program (all four
 * IP-in-IP combinations, 802.1Q, outer IPv4 options, what must pass untouched). End to end, a
 * tunnel service of the AF_XDP director sends IPIP to a real namespace whose kernel has no
 * ipip module: with the decapsulator the UDP datagram reaches a socket bound to the VIP on lo;
 * for a VIP not in the list it is not decapsulated (the kernel counts an unknown protocol).
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dataplane } from '../../src/index.js';
import { Steering, decapAttach, decapDetach, xdpQuery, xdpTestRun } from '../../src/io/steering.js';
import { ethernet, ipPacket } from '../../src/lab/frames.js';
import { Netns, cleanupOnExit, removeAllNamespaces, vethPair } from '../../src/lab/netns.js';

cleanupOnExit();
afterAll(() => removeAllNamespaces());

const VIP = '198.18.0.30';
const VIP6 = '2001:db8::30';
const OTHER_VIP = '198.18.0.31';
const CLIENT = '198.18.1.2';
const DIR_OUT = '198.18.1.1';
const DIR_IN = '198.19.1.1';
const REAL = '198.19.1.2';

function link(ns: Netns, name: string): { ifindex: number; mac: string } {
  const l = (JSON.parse(ns.ip('-j', 'link', 'show', 'dev', name)) as Array<{ ifindex: number; address: string }>)[0]!;
  return { ifindex: l.ifindex, mac: l.address };
}

describe('decapsulation, frame by frame (BPF_PROG_TEST_RUN)', () => {
  let ns: Netns;
  let ifindex: number;
  const run = (frame: Buffer) => {
    const r = xdpTestRun(ns.name, ifindex, frame);
    expect(r).not.toBeNull();
    expect(r!.action).toBe('pass');
    return r!.frame;
  };

  beforeAll(() => {
    ns = Netns.create('dcap');
    const peer = Netns.create('dcapp');
    vethPair(ns, 'rs0', peer, 'dr0');
    ifindex = link(ns, 'rs0').ifindex;
    expect(decapAttach(ns.name, ifindex, [VIP, VIP6], 'native')).toBe('native');
  });

  const inner4 = ipPacket({ src: CLIENT, dst: VIP, proto: 'udp', sport: 40000, dport: 5353, payload: 'hello' });
  const inner6 = ipPacket({ src: '2001:db8:5::5', dst: VIP6, proto: 'tcp', sport: 40000, dport: 443, flags: 'S' });
  const outer4 = (inner: Buffer, extra: Partial<Parameters<typeof ipPacket>[0]> = {}) =>
    ipPacket({ src: DIR_IN, dst: REAL, proto: inner[0]! >> 4 === 4 ? 4 : 41, l4: inner, ...extra });
  const outer6 = (inner: Buffer) => ipPacket({ src: '2001:db8:1::1', dst: '2001:db8:1::2', proto: inner[0]! >> 4 === 4 ? 4 : 41, l4: inner });
  const macs = { srcMac: '02:00:00:00:01:01', dstMac: '02:00:00:00:01:11' };

  it('strips IPv4-in-IPv4, IPv6-in-IPv4, IPv4-in-IPv6 and IPv6-in-IPv6, keeping the MACs', () => {
    expect(run(ethernet(outer4(inner4), macs))).toEqual(ethernet(inner4, macs));
    expect(run(ethernet(outer4(inner6), macs))).toEqual(ethernet(inner6, macs));
    expect(run(ethernet(outer6(inner4), macs))).toEqual(ethernet(inner4, macs));
    expect(run(ethernet(outer6(inner6), macs))).toEqual(ethernet(inner6, macs));
  });

  it('keeps an 802.1Q tag and handles outer IPv4 options', () => {
    expect(run(ethernet(outer4(inner4), { ...macs, vlan: 42 }))).toEqual(ethernet(inner4, { ...macs, vlan: 42 }));
    expect(run(ethernet(outer6(inner6), { ...macs, vlan: 42 }))).toEqual(ethernet(inner6, { ...macs, vlan: 42 }));
    const options = Buffer.from([1, 1, 1, 0]);
    expect(run(ethernet(outer4(inner4, { options }), macs))).toEqual(ethernet(inner4, macs));
  });

  it('leaves everything else untouched', () => {
    const untouched = (f: Buffer) => expect(run(f)).toEqual(f);
    // Inner destination not a VIP (either family).
    untouched(ethernet(outer4(ipPacket({ src: CLIENT, dst: OTHER_VIP, proto: 'udp', dport: 5353 })), macs));
    untouched(ethernet(outer6(ipPacket({ src: '2001:db8:5::5', dst: '2001:db8::31', proto: 'udp', dport: 1 })), macs));
    // Not tunnelled: a packet straight to the VIP, ARP.
    untouched(ethernet(inner4, macs));
    const arp = Buffer.alloc(42);
    arp.writeUInt16BE(0x0806, 12);
    untouched(arp);
    // An outer fragment cannot be decapsulated on its own.
    untouched(ethernet(outer4(inner4, { mf: true }), macs));
    // Other protocols over IP, and GRE (47) to the real.
    untouched(ethernet(ipPacket({ src: DIR_IN, dst: REAL, proto: 47, l4: Buffer.concat([Buffer.alloc(4), inner4]) }), macs));
    // Cut short: the outer header, the inner header.
    const whole = ethernet(outer4(inner4), macs);
    untouched(whole.subarray(0, 14 + 19));
    untouched(whole.subarray(0, 14 + 20 + 19));
    // A bad inner version.
    const bad = Buffer.from(whole);
    bad[14 + 20] = 0x55;
    untouched(bad);
  });

  it('an empty VIP list passes everything; a new list replaces the program', () => {
    const first = xdpQuery(ns.name, ifindex)!;
    expect(decapAttach(ns.name, ifindex, [], 'auto')).toBe('native');
    const second = xdpQuery(ns.name, ifindex)!;
    expect(second.name).toBe('lvsd_decap');
    expect(second.id).not.toBe(first.id);
    const f = ethernet(outer4(inner4), macs);
    expect(run(f)).toEqual(f);
    expect(decapAttach(ns.name, ifindex, [VIP], 'auto')).toBe('native');
    expect(run(f)).toEqual(ethernet(inner4, macs));
    // Switching mode is allowed too.
    expect(decapAttach(ns.name, ifindex, [VIP], 'generic')).toBe('generic');
    expect(xdpQuery(ns.name, ifindex)).toMatchObject({ name: 'lvsd_decap', mode: 'generic' });
    expect(run(f)).toEqual(ethernet(inner4, macs));
  });

  it('detach removes only ours and leaves no program', () => {
    expect(decapDetach(ns.name, ifindex)).toBe(true);
    expect(xdpQuery(ns.name, ifindex)).toBeNull();
    expect(decapDetach(ns.name, ifindex)).toBe(false);
    // Someone else's program: not replaced, not removed.
    const s = new Steering({ netns: ns.name });
    try {
      s.attach(ifindex, 'native');
      expect(() => decapAttach(ns.name, ifindex, [VIP], 'auto')).toThrow(expect.objectContaining({ code: 'LVS_BPF', message: expect.stringContaining('lvsd_steer') }));
      expect(decapDetach(ns.name, ifindex)).toBe(false);
      expect(xdpQuery(ns.name, ifindex)).toMatchObject({ name: 'lvsd_steer' });
    } finally {
      s.close();
    }
    expect(() => decapAttach(ns.name, 99999, [VIP], 'auto')).toThrow(expect.objectContaining({ code: 'LVS_NO_SUCH_DEVICE' }));
    // No native XDP on loopback: 'native' is refused, 'auto' falls back to generic.
    expect(() => decapAttach(ns.name, 1, [VIP], 'native')).toThrow(expect.objectContaining({ code: 'LVS_NETLINK' }));
    expect(xdpQuery(ns.name, 1)).toBeNull();
    expect(decapAttach(ns.name, 1, [VIP], 'auto')).toBe('generic');
    expect(decapDetach(ns.name, 1)).toBe(true);
  });

  it('stays attached after the process that attached it exits', async () => {
    // A separate process (as `lvsd realserver` is) attaches and exits.
    const root = new URL('../..', import.meta.url).pathname;
    const script = `
      const a = process.env.LVSD_ADDON ? require(process.env.LVSD_ADDON) : require(${JSON.stringify(root + 'node_modules/node-gyp-build')})(${JSON.stringify(root)});
      a.decapAttach(${JSON.stringify(ns.name)}, ${ifindex}, [Uint8Array.of(${VIP.split('.').join(', ')})], 'native');`;
    await new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'pipe'], env: process.env });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}: ${err}`))));
    });
    expect(xdpQuery(ns.name, ifindex)).toMatchObject({ name: 'lvsd_decap', mode: 'native' });
    expect(decapDetach(ns.name, ifindex)).toBe(true);
  });
});

describe('decapsulation end to end: AF_XDP director, tunnel service, real without ipip', () => {
  let client: Netns;
  let dir: Netns;
  let real: Netns;
  let steering: Steering;
  let dp: Dataplane;
  let rs0: number;
  let received: string[] = [];

  beforeAll(async () => {
    client = Netns.create('tc');
    dir = Netns.create('td');
    real = Netns.create('tr');
    vethPair(client, 'cl0', dir, 'dout');
    vethPair(dir, 'din', real, 'rs0');
    client.ip('addr', 'add', `${CLIENT}/24`, 'dev', 'cl0');
    client.ip('route', 'add', '198.18.0.0/24', 'via', DIR_OUT);
    dir.ip('addr', 'add', `${DIR_OUT}/24`, 'dev', 'dout');
    dir.ip('addr', 'add', `${DIR_IN}/24`, 'dev', 'din');
    dir.sysctl('net.ipv4.ip_forward', 1);
    real.ip('addr', 'add', `${REAL}/24`, 'dev', 'rs0');
    real.ip('addr', 'add', `${VIP}/32`, 'dev', 'lo');
    real.ip('route', 'add', 'default', 'via', DIR_IN);
    // Complete checksums from the veth peers (XDP sees frames without the skb's offload state).
    client.exec('ethtool', '-K', 'cl0', 'tx', 'off');
    real.exec('ethtool', '-K', 'rs0', 'tx', 'off');
    const dout = link(dir, 'dout');
    const din = link(dir, 'din');
    const r = link(real, 'rs0');
    rs0 = r.ifindex;

    // A UDP server bound to the VIP on the real's lo; it reports every datagram.
    await new Promise<void>((resolve, reject) => {
      const child = real.spawn(process.execPath, [
        '-e',
        `const s = require('dgram').createSocket('udp4');
         s.on('message', (m, r) => { console.log('got ' + m + ' from ' + r.address); s.send('echo:' + m, r.port, r.address); });
         s.bind(5353, '${VIP}', () => console.log('ready'));`,
      ]);
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        received = out.split('\n').filter((l) => l.startsWith('got '));
        if (out.includes('ready')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
    });

    steering = new Steering({ netns: dir.name });
    steering.attach(dout.ifindex, 'native');
    steering.attach(din.ifindex, 'native');
    for (const a of [DIR_OUT, DIR_IN]) steering.addLocal(a);
    dp = new Dataplane({
      mode: 'threaded',
      io: { kind: 'xdp', netns: dir.name, interfaces: [{ id: 0, ifindex: dout.ifindex, name: 'dout' }, { id: 1, ifindex: din.ifindex, name: 'din' }], steering: steering.native, frames: 256 },
    });
    dp.setInterface({ id: 0, name: 'dout', mac: dout.mac, ipv4: DIR_OUT, mtu: 1500 });
    dp.setInterface({ id: 1, name: 'din', mac: din.mac, ipv4: DIR_IN, mtu: 1500 });
    const svc = { protocol: 'udp' as const, address: VIP, port: 5353 };
    dp.addService({ ...svc, scheduler: 'rr' });
    dp.addReal(svc, { address: REAL, method: 'tunnel', interface: 1, mac: r.mac });
    await dp.settled();
    steering.addService(svc);
  });
  afterAll(async () => {
    await dp?.close();
    steering?.close();
  });

  /** Send one datagram from the client (no wait for an answer). */
  const send = (text: string) => {
    client.exec(process.execPath, '-e', `const s = require('dgram').createSocket('udp4'); s.send('${text}', 5353, '${VIP}', () => s.close());`);
  };
  const unknownProtos = () => Number(/IpInUnknownProtos\s+(\d+)/.exec(real.exec('nstat', '-az', 'IpInUnknownProtos'))?.[1] ?? 0);
  const until = async (what: string, cond: () => boolean) => {
    for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
    if (!cond()) throw new Error(`gave up waiting for ${what}`);
  };

  it('without a decapsulator the real cannot take the tunnel: IPIP is an unknown protocol', async () => {
    const before = unknownProtos();
    send('first');
    await until('the IPIP packet to reach the real', () => unknownProtos() > before);
    expect(received).toEqual([]);
  });

  it('with it, the datagram reaches the socket on the VIP, from the client, and the reply goes back', async () => {
    expect(decapAttach(real.name, rs0, [VIP], 'auto')).toBe('native');
    const reply = client.exec(
      process.execPath,
      '-e',
      `const s = require('dgram').createSocket('udp4');
       s.on('message', (m, r) => { console.log(r.address + ' ' + m); process.exit(0); });
       const t = setInterval(() => s.send('second', 5353, '${VIP}'), 300);
       s.send('second', 5353, '${VIP}');
       setTimeout(() => process.exit(3), 8000);`,
    );
    expect(reply.trim()).toBe(`${VIP} echo:second`);
    await until('the server to report', () => received.length > 0);
    expect(received[0]).toBe(`got second from ${CLIENT}`);
  });

  it('a VIP list without the service address leaves its packets encapsulated', async () => {
    expect(decapAttach(real.name, rs0, [OTHER_VIP], 'auto')).toBe('native');
    const count = received.length;
    const before = unknownProtos();
    send('third');
    await until('the IPIP packet to reach the real', () => unknownProtos() > before);
    expect(received.length).toBe(count);
    expect(decapDetach(real.name, rs0)).toBe(true);
    expect(xdpQuery(real.name, rs0)).toBeNull();
  });
});
