// Runs the libFuzzer packet harness (native/fuzz/fuzz_packet.cpp) for a bounded time through
// scripts/fuzz.js. The first run also builds it with clang into build-fuzz/, hence the long
// timeout. It is not skipped when clang is missing: scripts/fuzz.js then fails and says to
// `apt-get install clang`.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('packet fuzzer', () => {
  it('runs 20 s without a crash or an invariant violation', () => {
    const r = spawnSync(process.execPath, ['scripts/fuzz.js', '--seconds', '20'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 240_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    const output = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
    const summary = output.split('\n').find((l) => l.startsWith('fuzz summary:'));
    // On failure, show what the fuzzer said (the tail holds the report and the reproducer).
    const context = `${summary ?? 'no summary line'}\n${output.slice(-8000)}`;
    expect(r.error, context).toBeUndefined();
    expect(r.status, context).toBe(0);
    expect(summary, context).toBeDefined();
    const executions = Number(/: (\d+) executions/.exec(summary ?? '')?.[1] ?? 0);
    expect(executions, context).toBeGreaterThan(0);
    expect(summary, context).toMatch(/result: ok/);
  }, 300_000);
});
