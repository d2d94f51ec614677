#include "packet/checksum.hpp"

namespace lvsd::csum {

uint32_t partial(const uint8_t* p, size_t len, uint32_t sum32) {
  uint64_t sum = sum32;
  // Add 32-bit big-endian words; the 64-bit accumulator cannot overflow for any frame size.
  while (len >= 4) {
    sum += load32(p);
    p += 4;
    len -= 4;
  }
  if (len >= 2) {
    sum += load16(p);
    p += 2;
    len -= 2;
  }
  if (len) sum += uint32_t(p[0]) << 8;
  sum = (sum & 0xffffffff) + (sum >> 32);
  sum = (sum & 0xffffffff) + (sum >> 32);
  return uint32_t(sum);
}

uint32_t pseudo(uint8_t af, const uint8_t* src, const uint8_t* dst, uint8_t proto, uint32_t l4len) {
  const size_t alen = af == AF_V4 ? 4 : 16;
  uint64_t sum = partial(src, alen);
  sum += partial(dst, alen);
  sum += proto;
  sum += l4len;  // IPv6 uses a 32-bit length; IPv4's 16-bit length sums the same way.
  sum = (sum & 0xffffffff) + (sum >> 32);
  return uint32_t(sum);
}

uint16_t update_addr(uint16_t check, uint8_t af, const uint8_t* from, const uint8_t* to) {
  const size_t alen = af == AF_V4 ? 4 : 16;
  uint64_t s = uint16_t(~check);
  for (size_t i = 0; i < alen; i += 2) {
    s += uint16_t(~load16(from + i));
    s += load16(to + i);
  }
  return uint16_t(~fold(s));
}

}  // namespace lvsd::csum
