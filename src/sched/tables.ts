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

/** x^-1 mod m (m prime, 0 < x < m), by the extended Euclidean algorithm. */
function inverseMod(x: number, m: number): number {
  let a = x;
  let b = m;
  let u = 1;
  let v = 0;
  while (b !== 0) {
    const q = Math.floor(a / b);
    let t = a - q * b;
    a = b;
    b = t;
    t = u - q * v;
    u = v;
    v = t;
  }
  return ((u % m) + m) % m;
}

/**
 * ip_vs_mh_permutate + ip_vs_mh_populate. `size` should be prime: IPVS uses 4093 by default,
 * the Maglev paper 65537.
 *
 * The table is exactly IPVS's; only the search is faster. A real's preference list is
 * offset, offset + skip, offset + 2 skip, ... (mod size). While free positions are plentiful
 * we walk it (probing) as IPVS does; once few are left, walking means many probes over taken
 * positions, so instead each real picks, among the free positions, the one that comes first
 * in its list: position f is step ((f - offset) * skip^-1 mod size) of that list.
 */
export function maglevTable(reals: readonly MaglevReal[], size = MH_DEFAULT_SIZE): Int32Array {
  const table = new Int32Array(size).fill(-1);
  let g = 0;
  let max = 0;
  for (const r of reals) {
    if (r.lastWeight > 0) g = g > 0 ? gcd(r.lastWeight, g) : r.lastWeight;
    if (r.lastWeight > max) max = r.lastWeight;
  }
  if (g < 1) return table;
  const rshift = Math.max(0, 32 - Math.clz32(Math.floor(max / g)) - MH_TAB_BITS);
  const n = reals.length;
  const offset = new Int32Array(n);
  const perm = new Int32Array(n);
  const skip = new Int32Array(n);
  const turns = new Int32Array(n);
  const slots = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const r = reals[i]!;
    offset[i] = perm[i] = mhHash(r.family, r.address, r.port, MH_HASH1) % size;
    skip[i] = (mhHash(r.family, r.address, r.port, MH_HASH2) % (size - 1)) + 1;
    const t = Math.floor(r.lastWeight / g) >> rshift;
    turns[i] = t ? t : r.lastWeight !== 0 ? 1 : 0;
    slots[i] = r.slot;
  }

  const taken = new Uint8Array(size);
  // Below about sqrt(size)/2 free positions, scanning them beats probing for them (measured).
  const tail = Math.min(size, Math.ceil(Math.sqrt(size) / 2));
  const allOne = turns.every((t) => t === 1);
  let filled = 0;
  let i = 0;
  let dt = 0;
  // Phase 1: walk each real's preference list past taken positions, as IPVS does.
  const limit = size - tail;
  if (allOne) {
    // Equal weights (the common case): every real claims one position per round.
    while (filled < limit) {
      let c = perm[i]!;
      const sk = skip[i]!;
      while (taken[c] !== 0) {
        c += sk;
        if (c >= size) c -= size;
      }
      perm[i] = c;
      taken[c] = 1;
      table[c] = slots[i]!;
      filled++;
      if (++i === n) i = 0;
    }
  } else {
    while (filled < limit) {
      const ti = turns[i]!;
      if (ti > 0) {
        let c = perm[i]!;
        const sk = skip[i]!;
        while (taken[c] !== 0) {
          c += sk;
          if (c >= size) c -= size;
        }
        perm[i] = c;
        taken[c] = 1;
        table[c] = slots[i]!;
        filled++;
        if (++dt < ti) continue;
        dt = 0;
      }
      if (++i === n) i = 0;
    }
  }
  // Phase 2: few positions left; the same order of claims, found from the free list.
  const tailState = { free: new Int32Array(size - filled), count: 0, offset, perm, inverse: Float64Array.from(skip, (sk) => inverseMod(sk, size)), size };
  for (let p = 0; p < size; p++) if (taken[p] === 0) tailState.free[tailState.count++] = p;
  while (filled < size) {
    const ti = turns[i]!;
    if (ti > 0) {
      table[claimFromFree(tailState, i)] = slots[i]!;
      filled++;
      if (++dt < ti) continue;
      dt = 0;
    }
    if (++i === n) i = 0;
  }
  return table;
}

interface TailState {
  free: Int32Array;
  count: number;
  offset: Int32Array;
  perm: Int32Array;
  inverse: Float64Array;
  size: number;
}

/** The free position that comes first in real i's preference list after its current one. */
function claimFromFree(s: TailState, i: number): number {
  const { free, size } = s;
  const off = s.offset[i]!;
  const inv = s.inverse[i]!;
  let x = s.perm[i]! - off;
  if (x < 0) x += size;
  const step = (x * inv) % size;
  let best = 0;
  let bestDistance = size;
  for (let j = 0; j < s.count; j++) {
    let y = free[j]! - off;
    if (y < 0) y += size;
    let d = ((y * inv) % size) - step;
    if (d < 0) d += size;
    if (d < bestDistance) {
      bestDistance = d;
      best = j;
    }
  }
  const c = free[best]!;
  free[best] = free[--s.count]!;
  s.perm[i] = c;
  return c;
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
