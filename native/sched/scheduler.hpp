// Scheduler interface. A worker keeps one Scheduler per service (IPVS keeps one per service
// too: svc->sched_data); static tables come precomputed in the snapshot, live connection
// counts come from the shared stats stripes of every worker (LoadView).
#pragma once
#include <cstdint>
#include <memory>
#include "control/snapshot.hpp"
#include "packet/parse.hpp"

namespace lvsd {

// Live per-real counts summed over all workers' stats stripes.
class LoadView {
 public:
  LoadView() = default;
  LoadView(const uint8_t* stats, uint32_t stripe_bytes, uint32_t reals_offset, uint32_t workers)
      : stats_(stats), stripe_(stripe_bytes), reals_(reals_offset), workers_(workers) {}
  uint64_t active(uint32_t real) const { return sum(real, proto::SC_ACTIVE); }
  uint64_t inactive(uint32_t real) const { return sum(real, proto::SC_INACTIVE); }
  // IPVS ip_vs_dest_conn_overhead: (activeconns << 8) + inactconns.
  uint64_t overhead(uint32_t real) const { return (active(real) << 8) + inactive(real); }

 private:
  uint64_t sum(uint32_t real, uint32_t counter) const;
  const uint8_t* stats_ = nullptr;
  uint32_t stripe_ = 0, reals_ = 0, workers_ = 0;
};

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  // The real (slot) for a new connection, or NIL when none is available.
  virtual uint32_t schedule(const Snapshot& snap, const ServiceCfg& svc, const PacketView& pv) = 0;
  // The service or its list of reals changed (or this scheduler is new). A scheduler keeps
  // whatever it needs of the previous list itself: old snapshots may be gone by now.
  virtual void update(const Snapshot& snap, const ServiceCfg& svc) = 0;
};

// A real may take new connections: IPVS's `weight > 0 && !(flags & OVERLOAD)`.
inline bool available(const RealCfg& r) { return r.present && r.weight > 0; }

std::unique_ptr<Scheduler> make_scheduler(uint8_t kind, const LoadView& load);

}  // namespace lvsd
