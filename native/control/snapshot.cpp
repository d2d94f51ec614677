#include "control/snapshot.hpp"
#include "flow/tcp_state.hpp"

namespace lvsd {

Snapshot::Snapshot(uint32_t max_services, uint32_t max_reals)
    : services(max_services), reals(max_reals), ifaces(kMaxInterfaces) {
  for (uint32_t s = 0; s < proto::S_COUNT; ++s) timeout_ms[s] = tcp::kDefaultTimeoutS[s] * 1000;
}

uint64_t Snapshot::key_hash(uint8_t proto, uint8_t af, const Addr& vip, uint16_t port, uint32_t mark) {
  uint64_t h = vip.lo() * 0x9e3779b97f4a7c15ull ^ vip.hi() * 0xc2b2ae3d27d4eb4full;
  h ^= (uint64_t(mark) << 32 | uint64_t(port) << 16 | uint64_t(proto) << 8 | af) * 0x165667b19e3779f9ull;
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ull;
  return h ^ (h >> 32);
}

void Snapshot::index() {
  uint32_t n = 0;
  for (const auto& s : services) n += s.present;
  slots_.clear();
  mark_services_.clear();
  if (n == 0) return;
  uint32_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  mask_ = cap - 1;
  slots_.assign(cap, NIL);
  for (uint32_t slot = 0; slot < services.size(); ++slot) {
    const ServiceCfg& s = services[slot];
    if (!s.present) continue;
    if (s.fwmark) mark_services_.push_back(slot);
    uint64_t h = s.fwmark ? key_hash(0, s.af, Addr{}, 0, s.fwmark) : key_hash(s.proto, s.af, s.vip, s.port, 0);
    while (slots_[h & mask_] != NIL) ++h;
    slots_[h & mask_] = slot;
  }
}

uint32_t Snapshot::find(uint8_t proto, uint8_t af, const Addr& vip, uint16_t port, uint32_t mark) const {
  for (uint64_t h = key_hash(proto, af, vip, port, mark);; ++h) {
    const uint32_t slot = slots_[h & mask_];
    if (slot == NIL) return NIL;
    const ServiceCfg& s = services[slot];
    if (mark ? (s.fwmark == mark && s.af == af)
             : (s.fwmark == 0 && s.port == port && s.proto == proto && s.af == af && s.vip == vip))
      return slot;
  }
}

}  // namespace lvsd
