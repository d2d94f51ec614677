#include "packet/rewrite.hpp"
#include <cstring>
#include "packet/checksum.hpp"

namespace lvsd::rw {
namespace {

uint32_t addr_offset(uint8_t af, bool dst) { return af == AF_V4 ? (dst ? 16 : 12) : (dst ? 24 : 8); }

// Incrementally fix a TCP/UDP checksum at `check` for an address and a port change.
void fix_l4(uint8_t* check, uint8_t proto, uint8_t af, const uint8_t* old_addr, const Addr& addr,
            uint16_t old_port, uint16_t port) {
  uint16_t c = load16(check);
  if (proto == PROTO_UDP && c == 0) return;  // IPv4 UDP without checksum (IPv6 never gets here)
  c = csum::update_addr(c, af, old_addr, addr.b);
  c = csum::update16(c, old_port, port);
  if (proto == PROTO_UDP && c == 0) c = 0xffff;
  store16(check, c);
}

uint32_t l4_check_offset(uint8_t proto) { return proto == PROTO_TCP ? 16 : 6; }

bool bad_source(uint8_t af, const Addr& a) {
  if (af == AF_V4) return a.b[0] >= 224 || (a.b[0] | a.b[1] | a.b[2] | a.b[3]) == 0;
  return a.b[0] == 0xff || a.is_zero();
}
bool bad_destination(uint8_t af, const Addr& a) {
  if (af == AF_V4) return a.b[0] >= 224;  // multicast and 255.255.255.255
  return a.b[0] == 0xff;
}

}  // namespace

void dec_ttl(uint8_t* f, const PacketView& pv) {
  uint8_t* ip = f + pv.l3;
  if (pv.af == AF_V4) {
    const uint16_t old = load16(ip + 8);  // TTL and protocol share a 16-bit word
    ip[8] = uint8_t(ip[8] - 1);
    store16(ip + 10, csum::update16(load16(ip + 10), old, load16(ip + 8)));
  } else {
    ip[7] = uint8_t(ip[7] - 1);
  }
}

void nat(uint8_t* f, PacketView& pv, bool dst, const Addr& addr, uint16_t port) {
  uint8_t* ip = f + pv.l3;
  uint8_t* a = ip + addr_offset(pv.af, dst);
  uint8_t* l4 = f + pv.l4;
  uint8_t* p = l4 + (dst ? 2 : 0);
  const uint16_t old_port = load16(p);
  fix_l4(l4 + l4_check_offset(pv.proto), pv.proto, pv.af, a, addr, old_port, port);
  if (pv.af == AF_V4) store16(ip + 10, csum::update_addr(load16(ip + 10), AF_V4, a, addr.b));
  addr.write(pv.af, a);
  store16(p, port);
  if (dst) { pv.dst = addr; pv.dport = port; } else { pv.src = addr; pv.sport = port; }
}

void nat_icmp(uint8_t* f, PacketView& pv, bool to_real, const Addr& addr, uint16_t port) {
  uint8_t* ip = f + pv.l3;
  // Outer header: destination (to the real) or source (to the client).
  uint8_t* outer = ip + addr_offset(pv.af, to_real);
  if (pv.af == AF_V4) store16(ip + 10, csum::update_addr(load16(ip + 10), AF_V4, outer, addr.b));
  addr.write(pv.af, outer);
  if (to_real) pv.dst = addr; else pv.src = addr;

  // Quoted packet: its source (it was VIP -> client) or destination (client -> real).
  Quoted& q = pv.inner;
  uint8_t* qip = f + q.l3;
  uint8_t* qa = qip + addr_offset(q.af, !to_real);
  uint8_t* ql4 = f + q.l4;
  uint8_t* qp = ql4 + (to_real ? 0 : 2);
  const uint16_t old_port = load16(qp);
  const uint32_t l4_avail = uint32_t(q.l3) + q.avail - q.l4;
  const uint32_t coff = l4_check_offset(q.proto);
  if (l4_avail >= coff + 2) fix_l4(ql4 + coff, q.proto, q.af, qa, addr, old_port, port);
  addr.write(q.af, qa);
  store16(qp, port);
  if (to_real) { q.src = addr; q.sport = port; } else { q.dst = addr; q.dport = port; }
  if (q.af == AF_V4) {
    store16(qip + 10, 0);
    store16(qip + 10, csum::finish(csum::partial(qip, q.l3_len)));
  }

  // The ICMP checksum covers the quote, so recompute it.
  uint8_t* icmp = f + pv.l4;
  const uint32_t len = pv.l3_end() - pv.l4;
  store16(icmp + 2, 0);
  uint32_t sum = csum::partial(icmp, len);
  if (pv.af == AF_V6) sum = csum::add(sum, csum::pseudo(AF_V6, pv.src.b, pv.dst.b, PROTO_ICMPV6, len));
  store16(icmp + 2, csum::finish(sum));
}

void write_eth(uint8_t* at, const Mac& dst, const Mac& src, uint16_t vlan, uint16_t ethertype) {
  std::memcpy(at, dst.b, 6);
  std::memcpy(at + 6, src.b, 6);
  if (vlan) {
    store16(at + 12, ETH_P_8021Q);
    store16(at + 14, vlan & 0x0fff);
    store16(at + 16, ethertype);
  } else {
    store16(at + 12, ethertype);
  }
}

void write_ipv4(uint8_t* at, uint32_t total_len, uint8_t tos, uint16_t id, bool df, uint8_t ttl,
                uint8_t proto, const Addr& src, const Addr& dst) {
  at[0] = 0x45;
  at[1] = tos;
  store16(at + 2, uint16_t(total_len));
  store16(at + 4, id);
  store16(at + 6, df ? 0x4000 : 0);
  at[8] = ttl;
  at[9] = proto;
  store16(at + 10, 0);
  std::memcpy(at + 12, src.b, 4);
  std::memcpy(at + 16, dst.b, 4);
  store16(at + 10, csum::finish(csum::partial(at, 20)));
}

void write_ipv6(uint8_t* at, uint32_t payload_len, uint8_t tclass, uint32_t flow, uint8_t nh,
                uint8_t hop_limit, const Addr& src, const Addr& dst) {
  store32(at, 6u << 28 | uint32_t(tclass) << 20 | (flow & 0xfffff));
  store16(at + 4, uint16_t(payload_len));
  at[6] = nh;
  at[7] = hop_limit;
  std::memcpy(at + 8, src.b, 16);
  std::memcpy(at + 24, dst.b, 16);
}

uint32_t build_icmp_error(uint8_t* out, uint32_t room, const uint8_t* orig, const PacketView& pv,
                          uint8_t type, uint8_t code, uint32_t info, const Addr& src,
                          const Mac& eth_src, uint16_t vlan, uint16_t ip_id) {
  if (pv.icmp_error || bad_source(pv.af, pv.src) || bad_destination(pv.af, pv.dst)) return 0;
  const bool v4 = pv.af == AF_V4;
  const uint32_t ip_hdr = v4 ? 20 : 40;
  const uint32_t limit = v4 ? 576 : 1280;  // RFC 1812 4.3.2.3 / RFC 4443 2.4(c)
  uint32_t quote = pv.ip_len;
  if (quote > limit - ip_hdr - 8) quote = limit - ip_hdr - 8;
  const uint32_t l2 = eth_len(vlan);
  const uint32_t total = l2 + ip_hdr + 8 + quote;
  if (total > room) return 0;

  Mac dst_mac;
  std::memcpy(dst_mac.b, orig + 6, 6);  // back to where the packet came from
  write_eth(out, dst_mac, eth_src, vlan, v4 ? ETH_P_IPV4 : ETH_P_IPV6);
  uint8_t* ip = out + l2;
  uint8_t* icmp = ip + ip_hdr;
  icmp[0] = type;
  icmp[1] = code;
  store16(icmp + 2, 0);
  store32(icmp + 4, v4 ? (type == 3 && code == 4 ? (info & 0xffff) : 0) : info);
  std::memcpy(icmp + 8, orig + pv.l3, quote);
  const uint32_t icmp_len = 8 + quote;
  if (v4) {
    write_ipv4(ip, ip_hdr + icmp_len, 0xc0, ip_id, false, 64, PROTO_ICMP, src, pv.src);
    store16(icmp + 2, csum::finish(csum::partial(icmp, icmp_len)));
  } else {
    write_ipv6(ip, icmp_len, 0, 0, PROTO_ICMPV6, 64, src, pv.src);
    const uint32_t sum = csum::add(csum::partial(icmp, icmp_len),
                                   csum::pseudo(AF_V6, src.b, pv.src.b, PROTO_ICMPV6, icmp_len));
    store16(icmp + 2, csum::finish(sum));
  }
  return total;
}

bool plan_fragments(const uint8_t* ip, uint32_t ip_len, uint32_t mtu, FragmentPlan& plan) {
  const uint32_t ihl = uint32_t(ip[0] & 0x0f) * 4;
  plan.first_hdr = ihl;
  // Later fragments: the fixed header plus only the options with the copied flag (RFC 791).
  std::memcpy(plan.later_header, ip, 20);
  uint32_t w = 20;
  for (uint32_t o = 20; o < ihl;) {
    const uint8_t t = ip[o];
    if (t == 0) break;               // end of option list
    if (t == 1) { ++o; continue; }   // no-operation: not copied
    if (o + 1 >= ihl) break;
    const uint32_t len = ip[o + 1];
    if (len < 2 || o + len > ihl) break;
    if (t & 0x80) {
      std::memcpy(plan.later_header + w, ip + o, len);
      w += len;
    }
    o += len;
  }
  while (w % 4) plan.later_header[w++] = 0;
  plan.later_hdr = w;
  plan.later_header[0] = uint8_t(0x40 | (w / 4));
  plan.payload = ip_len - ihl;
  if (mtu <= ihl + 8 || mtu <= w + 8) return false;
  plan.first_payload = (mtu - ihl) & ~7u;
  plan.later_payload = (mtu - w) & ~7u;
  if (plan.payload <= plan.first_payload) {
    plan.count = 1;
  } else {
    const uint32_t rest = plan.payload - plan.first_payload;
    plan.count = 1 + (rest + plan.later_payload - 1) / plan.later_payload;
  }
  return true;
}

uint32_t write_fragment(const uint8_t* ip, const FragmentPlan& plan, uint32_t index, uint8_t* out) {
  const bool first = index == 0;
  const uint32_t hdr = first ? plan.first_hdr : plan.later_hdr;
  const uint32_t offset = first ? 0 : plan.first_payload + (index - 1) * plan.later_payload;
  uint32_t len = first ? plan.first_payload : plan.later_payload;
  if (offset + len > plan.payload) len = plan.payload - offset;
  const bool last = offset + len == plan.payload;
  std::memcpy(out, first ? ip : plan.later_header, hdr);
  std::memcpy(out + hdr, ip + plan.first_hdr + offset, len);
  store16(out + 2, uint16_t(hdr + len));
  const uint16_t orig_frag = load16(ip + 6);
  store16(out + 6, uint16_t((orig_frag & 0x8000) | (last ? 0 : 0x2000) | (offset / 8)));
  store16(out + 10, 0);
  store16(out + 10, csum::finish(csum::partial(out, hdr)));
  return hdr + len;
}

}  // namespace lvsd::rw
