/**
 * IPVS's rate estimator, exactly (reference/ipvs.md section 8; Linux
 * net/netfilter/ipvs/ip_vs_est.c, estimation_timer / ip_vs_chain_estimation,
 * ip_vs_read_estimator and ip_vs_zero_estimator): what `ipvsadm -L --rate` shows.
 *
 * Every 2 seconds the counters are sampled. The rate of the last 2 s is scaled to fixed point:
 * connections and packets by 2^10 (the difference << 9: 2^10 per second over 2 s), bytes by
 * 2^5 (<< 4). Each average then moves a quarter of the way to that rate, with the kernel's
 * arithmetic (u64 fields, an s64 difference shifted arithmetically: `avg += (rate - avg) >> 2`).
 * The readout rounds: `(avg + 0x1FF) >> 10` per second for connections and packets,
 * `(avg + 0xF) >> 5` for bytes.
 *
 * The class is pure: the caller runs the 2 s clock. lvsd keeps one per service and per real,
 * samples them from the dataplane's counters, serves rates() in the `list` response, and
 * calls reset() when it zeroes the counters.
 */
import type { Rates } from '../daemon/protocol.js';

/** The five IPVS counters (struct ip_vs_kstats), as totals. */
export interface EstimatorCounters {
  conns: number;
  inpkts: number;
  outpkts: number;
  inbytes: number;
  outbytes: number;
}

/** Sampling period of the kernel's estimator, milliseconds. */
export const ESTIMATOR_PERIOD_MS = 2000;

const KEYS = ['conns', 'inpkts', 'outpkts', 'inbytes', 'outbytes'] as const;
/** << 9 for conns/packets (2^10 scale over 2 s), << 4 for bytes (2^5 over 2 s). */
const SHIFT = [9n, 9n, 9n, 4n, 4n] as const;

const u64 = (x: bigint) => BigInt.asUintN(64, x);
const s64 = (x: bigint) => BigInt.asIntN(64, x);

function big(n: number, what: string): bigint {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`estimator: ${what} must be a non-negative integer, got ${n}`);
  return BigInt(n);
}

export class Estimator {
  /** last_conns .. last_outbytes */
  private readonly last: bigint[];
  /** cps, inpps, outpps (x 2^10), inbps, outbps (x 2^5) */
  private readonly avg: bigint[] = [0n, 0n, 0n, 0n, 0n];

  /** A new estimator starts from `initial` (default zeros, as IPVS's zeroed allocation for a
   *  new service or real: its first sample counts everything since creation). */
  constructor(initial: EstimatorCounters = { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 }) {
    this.last = KEYS.map((k) => big(initial[k], k));
  }

  /** One 2-second tick with the counters' current totals. */
  sample(counters: EstimatorCounters): void {
    KEYS.forEach((k, i) => {
      const n = big(counters[k], k);
      const rate = u64((n - this.last[i]!) << SHIFT[i]!);
      this.last[i] = n;
      this.avg[i] = u64(this.avg[i]! + (s64(s64(rate) - s64(this.avg[i]!)) >> 2n));
    });
  }

  /** The rates ipvsadm --rate shows: connections, packets and bytes per second. */
  rates(): Rates {
    const read = (i: number, round: bigint, shift: bigint) => Number(u64(this.avg[i]! + round) >> shift);
    return {
      cps: read(0, 0x1ffn, 10n),
      inpps: read(1, 0x1ffn, 10n),
      outpps: read(2, 0x1ffn, 10n),
      inbps: read(3, 0xfn, 5n),
      outbps: read(4, 0xfn, 5n),
    };
  }

  /**
   * ipvsadm -Z (ip_vs_zero_estimator): the averages go to zero and the next sample measures
   * from `counters`, the totals as they will be fed next. After lvsd zeroes a service its
   * reported counters restart at 0, which is the default.
   */
  reset(counters: EstimatorCounters = { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 }): void {
    KEYS.forEach((k, i) => {
      this.last[i] = big(counters[k], k);
      this.avg[i] = 0n;
    });
  }
}
