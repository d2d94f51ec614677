/**
 * A dataplane in manual mode with a manual clock and two interfaces: 0 faces the clients,
 * 1 faces the real servers. Addresses are from 198.18.0.0/15 and 2001:db8::/32.
 */
import { afterEach } from 'vitest';
import { Dataplane, type DataplaneOptions, type ForwardingMethod, type SchedulerName, type ServiceKey } from '../../src/index.js';
import { MACS, decode, type Decoded } from '../../src/lab/frames.js';

export const VIP4 = '198.18.0.10';
export const VIP6 = '2001:db8::10';
export const CLIENT4 = '198.18.5.5';
export const CLIENT6 = '2001:db8:5::5';
export const REALS4 = ['198.19.0.11', '198.19.0.12', '198.19.0.13'];
export const REALS6 = ['2001:db8:1::11', '2001:db8:1::12', '2001:db8:1::13'];
export const REAL_MACS = [MACS.real1, MACS.real2, MACS.real3];
export const OUTSIDE = 0;
export const INSIDE = 1;

const open: Dataplane[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

export function manualDataplane(options: DataplaneOptions = {}): Dataplane {
  const dp = new Dataplane({ mode: 'manual', clock: 'manual', seed: 1, ...options });
  open.push(dp);
  dp.setClock(1_000_000);
  dp.setInterface({ id: OUTSIDE, name: 'outside', mac: MACS.outside, ipv4: '198.18.0.1', ipv6: '2001:db8::1', mtu: 1500 });
  dp.setInterface({ id: INSIDE, name: 'inside', mac: MACS.inside, ipv4: '198.19.0.1', ipv6: '2001:db8:1::1', mtu: 1500 });
  return dp;
}

export function tcpService(address = VIP4, port = 80): ServiceKey {
  return { protocol: 'tcp', address, port };
}
export function udpService(address = VIP4, port = 53): ServiceKey {
  return { protocol: 'udp', address, port };
}

/** A round-robin service with `n` reals (the first n of REALS4/REALS6 by the VIP's family). */
export function withService(dp: Dataplane, key: ServiceKey, method: ForwardingMethod, n = 1, realPort?: number, scheduler: SchedulerName = 'rr'): string[] {
  dp.addService({ ...key, scheduler });
  const v6 = 'address' in key && key.address.includes(':');
  const reals = (v6 ? REALS6 : REALS4).slice(0, n);
  reals.forEach((address, i) =>
    dp.addReal(key, {
      address,
      ...(realPort !== undefined ? { port: realPort } : {}),
      method,
      interface: INSIDE,
      mac: REAL_MACS[i]!,
    }),
  );
  return reals;
}

/** Send frames through a manual dataplane and decode what comes out. */
export async function through(dp: Dataplane, frames: Buffer[], iface = OUTSIDE): Promise<Array<Decoded & { iface: number; action: string; raw: Buffer }>> {
  const out = await dp.memory.process(frames.map((data) => ({ iface, data })));
  return out.map((o) => ({ ...decode(o.data), iface: o.iface, action: o.action, raw: o.data }));
}
