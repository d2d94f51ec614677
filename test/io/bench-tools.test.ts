/**
 * The network benchmarks' own tools against the real kernel (bindings/bench.cc,
 * native/io/gen.cpp): the packet generator sends what it says it sent, the counting XDP sink
 * counts exactly what reaches it (and only UDP to its own MAC), and the HTTP responder answers.
 *
 *   gen (198.18.0.2) eth0 --veth-- eth0 sink (198.18.0.3)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { native, type NativeBenchSink } from '../../src/dataplane/native.js';
import { xdpQuery } from '../../src/io/steering.js';
import { packet } from '../../src/lab/frames.js';
import { Netns, cleanupOnExit, removeAllNamespaces, vethPair } from '../../src/lab/netns.js';

cleanupOnExit();

const GEN = '198.18.0.2';
const SINK = '198.18.0.3';

let gen: Netns;
let sinkNs: Netns;
let sinkIfindex: number;
let sinkMac: string;
let genMac: string;
const sinks: NativeBenchSink[] = [];

function link(ns: Netns, name: string): { ifindex: number; mac: string } {
  const l = (JSON.parse(ns.ip('-j', 'link', 'show', 'dev', name)) as Array<{ ifindex: number; address: string }>)[0]!;
  return { ifindex: l.ifindex, mac: l.address };
}

/** 60-byte UDP frames (64 on the wire) to dstMac, one source port each. */
function udpFrames(n: number, dstMac: string): Buffer[] {
  return Array.from({ length: n }, (_, i) =>
    packet({ srcMac: genMac, dstMac, src: GEN, dst: SINK, proto: 'udp', sport: 10_000 + i, dport: 9, payload: Buffer.alloc(18) }),
  );
}

function sink(): NativeBenchSink {
  const s = new (native().BenchSink)();
  sinks.push(s);
  return s;
}

beforeAll(() => {
  gen = Netns.create('bgen');
  sinkNs = Netns.create('bsink');
  vethPair(gen, 'eth0', sinkNs, 'eth0');
  gen.ip('address', 'add', `${GEN}/24`, 'dev', 'eth0');
  sinkNs.ip('address', 'add', `${SINK}/24`, 'dev', 'eth0');
  ({ ifindex: sinkIfindex, mac: sinkMac } = link(sinkNs, 'eth0'));
  genMac = link(gen, 'eth0').mac;
});

afterAll(() => {
  for (const s of sinks) s.close();
  removeAllNamespaces();
});

describe('generator and sink', () => {
  let s: NativeBenchSink;

  beforeAll(() => {
    s = sink();
    expect(s.attach(sinkNs.name, sinkIfindex, 'native')).toBe('native');
  });

  it('the sink is attached as a native XDP program of its own name', () => {
    expect(xdpQuery(sinkNs.name, sinkIfindex)).toMatchObject({ name: 'lvsd_bench_sink', mode: 'native' });
  });

  it('a fixed count: every frame the generator says it sent is counted by the sink, once', async () => {
    const before = s.count();
    const frames = udpFrames(256, sinkMac);
    const r = await native().benchGenerate({ netns: gen.name, ifname: 'eth0', frames, count: 20_000, batch: 64 });
    expect(r.sent).toBe(20_000);
    expect(r.calls).toBeGreaterThanOrEqual(20_000 / 64);
    const after = s.count();
    expect(after.packets - before.packets).toBe(20_000);
    expect(after.bytes - before.bytes).toBe(20_000 * 60);
    expect(after.foreign - before.foreign).toBe(0);
  });

  it('a count that is not a multiple of the batch or of the frame set is still exact', async () => {
    const before = s.count();
    const r = await native().benchGenerate({ netns: gen.name, ifname: 'eth0', frames: udpFrames(7, sinkMac), count: 1001, batch: 32 });
    expect(r.sent).toBe(1001);
    expect(s.count().packets - before.packets).toBe(1001);
  });

  it('for a time: runs about that long and the sink sees exactly what was sent', async () => {
    const before = s.count();
    const r = await native().benchGenerate({ netns: gen.name, ifname: 'eth0', frames: udpFrames(64, sinkMac), seconds: 0.3, cpu: 0 });
    expect(r.seconds).toBeGreaterThanOrEqual(0.3);
    expect(r.sent).toBeGreaterThan(0);
    expect(s.count().packets - before.packets).toBe(r.sent);
  });

  it('UDP for another MAC is counted apart (foreign) and not as received', async () => {
    const before = s.count();
    const r = await native().benchGenerate({ netns: gen.name, ifname: 'eth0', frames: udpFrames(4, '02:00:00:00:aa:01'), count: 500 });
    expect(r.sent).toBe(500);
    const after = s.count();
    expect(after.foreign - before.foreign).toBe(500);
    expect(after.packets - before.packets).toBe(0);
  });

  it('everything that is not UDP passes to the kernel: the host behind the sink still answers pings', () => {
    const before = s.count();
    gen.exec('ping', '-c', '3', '-i', '0.2', '-W', '2', SINK);
    const after = s.count();
    // Three echo requests at least (ARP too, unless it was resolved already).
    expect(after.passed - before.passed).toBeGreaterThanOrEqual(3);
    expect(after.packets - before.packets).toBe(0);
  });

  it('close() detaches it', () => {
    const t = sink();
    const peer = link(gen, 'eth0');
    expect(t.attach(gen.name, peer.ifindex, 'auto')).toBe('native');
    expect(xdpQuery(gen.name, peer.ifindex)?.name).toBe('lvsd_bench_sink');
    t.close();
    expect(xdpQuery(gen.name, peer.ifindex)).toBeNull();
    expect(t.count()).toEqual({ packets: 0, bytes: 0, foreign: 0, passed: 0 });
  });
});

describe('errors carry codes', () => {
  it('the generator: unknown device, unknown namespace, bad arguments', async () => {
    const frames = udpFrames(1, sinkMac);
    await expect(native().benchGenerate({ netns: gen.name, ifname: 'nosuch0', frames, count: 1 })).rejects.toMatchObject({ code: 'LVS_NO_SUCH_DEVICE' });
    await expect(native().benchGenerate({ netns: 'lvsd-no-such-ns', ifname: 'eth0', frames, count: 1 })).rejects.toMatchObject({ code: 'LVS_NETNS', errno: 'ENOENT' });
    await expect(native().benchGenerate({ netns: gen.name, ifname: 'eth0', frames: [], count: 1 })).rejects.toMatchObject({ code: 'LVS_INVALID_ARGUMENT' });
    await expect(native().benchGenerate({ netns: gen.name, ifname: 'eth0', frames: [Buffer.alloc(10)], count: 1 })).rejects.toMatchObject({ code: 'LVS_INVALID_ARGUMENT' });
    await expect(native().benchGenerate({ netns: gen.name, ifname: 'eth0', frames })).rejects.toMatchObject({ code: 'LVS_INVALID_ARGUMENT' });
    expect(() => native().benchGenerate({ netns: gen.name, ifname: 'eth0', frames, count: 1, batch: 0 })).toThrow(expect.objectContaining({ code: 'LVS_INVALID_ARGUMENT' }));
  });

  it('the sink: unknown device, attached twice', () => {
    expect(() => sink().attach(sinkNs.name, 999_999)).toThrow(expect.objectContaining({ code: 'LVS_NO_SUCH_DEVICE' }));
    const s = sinks[0]!;
    expect(() => s.attach(sinkNs.name, sinkIfindex)).toThrow(expect.objectContaining({ code: 'LVS_MODE' }));
  });
});

describe('HTTP responder', () => {
  it('answers every request with its body and closes; a connection without a request counts as aborted', async () => {
    const R = native().BenchResponder;
    const r = new R({ netns: sinkNs.name, port: 8080, body: 'sink ok\n' });
    try {
      for (let i = 0; i < 5; i++) {
        expect(gen.exec('curl', '-sS', '--max-time', '5', `http://${SINK}:8080/any/path`)).toBe('sink ok\n');
      }
      const head = gen.exec('curl', '-sS', '-i', '--max-time', '5', `http://${SINK}:8080/`);
      expect(head).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(head).toMatch(/\r\nContent-Length: 8\r\n/);
      expect(head).toMatch(/\r\nConnection: close\r\n/);
      // Connect and close without a request.
      gen.exec('bash', '-c', `exec 3<>/dev/tcp/${SINK}/8080; exec 3>&-`);
      await waitFor(() => r.stats().aborted >= 1);
      expect(r.stats()).toEqual({ responses: 6, aborted: 1 });
      // A second responder on the same port cannot listen.
      expect(() => new R({ netns: sinkNs.name, port: 8080, body: 'x' })).toThrow(expect.objectContaining({ code: 'LVS_IO_INIT', errno: 'EADDRINUSE' }));
    } finally {
      r.close();
    }
    expect(() => gen.exec('curl', '-sS', '--max-time', '2', `http://${SINK}:8080/`)).toThrow();
  });
});

async function waitFor(ok: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
