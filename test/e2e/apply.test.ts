/**
 * Changing a running director: apply() validates the whole configuration, then applies only
 * the difference. What did not change, and its connections, is not touched; a rejected
 * configuration changes nothing.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Director } from '../../src/director/director.js';
import type { DirectorConfig } from '../../src/director/types.js';
import type { Lab } from '../../src/lab/lab.js';
import { httpLoad, makeLab, startDirector, url } from './setup.js';

let lab: Lab;
let director: Director;

function base(): DirectorConfig {
  return {
    io: 'xdp',
    announce: { count: 1 },
    services: [
      { protocol: 'tcp', address: lab.vip4(0), port: 80, scheduler: 'rr', reals: ['n1', 'n2'].map((n) => ({ address: lab.real(n).address4, method: 'nat' as const })) },
      { protocol: 'tcp', address: lab.vip4(1), port: 80, scheduler: 'rr', reals: [{ address: lab.real('d1').address4, method: 'direct' as const }] },
    ],
    natRouters: [{ address: lab.natRouter4, device: 'priv' }],
  };
}

beforeAll(async () => {
  lab = await makeLab({ reals: [{ name: 'n1', method: 'nat' }, { name: 'n2', method: 'nat' }, { name: 'n3', method: 'nat' }, { name: 'd1', method: 'direct' }, { name: 'd2', method: 'direct' }] });
  await lab.startServers();
  ({ director } = await startDirector(lab, base()));
});

describe('apply(): a running director changes by difference', () => {
  it('edits one service, adds another, and a long transfer on an untouched service goes on', async () => {
    const long = lab.run(lab.client.ns, 'curl', ['-sS', '--max-time', '30', url(lab.vip4(1), '/slow?seconds=4')]);
    await new Promise((r) => setTimeout(r, 500));
    const next = base();
    next.services[0] = { ...next.services[0]!, scheduler: 'wrr', reals: [...next.services[0]!.reals, { address: lab.real('n3').address4, method: 'nat', weight: 2 }] };
    next.services.push({ protocol: 'tcp', address: lab.vip4(2), port: 80, scheduler: 'rr', reals: [{ address: lab.real('d2').address4, method: 'direct' }] });
    const summary = await director.apply(next);
    expect(summary).toEqual({ servicesAdded: [`TCP ${lab.vip4(2)} 80`], servicesRemoved: [], servicesChanged: [`TCP ${lab.vip4(0)} 80`], realsAdded: 1, realsRemoved: 0, realsChanged: 0 });
    // The new real takes its share at once; the new service's VIP is up and answers.
    const r = await httpLoad(lab, { url: url(lab.vip4(0)), count: 8, concurrency: 1 });
    expect(r.byReal).toEqual({ n1: 2, n2: 2, n3: 4 });
    expect((await lab.curl(url(lab.vip4(2)))).body.startsWith('d2 ')).toBe(true);
    // The transfer that was running on the untouched service finished whole.
    expect((await long).stdout).toBe('.'.repeat(40));
  });

  it('removes a service: its VIP goes down with it', async () => {
    await director.apply(base());
    expect(lab.director.ns.ip('-j', 'addr', 'show', 'pub')).not.toContain(`"${lab.vip4(2)}"`);
    expect((await lab.curl(url(lab.vip4(2)), ['--max-time', '2'], { check: false })).status).toBe(0);
    expect(director.dataplane!.listServices().map((s) => s.address)).toEqual([lab.vip4(0), lab.vip4(1)]);
  });

  it('a bad configuration is refused whole and nothing changes', async () => {
    const before = JSON.stringify(director.dataplane!.listServices().map((s) => ({ ...s, stats: undefined, reals: s.reals.map((x) => ({ ...x, stats: undefined, activeConnections: 0, inactiveConnections: 0 })) })));
    const bad = base();
    bad.services.push({ protocol: 'tcp', address: lab.vip4(3), port: 80, scheduler: 'rr', reals: [{ address: lab.real('d2').address4, method: 'direct' }] });
    bad.services[0] = { ...bad.services[0]!, scheduler: 'wlcx' as 'wlc' };
    await expect(director.apply(bad)).rejects.toMatchObject({ code: 'LVS_INVALID_SCHEDULER' });
    const after = JSON.stringify(director.dataplane!.listServices().map((s) => ({ ...s, stats: undefined, reals: s.reals.map((x) => ({ ...x, stats: undefined, activeConnections: 0, inactiveConnections: 0 })) })));
    expect(after).toBe(before);
    expect(lab.director.ns.ip('-j', 'addr', 'show', 'pub')).not.toContain(`"${lab.vip4(3)}"`);
    expect((await lab.curl(url(lab.vip4(0)))).status).toBe(200);
    // A change that needs a device lvsd did not start on, or another backend: refused too.
    await expect(director.apply({ ...base(), devices: [], services: [...base().services, { protocol: 'tcp', address: lab.vip4(3), port: 80, device: 'lo', reals: [] }] })).rejects.toMatchObject({ code: 'LVS_INVALID_INTERFACE' });
    await expect(director.apply({ ...base(), io: 'packet' })).rejects.toMatchObject({ code: 'LVS_INVALID_OPTION', field: 'io' });
  });
});
