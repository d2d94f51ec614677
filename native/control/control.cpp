#include "control/control.hpp"
#include <algorithm>
#include <numeric>
#include "flow/sync_record.hpp"

namespace lvsd {
namespace {

using namespace proto;

Addr read_addr(const uint32_t* w) {
  Addr a;
  for (int i = 0; i < 4; ++i) store32(a.b + 4 * i, w[i]);
  return a;
}
Mac read_mac(uint32_t hi, uint32_t lo) {
  Mac m;
  store32(m.b, hi);
  store16(m.b + 4, uint16_t(lo));
  return m;
}
bool valid_af(uint32_t af) { return af == AF_V4 || af == AF_V6; }
bool valid_fwd(uint32_t f) { return f == FWD_NAT || f == FWD_DIRECT || f == FWD_TUNNEL; }

// Payload sizes (words, without the header) of the fixed-size commands.
constexpr uint32_t kSetInterfaceWords = 11;
constexpr uint32_t kSetServiceWords = 19;
constexpr uint32_t kSetRealWords = 16;

}  // namespace

Control::Control(const Shared& shared, Clock clock, RealFlags& flags, std::vector<WorkerSync>& workers,
                 EventSink events, std::function<void()> wake_workers)
    : shared_(shared), clock_(clock), flags_(flags), workers_(workers), commands_(shared.command_ring()), events_(events),
      wake_workers_(std::move(wake_workers)),
      builder_(shared.layout().max_services, shared.layout().max_reals), imports_(workers.size()) {
  auto* first = new Snapshot(builder_);
  first->index();
  current_.store(first);
}

Control::~Control() {
  for (auto* s : retired_) delete s;
  delete current_.load();
}

bool Control::step() {
  bool any = false;
  // Take the commands available now as one burst: of several commits in it, only the last is
  // published (a restore of thousands of one-line changes costs one snapshot, not thousands).
  // Commands after the last commit belong to a transaction still being written: they are
  // applied to the builder but published with a later commit.
  for (;;) {
    uint32_t head = 0;
    has_commit_ = commands_.scan_last(OP_COMMIT, last_commit_, head);
    if (commands_.tail() == head) break;
    while (commands_.tail() != head) {
      const uint32_t* msg = commands_.peek();
      if (!msg) break;
      apply(msg);
      commands_.pop(msg);
      any = true;
    }
  }
  if (commands_.corrupt() && !reported_corrupt_) {
    reported_corrupt_ = true;
    reject(0, REJ_RING_CORRUPT);
  }
  if (applied_gen_) {
    // One announcement per step, of the newest generation, however many commits it applied.
    const uint32_t p[2] = {uint32_t(applied_gen_), uint32_t(applied_gen_ >> 32)};
    events_.emit(EV_APPLIED, p, 2);
    applied_gen_ = 0;
  }
  reclaim();
  release_drained();
  forward_imports();
  events_.flush();
  return any;
}

void Control::forward_imports() {
  bool pending = false, pushed = false;
  for (uint32_t w = 0; w < workers_.size(); ++w) {
    auto& q = imports_[w];
    while (!q.empty()) {
      const auto& chunk = *q.front();
      if (!workers_[w].inbox.push(OP_SYNC_IMPORT, chunk.data(), uint32_t(chunk.size()))) break;
      q.pop_front();
      pushed = true;
    }
    pending |= !q.empty();
  }
  imports_pending_ = pending;
  if (pushed && wake_workers_) wake_workers_();
}

void Control::reject(uint32_t op, uint32_t code) {
  const uint32_t p[2] = {op, code};
  events_.emit(EV_REJECTED, p, 2);
}

void Control::apply(const uint32_t* msg) {
  const uint32_t op = msg[0] >> 16;
  const uint32_t n = (msg[0] & 0xffff) - 1;
  const uint32_t* w = msg + 1;
  const uint32_t max_services = uint32_t(builder_.services.size());
  const uint32_t max_reals = uint32_t(builder_.reals.size());
  switch (op) {
    case OP_SET_INTERFACE: {
      if (n != kSetInterfaceWords) return reject(op, REJ_BAD_LENGTH);
      if (w[0] >= kMaxInterfaces) return reject(op, REJ_BAD_SLOT);
      if (w[1] < 68 || w[1] > 65535 || w[2] > 4094) return reject(op, REJ_BAD_FIELD);
      InterfaceCfg& i = builder_.ifaces[w[0]];
      i.present = true;
      i.mtu = w[1];
      i.vlan = uint16_t(w[2]);
      i.has_v4 = w[3] & 1;
      i.has_v6 = w[3] & 2;
      i.mac = read_mac(w[4], w[5]);
      i.v4 = Addr{};
      store32(i.v4.b, w[6]);
      i.v6 = read_addr(w + 7);
      return;
    }
    case OP_DEL_INTERFACE:
      if (n != 1) return reject(op, REJ_BAD_LENGTH);
      if (w[0] >= kMaxInterfaces) return reject(op, REJ_BAD_SLOT);
      builder_.ifaces[w[0]] = InterfaceCfg{};
      return;
    case OP_SET_SERVICE: {
      if (n != kSetServiceWords) return reject(op, REJ_BAD_LENGTH);
      const uint32_t slot = w[0];
      if (slot >= max_services) return reject(op, REJ_BAD_SLOT);
      const bool fw = w[4] != 0;
      if (!valid_af(w[1]) || (!fw && w[2] != PROTO_TCP && w[2] != PROTO_UDP) || w[3] > 65535 ||
          w[8] > 128)
        return reject(op, REJ_BAD_FIELD);
      if (w[5] < SCH_RR || w[5] > SCH_TWOS || (w[5] == SCH_MH && (w[18] < 2 || w[18] > (1u << 20))))
        return reject(op, REJ_BAD_FIELD);
      ServiceCfg& s = builder_.services[slot];
      const bool was_present = s.present;
      const uint8_t old_sched = s.sched;
      if (!s.present) s = ServiceCfg{};
      drain_services_.erase(std::remove_if(drain_services_.begin(), drain_services_.end(),
                                           [&](const Drain& d) { return d.slot == slot; }),
                            drain_services_.end());
      s.present = true;
      s.slot = slot;
      s.af = uint8_t(w[1]);
      s.proto = fw ? 0 : uint8_t(w[2]);
      s.port = fw ? 0 : uint16_t(w[3]);
      s.fwmark = w[4];
      s.sched = uint8_t(w[5]);
      s.flags = w[6];
      s.persist_s = w[7];
      s.pmask_plen = uint8_t(w[8]);
      s.vip = fw ? Addr{} : read_addr(w + 9);
      s.pmask = read_addr(w + 13);
      s.lc_epoch = w[17];
      s.mh_size = w[18];
      if (!was_present) s.version = next_version_++;  // schedulers follow reals, not options
      if (s.sched == SCH_WRR && (!was_present || old_sched != SCH_WRR)) log_wrr(s, true);
      return;
    }
    case OP_SET_TABLE: {
      // [svc, kind, total, offset, count, entries...]
      if (n < 5 || n != 5 + w[4]) return reject(op, REJ_BAD_LENGTH);
      const uint32_t slot = w[0], kind = w[1], total = w[2], offset = w[3], count = w[4];
      if (slot >= max_services || !builder_.services[slot].present) return reject(op, REJ_BAD_SLOT);
      if (kind < TABLE_BUCKETS || kind > TABLE_WRR_CW || total > (1u << 20) || offset > total ||
          count > total - offset)
        return reject(op, REJ_BAD_FIELD);
      ServiceCfg& s = builder_.services[slot];
      Table& t = kind == TABLE_BUCKETS ? s.table : kind == TABLE_WRR_SEQ ? s.wrr_seq : s.wrr_cw;
      // A table arriving from offset 0 is a new one: published snapshots keep the old.
      auto& staged = staging_[uint64_t(slot) << 2 | kind];
      if (offset == 0) staged = std::make_shared<std::vector<uint32_t>>(total, NIL);
      if (!staged || staged->size() != total) return reject(op, REJ_BAD_FIELD);
      std::copy(w + 5, w + 5 + count, staged->begin() + offset);
      t = total == 0 && kind != TABLE_BUCKETS ? nullptr : staged;  // no wrr table: step instead
      s.version = next_version_++;
      return;
    }
    case OP_SET_MARKS: {
      if (n < 2 || n != 2 + w[1] * kMarkRuleWords) return reject(op, REJ_BAD_LENGTH);
      if (w[0]) builder_.marks.clear();
      for (uint32_t i = 0; i < w[1]; ++i) {
        const uint32_t* r = w + 2 + i * kMarkRuleWords;
        MarkRule m;
        if (!valid_af(r[0]) || r[1] > 255 || r[6] > 128 || r[11] > 128 || r[12] > r[13] || r[13] > 65535 || !r[14])
          return reject(op, REJ_BAD_FIELD);
        m.af = uint8_t(r[0]);
        m.proto = uint8_t(r[1]);
        m.dst = read_addr(r + 2);
        m.dst_plen = uint8_t(r[6]);
        m.src = read_addr(r + 7);
        m.src_plen = uint8_t(r[11]);
        m.port_lo = uint16_t(r[12]);
        m.port_hi = uint16_t(r[13]);
        m.mark = r[14];
        builder_.marks.push_back(m);
      }
      return;
    }
    case OP_SET_OPTIONS:
      if (n != 1) return reject(op, REJ_BAD_LENGTH);
      builder_.options = w[0];
      return;
    case OP_DEL_SERVICE:
      if (n != 1) return reject(op, REJ_BAD_LENGTH);
      if (w[0] >= max_services || !builder_.services[w[0]].present) return reject(op, REJ_BAD_SLOT);
      delete_service(w[0]);
      return;
    case OP_SET_REAL: {
      if (n != kSetRealWords) return reject(op, REJ_BAD_LENGTH);
      const uint32_t slot = w[0], svc = w[1];
      if (slot >= max_reals || svc >= max_services || !builder_.services[svc].present)
        return reject(op, REJ_BAD_SLOT);
      ServiceCfg& s = builder_.services[svc];
      if (!valid_af(w[2]) || w[3] > 65535 || w[4] > 65535 || !valid_fwd(w[5]) ||
          w[8] >= kMaxInterfaces || (w[2] != s.af && w[5] != FWD_TUNNEL))
        return reject(op, REJ_BAD_FIELD);
      RealCfg& r = builder_.reals[slot];
      if (r.present && r.svc != svc) return reject(op, REJ_BAD_SLOT);
      // IPVS __ip_vs_update_dest: a new real, no upper threshold, or a higher one clears OVERLOAD.
      if (!r.present || !w[6] || w[6] > r.u_thresh) flags_.set_overload(slot, false);
      drain_reals_.erase(std::remove_if(drain_reals_.begin(), drain_reals_.end(),
                                        [&](const Drain& d) { return d.slot == slot; }),
                         drain_reals_.end());
      if (!r.present) s.reals.insert(s.reals.begin(), slot);  // IPVS: list_add at the head
      r.present = true;
      r.svc = svc;
      r.af = uint8_t(w[2]);
      r.port = uint16_t(w[3]);
      r.weight = int32_t(w[4]);
      r.fwd = uint8_t(w[5]);
      r.u_thresh = w[6];
      r.l_thresh = w[7];
      r.iface = uint16_t(w[8]);
      r.mac = read_mac(w[10], w[11]);
      r.addr = read_addr(w + 12);
      s.version = next_version_++;
      if (s.sched == SCH_WRR) log_wrr(s, false);  // add_dest / upd_dest
      return;
    }
    case OP_DEL_REAL:
      if (n != 1) return reject(op, REJ_BAD_LENGTH);
      if (w[0] >= max_reals || !builder_.reals[w[0]].present) return reject(op, REJ_BAD_SLOT);
      delete_real(w[0]);
      return;
    case OP_SET_TIMEOUTS:
      if (n < 1 || w[0] > S_COUNT || n != 1 + w[0]) return reject(op, REJ_BAD_LENGTH);
      for (uint32_t i = 0; i < w[0]; ++i)
        if (w[1 + i]) builder_.timeout_ms[i] = w[1 + i];  // 0 = unchanged (ipvsadm --set)
      return;
    case OP_CLEAR:
      for (uint32_t s = 0; s < max_services; ++s)
        if (builder_.services[s].present) delete_service(s);
      return;
    case OP_COMMIT:
      if (n != 2) return reject(op, REJ_BAD_LENGTH);
      // Publish only at the burst's last commit (the ring index just past this message).
      if (has_commit_ && commands_.tail() + (msg[0] & 0xffff) == last_commit_) commit(uint64_t(w[1]) << 32 | w[0]);
      return;
    case OP_DUMP_CONNS:
      if (n != 1 && n != 2) return reject(op, REJ_BAD_LENGTH);
      if (n == 2 && w[1] != DUMP_ROWS && w[1] != DUMP_SYNC) return reject(op, REJ_BAD_FIELD);
      for (auto& ws : workers_) {
        ws.dump_format.store(n == 2 ? w[1] : DUMP_ROWS, std::memory_order_relaxed);
        ws.dump_request.store(w[0] ? w[0] : 1, std::memory_order_release);
      }
      if (wake_workers_) wake_workers_();
      return;
    case OP_SYNC_IMPORT: {
      // Whole records only; what is in them is the workers' business (they decode and count).
      if (n % kSyncRecordWords != 0) return reject(op, REJ_BAD_LENGTH);
      if (n == 0) return;
      auto chunk = std::make_shared<const std::vector<uint32_t>>(w, w + n);
      for (auto& q : imports_) q.push_back(chunk);
      imports_pending_ = true;
      return;
    }
    default:
      return reject(op, REJ_UNKNOWN_OPCODE);
  }
}

void Control::log_wrr(ServiceCfg& s, bool init) {
  int64_t g = 0, maxw = 0;
  for (uint32_t r : s.reals) {
    const int64_t w = builder_.reals[r].weight;
    if (w > 0) g = g ? std::gcd(w, g) : w;
    maxw = std::max(maxw, w);
  }
  const int64_t di = g ? g : 1;
  auto log = std::make_shared<WrrLog>(s.wrr_log ? *s.wrr_log : WrrLog{});
  log->changes.push_back(WrrChange{next_wrr_seq_++, init, di, maxw - (di - 1)});
  if (log->changes.size() > WrrLog::kKeep) log->changes.erase(log->changes.begin());
  s.wrr_log = std::move(log);
}

void Control::delete_real(uint32_t slot) {
  RealCfg& r = builder_.reals[slot];
  ServiceCfg& s = builder_.services[r.svc];
  s.reals.erase(std::remove(s.reals.begin(), s.reals.end(), slot), s.reals.end());
  s.version = next_version_++;
  if (s.sched == SCH_WRR && s.present) log_wrr(s, false);  // del_dest
  drain_reals_.push_back(Drain{slot, r.svc, 0, 0});
  r = RealCfg{};
}

void Control::delete_service(uint32_t slot) {
  ServiceCfg& s = builder_.services[slot];
  while (!s.reals.empty()) delete_real(s.reals.front());
  drain_services_.push_back(Drain{slot, NIL, 0, 0});
  s = ServiceCfg{};
}

void Control::commit(uint64_t gen) {
  staging_.clear();
  builder_.gen = gen;
  for (auto& d : drain_reals_) if (!d.gen) d.gen = gen;
  for (auto& d : drain_services_) if (!d.gen) d.gen = gen;
  auto* snap = new Snapshot(builder_);
  snap->index();
  retired_.push_back(current_.exchange(snap, std::memory_order_seq_cst));
  applied_gen_ = gen;
}

bool Control::workers_past(uint64_t gen) const {
  for (const auto& w : workers_) {
    const uint64_t seen = w.seen.load(std::memory_order_seq_cst);
    if (seen == WorkerSync::kQuiescent) continue;
    if (seen < gen) return false;  // includes 0: the worker is picking up a snapshot
  }
  return true;
}

void Control::reclaim() {
  auto it = std::remove_if(retired_.begin(), retired_.end(), [&](const Snapshot* s) {
    if (!workers_past(s->gen + 1)) return false;
    delete s;
    return true;
  });
  retired_.erase(it, retired_.end());
}

uint64_t Control::real_refs(uint32_t slot) const {
  uint64_t refs = 0;
  for (uint32_t w = 0; w < workers_.size(); ++w) {
    const uint64_t* c = shared_.real_counters(w, slot);
    refs += get(c + SC_ACTIVE) + get(c + SC_INACTIVE) + get(c + SC_PERSIST);
  }
  return refs;
}

void Control::zero_counters(bool service, uint32_t slot) {
  for (uint32_t w = 0; w < workers_.size(); ++w) {
    uint64_t* c = service ? shared_.service_counters(w, slot) : shared_.real_counters(w, slot);
    for (uint32_t i = 0; i < SC_COUNT; ++i) put(c + i, 0);
  }
}

void Control::release_drained() {
  const uint64_t now = clock_.now_ms();
  auto reals_end = std::remove_if(drain_reals_.begin(), drain_reals_.end(), [&](Drain& d) {
    if (!d.gen || !workers_past(d.gen)) return false;
    if (real_refs(d.slot) != 0) {
      d.idle_since = 0;
      return false;
    }
    if (!d.idle_since) d.idle_since = now ? now : 1;
    if (now - d.idle_since < kTrashPeriodMs) return false;
    zero_counters(false, d.slot);
    flags_.set_overload(d.slot, false);
    events_.emit(EV_REAL_RELEASED, &d.slot, 1);
    return true;
  });
  drain_reals_.erase(reals_end, drain_reals_.end());
  auto svc_end = std::remove_if(drain_services_.begin(), drain_services_.end(), [&](const Drain& d) {
    if (!d.gen || !workers_past(d.gen)) return false;
    for (const auto& r : drain_reals_)
      if (r.svc == d.slot) return false;
    zero_counters(true, d.slot);
    events_.emit(EV_SERVICE_RELEASED, &d.slot, 1);
    return true;
  });
  drain_services_.erase(svc_end, drain_services_.end());
}

}  // namespace lvsd
