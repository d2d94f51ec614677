#include "sched/scheduler.hpp"
#include <atomic>
#include <cstring>
#include "sched/rr.hpp"

namespace lvsd {

uint64_t LoadView::sum(uint32_t real, uint32_t counter) const {
  uint64_t total = 0;
  for (uint32_t w = 0; w < workers_; ++w) {
    const uint8_t* p = stats_ + size_t(w) * stripe_ + reals_ + (size_t(real) * proto::SC_COUNT + counter) * 8;
    total += std::atomic_ref<const uint64_t>(*reinterpret_cast<const uint64_t*>(p)).load(std::memory_order_relaxed);
  }
  return total;
}

std::unique_ptr<Scheduler> make_scheduler(uint8_t kind, const LoadView& load) {
  switch (kind) {
    case proto::SCH_RR: return std::make_unique<RoundRobin>();
    default: return nullptr;
  }
}

}  // namespace lvsd
