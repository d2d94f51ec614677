// What schedulers know about reals beyond configuration: live connection counts summed over
// every worker's stats stripe, and the OVERLOAD flag connection thresholds set.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include "control/protocol.hpp"

namespace lvsd {

// IPVS's OVERLOAD flag per real, shared by the workers and the control thread.
class RealFlags {
 public:
  explicit RealFlags(uint32_t reals) : flags_(new std::atomic<uint8_t>[reals]) {
    for (uint32_t i = 0; i < reals; ++i) flags_[i].store(0, std::memory_order_relaxed);
  }
  bool overloaded(uint32_t slot) const { return flags_[slot].load(std::memory_order_relaxed) != 0; }
  void set_overload(uint32_t slot, bool on) { flags_[slot].store(on ? 1 : 0, std::memory_order_relaxed); }

 private:
  std::unique_ptr<std::atomic<uint8_t>[]> flags_;
};

class LoadView {
 public:
  LoadView() = default;
  LoadView(const uint8_t* stats, uint32_t stripe_bytes, uint32_t reals_offset, uint32_t workers,
           const RealFlags* flags)
      : stats_(stats), stripe_(stripe_bytes), reals_(reals_offset), workers_(workers), flags_(flags) {}

  // As the schedulers see them: since the service's last least-connection reset.
  uint64_t active(uint32_t real) const { return sum(real, proto::SC_SCHED_ACTIVE); }
  uint64_t inactive(uint32_t real) const { return sum(real, proto::SC_SCHED_INACTIVE); }
  // IPVS ip_vs_dest_conn_overhead: (activeconns << 8) + inactconns.
  uint64_t overhead(uint32_t real) const { return (active(real) << 8) + inactive(real); }
  // All connections (ip_vs_dest_totalconns), for the thresholds.
  uint64_t total(uint32_t real) const { return sum(real, proto::SC_ACTIVE) + sum(real, proto::SC_INACTIVE); }
  bool overloaded(uint32_t real) const { return flags_ && flags_->overloaded(real); }

 private:
  uint64_t sum(uint32_t real, uint32_t counter) const {
    uint64_t t = 0;
    for (uint32_t w = 0; w < workers_; ++w) {
      const auto* p = reinterpret_cast<const uint64_t*>(stats_ + size_t(w) * stripe_ + reals_) +
                      size_t(real) * proto::SC_COUNT + counter;
      t += std::atomic_ref<const uint64_t>(*p).load(std::memory_order_relaxed);
    }
    return t;
  }
  const uint8_t* stats_ = nullptr;
  uint32_t stripe_ = 0, reals_ = 0, workers_ = 0;
  const RealFlags* flags_ = nullptr;
};

}  // namespace lvsd
