// Single-producer / single-consumer message ring over shared memory (a SharedArrayBuffer
// region allocated by JavaScript, or plain memory in native tests and the fuzzer).
//
// Layout (bytes, from the region start):
//   0   u32 head   producer index, in 32-bit words, ever increasing (wraps at 2^32)
//   64  u32 tail   consumer index
//   128 u32 sleeping  consumer sets 1 before it sleeps, so the producer knows to kick it
//   256 data: `capacity` 32-bit words, capacity a power of two
// A message is [header word = opcode << 16 | length in words (incl. header)] + payload words.
// A message never wraps: the producer pads the end of the ring with an opcode-0 message.
// JavaScript uses Atomics on an Int32Array; C++ uses std::atomic_ref (release/acquire).
#pragma once
#include <atomic>
#include <cstdint>
#include <cstring>

namespace lvsd {

inline constexpr uint32_t kRingHeaderBytes = 256;
inline constexpr uint32_t kOpPad = 0;

class Ring {
 public:
  Ring() = default;
  Ring(void* region, uint32_t capacity_words)
      : base_(static_cast<uint32_t*>(region)), data_(base_ + kRingHeaderBytes / 4),
        cap_(capacity_words), mask_(capacity_words - 1) {}

  static uint32_t bytes_for(uint32_t capacity_words) { return kRingHeaderBytes + capacity_words * 4; }
  uint32_t capacity() const { return cap_; }
  bool valid() const { return base_ != nullptr; }

  // ---- consumer side ----
  // Returns a pointer to the next message (header word first) or nullptr when empty.
  // Padding messages are skipped. The message stays valid until pop().
  const uint32_t* peek() {
    for (;;) {
      const uint32_t head = atomic(0).load(std::memory_order_acquire);
      const uint32_t tail = atomic(16).load(std::memory_order_relaxed);
      if (head == tail) return nullptr;
      const uint32_t* msg = data_ + (tail & mask_);
      const uint32_t len = msg[0] & 0xffff;
      // A corrupt length would make the consumer read garbage forever: treat as empty ring
      // tail jump to head (drop everything) rather than loop or read out of bounds.
      if (len == 0 || len > head - tail || (tail & mask_) + len > cap_) {
        atomic(16).store(head, std::memory_order_release);
        corrupt_ = true;
        return nullptr;
      }
      if ((msg[0] >> 16) == kOpPad) {
        atomic(16).store(tail + len, std::memory_order_release);
        continue;
      }
      return msg;
    }
  }
  // Consumer: among the messages available now, is there one with `opcode`? If so, `end` is
  // the ring index just past the last of them. `head_seen` is the head the scan stopped at.
  // Lets the consumer act on a whole burst at once.
  bool scan_last(uint32_t opcode, uint32_t& end, uint32_t& head_seen) {
    const uint32_t head = atomic(0).load(std::memory_order_acquire);
    uint32_t pos = atomic(16).load(std::memory_order_relaxed);
    bool found = false;
    head_seen = head;
    while (pos != head) {
      const uint32_t* msg = data_ + (pos & mask_);
      const uint32_t len = msg[0] & 0xffff;
      if (len == 0 || len > head - pos || (pos & mask_) + len > cap_) break;
      pos += len;
      if ((msg[0] >> 16) == opcode) {
        found = true;
        end = pos;
      }
    }
    return found;
  }
  uint32_t tail() { return atomic(16).load(std::memory_order_relaxed); }
  // Consumer: nothing is waiting (padding may be, which peek() skips).
  bool empty() { return atomic(0).load(std::memory_order_acquire) == atomic(16).load(std::memory_order_relaxed); }
  void pop(const uint32_t* msg) {
    const uint32_t tail = atomic(16).load(std::memory_order_relaxed);
    atomic(16).store(tail + (msg[0] & 0xffff), std::memory_order_release);
  }
  bool corrupt() const { return corrupt_; }
  void set_sleeping(bool s) { atomic(32).store(s ? 1 : 0, std::memory_order_seq_cst); }

  // ---- producer side ----
  // Writes one message; false when it does not fit (the caller counts the loss).
  bool push(uint32_t opcode, const uint32_t* payload, uint32_t payload_words) {
    const uint32_t len = payload_words + 1;
    if (len > 0xffff || len > cap_ / 2) return false;
    uint32_t head = atomic(0).load(std::memory_order_relaxed);
    const uint32_t tail = atomic(16).load(std::memory_order_acquire);
    const uint32_t pos = head & mask_;
    const uint32_t pad = pos + len > cap_ ? cap_ - pos : 0;
    if (cap_ - (head - tail) < pad + len) return false;
    if (pad) {
      data_[pos] = kOpPad << 16 | pad;
      head += pad;
    }
    uint32_t* msg = data_ + (head & mask_);
    msg[0] = opcode << 16 | len;
    if (payload_words) std::memcpy(msg + 1, payload, payload_words * 4);
    atomic(0).store(head + len, std::memory_order_release);
    return true;
  }
  bool consumer_sleeping() { return atomic(32).load(std::memory_order_seq_cst) != 0; }

 private:
  std::atomic_ref<uint32_t> atomic(uint32_t word) { return std::atomic_ref<uint32_t>(base_[word]); }
  uint32_t* base_ = nullptr;
  uint32_t* data_ = nullptr;
  uint32_t cap_ = 0, mask_ = 0;
  bool corrupt_ = false;
};

}  // namespace lvsd
