/**
 * IPVS's rate estimator (src/dataplane/estimator.ts) against values worked out by hand from
 * ip_vs_est.c's arithmetic: rate = delta << 9 (conns, packets) or << 4 (bytes) per 2 s sample,
 * avg += (rate - avg) >> 2 (arithmetic shift), readout (avg + 0x1FF) >> 10 or (avg + 0xF) >> 5.
 */
import { describe, expect, it } from 'vitest';
import { Estimator, type EstimatorCounters } from '../../src/dataplane/estimator.js';

const at = (conns: number, inpkts = 0, outpkts = 0, inbytes = 0, outbytes = 0): EstimatorCounters => ({ conns, inpkts, outpkts, inbytes, outbytes });

describe('IPVS estimator', () => {
  it('a new estimator reads zero', () => {
    expect(new Estimator().rates()).toEqual({ cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 });
  });

  it('a steady 50 connections/s climbs as the kernel\'s does: 12, 22, 29, 34 ... to 50', () => {
    // Each 2 s sample adds 100 connections: rate = 100 << 9 = 51200.
    //   avg 12800 -> (12800+511)>>10 = 12;  avg 22400 -> 22;  avg 29600 -> 29;
    //   avg 35000 -> (35000+511)>>10 = 34
    const e = new Estimator();
    const seen: number[] = [];
    for (let i = 1; i <= 4; i++) {
      e.sample(at(100 * i));
      seen.push(e.rates().cps);
    }
    expect(seen).toEqual([12, 22, 29, 34]);
    for (let i = 5; i <= 60; i++) e.sample(at(100 * i));
    // Converged: avg = 51200 - the floor's remainder; (51197 + 511) >> 10 = 50.
    expect(e.rates().cps).toBe(50);
  });

  it('packets and bytes: every counter has its own average and scale', () => {
    const e = new Estimator();
    // 2 s: 1000 packets in, 600 out; 64000 bytes in, 1,200,000 out.
    e.sample(at(0, 1000, 600, 64000, 1_200_000));
    // inpkts: rate 1000<<9 = 512000, avg 128000, (128000+511)>>10 = 125
    // outpkts: 600<<9 = 307200, avg 76800, (76800+511)>>10 = 75
    // inbytes: 64000<<4 = 1024000, avg 256000, (256000+15)>>5 = 8000
    // outbytes: 1200000<<4 = 19200000, avg 4800000, (4800000+15)>>5 = 150000
    expect(e.rates()).toEqual({ cps: 0, inpps: 125, outpps: 75, inbps: 8000, outbps: 150000 });
  });

  it('idle decays by a quarter per sample, rounding the kernel\'s way', () => {
    const e = new Estimator();
    e.sample(at(0, 0, 0, 1000)); // rate 16000, avg 4000 -> (4000+15)>>5 = 125 B/s
    expect(e.rates().inbps).toBe(125);
    const seen: number[] = [];
    for (let i = 0; i < 4; i++) {
      e.sample(at(0, 0, 0, 1000)); // rate 0: avg 3000, 2250, 1687 ((-2250) >> 2 = -563), 1265 ((-1687) >> 2 = -422)
      seen.push(e.rates().inbps);
    }
    // (3000+15)>>5 = 94, (2250+15)>>5 = 70, (1687+15)>>5 = 53, (1265+15)>>5 = 40
    expect(seen).toEqual([94, 70, 53, 40]);
    // It reaches zero: the arithmetic shift floors (-1 >> 2 = -1), so no residue sticks.
    for (let i = 0; i < 60; i++) e.sample(at(0, 0, 0, 1000));
    expect(e.rates()).toEqual({ cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 });
  });

  it('reset (ipvsadm -Z): zero averages, and the next sample counts from the given totals', () => {
    const e = new Estimator();
    e.sample(at(100, 1000));
    expect(e.rates().cps).toBe(12);
    e.reset();
    expect(e.rates()).toEqual({ cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 });
    e.sample(at(100)); // 100 new connections since the reset at 0
    expect(e.rates().cps).toBe(12);
    e.reset(at(500));
    e.sample(at(600));
    expect(e.rates().cps).toBe(12);
  });

  it('starts from given totals, and stays exact far beyond 2^32', () => {
    const e = new Estimator(at(0, 0, 0, 2 ** 40));
    // 10^12 bytes in 2 s: rate 16e12, avg 4e12, (4e12 + 15) >> 5 = 125,000,000,000 B/s
    e.sample(at(0, 0, 0, 2 ** 40 + 1e12));
    expect(e.rates().inbps).toBe(125_000_000_000);
  });

  it('refuses counters that are not counts', () => {
    expect(() => new Estimator().sample(at(-1))).toThrow(RangeError);
    expect(() => new Estimator().sample(at(1.5))).toThrow(RangeError);
  });
});
