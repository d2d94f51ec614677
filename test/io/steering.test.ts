/**
 * The XDP steering program against the real kernel: it loads on the verifier, attaches native
 * and generic on veth, and decides per frame as specified. Decisions are observed with
 * BPF_PROG_TEST_RUN (the program runs in the kernel on a frame we build) and the program's own
 * per-CPU counters: a frame meant for the dataplane with no socket registered counts as
 * `noSocket`, one for the kernel as `passed`, a truncated one as `parseFailed`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LvsError } from '../../src/errors.js';
import { Steering, xdpQuery } from '../../src/io/steering.js';
import { icmpError, ipPacket, packet } from '../../src/lab/frames.js';
import { Netns, cleanupOnExit, removeAllNamespaces, vethPair } from '../../src/lab/netns.js';

cleanupOnExit();

const VIP = '198.18.0.10';
const ANYPORT_VIP = '198.18.0.11';
const VIP6 = '2001:db8::10';
const CLIENT = '198.18.5.5';
const CLIENT6 = '2001:db8:5::5';
const NAT_REAL = '198.19.0.11';
const LOCAL_IN = '198.19.0.1';

let ns: Netns;
let peer: Netns;
let ifindex: number;

function linkIndex(n: Netns, name: string): number {
  return (JSON.parse(n.ip('-j', 'link', 'show', 'dev', name)) as Array<{ ifindex: number }>)[0]!.ifindex;
}

beforeAll(() => {
  ns = Netns.create('steer');
  peer = Netns.create('steerpeer');
  vethPair(ns, 'st0', peer, 'st1');
  ifindex = linkIndex(ns, 'st0');
});
afterAll(() => removeAllNamespaces());

type Decision = 'steer' | 'pass' | 'parse' | 'redirect';

/** Run the program once on `frame` as received on st0 and say what it decided. */
function decide(s: Steering, frame: Buffer, queue = 0): Decision {
  const before = s.stats();
  const r = s.testRun(frame, ifindex, queue);
  const after = s.stats();
  const delta = {
    redirected: after.redirected - before.redirected,
    passed: after.passed - before.passed,
    noSocket: after.noSocket - before.noSocket,
    parseFailed: after.parseFailed - before.parseFailed,
  };
  // Exactly one decision is counted per frame.
  expect(delta.redirected + delta.passed + delta.noSocket + delta.parseFailed).toBe(1);
  if (delta.redirected) {
    expect(r.action).toBe('redirect');
    return 'redirect';
  }
  expect(r.action).toBe('pass');
  expect([...r.frame]).toEqual([...frame]); // the steering never changes a frame
  return delta.noSocket ? 'steer' : delta.parseFailed ? 'parse' : 'pass';
}

describe('steering decisions (BPF_PROG_TEST_RUN on the loaded program)', () => {
  let s: Steering;
  beforeAll(() => {
    s = new Steering({ netns: ns.name });
    s.addService({ protocol: 'tcp', address: VIP, port: 80 });
    s.addService({ protocol: 'udp', address: VIP, port: 53 });
    s.addService({ protocol: 'tcp', address: ANYPORT_VIP, port: 0 });
    s.addService({ protocol: 'tcp', address: VIP6, port: 443 });
    s.addNatReal({ protocol: 'tcp', address: NAT_REAL, port: 8080 });
    s.addLocal(LOCAL_IN);
    s.addLocal('198.18.0.1');
    s.addPrefix('198.18.64.0/18');
    s.addPrefix('2001:db8:40::/48');
  });
  afterAll(() => s.close());

  it('TCP/UDP to a service (address, protocol, port), or to an any-port service', () => {
    expect(decide(s, packet({ src: CLIENT, dst: VIP, proto: 'tcp', dport: 80 }))).toBe('steer');
    expect(decide(s, packet({ src: CLIENT, dst: VIP, proto: 'tcp', dport: 81 }))).toBe('pass');
    expect(decide(s, packet({ src: CLIENT, dst: VIP, proto: 'udp', dport: 53 }))).toBe('steer');
    expect(decide(s, packet({ src: CLIENT, dst: VIP, proto: 'tcp', dport: 53 }))).toBe('pass');
    expect(decide(s, packet({ src: CLIENT, dst: ANYPORT_VIP, proto: 'tcp', dport: 5555 }))).toBe('steer');
    expect(decide(s, packet({ src: CLIENT, dst: ANYPORT_VIP, proto: 'udp', dport: 5555 }))).toBe('pass');
    expect(decide(s, packet({ src: CLIENT, dst: '198.18.0.12', proto: 'tcp', dport: 80 }))).toBe('pass');
    expect(decide(s, packet({ src: CLIENT6, dst: VIP6, proto: 'tcp', dport: 443 }))).toBe('steer');
    expect(decide(s, packet({ src: CLIENT6, dst: VIP6, proto: 'tcp', dport: 444 }))).toBe('pass');
  });

  it('parses an 802.1Q tag and IPv4 options', () => {
    expect(decide(s, packet({ src: CLIENT, dst: VIP, proto: 'tcp', dport: 80, vlan: 7 }))).toBe('steer');
    expect(decide(s, packet({ src: CLIENT, dst: VIP, proto: 'tcp', dport: 81, vlan: 7 }))).toBe('pass');
    const options = Buffer.from([1, 1, 1, 0, 7, 3, 4, 0]); // NOPs, end, then a padded option
    expect(decide(s, packet({ src: CLIENT, dst: VIP, proto: 'tcp', dport: 80, options }))).toBe('steer');
    expect(decide(s, packet({ src: CLIENT6, dst: VIP6, proto: 'tcp', dport: 443, vlan: 100 }))).toBe('steer');
  });

  it('IPv4 fragments and IPv6 extension headers go to the dataplane only for service addresses', () => {
    expect(decide(s, packet({ src: CLIENT, dst: VIP, proto: 'udp', dport: 9, mf: true }))).toBe('steer');
    expect(decide(s, packet({ src: CLIENT, dst: VIP, proto: 'udp', fragOffset: 1480 }))).toBe('steer');
    expect(decide(s, packet({ src: CLIENT, dst: '198.18.0.99', proto: 'udp', fragOffset: 1480 }))).toBe('pass');
    expect(decide(s, packet({ src: CLIENT6, dst: VIP6, proto: 'tcp', dport: 443, ext: [{ type: 0 }] }))).toBe('steer');
    expect(decide(s, packet({ src: CLIENT6, dst: VIP6, proto: 'udp', dport: 1, ext: [{ type: 44, fragOffset: 8 }] }))).toBe('steer');
    expect(decide(s, packet({ src: CLIENT6, dst: VIP6, proto: 'tcp', ext: [{ type: 60 }, { type: 43 }] }))).toBe('steer');
    expect(decide(s, packet({ src: CLIENT6, dst: '2001:db8::99', proto: 'tcp', dport: 443, ext: [{ type: 0 }] }))).toBe('pass');
  });

  it('ICMP errors to any service address are steered; echo and other ICMP are not', () => {
    const quote = ipPacket({ src: VIP, dst: CLIENT, proto: 'tcp', sport: 80, dport: 40000 });
    for (const type of [3, 4, 11, 12]) {
      expect(decide(s, icmpError({ src: '198.18.9.9', dst: VIP, type, code: 0, quote }))).toBe('steer');
    }
    expect(decide(s, icmpError({ src: '198.18.9.9', dst: '198.18.0.99', type: 3, code: 4, quote }))).toBe('pass');
    expect(decide(s, icmpError({ src: '198.18.9.9', dst: VIP, type: 5, code: 0, quote }))).toBe('pass'); // redirect
    const echo = packet({ src: CLIENT, dst: VIP, proto: 1, l4: Buffer.from([8, 0, 0xf7, 0xff, 0, 0, 0, 0]) });
    expect(decide(s, echo)).toBe('pass');
    const quote6 = ipPacket({ src: VIP6, dst: CLIENT6, proto: 'tcp', sport: 443, dport: 40000 });
    for (const type of [1, 2, 3, 4]) {
      expect(decide(s, icmpError({ src: '2001:db8:9::9', dst: VIP6, type, code: 0, quote: quote6 }))).toBe('steer');
    }
    const echo6 = packet({ src: CLIENT6, dst: VIP6, proto: 58, l4: Buffer.from([128, 0, 0, 0, 0, 0, 0, 0]) });
    expect(decide(s, echo6)).toBe('pass');
    const ns6 = packet({ src: CLIENT6, dst: VIP6, proto: 58, l4: Buffer.alloc(24, 0).fill(135, 0, 1) });
    expect(decide(s, ns6)).toBe('pass'); // neighbour solicitation
  });

  it('NAT replies are steered unless addressed to the director itself', () => {
    expect(decide(s, packet({ src: NAT_REAL, dst: CLIENT, proto: 'tcp', sport: 8080, dport: 40000, flags: 'SA' }))).toBe('steer');
    expect(decide(s, packet({ src: NAT_REAL, dst: CLIENT, proto: 'tcp', sport: 8081, dport: 40000, flags: 'SA' }))).toBe('pass');
    expect(decide(s, packet({ src: NAT_REAL, dst: CLIENT, proto: 'udp', sport: 8080, dport: 40000 }))).toBe('pass');
    // A health check's answer.
    expect(decide(s, packet({ src: NAT_REAL, dst: LOCAL_IN, proto: 'tcp', sport: 8080, dport: 40000, flags: 'SA' }))).toBe('pass');
    const quote = ipPacket({ src: CLIENT, dst: NAT_REAL, proto: 'tcp', sport: 40000, dport: 8080 });
    expect(decide(s, icmpError({ src: NAT_REAL, dst: CLIENT, type: 3, code: 3, quote }))).toBe('steer');
    expect(decide(s, icmpError({ src: NAT_REAL, dst: LOCAL_IN, type: 3, code: 3, quote }))).toBe('pass');
  });

  it('firewall-mark prefixes: TCP, UDP and ICMP errors to an address inside them', () => {
    expect(decide(s, packet({ src: CLIENT, dst: '198.18.70.1', proto: 'tcp', dport: 1234 }))).toBe('steer');
    expect(decide(s, packet({ src: CLIENT, dst: '198.18.127.255', proto: 'udp', dport: 1 }))).toBe('steer');
    expect(decide(s, packet({ src: CLIENT, dst: '198.18.128.1', proto: 'udp', dport: 1 }))).toBe('pass');
    const quote = ipPacket({ src: '198.18.70.1', dst: CLIENT, proto: 'udp', sport: 1, dport: 2 });
    expect(decide(s, icmpError({ src: '198.18.9.9', dst: '198.18.70.1', type: 3, code: 4, quote }))).toBe('steer');
    const echo = packet({ src: CLIENT, dst: '198.18.70.1', proto: 1, l4: Buffer.from([8, 0, 0xf7, 0xff, 0, 0, 0, 0]) });
    expect(decide(s, echo)).toBe('pass');
    expect(decide(s, packet({ src: CLIENT6, dst: '2001:db8:40:ffff::5', proto: 'tcp', dport: 22 }))).toBe('steer');
    expect(decide(s, packet({ src: CLIENT6, dst: '2001:db8:41::5', proto: 'tcp', dport: 22 }))).toBe('pass');
    // An IPv6 prefix never matches IPv4 addresses with the same leading bytes, nor the reverse.
    s.addPrefix('::/0');
    expect(decide(s, packet({ src: CLIENT, dst: '198.18.200.1', proto: 'tcp', dport: 1 }))).toBe('pass');
    expect(decide(s, packet({ src: CLIENT6, dst: '2001:db8:99::1', proto: 'tcp', dport: 1 }))).toBe('steer');
    s.delPrefix('::/0');
    expect(decide(s, packet({ src: CLIENT6, dst: '2001:db8:99::1', proto: 'tcp', dport: 1 }))).toBe('pass');
  });

  it('passes ARP and other non-IP frames', () => {
    const arp = Buffer.alloc(42);
    arp.fill(0xff, 0, 6);
    arp.writeUInt16BE(0x0806, 12);
    expect(decide(s, arp)).toBe('pass');
  });

  it('passes truncated and malformed headers and counts them as parse failures', () => {
    const full = packet({ src: CLIENT, dst: VIP, proto: 'tcp', dport: 80 });
    // (BPF_PROG_TEST_RUN refuses frames shorter than an Ethernet header, as drivers never
    // hand XDP one: the shortest cut here is a frame whose 802.1Q tag is cut.)
    expect(decide(s, full.subarray(0, 14 + 19))).toBe('parse'); // IPv4 header cut
    expect(decide(s, full.subarray(0, 14 + 20 + 3))).toBe('parse'); // ports cut
    const tagged = packet({ src: CLIENT, dst: VIP, proto: 'tcp', dport: 80, vlan: 3 });
    expect(decide(s, tagged.subarray(0, 16))).toBe('parse'); // 802.1Q tag cut
    const badIhl = Buffer.from(full);
    badIhl[14] = 0x44;
    expect(decide(s, badIhl)).toBe('parse');
    const badVersion = Buffer.from(full);
    badVersion[14] = 0x65;
    expect(decide(s, badVersion)).toBe('parse');
    const v6 = packet({ src: CLIENT6, dst: VIP6, proto: 'tcp', dport: 443 });
    expect(decide(s, v6.subarray(0, 14 + 39))).toBe('parse');
    const icmp = icmpError({ src: '198.18.9.9', dst: VIP, type: 3, code: 0, quote: Buffer.alloc(0) });
    expect(decide(s, icmp.subarray(0, 14 + 20 + 4))).toBe('parse');
  });
});

describe('reference counting', () => {
  it('two services on one VIP: removing one keeps the VIP (and its ICMP errors) steered', () => {
    const s = new Steering({ netns: ns.name });
    try {
      const quote = ipPacket({ src: VIP, dst: CLIENT, proto: 'udp', sport: 53, dport: 40000 });
      const err = icmpError({ src: '198.18.9.9', dst: VIP, type: 3, code: 3, quote });
      s.addService({ protocol: 'tcp', address: VIP, port: 80 });
      s.addService({ protocol: 'udp', address: VIP, port: 53 });
      s.delService({ protocol: 'tcp', address: VIP, port: 80 });
      expect(decide(s, err)).toBe('steer');
      expect(decide(s, packet({ src: CLIENT, dst: VIP, proto: 'udp', dport: 53 }))).toBe('steer');
      expect(decide(s, packet({ src: CLIENT, dst: VIP, proto: 'tcp', dport: 80 }))).toBe('pass');
      // The same service added twice needs two deletes.
      s.addService({ protocol: 'udp', address: VIP, port: 53 });
      s.delService({ protocol: 'udp', address: VIP, port: 53 });
      expect(decide(s, packet({ src: CLIENT, dst: VIP, proto: 'udp', dport: 53 }))).toBe('steer');
      s.delService({ protocol: 'udp', address: VIP, port: 53 });
      expect(decide(s, packet({ src: CLIENT, dst: VIP, proto: 'udp', dport: 53 }))).toBe('pass');
      expect(decide(s, err)).toBe('pass');
      // Deleting what is not there is no error and changes nothing.
      s.delService({ protocol: 'udp', address: VIP, port: 53 });
      s.delLocal('198.18.77.77');
      s.delPrefix('198.18.0.0/16');
    } finally {
      s.close();
    }
  });

  it('locals and NAT reals count too; a prefix is one entry whatever its host bits', () => {
    const s = new Steering({ netns: ns.name });
    try {
      const reply = packet({ src: NAT_REAL, dst: LOCAL_IN, proto: 'tcp', sport: 8080, dport: 40000, flags: 'SA' });
      s.addNatReal({ protocol: 'tcp', address: NAT_REAL, port: 8080 });
      s.addNatReal({ protocol: 'tcp', address: NAT_REAL, port: 8080 });
      s.addLocal(LOCAL_IN);
      s.addLocal(LOCAL_IN);
      s.delLocal(LOCAL_IN);
      expect(decide(s, reply)).toBe('pass');
      s.delLocal(LOCAL_IN);
      expect(decide(s, reply)).toBe('steer');
      s.delNatReal({ protocol: 'tcp', address: NAT_REAL, port: 8080 });
      expect(decide(s, reply)).toBe('steer');
      s.delNatReal({ protocol: 'tcp', address: NAT_REAL, port: 8080 });
      expect(decide(s, reply)).toBe('pass');

      const inside = packet({ src: CLIENT, dst: '198.18.70.1', proto: 'tcp', dport: 1 });
      s.addPrefix('198.18.70.99/24');
      expect(decide(s, inside)).toBe('steer');
      s.delPrefix('198.18.70.0/24');
      expect(decide(s, inside)).toBe('pass');
    } finally {
      s.close();
    }
  });

  it('a full map says so (LVS_CAPACITY) and keeps what it had', () => {
    const s = new Steering({ netns: ns.name, maxEntries: 2 });
    try {
      s.addService({ protocol: 'tcp', address: VIP, port: 80 });
      s.addService({ protocol: 'tcp', address: VIP, port: 81 });
      expect(() => s.addService({ protocol: 'tcp', address: VIP, port: 82 })).toThrow(expect.objectContaining({ code: 'LVS_CAPACITY' }));
      s.addPrefix('198.18.64.0/18');
      s.addPrefix('198.18.128.0/18');
      expect(() => s.addPrefix('198.18.192.0/18')).toThrow(expect.objectContaining({ code: 'LVS_CAPACITY' }));
      expect(decide(s, packet({ src: CLIENT, dst: VIP, proto: 'tcp', dport: 81 }))).toBe('steer');
      expect(decide(s, packet({ src: CLIENT, dst: VIP, proto: 'tcp', dport: 82 }))).toBe('pass');
      s.delService({ protocol: 'tcp', address: VIP, port: 81 });
      s.addService({ protocol: 'tcp', address: VIP, port: 82 });
      expect(decide(s, packet({ src: CLIENT, dst: VIP, proto: 'tcp', dport: 82 }))).toBe('steer');
    } finally {
      s.close();
    }
  });

  it('bad arguments are refused with a code', () => {
    const s = new Steering({ netns: ns.name });
    try {
      expect(() => s.native.addService(6, 80, new Uint8Array(5))).toThrow(expect.objectContaining({ code: 'LVS_INVALID_ADDRESS' }));
      expect(() => s.native.addPrefix(new Uint8Array(4), 33)).toThrow(expect.objectContaining({ code: 'LVS_INVALID_ARGUMENT' }));
      expect(() => s.addPrefix('198.18.0.0/40')).toThrow(LvsError);
    } finally {
      s.close();
    }
    expect(() => s.addLocal(LOCAL_IN)).toThrow(expect.objectContaining({ code: 'LVS_CLOSED' }));
  });
});

describe('attachment', () => {
  it('attaches native and generic on veth; close() leaves no program', () => {
    const s = new Steering({ netns: ns.name });
    try {
      expect(s.attach(ifindex, 'native')).toBe('native');
      expect(xdpQuery(ns.name, ifindex)).toMatchObject({ name: 'lvsd_steer', mode: 'native' });
      expect(s.mode(ifindex)).toBe('native');
      expect(s.attach(ifindex, 'generic')).toBe('generic');
      expect(xdpQuery(ns.name, ifindex)).toMatchObject({ name: 'lvsd_steer', mode: 'generic' });
      expect(s.attach(ifindex, 'auto')).toBe('generic'); // already attached: kept as it is
      s.detach(ifindex);
      expect(xdpQuery(ns.name, ifindex)).toBeNull();
      expect(s.mode(ifindex)).toBeNull();
      expect(s.attach(ifindex, 'auto')).toBe('native'); // veth has native XDP
      expect(xdpQuery(ns.name, ifindex)).toMatchObject({ name: 'lvsd_steer', mode: 'native' });
    } finally {
      s.close();
    }
    expect(xdpQuery(ns.name, ifindex)).toBeNull();
  });

  it("'auto' falls back to generic where the driver has no native XDP (loopback)", () => {
    const s = new Steering({ netns: ns.name });
    try {
      expect(() => s.attach(1, 'native')).toThrow(expect.objectContaining({ code: 'LVS_BPF' }));
      expect(s.attach(1, 'auto')).toBe('generic');
      expect(xdpQuery(ns.name, 1)).toMatchObject({ name: 'lvsd_steer', mode: 'generic' });
    } finally {
      s.close();
    }
    expect(xdpQuery(ns.name, 1)).toBeNull();
  });

  it('an unknown interface, a taken interface and an unknown namespace give LVS_* errors', () => {
    const s = new Steering({ netns: ns.name });
    const other = new Steering({ netns: ns.name });
    try {
      expect(() => s.attach(99999, 'auto')).toThrow(expect.objectContaining({ code: 'LVS_NO_SUCH_DEVICE' }));
      expect(s.attach(ifindex, 'native')).toBe('native');
      // A second program cannot take an interface that has one.
      expect(() => other.attach(ifindex, 'native')).toThrow(expect.objectContaining({ code: 'LVS_BPF' }));
    } finally {
      s.close();
      other.close();
    }
    const lost = new Steering({ netns: 'lvsd-no-such-namespace' });
    try {
      expect(() => lost.attach(1, 'auto')).toThrow(expect.objectContaining({ code: 'LVS_NETNS' }));
    } finally {
      lost.close();
    }
  });

  it('counts real traffic while attached (ARP and ping pass to the kernel, which answers)', () => {
    const s = new Steering({ netns: ns.name });
    try {
      ns.ip('addr', 'add', '198.18.30.1/24', 'dev', 'st0');
      peer.ip('addr', 'add', '198.18.30.2/24', 'dev', 'st1');
      s.attach(ifindex, 'native');
      const before = s.stats();
      peer.exec('ping', '-c', '2', '-i', '0.2', '-W', '2', '198.18.30.1');
      const after = s.stats();
      expect(after.passed).toBeGreaterThan(before.passed);
      expect(after.redirected).toBe(0);
    } finally {
      s.close();
    }
  });
});
