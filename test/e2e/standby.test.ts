/**
 * Director standby (a failover backup) and setActive: the dataplane, steering and services run
 * while the VIPs are down; taking over brings them up and announces them, standing down takes
 * them away, and a VIP an earlier (killed) run left up is taken down when a backup starts.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Director } from '../../src/director/director.js';
import type { Lab } from '../../src/lab/lab.js';
import { CLIENTS, makeLab, startDirector, stopDirector, type memoryLogger } from './setup.js';

let lab: Lab;
let director: Director;
let log: ReturnType<typeof memoryLogger>;

const addrs = () => execFileSync('ip', ['-n', lab.director.ns.name, '-o', 'addr', 'show', 'dev', 'pub'], { encoding: 'utf8' });

async function echoWorks(): Promise<boolean> {
  const r = await lab.run(lab.client.ns, process.execPath, [join(CLIENTS, 'longlived.mjs'), lab.vip4(0), '7', '--connections', '2', '--duration-ms', '100', '--connect-timeout-ms', '1500']);
  return JSON.parse(r.stdout.trim().split('\n').pop()!).totals.survived === 2;
}

beforeAll(async () => {
  lab = await makeLab({ tag: 'sb', reals: [{ name: 'd1', method: 'direct' }], vips: 1, ipv6: false });
  await lab.startServers();
  // What a killed lvsd leaves behind: the VIP still up.
  execFileSync('ip', ['-n', lab.director.ns.name, 'addr', 'add', `${lab.vip4(0)}/32`, 'dev', 'pub']);
  ({ director, log } = await startDirector(lab, { standby: true, services: [{ protocol: 'tcp', address: lab.vip4(0), port: 7, reals: [{ address: lab.real('d1').address4, method: 'direct' }] }] }));
}, 120_000);

afterAll(async () => {
  if (director) await stopDirector(director);
});

describe('Director standby and setActive', () => {
  it('a standby director runs its services with the VIP down, and takes down a VIP left up before it', async () => {
    expect(director.status()).toMatchObject({ running: true, active: false, vips: [] });
    expect(addrs()).not.toContain(` ${lab.vip4(0)}/`);
    expect(log.lines.some((l) => l.obj.event === 'address-down' && /while this router is the backup/.test(l.msg))).toBe(true);
    expect(director.dataplane!.listServices()).toHaveLength(1);
    expect(await echoWorks()).toBe(false);
  }, 30_000);

  it('setActive(true) brings the VIP up and announces it; traffic flows', async () => {
    const held: string[][] = [];
    director.onAddressesChanged = (a) => held.push(a.map((x) => x.address));
    await director.setActive(true);
    expect(director.status().active).toBe(true);
    expect(addrs()).toContain(` ${lab.vip4(0)}/32`);
    expect(held.at(-1)).toEqual([lab.vip4(0)]);
    expect(await echoWorks()).toBe(true);
    expect(log.lines.some((l) => l.msg === 'gratuitous lvs arps finished')).toBe(true);
  }, 30_000);

  it('setActive(false) takes it down again; the services and the dataplane stay', async () => {
    await director.setActive(false);
    expect(director.status()).toMatchObject({ active: false, vips: [] });
    expect(addrs()).not.toContain(` ${lab.vip4(0)}/`);
    expect(director.dataplane!.listServices()).toHaveLength(1);
    expect(director.heldAddresses()).toEqual([]);
  }, 30_000);
});
