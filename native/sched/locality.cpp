#include "sched/locality.hpp"
#include "sched/least.hpp"
#include <algorithm>

namespace lvsd {
namespace {

constexpr uint64_t kCheckEveryMs = 60'000;            // CHECK_EXPIRE_INTERVAL
constexpr uint64_t kExpirationMs = 24ull * 3600'000;  // sysctl lblc(r)_expiration default
constexpr uint64_t kEntryTimeoutMs = 6 * 60'000;      // ENTRY_TIMEOUT
constexpr uint32_t kFullEvery = 30;                   // COUNT_FOR_FULL_EXPIRATION
constexpr size_t kMaxSize = 1024 * 16;                // IP_VS_LBLC_TAB_SIZE * 16

}  // namespace

bool LocalityCache::is_overloaded(const SchedEnv& env, const ServiceCfg& svc, uint32_t real) {
  if (int64_t(env.load.active(real)) <= env.weight(real)) return false;
  for (uint32_t d : svc.reals)
    if (int64_t(env.load.active(d)) * 2 < env.weight(d)) return true;
  return false;
}

void LocalityCache::expire(uint64_t now) {
  if (now < next_check_) return;
  next_check_ = now + kCheckEveryMs;
  if (counter_ % kFullEvery == 0) {
    // Full check: everything idle for the expiration time goes.
    std::erase_if(cache_, [&](const auto& kv) { return now >= kv.second.lastuse + kExpirationMs; });
    counter_ = 1;
    return;
  }
  if (cache_.size() <= kMaxSize) {
    ++counter_;
    return;
  }
  // Over-full: drop entries idle for ENTRY_TIMEOUT until a third more than the excess is gone.
  size_t goal = std::min((cache_.size() - kMaxSize) * 4 / 3, kMaxSize / 2);
  for (auto it = cache_.begin(); it != cache_.end() && goal > 0;) {
    if (now >= it->second.lastuse + kEntryTimeoutMs) {
      it = cache_.erase(it);
      --goal;
    } else {
      ++it;
    }
  }
}

uint32_t LocalityLeastConnection::schedule(const SchedEnv& env, const ServiceCfg& svc, const PacketView& pv) {
  expire(env.now_ms);
  auto it = cache_.find(pv.dst);
  if (it != cache_.end()) {
    it->second.lastuse = env.now_ms;
    const uint32_t d = it->second.reals[0];
    // As IPVS: the cached real is kept unless gone, quiesced or overloaded by the heuristic
    // (its OVERLOAD flag is not consulted here).
    if (in_service(env, svc, d) && env.weight(d) > 0 && !is_overloaded(env, svc, d)) return d;
  }
  const uint32_t d = least_weighted(env, svc.reals);  // __ip_vs_lblc_schedule: wlc
  if (d == NIL) return NIL;
  if (it != cache_.end()) {
    it->second.reals[0] = d;
  } else {
    Entry& e = cache_[pv.dst];
    e.lastuse = env.now_ms;
    e.reals.assign(1, d);
  }
  return d;
}

uint32_t LocalityLeastConnectionReplicated::schedule(const SchedEnv& env, const ServiceCfg& svc, const PacketView& pv) {
  expire(env.now_ms);
  auto it = cache_.find(pv.dst);
  if (it == cache_.end()) {
    const uint32_t d = least_weighted(env, svc.reals);  // __ip_vs_lblc_schedule: wlc
    if (d == NIL) return NIL;
    Entry& e = cache_[pv.dst];
    e.lastuse = e.lastmod = env.now_ms;
    e.reals.assign(1, d);
    return d;
  }
  Entry& e = it->second;
  e.lastuse = env.now_ms;
  // ip_vs_dest_set_min: the weighted least loaded member still available.
  uint32_t least = NIL;
  int64_t loh = 0;
  for (uint32_t d : e.reals) {
    if (env.load.overloaded(d) || env.weight(d) <= 0 || !in_service(env, svc, d)) continue;
    const int64_t doh = int64_t(env.load.overhead(d));
    if (least == NIL || loh * env.weight(d) > doh * env.weight(least)) {
      least = d;
      loh = doh;
    }
  }
  // A set of several that has not changed for the expiration time sheds its most loaded member.
  if (e.reals.size() > 1 && env.now_ms > e.lastmod + kExpirationMs) {
    uint32_t most = NIL;
    int64_t moh = 0;
    for (uint32_t d : e.reals) {
      if (env.weight(d) <= 0) continue;
      const int64_t doh = int64_t(env.load.overhead(d));
      if (most == NIL || moh * env.weight(d) < doh * env.weight(most)) {
        most = d;
        moh = doh;
      }
    }
    if (most != NIL) {
      e.reals.erase(std::find(e.reals.begin(), e.reals.end(), most));
      e.lastmod = env.now_ms;
    }
  }
  if (least != NIL && !is_overloaded(env, svc, least)) return least;
  const uint32_t d = least_weighted(env, svc.reals);  // __ip_vs_lblc_schedule: wlc
  if (d == NIL) return NIL;
  if (std::find(e.reals.begin(), e.reals.end(), d) == e.reals.end()) {
    e.reals.insert(e.reals.begin(), d);  // list_add: the newest member first
    e.lastmod = env.now_ms;
  }
  return d;
}

}  // namespace lvsd
