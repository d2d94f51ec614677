#include "packet/parse.hpp"
#include "packet/checksum.hpp"

namespace lvsd {
namespace {

constexpr int kMaxExtHeaders = 8;

bool is_icmp4_error(uint8_t t) { return t == 3 || t == 4 || t == 11 || t == 12; }
bool is_icmp6_error(uint8_t t) { return t >= 1 && t <= 4; }

// Parse the packet quoted in an ICMP error: [q, end) holds the quote. Only TCP and UDP quotes
// with their ports present are related to a flow; anything else is `Unhandled`.
ParseStatus parse_quote(const uint8_t* f, uint32_t q, uint32_t end, uint8_t outer_af, Quoted& in) {
  if (q >= end) return ParseStatus::IcmpBadInner;
  const uint32_t avail = end - q;
  in.l3 = uint16_t(q);
  in.avail = uint16_t(avail);
  const uint8_t version = f[q] >> 4;
  uint32_t l4 = 0;
  bool cut = false;
  if (outer_af == AF_V4) {
    if (version != 4 || avail < 20) return ParseStatus::IcmpBadInner;
    const uint32_t ihl = uint32_t(f[q] & 0x0f) * 4;
    if (ihl < 20 || ihl > avail) return ParseStatus::IcmpBadInner;
    const uint16_t frag = load16(f + q + 6);
    if (frag & 0x1fff) return ParseStatus::Unhandled;  // quote of a non-first fragment: no ports
    in.af = AF_V4;
    in.l3_len = uint16_t(ihl);
    in.proto = f[q + 9];
    in.src = Addr::v4(f + q + 12);
    in.dst = Addr::v4(f + q + 16);
    l4 = q + ihl;
  } else {
    if (version != 6 || avail < 40) return ParseStatus::IcmpBadInner;
    in.af = AF_V6;
    in.src = Addr::v6(f + q + 8);
    in.dst = Addr::v6(f + q + 24);
    // An ICMPv6 error is at most 1280 bytes (RFC 4443 2.4(c)), so the quote of a long packet
    // may stop inside its extension headers or before its ports. That is not malformed, only
    // unrelatable to a flow: such errors go to the kernel.
    cut = q + 40 + uint32_t(load16(f + q + 4)) > end;
    uint8_t proto = 0;
    ParseStatus st = walk_ipv6_ext(f, q + 40, end, f[q + 6], proto, l4, true);
    if (st == ParseStatus::IcmpBadInner && cut) return ParseStatus::Unhandled;
    if (st != ParseStatus::Ok) return st == ParseStatus::Fragment ? ParseStatus::Unhandled : st;
    in.proto = proto;
    in.l3_len = uint16_t(l4 - q);
  }
  if (in.proto != PROTO_TCP && in.proto != PROTO_UDP) return ParseStatus::Unhandled;
  // RFC 792 guarantees the first 8 bytes after the IP header; RFC 4443 only "as much as fits".
  if (end - l4 < 8) return cut ? ParseStatus::Unhandled : ParseStatus::IcmpBadInner;
  in.l4 = uint16_t(l4);
  in.sport = load16(f + l4);
  in.dport = load16(f + l4 + 2);
  return ParseStatus::Ok;
}

}  // namespace

ParseStatus walk_ipv6_ext(const uint8_t* f, uint32_t off, uint32_t end, uint8_t nh, uint8_t& proto,
                          uint32_t& l4, bool quoted) {
  for (int i = 0; i <= kMaxExtHeaders; ++i) {
    switch (nh) {
      case 0:    // hop-by-hop options: only directly after the IPv6 header (RFC 8200 4.3)
        if (i != 0) return quoted ? ParseStatus::IcmpBadInner : ParseStatus::Ipv6BadExtension;
        [[fallthrough]];
      case 43:   // routing
      case 60: { // destination options
        if (end - off < 8) return quoted ? ParseStatus::IcmpBadInner : ParseStatus::Ipv6BadExtension;
        const uint32_t len = (uint32_t(f[off + 1]) + 1) * 8;
        if (len > end - off) return quoted ? ParseStatus::IcmpBadInner : ParseStatus::Ipv6BadExtension;
        if (nh == 43 && f[off + 3] != 0 && !quoted) return ParseStatus::Ipv6RoutingHeader;
        nh = f[off];
        off += len;
        break;
      }
      case 51: {  // authentication header: length in 4-byte units, minus 2
        if (end - off < 8) return quoted ? ParseStatus::IcmpBadInner : ParseStatus::Ipv6BadExtension;
        const uint32_t len = (uint32_t(f[off + 1]) + 2) * 4;
        if (len > end - off) return quoted ? ParseStatus::IcmpBadInner : ParseStatus::Ipv6BadExtension;
        nh = f[off];
        off += len;
        break;
      }
      case 44: {  // fragment: an atomic fragment (offset 0, M=0) is a whole packet
        if (end - off < 8) return quoted ? ParseStatus::IcmpBadInner : ParseStatus::Ipv6BadExtension;
        const uint16_t fo = load16(f + off + 2);
        if ((fo & 0xfff8) != 0 || (fo & 1) != 0) return ParseStatus::Fragment;
        nh = f[off];
        off += 8;
        break;
      }
      default:
        proto = nh;
        l4 = off;
        return ParseStatus::Ok;
    }
  }
  return quoted ? ParseStatus::IcmpBadInner : ParseStatus::Ipv6BadExtension;
}

ParseStatus parse_frame(uint8_t* f, uint32_t len, PacketView& pv) {
  pv.frame = f;
  pv.frame_len = len;
  pv.icmp_error = false;
  pv.has_vlan = false;
  pv.tcp_flags = 0;
  pv.sport = pv.dport = 0;
  if (len < 14) return ParseStatus::EthTruncated;
  uint32_t off = 12;
  uint16_t type = load16(f + off);
  if (type == ETH_P_8021Q) {
    if (len < 18) return ParseStatus::VlanTruncated;
    pv.has_vlan = true;
    pv.vlan_tci = load16(f + 14);
    off += 4;
    type = load16(f + off);
  }
  off += 2;
  if (type != ETH_P_IPV4 && type != ETH_P_IPV6) return ParseStatus::NotIp;
  pv.l3 = uint16_t(off);
  const uint32_t avail = len - off;
  uint32_t l4 = 0, end = 0;

  if (type == ETH_P_IPV4) {
    if (avail < 20) return ParseStatus::Ipv4Truncated;
    const uint8_t* ip = f + off;
    if ((ip[0] >> 4) != 4) return ParseStatus::Ipv4BadVersion;
    const uint32_t ihl = uint32_t(ip[0] & 0x0f) * 4;
    if (ihl < 20 || ihl > avail) return ParseStatus::Ipv4BadIhl;
    const uint32_t tot = load16(ip + 2);
    if (tot < ihl || tot > avail) return ParseStatus::Ipv4BadLength;
    if (csum::fold(csum::partial(ip, ihl)) != 0xffff) return ParseStatus::Ipv4BadChecksum;
    const uint16_t frag = load16(ip + 6);
    pv.af = AF_V4;
    pv.l3_len = uint16_t(ihl);
    pv.ip_len = tot;
    pv.ttl = ip[8];
    pv.df = (frag & 0x4000) != 0;
    pv.proto = ip[9];
    pv.src = Addr::v4(ip + 12);
    pv.dst = Addr::v4(ip + 16);
    if (frag & 0x3fff) return ParseStatus::Fragment;  // MF or a fragment offset
    l4 = off + ihl;
    end = off + tot;
  } else {
    if (avail < 40) return ParseStatus::Ipv6Truncated;
    const uint8_t* ip = f + off;
    if ((ip[0] >> 4) != 6) return ParseStatus::Ipv6BadVersion;
    const uint32_t plen = load16(ip + 4);
    // Jumbograms (payload length 0 + jumbo option) never fit a frame we handle.
    if (plen == 0 || plen > avail - 40) return ParseStatus::Ipv6BadLength;
    pv.af = AF_V6;
    pv.ip_len = 40 + plen;
    pv.ttl = ip[7];
    pv.df = true;  // routers never fragment IPv6
    pv.src = Addr::v6(ip + 8);
    pv.dst = Addr::v6(ip + 24);
    end = off + 40 + plen;
    uint8_t proto = 0;
    ParseStatus st = walk_ipv6_ext(f, off + 40, end, ip[6], proto, l4, false);
    if (st != ParseStatus::Ok) return st;
    pv.proto = proto;
    pv.l3_len = uint16_t(l4 - off);
  }
  pv.l4 = uint16_t(l4);
  const uint32_t l4len = end - l4;

  switch (pv.proto) {
    case PROTO_TCP: {
      if (l4len < 20) return ParseStatus::L4Truncated;
      const uint32_t doff = uint32_t(f[l4 + 12] >> 4) * 4;
      if (doff < 20 || doff > l4len) return ParseStatus::TcpBadOffset;
      pv.sport = load16(f + l4);
      pv.dport = load16(f + l4 + 2);
      pv.tcp_flags = f[l4 + 13];
      return ParseStatus::Ok;
    }
    case PROTO_UDP: {
      if (l4len < 8) return ParseStatus::L4Truncated;
      const uint32_t ulen = load16(f + l4 + 4);
      if (ulen < 8 || ulen > l4len) return ParseStatus::UdpBadLength;
      if (pv.af == AF_V6 && load16(f + l4 + 6) == 0) return ParseStatus::Udp6ZeroChecksum;
      pv.sport = load16(f + l4);
      pv.dport = load16(f + l4 + 2);
      return ParseStatus::Ok;
    }
    case PROTO_ICMP:
    case PROTO_ICMPV6: {
      if ((pv.proto == PROTO_ICMP) != (pv.af == AF_V4)) return ParseStatus::Unhandled;
      if (l4len < 8) return ParseStatus::L4Truncated;
      pv.icmp_type = f[l4];
      pv.icmp_code = f[l4 + 1];
      const bool err = pv.af == AF_V4 ? is_icmp4_error(pv.icmp_type) : is_icmp6_error(pv.icmp_type);
      if (!err) return ParseStatus::Unhandled;  // echo & co. are the kernel's to answer
      ParseStatus st = parse_quote(f, l4 + 8, end, pv.af, pv.inner);
      if (st != ParseStatus::Ok) return st;
      // Only now, for errors we may rewrite, verify the ICMP checksum (IPVS does the same).
      uint32_t sum = csum::partial(f + l4, l4len);
      if (pv.af == AF_V6) sum = csum::add(sum, csum::pseudo(AF_V6, pv.src.b, pv.dst.b, PROTO_ICMPV6, l4len));
      if (csum::fold(sum) != 0xffff) return ParseStatus::IcmpBadChecksum;
      pv.icmp_error = true;
      return ParseStatus::Ok;
    }
    default:
      return ParseStatus::Unhandled;
  }
}

}  // namespace lvsd
