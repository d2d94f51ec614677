/**
 * The memory backend: frames pushed in from JavaScript, and what would leave (on which
 * interface) or go to the kernel read back out. Tests, benchmarks and embedders without a NIC
 * use it; the packet path is the same native code as on a NIC.
 */
import { LvsError } from '../errors.js';
import type { Dataplane } from './dataplane.js';
import { constants, type NativeDataplane } from './native.js';
import { Verdict } from './protocol.js';
import type { Frame, OutputFrame, ReplayResult } from './types.js';
import * as v from './validate.js';

const PROCESS_TIMEOUT_MS = 10_000;

export class MemoryBackend {
  constructor(
    private readonly dp: Dataplane,
    private readonly nd: NativeDataplane,
  ) {}

  /** Queue frames for a worker; returns how many fit. */
  send(frames: Frame[], worker = 0): number {
    this.dp.ensureOpen();
    this.checkWorker(worker);
    const max = constants().maxFrame;
    frames.forEach((f, i) => {
      v.integer(f.iface, `frames[${i}].iface`, 0, 255, 'LVS_INVALID_INTERFACE');
      if (!(f.data instanceof Uint8Array)) throw new LvsError('LVS_INVALID_ARGUMENT', `frames[${i}].data: expected a Uint8Array`, { field: `frames[${i}].data` });
      if (f.data.length > max) throw new LvsError('LVS_FRAME_TOO_LARGE', `frames[${i}]: ${f.data.length} bytes exceed the memory backend's ${max}`, { field: `frames[${i}].data` });
    });
    return this.nd.inject(worker, Uint16Array.from(frames, (f) => f.iface), frames.map((f) => f.data));
  }

  /** Frames the worker has finished with: transmitted (tx) or handed to the kernel (pass). */
  receive(worker = 0, max = 1 << 16): OutputFrame[] {
    this.dp.ensureOpen();
    this.checkWorker(worker);
    return this.nd.collect(worker, max).map((o) => ({ iface: o.iface, action: o.verdict === Verdict.pass ? 'pass' : 'tx', data: o.data }));
  }

  /** Send frames through and return everything that comes out (any number of frames). */
  async process(frames: Frame[], worker = 0): Promise<OutputFrame[]> {
    const out: OutputFrame[] = [];
    const manual = this.dp.options.mode === 'manual';
    let at = 0;
    while (at < frames.length) {
      const before = this.dp.rxPackets(worker);
      const n = this.send(frames.slice(at), worker);
      at += n;
      if (manual) {
        this.dp.poll();
      } else {
        const deadline = Date.now() + PROCESS_TIMEOUT_MS;
        while (this.dp.rxPackets(worker) < before + n) {
          if (Date.now() > deadline) throw new LvsError('LVS_TIMEOUT', 'the dataplane did not process the frames in time');
          await new Promise((r) => setTimeout(r, 1));
        }
      }
      out.push(...this.receive(worker));
    }
    return out;
  }

  /** Manual mode: run `frames` round and round through one worker, `packets` in all, and time it. */
  replay(frames: Frame[], packets: number, worker = 0): ReplayResult {
    this.dp.ensureOpen();
    if (this.dp.options.mode !== 'manual') throw new LvsError('LVS_MODE', 'replay() needs mode "manual"');
    this.checkWorker(worker);
    v.integer(packets, 'packets', 0, Number.MAX_SAFE_INTEGER, 'LVS_INVALID_ARGUMENT');
    this.dp.poll();
    const r = this.nd.replay(frames.map((f) => f.data), Uint16Array.from(frames, (f) => f.iface), packets, worker);
    const seconds = r.ns / 1e9;
    return { packets: r.packets, tx: r.tx, pass: r.pass, drop: r.drop, txBytes: r.txBytes, seconds, packetsPerSecond: seconds > 0 ? r.packets / seconds : 0 };
  }

  private checkWorker(worker: number): void {
    v.integer(worker, 'worker', 0, this.dp.options.workers - 1, 'LVS_INVALID_ARGUMENT');
  }
}

