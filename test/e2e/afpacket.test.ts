/**
 * The AF_PACKET backend (hosts where XDP cannot be used): the same director, its packets
 * read from TPACKET_V3 rings, the kernel's own copy of them dropped by an nftables netdev
 * table that lvsd installs and removes.
 */
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Director } from '../../src/director/director.js';
import { blobSha256 } from '../../src/lab/blob.js';
import type { Lab } from '../../src/lab/lab.js';
import { native } from '../../src/dataplane/native.js';
import { parseAddress } from '../../src/net/address.js';
import { httpLoad, makeLab, startDirector, stopDirector, udpLoad, url } from './setup.js';

let lab: Lab;
let director: Director;

beforeAll(async () => {
  lab = await makeLab({ reals: [{ name: 'n1', method: 'nat' }, { name: 'n2', method: 'nat' }, { name: 'd1', method: 'direct' }, { name: 'd2', method: 'direct' }] });
  await lab.startServers();
  const nat = (family: 4 | 6) => ['n1', 'n2'].map((n) => ({ address: family === 4 ? lab.real(n).address4 : lab.real(n).address6!, method: 'nat' as const }));
  const dr = ['d1', 'd2'].map((n) => ({ address: lab.real(n).address4, method: 'direct' as const }));
  ({ director } = await startDirector(lab, {
    io: 'packet',
    services: [
      { protocol: 'tcp', address: lab.vip4(0), port: 80, scheduler: 'rr', reals: nat(4) },
      { protocol: 'tcp', address: lab.vip6(0), port: 80, scheduler: 'rr', reals: nat(6) },
      { protocol: 'udp', address: lab.vip4(1), port: 7, scheduler: 'rr', reals: dr },
    ],
    natRouters: [
      { address: lab.natRouter4, device: 'priv' },
      { address: lab.natRouter6, device: 'priv' },
    ],
  }));
});

describe('the director on AF_PACKET', () => {
  it('says which backend it uses, and has its suppression table in place', () => {
    expect(director.status().io?.kind).toBe('packet');
    expect(director.status().io?.mode).toBe('packet');
    expect(lab.director.ns.exec('nft', 'list', 'tables')).toContain('netdev lvsd');
  });

  it('NAT over IPv4 and IPv6: the real sees the client, connections alternate, a 10 MB download is intact', async () => {
    for (const family of [4, 6] as const) {
      const vip = family === 4 ? lab.vip4(0) : lab.vip6(0);
      const client = family === 4 ? lab.client.address4 : lab.client.address6!;
      const r = await httpLoad(lab, { url: url(vip), count: 20, concurrency: 1 });
      expect(r.failed).toBe(0);
      expect(r.byReal).toEqual({ n1: 10, n2: 10 });
      expect(r.seen.every((s) => s.addr === client)).toBe(true);
      const size = 10 * 1024 * 1024;
      const blob = await lab.curl(url(vip, `/blob?size=${size}&seed=${family}`));
      expect(createHash('sha256').update(blob.bytes).digest('hex')).toBe(blobSha256(size, family));
    }
  });

  it('DR over UDP: answers come from the VIP', async () => {
    const r = await udpLoad(lab, { address: lab.vip4(1), port: 7, count: 8 });
    expect(r.failed).toBe(0);
    expect(r.byReal).toEqual({ d1: 4, d2: 4 });
    expect(r.replies.every((x) => x.from === lab.vip4(1) && x.addr === lab.client.address4)).toBe(true);
  });

  it('the kernel no longer answers for what lvsd directs, but still for everything else', async () => {
    // Pings and a non-VIP port are the kernel's.
    expect((await lab.run(lab.client.ns, 'ping', ['-c', '1', '-W', '2', lab.vip4(0)])).code).toBe(0);
    const closed = await lab.curl(`http://${lab.vip4(0)}:81/`, [], { check: false });
    expect(closed.stderr).toMatch(/curl: \(7\) Failed to connect/); // refused by the kernel's RST
    // Had the kernel seen the VIP's port 80 traffic it would have reset these connections.
    const r = await httpLoad(lab, { url: url(lab.vip4(0)), path: '/slow?seconds=1', count: 200, concurrency: 200, expectBytes: 10 });
    expect(r.ok).toBe(200);
  });

  it('stopping removes the suppression table and the addresses', async () => {
    await stopDirector(director);
    expect(lab.director.ns.exec('nft', 'list', 'tables')).not.toContain('lvsd');
    expect(lab.director.ns.ip('-j', 'addr', 'show')).not.toContain(`"${lab.vip4(0)}"`);
  });

  it('io "auto" falls back to AF_PACKET, and says why, when XDP cannot be had (another program holds the device)', async () => {
    const ns = lab.director.ns.name;
    const pub = JSON.parse(lab.director.ns.ip('-j', 'link', 'show', 'pub'))[0].ifindex as number;
    // Someone else's XDP program on pub (attached through netlink, as most tools do).
    native().decapAttach(ns, pub, [parseAddress('198.18.0.250').bytes], 'generic');
    try {
      const { director: auto, log } = await startDirector(lab, {
        io: 'auto',
        services: [{ protocol: 'tcp', address: lab.vip4(0), port: 80, scheduler: 'rr', reals: [{ address: lab.real('n1').address4, method: 'nat' }] }],
        natRouters: [{ address: lab.natRouter4, device: 'priv' }],
      });
      expect(auto.status().io?.kind).toBe('packet');
      const warning = log.lines.find((l) => l.obj.event === 'xdp-unavailable');
      expect(warning?.level).toBe('warn');
      expect(warning?.msg).toMatch(/AF_XDP unavailable \(.+\); using AF_PACKET/);
      expect((await lab.curl(url(lab.vip4(0)))).body).toBe(`n1 ${lab.client.address4}\n`);
      await stopDirector(auto);
      // The other program is still there: lvsd removed only what it added.
      expect(native().xdpQuery(ns, pub)?.name).toBe('lvsd_decap');
    } finally {
      native().decapDetach(ns, pub);
    }
  });
});
