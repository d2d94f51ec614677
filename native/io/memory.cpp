#include "io/memory.hpp"
#include <cstring>

namespace lvsd {

SlotRing::SlotRing(uint32_t slots, uint32_t slot_bytes) : slot_bytes_(slot_bytes) {
  uint32_t n = 2;
  while (n < slots) n <<= 1;
  mask_ = n - 1;
  mem_.reset(new uint8_t[size_t(n) * slot_bytes]);
}

MemoryPort::MemoryPort(uint32_t slots) : rx_(slots, kSlotBytes), tx_(slots, kSlotBytes) {
  for (uint32_t i = 0; i < 256; ++i) {
    scratch_.emplace_back(new uint8_t[kSlotBytes]);
    scratch_free_.push_back(i);
  }
}

bool MemoryPort::inject(uint16_t iface, const uint8_t* data, uint32_t len) {
  if (len > kMaxFrame || rx_.free_slots() == 0) return false;
  const uint32_t h = rx_.head();
  uint8_t* s = rx_.slot(h);
  SlotRing::Slot meta{len, iface, 0, 0};
  std::memcpy(s, &meta, sizeof meta);
  std::memcpy(s + sizeof meta + kHeadroom, data, len);
  rx_.publish(h + 1);
  return true;
}

bool MemoryPort::peek_output(Output& out) {
  if (tx_.available() == 0) return false;
  const uint8_t* s = tx_.slot(tx_.tail());
  SlotRing::Slot meta;
  std::memcpy(&meta, s, sizeof meta);
  out = Output{meta.iface, Verdict(meta.verdict), s + sizeof meta, meta.len};
  return true;
}

void MemoryPort::pop_output() { tx_.consume(tx_.tail() + 1); }

uint32_t MemoryPort::receive(Packet* pkts, uint32_t max) {
  const uint32_t avail = rx_.available();
  const uint32_t n = avail < max ? avail : max;
  const uint32_t base = rx_.tail();
  for (uint32_t i = 0; i < n; ++i) {
    uint8_t* s = rx_.slot(base + i);
    SlotRing::Slot meta;
    std::memcpy(&meta, s, sizeof meta);
    Packet& p = pkts[i];
    p.data = s + sizeof meta + kHeadroom;
    p.len = meta.len;
    p.headroom = kHeadroom;
    p.tailroom = kSlotBytes - sizeof meta - kHeadroom - meta.len;
    p.iface = meta.iface;
    p.verdict = Verdict::Drop;
    p.generated = false;
    p.cookie = 0;
  }
  received_ += n;
  return n;
}

bool MemoryPort::allocate(Packet& p) {
  if (scratch_free_.empty()) return false;
  const uint32_t i = scratch_free_.back();
  scratch_free_.pop_back();
  p.data = scratch_[i].get() + kHeadroom;
  p.len = 0;
  p.headroom = kHeadroom;
  p.tailroom = kSlotBytes - kHeadroom;
  p.verdict = Verdict::Drop;
  p.generated = true;
  p.cookie = i;
  return true;
}

uint32_t MemoryPort::complete(Packet* pkts, uint32_t n) {
  uint32_t lost = 0;
  uint32_t h = tx_.head();
  uint32_t room = tx_.free_slots();
  uint32_t from_rx = 0;
  for (uint32_t i = 0; i < n; ++i) {
    Packet& p = pkts[i];
    if (p.verdict != Verdict::Drop) {
      if (room == 0 || p.len > kSlotBytes - sizeof(SlotRing::Slot)) {
        ++lost;
      } else {
        uint8_t* s = tx_.slot(h++);
        --room;
        SlotRing::Slot meta{p.len, p.iface, uint8_t(p.verdict), 0};
        std::memcpy(s, &meta, sizeof meta);
        std::memmove(s + sizeof meta, p.data, p.len);
      }
    }
    if (p.generated) scratch_free_.push_back(p.cookie); else ++from_rx;
  }
  tx_.publish(h);
  if (from_rx) {
    rx_.consume(rx_.tail() + from_rx);
    received_ -= from_rx;
  }
  return lost;
}

ReplayPort::ReplayPort(const std::vector<Frame>& frames, uint64_t total)
    : total_(total), bufs_(new uint8_t[size_t(kBatch) * kBuf]), gen_bufs_(new uint8_t[size_t(kBatch) * kBuf]) {
  for (const Frame& f : frames) {
    const size_t len = f.bytes.size() < kBuf - 256 ? f.bytes.size() : kBuf - 256;
    offset_.push_back(uint32_t(data_.size()));
    len_.push_back(uint16_t(len));
    iface_.push_back(f.iface);
    data_.insert(data_.end(), f.bytes.begin(), f.bytes.begin() + long(len));
  }
}

uint32_t ReplayPort::receive(Packet* pkts, uint32_t max) {
  if (offset_.empty()) return 0;
  uint32_t n = 0;
  if (max > kBatch) max = kBatch;
  while (n < max && sent < total_) {
    const size_t f = next_;
    if (++next_ == offset_.size()) next_ = 0;
    uint8_t* b = bufs_.get() + size_t(n) * kBuf;
    const uint32_t len = len_[f];
    std::memcpy(b + 256, data_.data() + offset_[f], len);  // what a NIC's DMA would have done
    Packet& p = pkts[n++];
    p.data = b + 256;
    p.len = len;
    p.headroom = 256;
    p.tailroom = kBuf - 256 - len;
    p.iface = iface_[f];
    p.verdict = Verdict::Drop;
    p.generated = false;
    ++sent;
  }
  return n;
}

bool ReplayPort::allocate(Packet& p) {
  if (gen_used_ >= kBatch) return false;
  p.data = gen_bufs_.get() + size_t(gen_used_++) * kBuf + 256;
  p.len = 0;
  p.headroom = 256;
  p.tailroom = kBuf - 256;
  p.generated = true;
  return true;
}

uint32_t ReplayPort::complete(Packet* pkts, uint32_t n) {
  for (uint32_t i = 0; i < n; ++i) {
    switch (pkts[i].verdict) {
      case Verdict::Tx: ++tx; tx_bytes += pkts[i].len; break;
      case Verdict::Pass: ++pass; break;
      case Verdict::Drop: ++drop; break;
    }
    if (pkts[i].generated && gen_used_) --gen_used_;
  }
  return 0;
}

}  // namespace lvsd
