/**
 * Frames for tests, benchmarks and the lab: a builder for Ethernet/802.1Q, IPv4 (options),
 * IPv6 (extension headers), TCP, UDP and ICMP/ICMPv6 errors, and a decoder that recomputes
 * every checksum from scratch. Nothing here shares code with native/: the tests use it to
 * check the dataplane's incremental checksum updates against full recomputation.
 */
import { isIPv4 } from 'node:net';
import { formatAddress, parseAddress } from '../net/address.js';

export const MACS = {
  client: '02:00:00:00:00:c1', // the client's (or upstream router's) MAC
  outside: '02:00:00:00:00:01', // the director's client-facing interface (id 0)
  inside: '02:00:00:00:01:01', // the director's real-facing interface (id 1)
  real1: '02:00:00:00:01:11',
  real2: '02:00:00:00:01:12',
  real3: '02:00:00:00:01:13',
};

export type Ext = { type: 0 | 43 | 60 | 51 | 44; length?: number; segmentsLeft?: number; fragOffset?: number; more?: boolean };

export interface PacketSpec {
  srcMac?: string;
  dstMac?: string;
  vlan?: number;
  src: string;
  dst: string;
  ttl?: number;
  tos?: number;
  id?: number;
  df?: boolean;
  mf?: boolean;
  fragOffset?: number;
  /** IPv4 options (padded to 4 bytes by the caller). */
  options?: Buffer;
  /** IPv6 extension headers, in order. */
  ext?: Ext[];
  proto: 'tcp' | 'udp' | number;
  sport?: number;
  dport?: number;
  /** TCP flags: any of S A F R P U, e.g. "S", "SA", "A", "FA", "R". */
  flags?: string;
  seq?: number;
  ack?: number;
  payload?: Buffer | string;
  /** UDP over IPv4: false sends checksum 0 ("no checksum"). */
  udpChecksum?: boolean;
  /** Raw L4 bytes for other protocols. */
  l4?: Buffer;
}

export function mac(text: string): Buffer {
  return Buffer.from(text.split(':').map((x) => parseInt(x, 16)));
}

function addr(text: string): Buffer {
  return Buffer.from(parseAddress(text).bytes);
}

/** One's-complement sum of 16-bit big-endian words, unfolded. */
function sum16(b: Buffer, sum = 0): number {
  for (let i = 0; i + 1 < b.length; i += 2) sum += b.readUInt16BE(i);
  if (b.length % 2) sum += b[b.length - 1]! << 8;
  return sum;
}
function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}
export function checksum(b: Buffer, initial = 0): number {
  return ~fold(sum16(b, initial)) & 0xffff;
}
function pseudoSum(src: Buffer, dst: Buffer, proto: number, len: number): number {
  if (src.length === 4) return sum16(Buffer.concat([src, dst, Buffer.from([0, proto]), u16(len)]));
  return sum16(Buffer.concat([src, dst, u32(len), Buffer.from([0, 0, 0, proto])]));
}
/** The pseudo-header sum for src/dst given as text (tests that compute checksums themselves). */
export function pseudo(src: string, dst: string, proto: number, len: number): number {
  return pseudoSum(addr(src), addr(dst), proto, len);
}
function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
}
function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}


function tcpFlags(f: string): number {
  let v = 0;
  for (const c of f) v |= { F: 1, S: 2, R: 4, P: 8, A: 16, U: 32 }[c as 'F'] ?? 0;
  return v;
}

function l4Segment(spec: PacketSpec, src: Buffer, dst: Buffer): { proto: number; bytes: Buffer } {
  const payload = typeof spec.payload === 'string' ? Buffer.from(spec.payload) : (spec.payload ?? Buffer.alloc(0));
  if (spec.proto === 'tcp') {
    const h = Buffer.alloc(20);
    h.writeUInt16BE(spec.sport ?? 40000, 0);
    h.writeUInt16BE(spec.dport ?? 80, 2);
    h.writeUInt32BE((spec.seq ?? 1000) >>> 0, 4);
    h.writeUInt32BE((spec.ack ?? 0) >>> 0, 8);
    h[12] = 5 << 4;
    h[13] = tcpFlags(spec.flags ?? 'S');
    h.writeUInt16BE(65535, 14);
    const seg = Buffer.concat([h, payload]);
    seg.writeUInt16BE(checksum(seg, pseudoSum(src, dst, 6, seg.length)), 16);
    return { proto: 6, bytes: seg };
  }
  if (spec.proto === 'udp') {
    const h = Buffer.alloc(8);
    h.writeUInt16BE(spec.sport ?? 40000, 0);
    h.writeUInt16BE(spec.dport ?? 53, 2);
    h.writeUInt16BE(8 + payload.length, 4);
    const seg = Buffer.concat([h, payload]);
    if (spec.udpChecksum !== false || src.length === 16) {
      let c = checksum(seg, pseudoSum(src, dst, 17, seg.length));
      if (c === 0) c = 0xffff;
      seg.writeUInt16BE(c, 6);
    }
    return { proto: 17, bytes: seg };
  }
  return { proto: spec.proto, bytes: spec.l4 ?? Buffer.alloc(0) };
}

/** The IP packet (no Ethernet header) described by spec. */
export function ipPacket(spec: PacketSpec): Buffer {
  const src = addr(spec.src);
  const dst = addr(spec.dst);
  const l4 = l4Segment(spec, src, dst);
  if (src.length === 4) {
    const opts = spec.options ?? Buffer.alloc(0);
    const h = Buffer.alloc(20 + opts.length);
    h[0] = 0x40 | ((20 + opts.length) / 4);
    h[1] = spec.tos ?? 0;
    h.writeUInt16BE(h.length + l4.bytes.length, 2);
    h.writeUInt16BE(spec.id ?? 0x1234, 4);
    h.writeUInt16BE((spec.df ? 0x4000 : 0) | (spec.mf ? 0x2000 : 0) | ((spec.fragOffset ?? 0) >> 3), 6);
    h[8] = spec.ttl ?? 64;
    h[9] = l4.proto;
    src.copy(h, 12);
    dst.copy(h, 16);
    opts.copy(h, 20);
    h.writeUInt16BE(checksum(h), 10);
    return Buffer.concat([h, l4.bytes]);
  }
  // IPv6 with extension headers chained in order.
  const exts = spec.ext ?? [];
  const parts: Buffer[] = [];
  for (let i = 0; i < exts.length; i++) {
    const e = exts[i]!;
    const next = i + 1 < exts.length ? exts[i + 1]!.type : l4.proto;
    if (e.type === 44) {
      const f = Buffer.alloc(8);
      f[0] = next;
      f.writeUInt16BE(((e.fragOffset ?? 0) & ~7) | (e.more ? 1 : 0), 2);
      f.writeUInt32BE(0xabcd, 4);
      parts.push(f);
    } else if (e.type === 51) {
      const units = e.length ?? 1; // payload length field: (len in 4-byte units) - 2
      const a = Buffer.alloc((units + 2) * 4);
      a[0] = next;
      a[1] = units;
      parts.push(a);
    } else {
      const units = e.length ?? 0;
      const o = Buffer.alloc((units + 1) * 8);
      o[0] = next;
      o[1] = units;
      if (e.type === 43) {
        o[2] = 0; // routing type
        o[3] = e.segmentsLeft ?? 0;
      } else {
        o[2] = 1; // PadN option filling the rest
        o[3] = o.length - 4;
      }
      parts.push(o);
    }
  }
  const body = Buffer.concat([...parts, l4.bytes]);
  const h = Buffer.alloc(40);
  const tc = spec.tos ?? 0;
  h.writeUInt32BE(((6 << 28) | (tc << 20)) >>> 0, 0);
  h.writeUInt16BE(body.length, 4);
  h[6] = exts.length ? exts[0]!.type : l4.proto;
  h[7] = spec.ttl ?? 64;
  src.copy(h, 8);
  dst.copy(h, 24);
  return Buffer.concat([h, body]);
}

export function ethernet(ip: Buffer, opts: { srcMac?: string; dstMac?: string; vlan?: number } = {}): Buffer {
  const type = (ip[0]! >> 4) === 4 ? 0x0800 : 0x86dd;
  const h = Buffer.alloc(opts.vlan ? 18 : 14);
  mac(opts.dstMac ?? MACS.outside).copy(h, 0);
  mac(opts.srcMac ?? MACS.client).copy(h, 6);
  if (opts.vlan) {
    h.writeUInt16BE(0x8100, 12);
    h.writeUInt16BE(opts.vlan, 14);
    h.writeUInt16BE(type, 16);
  } else {
    h.writeUInt16BE(type, 12);
  }
  return Buffer.concat([h, ip]);
}

/** A whole Ethernet frame. */
export function packet(spec: PacketSpec): Buffer {
  return ethernet(ipPacket(spec), spec);
}

/** An ICMP (IPv4) or ICMPv6 error from `src` to `dst` quoting `quote` (an IP packet). */
export function icmpError(opts: {
  src: string;
  dst: string;
  type: number;
  code: number;
  /** v4 frag-needed next-hop MTU, or the v6 packet-too-big MTU. */
  mtu?: number;
  quote: Buffer;
  srcMac?: string;
  dstMac?: string;
  ttl?: number;
}): Buffer {
  const src = addr(opts.src);
  const dst = addr(opts.dst);
  const v4 = src.length === 4;
  const msg = Buffer.concat([Buffer.alloc(8), opts.quote]);
  msg[0] = opts.type;
  msg[1] = opts.code;
  if (v4) msg.writeUInt16BE(opts.mtu ?? 0, 6);
  else msg.writeUInt32BE(opts.mtu ?? 0, 4);
  const proto = v4 ? 1 : 58;
  msg.writeUInt16BE(checksum(msg, v4 ? 0 : pseudoSum(src, dst, 58, msg.length)), 2);
  return packet({ src: opts.src, dst: opts.dst, proto, l4: msg, ttl: opts.ttl ?? 64, srcMac: opts.srcMac, dstMac: opts.dstMac });
}

// ---------------------------------------------------------------------------------------------
// Decoding, with every checksum recomputed in full

export interface Decoded {
  dstMac: string;
  srcMac: string;
  vlan: number | null;
  family: 'ipv4' | 'ipv6';
  src: string;
  dst: string;
  ttl: number;
  tos: number;
  id: number;
  df: boolean;
  mf: boolean;
  fragOffset: number;
  /** The L4 protocol (after IPv6 extension headers). */
  proto: number;
  ipLength: number;
  ipHeaderOk: boolean;
  sport?: number;
  dport?: number;
  flags?: number;
  /** Full recomputation over pseudo-header + segment; null when not applicable (UDP/IPv4 checksum 0, fragments). */
  l4ChecksumOk: boolean | null;
  udpChecksum?: number;
  payload: Buffer;
  /** The IP packet itself (for comparing with what was sent). */
  ip: Buffer;
  icmp?: { type: number; code: number; rest: number; checksumOk: boolean; quote: Buffer };
  /** For IPIP / IPv6-in-IP: the encapsulated packet. */
  inner?: Decoded;
}

export function decode(frame: Buffer): Decoded {
  let off = 12;
  let vlan: number | null = null;
  let type = frame.readUInt16BE(off);
  if (type === 0x8100) {
    vlan = frame.readUInt16BE(14) & 0x0fff;
    off += 4;
    type = frame.readUInt16BE(off);
  }
  const d = decodeIp(frame.subarray(off + 2));
  return { ...d, dstMac: fmtMac(frame.subarray(0, 6)), srcMac: fmtMac(frame.subarray(6, 12)), vlan };
}

function fmtMac(b: Buffer): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}

export function decodeIp(ipIn: Buffer): Decoded {
  const version = ipIn[0]! >> 4;
  let ip: Buffer;
  let l4: Buffer;
  let proto: number;
  let src: Buffer;
  let dst: Buffer;
  const base = { dstMac: '', srcMac: '', vlan: null };
  let fields: Pick<Decoded, 'ttl' | 'tos' | 'id' | 'df' | 'mf' | 'fragOffset' | 'ipHeaderOk'>;
  if (version === 4) {
    const ihl = (ipIn[0]! & 15) * 4;
    const total = ipIn.readUInt16BE(2);
    ip = ipIn.subarray(0, total);
    const frag = ip.readUInt16BE(6);
    fields = {
      ttl: ip[8]!,
      tos: ip[1]!,
      id: ip.readUInt16BE(4),
      df: (frag & 0x4000) !== 0,
      mf: (frag & 0x2000) !== 0,
      fragOffset: (frag & 0x1fff) * 8,
      ipHeaderOk: checksum(ip.subarray(0, ihl)) === 0,
    };
    proto = ip[9]!;
    src = ip.subarray(12, 16);
    dst = ip.subarray(16, 20);
    l4 = ip.subarray(ihl);
  } else {
    ip = ipIn.subarray(0, 40 + ipIn.readUInt16BE(4));
    fields = {
      ttl: ip[7]!,
      tos: ((ip[0]! & 15) << 4) | (ip[1]! >> 4),
      id: 0,
      df: true,
      mf: false,
      fragOffset: 0,
      ipHeaderOk: true,
    };
    src = ip.subarray(8, 24);
    dst = ip.subarray(24, 40);
    let nh = ip[6]!;
    let at = 40;
    while (nh === 0 || nh === 43 || nh === 60 || nh === 51 || nh === 44) {
      const next = ip[at]!;
      if (nh === 44) {
        const fo = ip.readUInt16BE(at + 2);
        fields.fragOffset = fo & ~7;
        fields.mf = (fo & 1) !== 0;
        at += 8;
      } else if (nh === 51) at += (ip[at + 1]! + 2) * 4;
      else at += (ip[at + 1]! + 1) * 8;
      nh = next;
    }
    proto = nh;
    l4 = ip.subarray(at);
  }
  const family = version === 4 ? 'ipv4' : 'ipv6';
  const out: Decoded = {
    ...base,
    family,
    src: formatAddress(family, src),
    dst: formatAddress(family, dst),
    ...fields,
    proto,
    ipLength: ip.length,
    l4ChecksumOk: null,
    payload: Buffer.alloc(0),
    ip,
  };
  const fragment = fields.fragOffset !== 0 || fields.mf;
  if (fragment) {
    out.payload = l4;
    return out;
  }
  if (proto === 6) {
    out.sport = l4.readUInt16BE(0);
    out.dport = l4.readUInt16BE(2);
    out.flags = l4[13]!;
    out.l4ChecksumOk = checksum(l4, pseudoSum(src, dst, 6, l4.length)) === 0;
    out.payload = l4.subarray((l4[12]! >> 4) * 4);
  } else if (proto === 17) {
    out.sport = l4.readUInt16BE(0);
    out.dport = l4.readUInt16BE(2);
    out.udpChecksum = l4.readUInt16BE(6);
    out.l4ChecksumOk = version === 4 && out.udpChecksum === 0 ? null : checksum(l4, pseudoSum(src, dst, 17, l4.length)) === 0;
    out.payload = l4.subarray(8);
  } else if (proto === 1 || proto === 58) {
    const ok = checksum(l4, proto === 58 ? pseudoSum(src, dst, 58, l4.length) : 0) === 0;
    out.icmp = { type: l4[0]!, code: l4[1]!, rest: l4.readUInt32BE(4), checksumOk: ok, quote: l4.subarray(8) };
    out.l4ChecksumOk = ok;
  } else if (proto === 4 || proto === 41) {
    out.inner = decodeIp(l4);
    out.payload = l4;
  } else {
    out.payload = l4;
  }
  return out;
}

/** Is this text an IPv4 address? (for tests that loop over both families) */
export function isV4(a: string): boolean {
  return isIPv4(a);
}
