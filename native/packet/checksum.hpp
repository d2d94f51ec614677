// Internet checksum (RFC 1071) and its incremental update (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m')).
#pragma once
#include <cstddef>
#include <cstdint>
#include "packet/bytes.hpp"

namespace lvsd::csum {

// One's-complement sum of a byte range, added to `sum` (not folded). Odd lengths pad with zero.
uint32_t partial(const uint8_t* p, size_t len, uint32_t sum = 0);

inline uint16_t fold(uint64_t sum) {
  sum = (sum & 0xffffffff) + (sum >> 32);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(sum);
}

// One's-complement addition of two partial sums (end-around carry).
inline uint32_t add(uint32_t a, uint32_t b) {
  uint64_t s = uint64_t(a) + b;
  return uint32_t((s & 0xffffffff) + (s >> 32));
}

// The checksum field value for data whose one's-complement sum is `sum`.
inline uint16_t finish(uint64_t sum) { return uint16_t(~fold(sum)); }

// Sum of the IPv4/IPv6 pseudo-header (RFC 793 / RFC 8200 section 8.1).
uint32_t pseudo(uint8_t af, const uint8_t* src, const uint8_t* dst, uint8_t proto, uint32_t l4len);

// Incremental update of a checksum field `check` (as stored, network order value) when a
// 16-bit word changes from `from` to `to`.
inline uint16_t update16(uint16_t check, uint16_t from, uint16_t to) {
  uint64_t s = uint16_t(~check);
  s += uint16_t(~from);
  s += to;
  return uint16_t(~fold(s));
}

// Incremental update for a changed address (4 or 16 bytes) and/or a port.
uint16_t update_addr(uint16_t check, uint8_t af, const uint8_t* from, const uint8_t* to);

}  // namespace lvsd::csum
