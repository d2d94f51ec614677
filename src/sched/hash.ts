/**
 * The hashes IPVS schedulers use, so that lvsd sends a client where IPVS would:
 * - hash32: include/linux/hash.h hash_32 (multiply by the golden ratio 0x61C88647, keep the top bits)
 * - addressFold: an IPv6 address folded to 32 bits by xor of its words (ip_vs_sh/dh/mh)
 * - hsiphash1u32: lib/siphash.c hsiphash_1u32 on 64-bit kernels, which is SipHash-1-3 with a
 *   2 x 64-bit key, truncated to 32 bits. Written with 32-bit halves: no BigInt on this path.
 */
import type { Family } from '../net/address.js';

export function hash32(value: number, bits: number): number {
  return Math.imul(value >>> 0, 0x61c88647) >>> (32 - bits);
}

/** ntohl(addr) for IPv4; the xor of the four ntohl'd words for IPv6. */
export function addressFold(family: Family, b: Uint8Array): number {
  const word = (i: number) => ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
  if (family === 'ipv4') return word(0);
  return (word(0) ^ word(4) ^ word(8) ^ word(12)) >>> 0;
}

/** A 64-bit hsiphash key as [key0_hi, key0_lo, key1_hi, key1_lo] (32-bit halves). */
export type HsiphashKey = readonly [number, number, number, number];

export const MH_HASH1: HsiphashKey = [0, 2654435761, 0, 2654435761];
export const MH_HASH2: HsiphashKey = [0, 2654446892, 0, 2654446892];

/** hsiphash_1u32(value, key) as a 64-bit kernel computes it. */
export function hsiphash1u32(value: number, key: HsiphashKey): number {
  // The four 64-bit SipHash words as (high, low) 32-bit halves, all in locals (fast in V8).
  // PREAMBLE(4): constants ^ key; b = 4 << 56 | value.
  let h0 = (0x736f6d65 ^ key[0]) >>> 0, l0 = (0x70736575 ^ key[1]) >>> 0;
  let h1 = (0x646f7261 ^ key[2]) >>> 0, l1 = (0x6e646f6d ^ key[3]) >>> 0;
  let h2 = (0x6c796765 ^ key[0]) >>> 0, l2 = (0x6e657261 ^ key[1]) >>> 0;
  let h3 = (0x74656462 ^ key[2]) >>> 0, l3 = (0x79746573 ^ key[3]) >>> 0;
  const bh = 0x04000000;
  const bl = value >>> 0;
  // HPOSTAMBLE: v3 ^= b, one compression round, v0 ^= b, v2 ^= 0xff, three final rounds.
  for (let round = 0; round < 4; round++) {
    if (round === 0) {
      h3 = (h3 ^ bh) >>> 0;
      l3 = (l3 ^ bl) >>> 0;
    } else if (round === 1) {
      h0 = (h0 ^ bh) >>> 0;
      l0 = (l0 ^ bl) >>> 0;
      l2 = (l2 ^ 0xff) >>> 0;
    }
    // v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
    let lo = (l0 + l1) >>> 0;
    h0 = (h0 + h1 + (lo < l0 ? 1 : 0)) >>> 0;
    l0 = lo;
    let th = ((h1 << 13) | (l1 >>> 19)) >>> 0;
    let tl = ((l1 << 13) | (h1 >>> 19)) >>> 0;
    h1 = (th ^ h0) >>> 0;
    l1 = (tl ^ l0) >>> 0;
    let t = h0;
    h0 = l0;
    l0 = t;
    // v2 += v3; v3 = rotl(v3, 16); v3 ^= v2
    lo = (l2 + l3) >>> 0;
    h2 = (h2 + h3 + (lo < l2 ? 1 : 0)) >>> 0;
    l2 = lo;
    th = ((h3 << 16) | (l3 >>> 16)) >>> 0;
    tl = ((l3 << 16) | (h3 >>> 16)) >>> 0;
    h3 = (th ^ h2) >>> 0;
    l3 = (tl ^ l2) >>> 0;
    // v0 += v3; v3 = rotl(v3, 21); v3 ^= v0
    lo = (l0 + l3) >>> 0;
    h0 = (h0 + h3 + (lo < l0 ? 1 : 0)) >>> 0;
    l0 = lo;
    th = ((h3 << 21) | (l3 >>> 11)) >>> 0;
    tl = ((l3 << 21) | (h3 >>> 11)) >>> 0;
    h3 = (th ^ h0) >>> 0;
    l3 = (tl ^ l0) >>> 0;
    // v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)
    lo = (l2 + l1) >>> 0;
    h2 = (h2 + h1 + (lo < l2 ? 1 : 0)) >>> 0;
    l2 = lo;
    th = ((h1 << 17) | (l1 >>> 15)) >>> 0;
    tl = ((l1 << 17) | (h1 >>> 15)) >>> 0;
    h1 = (th ^ h2) >>> 0;
    l1 = (tl ^ l2) >>> 0;
    t = h2;
    h2 = l2;
    l2 = t;
  }
  return (l0 ^ l1 ^ l2 ^ l3) >>> 0;
}
