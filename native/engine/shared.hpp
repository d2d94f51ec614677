// Typed access to the shared region (see control/layout.hpp): rings, stats stripes, clock.
#pragma once
#include <atomic>
#include <cstdint>
#include <ctime>
#include <deque>
#include <memory>
#include <vector>
#include "control/layout.hpp"
#include "control/ring.hpp"
#include "sched/scheduler.hpp"

namespace lvsd {

// Counters have one writer (their worker); readers on other threads use relaxed loads.
inline void bump(uint64_t* p, uint64_t v = 1) {
  std::atomic_ref<uint64_t> a(*p);
  a.store(a.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
}
inline void drop_one(uint64_t* p) {
  std::atomic_ref<uint64_t> a(*p);
  const uint64_t v = a.load(std::memory_order_relaxed);
  a.store(v ? v - 1 : 0, std::memory_order_relaxed);
}
inline void put(uint64_t* p, uint64_t v) { std::atomic_ref<uint64_t>(*p).store(v, std::memory_order_relaxed); }
inline uint64_t get(const uint64_t* p) {
  return std::atomic_ref<const uint64_t>(*p).load(std::memory_order_relaxed);
}

class Shared {
 public:
  Shared(uint8_t* base, const Layout& layout) : base_(base), layout_(layout) {}

  const Layout& layout() const { return layout_; }
  Ring command_ring() const { return Ring(base_ + layout_.command_ring, layout_.command_ring_words); }
  Ring event_ring(uint32_t producer) const {
    return Ring(base_ + layout_.event_rings[producer], layout_.event_ring_words);
  }
  uint64_t* globals(uint32_t worker) const {
    return reinterpret_cast<uint64_t*>(base_ + layout_.stats + size_t(worker) * layout_.stripe_bytes);
  }
  uint64_t* service_counters(uint32_t worker, uint32_t slot) const {
    return globals(worker) + (layout_.stripe_services / 8) + size_t(slot) * proto::SC_COUNT;
  }
  uint64_t* real_counters(uint32_t worker, uint32_t slot) const {
    return globals(worker) + (layout_.stripe_reals / 8) + size_t(slot) * proto::SC_COUNT;
  }
  LoadView loads(const RealFlags* flags) const {
    return LoadView(base_ + layout_.stats, layout_.stripe_bytes, layout_.stripe_reals, layout_.workers, flags);
  }
  uint32_t* notify_word() const { return reinterpret_cast<uint32_t*>(base_) + Layout::kNotifyWord; }
  uint64_t manual_clock() const {
    return get(reinterpret_cast<const uint64_t*>(base_) + Layout::kClockWord / 2);
  }

 private:
  uint8_t* base_;
  Layout layout_;
};

// Wakes the JavaScript side (a thread-safe function in bindings/); absent in manual mode.
class Notifier {
 public:
  virtual ~Notifier() = default;
  virtual void wake() = 0;
};

// One producer's event ring plus the coalesced wake-up: however many events a batch emits,
// JavaScript is woken at most once until it has drained (rule 2 of DESIGN.md). Events carry
// state (a configuration applied, a slot released, a dump ready), so none is dropped when the
// ring is full: they wait, in order, in a native overflow queue that every flush() retries.
class EventSink {
 public:
  static constexpr size_t kMaxOverflow = 1u << 20;

  EventSink() = default;
  EventSink(Ring ring, uint32_t* notify, Notifier* notifier, uint64_t* lost)
      : ring_(ring), notify_(notify), notifier_(notifier), lost_(lost) {}
  void emit(uint32_t op, const uint32_t* payload, uint32_t words) {
    dirty_ = true;
    if (overflow_.empty() && ring_.push(op, payload, words)) return;
    if (overflow_.size() >= kMaxOverflow) {
      if (lost_) bump(lost_);
      return;
    }
    std::vector<uint32_t> m(payload, payload + words);
    m.push_back(op);
    overflow_.push_back(std::move(m));
  }
  void flush() {
    while (!overflow_.empty()) {
      std::vector<uint32_t>& m = overflow_.front();
      if (!ring_.push(m.back(), m.data(), uint32_t(m.size() - 1))) break;
      overflow_.pop_front();
    }
    if (!dirty_) return;
    dirty_ = false;
    if (!notifier_) return;
    if (std::atomic_ref<uint32_t>(*notify_).exchange(1, std::memory_order_acq_rel) == 0) notifier_->wake();
  }
  bool backlogged() const { return !overflow_.empty(); }
  // For events that may be lost (connection sync records): straight into the ring, or false
  // when it is full. Never queued, so never a cost beyond the copy; it may overtake events
  // waiting in the overflow queue, which is fine for events that carry no ordering.
  bool try_emit(uint32_t op, const uint32_t* payload, uint32_t words) {
    if (!ring_.push(op, payload, words)) return false;
    dirty_ = true;
    return true;
  }

 private:
  Ring ring_;
  uint32_t* notify_ = nullptr;
  Notifier* notifier_ = nullptr;
  uint64_t* lost_ = nullptr;
  bool dirty_ = false;
  std::deque<std::vector<uint32_t>> overflow_;
};

// Where "now" comes from: the monotonic clock, or (tests) a value JavaScript sets.
class Clock {
 public:
  Clock(const Shared* shared, bool manual) : shared_(shared), manual_(manual) {}
  uint64_t now_ms() const {
    if (manual_) return shared_->manual_clock();
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
  }
  bool manual() const { return manual_; }

 private:
  const Shared* shared_;
  bool manual_;
};

// What a worker publishes to the control thread.
struct alignas(64) WorkerSync {
  static constexpr uint64_t kQuiescent = ~0ull;
  std::atomic<uint64_t> seen{kQuiescent};  // generation of the snapshot in use; 0 = acquiring
  alignas(64) std::atomic<uint32_t> dump_request{0};
  std::atomic<uint32_t> dump_ready{0};
  std::atomic<uint32_t> dump_format{proto::DUMP_ROWS};  // written before dump_request
  // Sync records for this worker to import: the control thread produces, the worker consumes
  // at batch boundaries (a single-producer/single-consumer ring, DESIGN.md "rings, not locks").
  std::unique_ptr<uint32_t[]> inbox_memory;
  Ring inbox;
};

}  // namespace lvsd
