import { describe, expect, it } from 'vitest';
import { MH_HASH1, MH_HASH2, hash32, hsiphash1u32 } from '../../src/sched/hash.js';
import { dhTable, maglevTable, mhHash, shTable, wrrTable, type MaglevReal } from '../../src/sched/tables.js';

describe('the hashes IPVS schedulers use', () => {
  it('hsiphash_1u32 matches the Linux 64-bit test vector (lib/test_siphash.c)', () => {
    // Key 00..07 / 08..0f, input bytes 00 01 02 03: test_vectors_hsiphash[4] on 64-bit kernels.
    expect(hsiphash1u32(0x03020100, [0x07060504, 0x03020100, 0x0f0e0d0c, 0x0b0a0908])).toBe(0x88d38328);
  });

  it('hash_32 is the golden-ratio multiply', () => {
    expect(hash32(0, 8)).toBe(0);
    expect(hash32(1, 8)).toBe(0x61c88647 >>> 24);
    expect(hash32(0xffffffff, 32)).toBe(Math.imul(0xffffffff, 0x61c88647) >>> 0);
  });
});

describe('sh and dh buckets, as ip_vs_sh/ip_vs_dh fill them', () => {
  it('sh: each real takes `weight` consecutive buckets (weight 0 takes one), cycling', () => {
    const t = shTable([{ slot: 7, weight: 2 }, { slot: 8, weight: 0 }, { slot: 9, weight: 1 }]);
    expect(Array.from(t.subarray(0, 8))).toEqual([7, 7, 8, 9, 7, 7, 8, 9]);
    expect(t.length).toBe(256);
    // Weights summing past 256: later reals get nothing.
    const big = shTable([{ slot: 1, weight: 200 }, { slot: 2, weight: 100 }, { slot: 3, weight: 5 }]);
    expect(big.filter((x) => x === 1).length).toBe(200);
    expect(big.filter((x) => x === 2).length).toBe(56);
    expect(big.includes(3)).toBe(false);
  });

  it('dh: one bucket each, weights ignored; empty list leaves buckets empty', () => {
    expect(Array.from(dhTable([{ slot: 4, weight: 9 }, { slot: 5, weight: 0 }]).subarray(0, 5))).toEqual([4, 5, 4, 5, 4]);
    expect(Array.from(dhTable([]).subarray(0, 3))).toEqual([-1, -1, -1]);
  });
});

describe('wrr as a table', () => {
  it('4:3:2 gives AABABCABC and 4:2:2 gives AABC (gcd 2)', () => {
    const name = (t: Int32Array) => Array.from(t, (s) => 'ABC'[s]).join('');
    expect(name(wrrTable([{ slot: 0, weight: 4 }, { slot: 1, weight: 3 }, { slot: 2, weight: 2 }])!.sequence)).toBe('AABABCABC');
    const t = wrrTable([{ slot: 0, weight: 4 }, { slot: 1, weight: 2 }, { slot: 2, weight: 2 }])!;
    expect(name(t.sequence)).toBe('AABC');
    expect([t.di, t.mw]).toEqual([2, 3]);
  });

  it('leaves a long period to the dataplane', () => {
    expect(wrrTable([{ slot: 0, weight: 65535 }, { slot: 1, weight: 1 }])).toBeNull();
  });
});

/** ip_vs_mh_populate transcribed literally: probing only, one claim at a time. */
function ipvsPopulate(reals: MaglevReal[], size: number): Int32Array {
  const table = new Int32Array(size).fill(-1);
  let g = 0;
  let max = 0;
  const gcd = (a: number, b: number): number => (b ? gcd(b, a % b) : a);
  for (const r of reals) {
    if (r.lastWeight > 0) g = g ? gcd(r.lastWeight, g) : r.lastWeight;
    max = Math.max(max, r.lastWeight);
  }
  if (g < 1) return table;
  const fls = (x: number) => 32 - Math.clz32(x);
  const rshift = Math.max(0, fls(Math.floor(max / g)) - 6);
  const ds = reals.map((r) => ({
    perm: mhHash(r.family, r.address, r.port, MH_HASH1) % size,
    skip: (mhHash(r.family, r.address, r.port, MH_HASH2) % (size - 1)) + 1,
    turns: (Math.floor(r.lastWeight / g) >> rshift) || (r.lastWeight !== 0 ? 1 : 0),
  }));
  const taken = new Set<number>();
  let n = 0;
  let dt = 0;
  while (n < size) {
    for (let i = 0; i < reals.length; ) {
      if (ds[i]!.turns < 1) {
        i++;
        continue;
      }
      let c = ds[i]!.perm;
      while (taken.has(c)) {
        ds[i]!.perm = (ds[i]!.perm + ds[i]!.skip) % size;
        c = ds[i]!.perm;
      }
      taken.add(c);
      table[c] = reals[i]!.slot;
      if (++n === size) return table;
      if (++dt >= ds[i]!.turns) {
        dt = 0;
        i++;
      }
    }
  }
  return table;
}

describe('the Maglev table (ip_vs_mh)', () => {
  let seed = 99;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
  const reals = (n: number, weights: () => number, v6 = false): MaglevReal[] =>
    Array.from({ length: n }, (_, i) => ({
      slot: i,
      family: v6 ? 'ipv6' : 'ipv4',
      address: v6 ? Uint8Array.of(0x20, 1, 0xd, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, i >> 8, i & 255) : Uint8Array.of(198, 19, i >> 8, i & 255),
      port: 80 + (i % 3),
      lastWeight: weights(),
    }));

  it('is exactly the table IPVS builds, for random lists, weights and sizes', () => {
    for (const size of [251, 4093, 65537]) {
      for (let round = 0; round < 6; round++) {
        const list = reals(1 + rand(size === 65537 ? 300 : 60), () => (rand(4) === 0 ? 0 : 1 + rand(round % 2 ? 3 : 200)), round % 3 === 0);
        expect(maglevTable(list, size)).toEqual(ipvsPopulate(list, size));
      }
    }
  });

  it('balances 1000 reals over 65537 positions within 1%, and moves ~1/N of them when one real goes', () => {
    const list = reals(1000, () => 1);
    const t = maglevTable(list, 65537);
    const counts = new Array<number>(1000).fill(0);
    for (const s of t) counts[s]!++;
    const mean = 65537 / 1000;
    // Each real owns 65 or 66 positions: the least and the most loaded are within 1% of the mean.
    expect(Math.min(...counts)).toBeGreaterThanOrEqual(Math.floor(mean * 0.99));
    expect(Math.max(...counts)).toBeLessThanOrEqual(Math.ceil(mean * 1.01));
    const without = maglevTable(list.filter((r) => r.slot !== 500), 65537);
    let moved = 0;
    for (let i = 0; i < t.length; i++) if (t[i] !== without[i]) moved++;
    const share = moved / t.length;
    // The removed real's own 1/N must move; Maglev's population order adds churn on top of that
    // (its paper shows the same), but far from a rehash of the whole table.
    expect(share).toBeGreaterThanOrEqual(1 / 1000);
    expect(share).toBeLessThan(10 / 1000);
    console.log(`maglev N=1000 M=65537: removing one real remapped ${(share * 100).toFixed(3)}% of the table (1/N = 0.1%)`);
  });
});
