/**
 * End-to-end fixtures: a namespace lab (src/lab/lab.ts) and a Director running in its director
 * namespace, in this test process. Everything is removed after the file, also after a failure.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { Director } from '../../src/director/director.js';
import type { DirectorConfig, Logger } from '../../src/director/types.js';
import { packageRoot } from '../../src/dataplane/native.js';
import { Lab, type LabOptions } from '../../src/lab/lab.js';

export const CLIENTS = join(packageRoot, 'test', 'e2e', 'clients');

export interface LogLine {
  level: 'info' | 'warn' | 'error' | 'debug';
  obj: Record<string, unknown>;
  msg: string;
}

/** A pino-shaped logger that keeps every line for the test to look at. */
export function memoryLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: LogLine['level']) => (obj: object, msg?: string) => lines.push({ level, obj: obj as Record<string, unknown>, msg: msg ?? '' });
  return { lines, info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') };
}

const labs: Lab[] = [];
const directors: Director[] = [];
afterAll(async () => {
  for (const d of directors.splice(0)) await d.stop();
  for (const l of labs.splice(0)) l.destroy();
});

export async function makeLab(options: LabOptions): Promise<Lab> {
  if (!existsSync(join(packageRoot, 'dist', 'lab', 'real-app.js'))) throw new Error('dist/ is missing: run "npm run build:ts" (npm test does)');
  const lab = await Lab.create(options);
  labs.push(lab);
  return lab;
}

export async function startDirector(lab: Lab, config: Omit<DirectorConfig, 'netns'>): Promise<{ director: Director; log: ReturnType<typeof memoryLogger> }> {
  const log = memoryLogger();
  const director = new Director({ announce: { count: 1 }, ...config, netns: lab.director.ns.name, logger: log });
  await director.start();
  directors.push(director);
  return { director, log };
}

export async function stopDirector(director: Director): Promise<void> {
  await director.stop();
  const i = directors.indexOf(director);
  if (i >= 0) directors.splice(i, 1);
}

export interface HttpResult {
  ok: number;
  failed: number;
  errors: Record<string, number>;
  byReal: Record<string, number>;
  seen: Array<{ name: string; addr: string | null; local: string | null }>;
}

/** Many HTTP requests from the client namespace, one TCP connection each. */
export async function httpLoad(lab: Lab, options: { url: string; count: number; concurrency?: number; path?: string; localAddresses?: string[]; expectBytes?: number; timeoutMs?: number }): Promise<HttpResult> {
  const r = await lab.runClient(join(CLIENTS, 'http.mjs'), [JSON.stringify(options)], { timeoutMs: 300_000 });
  return JSON.parse(r.stdout) as HttpResult;
}

export interface UdpResult {
  ok: number;
  failed: number;
  byReal: Record<string, number>;
  replies: Array<{ name: string; addr: string; from: string }>;
}

export async function udpLoad(lab: Lab, options: { address: string; port: number; count: number; localAddresses?: string[] }): Promise<UdpResult> {
  const r = await lab.runClient(join(CLIENTS, 'udp.mjs'), [JSON.stringify(options)], { timeoutMs: 120_000 });
  return JSON.parse(r.stdout) as UdpResult;
}

export function url(address: string, path = '/'): string {
  return `http://${address.includes(':') ? `[${address}]` : address}${path}`;
}

/** Poll until `fn` is true (health checks bring reals in on their own schedule). */
export async function waitFor(what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const started = Date.now();
  while (!(await fn())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
