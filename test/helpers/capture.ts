/**
 * Frames as a peer sees them off the wire: tcpdump in a namespace, pcap on stdout.
 */
import { Netns } from '../../src/lab/netns.js';

/** Frames tcpdump sees on `dev` in `ns` (at most `count`, matching `filter`) while `action` runs. */
export async function capture(ns: Netns, dev: string, filter: string, count: number, action: () => Promise<unknown> | unknown): Promise<Buffer[]> {
  const child = ns.spawn('tcpdump', ['-i', dev, '-U', '-n', '-w', '-', '-c', String(count), filter]);
  const chunks: Buffer[] = [];
  child.stdout!.on('data', (d: Buffer) => chunks.push(d));
  let err = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('listening on')) resolve();
    });
    child.once('exit', () => reject(new Error(`tcpdump ended before listening: ${err}`)));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await action();
  const guard = setTimeout(() => child.kill('SIGTERM'), 10_000);
  await exited;
  clearTimeout(guard);
  return pcapFrames(Buffer.concat(chunks));
}

/** The frames of a pcap stream (either byte order). */
export function pcapFrames(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  if (b.length < 24) return out;
  const le = b.readUInt32LE(0) === 0xa1b2c3d4 || b.readUInt32LE(0) === 0xa1b23c4d;
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  for (let off = 24; off + 16 <= b.length; ) {
    const len = u32(off + 8);
    out.push(b.subarray(off + 16, off + 16 + len));
    off += 16 + len;
  }
  return out;
}
