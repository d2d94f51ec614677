// Scheduling figures: the Maglev table build (in TypeScript, where lvsd computes it) for 1000
// reals at M = 65537, against IPVS's own populate loop transcribed literally, in the same run;
// and how many new connections per second one worker schedules with each scheduler, for 10
// and 1000 reals, as a ratio to round-robin in the same run.
//
//   node bench/sched.js [--quick] [--json]
import { Dataplane } from '../dist/index.js';
import { packet } from '../dist/lab/frames.js';
import { MH_HASH1, MH_HASH2 } from '../dist/sched/hash.js';
import { maglevTable, mhHash } from '../dist/sched/tables.js';

const args = new Set(process.argv.slice(2));
const quick = args.has('--quick');
const results = [];
const report = (name, value, unit) => {
  results.push({ name, value, unit });
  if (!args.has('--json')) console.log(`${name} ${value} ${unit}`);
};

// --- Maglev build
const reals = Array.from({ length: 1000 }, (_, i) => ({ slot: i, family: 'ipv4', address: Uint8Array.of(198, 19, i >> 8, i & 255), port: 80, lastWeight: 1 }));

/** ip_vs_mh_populate, probing only: the reference. */
function ipvsPopulate(list, size) {
  const table = new Int32Array(size).fill(-1);
  const perm = Int32Array.from(list, (r) => mhHash(r.family, r.address, r.port, MH_HASH1) % size);
  const skip = Int32Array.from(list, (r) => (mhHash(r.family, r.address, r.port, MH_HASH2) % (size - 1)) + 1);
  const taken = new Uint8Array(size);
  let n = 0;
  for (;;) {
    for (let i = 0; i < list.length; i++) {
      let c = perm[i];
      while (taken[c]) {
        c += skip[i];
        if (c >= size) c -= size;
      }
      perm[i] = c;
      taken[c] = 1;
      table[c] = list[i].slot;
      if (++n === size) return table;
    }
  }
}

function median(fn, runs) {
  for (let i = 0; i < 20; i++) fn(); // warm the JIT
  const t = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    t.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return t.sort((a, b) => a - b)[t.length >> 1];
}
const runs = quick ? 21 : 101;
const ours = median(() => maglevTable(reals, 65537), runs);
const reference = median(() => ipvsPopulate(reals, 65537), runs);
report('maglev_build_1000_reals_65537_ms', +ours.toFixed(3), 'ms');
report('maglev_build_ipvs_loop_ms', +reference.toFixed(3), 'ms');
report('maglev_build_vs_ipvs_loop', +(reference / ours).toFixed(2), 'ratio');
report('maglev_build_vs_paper_1_8ms', +(1.8 / ours).toFixed(2), 'ratio');

// --- Selection rate per scheduler
const SCHEDULERS = ['rr', 'wrr', 'lc', 'wlc', 'sed', 'nq', 'fo', 'ovf', 'twos', 'sh', 'dh', 'mh', 'lblc', 'lblcr'];
const SYNS = quick ? 20_000 : 100_000;
const byDest = (s) => s === 'dh' || s === 'lblc' || s === 'lblcr';

function synFrames(destinationKeyed) {
  const out = [];
  for (let i = 0; i < SYNS; i++) {
    const dst = destinationKeyed ? `198.18.64.${1 + (i % 250)}` : '198.18.0.10';
    out.push({ iface: 0, data: packet({ src: `198.18.${100 + ((i >> 16) & 63)}.${1 + ((i >> 8) & 255) % 254}`, dst, proto: 'tcp', sport: 1024 + (i & 0xffff) % 60000, dport: 80, flags: 'S' }) });
  }
  return out;
}
const frames = { plain: synFrames(false), dest: synFrames(true) };

for (const n of [10, 1000]) {
  let rr = 0;
  for (const scheduler of SCHEDULERS) {
    const dp = new Dataplane({ mode: 'manual', connectionCapacity: 1 << 18, maxReals: 2048, seed: 3 });
    dp.setInterface({ id: 0, mac: '02:00:00:00:00:01', ipv4: '198.18.0.1' });
    dp.setInterface({ id: 1, mac: '02:00:00:00:01:01', ipv4: '198.19.0.1' });
    const key = byDest(scheduler) ? { fwmark: 5 } : { protocol: 'tcp', address: '198.18.0.10', port: 80 };
    const weight = (i) => (scheduler === 'ovf' ? 60_000 : 1 + (i % 4) * 1000); // ovf wants room
    dp.transaction((tx) => {
      tx.addService({ ...key, scheduler, ...(scheduler === 'mh' ? { maglevTableSize: 65537 } : {}) });
      if (byDest(scheduler)) tx.setMarkRules([{ mark: 5, destination: '198.18.64.0/24' }]);
      for (let i = 0; i < n; i++) tx.addReal(key, { address: `198.19.${i >> 8}.${i & 255}`, port: byDest(scheduler) ? 0 : 80, method: 'direct', interface: 1, mac: '02:00:00:00:01:11', weight: weight(i) });
    });
    dp.poll();
    const r = dp.memory.replay(byDest(scheduler) ? frames.dest : frames.plain, SYNS);
    if (r.tx !== SYNS) throw new Error(`${scheduler}: ${r.tx} of ${SYNS} scheduled`);
    if (scheduler === 'rr') rr = r.packetsPerSecond;
    report(`schedule_${scheduler}_${n}_reals`, Math.round(r.packetsPerSecond), 'connections/s');
    if (scheduler !== 'rr') report(`schedule_${scheduler}_${n}_reals_vs_rr`, +(r.packetsPerSecond / rr).toFixed(3), 'ratio');
    await dp.close();
  }
}

if (args.has('--json')) console.log(JSON.stringify(results));
