import { describe, expect, it } from 'vitest';
import {
  VRRP_GROUP4, VRRP_GROUP6, compareAddresses, decodeAdvert, encodeAdvert, vrrpChecksum,
} from '../../src/ha/vrrp-wire.js';

// RFC 5798 5.1 / 5.2, written out byte by byte:
//   version 3 | type 1, VRID, priority, count, (rsvd 4 bits) max adver int (12 bits, cs),
//   checksum, addresses.
// IPv4: from 198.18.0.1 to 224.0.0.18, VRID 51, priority 100, one address, 100 cs.
// Checksum by hand (16-bit words, one's complement sum):
//   pseudo-header c612 0001 e000 0012 0070 000c, message 3133 6401 0064 0000 c612 0064
//   sum 0x302af -> folded 0x02b2 -> complement 0xfd4d.
const V4 = Uint8Array.from([
  0x31, 51, 100, 1,
  0x00, 0x64, 0xfd, 0x4d,
  198, 18, 0, 100,
]);
// IPv6: from fe80::1 to ff02::12, VRID 52, priority 200, two addresses, 100 cs; the pseudo-
// header of RFC 8200 8.1 (source, destination, 32-bit length 40, zero, next header 112).
const V6 = Uint8Array.from([
  0x31, 52, 200, 2,
  0x00, 0x64, 0xaa, 0xc2,
  0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00,
  0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x01,
]);

const o4 = { family: 4 as const, source: '198.18.0.1', destination: VRRP_GROUP4 };
const o6 = { family: 6 as const, source: 'fe80::1', destination: VRRP_GROUP6 };

describe('VRRPv3 encode', () => {
  it('lays an IPv4 advert out as RFC 5798 5.1 says, checksum over the IPv4 pseudo-header', () => {
    const b = encodeAdvert({ vrid: 51, priority: 100, intervalCs: 100, addresses: ['198.18.0.100'] }, o4);
    expect([...b]).toEqual([...V4]);
  });

  it('lays an IPv6 advert out with the IPv6 pseudo-header checksum', () => {
    const b = encodeAdvert({ vrid: 52, priority: 200, intervalCs: 100, addresses: ['2001:db8::100', '2001:DB8::101'] }, o6);
    expect([...b]).toEqual([...V6]);
  });

  it('puts the interval in the low 12 bits and priority 0 as it is', () => {
    const b = encodeAdvert({ vrid: 1, priority: 0, intervalCs: 4095, addresses: ['198.18.0.100'] }, o4);
    expect(b[2]).toBe(0);
    expect(b.readUInt16BE(4)).toBe(0x0fff);
    expect(decodeAdvert(b, o4)).toEqual({ ok: true, advert: { vrid: 1, priority: 0, intervalCs: 4095, addresses: ['198.18.0.100'] } });
  });

  it('refuses values that do not fit the fields', () => {
    const base = { vrid: 1, priority: 100, intervalCs: 100, addresses: ['198.18.0.100'] };
    expect(() => encodeAdvert({ ...base, vrid: 0 }, o4)).toThrow(/vrid/);
    expect(() => encodeAdvert({ ...base, vrid: 256 }, o4)).toThrow(/vrid/);
    expect(() => encodeAdvert({ ...base, intervalCs: 4096 }, o4)).toThrow(/interval/);
    expect(() => encodeAdvert({ ...base, intervalCs: 0 }, o4)).toThrow(/interval/);
    expect(() => encodeAdvert({ ...base, addresses: ['2001:db8::1'] }, o4)).toThrow(/IPv4/);
  });

  it('a checksum written into the message sums to zero with the pseudo-header', () => {
    // Recomputing over a message that carries its checksum gives the same value (the field is
    // taken as zero), and the RFC's verification (sum including the field = 0xffff) holds.
    expect(vrrpChecksum(4, o4.source, o4.destination, V4)).toBe(0xfd4d);
    expect(vrrpChecksum(6, o6.source, o6.destination, V6)).toBe(0xaac2);
  });
});

describe('VRRPv3 decode', () => {
  it('reads the hand-built IPv4 and IPv6 adverts', () => {
    expect(decodeAdvert(V4, o4)).toEqual({ ok: true, advert: { vrid: 51, priority: 100, intervalCs: 100, addresses: ['198.18.0.100'] } });
    expect(decodeAdvert(V6, o6)).toEqual({ ok: true, advert: { vrid: 52, priority: 200, intervalCs: 100, addresses: ['2001:db8::100', '2001:db8::101'] } });
  });

  it('ignores the 4 reserved bits above the interval', () => {
    const b = Uint8Array.from(V4);
    b[4] = 0xf0; // reserved bits set: the checksum changes by 0xf000
    const c = vrrpChecksum(4, o4.source, o4.destination, b);
    b[6] = c >> 8; b[7] = c & 0xff;
    const d = decodeAdvert(b, o4);
    expect(d.ok && d.advert.intervalCs).toBe(100);
  });

  it('refuses a checksum made without the pseudo-header, or for another source', () => {
    // VRRPv2-style checksum (message only): 3133+6401+0064+c612+0064 = 0x15c0e -> 0x5c0f -> 0xa3f0.
    const b = Uint8Array.from(V4);
    b[6] = 0xa3; b[7] = 0xf0;
    expect(decodeAdvert(b, o4)).toMatchObject({ ok: false, reason: 'checksum' });
    expect(decodeAdvert(V4, { ...o4, source: '198.18.0.9' })).toMatchObject({ ok: false, reason: 'checksum' });
    expect(decodeAdvert(V6, { ...o6, destination: 'ff02::1' })).toMatchObject({ ok: false, reason: 'checksum' });
  });

  it('names what is wrong with a malformed advert', () => {
    const with0 = (i: number, v: number) => { const b = Uint8Array.from(V4); b[i] = v; return b; };
    expect(decodeAdvert(V4.subarray(0, 7), o4)).toMatchObject({ ok: false, reason: 'short' });
    expect(decodeAdvert(V4.subarray(0, 11), o4)).toMatchObject({ ok: false, reason: 'short' });
    expect(decodeAdvert(with0(0, 0x21), o4)).toMatchObject({ ok: false, reason: 'version' });
    expect(decodeAdvert(with0(0, 0x32), o4)).toMatchObject({ ok: false, reason: 'type' });
    // Interval 0 with a correct checksum.
    const z = encodeAdvert({ vrid: 51, priority: 100, intervalCs: 1, addresses: ['198.18.0.100'] }, o4);
    z[5] = 0;
    const c = vrrpChecksum(4, o4.source, o4.destination, z);
    z[6] = c >> 8; z[7] = c & 0xff;
    expect(decodeAdvert(z, o4)).toMatchObject({ ok: false, reason: 'interval' });
    // An IPv6 advert with one IPv4-sized address reads as the other family.
    expect(decodeAdvert(V4, { family: 6, source: 'fe80::1', destination: VRRP_GROUP6 })).toMatchObject({ ok: false, reason: 'family' });
    // Addresses of the other family than the socket's.
    expect(decodeAdvert(V4, { family: 4, source: new Uint8Array(16), destination: VRRP_GROUP4 })).toMatchObject({ ok: false, reason: 'family' });
  });

  it('never throws on arbitrary bytes', () => {
    let seed = 12345;
    const rnd = () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed >>> 16; };
    for (let i = 0; i < 20000; i++) {
      const base = i % 3 === 0 ? V4 : i % 3 === 1 ? V6 : new Uint8Array(0);
      const len = rnd() % 80;
      const b = new Uint8Array(len);
      for (let j = 0; j < len; j++) b[j] = j < base.length && rnd() % 4 !== 0 ? base[j]! : rnd() & 0xff;
      const fam = i % 2 === 0 ? o4 : o6;
      const r = decodeAdvert(b, fam);
      expect(typeof r.ok).toBe('boolean');
    }
  });
});

describe('address order for the tie rule', () => {
  it('compares as unsigned numbers', () => {
    expect(compareAddresses(Uint8Array.from([198, 18, 0, 2]), Uint8Array.from([198, 18, 0, 10]))).toBe(-1);
    expect(compareAddresses(Uint8Array.from([198, 18, 0, 200]), Uint8Array.from([198, 18, 0, 10]))).toBe(1);
    expect(compareAddresses(Uint8Array.from([198, 18, 0, 1]), Uint8Array.from([198, 18, 0, 1]))).toBe(0);
  });
});
