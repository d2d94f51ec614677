#include "sched/least.hpp"

namespace lvsd {

uint32_t LeastConnection::schedule(const SchedEnv& env, const ServiceCfg& svc, const PacketView&) {
  uint32_t least = NIL;
  uint64_t loh = 0;
  for (uint32_t d : svc.reals) {
    if (env.load.overloaded(d) || env.weight(d) == 0) continue;
    const uint64_t doh = env.load.overhead(d);
    if (least == NIL || doh < loh) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

uint32_t least_weighted(const SchedEnv& env, const std::vector<uint32_t>& list, bool sed) {
  auto overhead = [&](uint32_t d) -> int64_t { return sed ? int64_t(env.load.active(d)) + 1 : int64_t(env.load.overhead(d)); };
  size_t i = 0;
  uint32_t least = NIL;
  for (; i < list.size(); ++i) {
    if (!env.load.overloaded(list[i]) && env.weight(list[i]) > 0) {
      least = list[i];
      break;
    }
  }
  if (least == NIL) return NIL;
  int64_t loh = overhead(least);
  for (++i; i < list.size(); ++i) {
    const uint32_t d = list[i];
    if (env.load.overloaded(d)) continue;
    const int64_t doh = overhead(d);
    if (loh * env.weight(d) > doh * env.weight(least)) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

uint32_t WeightedLeastConnection::schedule(const SchedEnv& env, const ServiceCfg& svc, const PacketView&) {
  return least_weighted(env, svc.reals, sed_);
}

uint32_t NeverQueue::schedule(const SchedEnv& env, const ServiceCfg& svc, const PacketView&) {
  uint32_t least = NIL;
  int64_t loh = 0;
  for (uint32_t d : svc.reals) {
    if (env.load.overloaded(d) || env.weight(d) == 0) continue;
    const uint64_t active = env.load.active(d);
    const int64_t doh = int64_t(active) + 1;
    if (active == 0) return d;  // an idle real: no queueing at all
    if (least == NIL || loh * env.weight(d) > doh * env.weight(least)) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

uint32_t Failover::schedule(const SchedEnv& env, const ServiceCfg& svc, const PacketView&) {
  uint32_t best = NIL;
  int64_t hw = 0;
  for (uint32_t d : svc.reals) {
    if (!env.load.overloaded(d) && env.weight(d) > hw) {
      best = d;
      hw = env.weight(d);
    }
  }
  return best;
}

uint32_t Overflow::schedule(const SchedEnv& env, const ServiceCfg& svc, const PacketView&) {
  uint32_t best = NIL;
  int64_t hw = 0;
  for (uint32_t d : svc.reals) {
    const int64_t w = env.weight(d);
    if (env.load.overloaded(d) || int64_t(env.load.active(d)) > w || w == 0) continue;
    if (best == NIL || w > hw) {
      best = d;
      hw = w;
    }
  }
  return best;
}

uint32_t TwoChoices::schedule(const SchedEnv& env, const ServiceCfg& svc, const PacketView&) {
  int64_t total = 0;
  uint32_t choice1 = NIL, choice2 = NIL;
  for (uint32_t d : svc.reals) {
    if (!env.load.overloaded(d) && env.weight(d) > 0) {
      total += env.weight(d);
      choice1 = d;
    }
  }
  if (choice1 == NIL) return NIL;
  total += 1;  // the random weights range over [0, total]
  int64_t r1 = int64_t(env.rng.next() % uint64_t(total));
  int64_t r2 = int64_t(env.rng.next() % uint64_t(total));
  int64_t w1 = -1, w2 = -1, oh1 = 0, oh2 = 0;
  for (uint32_t d : svc.reals) {
    if (env.load.overloaded(d)) continue;
    const int64_t w = env.weight(d);
    if (w <= 0) continue;
    r1 -= w;
    r2 -= w;
    if (r1 <= 0 && w1 == -1) {
      choice1 = d;
      w1 = w;
      oh1 = int64_t(env.load.overhead(d));
    }
    if (r2 <= 0 && w2 == -1) {
      choice2 = d;
      w2 = w;
      oh2 = int64_t(env.load.overhead(d));
    }
    if (w1 != -1 && w2 != -1) break;
  }
  if (choice2 != NIL && w2 * oh1 > w1 * oh2) choice1 = choice2;
  return choice1;
}

}  // namespace lvsd
