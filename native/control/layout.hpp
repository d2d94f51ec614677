// The one shared region (a SharedArrayBuffer allocated by JavaScript) and where each part lives.
// JavaScript asks the addon for this layout rather than computing it itself.
#pragma once
#include <cstdint>
#include <vector>
#include "control/protocol.hpp"
#include "control/ring.hpp"
#include "engine/counters.hpp"

namespace lvsd {

struct LayoutOptions {
  uint32_t workers = 1;
  uint32_t max_services = 256;
  uint32_t max_reals = 4096;
  uint32_t command_ring_words = 1u << 16;  // 256 KiB
  uint32_t event_ring_words = 1u << 14;    // 64 KiB per producer
};

// Header words (u32 index into the region):
//   [0..1]  u64 clock_ms   manual clock value (used when the clock is manual)
//   [16]    u32 notify     native sets 1 before waking JS; JS clears it before draining
struct Layout {
  static constexpr uint32_t kHeaderBytes = 256;
  static constexpr uint32_t kClockWord = 0;
  static constexpr uint32_t kNotifyWord = 16;

  uint32_t workers = 0, max_services = 0, max_reals = 0;
  uint32_t command_ring = 0, command_ring_words = 0;
  std::vector<uint32_t> event_rings;  // [0] control thread, [1 + i] worker i
  uint32_t event_ring_words = 0;
  uint32_t stats = 0;           // start of the per-worker stats stripes
  uint32_t stripe_bytes = 0;    // bytes per worker stripe
  uint32_t stripe_services = 0; // offset of the service counters within a stripe
  uint32_t stripe_reals = 0;    // offset of the real counters within a stripe
  uint64_t total = 0;

  static bool power_of_two(uint32_t v) { return v && !(v & (v - 1)); }

  static Layout compute(const LayoutOptions& o) {
    Layout l;
    l.workers = o.workers;
    l.max_services = o.max_services;
    l.max_reals = o.max_reals;
    l.command_ring_words = o.command_ring_words;
    l.event_ring_words = o.event_ring_words;
    uint64_t off = kHeaderBytes;
    l.command_ring = uint32_t(off);
    off += Ring::bytes_for(o.command_ring_words);
    for (uint32_t i = 0; i <= o.workers; ++i) {
      l.event_rings.push_back(uint32_t(off));
      off += Ring::bytes_for(o.event_ring_words);
    }
    off = (off + 63) & ~uint64_t(63);
    l.stats = uint32_t(off);
    const uint64_t globals = (uint64_t(C_COUNT) * 8 + 63) & ~uint64_t(63);
    l.stripe_services = uint32_t(globals);
    l.stripe_reals = uint32_t(globals + uint64_t(o.max_services) * proto::SC_COUNT * 8);
    // Each worker's stripe starts on its own cache line.
    l.stripe_bytes = uint32_t((l.stripe_reals + uint64_t(o.max_reals) * proto::SC_COUNT * 8 + 63) & ~uint64_t(63));
    off += uint64_t(l.stripe_bytes) * o.workers;
    l.total = off;
    return l;
  }
};

}  // namespace lvsd
