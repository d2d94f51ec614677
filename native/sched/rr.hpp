// Round-robin, as net/netfilter/ipvs/ip_vs_rr.c: a cursor on the last real chosen; scan
// forward from it (wrapping) for the first real with weight > 0 that is not overloaded.
// Weights are otherwise ignored. Deleting the real under the cursor moves the cursor to its
// predecessor (ip_vs_rr_del_dest); adding a real (at the head) leaves the cursor alone.
#pragma once
#include <vector>
#include "sched/scheduler.hpp"

namespace lvsd {

class RoundRobin final : public Scheduler {
 public:
  uint32_t schedule(const SchedEnv& env, const ServiceCfg& svc, const PacketView& pv) override;
  void update(const SchedEnv& env, const ServiceCfg& svc) override;

 private:
  uint32_t cursor_ = NIL;       // real slot last chosen; NIL = the list head
  int32_t pos_ = -1;            // its position in the current list
  std::vector<uint32_t> list_;  // the list as of the last update
};

}  // namespace lvsd
