// In-memory backends for tests and benchmarks.
//
// MemoryPort: frames are injected by the caller (the JS thread) into a receive ring, processed
// by the worker, and what would leave (transmitted on an interface, or handed to the kernel)
// lands in an output ring the caller drains. Both rings are single-producer/single-consumer
// slot rings, so a worker thread and the JS thread never share a lock.
//
// ReplayPort: replays a fixed set of frames a given number of times and only counts verdicts:
// the packet-rate benchmarks use it to measure the dataplane alone on one core.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>
#include "io/port.hpp"

namespace lvsd {

class SlotRing {
 public:
  struct Slot {
    uint32_t len;
    uint16_t iface;
    uint8_t verdict;
    uint8_t reserved;
  };
  SlotRing(uint32_t slots, uint32_t slot_bytes);
  uint32_t slots() const { return mask_ + 1; }
  uint32_t slot_bytes() const { return slot_bytes_; }
  uint8_t* slot(uint32_t index) { return mem_.get() + size_t(index & mask_) * slot_bytes_; }

  // Producer.
  uint32_t free_slots() const {
    return slots() - (head_.load(std::memory_order_relaxed) - tail_.load(std::memory_order_acquire));
  }
  uint32_t head() const { return head_.load(std::memory_order_relaxed); }
  void publish(uint32_t new_head) { head_.store(new_head, std::memory_order_release); }
  // Consumer.
  uint32_t available() const {
    return head_.load(std::memory_order_acquire) - tail_.load(std::memory_order_relaxed);
  }
  uint32_t tail() const { return tail_.load(std::memory_order_relaxed); }
  void consume(uint32_t new_tail) { tail_.store(new_tail, std::memory_order_release); }

 private:
  std::unique_ptr<uint8_t[]> mem_;
  uint32_t mask_;
  uint32_t slot_bytes_;
  alignas(64) std::atomic<uint32_t> head_{0};
  alignas(64) std::atomic<uint32_t> tail_{0};
};

class MemoryPort final : public Port {
 public:
  static constexpr uint32_t kHeadroom = 256;
  static constexpr uint32_t kSlotBytes = 4096;
  static constexpr uint32_t kMaxFrame = kSlotBytes - kHeadroom - sizeof(SlotRing::Slot);

  explicit MemoryPort(uint32_t slots);

  // Caller side.
  bool inject(uint16_t iface, const uint8_t* data, uint32_t len);
  struct Output {
    uint16_t iface;
    Verdict verdict;
    const uint8_t* data;
    uint32_t len;
  };
  bool peek_output(Output& out);
  void pop_output();
  uint32_t pending_input() const { return rx_.available(); }

  // Worker side.
  uint32_t receive(Packet* pkts, uint32_t max) override;
  bool allocate(Packet& p) override;
  uint32_t complete(Packet* pkts, uint32_t n) override;

 private:
  SlotRing rx_, tx_;
  uint32_t received_ = 0;  // rx slots handed to the worker, not yet completed
  std::vector<std::unique_ptr<uint8_t[]>> scratch_;
  std::vector<uint32_t> scratch_free_;
};

class ReplayPort final : public Port {
 public:
  struct Frame {
    std::vector<uint8_t> bytes;
    uint16_t iface;
  };
  ReplayPort(const std::vector<Frame>& frames, uint64_t total);
  uint32_t receive(Packet* pkts, uint32_t max) override;
  bool allocate(Packet& p) override;
  uint32_t complete(Packet* pkts, uint32_t n) override;

  uint64_t sent = 0, tx = 0, pass = 0, drop = 0, tx_bytes = 0;

 private:
  static constexpr uint32_t kBatch = 256;
  static constexpr uint32_t kBuf = 2048;
  // The frames back to back (as a NIC ring would hold them), not one heap block each.
  std::vector<uint8_t> data_;
  std::vector<uint32_t> offset_;
  std::vector<uint16_t> len_, iface_;
  uint64_t total_;
  size_t next_ = 0;
  std::unique_ptr<uint8_t[]> bufs_;      // kBatch receive buffers
  std::unique_ptr<uint8_t[]> gen_bufs_;  // kBatch buffers for generated frames
  uint32_t gen_used_ = 0;
};

}  // namespace lvsd
