/**
 * Passive FTP through the director with Piranha's recipe: firewall mark 21 on the VIP's ports
 * 21 and 10000-20000, one persistent firewall-mark service, LVS-DR, vsftpd on the reals with
 * pasv_address = VIP, and curl as the client. Persistence is what makes it work: the data
 * connection (to a port from 10000-20000) must reach the real that opened it in its 227 reply.
 */
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Director } from '../../src/director/director.js';
import type { FtpServer } from '../../src/lab/ftp.js';
import type { Lab } from '../../src/lab/lab.js';
import { makeLab, startDirector } from './setup.js';

let lab: Lab;
let director: Director;
const servers: FtpServer[] = [];

beforeAll(async () => {
  lab = await makeLab({ reals: [{ name: 'f1', method: 'direct' }, { name: 'f2', method: 'direct' }] });
  for (const name of ['f1', 'f2']) servers.push(await lab.startFtp(name, { pasvAddress: lab.vip4(0) }));
  const vip = lab.vip4(0);
  ({ director } = await startDirector(lab, {
    io: 'xdp',
    marks: [
      { mark: 21, protocol: 'tcp', destination: vip, ports: 21 },
      { mark: 21, protocol: 'tcp', destination: vip, ports: [10000, 20000] },
    ],
    services: [
      {
        fwmark: 21,
        family: 'ipv4',
        addresses: [vip],
        scheduler: 'rr',
        persistence: 360,
        reals: lab.reals.map((r) => ({ address: r.address4, method: 'direct' as const })),
      },
    ],
  }));
});

describe('passive FTP in DR mode (Piranha: fwmark 21 on 21 and 10000-20000, persistent)', () => {
  it('downloads the file intact, from several client addresses, each staying on one real', async () => {
    const expected = createHash('sha256').update(servers[0]!.content).digest('hex');
    const sources = lab.client.extra4.slice(0, 4);
    for (const source of sources) {
      for (let i = 0; i < 2; i++) {
        const r = await lab.curl(`ftp://${lab.vip4(0)}/${servers[0]!.fileName}`, ['--ftp-pasv', '--interface', source]);
        expect(createHash('sha256').update(r.bytes).digest('hex')).toBe(expected);
      }
    }
    // One template per client address, and every connection of a client went to its real.
    const conns = await director.dataplane!.listConnections();
    const templates = conns.filter((c) => c.template);
    expect(templates.map((t) => t.client.address).sort()).toEqual([...sources].sort());
    for (const c of conns.filter((x) => !x.template)) {
      const t = templates.find((x) => x.client.address === c.client.address)!;
      expect(c.destination.address).toBe(t.destination.address);
    }
    // Both control (21) and data (10000-20000) connections went through the service.
    const ports = conns.filter((c) => !c.template).map((c) => c.virtual.port);
    expect(ports).toContain(21);
    expect(ports.some((p) => p >= 10000 && p <= 20000)).toBe(true);
    // rr over the templates: both reals got clients.
    expect(new Set(templates.map((t) => t.destination.address)).size).toBe(2);
  });
});
