// The schedulers that hash: sh (source), dh (destination) and mh (Maglev, on the source).
// Their tables come from the control plane (src/sched/tables.ts); lookups and the fallback
// probing of unavailable reals are here, as in ip_vs_sh.c, ip_vs_dh.c and ip_vs_mh.c.
#pragma once
#include "sched/scheduler.hpp"

namespace lvsd {

// lib/siphash.c hsiphash_1u32 on 64-bit kernels: SipHash-1-3, truncated to 32 bits.
uint32_t hsiphash_1u32(uint32_t value, uint64_t k0, uint64_t k1);

class SourceHash final : public Scheduler {
 public:
  uint32_t schedule(const SchedEnv& env, const ServiceCfg& svc, const PacketView& pv) override;
};

class DestinationHash final : public Scheduler {
 public:
  uint32_t schedule(const SchedEnv& env, const ServiceCfg& svc, const PacketView& pv) override;
};

class Maglev final : public Scheduler {
 public:
  uint32_t schedule(const SchedEnv& env, const ServiceCfg& svc, const PacketView& pv) override;
};

}  // namespace lvsd
