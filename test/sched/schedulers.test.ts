/**
 * Every scheduler against the independent IPVS model (test/helpers/ipvs-model.ts): random
 * sequences of new connections, closes, expiries, weight changes and reals added and removed
 * go through both, and the real chosen must be the same at every step.
 */
import { describe, expect, it } from 'vitest';
import { packet } from '../../src/lab/frames.js';
import type { Dataplane, SchedulerFlag, SchedulerName, ServiceKey } from '../../src/index.js';
import { IpvsModel } from '../helpers/ipvs-model.js';
import { INSIDE, VIP4, manualDataplane, through } from '../helpers/setup.js';

const POOL = Array.from({ length: 8 }, (_, i) => ({ id: `198.19.1.${i + 1}`, addr: ((198 << 24) | (19 << 16) | (1 << 8) | (i + 1)) >>> 0, mac: `02:00:00:00:02:${(i + 1).toString(16).padStart(2, '0')}` }));
const byMac = new Map(POOL.map((p) => [p.mac, p.id]));
const MARK = 7;
const T0 = 1_000_000;

interface Run {
  scheduler: SchedulerName;
  seed: number;
  flags?: SchedulerFlag[];
  thresholds?: boolean;
  weights?: number[]; // the weights drawn from (default 0..4)
  steps?: number;
}

/** Destination-keyed schedulers serve a firewall-mark service over a /24 of origin servers. */
const byDestination = (s: SchedulerName) => s === 'dh' || s === 'lblc' || s === 'lblcr';

async function replay(run: Run): Promise<{ choices: number; none: number; distinct: number }> {
  let rs = run.seed * 7919 + 13;
  const rand = (n: number) => ((rs = (Math.imul(rs, 1103515245) + 12345) >>> 0) >>> 8) % n;
  const dp: Dataplane = manualDataplane({ seed: run.seed });
  const svc: ServiceKey = byDestination(run.scheduler) ? { fwmark: MARK } : { protocol: 'tcp', address: VIP4, port: 80 };
  dp.addService({ ...svc, scheduler: run.scheduler, ...(run.flags ? { flags: run.flags } : {}) });
  if (byDestination(run.scheduler)) dp.setMarkRules([{ mark: MARK, protocol: 'tcp', destination: '198.18.64.0/24', ports: 80 }]);
  const prefix = run.scheduler === 'sh' ? 'sh' : 'mh';
  const model = new IpvsModel(run.scheduler, { fallback: !!run.flags?.includes(`${prefix}-fallback` as SchedulerFlag), port: !!run.flags?.includes(`${prefix}-port` as SchedulerFlag) }, run.seed);
  const weights = run.weights ?? [0, 1, 2, 3, 4];
  const conns: Array<{ id: string; src: string; sport: number; dst: string; open: boolean }> = [];
  let clock = T0;
  let nextPort = 1024;
  let choices = 0;
  let none = 0;
  const seen = new Set<string>();

  const addReal = (p: (typeof POOL)[number]) => {
    const weight = weights[rand(weights.length)]!;
    const u = run.thresholds && rand(2) ? 1 + rand(4) : 0;
    const l = u ? rand(u + 1) : 0;
    dp.addReal(svc, { address: p.id, weight, method: 'direct', interface: INSIDE, mac: p.mac, upperThreshold: u, lowerThreshold: l });
    model.add(p.id, p.addr, weight, u, l);
  };
  for (const p of POOL.slice(0, 3)) addReal(p);

  for (let step = 0; step < (run.steps ?? 250); step++) {
    const roll = rand(100);
    const inList = model.list.map((d) => d.id);
    if (roll < 6 && inList.length < POOL.length) {
      const free = POOL.filter((p) => !inList.includes(p.id));
      addReal(free[rand(free.length)]!);
    } else if (roll < 11 && inList.length > 1) {
      const id = inList[rand(inList.length)]!;
      dp.deleteReal(svc, { address: id });
      model.remove(id);
    } else if (roll < 21 && inList.length) {
      const id = inList[rand(inList.length)]!;
      const w = weights[rand(weights.length)]!;
      dp.editReal(svc, { address: id }, { weight: w });
      model.setWeight(id, w);
    } else if (roll < 36) {
      // Close a connection whose real is still there (a deleted real's packets are dropped).
      const open = conns.filter((c) => c.open && model.list.some((d) => d.id === c.id));
      if (!open.length) continue;
      const c = open[rand(open.length)]!;
      await through(dp, [packet({ src: c.src, dst: c.dst, proto: 'tcp', sport: c.sport, dport: 80, flags: 'R' })]);
      c.open = false;
      model.close(model.dest(c.id));
    } else if (roll < 42) {
      // Closed connections time out (CLOSE lasts 10 s): a jump of 11 s ends all of them.
      clock += 11_000;
      dp.setClock(clock);
      for (const c of conns.filter((x) => !x.open)) model.unbindInactive(model.dest(c.id));
      conns.splice(0, conns.length, ...conns.filter((x) => x.open));
      // The dataplane notices idle deleted reals at its next step (before the sweep frees this
      // round's connections) and releases them 120 s later; the model's trash does the same.
      model.now = clock;
      model.expireTrash();
      dp.poll();
      model.expireTrash();
    } else {
      const src = `198.18.10.${1 + rand(254)}`;
      const srcAddr = ((198 << 24) | (18 << 16) | (10 << 8) | Number(src.split('.')[3])) >>> 0;
      const sport = nextPort++;
      const dstLast = 1 + rand(254);
      const dst = byDestination(run.scheduler) ? `198.18.64.${dstLast}` : VIP4;
      const dstAddr = byDestination(run.scheduler) ? (((198 << 24) | (18 << 16) | (64 << 8) | dstLast) >>> 0) : 0;
      const expected = model.schedule(srcAddr, sport, dstAddr);
      const [o] = await through(dp, [packet({ src, dst, proto: 'tcp', sport, dport: 80, flags: 'S' })]);
      const got = o && o.proto === 6 ? byMac.get(o.dstMac)! : null; // else: ICMP unreachable
      expect(got, `${run.scheduler} seed ${run.seed} step ${step}: list ${model.list.map((d) => `${d.id}/w${d.weight}/a${d.active}/i${d.inactive}${d.overload ? '/OVL' : ''}`).join(' ')}`).toBe(expected?.id ?? null);
      if (!expected) {
        none++;
        continue;
      }
      choices++;
      seen.add(expected.id);
      model.bind(expected);
      conns.push({ id: expected.id, src, sport, dst, open: true });
      await through(dp, [packet({ src, dst, proto: 'tcp', sport, dport: 80, flags: 'A' })]);
    }
  }
  // The dataplane's live counts agree with the model's at the end, too.
  for (const r of dp.listServices()[0]!.reals) {
    const d = model.dest(r.address);
    expect([r.address, r.activeConnections, r.inactiveConnections]).toEqual([d.id, d.active, d.inactive]);
  }
  return { choices, none, distinct: seen.size };
}

describe('every scheduler makes the choices IPVS makes, over random event sequences', () => {
  const all: SchedulerName[] = ['rr', 'wrr', 'lc', 'wlc', 'sed', 'nq', 'fo', 'ovf', 'twos', 'sh', 'dh', 'mh', 'lblc', 'lblcr'];
  for (const scheduler of all) {
    it(scheduler, async () => {
      let total = 0;
      for (const seed of [1, 2, 3]) {
        const r = await replay({ scheduler, seed, thresholds: seed === 3 });
        total += r.choices;
      }
      expect(total).toBeGreaterThan(100); // the runs really scheduled (ovf refuses the most)
    });
  }

  it('sh and mh with their fallback and port flags', async () => {
    for (const scheduler of ['sh', 'mh'] as const) {
      for (const flags of [[`${scheduler}-fallback`], [`${scheduler}-port`], [`${scheduler}-fallback`, `${scheduler}-port`]] as SchedulerFlag[][]) {
        await replay({ scheduler, seed: 5, flags, thresholds: true });
      }
    }
  });

  it('wrr both from its precomputed period and, for long periods, by stepping', async () => {
    await replay({ scheduler: 'wrr', seed: 9, weights: [0, 1, 2, 3, 4], thresholds: true, steps: 400 });
    // Weights 4999 and 3000 (gcd 1): a period of thousands, too long to precompute.
    await replay({ scheduler: 'wrr', seed: 10, weights: [0, 1, 3000, 4999], steps: 300 });
  });
});
