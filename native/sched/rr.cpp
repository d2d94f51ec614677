#include "sched/rr.hpp"
#include <algorithm>

namespace lvsd {

uint32_t RoundRobin::schedule(const SchedEnv& env, const ServiceCfg& svc, const PacketView&) {
  const auto& list = svc.reals;
  const int32_t n = int32_t(list.size());
  // From the head (pos_ = -1): 0 .. n-1. Otherwise cursor+1 .. n-1, then 0 .. cursor.
  for (int32_t k = 1; k <= n; ++k) {
    const int32_t i = (pos_ + k) % n;
    if (env.available(list[i])) {
      pos_ = i;
      cursor_ = list[i];
      return cursor_;
    }
  }
  return NIL;
}

void RoundRobin::update(const SchedEnv&, const ServiceCfg& svc) {
  const auto& list = svc.reals;
  const uint32_t old = cursor_;
  std::vector<uint32_t> prev = std::move(list_);
  list_ = list;
  cursor_ = NIL;
  pos_ = -1;
  if (old == NIL) return;
  auto index_of = [&](uint32_t slot) -> int32_t {
    auto it = std::find(list.begin(), list.end(), slot);
    return it == list.end() ? -1 : int32_t(it - list.begin());
  };
  if (int32_t i = index_of(old); i >= 0) {
    cursor_ = old;
    pos_ = i;
    return;
  }
  // The cursor's real was deleted: the nearest predecessor in the previous list that is still
  // present takes its place (the head if none), as repeated ip_vs_rr_del_dest would leave it.
  auto at = std::find(prev.begin(), prev.end(), old);
  while (at != prev.begin()) {
    --at;
    if (int32_t i = index_of(*at); i >= 0) {
      cursor_ = *at;
      pos_ = i;
      return;
    }
  }
}

}  // namespace lvsd
