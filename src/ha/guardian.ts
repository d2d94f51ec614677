/**
 * The guardian: a small process lvsd starts when it runs failover, which outlives it for one
 * purpose. When lvsd exits without cleaning up (kill -9, a crash, the OOM killer), its XDP
 * program goes with it, but the VIPs and the NAT router address stay on the device and the
 * kernel keeps answering ARP for them: the two routers would then both claim the VIPs. The
 * guardian holds a pipe from lvsd; when the pipe closes without lvsd saying goodbye, it takes
 * down the addresses lvsd last said it held, and exits. It leaves lvsd's nftables table (the
 * crash guard, src/director/director.ts installGuard) in place: the reals keep sending NAT
 * replies to this router until the partner's gratuitous ARPs reach them, and the kernel must
 * drop those, not forward them untranslated (the client would answer them with resets that
 * end the connections at the reals). The next lvsd here replaces or removes the table.
 *
 * Protocol on stdin, one JSON object per line:
 *   {"addresses": [{"device": "pub", "address": "198.18.0.100", "prefixLength": 32}, ...]}
 *   {"bye": true}            lvsd is stopping cleanly: exit without touching anything
 * Run as `node guardian.js [--netns NAME]`.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../director/types.js';

export interface HeldAddress { device: string; address: string; prefixLength: number }

/** lvsd's end: start the guardian and keep it told. */
export class Guardian {
  private readonly child;
  private closed = false;

  constructor(netns: string | undefined, log: Logger) {
    const script = fileURLToPath(import.meta.url);
    this.child = spawn(process.execPath, [script, ...(netns ? ['--netns', netns] : [])], { stdio: ['pipe', 'ignore', 'inherit'], detached: true });
    this.child.on('error', (e) => log.warn({ event: 'guardian', err: e.message }, `guardian: ${e.message}`));
    this.child.stdin!.on('error', () => {});
    // The guardian must not keep lvsd's event loop alive, nor die with lvsd's process group.
    this.child.unref();
    (this.child.stdin as unknown as { unref?: () => void }).unref?.();
    log.info({ event: 'guardian', pid: this.child.pid }, `guardian ${this.child.pid} started: it takes the virtual addresses down if lvsd dies without doing so`);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  update(addresses: HeldAddress[]): void {
    if (this.closed) return;
    this.child.stdin!.write(`${JSON.stringify({ addresses })}\n`);
  }

  /** lvsd stops cleanly: the guardian exits without touching anything. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.child.stdin!.end(`${JSON.stringify({ bye: true })}\n`);
  }
}

async function main(): Promise<void> {
  const i = process.argv.indexOf('--netns');
  const netns = i >= 0 ? process.argv[i + 1] : undefined;
  // Detached: a terminal's SIGINT to lvsd's group is not for us.
  process.on('SIGINT', () => {});
  process.on('SIGHUP', () => {});
  const { Host } = await import('../host/host.js');
  const host = new Host(netns);
  let held: HeldAddress[] = [];
  let bye = false;
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  lines.on('line', (line) => {
    try {
      const m = JSON.parse(line) as { addresses?: HeldAddress[]; bye?: boolean };
      if (Array.isArray(m.addresses)) held = m.addresses;
      if (m.bye) bye = true;
    } catch {
      // Not from lvsd; ignore.
    }
  });
  lines.on('close', () => {
    if (bye) process.exit(0);
    const say = (msg: string) => process.stderr.write(`${JSON.stringify({ level: 40, time: Date.now(), pid: process.pid, event: 'guardian', msg })}\n`);
    say(`lvsd exited without cleaning up: taking down ${held.length} address(es)`);
    for (const a of held) {
      try {
        host.delAddress(a.device, a.address, a.prefixLength);
        say(`${a.address}/${a.prefixLength} down on ${a.device}`);
      } catch (e) {
        say(`${a.address} on ${a.device}: ${(e as Error).message}`);
      }
    }
    process.exit(0);
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((e: Error) => {
    process.stderr.write(`guardian: ${e.message}\n`);
    process.exit(1);
  });
}
