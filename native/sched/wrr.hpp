// Weighted round-robin, as net/netfilter/ipvs/ip_vs_wrr.c: state (cl, cw, mw, di); each pass
// over the list at current weight cw takes the reals with weight >= cw, cw steps down by the
// gcd of the weights, and wraps to mw. With the control plane's precomputed period (the
// sequence of choices and the cw of each), a pick is a table step; when some choice is
// overloaded the table is scanned on; only when every real is overloaded, or when the period
// was too long to precompute, the IPVS stepping code runs itself, on the same state.
#pragma once
#include <unordered_map>
#include <vector>
#include "sched/scheduler.hpp"

namespace lvsd {

class WeightedRoundRobin final : public Scheduler {
 public:
  uint32_t schedule(const SchedEnv& env, const ServiceCfg& svc, const PacketView& pv) override;
  void update(const SchedEnv& env, const ServiceCfg& svc) override;

 private:
  uint32_t step(const SchedEnv& env, const ServiceCfg& svc);  // ip_vs_wrr_schedule itself
  void seek_table();  // table index just after (cl_, cw_)

  uint64_t applied_ = 0;  // the last change of the service's wrr log this state reflects
  int32_t cl_ = -1;  // list position of the current real; -1 = the list head
  int64_t cw_ = 0, mw_ = 0, di_ = 1;
  const std::vector<uint32_t>* seq_ = nullptr;  // the period's choices (null: step)
  const std::vector<uint32_t>* cws_ = nullptr;  // ... and the cw of each
  size_t idx_ = 0;                              // the next table entry to try
  std::unordered_map<uint32_t, int32_t> pos_;   // real slot -> list position
};

}  // namespace lvsd
