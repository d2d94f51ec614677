/**
 * Connection sync records (native/flow/sync_record.hpp; docs/failover.md, "Connection sync
 * record"): the bytes the active director's dataplane exports for its backup. The failover
 * channel carries them as opaque bytes; this decoder mirrors the native one, for logging and
 * tests. Every multi-byte field is big-endian.
 */
import { formatAddress, formatMac, type Family } from '../net/address.js';
import { Fwd, STATE_NAMES, State, type StateName } from './protocol.js';
import type { Endpoint, ForwardingMethod } from './types.js';

/** Bytes per record (version 1). A buffer of records is a whole multiple of this. */
export const SYNC_RECORD_BYTES = 116;
export const SYNC_VERSION = 1;

/** Record flags (not the in-memory ones). */
export const SyncFlag = { TEMPLATE: 0x1, NOOUTPUT: 0x2, INACTIVE: 0x4, ASSURED: 0x8, NO_CPORT: 0x10, REPLIED: 0x20 } as const;
const KNOWN_FLAGS = 0x3f;
const MAX_INTERFACES = 256;

/** Why the native decoder refuses a record (its SyncStatus names). */
export type SyncRecordProblem =
  | 'truncated'
  | 'bad_version'
  | 'bad_length'
  | 'bad_reserved'
  | 'bad_family'
  | 'bad_protocol'
  | 'bad_state'
  | 'bad_fwd'
  | 'bad_flags'
  | 'bad_address'
  | 'bad_service'
  | 'bad_interface';

export interface SyncRecord {
  template: boolean;
  /** The entry's protocol number: 6, 17, or 0 (a firewall-mark service's template). */
  protocol: number;
  family: Family;
  state: StateName;
  method: ForwardingMethod;
  /** SyncFlag names set in the record. */
  flags: Array<keyof typeof SyncFlag>;
  client: Endpoint;
  virtual: Endpoint;
  /** The real's address (its family may differ with tunnelling) and the entry's real-side port. */
  destination: Endpoint & { family: Family };
  fwmark: number;
  /** Remaining lifetime (ms) when the record was made, and the entry's current timeout (ms). */
  expiresIn: number;
  timeout: number;
  packetsIn: number;
  clientMac: string;
  clientInterface: number;
  /** The virtual service the entry belongs to, by key. */
  service: { family: Family; protocol: number; address: string | null; port: number; fwmark: number };
  /** The real's configured port (with destination.address, what identifies it). */
  realPort: number;
}

export type SyncRecordResult = { ok: true; record: SyncRecord } | { ok: false; problem: SyncRecordProblem };

const METHOD: Record<number, ForwardingMethod> = { [Fwd.nat]: 'nat', [Fwd.tunnel]: 'tunnel', [Fwd.direct]: 'direct' };

function family(af: number): Family | null {
  return af === 4 ? 'ipv4' : af === 6 ? 'ipv6' : null;
}

/** An IPv4 address uses 4 of its 16 bytes; the other 12 must be zero. */
function clean(f: Family, b: Uint8Array, at: number): boolean {
  if (f === 'ipv6') return true;
  for (let i = 4; i < 16; i++) if (b[at + i] !== 0) return false;
  return true;
}

function addr(f: Family, b: Uint8Array, at: number): string {
  return formatAddress(f, b.subarray(at, at + (f === 'ipv4' ? 4 : 16)));
}

/** Decode and validate the record at `offset`, exactly as the dataplane does before importing it. */
export function decodeSyncRecord(buf: Uint8Array, offset = 0): SyncRecordResult {
  const bad = (problem: SyncRecordProblem): SyncRecordResult => ({ ok: false, problem });
  if (offset < 0 || buf.length - offset < SYNC_RECORD_BYTES) return bad('truncated');
  const b = buf.subarray(offset, offset + SYNC_RECORD_BYTES);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b[0] !== SYNC_VERSION) return bad('bad_version');
  if (dv.getUint16(2) !== SYNC_RECORD_BYTES) return bad('bad_length');
  if (b[1] !== 0 || b[11] !== 0) return bad('bad_reserved');
  const proto = b[4]!;
  const af = family(b[5]!);
  const daf = family(b[6]!);
  const state = b[7]!;
  const fwd = b[8]!;
  const svcProto = b[9]!;
  const svcAf = b[10]!;
  const flags = dv.getUint16(12);
  const svcPort = dv.getUint16(20);
  const svcFwmark = dv.getUint32(28);
  if (!af || !daf || svcAf !== b[5]) return bad('bad_family');
  const method = METHOD[fwd];
  if (!method) return bad('bad_fwd');
  if (daf !== af && method !== 'tunnel') return bad('bad_family');
  if (flags & ~KNOWN_FLAGS) return bad('bad_flags');
  const template = (flags & SyncFlag.TEMPLATE) !== 0;
  const fw = svcFwmark !== 0;
  const vipZero = b.subarray(100, 116).every((x) => x === 0);
  if (fw) {
    if (svcProto !== 0 || svcPort !== 0 || !vipZero) return bad('bad_service');
  } else if (svcProto !== 6 && svcProto !== 17) {
    return bad('bad_service');
  }
  if (template) {
    if (fw ? proto !== 0 && proto !== 6 && proto !== 17 : proto !== svcProto) return bad('bad_protocol');
    if (state !== State.NONE) return bad('bad_state');
  } else {
    if (proto !== 6 && proto !== 17) return bad('bad_protocol');
    if (!fw && proto !== svcProto) return bad('bad_protocol');
    if (proto === 6 ? state > State.SYNACK : state !== State.UDP) return bad('bad_state');
  }
  if (!clean(af, b, 52) || !clean(af, b, 68) || !clean(af, b, 100) || !clean(daf, b, 84)) return bad('bad_address');
  const clientInterface = dv.getUint16(50);
  if (clientInterface >= MAX_INTERFACES) return bad('bad_interface');
  const names = (Object.keys(SyncFlag) as Array<keyof typeof SyncFlag>).filter((k) => (flags & SyncFlag[k]) !== 0);
  return {
    ok: true,
    record: {
      template,
      protocol: proto,
      family: af,
      state: template ? ((flags & SyncFlag.ASSURED) !== 0 ? 'ASSURED' : 'NONE') : (STATE_NAMES[state] ?? 'NONE'),
      method,
      flags: names,
      client: { address: addr(af, b, 52), port: dv.getUint16(14) },
      virtual: { address: addr(af, b, 68), port: dv.getUint16(16) },
      destination: { address: addr(daf, b, 84), port: dv.getUint16(18), family: daf },
      fwmark: dv.getUint32(24),
      expiresIn: dv.getUint32(32),
      timeout: dv.getUint32(36),
      packetsIn: dv.getUint32(40),
      clientMac: formatMac(b.subarray(44, 50)),
      clientInterface,
      service: { family: af, protocol: svcProto, address: fw ? null : addr(af, b, 100), port: svcPort, fwmark: svcFwmark },
      realPort: dv.getUint16(22),
    },
  };
}
