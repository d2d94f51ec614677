// Byte-order helpers and addresses. Every header field is read and written through memcpy,
// so unaligned frames are fine and no strict-aliasing rule is bent.
#pragma once
#include <cstdint>
#include <cstring>

namespace lvsd {

inline uint16_t load16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
inline uint32_t load32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}
inline void store16(uint8_t* p, uint16_t v) { p[0] = uint8_t(v >> 8); p[1] = uint8_t(v); }
inline void store32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24); p[1] = uint8_t(v >> 16); p[2] = uint8_t(v >> 8); p[3] = uint8_t(v);
}

enum : uint8_t { AF_V4 = 4, AF_V6 = 6 };

// An IPv4 or IPv6 address in network byte order. IPv4 uses the first 4 bytes, the rest are zero,
// so two addresses of the same family compare with two 64-bit loads.
struct Addr {
  alignas(8) uint8_t b[16] = {};

  static Addr v4(const uint8_t* p) { Addr a; std::memcpy(a.b, p, 4); return a; }
  static Addr v6(const uint8_t* p) { Addr a; std::memcpy(a.b, p, 16); return a; }
  static Addr of(uint8_t af, const uint8_t* p) { return af == AF_V4 ? v4(p) : v6(p); }
  uint64_t lo() const { uint64_t v; std::memcpy(&v, b, 8); return v; }
  uint64_t hi() const { uint64_t v; std::memcpy(&v, b + 8, 8); return v; }
  bool operator==(const Addr& o) const { return lo() == o.lo() && hi() == o.hi(); }
  bool operator!=(const Addr& o) const { return !(*this == o); }
  bool is_zero() const { return (lo() | hi()) == 0; }
  void write(uint8_t af, uint8_t* p) const { std::memcpy(p, b, af == AF_V4 ? 4 : 16); }
};

struct Mac {
  uint8_t b[6] = {};
  bool is_zero() const { return (b[0] | b[1] | b[2] | b[3] | b[4] | b[5]) == 0; }
};

inline constexpr uint16_t ETH_P_IPV4 = 0x0800;
inline constexpr uint16_t ETH_P_IPV6 = 0x86DD;
inline constexpr uint16_t ETH_P_8021Q = 0x8100;
inline constexpr uint8_t PROTO_ICMP = 1;
inline constexpr uint8_t PROTO_IPIP = 4;
inline constexpr uint8_t PROTO_TCP = 6;
inline constexpr uint8_t PROTO_UDP = 17;
inline constexpr uint8_t PROTO_IPV6 = 41;
inline constexpr uint8_t PROTO_ICMPV6 = 58;

inline constexpr uint8_t TCP_FIN = 0x01, TCP_SYN = 0x02, TCP_RST = 0x04, TCP_PSH = 0x08,
                         TCP_ACK = 0x10;

}  // namespace lvsd
