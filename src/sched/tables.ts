/**
 * The static scheduling tables, computed here (TypeScript owns policy, DESIGN.md rule 3) and
 * pushed to the dataplane, exactly as the IPVS schedulers build them:
 * - sh (ip_vs_sh.c): 256 buckets; walking the list, each real fills `weight` consecutive
 *   buckets (weight 0 still takes one), cycling until all are filled.
 * - dh (ip_vs_dh.c): 256 buckets; reals in list order, one bucket each, cyclically.
 * - mh (ip_vs_mh.c): the Maglev lookup table, built from each real's last non-zero weight.
 * - wrr (ip_vs_wrr.c): the sequence of choices over one period, while that period is small.
 * Every table holds real slots; -1 is an empty bucket.
 */
import type { Family } from '../net/address.js';
import { native } from '../dataplane/native.js';
import { MH_HASH1, MH_HASH2, addressFold, hsiphash1u32 } from './hash.js';

export const SH_DH_BUCKETS = 256;
/** IPVS's Maglev table sizes (primes[] in ip_vs_mh.c); 4093 is its default. */
export const MH_IPVS_SIZES = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071] as const;
export const MH_DEFAULT_SIZE = 4093;
/** ip_vs_mh.c IP_VS_MH_TAB_BITS for the default size: weights are shifted to at most 6 bits. */
const MH_TAB_BITS = 6;
/** Largest wrr period (sum of weights / gcd) precomputed; beyond it the dataplane steps. */
export const WRR_MAX_PERIOD = 4096;

export interface TableReal {
  slot: number;
  weight: number;
}

export function shTable(reals: readonly TableReal[]): Int32Array {
  const t = new Int32Array(SH_DH_BUCKETS).fill(-1);
  if (reals.length === 0) return t;
  let r = 0;
  let d = 0;
  for (let i = 0; i < SH_DH_BUCKETS; i++) {
    t[i] = reals[r]!.slot;
    if (++d >= reals[r]!.weight) {
      r = (r + 1) % reals.length;
      d = 0;
    }
  }
  return t;
}

export function dhTable(reals: readonly TableReal[]): Int32Array {
  const t = new Int32Array(SH_DH_BUCKETS).fill(-1);
  if (reals.length === 0) return t;
  for (let i = 0; i < SH_DH_BUCKETS; i++) t[i] = reals[i % reals.length]!.slot;
  return t;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

export interface MaglevReal {
  slot: number;
  family: Family;
  address: Uint8Array;
  port: number;
  /** The latest non-zero weight IPVS remembers (last_weight); 0 = never weighted: absent. */
  lastWeight: number;
}

/** The IPVS Maglev hash of (address, port, offset) with key `key`. */
export function mhHash(family: Family, address: Uint8Array, port: number, key: typeof MH_HASH1, offset = 0): number {
  return hsiphash1u32((offset + port + addressFold(family, address)) >>> 0, key);
}

/**
 * ip_vs_mh_permutate + ip_vs_mh_populate. `size` should be prime: IPVS uses 4093 by default,
 * the Maglev paper 65537. The policy is here (which reals, their last weights, their hashes and
 * turns); the population loop, pure arithmetic, runs in native/sched/maglev.cpp.
 */
export function maglevTable(reals: readonly MaglevReal[], size = MH_DEFAULT_SIZE): Int32Array {
  let g = 0;
  let max = 0;
  for (const r of reals) {
    if (r.lastWeight > 0) g = g > 0 ? gcd(r.lastWeight, g) : r.lastWeight;
    if (r.lastWeight > max) max = r.lastWeight;
  }
  const n = reals.length;
  const offset = new Uint32Array(n);
  const skip = new Uint32Array(n);
  const turns = new Int32Array(n);
  const slots = new Int32Array(n);
  if (g >= 1) {
    const rshift = Math.max(0, 32 - Math.clz32(Math.floor(max / g)) - MH_TAB_BITS);
    for (let i = 0; i < n; i++) {
      const r = reals[i]!;
      offset[i] = mhHash(r.family, r.address, r.port, MH_HASH1) % size;
      skip[i] = (mhHash(r.family, r.address, r.port, MH_HASH2) % (size - 1)) + 1;
      const t = Math.floor(r.lastWeight / g) >> rshift;
      turns[i] = t ? t : r.lastWeight !== 0 ? 1 : 0;
      slots[i] = r.slot;
    }
  }
  return native().maglevPopulate(offset, skip, turns, slots, size);
}

export interface WrrTable {
  /** Real slots in the order IPVS wrr picks them over one period (no real overloaded). */
  sequence: Int32Array;
  /** The current-weight value `cw` each pick happens at. */
  cw: Int32Array;
  /** gcd of the positive weights (IPVS `di`) and the first cw (IPVS `mw`). */
  di: number;
  mw: number;
}

/**
 * The wrr period as a table: for cw = mw, mw - di, ... > 0, every real (in list order) with
 * weight >= cw. Null when the period (sum of weights / gcd) exceeds `maxPeriod`: the dataplane
 * then runs IPVS's stepping over the weights itself.
 */
export function wrrTable(reals: readonly TableReal[], maxPeriod = WRR_MAX_PERIOD): WrrTable | null {
  let di = 0;
  let maxw = 0;
  let sum = 0;
  for (const r of reals) {
    if (r.weight > 0) {
      di = di ? gcd(r.weight, di) : r.weight;
      sum += r.weight;
      if (r.weight > maxw) maxw = r.weight;
    }
  }
  if (di === 0) return { sequence: new Int32Array(0), cw: new Int32Array(0), di: 1, mw: 0 };
  if (sum / di > maxPeriod) return null;
  const mw = maxw - (di - 1);
  const seq: number[] = [];
  const cws: number[] = [];
  for (let cw = mw; cw > 0; cw -= di) {
    for (const r of reals) {
      if (r.weight >= cw) {
        seq.push(r.slot);
        cws.push(cw);
      }
    }
  }
  return { sequence: Int32Array.from(seq), cw: Int32Array.from(cws), di, mw };
}
