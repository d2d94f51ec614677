/**
 * The deterministic byte stream the lab's real servers send for `GET /blob?size=N&seed=S`,
 * so that a test can compute the SHA-256 it expects without trusting the server.
 *
 * Byte i of the stream for a seed is byte (i % 4) (little end first) of word(seed, i >> 2),
 * where word() is a counter-based 32-bit mixer (the murmur3 finaliser constants, applied to
 * seed + k * golden ratio). Being counter-based, any range can be produced on its own, so a
 * server can stream it in chunks of any size and a client can check a part.
 */
import { createHash } from 'node:crypto';

function word(seed: number, k: number): number {
  let x = (seed + Math.imul(k, 0x9e3779b9)) | 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Bytes [offset, offset + length) of the stream for `seed` (an integer, taken mod 2^32). */
export function blobBytes(seed: number, offset: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  const s = seed | 0;
  let i = 0;
  // A ragged start: the bytes of the first word that fall in the range.
  while (i < length && (offset + i) % 4 !== 0) {
    const at = offset + i;
    out[i] = (word(s, Math.floor(at / 4)) >>> (8 * (at % 4))) & 0xff;
    i++;
  }
  let k = Math.floor((offset + i) / 4);
  for (; i + 4 <= length; i += 4, k++) out.writeUInt32LE(word(s, k), i);
  for (let j = 0; i < length; i++, j++) out[i] = (word(s, k) >>> (8 * j)) & 0xff;
  return out;
}

/** The hex SHA-256 of the first `size` bytes of the stream for `seed`. */
export function blobSha256(size: number, seed: number): string {
  const h = createHash('sha256');
  const chunk = 1 << 20;
  for (let off = 0; off < size; off += chunk) h.update(blobBytes(seed, off, Math.min(chunk, size - off)));
  return h.digest('hex');
}
