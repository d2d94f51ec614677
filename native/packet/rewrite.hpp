// Packet rewriting: pure functions over a parsed frame. Checksums are updated incrementally
// (RFC 1624) where a field changes, and recomputed in full only for ICMP errors, whose quoted
// packet changes too (as IPVS's ip_vs_nat_icmp does).
#pragma once
#include <cstdint>
#include "packet/bytes.hpp"
#include "packet/parse.hpp"

namespace lvsd::rw {

// Decrement the TTL / hop limit (the caller checked it is > 1), fixing the IPv4 checksum.
void dec_ttl(uint8_t* frame, const PacketView& pv);

// NAT of a TCP/UDP packet: replace the destination (dst=true: client -> real) or the source
// (dst=false: real -> client) address and port. IPv4 UDP without a checksum stays without one;
// an updated UDP checksum that comes out as 0 is sent as 0xffff.
void nat(uint8_t* frame, PacketView& pv, bool dst, const Addr& addr, uint16_t port);

// NAT of an ICMP error relating to a connection.
//  to_real: the error came from the client side about a VIP -> client packet: the outer
//           destination and the quoted source become the real's address and port.
//  else:    the error came from the real side about a client -> real packet: the outer source
//           and the quoted destination become the VIP and its port.
void nat_icmp(uint8_t* frame, PacketView& pv, bool to_real, const Addr& addr, uint16_t port);

inline uint32_t eth_len(uint16_t vlan) { return vlan ? 18 : 14; }
void write_eth(uint8_t* at, const Mac& dst, const Mac& src, uint16_t vlan, uint16_t ethertype);

// RFC 6040 / INET_ECN_encapsulate: copy DSCP and ECN, but never copy CE outwards (use ECT(0)).
inline uint8_t ecn_encap(uint8_t inner_tos) {
  const uint8_t ecn = inner_tos & 3;
  return uint8_t((inner_tos & ~3) | (ecn == 3 ? 2 : ecn));
}
inline uint8_t ip_tos(const uint8_t* ip) {
  return (ip[0] >> 4) == 4 ? ip[1] : uint8_t((ip[0] & 0x0f) << 4 | ip[1] >> 4);
}

void write_ipv4(uint8_t* at, uint32_t total_len, uint8_t tos, uint16_t id, bool df, uint8_t ttl,
                uint8_t proto, const Addr& src, const Addr& dst);
void write_ipv6(uint8_t* at, uint32_t payload_len, uint8_t tclass, uint32_t flow, uint8_t nh,
                uint8_t hop_limit, const Addr& src, const Addr& dst);

// Build a complete ICMP (v4) / ICMPv6 error frame about `pv` (a packet in `orig`), addressed to
// its source, into `out` (room bytes). `info`: v4 next-hop MTU (type 3 code 4), v6 MTU (type 2).
// Returns the frame length, or 0 when no error may be sent: about an ICMP error, to or from a
// multicast/broadcast/unspecified address (RFC 1122 3.2.2, RFC 4443 2.4(e)), or no room.
uint32_t build_icmp_error(uint8_t* out, uint32_t room, const uint8_t* orig, const PacketView& pv,
                          uint8_t type, uint8_t code, uint32_t info, const Addr& src,
                          const Mac& eth_src, uint16_t vlan, uint16_t ip_id);

// IPv4 fragmentation (RFC 791): the first fragment keeps every option, later ones only those
// with the copy flag. plan() fails when the MTU leaves no room for 8 payload bytes.
struct FragmentPlan {
  uint32_t first_hdr = 0, later_hdr = 0;
  uint32_t first_payload = 0, later_payload = 0;  // multiples of 8
  uint32_t payload = 0;                          // total payload to split
  uint32_t count = 0;
  uint8_t later_header[60] = {};
};
bool plan_fragments(const uint8_t* ip, uint32_t ip_len, uint32_t mtu, FragmentPlan& plan);
// Write fragment `index` (an IPv4 packet) to `out`; returns its length.
uint32_t write_fragment(const uint8_t* ip, const FragmentPlan& plan, uint32_t index, uint8_t* out);

}  // namespace lvsd::rw
