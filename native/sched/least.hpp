// The schedulers that choose by live connection counts, each as its IPVS module does:
// lc, wlc (the default), sed, nq, fo, ovf, twos. All skip OVERLOADed reals; overhead is
// (active << 8) + inactive unless noted. Ties go to the earlier real in list order.
#pragma once
#include <vector>
#include "sched/scheduler.hpp"

namespace lvsd {

// The wlc choice (sed: with overhead active + 1): the first real with weight > 0 that is not
// overloaded, then any later one with overhead/weight strictly smaller. lblc and lblcr use it.
uint32_t least_weighted(const SchedEnv& env, const std::vector<uint32_t>& list, bool sed = false);

// ip_vs_lc.c: least overhead among reals with weight != 0.
class LeastConnection final : public Scheduler {
 public:
  uint32_t schedule(const SchedEnv& env, const ServiceCfg& svc, const PacketView& pv) override;
};

// ip_vs_wlc.c (overhead as above) and ip_vs_sed.c (overhead = active + 1): the first real with
// weight > 0, then any later one with overhead/weight strictly smaller.
class WeightedLeastConnection final : public Scheduler {
 public:
  explicit WeightedLeastConnection(bool shortest_expected_delay) : sed_(shortest_expected_delay) {}
  uint32_t schedule(const SchedEnv& env, const ServiceCfg& svc, const PacketView& pv) override;

 private:
  bool sed_;
};

// ip_vs_nq.c: the first idle real (no active connection), else as sed.
class NeverQueue final : public Scheduler {
 public:
  uint32_t schedule(const SchedEnv& env, const ServiceCfg& svc, const PacketView& pv) override;
};

// ip_vs_fo.c: the highest weight.
class Failover final : public Scheduler {
 public:
  uint32_t schedule(const SchedEnv& env, const ServiceCfg& svc, const PacketView& pv) override;
};

// ip_vs_ovf.c: the highest weight among reals whose active connections do not exceed it.
class Overflow final : public Scheduler {
 public:
  uint32_t schedule(const SchedEnv& env, const ServiceCfg& svc, const PacketView& pv) override;
};

// ip_vs_twos.c: two weighted random choices, then the less loaded of the two.
class TwoChoices final : public Scheduler {
 public:
  uint32_t schedule(const SchedEnv& env, const ServiceCfg& svc, const PacketView& pv) override;
};

}  // namespace lvsd
