import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/dataplane/native.js';

function node(script: string, env: Record<string, string> = {}) {
  return spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: packageRoot, encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } });
}

const load = `import { createRequire } from 'node:module'; const addon = createRequire(import.meta.url)('node-gyp-build')(process.cwd());`;
const make = `
  const layout = { workers: 2, maxServices: 4, maxReals: 4, commandRingWords: 1024, eventRingWords: 1024 };
  const region = new Uint8Array(new SharedArrayBuffer(addon.layout(layout).totalBytes));
  const dp = new addon.Dataplane({ ...layout, connectionCapacity: 1024, threaded: true, manualClock: false, memorySlots: 64, seed: 1 }, region, () => {});`;

describe('the addon at the edges of its life', () => {
  it('lets a process exit with worker threads still running and no close() (env cleanup joins them)', () => {
    const r = node(`${load}${make} console.log('running', dp.info().workers);`);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('running 2');
  });

  it('works inside a worker_thread, and the worker can be terminated while it runs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lvsd-worker-'));
    try {
      const file = join(dir, 'worker.cjs');
      writeFileSync(
        file,
        `const addon = require(${JSON.stringify(join(packageRoot, 'node_modules', 'node-gyp-build'))})(${JSON.stringify(packageRoot)});
${make}
require('node:worker_threads').parentPort.postMessage(dp.info().threaded);
setInterval(() => {}, 1000);`,
      );
      const r = node(`
        import { Worker } from 'node:worker_threads';
        const w = new Worker(${JSON.stringify(file)});
        w.on('message', async (m) => { console.log('worker says', m); await w.terminate(); console.log('terminated'); });
        w.on('error', (e) => { console.error(e); process.exit(1); });`);
      expect(r.stderr).toBe('');
      expect(r.stdout.trim().split('\n')).toEqual(['worker says true', 'terminated']);
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('builds a prebuild with prebuildify that node-gyp-build loads without a local build', () => {
    // In a scratch copy, so that rebuilding never disturbs build/ under the other tests.
    const dir = mkdtempSync(join(tmpdir(), 'lvsd-prebuild-'));
    try {
      for (const p of ['native', 'bindings', 'scripts', 'CMakeLists.txt', 'package.json']) cpSync(join(packageRoot, p), join(dir, p), { recursive: true });
      symlinkSync(join(packageRoot, 'node_modules'), join(dir, 'node_modules'));
      const build = spawnSync('npm', ['run', 'build:prebuilds'], { cwd: dir, encoding: 'utf8', timeout: 600_000 });
      expect(build.status, build.stderr).toBe(0);
      expect(existsSync(join(dir, 'prebuilds', 'linux-x64', 'lvsd.node'))).toBe(true);
      rmSync(join(dir, 'build'), { recursive: true, force: true });
      const r = spawnSync(process.execPath, ['-e', `const a = require('node-gyp-build')(${JSON.stringify(dir)}); console.log(a.constants().connEntryBytes)`], { cwd: dir, encoding: 'utf8', env: { ...process.env, PREBUILDS_ONLY: '1' } });
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe('128');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 600_000);
});
