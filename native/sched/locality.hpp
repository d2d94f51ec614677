// Locality-based least-connection schedulers, as ip_vs_lblc.c and ip_vs_lblcr.c: a cache maps
// each destination address (the content a proxy cache serves) to a real, or to a set of reals
// (lblcr), chosen by wlc and kept while it is not overloaded. Cache entries are swept the way
// IPVS's check_expire timer does: every 60 s, and every 30th time in full (entries idle for
// lblc_expiration, 24 h); when the cache is over its size, entries idle for 6 minutes go first.
#pragma once
#include <list>
#include <unordered_map>
#include <vector>
#include "sched/scheduler.hpp"

namespace lvsd {

class LocalityCache {
 protected:
  struct Entry {
    uint64_t lastuse = 0;
    uint64_t lastmod = 0;         // lblcr: when the set last changed
    std::vector<uint32_t> reals;  // lblc: one real; lblcr: the set, most recent first
  };
  struct AddrHash {
    size_t operator()(const Addr& a) const { return size_t(a.lo() * 0x9e3779b97f4a7c15ull ^ a.hi()); }
  };

  // ip_vs_lblc.c is_overloaded: more active connections than its weight while some real of the
  // service is below half of its own.
  static bool is_overloaded(const SchedEnv& env, const ServiceCfg& svc, uint32_t real);
  // A real still configured in this service (IPVS: IP_VS_DEST_F_AVAILABLE).
  static bool in_service(const SchedEnv& env, const ServiceCfg& svc, uint32_t real) {
    const RealCfg* r = env.snap.real(real);
    return r && r->svc == svc.slot;
  }
  void expire(uint64_t now);

  std::unordered_map<Addr, Entry, AddrHash> cache_;
  uint64_t next_check_ = 0;
  uint32_t counter_ = 1;
};

class LocalityLeastConnection final : public Scheduler, LocalityCache {
 public:
  uint32_t schedule(const SchedEnv& env, const ServiceCfg& svc, const PacketView& pv) override;
};

class LocalityLeastConnectionReplicated final : public Scheduler, LocalityCache {
 public:
  uint32_t schedule(const SchedEnv& env, const ServiceCfg& svc, const PacketView& pv) override;
};

}  // namespace lvsd
