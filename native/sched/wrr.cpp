#include "sched/wrr.hpp"
#include <numeric>

namespace lvsd {

void WeightedRoundRobin::update(const SchedEnv& env, const ServiceCfg& svc) {
  int64_t g = 0, maxw = 0;
  pos_.clear();
  for (size_t i = 0; i < svc.reals.size(); ++i) {
    const int64_t w = env.weight(svc.reals[i]);
    if (w > 0) g = g ? std::gcd(w, g) : w;
    if (w > maxw) maxw = w;
    pos_[svc.reals[i]] = int32_t(i);
  }
  di_ = g ? g : 1;
  mw_ = maxw - (di_ - 1);
  cl_ = -1;
  // Replay every ip_vs_wrr_init_svc / ip_vs_wrr_dest_changed since the last one applied: cw
  // depends on each intermediate list, not only on the final one. A new scheduler starts from
  // the service's latest init; one that missed more changes than the log keeps starts afresh.
  const auto& changes = svc.wrr_log ? svc.wrr_log->changes : std::vector<WrrChange>{};
  size_t from = 0;
  if (applied_ == 0 || changes.empty() || changes.front().seq > applied_ + 1) {
    cw_ = mw_;
    for (size_t i = 0; i < changes.size(); ++i)
      if (changes[i].init) from = i;
    if (applied_ != 0 && !changes.empty() && changes.front().seq > applied_ + 1) from = changes.size();
  } else {
    while (from < changes.size() && changes[from].seq <= applied_) ++from;
  }
  for (size_t i = from; i < changes.size(); ++i) {
    const WrrChange& c = changes[i];
    if (c.init || cw_ > c.mw || cw_ == 0) cw_ = c.mw;
    else if (c.di > 1) cw_ = (cw_ / c.di) * c.di + 1;
  }
  if (!changes.empty()) applied_ = changes.back().seq;
  seq_ = svc.wrr_seq ? svc.wrr_seq.get() : nullptr;
  cws_ = svc.wrr_cw ? svc.wrr_cw.get() : nullptr;
  if (seq_ && (!cws_ || cws_->size() != seq_->size())) seq_ = nullptr;
  seek_table();
}

void WeightedRoundRobin::seek_table() {
  if (!seq_) return;
  // Table order is cw descending, then list order: find the first entry after (cw_, cl_).
  const size_t n = seq_->size();
  for (idx_ = 0; idx_ < n; ++idx_) {
    const int64_t c = (*cws_)[idx_];
    if (c < cw_) break;
    if (c == cw_) {
      auto it = pos_.find((*seq_)[idx_]);
      if (it != pos_.end() && it->second > cl_) break;
    }
  }
  if (idx_ == n) idx_ = 0;
}

uint32_t WeightedRoundRobin::schedule(const SchedEnv& env, const ServiceCfg& svc, const PacketView&) {
  if (mw_ == 0) return NIL;  // err_noavail
  if (seq_ && !seq_->empty()) {
    const size_t n = seq_->size();
    for (size_t k = 0; k < n; ++k) {
      const size_t i = (idx_ + k) % n;
      const uint32_t slot = (*seq_)[i];
      if (!env.load.overloaded(slot) && env.weight(slot) > 0) {
        idx_ = i + 1 == n ? 0 : i + 1;
        cl_ = pos_[slot];
        cw_ = (*cws_)[i];
        return slot;
      }
    }
    // Every choice is overloaded: IPVS's own code decides where its cursor ends up.
    const uint32_t r = step(env, svc);
    seek_table();
    return r;
  }
  return step(env, svc);
}

uint32_t WeightedRoundRobin::step(const SchedEnv& env, const ServiceCfg& svc) {
  const auto& list = svc.reals;
  const int32_t n = int32_t(list.size());
  int32_t dest = cl_;
  const int32_t last = dest;
  int32_t stop = -2;  // none
  bool last_pass = false, restarted = false;
  for (;;) {
    for (int32_t p = dest + 1; p < n; ++p) {
      dest = p;
      const uint32_t slot = list[p];
      if (!env.load.overloaded(slot) && env.weight(slot) >= cw_) {
        cl_ = p;
        return slot;
      }
      if (p == stop) {
        cl_ = p;  // err_over
        return NIL;
      }
    }
    dest = -1;  // the iteration ended on the list head
    cw_ -= di_;
    if (cw_ <= 0) {
      cw_ = mw_;
      if (last_pass || last == -1) {
        cl_ = -1;  // err_over
        return NIL;
      }
      restarted = true;
    }
    last_pass = cw_ <= di_;
    if (last_pass && restarted && last != -1) stop = last;
  }
}

}  // namespace lvsd
