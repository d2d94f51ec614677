/**
 * IPv4/IPv6 addresses and MAC addresses: parsing to bytes, canonical text (RFC 5952 for IPv6,
 * as inet_ntop and so ipvsadm print them), and the 4-word form the dataplane protocol uses.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { LvsError } from '../errors.js';

export type Family = 'ipv4' | 'ipv6';

export interface IpAddress {
  family: Family;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
  /** Canonical text: dotted quad, or RFC 5952 IPv6. */
  text: string;
}

export function parseAddress(input: string, field = 'address'): IpAddress {
  if (typeof input !== 'string') {
    throw new LvsError('LVS_INVALID_ADDRESS', `${field}: expected an IP address, got ${typeof input}`, { field });
  }
  const s = input.trim();
  if (isIPv4(s)) {
    const bytes = Uint8Array.from(s.split('.').map(Number));
    return { family: 'ipv4', bytes, text: formatIpv4(bytes) };
  }
  const bare = s.startsWith('[') && s.endsWith(']') ? s.slice(1, -1) : s;
  if (isIPv6(bare) && !bare.includes('%')) {
    const bytes = ipv6Bytes(bare);
    return { family: 'ipv6', bytes, text: formatIpv6(bytes) };
  }
  throw new LvsError('LVS_INVALID_ADDRESS', `${field}: "${input}" is not an IPv4 or IPv6 address`, { field });
}

function ipv6Bytes(s: string): Uint8Array {
  let text = s;
  const out = new Uint8Array(16);
  // An embedded IPv4 tail (::ffff:198.18.0.1) becomes two hex groups.
  const v4 = text.match(/(\d+\.\d+\.\d+\.\d+)$/);
  if (v4) {
    const b = v4[1]!.split('.').map(Number);
    text = text.slice(0, -v4[1]!.length) + `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  return out;
}

export function formatIpv4(b: Uint8Array): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

/**
 * RFC 5952 text, exactly as glibc's inet_ntop writes it (and so ip, ss and ipvsadm): the
 * longest run of two or more zero groups (the first on a tie) becomes "::", and an address
 * that is zero up to an IPv4 tail (a run of 6 zero groups from the start, or of 5 followed by
 * ffff) keeps the tail dotted: ::ffff:198.18.0.1, ::198.18.0.1.
 */
export function formatIpv6(b: Uint8Array): string {
  const w: number[] = [];
  for (let i = 0; i < 16; i += 2) w.push((b[i]! << 8) | b[i + 1]!);
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) best = -1;
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (best >= 0 && i >= best && i < best + bestLen) {
      if (i === best) out += ':';
      continue;
    }
    if (i !== 0) out += ':';
    if (i === 6 && best === 0 && (bestLen === 6 || (bestLen === 5 && w[5] === 0xffff))) return out + formatIpv4(b.subarray(12));
    out += w[i]!.toString(16);
  }
  if (best >= 0 && best + bestLen === 8) out += ':';
  return out;
}

export function formatAddress(family: Family, bytes: Uint8Array): string {
  return family === 'ipv4' ? formatIpv4(bytes) : formatIpv6(bytes);
}

/** The address as 4 big-endian 32-bit words (IPv4 in the first word), as the protocol wants. */
export function addressWords(a: IpAddress | undefined): [number, number, number, number] {
  const w: [number, number, number, number] = [0, 0, 0, 0];
  if (!a) return w;
  for (let i = 0; i < a.bytes.length; i += 4) {
    w[i / 4] = ((a.bytes[i]! << 24) | (a.bytes[i + 1]! << 16) | (a.bytes[i + 2]! << 8) | a.bytes[i + 3]!) | 0;
  }
  return w;
}

export function familyNumber(f: Family): 4 | 6 {
  return f === 'ipv4' ? 4 : 6;
}

/** A prefix length as a mask of the family's size (IPv4 netmasks are shown dotted). */
export function prefixMask(family: Family, plen: number): IpAddress {
  const bytes = new Uint8Array(family === 'ipv4' ? 4 : 16);
  for (let i = 0; i < bytes.length; i++) {
    const bits = Math.max(0, Math.min(8, plen - i * 8));
    bytes[i] = bits === 0 ? 0 : (0xff << (8 - bits)) & 0xff;
  }
  return { family, bytes, text: formatAddress(family, bytes) };
}

export interface MacAddress {
  bytes: Uint8Array;
  text: string;
}

export function parseMac(input: string, field = 'mac'): MacAddress {
  const m = typeof input === 'string' ? input.trim().match(/^([0-9a-f]{2})([:-])([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})$/i) : null;
  if (!m) throw new LvsError('LVS_INVALID_MAC', `${field}: "${String(input)}" is not a MAC address (aa:bb:cc:dd:ee:ff)`, { field });
  const bytes = Uint8Array.from([m[1], m[3], m[4], m[5], m[6], m[7]].map((x) => parseInt(x!, 16)));
  return { bytes, text: formatMac(bytes) };
}

export function formatMac(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}

/** [hi32, lo16] words of a MAC, as the protocol wants. */
export function macWords(m: MacAddress | undefined): [number, number] {
  if (!m) return [0, 0];
  const b = m.bytes;
  return [((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) | 0, (b[4]! << 8) | b[5]!];
}
