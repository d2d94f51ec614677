/**
 * The wire format of the state-sync channel between two directors (docs/failover.md, "Sync
 * channel", has the byte layout). One TCP connection per direction of use: the active dials,
 * the backup accepts.
 *
 * - HELLO (28 bytes, fixed): 'LVSS', version, role, record size, node id, 16-byte random nonce.
 *   Fixed size, so nothing a peer says before it is authenticated makes us buffer more than
 *   HELLO + AUTH (60 bytes).
 * - AUTH (32 bytes): HMAC-SHA256(key, label | sender's role | sender's HELLO | receiver's HELLO).
 *   It covers both nonces and both node ids, so a recorded handshake is worthless on a new
 *   connection (the other side's nonce is new) and a reflected AUTH fails (order and role differ).
 * - Frames: u32 length | u8 type | u64 sequence | payload | 32-byte HMAC-SHA256, where length
 *   counts everything after itself and the MAC covers a direction label, both nonces, length,
 *   type, sequence and payload. Sequences start at 1 on each link and rise by exactly 1 per frame
 *   in each direction.
 *
 * Everything here is pure; decoders never throw on bad input, they return a typed failure.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { LvsError } from '../errors.js';

export const SYNC_MAGIC = 0x4c565353; // "LVSS"
export const SYNC_VERSION = 1;
export const SYNC_DEFAULT_PORT = 8848; // the port IPVS's sync daemon uses (reference/ipvs.md section 6)
export const HELLO_BYTES = 28;
export const NONCE_BYTES = 16;
export const AUTH_BYTES = 32;
export const MAC_BYTES = 32;
/** u32 length | u8 type | u64 sequence. */
export const FRAME_HEADER_BYTES = 13;
/** Bytes a frame adds to its payload. */
export const FRAME_OVERHEAD = FRAME_HEADER_BYTES + MAC_BYTES;
export const DIGEST_BYTES = 16;

/** Who sent a HELLO: the dialer (the active node, which sends state) or the acceptor. */
export type SyncRole = 'dialer' | 'acceptor';
const ROLE_CODE: Record<SyncRole, number> = { dialer: 1, acceptor: 2 };

export const FRAME_TYPES = {
  config: 1,
  'config-result': 2,
  records: 3,
  'dump-begin': 4,
  'dump-end': 5,
  ping: 6,
  pong: 7,
  /** The backup asks for a full dump (it could not place some records: reals it did not have yet). */
  'resync-request': 8,
} as const;
export type FrameType = keyof typeof FRAME_TYPES;
const TYPE_BY_CODE = new Map<number, FrameType>((Object.entries(FRAME_TYPES) as [FrameType, number][]).map(([k, v]) => [v, k]));
export const FRAME_TYPE_NAMES = Object.keys(FRAME_TYPES) as FrameType[];

/** Which frame types each side may send: the dialer streams state, the acceptor answers. */
export const ALLOWED_FROM: Record<SyncRole, ReadonlySet<FrameType>> = {
  dialer: new Set<FrameType>(['config', 'records', 'dump-begin', 'dump-end', 'ping']),
  acceptor: new Set<FrameType>(['config-result', 'pong', 'resync-request']),
};

export type SyncRejectReason =
  | 'unexpected-source'  // a connection from an address that is not the partner's
  | 'bad-magic'          // the first bytes are not an lvsd sync HELLO
  | 'unknown-version'
  | 'bad-role'           // the peer has the same role as we do on this connection
  | 'record-size'        // the peer's record size differs from ours (another dataplane version)
  | 'reflected'          // the peer claims our own node id
  | 'bad-auth'           // the AUTH does not verify: wrong key, or a replayed/reflected handshake
  | 'handshake-timeout'  // no complete handshake in time
  | 'bad-length'         // a frame shorter than its header and MAC
  | 'oversized'          // a frame longer than the maximum (refused before it is buffered)
  | 'bad-mac'            // a frame that does not verify: altered, or from another link
  | 'sequence'           // a frame out of sequence: replayed, dropped or reordered
  | 'unknown-type'
  | 'unexpected-type'    // a known type the peer's role may not send, or a dump out of order
  | 'bad-payload'        // a payload that does not parse (e.g. records not whole)
  | 'busy';              // too many connections still in their handshake

export interface Hello {
  version: number;
  role: SyncRole;
  recordBytes: number;
  nodeId: number;
  nonce: Buffer;
}

export type Result<T> = { ok: true; value: T } | { ok: false; reason: SyncRejectReason; detail: string };
const fail = <T>(reason: SyncRejectReason, detail: string): Result<T> => ({ ok: false, reason, detail });

export function newNonce(): Buffer {
  return randomBytes(NONCE_BYTES);
}

export function encodeHello(h: Omit<Hello, 'version'>): Buffer {
  const bad = (field: string, why: string) => new LvsError('LVS_INVALID_ARGUMENT', `sync hello ${field}: ${why}`, { field });
  if (!Number.isInteger(h.nodeId) || h.nodeId < 0 || h.nodeId > 0xffffffff) throw bad('nodeId', 'must be an integer 0..2^32-1');
  if (!Number.isInteger(h.recordBytes) || h.recordBytes < 1 || h.recordBytes > 0xffff) throw bad('recordBytes', 'must be an integer 1..65535');
  if (h.nonce.length !== NONCE_BYTES) throw bad('nonce', `must be ${NONCE_BYTES} bytes`);
  const b = Buffer.alloc(HELLO_BYTES);
  b.writeUInt32BE(SYNC_MAGIC, 0);
  b.writeUInt8(SYNC_VERSION, 4);
  b.writeUInt8(ROLE_CODE[h.role], 5);
  b.writeUInt16BE(h.recordBytes, 6);
  b.writeUInt32BE(h.nodeId, 8);
  h.nonce.copy(b, 12);
  return b;
}

/**
 * The magic alone, so garbage is refused after 4 bytes. `buf` holds at least 4 bytes.
 */
export function checkMagic(buf: Buffer): Result<true> {
  if (buf.readUInt32BE(0) !== SYNC_MAGIC) return fail('bad-magic', `not an lvsd sync connection (first bytes ${buf.subarray(0, 4).toString('hex')})`);
  return { ok: true, value: true };
}

/** A HELLO from exactly HELLO_BYTES bytes (unauthenticated until AUTH verifies). */
export function decodeHello(buf: Buffer): Result<Hello> {
  if (buf.length !== HELLO_BYTES) return fail('bad-length', `sync hello of ${buf.length} bytes (expected ${HELLO_BYTES})`);
  const m = checkMagic(buf);
  if (!m.ok) return m;
  const version = buf.readUInt8(4);
  if (version !== SYNC_VERSION) return fail('unknown-version', `sync protocol version ${version} not understood (this lvsd speaks ${SYNC_VERSION})`);
  const rc = buf.readUInt8(5);
  const role: SyncRole | undefined = rc === 1 ? 'dialer' : rc === 2 ? 'acceptor' : undefined;
  if (role === undefined) return fail('bad-role', `sync hello with role ${rc}`);
  return { ok: true, value: { version, role, recordBytes: buf.readUInt16BE(6), nodeId: buf.readUInt32BE(8), nonce: Buffer.from(buf.subarray(12, 28)) } };
}

const AUTH_LABEL = Buffer.from('lvsd sync auth v1');

/** The AUTH the side with `role` sends: proof of the key over both HELLOs. */
export function authMac(key: Buffer, role: SyncRole, ownHello: Buffer, peerHello: Buffer): Buffer {
  return createHmac('sha256', key).update(AUTH_LABEL).update(Buffer.of(ROLE_CODE[role])).update(ownHello).update(peerHello).digest();
}

/** Verify the peer's AUTH (peer's role, its HELLO first), in constant time. */
export function verifyAuth(key: Buffer, peerRole: SyncRole, peerHello: Buffer, ownHello: Buffer, auth: Buffer): boolean {
  if (auth.length !== AUTH_BYTES) return false;
  return timingSafeEqual(authMac(key, peerRole, peerHello, ownHello), auth);
}

/** Per-link frame authentication: the key, the direction and both nonces, fixed at handshake. */
export class FrameMac {
  private readonly prefix: Buffer;

  /** `from` is the role of the side that sends the frames this instance signs or checks. */
  constructor(private readonly key: Buffer, from: SyncRole, dialerNonce: Buffer, acceptorNonce: Buffer) {
    this.prefix = Buffer.concat([Buffer.from(from === 'dialer' ? 'lvsd sync D>A v1' : 'lvsd sync A>D v1'), dialerNonce, acceptorNonce]);
  }

  /** MAC over the prefix and the frame's bytes before its MAC (length, type, sequence, payload). */
  compute(frameWithoutMac: Buffer): Buffer {
    return createHmac('sha256', this.key).update(this.prefix).update(frameWithoutMac).digest();
  }
}

/** One frame, MAC included. `payload` may be empty. */
export function encodeFrame(mac: FrameMac, type: FrameType, sequence: bigint, payload: Buffer): Buffer {
  const b = Buffer.allocUnsafe(FRAME_OVERHEAD + payload.length);
  payload.copy(b, FRAME_HEADER_BYTES);
  return sealFrame(mac, b, type, sequence, payload.length);
}

/**
 * Finish a frame whose payload was written in place at FRAME_HEADER_BYTES of `buf` (the sender's
 * batch buffer, so records are copied once): header and MAC are written around it. Returns the
 * frame, a view of `buf`.
 */
export function sealFrame(mac: FrameMac, buf: Buffer, type: FrameType, sequence: bigint, payloadBytes: number): Buffer {
  const total = FRAME_OVERHEAD + payloadBytes;
  if (buf.length < total) throw new LvsError('LVS_INVALID_ARGUMENT', `sync frame buffer of ${buf.length} bytes for a ${total}-byte frame`);
  buf.writeUInt32BE(total - 4, 0);
  buf.writeUInt8(FRAME_TYPES[type], 4);
  buf.writeBigUInt64BE(sequence, 5);
  mac.compute(buf.subarray(0, total - MAC_BYTES)).copy(buf, total - MAC_BYTES);
  return buf.subarray(0, total);
}

/**
 * Check a frame's declared length (the u32 at its start) before buffering the rest of it.
 * Returns the whole frame's size in bytes.
 */
export function checkFrameLength(declared: number, maxFrameBytes: number): Result<number> {
  if (declared + 4 < FRAME_OVERHEAD) return fail('bad-length', `sync frame of ${declared + 4} bytes (at least ${FRAME_OVERHEAD})`);
  if (declared + 4 > maxFrameBytes) return fail('oversized', `sync frame of ${declared + 4} bytes announced (maximum ${maxFrameBytes}); refused before reading it`);
  return { ok: true, value: declared + 4 };
}

export interface Frame { type: FrameType; sequence: bigint; payload: Buffer }

/**
 * A whole frame: MAC first (nothing is believed before it, compared in constant time), then the
 * sequence, then the type. The payload is a view into `buf`.
 */
export function decodeFrame(mac: FrameMac, buf: Buffer, expected: bigint): Result<Frame> {
  if (buf.length < FRAME_OVERHEAD) return fail('bad-length', `sync frame of ${buf.length} bytes`);
  const want = mac.compute(buf.subarray(0, buf.length - MAC_BYTES));
  if (!timingSafeEqual(want, buf.subarray(buf.length - MAC_BYTES))) return fail('bad-mac', 'sync frame authentication failed (altered, or not from this link)');
  const sequence = buf.readBigUInt64BE(5);
  if (sequence !== expected) return fail('sequence', `sync frame sequence ${sequence}, expected ${expected} (${sequence < expected ? 'replayed' : 'a frame is missing'})`);
  const code = buf.readUInt8(4);
  const type = TYPE_BY_CODE.get(code);
  if (type === undefined) return fail('unknown-type', `sync frame type ${code} not understood`);
  return { ok: true, value: { type, sequence, payload: buf.subarray(FRAME_HEADER_BYTES, buf.length - MAC_BYTES) } };
}

// ------------------------------------------------------------------ payloads

export interface ConfigPayload {
  /** lvs.cf serial_no. */
  serialNo: number;
  /** 16 bytes, e.g. configDigest(text). */
  digest: Buffer;
  text: string;
}

export interface ConfigResult {
  serialNo: number;
  digest: Buffer;
  ok: boolean;
  errors: string[];
}

function checkSerialDigest(serialNo: number, digest: Buffer, what: string): void {
  if (!Number.isInteger(serialNo) || serialNo < 0 || serialNo > 0xffffffff) throw new LvsError('LVS_INVALID_ARGUMENT', `${what} serialNo: must be an integer 0..2^32-1`, { field: 'serialNo' });
  if (digest.length !== DIGEST_BYTES) throw new LvsError('LVS_INVALID_ARGUMENT', `${what} digest: must be ${DIGEST_BYTES} bytes`, { field: 'digest' });
}

/** serialNo u32 | digest 16 | UTF-8 text. */
export function encodeConfig(c: ConfigPayload): Buffer {
  checkSerialDigest(c.serialNo, c.digest, 'sync config');
  const text = Buffer.from(c.text, 'utf8');
  const b = Buffer.allocUnsafe(20 + text.length);
  b.writeUInt32BE(c.serialNo, 0);
  c.digest.copy(b, 4);
  text.copy(b, 20);
  return b;
}

export function decodeConfig(p: Buffer): Result<ConfigPayload> {
  if (p.length < 20) return fail('bad-payload', `config payload of ${p.length} bytes`);
  const text = new TextDecoder('utf-8', { fatal: true });
  try {
    return { ok: true, value: { serialNo: p.readUInt32BE(0), digest: Buffer.from(p.subarray(4, 20)), text: text.decode(p.subarray(20)) } };
  } catch {
    return fail('bad-payload', 'config text is not valid UTF-8');
  }
}

/** serialNo u32 | digest 16 | ok u8 | count u16 | count × (u16 length | UTF-8). */
export function encodeConfigResult(r: ConfigResult): Buffer {
  checkSerialDigest(r.serialNo, r.digest, 'sync config result');
  if (r.errors.length > 0xffff) throw new LvsError('LVS_INVALID_ARGUMENT', 'sync config result: at most 65535 errors', { field: 'errors' });
  const parts = r.errors.map((e) => {
    let t = Buffer.from(e, 'utf8');
    // Cut at 65535 bytes, on a character boundary (continuation bytes are 10xxxxxx).
    if (t.length > 0xffff) {
      let end = 0xffff;
      while (end > 0 && (t[end]! & 0xc0) === 0x80) end--;
      t = t.subarray(0, end);
    }
    return t;
  });
  const b = Buffer.allocUnsafe(23 + parts.reduce((n, t) => n + 2 + t.length, 0));
  b.writeUInt32BE(r.serialNo, 0);
  r.digest.copy(b, 4);
  b.writeUInt8(r.ok ? 1 : 0, 20);
  b.writeUInt16BE(parts.length, 21);
  let o = 23;
  for (const t of parts) {
    b.writeUInt16BE(t.length, o);
    t.copy(b, o + 2);
    o += 2 + t.length;
  }
  return b;
}

export function decodeConfigResult(p: Buffer): Result<ConfigResult> {
  if (p.length < 23) return fail('bad-payload', `config result payload of ${p.length} bytes`);
  const okByte = p.readUInt8(20);
  if (okByte > 1) return fail('bad-payload', `config result ok byte ${okByte}`);
  const n = p.readUInt16BE(21);
  const errors: string[] = [];
  const td = new TextDecoder('utf-8', { fatal: true });
  let o = 23;
  for (let i = 0; i < n; i++) {
    if (o + 2 > p.length) return fail('bad-payload', 'config result: error list truncated');
    const len = p.readUInt16BE(o);
    if (o + 2 + len > p.length) return fail('bad-payload', 'config result: error text truncated');
    try {
      errors.push(td.decode(p.subarray(o + 2, o + 2 + len)));
    } catch {
      return fail('bad-payload', 'config result: error text is not valid UTF-8');
    }
    o += 2 + len;
  }
  if (o !== p.length) return fail('bad-payload', `config result: ${p.length - o} bytes after the error list`);
  return { ok: true, value: { serialNo: p.readUInt32BE(0), digest: Buffer.from(p.subarray(4, 20)), ok: okByte === 1, errors } };
}

/** DUMP_BEGIN / DUMP_END: u32 record count. */
export function encodeCount(count: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(count, 0);
  return b;
}

export function decodeCount(p: Buffer): Result<number> {
  if (p.length !== 4) return fail('bad-payload', `dump count payload of ${p.length} bytes (expected 4)`);
  return { ok: true, value: p.readUInt32BE(0) };
}

/** PING / PONG: the pinger's u64 timestamp (µs, its own clock), echoed by PONG. */
export function encodeStamp(us: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(us & 0xffffffffffffffffn, 0);
  return b;
}

export function decodeStamp(p: Buffer): Result<bigint> {
  if (p.length !== 8) return fail('bad-payload', `ping/pong payload of ${p.length} bytes (expected 8)`);
  return { ok: true, value: p.readBigUInt64BE(0) };
}
