// Memory with 1M live connection entries, in a process of its own so that nothing else
// inflates the figure: resident set before the table exists, with the table empty (it is
// mapped lazily: only used entries cost memory), with 1M entries, and the peak. The SYN frames
// are one reused set whose source addresses are rewritten per chunk, so the JavaScript heap
// does not grow with the count.
//
//   node --expose-gc bench/rss.js [--json]
import { Dataplane } from '../dist/index.js';
import { checksum, packet, pseudo } from '../dist/lab/frames.js';

const ENTRIES = 1_000_000;
const CHUNK = 50_000; // one client address per chunk, 50,000 ports each
const mb = (b) => +(b / 2 ** 20).toFixed(1);
const results = [];
const report = (name, value, unit) => {
  results.push({ name, value, unit });
  if (!process.argv.includes('--json')) console.log(`${name} ${value} ${unit}`);
};

const svc = { protocol: 'tcp', address: '198.18.0.10', port: 80 };
const frames = Array.from({ length: CHUNK }, (_, i) => ({
  iface: 0,
  data: packet({ src: '198.18.100.1', dst: svc.address, proto: 'tcp', sport: 10_000 + i, dport: 80, flags: 'S' }),
}));
/** Move every frame of the set to client address 198.18.100.<n>, checksums recomputed. */
function retarget(n) {
  for (const { data } of frames) {
    data[14 + 15] = n;
    data.writeUInt16BE(0, 14 + 10);
    data.writeUInt16BE(checksum(data.subarray(14, 34)), 14 + 10);
    data.writeUInt16BE(0, 34 + 16);
    data.writeUInt16BE(checksum(data.subarray(34), pseudo(`198.18.100.${n}`, svc.address, 6, data.length - 34)), 34 + 16);
  }
}

global.gc?.();
const before = process.memoryUsage().rss;
const dp = new Dataplane({ mode: 'manual', connectionCapacity: 1 << 20, seed: 7 });
dp.setInterface({ id: 0, mac: '02:00:00:00:00:01', ipv4: '198.18.0.1' });
dp.setInterface({ id: 1, mac: '02:00:00:00:01:01', ipv4: '198.19.0.1' });
dp.addService(svc);
dp.addReal(svc, { address: '198.19.0.11', port: 8080, method: 'nat', interface: 1, mac: '02:00:00:00:01:11' });
dp.poll();
retarget(1);
dp.memory.replay(frames, 1); // warm the replay path, so "empty" includes its buffers
global.gc?.();
const empty = process.memoryUsage().rss;

for (let n = 1; n <= ENTRIES / CHUNK; n++) {
  retarget(n);
  dp.memory.replay(frames, CHUNK);
}
const count = dp.counters().conn_count;
if (count !== ENTRIES) throw new Error(`expected ${ENTRIES} entries, have ${count}`);
global.gc?.();
const full = process.memoryUsage().rss;
const peak = process.resourceUsage().maxRSS * 1024;

report('rss_before_dataplane', mb(before), 'MiB');
report('rss_empty_table_1M_capacity', mb(empty), 'MiB');
report('rss_1M_entries', mb(full), 'MiB');
report('rss_peak_1M_entries', mb(peak), 'MiB');
report('rss_per_entry', Math.round((full - empty) / ENTRIES), 'bytes');
await dp.close();
if (process.argv.includes('--json')) console.log(JSON.stringify(results));
