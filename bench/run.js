// npm run bench: every benchmark, one line per figure (`name value unit`), and the same
// figures written into docs/performance.md between its bench markers, with the machine, the
// date and the command that reproduces them.
//
//   npm run bench            full run (about three minutes; the network benchmarks, which
//                            need root, about two of them)
//   npm run bench -- --quick smaller counts and shorter runs, for a smoke test
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const quick = process.argv.includes('--quick');
const benches = [
  { title: 'Dataplane, one core, 64-byte frames (replay backend)', file: 'dataplane.js', args: quick ? ['--quick'] : [], node: [] },
  { title: 'Memory with 1M connection entries', file: 'rss.js', args: [], node: ['--expose-gc'] },
  { title: 'Scheduling: Maglev table build, and new connections/s per scheduler on one core', file: 'sched.js', args: quick ? ['--quick'] : [], node: [] },
  { title: 'Control plane (benchmark.js)', file: 'control.js', args: [], node: [] },
  // These make network namespaces (health.js its own; net.js and conn.js the lab): root only.
  { title: 'Health engine: 10,000 TCP checks at 1 s intervals, event-loop delay and CPU', file: 'health.js', args: quick ? ['--quick'] : [], node: [], needsRoot: true },
  { title: 'Packet rate through the director: 64-byte UDP on the namespace lab, against the raw ceiling and nftables', file: 'net.js', args: quick ? ['--quick'] : [], node: [], needsRoot: true },
  { title: 'Connection rate through the director: wrk, one connection per request, against HAProxy', file: 'conn.js', args: quick ? ['--quick'] : [], node: [], needsRoot: true },
  { title: 'Failover: kill -9 of the active lvsd with N long-lived NAT connections, takeover and surviving connections', file: 'failover.js', args: quick ? ['--quick'] : [], node: [], needsRoot: true },
];
const isRoot = process.getuid?.() === 0;

const sections = [];
for (const b of benches) {
  if (b.needsRoot && !isRoot) {
    console.error(`skipping bench/${b.file}: it needs root (network namespaces); its figures in docs/performance.md are left out`);
    continue;
  }
  const out = execFileSync(process.execPath, [...b.node, join(root, 'bench', b.file), ...b.args, '--json'], { cwd: root, encoding: 'utf8', maxBuffer: 1 << 26 });
  const figures = JSON.parse(out.trim().split('\n').at(-1));
  for (const f of figures) console.log(`${f.name} ${f.value} ${f.unit}`);
  sections.push({ ...b, figures });
}

const cpu = cpus()[0]?.model ?? 'unknown CPU';
const lines = [
  `Measured ${new Date().toISOString().slice(0, 10)} on ${cpu} (${cpus().length} cores), Node ${process.version}${quick ? ', quick mode' : ''}.`,
  `Reproduce: \`npm run bench\` (or the command above a table for just that one).`,
  '',
];
for (const s of sections) {
  lines.push(`#### ${s.title} — \`node ${[...s.node, `bench/${s.file}`, ...s.args].join(' ')}\``, '', '| figure | value | unit |', '|---|---:|---|');
  for (const f of s.figures) lines.push(`| ${f.name} | ${f.value.toLocaleString('en-US')} | ${f.unit} |`);
  lines.push('');
}
const doc = join(root, 'docs', 'performance.md');
const text = readFileSync(doc, 'utf8');
const begin = '<!-- bench:begin -->';
const end = '<!-- bench:end -->';
const a = text.indexOf(begin);
const z = text.indexOf(end);
if (a < 0 || z < a) throw new Error(`${doc} has no ${begin} ... ${end} section`);
writeFileSync(doc, `${text.slice(0, a + begin.length)}\n${lines.join('\n')}\n${text.slice(z)}`);
console.error(`wrote ${doc}`);
