/**
 * Loads the addon (build/Release from a source build, else prebuilds/linux-x64) through
 * node-gyp-build, and describes its thin surface. Nothing here validates: callers do.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LvsError } from '../errors.js';

export interface NativeLayoutOptions {
  workers: number;
  maxServices: number;
  maxReals: number;
  commandRingWords: number;
  eventRingWords: number;
}

export interface NativeLayout {
  totalBytes: number;
  clockWord: number;
  notifyWord: number;
  commandRing: number;
  commandRingWords: number;
  ringHeaderBytes: number;
  eventRings: number[];
  eventRingWords: number;
  stats: number;
  stripeBytes: number;
  stripeServices: number;
  stripeReals: number;
}

export interface NativeConstants {
  ops: Record<string, number>;
  events: Record<string, number>;
  counters: string[];
  dropParseBase: number;
  states: string[];
  defaultTimeouts: number[];
  slotCounters: number;
  markRuleWords: number;
  schedulers: Record<string, number>;
  dumpRecordBytes: number;
  connEntryBytes: number;
  maxFrame: number;
  maxInterfaces: number;
}

export interface NativeOutput {
  iface: number;
  verdict: number;
  data: Buffer;
}

export interface NativeReplayResult {
  packets: number;
  tx: number;
  pass: number;
  drop: number;
  txBytes: number;
  ns: number;
}

export interface NativeDataplaneOptions extends NativeLayoutOptions {
  connectionCapacity: number;
  threaded: boolean;
  manualClock: boolean;
  memorySlots: number;
  seed: number;
}

export interface NativeDataplane {
  poll(): void;
  kick(): void;
  close(): void;
  inject(worker: number, ifaces: Uint16Array, frames: Uint8Array[]): number;
  collect(worker: number, max: number): NativeOutput[];
  replay(frames: Uint8Array[], ifaces: Uint16Array, total: number, worker: number): NativeReplayResult;
  takeDump(worker: number): Buffer | null;
  info(): { tableBytes: number; tableCapacity: number; workers: number; threaded: boolean };
}

export interface NativeAddon {
  Dataplane: new (options: NativeDataplaneOptions, region: Uint8Array, onEvents?: () => void) => NativeDataplane;
  layout(options: NativeLayoutOptions): NativeLayout;
  constants(): NativeConstants;
  maglevPopulate(offset: Uint32Array, skip: Uint32Array, turns: Int32Array, slots: Int32Array, size: number): Int32Array;
}

/** The package root: two levels up from both src/dataplane and dist/dataplane. */
export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

let addon: NativeAddon | undefined;
let table: NativeConstants | undefined;

/** The addon's constants (opcodes, counter names, sizes), read once. */
export function constants(): NativeConstants {
  return (table ??= native().constants());
}

export function native(): NativeAddon {
  if (addon) return addon;
  const require = createRequire(import.meta.url);
  try {
    // LVSD_ADDON names a specific build (a second build directory, a debug build).
    const explicit = process.env.LVSD_ADDON;
    addon = (explicit ? require(explicit) : require('node-gyp-build')(packageRoot)) as NativeAddon;
  } catch (cause) {
    throw new LvsError(
      'LVS_NATIVE_MISSING',
      'the lvsd dataplane addon is not built: run "npm install" (needs g++ and cmake) or "npm run build:native"',
      { cause },
    );
  }
  return addon;
}
