// Frame parsing: Ethernet (+ one 802.1Q tag), IPv4 (options), IPv6 (extension headers),
// TCP, UDP, and ICMP/ICMPv6 errors with the flow they quote. Every read is bounds-checked
// against the frame; a frame that fails a check is classified with a drop reason.
#pragma once
#include <cstdint>
#include "packet/bytes.hpp"

namespace lvsd {

// Why a frame was dropped by the parser. Values are part of the counter layout (see
// engine/counters.hpp) and of the TS API, so only append.
enum class ParseStatus : uint8_t {
  Ok = 0,
  NotIp,              // not IPv4/IPv6 (ARP, LLDP, ...): handed to the kernel
  Unhandled,          // IP, but nothing the director handles (ESP, ICMP echo, ...): kernel's
  EthTruncated,
  VlanTruncated,
  Ipv4Truncated,
  Ipv4BadVersion,
  Ipv4BadIhl,
  Ipv4BadLength,
  Ipv4BadChecksum,
  Ipv6Truncated,
  Ipv6BadVersion,
  Ipv6BadLength,
  Ipv6BadExtension,
  Ipv6RoutingHeader,  // a routing header with segments left: the VIP is not the final hop
  Fragment,           // IPv4/IPv6 fragments are not reassembled: counted and dropped
  L4Truncated,
  TcpBadOffset,
  UdpBadLength,
  Udp6ZeroChecksum,   // RFC 8200 8.1: a zero UDP checksum is invalid over IPv6
  IcmpBadChecksum,
  IcmpBadInner,       // an ICMP error whose quoted packet is malformed
};

// The quoted packet of an ICMP error, from the point of view of the host that sent it:
// src/dst/sport/dport are as they appear inside the quote.
struct Quoted {
  uint16_t l3 = 0;       // offset of the quoted IP header in the frame
  uint16_t l3_len = 0;   // its header length (IPv4 ihl*4, IPv6 40 + extension headers)
  uint16_t l4 = 0;       // offset of the quoted L4 header
  uint16_t avail = 0;    // bytes of the quote from l3 to the end of the ICMP message
  uint8_t af = 0;
  uint8_t proto = 0;
  Addr src, dst;
  uint16_t sport = 0, dport = 0;
};

struct PacketView {
  uint8_t* frame = nullptr;
  uint32_t frame_len = 0;
  uint16_t l3 = 0;         // offset of the IP header
  uint16_t l3_len = 0;     // IP header length incl. IPv4 options / IPv6 extension headers
  uint16_t l4 = 0;         // offset of the L4 header
  uint16_t vlan_tci = 0;
  bool has_vlan = false;
  uint8_t af = 0;
  uint8_t proto = 0;       // L4 protocol (after IPv6 extension headers)
  uint8_t ttl = 0;         // TTL / hop limit
  bool df = false;         // IPv4 don't-fragment
  uint32_t ip_len = 0;     // IP packet length per its header (the frame may carry padding)
  Addr src, dst;
  uint16_t sport = 0, dport = 0;
  uint8_t tcp_flags = 0;
  // ICMP errors (v4 types 3, 4, 11, 12; v6 types 1-4): the quoted flow.
  bool icmp_error = false;
  uint8_t icmp_type = 0, icmp_code = 0;
  Quoted inner;

  uint32_t l3_end() const { return uint32_t(l3) + ip_len; }
};

ParseStatus parse_frame(uint8_t* frame, uint32_t len, PacketView& pv);

// Walk an IPv6 extension-header chain starting at `off` with next header `nh`, within
// [.., end). On success sets proto and l4 offset. Exposed for the quoted-packet parser.
ParseStatus walk_ipv6_ext(const uint8_t* frame, uint32_t off, uint32_t end, uint8_t nh,
                          uint8_t& proto, uint32_t& l4, bool quoted);

}  // namespace lvsd
