#!/usr/bin/env node
// Build the libFuzzer packet harness (native/fuzz/fuzz_packet.cpp) with clang, ASan and UBSan
// into build-fuzz/, then fuzz for a bounded time on a copy of the seed corpus.
//
//   node scripts/fuzz.js [--seconds N]      (npm run fuzz -- --seconds N)
//
// Exits with the fuzzer's exit code (0: nothing found). Crash reproducers are written to
// native/fuzz/findings/; replay one with: build-fuzz/fuzz_packet native/fuzz/findings/<file>
// The last line printed is a summary: executions, corpus size and the result.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = path.join(root, 'build-fuzz');
const seedDir = path.join(root, 'native/fuzz/corpus');
const findingsDir = path.join(root, 'native/fuzz/findings');
const exe = path.join(buildDir, 'fuzz_packet');

function fail(message, code = 1) {
  console.error(`fuzz: ${message}`);
  process.exit(code);
}

function parseArgs(argv) {
  let seconds = 30;
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    let value;
    if (a === '--seconds') value = argv[++i];
    else if (a.startsWith('--seconds=')) value = a.slice('--seconds='.length);
    else if (a === '--help' || a === '-h') {
      console.log('usage: node scripts/fuzz.js [--seconds N]   (default 30)');
      process.exit(0);
    } else fail(`unknown argument ${a} (usage: node scripts/fuzz.js [--seconds N])`, 2);
    if (!/^[1-9][0-9]*$/.test(value ?? '')) fail(`--seconds needs a positive whole number, got ${value}`, 2);
    seconds = Number(value);
  }
  return { seconds };
}

// A tool must be there; say how to get it on Debian rather than skipping.
function requireTool(cmd, pkg) {
  const r = spawnSync(cmd, ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0)
    fail(`${cmd} not found: the fuzzer needs it. Install it with: sudo apt-get install ${pkg}`);
}

function run(cmd, args, what, hint = '') {
  const r = spawnSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.error) fail(`${what}: ${r.error.message}`);
  if (r.status !== 0) fail(`${what} failed (exit ${r.status ?? r.signal})${hint}`, r.status || 1);
}

function build() {
  requireTool('clang++', 'clang');  // libFuzzer ships with clang (libclang-rt-*-dev)
  requireTool('cmake', 'cmake');
  requireTool('ninja', 'ninja-build');
  run('cmake', [
    '-S', root, '-B', buildDir, '-G', 'Ninja',
    '-DLVSD_FUZZ=ON',
    '-DCMAKE_CXX_COMPILER=clang++',
    '-DCMAKE_BUILD_TYPE=RelWithDebInfo',
    '-DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all',
  ], 'cmake configure');
  run('cmake', ['--build', buildDir, '--target', 'fuzz_packet'], 'build of fuzz_packet',
      '. libFuzzer and the sanitizer runtimes come with clang: sudo apt-get install clang ' +
      '(and the libclang-rt-<version>-dev package matching clang++ --version, if it is separate)');
}

function seedCorpus() {
  const has = () => fs.existsSync(seedDir) && fs.readdirSync(seedDir).length > 0;
  if (!has()) run(process.execPath, [path.join(root, 'scripts/fuzz-seeds.js'), seedDir], 'writing the seed corpus');
  if (!has()) fail(`no seed corpus in ${seedDir}`);
  return fs.readdirSync(seedDir);
}

// Run the fuzzer, echoing its output and keeping it for the summary.
function fuzz(corpusDir, seconds) {
  const args = [
    corpusDir,
    `-max_total_time=${seconds}`,
    '-timeout=5',
    '-rss_limit_mb=2048',
    `-artifact_prefix=${findingsDir}${path.sep}`,
    '-print_final_stats=1',
  ];
  console.log(`fuzz: ${path.relative(root, exe)} ${args.join(' ')}`);
  return new Promise((resolve) => {
    const child = spawn(exe, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    const tee = (out) => (chunk) => {
      log += chunk.toString();
      out.write(chunk);
    };
    child.stdout.on('data', tee(process.stdout));
    child.stderr.on('data', tee(process.stderr));
    child.on('error', (err) => fail(`could not run ${exe}: ${err.message}`));
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), signal, log }));
  });
}

function summarise(log, code, signal, seeds, elapsed) {
  const last = (re) => {
    let m, found;
    const g = new RegExp(re.source, 'gm');
    while ((m = g.exec(log))) found = m;
    return found;
  };
  const stat = last(/^stat::number_of_executed_units: (\d+)/);
  const status = last(/^#(\d+)\s+\S+.*?corp: (\d+)\//);
  const done = last(/^Done (\d+) runs in/);
  const executions = Number(stat?.[1] ?? done?.[1] ?? status?.[1] ?? 0);
  const corpus = Number(status?.[2] ?? 0);
  const artifact = last(/Test unit written to (\S+)/)?.[1];
  let result;
  if (code === 0) result = 'ok';
  else if (/INVARIANT VIOLATED/.test(log)) result = 'invariant violation';
  else if (/ERROR: AddressSanitizer/.test(log)) result = 'AddressSanitizer error';
  else if (/runtime error:/.test(log)) result = 'UndefinedBehaviorSanitizer error';
  else if (/ERROR: libFuzzer: timeout/.test(log)) result = 'timeout';
  else if (/out-of-memory/.test(log)) result = 'out of memory';
  else if (/deadly signal/.test(log)) result = 'crash';
  else result = `failed (exit ${code}${signal ? `, ${signal}` : ''})`;
  if (artifact) result += `, reproducer ${path.relative(root, artifact)}`;
  const rate = elapsed > 0 ? Math.round(executions / elapsed) : 0;
  console.log(`fuzz summary: ${executions} executions in ${elapsed.toFixed(0)} s (${rate}/s), ` +
              `corpus ${corpus} inputs (${seeds} seeds), result: ${result}`);
}

const { seconds } = parseArgs(process.argv.slice(2));
build();
const seeds = seedCorpus();
fs.mkdirSync(findingsDir, { recursive: true });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lvsd-fuzz-'));
const corpusDir = path.join(tmp, 'corpus');
fs.mkdirSync(corpusDir);
for (const f of seeds) fs.copyFileSync(path.join(seedDir, f), path.join(corpusDir, f));
const started = Date.now();
const { code, signal, log } = await fuzz(corpusDir, seconds);
summarise(log, code, signal, seeds.length, (Date.now() - started) / 1000);
fs.rmSync(tmp, { recursive: true, force: true });
process.exit(code);
