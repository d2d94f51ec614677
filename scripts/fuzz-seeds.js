#!/usr/bin/env node
// Writes the seed corpus of the packet fuzzer (native/fuzz/fuzz_packet.cpp) to
// native/fuzz/corpus/, or to the directory given as the first argument.
//
// A seed is [flags][clock step, if flags bit 1][Ethernet frame]:
//   flags bit 0: ingress interface (0 client side, 1 real side)
//   flags bit 1: the next byte advances the dataplane clock by that many * 16 ms
//   flags bit 2: "prime": the harness first sends its fixture packets, so the connections
//                below exist (client 198.18.0.100 / 2001:db8::100, TCP port 40000, UDP 5353)
//   flags bit 3: the harness fixes the frame's checksums (set on most seeds, so that their
//                mutations get past the parser's checksum checks)
//   flags bits 4-5 (both): after priming, the harness deletes real 198.19.0.12:8080 or adds it back
//   flags bits 6-7 (both): the harness first sends a burst of new flows (fills the table)
// Addresses, ports and MACs match the harness's fixture configuration.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const TCP = 6, UDP = 17, ICMP = 1, ICMPV6 = 58;
const SYN = 0x02, ACK = 0x10, PSH = 0x08;
const IFACE_MAC = [mac('02:00:00:00:00:01'), mac('02:00:00:00:01:01')];
const CLIENT_MAC = mac('02:00:00:00:00:64');
const REAL_MAC = mac('02:00:00:00:01:0b');  // 198.19.0.11
const CLOCK = 2, PRIME = 4, FIX = 8, RECONFIGURE = 0x30, BURST = 0xc0;

function mac(s) {
  return Buffer.from(s.split(':').map((h) => parseInt(h, 16)));
}

function addr(s) {
  if (!s.includes(':')) return Buffer.from(s.split('.').map(Number));
  const [head, tail = ''] = s.split('::');
  const groups = (part) => (part ? part.split(':').map((g) => parseInt(g, 16)) : []);
  const h = groups(head), t = groups(tail);
  const all = s.includes('::') ? [...h, ...new Array(8 - h.length - t.length).fill(0), ...t] : h;
  const b = Buffer.alloc(16);
  all.forEach((g, i) => b.writeUInt16BE(g, 2 * i));
  return b;
}

// RFC 1071: one's-complement sum of 16-bit big-endian words.
function onesSum(buf, acc = 0) {
  for (let i = 0; i + 1 < buf.length; i += 2) acc += buf.readUInt16BE(i);
  if (buf.length % 2) acc += buf[buf.length - 1] << 8;
  return acc;
}
function checksum(acc) {
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 0x10000);
  return ~acc & 0xffff;
}
function pseudo(src, dst, proto, len) {
  return onesSum(Buffer.concat([src, dst])) + proto + (len >>> 16) + (len & 0xffff);
}

function tcp({ sport, dport, flags = SYN, seq = 0x01000000, ack = 0, payload = Buffer.alloc(0) }) {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h.writeUInt32BE(seq, 4);
  h.writeUInt32BE(ack, 8);
  h[12] = 5 << 4;
  h[13] = flags;
  h.writeUInt16BE(64240, 14);
  return { proto: TCP, bytes: Buffer.concat([h, payload]), check: 16 };
}
function udp({ sport, dport, payload = Buffer.from('lvsd'), zeroChecksum = false }) {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h.writeUInt16BE(8 + payload.length, 4);
  return { proto: UDP, bytes: Buffer.concat([h, payload]), check: zeroChecksum ? -1 : 6 };
}
// Fill in a TCP/UDP checksum (UDP: 0 is sent as 0xffff).
function withChecksum(l4, src, dst) {
  const b = Buffer.from(l4.bytes);
  if (l4.check >= 0) {
    let c = checksum(onesSum(b, pseudo(src, dst, l4.proto, b.length)));
    if (l4.proto === UDP && c === 0) c = 0xffff;
    b.writeUInt16BE(c, l4.check);
  }
  return b;
}

function ipv4({ src, dst, proto, payload, ttl = 64, df = true, mf = false, fragOffset = 0, options = Buffer.alloc(0), id = 0x1234 }) {
  const ihl = 20 + options.length;
  const h = Buffer.alloc(ihl);
  h[0] = 0x40 | (ihl / 4);
  h.writeUInt16BE(ihl + payload.length, 2);
  h.writeUInt16BE(id, 4);
  h.writeUInt16BE((df ? 0x4000 : 0) | (mf ? 0x2000 : 0) | fragOffset, 6);
  h[8] = ttl;
  h[9] = proto;
  addr(src).copy(h, 12);
  addr(dst).copy(h, 16);
  options.copy(h, 20);
  h.writeUInt16BE(checksum(onesSum(h)), 10);
  return Buffer.concat([h, payload]);
}
// ext: [{ type: 0 | 60 | 43, options: Buffer }] padded to 8-byte multiples with PadN.
function ipv6({ src, dst, proto, payload, hop = 64, ext = [] }) {
  const parts = [];
  ext.forEach((e, i) => {
    const next = i + 1 < ext.length ? ext[i + 1].type : proto;
    let body = e.options ?? Buffer.alloc(0);
    const pad = (8 - ((2 + body.length) % 8)) % 8;
    if (pad === 1) body = Buffer.concat([body, Buffer.from([0])]);  // Pad1
    else if (pad > 1) body = Buffer.concat([body, Buffer.from([1, pad - 2]), Buffer.alloc(pad - 2)]);
    const h = Buffer.concat([Buffer.from([next, (2 + body.length) / 8 - 1]), body]);
    parts.push(h);
  });
  const rest = Buffer.concat([...parts, payload]);
  const h = Buffer.alloc(40);
  h.writeUInt32BE(0x60000000, 0);
  h.writeUInt16BE(rest.length, 4);
  h[6] = ext.length ? ext[0].type : proto;
  h[7] = hop;
  addr(src).copy(h, 8);
  addr(dst).copy(h, 24);
  return Buffer.concat([h, rest]);
}
function packet(src, dst, l4, opts = {}) {
  const payload = withChecksum(l4, addr(src), addr(dst));
  return src.includes(':') ? ipv6({ src, dst, proto: l4.proto, payload, ...opts })
                           : ipv4({ src, dst, proto: l4.proto, payload, ...opts });
}
function icmp4Error(src, dst, type, code, info, quote) {
  const m = Buffer.concat([Buffer.alloc(8), quote]);
  m[0] = type;
  m[1] = code;
  m.writeUInt32BE(info, 4);
  m.writeUInt16BE(checksum(onesSum(m)), 2);
  return ipv4({ src, dst, proto: ICMP, payload: m, df: false });
}
function icmp6Error(src, dst, type, code, info, quote) {
  const m = Buffer.concat([Buffer.alloc(8), quote]);
  m[0] = type;
  m[1] = code;
  m.writeUInt32BE(info, 4);
  m.writeUInt16BE(checksum(onesSum(m, pseudo(addr(src), addr(dst), ICMPV6, m.length))), 2);
  return ipv6({ src, dst, proto: ICMPV6, payload: m });
}

function ether(ip, { iface = 0, vlan = 0, src = CLIENT_MAC, type } = {}) {
  const t = type ?? ((ip[0] >> 4) === 6 ? 0x86dd : 0x0800);
  const h = Buffer.alloc(vlan ? 18 : 14);
  IFACE_MAC[iface].copy(h, 0);
  src.copy(h, 6);
  if (vlan) {
    h.writeUInt16BE(0x8100, 12);
    h.writeUInt16BE(vlan, 14);
    h.writeUInt16BE(t, 16);
  } else {
    h.writeUInt16BE(t, 12);
  }
  return Buffer.concat([h, ip]);
}
function seed(frame, { iface = 0, prime = false, clock, fix = true, reconfigure = false, burst = false } = {}) {
  const flags = iface | (prime ? PRIME : 0) | (clock !== undefined ? CLOCK : 0) | (fix ? FIX : 0) |
    (reconfigure ? RECONFIGURE : 0) | (burst ? BURST : 0);
  return Buffer.concat([Buffer.from(clock !== undefined ? [flags, clock] : [flags]), frame]);
}

const C4 = '198.18.0.100', C6 = '2001:db8::100';
const bytes = (n, fill = 0x61) => Buffer.alloc(n, fill);
// RFC 791 options: NOP, router alert (copied flag set), NOP x3 + end of list.
const OPTIONS = Buffer.from([0x01, 0x94, 0x04, 0x00, 0x00, 0x01, 0x01, 0x00]);
// `n` bytes of IPv6 PadN options (n >= 2), for long extension headers.
function padOptions(n) {
  const parts = [];
  while (n > 0) {
    let len = Math.min(255, n - 2);
    if (n - 2 - len === 1) len -= 1;  // never leave a single byte
    parts.push(Buffer.from([1, len]), Buffer.alloc(len));
    n -= 2 + len;
  }
  return Buffer.concat(parts);
}
// The first 8 bytes of the quoted L4 header are what an ICMP error must carry.
const quote = (ip, extra = 8) => ip.subarray(0, (ip[0] >> 4) === 4 ? (ip[0] & 15) * 4 + extra : 40 + extra);

const seeds = {
  // IPv4 TCP SYN to the NAT VIP (new connection, round robin over two reals + one of weight 0).
  'v4-syn-nat': seed(ether(packet(C4, '198.18.0.10', tcp({ sport: 41000, dport: 80 })))),
  'v4-syn-nat-nofix': seed(ether(packet(C4, '198.18.0.10', tcp({ sport: 41011, dport: 80 }))), { fix: false }),
  // ACK and data of the primed connection client:40000 -> 198.18.0.10:80.
  'v4-ack-existing': seed(ether(packet(C4, '198.18.0.10', tcp({ sport: 40000, dport: 80, flags: ACK, ack: 1 }))), { prime: true }),
  // The real of a connection deleted (or added back) before its next packet.
  'v4-data-reconfigure': seed(ether(packet(C4, '198.18.0.10', tcp({ sport: 40000, dport: 80, flags: ACK | PSH, ack: 1, payload: bytes(20) }))), { prime: true, reconfigure: true }),
  // NAT replies from the real side: TCP (from .12, which round robin picks first in a fresh
  // process) and UDP (one real).
  'v4-nat-reply-tcp': seed(ether(packet('198.19.0.12', C4, tcp({ sport: 8080, dport: 40000, flags: SYN | ACK })), { iface: 1, src: REAL_MAC }), { iface: 1, prime: true }),
  'v4-nat-reply-udp': seed(ether(packet('198.19.0.11', C4, udp({ sport: 53, dport: 5353, payload: bytes(40) })), { iface: 1, src: REAL_MAC }), { iface: 1, prime: true }),
  'v4-udp-nat': seed(ether(packet(C4, '198.18.0.10', udp({ sport: 5400, dport: 53 })))),
  'v4-udp-nat-nocsum': seed(ether(packet(C4, '198.18.0.10', udp({ sport: 5401, dport: 53, zeroChecksum: true }))), { fix: false }),
  // NAT replies too big for the client side (MTU 1500): DF -> frag needed; no DF -> fragments.
  'v4-nat-reply-too-big': seed(ether(packet('198.19.0.11', C4, udp({ sport: 53, dport: 5353, payload: bytes(1600) })), { iface: 1, src: REAL_MAC }), { iface: 1, prime: true }),
  'v4-nat-reply-frag': seed(ether(packet('198.19.0.11', C4, udp({ sport: 53, dport: 5353, payload: bytes(1600) }), { df: false }), { iface: 1, src: REAL_MAC }), { iface: 1, prime: true }),
  // Services whose only real has weight 0: ICMP / ICMPv6 port unreachable.
  'v4-syn-no-dest': seed(ether(packet(C4, '198.18.0.40', tcp({ sport: 41010, dport: 80 }))), { clock: 64 }),
  'v6-udp-no-dest': seed(ether(packet(C6, '2001:db8::40', udp({ sport: 5403, dport: 53 }))), { clock: 64 }),
  // IPv4 with options; a large one without DF to the NAT VIP is fragmented (options copied or not).
  'v4-options-syn': seed(ether(packet(C4, '198.18.0.10', tcp({ sport: 41001, dport: 80 }), { options: OPTIONS }))),
  'v4-options-frag-nat': seed(ether(packet(C4, '198.18.0.10', tcp({ sport: 40000, dport: 80, flags: ACK, payload: bytes(1420) }), { options: OPTIONS, df: false })), { prime: true }),
  // IPv6 TCP with hop-by-hop + destination options; IPv6 UDP to the direct-routing VIP.
  'v6-ext-syn-nat': seed(ether(packet(C6, '2001:db8::10', tcp({ sport: 41002, dport: 80 }), {
    ext: [{ type: 0, options: Buffer.from([0x05, 0x02, 0x00, 0x00]) }, { type: 60, options: Buffer.from([0x1e, 0x02, 0xab, 0xcd]) }],
  }))),
  'v6-ack-existing': seed(ether(packet(C6, '2001:db8::10', tcp({ sport: 40000, dport: 80, flags: ACK, ack: 1 }))), { prime: true }),
  'v6-nat-reply': seed(ether(packet('2001:db8:1::12', C6, tcp({ sport: 8080, dport: 40000, flags: SYN | ACK })), { iface: 1, src: REAL_MAC }), { iface: 1, prime: true }),
  // Long extension headers: the ICMPv6 errors about them (time exceeded; packet too big for
  // the real side) quote only 1232 bytes, which stop inside the headers (finding F1).
  'v6-long-ext-hlim1': seed(ether(packet(C6, '2001:db8::10', tcp({ sport: 41015, dport: 80 }), {
    hop: 1, ext: [{ type: 0, options: padOptions(1286) }],
  }))),
  'v6-long-ext-too-big': seed(ether(packet(C6, '2001:db8::10', tcp({ sport: 41016, dport: 80, payload: bytes(100) }), {
    ext: [{ type: 0, options: padOptions(1286) }],
  }))),
  'v6-udp-dr': seed(ether(packet(C6, '2001:db8::20', udp({ sport: 5402, dport: 53, payload: bytes(64) })))),
  'v6-too-big-nat': seed(ether(packet(C6, '2001:db8::10', tcp({ sport: 40000, dport: 80, flags: ACK, payload: bytes(1380) }))), { prime: true }),
  // Direct routing (one real resolved, one with an all-zero MAC).
  'v4-syn-dr': seed(ether(packet(C4, '198.18.0.20', tcp({ sport: 41003, dport: 80 })))),
  // Persistence (198.18.0.50:80, wlc) and the firewall-mark service (TCP to 198.18.0.60, any
  // port; lc, persistent, NAT real with port 0) and their replies.
  'v4-syn-persist': seed(ether(packet(C4, '198.18.0.50', tcp({ sport: 41013, dport: 80 })))),
  'v4-persist-reply': seed(ether(packet('198.19.0.52', C4, tcp({ sport: 8080, dport: 40000, flags: SYN | ACK })), { iface: 1, src: REAL_MAC }), { iface: 1, prime: true }),
  'v4-syn-fwmark': seed(ether(packet(C4, '198.18.0.60', tcp({ sport: 41014, dport: 8443 })))),
  'v4-fwmark-reply': seed(ether(packet('198.19.0.61', C4, tcp({ sport: 443, dport: 40000, flags: SYN | ACK })), { iface: 1, src: REAL_MAC }), { iface: 1, prime: true }),
  // Tunnels: IPIP to an IPv4 real, IPv4-in-IPv6 to an IPv6 real.
  'v4-syn-tun4': seed(ether(packet(C4, '198.18.0.30', tcp({ sport: 41005, dport: 80 })))),
  'v4-syn-tun6': seed(ether(packet(C4, '198.18.0.31', tcp({ sport: 41006, dport: 80 })))),
  // Too big for the tunnel (1390 + 20 > MTU 1400): DF -> frag needed; no DF -> fragment + encapsulate.
  'v4-too-big-tun4-df': seed(ether(packet(C4, '198.18.0.30', tcp({ sport: 40000, dport: 80, flags: ACK, payload: bytes(1350) }))), { prime: true }),
  'v4-frag-tun4': seed(ether(packet(C4, '198.18.0.30', tcp({ sport: 40000, dport: 80, flags: ACK, payload: bytes(1350) }), { df: false })), { prime: true }),
  'v4-frag-tun6': seed(ether(packet(C4, '198.18.0.31', tcp({ sport: 40000, dport: 80, flags: ACK, payload: bytes(1350) }), { df: false })), { prime: true }),
  // 802.1Q tagged frame to the DR VIP.
  'vlan-syn-dr': seed(ether(packet(C4, '198.18.0.20', tcp({ sport: 41007, dport: 80 })), { vlan: 100 })),
  // ICMP frag needed about a VIP -> client packet (relayed to the real); and from the real side.
  'icmp4-frag-needed': seed(ether(icmp4Error('198.18.0.254', '198.18.0.10', 3, 4, 1200,
    quote(packet('198.18.0.10', C4, tcp({ sport: 80, dport: 40000, flags: SYN | ACK })), 20))), { prime: true }),
  'icmp4-unreach-from-real': seed(ether(icmp4Error('198.19.0.11', C4, 3, 3, 0,
    quote(packet(C4, '198.19.0.11', udp({ sport: 5353, dport: 53 })))), { iface: 1, src: REAL_MAC }), { iface: 1, prime: true }),
  // ICMPv6 packet too big about a VIP -> client packet.
  'icmp6-too-big': seed(ether(icmp6Error('2001:db8::fe', '2001:db8::10', 2, 0, 1280,
    quote(packet('2001:db8::10', C6, tcp({ sport: 80, dport: 40000, flags: SYN | ACK })), 20))), { prime: true }),
  // IPv4 fragments (not reassembled: dropped), first and later.
  'v4-fragment-first': seed(ether(packet(C4, '198.18.0.10', tcp({ sport: 40000, dport: 80, flags: ACK, payload: bytes(64) }), { df: false, mf: true })), { prime: true }),
  'v4-fragment-later': seed(ether(ipv4({ src: C4, dst: '198.18.0.10', proto: TCP, payload: bytes(64), df: false, fragOffset: 10 }))),
  // TTL 1 (time exceeded), a frame that is not IP (passed to the kernel).
  'v4-ttl1': seed(ether(packet(C4, '198.18.0.10', tcp({ sport: 41008, dport: 80 }), { ttl: 1 })), { clock: 64 }),
  // A burst of new flows first (the table fills after enough of them: eviction).
  'burst-syn': seed(ether(packet(C4, '198.18.0.10', tcp({ sport: 41012, dport: 80 }))), { burst: true }),
  'arp': seed(ether(Buffer.from('0001080006040001020000000064c6120064000000000000c612000a', 'hex'), { type: 0x0806 }), { fix: false }),
};

const dir = path.resolve(process.argv[2] ?? path.join(root, 'native/fuzz/corpus'));
fs.mkdirSync(dir, { recursive: true });
for (const [name, bytes_] of Object.entries(seeds)) fs.writeFileSync(path.join(dir, `${name}.bin`), bytes_);
console.log(`fuzz-seeds: wrote ${Object.keys(seeds).length} seeds to ${path.relative(process.cwd(), dir) || '.'}`);
