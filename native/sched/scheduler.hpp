// The scheduler interface. A worker keeps one Scheduler per service (IPVS keeps its state per
// service too, in svc->sched_data). Static tables come precomputed in the snapshot; live
// connection counts and OVERLOAD flags come from the LoadView.
#pragma once
#include <cstdint>
#include <memory>
#include "control/snapshot.hpp"
#include "packet/parse.hpp"
#include "sched/load.hpp"

namespace lvsd {

// A small, fast, seedable generator (xorshift64*) for twos. Each worker has its own.
struct Rng {
  uint64_t state;
  explicit Rng(uint64_t seed) {
    uint64_t z = seed + 0x9e3779b97f4a7c15ull;  // splitmix64 of the seed, never zero
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    state = (z ^ (z >> 31)) | 1;
  }
  uint32_t next() {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return uint32_t((state * 0x2545f4914f6cdd1dull) >> 32);
  }
};

struct SchedEnv {
  const Snapshot& snap;
  const LoadView& load;
  uint64_t now_ms;
  Rng& rng;

  // IPVS's test for a real that may take new connections: weight > 0 and not OVERLOAD.
  bool available(uint32_t slot) const {
    const RealCfg& r = snap.reals[slot];
    return r.present && r.weight > 0 && !load.overloaded(slot);
  }
  // A real that is no longer configured has no weight.
  int64_t weight(uint32_t slot) const {
    const RealCfg& r = snap.reals[slot];
    return r.present ? r.weight : 0;
  }
};

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  // The real (slot) for a new connection, or NIL when none is available.
  virtual uint32_t schedule(const SchedEnv& env, const ServiceCfg& svc, const PacketView& pv) = 0;
  // The service, its reals, their weights or its tables changed (or this scheduler is new).
  // A scheduler keeps what it needs of the previous state itself: old snapshots may be gone.
  virtual void update(const SchedEnv& env, const ServiceCfg& svc) { (void)env, (void)svc; }
};

std::unique_ptr<Scheduler> make_scheduler(uint8_t kind);

// IPVS folds an IPv6 address to 32 bits by xor of its words (ip_vs_sh/dh/lblc/mh), then ntohl.
inline uint32_t addr_fold(uint8_t af, const Addr& a) {
  if (af == AF_V4) return load32(a.b);
  return load32(a.b) ^ load32(a.b + 4) ^ load32(a.b + 8) ^ load32(a.b + 12);
}
// include/linux/hash.h hash_32.
inline uint32_t hash_32(uint32_t v, uint32_t bits) { return (v * 0x61C88647u) >> (32 - bits); }

}  // namespace lvsd
