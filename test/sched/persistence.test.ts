import { describe, expect, it } from 'vitest';
import { formatConnections, formatPersistentConnections } from '../../src/cli/format.js';
import { packet } from '../../src/lab/frames.js';
import type { Dataplane, ServiceKey } from '../../src/index.js';
import { INSIDE, REALS4, REAL_MACS, VIP4, manualDataplane, through } from '../helpers/setup.js';

const T0 = 1_000_000;

/** A service with reals R1..Rn by direct routing (identified by their MAC addresses). */
function service(dp: Dataplane, key: ServiceKey, n = 3, extra: Record<string, unknown> = {}) {
  dp.addService({ ...key, scheduler: 'rr', ...extra });
  for (let i = 0; i < n; i++) dp.addReal(key, { address: REALS4[i]!, method: 'direct', interface: INSIDE, mac: REAL_MACS[i]! });
}

/** Open a connection (SYN) and return the real it went to, or null. */
async function open(dp: Dataplane, src: string, sport: number, dport = 80, dst = VIP4, proto: 'tcp' | 'udp' = 'tcp'): Promise<string | null> {
  const [o] = await through(dp, [packet({ src, dst, proto, sport, dport, flags: 'S' })]);
  if (!o || o.action !== 'tx' || o.proto === 1) return null;
  return REALS4[REAL_MACS.indexOf(o.dstMac)]!;
}
async function close(dp: Dataplane, src: string, sport: number, dport = 80, dst = VIP4) {
  await through(dp, [packet({ src, dst, proto: 'tcp', sport, dport, flags: 'R' })]);
}

describe('persistence (ipvsadm -p, lvs.cf persistent =)', () => {
  it('sends a client /24 to the same real within the timeout, and anywhere after it', async () => {
    const dp = manualDataplane();
    const svc: ServiceKey = { protocol: 'tcp', address: VIP4, port: 80 };
    service(dp, svc, 3, { persistence: { timeout: 300, netmask: '255.255.255.0' } });
    const first = await open(dp, '198.18.7.1', 1000);
    // Same /24, other hosts and ports: same real, although rr would move on.
    for (let i = 0; i < 5; i++) expect(await open(dp, `198.18.7.${10 + i}`, 2000 + i)).toBe(first);
    // Another /24 is scheduled afresh (rr moves on).
    expect(await open(dp, '198.18.8.1', 1000)).not.toBe(first);
    // After the template's timeout (and its connections' end) the client is scheduled anew.
    for (let i = 0; i < 5; i++) await close(dp, `198.18.7.${10 + i}`, 2000 + i);
    await close(dp, '198.18.7.1', 1000);
    dp.setClock(T0 + 301_000);
    dp.poll();
    const after = await open(dp, '198.18.7.99', 3000);
    expect(after).not.toBeNull();
    expect(after).not.toBe(first);
  });

  it('keeps a template while a connection it controls lives, even past its timeout', async () => {
    const dp = manualDataplane();
    const svc: ServiceKey = { protocol: 'tcp', address: VIP4, port: 80 };
    service(dp, svc, 2, { persistence: 60 });
    const real = await open(dp, '198.18.7.1', 1000);
    await through(dp, [packet({ src: '198.18.7.1', dst: VIP4, proto: 'tcp', sport: 1000, dport: 80, flags: 'A' })]);
    dp.setClock(T0 + 200_000); // template timeout 60 s passed; the ESTABLISHED connection lives (900 s)
    dp.poll();
    const conns = await dp.listConnections();
    expect(conns.map((c) => [c.protocol, c.template, c.state])).toEqual(expect.arrayContaining([['TCP', true, 'ASSURED'], ['TCP', false, 'ESTABLISHED']]));
    expect(await open(dp, '198.18.7.1', 1001)).toBe(real);
    // The template outlives its last connection by at most its timeout (plus IPVS's 60 s retry).
    await close(dp, '198.18.7.1', 1000);
    await close(dp, '198.18.7.1', 1001);
    dp.setClock(T0 + 200_000 + 11_000 + 60_000);
    dp.poll();
    dp.setClock(T0 + 200_000 + 11_000 + 60_000 + 60_000);
    dp.poll();
    expect((await dp.listConnections()).filter((c) => c.template)).toEqual([]);
    expect(dp.getService(svc).reals.map((r) => r.persistentConnections)).toEqual([0, 0]);
  });

  it('is shown as ipvsadm shows it: PersistConn counts and template rows', async () => {
    const dp = manualDataplane();
    const svc: ServiceKey = { protocol: 'tcp', address: VIP4, port: 80 };
    service(dp, svc, 1, { persistence: { timeout: 360, netmask: 24 } });
    await open(dp, '198.18.7.1', 1000);
    await open(dp, '198.18.7.2', 1001);
    expect(formatPersistentConnections(dp.listServices(), { tableSize: 4096 }).split('\n').slice(3, 5)).toEqual([
      'TCP  198.18.0.10:80 rr persistent 360 mask 255.255.255.0',
      '  -> 198.19.0.11:80               1         1           2          0         ',
    ]);
    const rows = formatConnections((await dp.listConnections()).sort((a, b) => Number(b.template) - Number(a.template))).split('\n');
    expect(rows[2]).toBe('TCP 06:00  NONE        198.18.7.0:0       198.18.0.10:80     198.19.0.11:80');
  });

  it('of a firewall-mark service bundles ports: 80 and 443 of a client go to one real, keeping the port', async () => {
    const dp = manualDataplane();
    const fwm: ServiceKey = { fwmark: 80 };
    dp.addService({ ...fwm, scheduler: 'rr', persistence: 300 });
    for (let i = 0; i < 3; i++) dp.addReal(fwm, { address: REALS4[i]!, port: 0, method: 'direct', interface: INSIDE, mac: REAL_MACS[i]! });
    dp.setMarkRules([
      { mark: 80, protocol: 'tcp', destination: VIP4, ports: 80 },
      { mark: 80, protocol: 'tcp', destination: VIP4, ports: 443 },
    ]);
    for (let c = 1; c <= 6; c++) {
      const src = `198.18.9.${c}`;
      const web = await open(dp, src, 5000, 80);
      const tls = await open(dp, src, 5001, 443);
      expect(tls).toBe(web);
    }
    const conns = await dp.listConnections();
    const tls = conns.find((x) => !x.template && x.virtual.port === 443)!;
    expect(tls.destination.port).toBe(443); // the client's destination port, as IPVS keeps it
    const template = conns.find((x) => x.template)!;
    expect(template).toMatchObject({ protocol: 'IP', virtual: { address: '0.0.0.80', port: 0 }, destination: { port: 0 } });
    // Unmarked traffic to the VIP (port 22) is not the service's.
    const [ssh] = await through(dp, [packet({ src: '198.18.9.1', dst: VIP4, proto: 'tcp', sport: 5002, dport: 22, flags: 'S' })]);
    expect(ssh!.action).toBe('pass');
  });

  it("follows Piranha's FTP recipe: mark 21 on port 21 and the passive range", async () => {
    const dp = manualDataplane();
    const ftp: ServiceKey = { fwmark: 21 };
    dp.addService({ ...ftp, scheduler: 'wlc', persistence: { timeout: 360 } });
    for (let i = 0; i < 3; i++) dp.addReal(ftp, { address: REALS4[i]!, port: 0, method: 'direct', interface: INSIDE, mac: REAL_MACS[i]! });
    dp.setMarkRules([
      { mark: 21, protocol: 'tcp', destination: VIP4, ports: 21 },
      { mark: 21, protocol: 'tcp', destination: VIP4, ports: [10000, 20000] },
    ]);
    const control = await open(dp, '198.18.9.7', 40000, 21);
    for (const p of [10000, 15123, 20000]) expect(await open(dp, '198.18.9.7', 40001 + p, p)).toBe(control);
    expect(await open(dp, '198.18.9.7', 40002, 20001)).toBeNull(); // outside the range: not the service's
  });
});

describe('template and connection expiry options', () => {
  it('expire_quiescent_template: a quiesced real stops binding persistent clients only when asked', async () => {
    for (const expire of [false, true]) {
      const dp = manualDataplane();
      const svc: ServiceKey = { protocol: 'tcp', address: VIP4, port: 80 };
      service(dp, svc, 2, { persistence: 300 });
      dp.setBehaviour({ expireQuiescentTemplate: expire });
      const real = (await open(dp, '198.18.7.1', 1000))!;
      dp.editReal(svc, { address: real }, { weight: 0 });
      const again = await open(dp, '198.18.7.1', 1001);
      if (expire) expect(again).not.toBe(real);
      else expect(again).toBe(real); // IPVS's default: persistent clients keep landing on it
    }
  });

  it('expire_nodest_conn: a connection of a deleted real is dropped, or with the option rescheduled', async () => {
    for (const expire of [false, true]) {
      const dp = manualDataplane();
      const svc: ServiceKey = { protocol: 'udp', address: VIP4, port: 53 };
      dp.addService({ ...svc, scheduler: 'rr' });
      for (let i = 0; i < 2; i++) dp.addReal(svc, { address: REALS4[i]!, method: 'direct', interface: INSIDE, mac: REAL_MACS[i]! });
      dp.setBehaviour({ expireNodestConn: expire });
      const first = await open(dp, '198.18.7.1', 1000, 53, VIP4, 'udp');
      dp.deleteReal(svc, { address: first! });
      const next = await open(dp, '198.18.7.1', 1000, 53, VIP4, 'udp');
      expect(next).toBe(expire ? REALS4.find((r) => r !== first && REALS4.indexOf(r) < 2) : null);
      expect(dp.counters().drop_dest_gone).toBe(expire ? 0 : 1);
    }
  });
});
