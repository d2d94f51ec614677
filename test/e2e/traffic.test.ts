/**
 * Real traffic through the director, AF_XDP backend: LVS-NAT, LVS-DR and LVS-TUN, IPv4 and
 * IPv6, TCP (curl and Node clients) and UDP, against Node servers in real namespaces.
 */
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Director } from '../../src/director/director.js';
import type { DirectorService } from '../../src/director/types.js';
import type { ForwardingMethod } from '../../src/dataplane/types.js';
import { blobSha256 } from '../../src/lab/blob.js';
import type { Lab } from '../../src/lab/lab.js';
import { httpLoad, makeLab, startDirector, udpLoad, url, type memoryLogger } from './setup.js';

const METHODS: Array<{ method: ForwardingMethod; vip: number; reals: string[]; scheduler: 'wrr' | 'rr' }> = [
  { method: 'nat', vip: 0, reals: ['n1', 'n2', 'n3'], scheduler: 'wrr' },
  { method: 'direct', vip: 1, reals: ['d1', 'd2', 'd3'], scheduler: 'rr' },
  { method: 'tunnel', vip: 2, reals: ['t1', 't2'], scheduler: 'rr' },
];
const WEIGHTS: Record<string, number> = { n1: 1, n2: 2, n3: 3 };

let lab: Lab;
let director: Director;
let log: ReturnType<typeof memoryLogger>;

function services(family: 4 | 6): DirectorService[] {
  return METHODS.flatMap(({ method, vip, reals, scheduler }) => {
    const address = family === 4 ? lab.vip4(vip) : lab.vip6(vip);
    const rs = reals.map((n) => {
      const r = lab.real(n);
      return { address: family === 4 ? r.address4 : r.address6!, weight: WEIGHTS[n] ?? 1, method };
    });
    return [
      { protocol: 'tcp' as const, address, port: 80, scheduler, reals: rs },
      { protocol: 'udp' as const, address, port: 7, scheduler: 'rr' as const, reals: rs },
    ];
  });
}

beforeAll(async () => {
  lab = await makeLab({
    reals: [
      { name: 'n1', method: 'nat' },
      { name: 'n2', method: 'nat' },
      { name: 'n3', method: 'nat' },
      { name: 'd1', method: 'direct' },
      { name: 'd2', method: 'direct' },
      { name: 'd3', method: 'direct' },
      { name: 't1', method: 'tunnel' },
      { name: 't2', method: 'tunnel' },
    ],
  });
  await lab.startServers();
  ({ director, log } = await startDirector(lab, {
    io: 'xdp',
    services: [...services(4), ...services(6)],
    natRouters: [
      { address: lab.natRouter4, device: 'priv' },
      { address: lab.natRouter6, device: 'priv' },
    ],
  }));
});

describe('the director on AF_XDP', () => {
  it('reports its backend in the log and in its status', () => {
    const status = director.status();
    expect(status.io?.kind).toBe('xdp');
    expect(status.io?.mode).toMatch(/^xdp-(native|generic)/);
    expect(status.interfaces.map((i) => i.name).sort()).toEqual(['priv', 'pub']);
    expect(log.lines.some((l) => l.obj.event === 'io' && /^xdp/.test(String(l.obj.backend)))).toBe(true);
    // Every real's MAC address came from the kernel's neighbour table.
    expect(status.reals.every((r) => /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(r.mac ?? ''))).toBe(true);
    for (const r of status.reals) expect(r.mac).toBe(lab.real(realName(r.address)).mac);
  });
});

function realName(address: string): string {
  return lab.reals.find((r) => r.address4 === address || r.address6 === address)!.name;
}

describe.each(METHODS.flatMap((m) => [4, 6].map((family) => ({ ...m, family: family as 4 | 6 }))))('$method IPv$family', ({ vip, reals, scheduler, family }) => {
  const vipAddress = () => (family === 4 ? lab.vip4(vip) : lab.vip6(vip));
  const clientAddress = () => (family === 4 ? lab.client.address4 : lab.client.address6!);

  it('curl reaches a real through the VIP, and the real sees the true client address', async () => {
    const r = await lab.curl(url(vipAddress()));
    expect(r.status).toBe(200);
    const [name, seen] = r.body.trim().split(' ');
    expect(reals).toContain(name);
    expect(seen).toBe(clientAddress());
  });

  it(`spreads connections as ${scheduler} says`, async () => {
    const period = reals.reduce((s, n) => s + (scheduler === 'wrr' ? WEIGHTS[n]! : 1), 0);
    const r = await httpLoad(lab, { url: url(vipAddress()), count: period * 5, concurrency: 1 });
    expect(r.failed).toBe(0);
    const expected = Object.fromEntries(reals.map((n) => [n, 5 * (scheduler === 'wrr' ? WEIGHTS[n]! : 1)]));
    expect(r.byReal).toEqual(expected);
    expect(r.seen.every((s) => s.addr === clientAddress())).toBe(true);
  });

  it('a 10 MB transfer arrives intact', async () => {
    const size = 10 * 1024 * 1024;
    const r = await lab.curl(url(vipAddress(), `/blob?size=${size}&seed=${vip * 10 + family}`));
    expect(r.status).toBe(200);
    expect(r.bytes.length).toBe(size);
    expect(createHash('sha256').update(r.bytes).digest('hex')).toBe(blobSha256(size, vip * 10 + family));
  });

  it('1000 concurrent connections all complete', async () => {
    const r = await httpLoad(lab, { url: url(vipAddress()), path: '/slow?seconds=1', count: 1000, concurrency: 1000, expectBytes: 10, timeoutMs: 30_000 });
    expect(r.errors).toEqual({});
    expect(r.ok).toBe(1000);
    expect(Object.keys(r.byReal).sort()).toEqual([...reals].sort());
  });

  it('UDP: every datagram is answered from the VIP, spread round-robin', async () => {
    const r = await udpLoad(lab, { address: vipAddress(), port: 7, count: reals.length * 4 });
    expect(r.failed).toBe(0);
    expect(r.byReal).toEqual(Object.fromEntries(reals.map((n) => [n, 4])));
    for (const reply of r.replies) {
      expect(reply.from).toBe(vipAddress());
      expect(reply.addr).toBe(clientAddress());
    }
  });
});

describe('path MTU in tunnel mode', () => {
  it('a full-size packet that no longer fits once encapsulated gets the ICMP error, and the upload completes', async () => {
    const before = director.dataplane!.counters();
    const body = Buffer.alloc(2 * 1024 * 1024, 7);
    for (const family of [4, 6] as const) {
      const vip = family === 4 ? lab.vip4(2) : lab.vip6(2);
      const r = await lab.run(lab.client.ns, 'curl', ['-sS', '--max-time', '60', '--data-binary', '@-', '-H', 'content-type: application/octet-stream', url(vip, '/sha256')], { input: body });
      expect(r.stdout.trim()).toBe(createHash('sha256').update(body).digest('hex'));
    }
    const after = director.dataplane!.counters();
    expect(after.drop_too_big! - (before.drop_too_big ?? 0)).toBeGreaterThan(0);
    expect(after.icmp_sent! - (before.icmp_sent ?? 0)).toBeGreaterThan(0);
  });
});
