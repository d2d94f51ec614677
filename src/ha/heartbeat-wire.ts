/**
 * The heartbeat wire formats (docs/failover.md has the byte layout).
 *
 * - Piranha's pulse: a 4-byte unsigned magic in host byte order (little-endian on x86), no
 *   authentication, no sequence number (reference/piranha.md section 3). Spoken only in
 *   'piranha' mode, for mixed pairs during a migration.
 * - lvsd's own format: a fixed 88-byte packet, authenticated with HMAC-SHA256 over a shared
 *   key, with a boot id and a 64-bit sequence number for replay protection.
 *
 * Decoding never throws: every input yields a typed packet or a typed rejection.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { LvsError } from '../errors.js';

// ------------------------------------------------------------------ Piranha

/** pulse.c magics (reference/piranha.md section 3). */
export const PIRANHA_MAGIC = {
  running: 0xbdaddbda,
  stopped: 0xadbddabd,
  // FOS (service = fos), never acted on by lvsd.
  'fos-running': 0xbeefbabe,
  'fos-stopped': 0xdeadbeef,
  'fos-stop-me': 0xdeaddada,
  // HOLD / HELD: handling disabled in pulse itself.
  hold: 0xdeafbabe,
  held: 0xdeafdada,
} as const;
export type PiranhaMagicName = keyof typeof PIRANHA_MAGIC;

const MAGIC_BY_VALUE = new Map<number, PiranhaMagicName>(
  (Object.entries(PIRANHA_MAGIC) as [PiranhaMagicName, number][]).map(([k, v]) => [v, k]),
);

// ------------------------------------------------------------------ lvsd

/** What a node says about itself. STOP-ME asks the receiver to stand down. */
export type HeartbeatState = 'running' | 'stopped' | 'stop-me';

export const LVSD_MAGIC = 0x4c565344; // "LVSD"
export const LVSD_VERSION = 1;
export const LVSD_PACKET_LENGTH = 88;
/** Bytes covered by the MAC (everything before it). */
const MAC_OFFSET = 56;
const MAC_LENGTH = 32;
export const CONFIG_DIGEST_LENGTH = 16;
export const BOOT_ID_LENGTH = 8;

const STATE_CODE: Record<HeartbeatState, number> = { running: 1, stopped: 2, 'stop-me': 3 };
const STATE_BY_CODE = new Map<number, HeartbeatState>(
  (Object.entries(STATE_CODE) as [HeartbeatState, number][]).map(([k, v]) => [v, k]),
);

/** flags bit 0: the sender is the primary (a local address of it equals `primary`). */
export const FLAG_PRIMARY = 0x01;
/** flags bit 1: the sender runs with preempt (Piranha's --forceactive). */
export const FLAG_PREEMPT = 0x02;
/**
 * flags bit 2: sent on the private path (to the partner's private address). Each path has its
 * own replay state at the receiver, so the two copies of a keepalive never look like replays of
 * each other, and the bit is under the MAC, so a packet cannot be moved from one path to the other.
 */
export const FLAG_PRIVATE_PATH = 0x04;

export interface LvsdHeartbeat {
  state: HeartbeatState;
  flags: number;
  isPrimary: boolean;
  /** Which of the sender's paths the packet was sent on (FLAG_PRIVATE_PATH). */
  path: 'public' | 'private';
  /** 0..255, higher wins a tie between two nodes of the same role. */
  priority: number;
  /** 32-bit node id (unique in the pair). */
  nodeId: number;
  /** 8 random bytes chosen when the sender started, as 16 hex digits. */
  bootId: string;
  /** Sender's per-boot counter, starting at 1. */
  sequence: bigint;
  /** Sender's wall clock, milliseconds since the epoch. */
  timestamp: number;
  /** lvs.cf serial_no of the sender. */
  serialNo: number;
  /** First 16 bytes of SHA-256 over the sender's configuration, hex. */
  configDigest: string;
}

export type RejectReason =
  | 'bad-length'       // "bad heartbeat packet": not 4 bytes (piranha) / not 88 bytes (lvsd)
  | 'bad-magic'        // unknown magic ("Incompatible heartbeat received")
  | 'foreign-magic'    // a known Piranha magic lvsd never acts on (FOS, HOLD/HELD)
  | 'unauthenticated'  // a bare Piranha heartbeat where an authenticated one is required
  | 'unknown-version'
  | 'bad-state'        // a state code this version does not know
  | 'bad-mac'
  | 'replay'           // sequence not above the highest seen, or an earlier boot of the peer
  | 'stale'            // a new boot id whose timestamp is outside the window
  | 'reflected'        // our own node id: a packet of ours sent back to us
  | 'unexpected-source';

export type Decoded =
  | { ok: true; format: 'piranha'; state: 'running' | 'stopped' }
  | { ok: true; format: 'lvsd'; packet: LvsdHeartbeat }
  | { ok: false; reason: RejectReason; detail: string; magic?: PiranhaMagicName };

const reject = (reason: RejectReason, detail: string, magic?: PiranhaMagicName): Decoded =>
  magic === undefined ? { ok: false, reason, detail } : { ok: false, reason, detail, magic };

/** A Piranha heartbeat: RUNNING or STOPPED as a 4-byte little-endian magic. */
export function encodePiranha(state: 'running' | 'stopped'): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(PIRANHA_MAGIC[state], 0);
  return b;
}

/** A Piranha heartbeat from a buffer (only the bytes; the source check is the caller's). */
export function decodePiranha(buf: Buffer): Decoded {
  if (buf.length !== 4) return reject('bad-length', `bad heartbeat packet (${buf.length} bytes, expected 4)`);
  const v = buf.readUInt32LE(0);
  const name = MAGIC_BY_VALUE.get(v);
  if (name === undefined) return reject('bad-magic', `Incompatible heartbeat received -- other system not using identical services (magic 0x${v.toString(16).padStart(8, '0')})`);
  if (name !== 'running' && name !== 'stopped') return reject('foreign-magic', `Piranha ${name} heartbeat ignored (lvsd acts only on lvs RUNNING/STOPPED)`, name);
  return { ok: true, format: 'piranha', state: name };
}

export interface EncodeFields {
  state: HeartbeatState;
  isPrimary: boolean;
  preempt?: boolean;
  path?: 'public' | 'private';
  priority: number;
  nodeId: number;
  bootId: Buffer;
  sequence: bigint;
  timestamp: number;
  serialNo: number;
  configDigest: Buffer;
}

/** An authenticated lvsd heartbeat. Throws LVS_INVALID_ARGUMENT on a field out of range. */
export function encodeLvsd(f: EncodeFields, key: Buffer): Buffer {
  const bad = (field: string, why: string) => new LvsError('LVS_INVALID_ARGUMENT', `heartbeat ${field}: ${why}`, { field });
  if (!Number.isInteger(f.priority) || f.priority < 0 || f.priority > 255) throw bad('priority', 'must be an integer 0..255');
  if (!Number.isInteger(f.nodeId) || f.nodeId < 0 || f.nodeId > 0xffffffff) throw bad('nodeId', 'must be an integer 0..2^32-1');
  if (f.bootId.length !== BOOT_ID_LENGTH) throw bad('bootId', `must be ${BOOT_ID_LENGTH} bytes`);
  if (f.sequence < 0n || f.sequence > 0xffffffffffffffffn) throw bad('sequence', 'must fit 64 bits');
  if (!Number.isSafeInteger(f.timestamp) || f.timestamp < 0) throw bad('timestamp', 'must be a non-negative integer (ms)');
  if (!Number.isInteger(f.serialNo) || f.serialNo < 0 || f.serialNo > 0xffffffff) throw bad('serialNo', 'must be an integer 0..2^32-1');
  if (f.configDigest.length !== CONFIG_DIGEST_LENGTH) throw bad('configDigest', `must be ${CONFIG_DIGEST_LENGTH} bytes`);
  const b = Buffer.alloc(LVSD_PACKET_LENGTH);
  b.writeUInt32BE(LVSD_MAGIC, 0);
  b.writeUInt8(LVSD_VERSION, 4);
  b.writeUInt8((f.isPrimary ? FLAG_PRIMARY : 0) | (f.preempt ? FLAG_PREEMPT : 0) | (f.path === 'private' ? FLAG_PRIVATE_PATH : 0), 5);
  b.writeUInt8(STATE_CODE[f.state], 6);
  b.writeUInt8(f.priority, 7);
  b.writeUInt32BE(f.nodeId, 8);
  f.bootId.copy(b, 12);
  b.writeBigUInt64BE(f.sequence, 20);
  b.writeBigUInt64BE(BigInt(f.timestamp), 28);
  b.writeUInt32BE(f.serialNo, 36);
  f.configDigest.copy(b, 40);
  mac(key, b.subarray(0, MAC_OFFSET)).copy(b, MAC_OFFSET);
  return b;
}

function mac(key: Buffer, data: Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

/**
 * Check the bytes and the MAC of an lvsd heartbeat (not replay: see ReplayGuard). The MAC is
 * checked before any field is believed, and compared in constant time.
 */
export function decodeLvsd(buf: Buffer, key: Buffer): Decoded {
  if (buf.length === 4) {
    const p = decodePiranha(buf);
    if (p.ok && p.format === 'piranha') return reject('unauthenticated', `unauthenticated Piranha ${p.state} heartbeat refused (this pair runs authenticated lvsd heartbeats)`);
    return p;
  }
  if (buf.length < 5) return reject('bad-length', `bad heartbeat packet (${buf.length} bytes)`);
  if (buf.readUInt32BE(0) !== LVSD_MAGIC) return reject('bad-magic', 'bad heartbeat packet (not an lvsd heartbeat)');
  const version = buf.readUInt8(4);
  if (version !== LVSD_VERSION) return reject('unknown-version', `heartbeat version ${version} not understood (this lvsd speaks ${LVSD_VERSION})`);
  if (buf.length !== LVSD_PACKET_LENGTH) return reject('bad-length', `bad heartbeat packet (${buf.length} bytes, expected ${LVSD_PACKET_LENGTH})`);
  const want = mac(key, buf.subarray(0, MAC_OFFSET));
  if (!timingSafeEqual(want, buf.subarray(MAC_OFFSET, MAC_OFFSET + MAC_LENGTH))) return reject('bad-mac', 'heartbeat authentication failed (wrong key or altered packet)');
  const state = STATE_BY_CODE.get(buf.readUInt8(6));
  if (state === undefined) return reject('bad-state', `heartbeat state ${buf.readUInt8(6)} not understood`);
  const flags = buf.readUInt8(5);
  const ts = buf.readBigUInt64BE(28);
  return {
    ok: true,
    format: 'lvsd',
    packet: {
      state,
      flags,
      isPrimary: (flags & FLAG_PRIMARY) !== 0,
      path: (flags & FLAG_PRIVATE_PATH) !== 0 ? 'private' : 'public',
      priority: buf.readUInt8(7),
      nodeId: buf.readUInt32BE(8),
      bootId: buf.subarray(12, 20).toString('hex'),
      sequence: buf.readBigUInt64BE(20),
      timestamp: ts > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(ts),
      serialNo: buf.readUInt32BE(36),
      configDigest: buf.subarray(40, 56).toString('hex'),
    },
  };
}

export interface DecodeOptions {
  mode: 'lvsd' | 'piranha';
  /** Required in 'lvsd' mode. */
  key?: Buffer;
  /** The packet's source address and the addresses it may come from. */
  from?: string;
  allowedSources?: readonly string[];
}

/** Source check, then the format of `mode`. Never throws. */
export function decode(buf: Buffer, opts: DecodeOptions): Decoded {
  try {
    if (opts.allowedSources !== undefined && (opts.from === undefined || !opts.allowedSources.includes(opts.from))) {
      return reject('unexpected-source', `heartbeat from ${opts.from ?? 'an unknown address'}, which is not the partner`);
    }
    if (opts.mode === 'piranha') return decodePiranha(buf);
    if (opts.key === undefined || opts.key.length === 0) return reject('bad-mac', 'no heartbeat key configured');
    return decodeLvsd(buf, opts.key);
  } catch (e) {
    // Not reachable with a Buffer; kept so a caller passing something else gets a rejection.
    return reject('bad-length', `bad heartbeat packet (${(e as Error).message})`);
  }
}

// ------------------------------------------------------------------ replay

export interface ReplayOptions {
  /** How far a new boot's timestamp may be from our clock, ms. Default 30 000. */
  windowMs?: number;
  /** Our own node id: packets carrying it are reflections. */
  ownNodeId?: number;
}

interface PeerSeen { bootId: string; highest: bigint; retired: string[] }

/**
 * Replay protection per peer node id and path: the highest sequence seen under the peer's
 * current boot id. Sequences must rise strictly (an older packet is never acted on, so a late
 * copy can never bring back a state the peer has left). A new boot id is accepted, with a fresh sequence, only when its timestamp is within the
 * window; earlier boot ids of the peer are remembered (the last 8) and refused.
 */
export class ReplayGuard {
  private readonly peers = new Map<string, PeerSeen>();
  private readonly windowMs: number;

  constructor(private readonly opts: ReplayOptions = {}) {
    this.windowMs = opts.windowMs ?? 30_000;
  }

  /** Accept (and record) or refuse a MAC-verified packet; `now` is our wall clock in ms. */
  check(p: LvsdHeartbeat, now: number): { ok: true } | { ok: false; reason: RejectReason; detail: string } {
    if (this.opts.ownNodeId !== undefined && p.nodeId === this.opts.ownNodeId) {
      return { ok: false, reason: 'reflected', detail: `heartbeat carries our own node id ${p.nodeId} (reflected, or both nodes have the same node id)` };
    }
    const key = `${p.nodeId}/${p.path}`;
    const seen = this.peers.get(key);
    if (seen !== undefined && seen.bootId === p.bootId) {
      if (p.sequence <= seen.highest) return { ok: false, reason: 'replay', detail: `heartbeat sequence ${p.sequence} not above ${seen.highest} (duplicate or replay)` };
      seen.highest = p.sequence;
      return { ok: true };
    }
    if (seen !== undefined && seen.retired.includes(p.bootId)) {
      return { ok: false, reason: 'replay', detail: `heartbeat from an earlier boot (${p.bootId}) of node ${p.nodeId}` };
    }
    const skew = p.timestamp - now;
    if (Math.abs(skew) > this.windowMs) {
      return { ok: false, reason: 'stale', detail: `heartbeat from a new boot ${p.bootId} of node ${p.nodeId} with a timestamp ${Math.round(skew / 1000)} s off our clock (window ±${this.windowMs / 1000} s)` };
    }
    const retired = seen === undefined ? [] : [...seen.retired, seen.bootId].slice(-8);
    this.peers.set(key, { bootId: p.bootId, highest: p.sequence, retired });
    return { ok: true };
  }
}

// ------------------------------------------------------------------ keys and ids

/** A new random boot id. */
export function newBootId(): Buffer {
  return randomBytes(BOOT_ID_LENGTH);
}

/**
 * The shared heartbeat key from a file. Like ssh with its private keys, the file must not be
 * readable or writable by group or other, and must belong to root or to us. The key is the
 * file's content without trailing white space, at least 16 bytes (e.g.
 * `head -c 32 /dev/urandom | base64 > key; chmod 600 key`).
 */
export function readKeyFile(path: string): Buffer {
  let st;
  try {
    st = statSync(path);
  } catch (cause) {
    throw new LvsError('LVS_CONFIG_IO', `heartbeat key file ${path}: ${(cause as Error).message}`, { field: 'keyFile', file: path, cause });
  }
  if (!st.isFile()) throw new LvsError('LVS_INVALID_OPTION', `heartbeat key file ${path} is not a regular file`, { field: 'keyFile', file: path });
  if ((st.mode & 0o077) !== 0) {
    throw new LvsError('LVS_INVALID_OPTION', `heartbeat key file ${path} has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}: it must not be accessible by group or other (chmod 600 ${path})`, { field: 'keyFile', file: path });
  }
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== 0 && st.uid !== uid) {
    throw new LvsError('LVS_INVALID_OPTION', `heartbeat key file ${path} belongs to uid ${st.uid}, not to root or to us (uid ${uid})`, { field: 'keyFile', file: path });
  }
  let raw: Buffer;
  try {
    raw = readFileSync(path);
  } catch (cause) {
    throw new LvsError('LVS_CONFIG_IO', `heartbeat key file ${path}: ${(cause as Error).message}`, { field: 'keyFile', file: path, cause });
  }
  let end = raw.length;
  while (end > 0 && (raw[end - 1] === 0x0a || raw[end - 1] === 0x0d || raw[end - 1] === 0x20 || raw[end - 1] === 0x09)) end--;
  const key = Buffer.from(raw.subarray(0, end));
  if (key.length < 16) throw new LvsError('LVS_INVALID_OPTION', `heartbeat key file ${path} holds ${key.length} bytes: at least 16 are needed`, { field: 'keyFile', file: path });
  return key;
}
