#include "sched/maglev.hpp"
#include <cmath>
#include <vector>

namespace lvsd {
namespace {

uint64_t inverse_mod(uint64_t x, uint64_t m) {
  int64_t a = int64_t(x), b = int64_t(m), u = 1, v = 0;
  while (b) {
    const int64_t q = a / b;
    int64_t t = a - q * b;
    a = b;
    b = t;
    t = u - q * v;
    u = v;
    v = t;
  }
  return uint64_t(((u % int64_t(m)) + int64_t(m)) % int64_t(m));
}

}  // namespace

void maglev_populate(const uint32_t* offset, const uint32_t* skip, const int32_t* turns,
                     const int32_t* slots, uint32_t n, uint32_t size, int32_t* table) {
  for (uint32_t i = 0; i < size; ++i) table[i] = -1;
  bool any = false;
  for (uint32_t i = 0; i < n; ++i) any = any || turns[i] > 0;
  if (!any || size == 0) return;
  std::vector<uint32_t> perm(offset, offset + n);
  std::vector<uint8_t> taken(size, 0);
  // Below about sqrt(size)/2 free positions, scanning them beats probing for them (measured).
  const uint32_t tail = std::min<uint32_t>(size, uint32_t(std::ceil(std::sqrt(double(size)) / 2)));
  uint32_t filled = 0, i = 0;
  int32_t dt = 0;
  auto next_real = [&](int32_t t) {
    if (++dt < t) return;
    dt = 0;
    if (++i == n) i = 0;
  };
  // Phase 1: walk each real's preference list past taken positions, as IPVS does.
  while (filled < size - tail) {
    if (turns[i] < 1) {
      dt = 0;
      if (++i == n) i = 0;
      continue;
    }
    uint32_t c = perm[i];
    const uint32_t sk = skip[i];
    while (taken[c]) {
      c += sk;
      if (c >= size) c -= size;
    }
    perm[i] = c;
    taken[c] = 1;
    table[c] = slots[i];
    ++filled;
    next_real(turns[i]);
  }
  // Phase 2: the same order of claims, each found from the few free positions left.
  std::vector<uint32_t> free;
  free.reserve(size - filled);
  for (uint32_t p = 0; p < size; ++p)
    if (!taken[p]) free.push_back(p);
  std::vector<uint64_t> inverse(n, 0);
  while (filled < size) {
    if (turns[i] < 1) {
      dt = 0;
      if (++i == n) i = 0;
      continue;
    }
    if (!inverse[i]) inverse[i] = inverse_mod(skip[i], size);
    const uint64_t inv = inverse[i], off = offset[i];
    const uint64_t step = ((perm[i] + size - off) % size) * inv % size;
    size_t best = 0;
    uint64_t best_distance = size;
    for (size_t j = 0; j < free.size(); ++j) {
      const uint64_t d = (((free[j] + size - off) % size) * inv % size + size - step) % size;
      if (d < best_distance) {
        best_distance = d;
        best = j;
      }
    }
    const uint32_t c = free[best];
    free[best] = free.back();
    free.pop_back();
    perm[i] = c;
    table[c] = slots[i];
    ++filled;
    next_real(turns[i]);
  }
}

}  // namespace lvsd
