/**
 * An independent model of the IPVS schedulers, written for the tests from
 * shared/reference/ipvs.md section 1 (and the kernel sources it cites): the list of dests in
 * IPVS order, their live counts and OVERLOAD flags, and each scheduler's own state. The tests
 * replay random event sequences through it and through the dataplane and compare every choice.
 * It shares no code with src/ or native/ except the kernel's own hash functions (hsiphash is
 * checked against the kernel's test vector in test/sched/tables.test.ts).
 */
import { MH_HASH1, MH_HASH2, hsiphash1u32 } from '../../src/sched/hash.js';

export interface ModelDest {
  id: string; // address
  addr: number; // IPv4 as a number
  weight: number;
  lastWeight: number;
  u: number;
  l: number;
  active: number;
  inactive: number;
  overload: boolean;
}

const hash32 = (v: number, bits: number) => Math.imul(v >>> 0, 0x61c88647) >>> (32 - bits);
const gcd = (a: number, b: number): number => (b ? gcd(b, a % b) : a);
const overhead = (d: ModelDest) => d.active * 256 + d.inactive;

/** The xorshift64* generator the dataplane seeds per worker (for twos), in BigInt. */
export class ModelRng {
  private s: bigint;
  constructor(seed: number) {
    const M = (1n << 64n) - 1n;
    let z = (BigInt(seed) + 0x9e3779b97f4a7c15n) & M;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
    this.s = (z ^ (z >> 31n)) | 1n;
  }
  next(): number {
    const M = (1n << 64n) - 1n;
    this.s ^= this.s >> 12n;
    this.s = (this.s ^ (this.s << 25n)) & M;
    this.s ^= this.s >> 27n;
    return Number(((this.s * 0x2545f4914f6cdd1dn) & M) >> 32n);
  }
}

export class IpvsModel {
  /** IPVS list order: a new dest goes to the head. */
  list: ModelDest[] = [];
  /** Deleted dests keep their counts (their connections live on) and revive if re-added, until
   *  they have been idle for IP_VS_DEST_TRASH_PERIOD (120 s). */
  private trash = new Map<string, ModelDest & { idleSince: number | null }>();
  /** The model's clock (ms), advanced by the test with the dataplane's. */
  now = 0;
  private rng: ModelRng;
  // rr
  private rrCursor: ModelDest | null = null;
  // wrr
  private cl = -1;
  private cw = 0;
  private mw = 0;
  private di = 1;
  // sh / dh / mh tables (dest ids)
  private table: Array<ModelDest | null> = [];
  // lblc / lblcr caches: destination address -> dest / set (newest first)
  private lblc = new Map<number, ModelDest>();
  private lblcr = new Map<number, ModelDest[]>();

  constructor(
    readonly scheduler: string,
    readonly flags: { fallback: boolean; port: boolean },
    seed: number,
    readonly mhSize = 4093,
  ) {
    this.rng = new ModelRng(seed);
    this.changed(true);
  }

  private avail = (d: ModelDest) => d.weight > 0 && !d.overload;

  add(id: string, addr: number, weight: number, u = 0, l = 0): void {
    this.expireTrash();
    const trashed = this.trash.get(id);
    const d: ModelDest = trashed ?? { id, addr, weight, lastWeight: 0, u, l, active: 0, inactive: 0, overload: false };
    this.trash.delete(id);
    d.weight = weight;
    if (weight > 0) d.lastWeight = weight;
    d.u = u;
    d.l = l;
    d.overload = false; // __ip_vs_update_dest on a new (or revived) dest
    this.list.unshift(d);
    this.changed(false, 'add');
  }

  remove(id: string): void {
    const i = this.list.findIndex((d) => d.id === id);
    const d = this.list[i]!;
    if (this.rrCursor === d) this.rrCursor = i > 0 ? this.list[i - 1]! : null; // ip_vs_rr_del_dest
    this.list.splice(i, 1);
    this.trash.set(id, Object.assign(d, { idleSince: d.active + d.inactive ? null : this.now }));
    this.changed(false, 'del');
  }

  /** Trashed dests idle for 120 s are gone for good. */
  expireTrash(): void {
    for (const [id, d] of this.trash) {
      if (d.active + d.inactive) continue;
      if (d.idleSince === null) d.idleSince = this.now;
      else if (this.now - d.idleSince >= 120_000) this.trash.delete(id);
    }
  }

  setWeight(id: string, w: number): void {
    const d = this.list.find((x) => x.id === id)!;
    d.weight = w;
    if (w > 0) d.lastWeight = w;
    this.changed(false, 'upd');
  }

  dest(id: string): ModelDest {
    return this.list.find((d) => d.id === id) ?? this.trash.get(id)!;
  }

  // --- connection accounting (ip_vs_bind_dest / ip_vs_unbind_dest / TCP state changes)
  bind(d: ModelDest): void {
    d.active++; // the SYN makes it SYN_RECV, an active state, at once
    if (d.u && d.active + d.inactive >= d.u) d.overload = true;
  }
  close(d: ModelDest): void {
    d.active--;
    d.inactive++;
  }
  unbindInactive(d: ModelDest): void {
    d.inactive--;
    if (!d.overload) return;
    const total = d.active + d.inactive;
    if (d.l ? total < d.l : d.u ? total * 4 < d.u * 3 : true) d.overload = false;
  }

  /** The scheduler's add/del/upd hooks. */
  private changed(init: boolean, what?: 'add' | 'del' | 'upd'): void {
    if (this.scheduler === 'wrr') {
      let g = 0;
      let max = 0;
      for (const d of this.list) {
        if (d.weight > 0) g = g ? gcd(d.weight, g) : d.weight;
        max = Math.max(max, d.weight);
      }
      this.di = g || 1;
      this.mw = max - (this.di - 1);
      this.cl = -1;
      if (init || this.cw > this.mw || this.cw === 0) this.cw = this.mw;
      else if (this.di > 1) this.cw = Math.floor(this.cw / this.di) * this.di + 1;
    }
    if (this.scheduler === 'sh') this.table = this.fillSh();
    if (this.scheduler === 'dh' && what !== 'upd') this.table = Array.from({ length: 256 }, (_, i) => (this.list.length ? this.list[i % this.list.length]! : null));
    if (this.scheduler === 'mh') this.table = this.fillMh();
  }

  private fillSh(): Array<ModelDest | null> {
    const t: Array<ModelDest | null> = new Array(256).fill(null);
    if (!this.list.length) return t;
    let p = 0;
    let d = 0;
    for (let i = 0; i < 256; i++) {
      t[i] = this.list[p]!;
      if (++d >= this.list[p]!.weight) {
        p = (p + 1) % this.list.length;
        d = 0;
      }
    }
    return t;
  }

  private mhKey(addr: number, port: number, key: typeof MH_HASH1, offset: number): number {
    return hsiphash1u32((offset + port + addr) >>> 0, key);
  }

  private fillMh(): Array<ModelDest | null> {
    const M = this.mhSize;
    const t: Array<ModelDest | null> = new Array(M).fill(null);
    let g = 0;
    let max = 0;
    for (const d of this.list) {
      if (d.lastWeight > 0) g = g ? gcd(d.lastWeight, g) : d.lastWeight;
      max = Math.max(max, d.lastWeight);
    }
    if (g < 1) return t;
    const rshift = Math.max(0, 32 - Math.clz32(Math.floor(max / g)) - 6);
    // Dests' port 80 (all reals of these tests listen on the service's port).
    const ds = this.list.map((d) => ({
      perm: this.mhKey(d.addr, 80, MH_HASH1, 0) % M,
      skip: (this.mhKey(d.addr, 80, MH_HASH2, 0) % (M - 1)) + 1,
      turns: (Math.floor(d.lastWeight / g) >> rshift) || (d.lastWeight !== 0 ? 1 : 0),
    }));
    const taken = new Uint8Array(M);
    let n = 0;
    let dt = 0;
    for (;;) {
      for (let i = 0; i < ds.length; ) {
        if (ds[i]!.turns < 1) {
          i++;
          continue;
        }
        let c = ds[i]!.perm;
        while (taken[c]) {
          ds[i]!.perm = (ds[i]!.perm + ds[i]!.skip) % M;
          c = ds[i]!.perm;
        }
        taken[c] = 1;
        t[c] = this.list[i]!;
        if (++n === M) return t;
        if (++dt >= ds[i]!.turns) {
          dt = 0;
          i++;
        }
      }
    }
  }

  /** The choice for a new connection from caddr:cport to daddr; null = none available. */
  schedule(caddr: number, cport: number, daddr: number): ModelDest | null {
    const L = this.list;
    switch (this.scheduler) {
      case 'rr': {
        const start = this.rrCursor ? L.indexOf(this.rrCursor) : -1;
        for (let k = 1; k <= L.length; k++) {
          const d = L[(start + k) % L.length]!;
          if (this.avail(d)) return (this.rrCursor = d);
        }
        return null;
      }
      case 'wrr':
        return this.wrr();
      case 'lc': {
        let least: ModelDest | null = null;
        for (const d of L) if (!d.overload && d.weight !== 0 && (!least || overhead(d) < overhead(least))) least = d;
        return least;
      }
      case 'wlc':
      case 'sed': {
        const oh = this.scheduler === 'sed' ? (d: ModelDest) => d.active + 1 : overhead;
        const i = L.findIndex((d) => !d.overload && d.weight > 0);
        if (i < 0) return null;
        let least = L[i]!;
        for (const d of L.slice(i + 1)) if (!d.overload && oh(least) * d.weight > oh(d) * least.weight) least = d;
        return least;
      }
      case 'nq': {
        let least: ModelDest | null = null;
        for (const d of L) {
          if (d.overload || d.weight === 0) continue;
          if (d.active === 0) return d;
          if (!least || (least.active + 1) * d.weight > (d.active + 1) * least.weight) least = d;
        }
        return least;
      }
      case 'fo': {
        let best: ModelDest | null = null;
        for (const d of L) if (!d.overload && d.weight > (best?.weight ?? 0)) best = d;
        return best;
      }
      case 'ovf': {
        let best: ModelDest | null = null;
        for (const d of L) {
          if (d.overload || d.active > d.weight || d.weight === 0) continue;
          if (!best || d.weight > best.weight) best = d;
        }
        return best;
      }
      case 'twos': {
        const eligible = L.filter(this.avail);
        if (!eligible.length) return null;
        const total = eligible.reduce((s, d) => s + d.weight, 0) + 1;
        let r1 = this.rng.next() % total;
        let r2 = this.rng.next() % total;
        let c1: ModelDest | null = null;
        let c2: ModelDest | null = null;
        for (const d of eligible) {
          r1 -= d.weight;
          r2 -= d.weight;
          if (r1 <= 0 && !c1) c1 = d;
          if (r2 <= 0 && !c2) c2 = d;
          if (c1 && c2) break;
        }
        return c2 && c2.weight * overhead(c1!) > c1!.weight * overhead(c2) ? c2 : c1;
      }
      case 'sh':
      case 'mh': {
        const M = this.scheduler === 'sh' ? 256 : this.mhSize;
        const port = this.flags.port ? cport : 0;
        const key = this.scheduler === 'sh' ? (off: number) => (off + hash32(port + caddr, 8)) & 255 : (off: number) => this.mhKey(caddr, port, MH_HASH1, off) % M;
        const ihash = key(0);
        const d = this.table[ihash];
        if (!d) return null;
        if (this.avail(d)) return d;
        if (!this.flags.fallback) return null;
        for (let off = 0; off < M; off++) {
          const x = this.table[key((off + ihash) % M)];
          if (!x) break;
          if (this.avail(x)) return x;
        }
        return null;
      }
      case 'dh': {
        const d = this.table[hash32(daddr, 8)];
        return d && this.list.includes(d) && this.avail(d) ? d : null;
      }
      case 'lblc': {
        const cached = this.lblc.get(daddr);
        if (cached && L.includes(cached) && cached.weight > 0 && !this.isOverloaded(cached)) return cached;
        const d = this.wlcOf(L);
        if (d) this.lblc.set(daddr, d);
        return d;
      }
      case 'lblcr': {
        const set = this.lblcr.get(daddr);
        if (!set) {
          const d = this.wlcOf(L);
          if (d) this.lblcr.set(daddr, [d]);
          return d;
        }
        let least: ModelDest | null = null;
        for (const d of set) {
          if (d.overload || d.weight <= 0 || !L.includes(d)) continue;
          if (!least || overhead(least) * d.weight > overhead(d) * least.weight) least = d;
        }
        if (least && !this.isOverloaded(least)) return least;
        const d = this.wlcOf(L);
        if (d && !set.includes(d)) set.unshift(d);
        return d;
      }
    }
    throw new Error(`no model for ${this.scheduler}`);
  }

  private wlcOf(L: ModelDest[]): ModelDest | null {
    const i = L.findIndex((d) => !d.overload && d.weight > 0);
    if (i < 0) return null;
    let least = L[i]!;
    for (const d of L.slice(i + 1)) if (!d.overload && overhead(least) * d.weight > overhead(d) * least.weight) least = d;
    return least;
  }

  private isOverloaded(d: ModelDest): boolean {
    return d.active > d.weight && this.list.some((m) => m.active * 2 < m.weight);
  }

  /** ip_vs_wrr_schedule, line by line. */
  private wrr(): ModelDest | null {
    const L = this.list;
    if (this.mw === 0) return null;
    let dest = this.cl;
    const last = dest;
    let stop = -2;
    let lastPass = false;
    let restarted = false;
    for (;;) {
      for (let p = dest + 1; p < L.length; p++) {
        dest = p;
        const d = L[p]!;
        if (!d.overload && d.weight >= this.cw) {
          this.cl = p;
          return d;
        }
        if (p === stop) {
          this.cl = p;
          return null;
        }
      }
      dest = -1;
      this.cw -= this.di;
      if (this.cw <= 0) {
        this.cw = this.mw;
        if (lastPass || last === -1) {
          this.cl = -1;
          return null;
        }
        restarted = true;
      }
      lastPass = this.cw <= this.di;
      if (lastPass && restarted && last !== -1) stop = last;
    }
  }
}
