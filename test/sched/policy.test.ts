import { describe, expect, it } from 'vitest';
import { packet } from '../../src/lab/frames.js';
import type { Dataplane, SchedulerName, ServiceKey } from '../../src/index.js';
import { INSIDE, REALS4, REAL_MACS, VIP4, manualDataplane, through } from '../helpers/setup.js';

const T0 = 1_000_000;
const NAMES = new Map(REALS4.map((r, i) => [r, 'ABC'[i]!]));
let port = 10_000;

function service(dp: Dataplane, scheduler: SchedulerName, weights: number[], key: ServiceKey = { protocol: 'tcp', address: VIP4, port: 80 }, extra = {}) {
  dp.addService({ ...key, scheduler, ...extra });
  // Added in reverse, so that the list (newest first) reads A, B, C.
  for (let i = weights.length - 1; i >= 0; i--) dp.addReal(key, { address: REALS4[i]!, method: 'direct', interface: INSIDE, mac: REAL_MACS[i]!, weight: weights[i]! });
  return key;
}

/** n new connections (SYN then ACK: active), as the letters of the reals they went to. */
async function connect(dp: Dataplane, n: number, dst = VIP4): Promise<string> {
  let out = '';
  for (let i = 0; i < n; i++) {
    const sport = port++;
    const [o] = await through(dp, [packet({ src: '198.18.20.1', dst, proto: 'tcp', sport, dport: 80, flags: 'S' })]);
    if (!o || o.proto !== 6) {
      out += '-';
      continue;
    }
    out += NAMES.get(REALS4[REAL_MACS.indexOf(o.dstMac)]!)!;
    await through(dp, [packet({ src: '198.18.20.1', dst, proto: 'tcp', sport, dport: 80, flags: 'A' })]);
  }
  return out;
}

describe('readable cases', () => {
  it('wrr 4:3:2 gives AABABCABC, again and again', async () => {
    const dp = manualDataplane();
    service(dp, 'wrr', [4, 3, 2]);
    // Adding C (2) alone left IPVS at cw = 1 (its gcd was 2 then), and adding B and A kept it
    // there: the first pass is the cw = 1 pass, ABC; from then on the period repeats.
    expect(await connect(dp, 21)).toBe(`ABC${'AABABCABC'.repeat(2)}`);
  });

  it('wlc picks the least overhead per weight: 256 x active + inactive, over weight', async () => {
    const dp = manualDataplane();
    service(dp, 'wlc', [1, 2, 1]);
    // All idle: A is first in the list. Then B (weight 2) takes two for every one of the others;
    // on a tie (A 256/1 against B 512/2) the earlier real in the list wins.
    expect(await connect(dp, 8)).toBe('ABCBABCB');
  });

  it('lblc sticks to a destination until its real is overloaded', async () => {
    const dp = manualDataplane();
    dp.setMarkRules([{ mark: 5, destination: '198.18.64.0/24' }]);
    service(dp, 'lblc', [2, 2, 2], { fwmark: 5 });
    // One destination: A until it has more active connections than its weight (2) while another
    // real is below half of its own; then the least loaded, which the cache then remembers.
    expect(await connect(dp, 7, '198.18.64.9')).toBe('AAABBBC');
    // Another destination starts from the least loaded real.
    expect(await connect(dp, 1, '198.18.64.10')).toBe('C');
  });
});

describe('connection thresholds (ipvsadm -x / -y)', () => {
  it('a real at its upper threshold takes no new connections until it drops below the lower one', async () => {
    const dp = manualDataplane();
    const key = service(dp, 'rr', [1, 1]);
    dp.editReal(key, { address: REALS4[0]! }, { upperThreshold: 2, lowerThreshold: 1 });
    const first = port;
    expect(await connect(dp, 6)).toBe('ABABBB'); // A has 2 connections: OVERLOAD
    const a = [first, first + 2]; // A's two connections
    const closeAndExpire = async (sport: number, at: number) => {
      await through(dp, [packet({ src: '198.18.20.1', dst: VIP4, proto: 'tcp', sport, dport: 80, flags: 'R' })]);
      dp.setClock(at); // CLOSE lasts 10 s
      dp.poll();
    };
    await closeAndExpire(a[0]!, T0 + 11_000);
    expect(await connect(dp, 2)).toBe('BB'); // 1 connection is not below the lower threshold 1
    await closeAndExpire(a[1]!, T0 + 22_000);
    expect(await connect(dp, 2)).toBe('AB'); // 0 is: A takes connections again
    expect(dp.getService(key).reals.map((r) => [r.address, r.upperThreshold, r.lowerThreshold])).toEqual([[REALS4[0], 2, 1], [REALS4[1], 0, 0]]);
  });
});

describe('quiesce (Piranha quiesce_server): a real coming back is not flooded', () => {
  async function afterReturn(quiesce: boolean): Promise<string> {
    const dp = manualDataplane();
    const key = service(dp, 'wlc', [1, 1, 1], undefined, { quiesce });
    dp.editReal(key, { address: REALS4[2]! }, { weight: 0 }); // C fails its health check
    await connect(dp, 20); // A and B take 10 each
    dp.editReal(key, { address: REALS4[2]! }, { weight: 1 }); // C is back
    return connect(dp, 9);
  }

  it('without it, the returning real takes every new connection until it catches up', async () => {
    expect(await afterReturn(false)).toBe('CCCCCCCCC');
  });

  it('with it, the least-connection counts start again from zero and new connections spread', async () => {
    expect(await afterReturn(true)).toBe('ABCABCABC');
  });

  it('the counts shown stay the real ones', async () => {
    const dp = manualDataplane();
    const key = service(dp, 'wlc', [1, 1], undefined, { quiesce: true });
    await connect(dp, 4);
    dp.resetLeastConnection(key);
    expect(dp.getService(key).reals.map((r) => r.activeConnections)).toEqual([2, 2]);
  });
});

describe('slow start: a joining real ramps up its weight', () => {
  it('from 1 to its weight over the slow-start time, on the dataplane clock', async () => {
    const dp = manualDataplane();
    const key = service(dp, 'wrr', [10]);
    dp.addReal(key, { address: REALS4[1]!, method: 'direct', interface: INSIDE, mac: REAL_MACS[1]!, weight: 10, slowStart: 100 });
    const weight = () => dp.getService(key).reals.find((r) => r.address === REALS4[1])!.currentWeight;
    expect(weight()).toBe(1);
    expect(await connect(dp, 11)).toBe('BAAAAAAAAAA'); // 1 : 10
    dp.setClock(T0 + 50_000);
    dp.poll();
    expect(weight()).toBe(5);
    dp.setClock(T0 + 100_000);
    dp.poll();
    expect(weight()).toBe(10);
    expect(dp.getService(key).reals.map((r) => [r.weight, r.currentWeight])).toEqual([[10, 10], [10, 10]]);
    // Back from weight 0, it ramps again.
    dp.editReal(key, { address: REALS4[1]! }, { weight: 0 });
    dp.editReal(key, { address: REALS4[1]! }, { weight: 10 });
    expect(weight()).toBe(1);
  });
});
