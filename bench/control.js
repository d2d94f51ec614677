// Control-plane costs with benchmark.js: a validated, committed configuration change and a
// statistics read, each against the reference of one trivial call into the addon in the same
// run (the N-API boundary itself; ecosystem.md measured ~80 ns).
//
//   node bench/control.js [--json]
import Benchmark from 'benchmark';
import { Dataplane } from '../dist/index.js';

const dp = new Dataplane({ mode: 'manual' });
dp.setInterface({ id: 1, mac: '02:00:00:00:01:01', ipv4: '198.19.0.1' });
for (let s = 0; s < 100; s++) {
  const svc = { protocol: 'tcp', address: `198.18.1.${s}`, port: 80 };
  dp.addService(svc);
  for (let r = 0; r < 10; r++) dp.addReal(svc, { address: `198.19.${s}.${r + 1}`, port: 80, method: 'direct', interface: 1, mac: '02:00:00:00:01:11' });
}
dp.poll();
const svc = { protocol: 'tcp', address: '198.18.1.50', port: 80 };
const real = { address: '198.19.50.5' };
let w = 0;
let edits = 0;

const results = [];
const suite = new Benchmark.Suite();
suite
  .add('napi_call', () => dp.info())
  .add('edit_real_weight', () => {
    dp.editReal(svc, real, { weight: (w = (w + 1) % 100) });
    if (++edits % 1000 === 0) dp.poll(); // let the dataplane apply them as it goes
  })
  .add('list_services_100x10', () => dp.listServices())
  .on('cycle', (e) => results.push({ name: e.target.name, hz: e.target.hz }))
  .run();
dp.poll();
await dp.close();

const ref = results.find((r) => r.name === 'napi_call').hz;
const out = [];
for (const r of results) {
  out.push({ name: `${r.name}_per_s`, value: Math.round(r.hz), unit: 'ops/s' });
  if (r.name !== 'napi_call') out.push({ name: `${r.name}_cost_in_napi_calls`, value: +(ref / r.hz).toFixed(1), unit: 'ratio' });
}
if (process.argv.includes('--json')) console.log(JSON.stringify(out));
else for (const r of out) console.log(`${r.name} ${r.value} ${r.unit}`);
