#include "engine/worker.hpp"
#include <algorithm>
#include <cstring>
#include "flow/tcp_state.hpp"
#include "packet/rewrite.hpp"

namespace lvsd {
namespace {

using namespace proto;

constexpr uint32_t kIcmpBurst = 50;          // ICMP errors: 1000/s, bursts of 50 (Linux defaults)
constexpr uint64_t kNeighMissEveryMs = 1000; // report an unresolved next hop at most once a second
constexpr uint64_t kTemplateRetryMs = 60000; // IPVS retries expiry of a controlling entry after 60 s

bool is_new_syn(uint8_t f) { return (f & (TCP_SYN | TCP_ACK | TCP_FIN | TCP_RST)) == TCP_SYN; }
uint16_t ethertype(uint8_t af) { return af == AF_V4 ? ETH_P_IPV4 : ETH_P_IPV6; }

constexpr uint16_t kFtpPort = 21;

// A persistence template's key (ip_vs_sched_persist): <proto, client & netmask, 0, vip, vport>,
// vport 0 for port-0 and FTP services and when the packet's port is not the service's; for
// firewall-mark services <IPPROTO_IP, client & netmask, 0, the mark as an address, 0>.
struct TemplateKey {
  uint8_t proto;
  uint16_t vport;
  Addr caddr, vaddr;
};
TemplateKey template_key(const ServiceCfg& svc, uint8_t proto, const Addr& src, const Addr& dst, uint16_t dport) {
  TemplateKey k;
  for (int i = 0; i < 16; ++i) k.caddr.b[i] = uint8_t(src.b[i] & svc.pmask.b[i]);
  k.proto = proto;
  k.vaddr = dst;
  k.vport = dport == svc.port && svc.port != kFtpPort ? dport : 0;
  if (svc.fwmark) {
    k.proto = 0;
    k.vaddr = Addr{};
    store32(k.vaddr.b, svc.fwmark);
    k.vport = 0;
  }
  return k;
}

// TCP is synced once past the handshake (IPVS syncs ES/FW/CL/CW/TW; LAST_ACK too here).
bool tcp_synced_state(uint8_t s) { return !tcp::is_embryonic(s) && s != S_LISTEN; }

// In-memory flags <-> record flags.
uint16_t record_flags(uint16_t f) {
  return uint16_t((f & CF_TEMPLATE ? SF_TEMPLATE : 0) | (f & CF_NOOUTPUT ? SF_NOOUTPUT : 0) |
                  (f & CF_INACTIVE ? SF_INACTIVE : 0) | (f & CF_ASSURED ? SF_ASSURED : 0) |
                  (f & CF_NO_CPORT ? SF_NO_CPORT : 0) | (f & CF_REPLIED ? SF_REPLIED : 0));
}

}  // namespace

Worker::Worker(uint32_t id, const Shared& shared, RealFlags& flags, WorkerSync& sync, const Control& control,
               Clock clock, EventSink events, uint32_t conn_capacity, uint64_t seed)
    : id_(id), shared_(shared), flags_(flags), sync_(sync), control_(control), clock_(clock), events_(events),
      table_(conn_capacity, seed), globals_(shared.globals(id)), loads_(shared.loads(&flags)), rng_(seed),
      sched_(shared.layout().max_services), neigh_miss_at_(shared.layout().max_reals, 0) {
  sync_out_.resize(size_t(kSyncPerEvent) * kSyncRecordWords);
  sync_idx_.resize(kSyncPerEvent);
}

// ---------------------------------------------------------------------------------------------
// Batches, snapshots and housekeeping

void Worker::begin_batch() {
  if (quiescent_) {
    sync_.seen.store(0, std::memory_order_seq_cst);  // "acquiring": see Control::workers_past
    quiescent_ = false;
  }
  const Snapshot* s = control_.current();
  if (s != snap_) {
    on_snapshot(s);
    snap_ = s;
    count(C_SNAPSHOTS);
  }
  sync_.seen.store(s->gen, std::memory_order_seq_cst);
  now_ = clock_.now_ms();
  sync_master_ = s->options & OPT_SYNC_MASTER;
}

void Worker::quiesce() {
  if (quiescent_) return;
  sync_.seen.store(WorkerSync::kQuiescent, std::memory_order_seq_cst);
  quiescent_ = true;
  snap_ = nullptr;  // may be freed from now on
}

void Worker::on_snapshot(const Snapshot* s) {
  const SchedEnv env{*s, loads_, now_, rng_};
  for (uint32_t slot = 0; slot < sched_.size(); ++slot) {
    const ServiceCfg& svc = s->services[slot];
    SchedEntry& e = sched_[slot];
    if (!svc.present) {
      e = SchedEntry{};
      continue;
    }
    if (e.sched && e.lc_epoch != svc.lc_epoch) {
      // A least-connection reset (quiesce): from now on the schedulers count only connections
      // made after it. Each worker zeroes its own stripe; older connections no longer count.
      for (uint32_t r : svc.reals) {
        put(real_ctr(r) + SC_SCHED_ACTIVE, 0);
        put(real_ctr(r) + SC_SCHED_INACTIVE, 0);
      }
    }
    e.lc_epoch = svc.lc_epoch;
    if (!e.sched || e.kind != svc.sched) {
      e.sched = make_scheduler(svc.sched);
      e.kind = svc.sched;
      e.version = 0;
    }
    if (e.sched && e.version != svc.version) {
      e.sched->update(env, svc);
      e.version = svc.version;
    }
  }
}

uint32_t Worker::step() {
  begin_batch();
  if (!sync_.inbox.empty()) drain_inbox();
  Packet pkts[kBatch];
  PacketView pvs[kBatch];
  ParseStatus st[kBatch];
  uint64_t hashes[kBatch];
  const uint32_t n = port_ ? port_->receive(pkts, kBatch) : 0;
  gen_n_ = 0;
  // Three passes so that the memory accesses of a batch overlap instead of queueing behind
  // each other: parse and hash everything and prefetch the hash buckets; then prefetch the
  // entries the buckets point at; then do the work, mostly from cache.
  for (uint32_t i = 0; i < n; ++i) {
    st[i] = parse_frame(pkts[i].data, pkts[i].len, pvs[i]);
    if (st[i] == ParseStatus::Ok && !pvs[i].icmp_error) {
      hashes[i] = table_.hash(pvs[i].proto, pvs[i].af, pvs[i].src, pvs[i].sport);
      table_.prefetch(hashes[i]);
    }
  }
  for (uint32_t i = 0; i < n; ++i) {
    if (st[i] == ParseStatus::Ok && !pvs[i].icmp_error) table_.prefetch_entry(table_.head(hashes[i]));
  }
  for (uint32_t i = 0; i < n; ++i) {
    count(C_RX_BYTES, pkts[i].len);
    pkts[i].verdict = process(pkts[i], pvs[i], st[i], hashes[i]);
    if (pkts[i].verdict == Verdict::Pass) count(C_PASS_PACKETS);
  }
  count(C_RX_PACKETS, n);
  if (n) {
    count(C_DROP_TX_FULL, port_->complete(pkts, n));
    count(C_BATCHES);
  }
  if (gen_n_) count(C_DROP_TX_FULL, port_->complete(gen_, gen_n_));
  if (sync_out_n_) flush_sync();
  housekeeping();
  events_.flush();
  return n;
}

void Worker::housekeeping() {
  if (now_ > last_sweep_) {
    const uint64_t hw = table_.high_water();
    const uint64_t elapsed = now_ - last_sweep_;
    last_sweep_ = now_;
    if (hw) sweep(uint32_t(std::min<uint64_t>(hw, hw * elapsed / kSweepPeriodMs + 1)));
  }
  put(globals_ + C_CONN_COUNT, table_.size());
  const uint32_t req = sync_.dump_request.load(std::memory_order_acquire);
  if (req && !dump_request_ && !sync_.dump_ready.load(std::memory_order_acquire)) {
    dump_request_ = req;
    dump_format_ = sync_.dump_format.load(std::memory_order_relaxed);
    dump_cursor_ = 0;
    dump_templates_done_ = false;
    dump_.clear();
  }
  if (dump_request_) {
    if (dump_format_ == DUMP_SYNC) progress_sync_dump();
    else progress_dump();
  }
}

void Worker::sweep(uint32_t budget) {
  const uint32_t hw = table_.high_water();
  const bool nodest = snap_ && (snap_->options & OPT_EXPIRE_NODEST_CONN);
  // Templates due while they still control connections are looked at again after the rest of
  // the pass: the connections that expired before them go first, as with IPVS's per-entry
  // timers, and a template whose last connection just went expires now rather than 60 s later.
  deferred_.clear();
  for (uint32_t k = 0; k < budget; ++k) {
    if (sweep_cursor_ >= hw) sweep_cursor_ = 0;
    const uint32_t i = sweep_cursor_++;
    const Conn& c = table_.at(i);
    if (!(c.flags & CF_IN_USE)) continue;
    // With expire_nodest_conn, entries of deleted reals go too (IPVS flushes them after a delete).
    if (c.expires <= now_ || (nodest && !snap_->real(c.real))) {
      if (c.n_control) deferred_.push_back(i);
      else expire(i);
    }
  }
  for (uint32_t i : deferred_)
    if (table_.at(i).flags & CF_IN_USE) expire(i);
}

void Worker::progress_dump() {
  // A slice per batch (all of it when the clock is manual): a dump never stalls the packet path.
  const uint32_t hw = table_.high_water();
  const uint32_t slice = clock_.manual() ? hw : 16384;
  const uint32_t end = std::min(hw, dump_cursor_ + slice);
  for (; dump_cursor_ < end; ++dump_cursor_) {
    const Conn& c = table_.at(dump_cursor_);
    if (!(c.flags & CF_IN_USE) || c.expires <= now_) continue;
    uint8_t r[kDumpRecordBytes] = {};
    r[0] = c.proto; r[1] = c.af; r[2] = c.daf; r[3] = c.state; r[4] = c.fwd;
    std::memcpy(r + 6, &c.flags, 2);
    std::memcpy(r + 8, &c.cport, 2);
    std::memcpy(r + 10, &c.vport, 2);
    std::memcpy(r + 12, &c.dport, 2);
    std::memcpy(r + 16, &c.svc, 4);
    std::memcpy(r + 20, &c.real, 4);
    std::memcpy(r + 24, &c.fwmark, 4);
    std::memcpy(r + 28, &c.n_control, 4);
    const uint32_t left = uint32_t(std::min<uint64_t>(c.expires - now_, 0xffffffffu));
    std::memcpy(r + 32, &left, 4);
    std::memcpy(r + 36, &c.in_pkts, 4);
    std::memcpy(r + 40, c.caddr.b, 16);
    std::memcpy(r + 56, c.vaddr.b, 16);
    std::memcpy(r + 72, c.daddr.b, 16);
    dump_.insert(dump_.end(), r, r + kDumpRecordBytes);
  }
  if (dump_cursor_ >= hw) {
    const uint32_t p[2] = {id_, dump_request_};
    sync_.dump_request.store(0, std::memory_order_relaxed);
    sync_.dump_ready.store(dump_request_, std::memory_order_release);
    dump_request_ = 0;
    events_.emit(EV_DUMP_READY, p, 2);
  }
}

void Worker::progress_sync_dump() {
  // Two passes, templates then connections (so an importer finds a connection's template), in
  // slices as progress_dump. Entries made during the dump may be missed: with OPT_SYNC_MASTER
  // they are exported as they are made.
  const uint32_t hw = table_.high_water();
  const uint32_t slice = clock_.manual() ? 2 * hw + 1 : 16384;
  for (uint32_t done = 0; done < slice; ++done) {
    if (dump_cursor_ >= hw) {
      if (dump_templates_done_) break;
      dump_templates_done_ = true;
      dump_cursor_ = 0;
      continue;
    }
    const Conn& c = table_.at(dump_cursor_++);
    if (!(c.flags & CF_IN_USE) || c.expires <= now_) continue;
    if (bool(c.flags & CF_TEMPLATE) == dump_templates_done_) continue;
    SyncRecord r;
    if (!make_record(c, r)) continue;
    const size_t at = dump_.size();
    dump_.resize(at + kSyncRecordBytes);
    sync_encode(r, dump_.data() + at);
  }
  if (dump_templates_done_ && dump_cursor_ >= hw) {
    const uint32_t p[2] = {id_, dump_request_};
    sync_.dump_request.store(0, std::memory_order_relaxed);
    sync_.dump_ready.store(dump_request_, std::memory_order_release);
    dump_request_ = 0;
    events_.emit(EV_DUMP_READY, p, 2);
  }
}

// ---------------------------------------------------------------------------------------------
// Connection sync: export

// The record for `c`, or false when its service or real is no longer configured (the backup
// could not place it either).
bool Worker::make_record(const Conn& c, SyncRecord& r) const {
  const ServiceCfg* s = snap_->service(c.svc);
  const RealCfg* rc = snap_->real(c.real);
  if (!s || !rc) return false;
  r.proto = c.proto;
  r.af = c.af;
  r.daf = c.daf;
  r.state = c.state;
  r.fwd = c.fwd;
  r.svc_proto = s->proto;
  r.svc_af = s->af;
  r.flags = record_flags(c.flags);
  r.cport = c.cport;
  r.vport = c.vport;
  r.dport = c.dport;
  r.svc_port = s->port;
  r.real_port = rc->port;
  r.fwmark = c.fwmark;
  r.svc_fwmark = s->fwmark;
  r.expires_in_ms = c.expires > now_ ? uint32_t(std::min<uint64_t>(c.expires - now_, 0xffffffffu)) : 0;
  r.timeout_ms = c.timeout_ms;
  r.in_pkts = c.in_pkts;
  r.client_mac = c.client_mac;
  r.client_iface = c.client_iface;
  r.caddr = c.caddr;
  r.vaddr = c.vaddr;
  r.daddr = c.daddr;
  r.svc_vip = s->vip;
  return true;
}

void Worker::sync_export(Conn& c) {
  SyncRecord r;
  if (!make_record(c, r)) return;
  sync_encode(r, reinterpret_cast<uint8_t*>(sync_out_.data() + size_t(sync_out_n_) * kSyncRecordWords));
  sync_idx_[sync_out_n_] = uint32_t(&c - &table_.at(0));
  const uint32_t now32 = uint32_t(now_);
  c.synced_at = now32 ? now32 : 1;
  if (++sync_out_n_ == kSyncPerEvent) flush_sync();
}

void Worker::flush_sync() {
  const uint32_t n = sync_out_n_;
  sync_out_n_ = 0;
  // The event ring full: the records are lost (counted), the packet path never waits. Their
  // entries are marked never exported, so each one's next packet exports it again (a burst of
  // new connections must not leave some of them unknown to the backup until packet 53).
  if (events_.try_emit(EV_SYNC, sync_out_.data(), n * kSyncRecordWords)) {
    count(C_SYNC_EXPORTED, n);
    return;
  }
  count(C_SYNC_DROPPED, n);
  for (uint32_t k = 0; k < n; ++k) {
    Conn& c = table_.at(sync_idx_[k]);
    if (c.flags & CF_IN_USE) c.synced_at = 0;
  }
}

// More than half of the entry's timeout since it was last exported (or never exported).
bool Worker::sync_due(const Conn& c) const {
  return c.synced_at == 0 || uint32_t(uint32_t(now_) - c.synced_at) > c.timeout_ms / 2;
}

// After a packet of `c` (state before it: old_state): export on a TCP state change past the
// handshake, a new UDP flow, packets 3, 53, 103... and whenever half the timeout has passed
// since the last export (so a quiet long-lived flow never expires on the backup).
void Worker::sync_packet(Conn& c, uint8_t old_state, bool created) {
  if (c.proto == PROTO_TCP) {
    if (!tcp_synced_state(c.state)) return;
    if (c.state != old_state) return sync_export(c);
  } else if (created) {
    return sync_export(c);
  }
  if (c.in_pkts % kSyncPeriod == kSyncThreshold || sync_due(c)) sync_export(c);
}

// ---------------------------------------------------------------------------------------------
// Connection sync: import

void Worker::drain_inbox() {
  // A share per batch (everything when the clock is manual), so imports never stall packets.
  const uint32_t budget = clock_.manual() ? ~0u : 4096;
  uint32_t applied = 0;
  while (applied < budget) {
    const uint32_t* msg = sync_.inbox.peek();
    if (!msg) break;
    const uint32_t words = (msg[0] & 0xffff) - 1;
    const auto* bytes = reinterpret_cast<const uint8_t*>(msg + 1);
    for (uint32_t k = 0; k + kSyncRecordWords <= words; k += kSyncRecordWords, ++applied) {
      const Import res = import_record(bytes + size_t(k) * 4);
      if (id_ != 0) continue;  // every worker applies; worker 0 counts
      switch (res) {
        case Import::Created: count(C_SYNC_IMPORTED); break;
        case Import::Updated: count(C_SYNC_UPDATED); break;
        case Import::Malformed: count(C_SYNC_REJECTED_MALFORMED); break;
        case Import::NoService: count(C_SYNC_REJECTED_NO_SERVICE); break;
        case Import::NoReal: count(C_SYNC_REJECTED_NO_REAL); break;
        case Import::Full: count(C_SYNC_REJECTED_FULL); break;
      }
    }
    sync_.inbox.pop(msg);
  }
}

uint32_t Worker::find_template(const ServiceCfg& svc, uint8_t proto, uint8_t af, const Addr& caddr,
                               const Addr& vaddr, uint16_t vport) {
  const TemplateKey k = template_key(svc, proto, caddr, vaddr, vport);
  const uint64_t th = table_.hash(k.proto, af, k.caddr, 0);
  return table_.find_in(th, k.proto, af, k.caddr, 0, k.vaddr, k.vport, true);
}

// Apply one record (IPVS ip_vs_proc_conn): find the service by its key and the real by its
// address in the current snapshot; create the entry or bring an existing one up to date. The
// entry then lives exactly as a local one: bound (ActiveConn/InActConn), on the embryonic list
// when it is embryonic, under its template when its service is persistent.
Worker::Import Worker::import_record(const uint8_t* p) {
  SyncRecord r;
  if (sync_decode(p, kSyncRecordBytes, r) != SyncStatus::Ok) return Import::Malformed;
  const uint32_t svc_slot = snap_->find_service(r.svc_fwmark, r.svc_proto, r.svc_af, r.svc_vip, r.svc_port);
  const ServiceCfg* svc = snap_->service(svc_slot);
  // find_service falls back to a port-0 service: only the exact key will do here.
  if (!svc || svc->af != r.svc_af || svc->proto != r.svc_proto || svc->port != r.svc_port ||
      svc->fwmark != r.svc_fwmark || svc->vip != r.svc_vip)
    return Import::NoService;
  uint32_t real = NIL;
  for (uint32_t rs : svc->reals) {
    const RealCfg& rc = snap_->reals[rs];
    if (rc.af == r.daf && rc.port == r.real_port && rc.addr == r.daddr) {
      real = rs;
      break;
    }
  }
  if (real == NIL) return Import::NoReal;
  const RealCfg& rc = snap_->reals[real];
  const bool tmpl = r.flags & SF_TEMPLATE;

  const uint64_t h = table_.hash(r.proto, r.af, r.caddr, r.cport);
  uint32_t ci = table_.find_in(h, r.proto, r.af, r.caddr, r.cport, r.vaddr, r.vport, tmpl);
  const bool created = ci == NIL;
  if (created) {
    ci = alloc_conn();
    if (ci == NIL) return Import::Full;
    Conn& c = table_.at(ci);
    c.proto = r.proto;
    c.af = r.af;
    c.caddr = r.caddr;
    c.cport = r.cport;
    c.vaddr = r.vaddr;
    c.vport = r.vport;
    c.svc = svc_slot;
    c.lc_epoch = svc->lc_epoch;
    table_.link(ci, h);
  } else {
    Conn& c = table_.at(ci);
    if (c.real != NIL) unbind(c);  // rebound below, with the record's state
    if (c.svc != svc_slot) {
      c.svc = svc_slot;
      c.lc_epoch = svc->lc_epoch;
    }
  }
  Conn& c = table_.at(ci);
  // The real's own forwarding method, as IPVS's ip_vs_bind_dest gives synced connections.
  c.real = real;
  c.daf = rc.af;
  c.daddr = rc.addr;
  c.dport = r.dport;
  c.fwd = rc.fwd;
  c.fwmark = r.fwmark;
  c.state = r.state;
  c.timeout_ms = r.timeout_ms;
  c.expires = now_ + r.expires_in_ms;
  c.in_pkts = r.in_pkts;
  c.client_mac = r.client_mac;
  c.client_iface = r.client_iface;
  uint16_t f = uint16_t(c.flags & (CF_IN_USE | CF_EMBRYONIC));
  if (r.flags & SF_ASSURED) f |= CF_ASSURED;
  if (r.flags & SF_NO_CPORT) f |= CF_NO_CPORT;
  if (r.flags & SF_REPLIED) f |= CF_REPLIED;
  if (tmpl) {
    f |= CF_TEMPLATE | CF_INACTIVE;
  } else {
    // Activity follows the state (as set_state keeps it); DR/tunnel never see output, NAT
    // keeps what the active knew.
    if (!tcp::is_active(c.state)) f |= CF_INACTIVE;
    if (rc.fwd != FWD_NAT || (r.flags & SF_NOOUTPUT)) f |= CF_NOOUTPUT;
  }
  c.flags = f;
  if (!tmpl) {
    const bool embryonic = c.proto == PROTO_TCP ? tcp::is_embryonic(c.state)
                                                : !(c.flags & CF_REPLIED) && c.in_pkts < 2;
    if (embryonic && !(c.flags & CF_EMBRYONIC)) table_.embryonic_push(ci);
    if (!embryonic && (c.flags & CF_EMBRYONIC)) table_.embryonic_remove(ci);
  }
  bind(c);
  // Under its template, as new_persistent would have put it.
  if (!tmpl && svc->persistent() && c.control == NIL) {
    const uint32_t ti = find_template(*svc, c.proto, c.af, c.caddr, c.vaddr, c.vport);
    if (ti != NIL && ti != ci) {
      Conn& t = table_.at(ti);
      if (t.expires > now_ || t.n_control) {
        c.control = ti;
        ++t.n_control;
      }
    }
  }
  // A controlled connection that completed (or a UDP flow answered) assures its template,
  // as set_state and the reply path do on the active.
  if (c.control != NIL && (c.state == S_ESTABLISHED || (c.proto == PROTO_UDP && (c.flags & CF_REPLIED))))
    table_.at(c.control).flags |= CF_ASSURED;
  return created ? Import::Created : Import::Updated;
}

// ---------------------------------------------------------------------------------------------
// Connection lifecycle

uint32_t Worker::alloc_conn() {
  uint32_t i = table_.alloc();
  if (i != NIL) return i;
  // Full. First reclaim anything already expired near the sweep cursor...
  sweep(64);
  if ((i = table_.alloc()) != NIL) return i;
  // ...then evict the oldest embryonic entry (SYN flood policy); established flows are never
  // evicted for a new one: if nothing is embryonic, the new connection is refused.
  const uint32_t victim = table_.embryonic_oldest();
  if (victim == NIL) return NIL;
  destroy(victim);
  count(C_CONN_EVICTED);
  return table_.alloc();
}

bool Worker::expire(uint32_t i) {
  Conn& c = table_.at(i);
  if (c.n_control) {
    c.expires = now_ + kTemplateRetryMs;
    return false;
  }
  destroy(i);
  count(C_CONN_EXPIRED);
  return true;
}

bool Worker::sched_counted(const Conn& c) const {
  if (c.flags & CF_TEMPLATE) return false;
  const ServiceCfg* svc = snap_->service(c.svc);
  return svc && svc->lc_epoch == c.lc_epoch;
}

void Worker::bind(Conn& c) {
  uint64_t* rc = real_ctr(c.real);
  if (c.flags & CF_TEMPLATE) {
    bump(rc + SC_PERSIST);
  } else {
    const bool inactive = c.flags & CF_INACTIVE;
    bump(rc + (inactive ? SC_INACTIVE : SC_ACTIVE));
    if (sched_counted(c)) bump(rc + (inactive ? SC_SCHED_INACTIVE : SC_SCHED_ACTIVE));
  }
  // ip_vs_bind_dest: reaching the upper threshold sets OVERLOAD (templates do not count).
  const RealCfg* r = snap_->real(c.real);
  if (r && r->u_thresh && loads_.total(c.real) >= r->u_thresh) flags_.set_overload(c.real, true);
}

void Worker::unbind(Conn& c) {
  uint64_t* rc = real_ctr(c.real);
  if (c.flags & CF_TEMPLATE) {
    drop_one(rc + SC_PERSIST);
  } else {
    const bool inactive = c.flags & CF_INACTIVE;
    drop_one(rc + (inactive ? SC_INACTIVE : SC_ACTIVE));
    if (sched_counted(c)) drop_one(rc + (inactive ? SC_SCHED_INACTIVE : SC_SCHED_ACTIVE));
  }
  // ip_vs_unbind_dest: below the lower threshold (or 3/4 of the upper one without a lower
  // threshold, or at once without thresholds) OVERLOAD clears.
  const RealCfg* r = snap_->real(c.real);
  if (!r || !flags_.overloaded(c.real)) return;
  const uint64_t total = loads_.total(c.real);
  if (r->l_thresh ? total < r->l_thresh : r->u_thresh ? total * 4 < uint64_t(r->u_thresh) * 3 : true)
    flags_.set_overload(c.real, false);
}

void Worker::destroy(uint32_t i) {
  Conn& c = table_.at(i);
  if (c.real != NIL) unbind(c);
  if (c.control != NIL) {
    Conn& t = table_.at(c.control);
    if (t.n_control) --t.n_control;
  }
  table_.release(i);
}

void Worker::set_state(Conn& c, uint8_t state) {
  if (c.real != NIL && !(c.flags & CF_TEMPLATE)) {
    const bool active = tcp::is_active(state);
    const bool was_active = !(c.flags & CF_INACTIVE);
    if (active != was_active) {
      uint64_t* rc = real_ctr(c.real);
      drop_one(rc + (was_active ? SC_ACTIVE : SC_INACTIVE));
      bump(rc + (active ? SC_ACTIVE : SC_INACTIVE));
      if (sched_counted(c)) {
        drop_one(rc + (was_active ? SC_SCHED_ACTIVE : SC_SCHED_INACTIVE));
        bump(rc + (active ? SC_SCHED_ACTIVE : SC_SCHED_INACTIVE));
      }
      c.flags = uint16_t(active ? c.flags & ~CF_INACTIVE : c.flags | CF_INACTIVE);
    }
  }
  // A controlled connection that completes its handshake assures its template (IPVS ASSURED).
  if (state == S_ESTABLISHED && c.control != NIL) table_.at(c.control).flags |= CF_ASSURED;
  c.state = state;
  c.timeout_ms = snap_->timeout_ms[state];
}

void Worker::touch(Conn& c) {
  ++c.in_pkts;
  c.expires = now_ + c.timeout_ms;
  if (c.flags & CF_EMBRYONIC) {
    const bool still = c.proto == PROTO_TCP ? tcp::is_embryonic(c.state)
                                            : !(c.flags & CF_REPLIED) && c.in_pkts < 2;
    if (!still) table_.embryonic_remove(uint32_t(&c - &table_.at(0)));
  }
}

// ---------------------------------------------------------------------------------------------
// The packet path

Verdict Worker::process(Packet& p, PacketView& pv, ParseStatus st, uint64_t hash) {
  if (st == ParseStatus::Ok) return pv.icmp_error ? handle_icmp(p, pv) : handle(p, pv, hash);
  if (st == ParseStatus::NotIp || st == ParseStatus::Unhandled) return Verdict::Pass;
  count(Counter(C_DROP_PARSE_BASE + uint32_t(st)));
  return Verdict::Drop;
}

Verdict Worker::handle(Packet& p, PacketView& pv, uint64_t h) {
  // 1. A packet of a known connection, client -> VIP (h: the hash of its source endpoint).
  uint32_t ci = table_.find_in(h, pv.proto, pv.af, pv.src, pv.sport, pv.dst, pv.dport, false);
  if (ci != NIL) {
    Conn& c = table_.at(ci);
    const bool syn = pv.proto == PROTO_TCP && is_new_syn(pv.tcp_flags);
    const bool nodest = snap_->options & OPT_EXPIRE_NODEST_CONN;
    const RealCfg* r = snap_->real(c.real);
    if (c.expires <= now_) {
      if (expire(ci)) ci = NIL;
    } else if (nodest && (!r || (syn && r->weight == 0))) {
      // expire_nodest_conn: a connection whose real is gone ends with its next packet, which
      // (as a SYN, or UDP) starts a new one; a new SYN to a quiesced real is rescheduled.
      destroy(ci);
      count(C_CONN_EXPIRED);
      ci = NIL;
    } else if (syn && c.n_control == 0 && (c.state == S_TIME_WAIT || c.state == S_CLOSE)) {
      // conn_reuse_mode 1: a new SYN on a closing connection is a new connection.
      destroy(ci);
      count(C_CONN_REUSED);
      ci = NIL;
    }
    if (ci != NIL) {
      const uint8_t old_state = c.state;
      if (pv.proto == PROTO_TCP) {
        const tcp::Dir dir = (c.flags & CF_NOOUTPUT) ? tcp::DIR_INPUT_ONLY : tcp::DIR_INPUT;
        set_state(c, tcp::next_state(dir, pv.tcp_flags, c.state));
      }
      touch(c);
      if (sync_master_) sync_packet(c, old_state, false);
      return to_real(p, pv, c, false);
    }
  }
  // 2. A new connection to a virtual service: classify (firewall marks), then look it up.
  const uint32_t mark = snap_->marks.empty() ? 0 : snap_->classify(pv.af, pv.proto, pv.src, pv.dst, pv.dport);
  const uint32_t svc = snap_->find_service(mark, pv.proto, pv.af, pv.dst, pv.dport);
  if (svc != NIL) return new_conn(p, pv, svc, h);
  // 3. A NAT reply, real -> client.
  const uint64_t h2 = table_.hash(pv.proto, pv.af, pv.dst, pv.dport);
  ci = table_.find_out(h2, pv.proto, pv.af, pv.dst, pv.dport, pv.src, pv.sport);
  if (ci != NIL) {
    Conn& c = table_.at(ci);
    if (c.expires <= now_) {
      expire(ci);
    } else if (c.fwd == FWD_NAT) {
      const uint8_t old_state = c.state;
      if (pv.proto == PROTO_TCP) {
        c.flags &= ~CF_NOOUTPUT;
        set_state(c, tcp::next_state(tcp::DIR_OUTPUT, pv.tcp_flags, c.state));
      } else if (c.control != NIL) {
        table_.at(c.control).flags |= CF_ASSURED;  // a UDP reply assures the template
      }
      c.flags |= CF_REPLIED;
      touch(c);
      if (sync_master_) sync_packet(c, old_state, false);
      return to_client(p, pv, c, false);
    }
  }
  return Verdict::Pass;
}

Verdict Worker::handle_icmp(Packet& p, PacketView& pv) {
  const Quoted& q = pv.inner;
  // An error about a VIP -> client packet, on its way to the VIP: relay it to the real.
  const uint64_t h = table_.hash(q.proto, q.af, q.dst, q.dport);
  uint32_t ci = table_.find_in(h, q.proto, q.af, q.dst, q.dport, q.src, q.sport, false);
  if (ci != NIL && table_.at(ci).expires > now_) return to_real(p, pv, table_.at(ci), true);
  // An error about a client -> real packet, from the real's side: relay it to the client.
  const uint64_t h2 = table_.hash(q.proto, q.af, q.src, q.sport);
  ci = table_.find_out(h2, q.proto, q.af, q.src, q.sport, q.dst, q.dport);
  if (ci != NIL && table_.at(ci).fwd == FWD_NAT && table_.at(ci).expires > now_)
    return to_client(p, pv, table_.at(ci), true);
  return Verdict::Pass;
}

// A new connection entry for `pv`, bound to `real`, linked and counted; NIL when the table is
// full even after eviction.
uint32_t Worker::new_entry(const Packet& p, const PacketView& pv, uint32_t svc_slot, uint32_t real, uint16_t dport) {
  const uint32_t i = alloc_conn();
  if (i == NIL) return NIL;
  const ServiceCfg& svc = snap_->services[svc_slot];
  const RealCfg& r = snap_->reals[real];
  Conn& c = table_.at(i);
  c.proto = pv.proto;
  c.af = pv.af;
  c.daf = r.af;
  c.caddr = pv.src;
  c.cport = pv.sport;
  c.vaddr = pv.dst;
  c.vport = pv.dport;
  c.daddr = r.addr;
  c.dport = dport;
  c.svc = svc_slot;
  c.real = real;
  c.fwmark = svc.fwmark;
  c.fwd = r.fwd;
  c.lc_epoch = svc.lc_epoch;
  c.flags |= CF_INACTIVE | (r.fwd != FWD_NAT ? CF_NOOUTPUT : 0);
  c.state = S_NONE;
  std::memcpy(c.client_mac.b, p.data + 6, 6);  // replies go back where the client's came from
  c.client_iface = p.iface;
  table_.link(i, table_.hash(pv.proto, pv.af, pv.src, pv.sport));
  table_.embryonic_push(i);
  bind(c);
  bump(real_ctr(real) + SC_CONNS);
  bump(svc_ctr(svc_slot) + SC_CONNS);
  count(C_CONN_CREATED);
  return i;
}

Verdict Worker::new_conn(Packet& p, PacketView& pv, uint32_t svc_slot, uint64_t h) {
  (void)h;
  if (pv.proto == PROTO_TCP && ((pv.tcp_flags & (TCP_SYN | TCP_RST)) != TCP_SYN)) {
    count(C_PASS_NO_CONN);  // IPVS schedules only on SYN; the kernel answers the rest (RST)
    return Verdict::Pass;
  }
  const ServiceCfg& svc = snap_->services[svc_slot];
  uint32_t ci;
  if (svc.persistent()) {
    ci = new_persistent(p, pv, svc_slot, h);
    if (ci == NIL) return Verdict::Drop;
  } else {
    Scheduler* sched = sched_[svc_slot].sched.get();
    const SchedEnv env{*snap_, loads_, now_, rng_};
    const uint32_t rs = sched ? sched->schedule(env, svc, pv) : NIL;
    if (rs == NIL) {
      count(C_DROP_NO_DEST);
      send_icmp(p, pv, pv.af == AF_V4 ? 3 : 1, pv.af == AF_V4 ? 3 : 4, 0);  // port unreachable
      return Verdict::Drop;
    }
    const uint16_t rport = snap_->reals[rs].port;
    // ip_vs_schedule: the real's port, or (firewall-mark reals with port 0) the client's.
    ci = new_entry(p, pv, svc_slot, rs, rport ? rport : pv.dport);
    if (ci == NIL) {
      count(C_DROP_TABLE_FULL);
      return Verdict::Drop;
    }
  }
  Conn& c = table_.at(ci);
  if (pv.proto == PROTO_TCP) {
    const tcp::Dir dir = (c.flags & CF_NOOUTPUT) ? tcp::DIR_INPUT_ONLY : tcp::DIR_INPUT;
    set_state(c, tcp::next_state(dir, pv.tcp_flags, S_NONE));
  } else {
    set_state(c, S_UDP);
  }
  touch(c);
  if (sync_master_) sync_packet(c, S_NONE, true);
  return to_real(p, pv, c, false);
}

// ip_vs_check_template: a template still binds when its real is there and (with
// expire_quiescent_template) not quiesced. Otherwise it is made unmatchable (vport/dport 0xffff,
// as IPVS rehashes it) and left to expire; its connections keep running.
bool Worker::template_valid(Conn& t) {
  const RealCfg* r = snap_->real(t.real);
  if (r && r->svc == t.svc && !((snap_->options & OPT_EXPIRE_QUIESCENT_TEMPLATE) && r->weight == 0)) return true;
  t.vport = t.dport = 0xffff;
  return false;
}

// ip_vs_sched_persist: find (or make) the client's template, then the connection under it.
// Returns the connection, or NIL after counting why there is none.
uint32_t Worker::new_persistent(Packet& p, PacketView& pv, uint32_t svc_slot, uint64_t h) {
  (void)h;
  const ServiceCfg& svc = snap_->services[svc_slot];
  const TemplateKey key = template_key(svc, pv.proto, pv.src, pv.dst, pv.dport);
  const Addr& snet = key.caddr;
  const uint8_t tproto = key.proto;
  const Addr& tvaddr = key.vaddr;
  const uint16_t tvport = key.vport;
  const uint64_t th = table_.hash(tproto, pv.af, snet, 0);
  uint32_t ti = table_.find_in(th, tproto, pv.af, snet, 0, tvaddr, tvport, true);
  if (ti != NIL) {
    Conn& t = table_.at(ti);
    if (t.expires <= now_ && t.n_control == 0) {
      expire(ti);
      ti = NIL;
    } else if (!template_valid(t)) {
      ti = NIL;
    }
  }
  if (ti == NIL) {
    Scheduler* sched = sched_[svc_slot].sched.get();
    const SchedEnv env{*snap_, loads_, now_, rng_};
    const uint32_t rs = sched ? sched->schedule(env, svc, pv) : NIL;
    if (rs == NIL) {
      count(C_DROP_NO_DEST);
      send_icmp(p, pv, pv.af == AF_V4 ? 3 : 1, pv.af == AF_V4 ? 3 : 4, 0);
      return NIL;
    }
    ti = alloc_conn();
    if (ti == NIL) {
      count(C_DROP_TABLE_FULL);
      return NIL;
    }
    const RealCfg& r = snap_->reals[rs];
    Conn& t = table_.at(ti);
    t.proto = tproto;
    t.af = pv.af;
    t.daf = r.af;
    t.caddr = snet;
    t.vaddr = tvaddr;
    t.vport = tvport;
    t.daddr = r.addr;
    t.dport = pv.dport == svc.port && svc.port != kFtpPort ? r.port : 0;
    t.svc = svc_slot;
    t.real = rs;
    t.fwmark = svc.fwmark;
    t.fwd = r.fwd;
    t.lc_epoch = svc.lc_epoch;
    t.flags |= CF_TEMPLATE | CF_INACTIVE;
    t.state = S_NONE;
    t.timeout_ms = uint32_t(std::min<uint64_t>(uint64_t(svc.persist_s) * 1000, 0xffffffffu));
    t.expires = now_ + t.timeout_ms;  // before anything else may sweep it
    table_.link(ti, th);
    bind(t);
  }
  const uint32_t rs = table_.at(ti).real;
  // The connection: the client's own destination port, unless it is the service's port and the
  // real has one (persistent firewall-mark and port-0 services keep the client's port).
  uint16_t dport = pv.dport;
  if (dport == svc.port && snap_->reals[rs].port) dport = snap_->reals[rs].port;
  const uint32_t ci = new_entry(p, pv, svc_slot, rs, dport);
  if (ci == NIL) {
    count(C_DROP_TABLE_FULL);
    return NIL;
  }
  Conn& t = table_.at(ti);
  Conn& c = table_.at(ci);
  c.control = ti;
  ++t.n_control;
  t.expires = now_ + t.timeout_ms;  // every new connection restarts the template's timer
  // Sync: a new template at once (sync_due: never exported), a re-armed one every half timeout.
  if (sync_master_ && sync_due(t)) sync_export(t);
  return ci;
}

// ---------------------------------------------------------------------------------------------
// Forwarding

Verdict Worker::to_real(Packet& p, PacketView& pv, Conn& c, bool icmp) {
  const RealCfg* r = snap_->real(c.real);
  if (!r) {
    count(C_DROP_DEST_GONE);  // expire_nodest_conn = 0: wait for the entry to time out
    return Verdict::Drop;
  }
  bump(svc_ctr(c.svc) + SC_INPKTS);
  bump(svc_ctr(c.svc) + SC_INBYTES, pv.ip_len);
  bump(real_ctr(c.real) + SC_INPKTS);
  bump(real_ctr(c.real) + SC_INBYTES, pv.ip_len);

  const InterfaceCfg* ifc = snap_->iface(r->iface);
  if (!ifc) {
    count(C_DROP_NO_IFACE);
    return Verdict::Drop;
  }
  if (r->mac.is_zero()) {
    neighbour_miss(c.real, *r);
    count(C_DROP_NO_NEIGHBOUR);
    return Verdict::Drop;
  }
  if (pv.ttl <= 1) {
    time_exceeded(p, pv);
    return Verdict::Drop;
  }
  const bool tunnel = c.fwd == FWD_TUNNEL;
  const uint32_t overhead = tunnel ? (r->af == AF_V4 ? 20 : 40) : 0;
  const bool needs_frag = pv.ip_len + overhead > ifc->mtu;
  if (needs_frag && (pv.af != AF_V4 || pv.df)) {
    too_big(p, pv, ifc->mtu - overhead);
    return Verdict::Drop;
  }
  rw::dec_ttl(p.data, pv);
  if (c.fwd == FWD_NAT) {
    if (icmp) rw::nat_icmp(p.data, pv, true, c.daddr, c.dport);
    else rw::nat(p.data, pv, true, c.daddr, c.dport);
  }
  if (needs_frag) return fragment(p, pv, ifc->mtu - overhead, *ifc, r->iface, r->mac, tunnel ? r : nullptr);
  if (tunnel) return encapsulate(p, pv.l3, pv.ip_len, *ifc, *r);
  return transmit(p, pv.l3, pv.ip_len, *ifc, r->iface, r->mac, ethertype(pv.af));
}

Verdict Worker::to_client(Packet& p, PacketView& pv, Conn& c, bool icmp) {
  bump(svc_ctr(c.svc) + SC_OUTPKTS);
  bump(svc_ctr(c.svc) + SC_OUTBYTES, pv.ip_len);
  if (c.real != NIL) {
    bump(real_ctr(c.real) + SC_OUTPKTS);
    bump(real_ctr(c.real) + SC_OUTBYTES, pv.ip_len);
  }
  const InterfaceCfg* ifc = snap_->iface(c.client_iface);
  if (!ifc) {
    count(C_DROP_NO_IFACE);
    return Verdict::Drop;
  }
  if (pv.ttl <= 1) {
    time_exceeded(p, pv);
    return Verdict::Drop;
  }
  const bool needs_frag = pv.ip_len > ifc->mtu;
  if (needs_frag && (pv.af != AF_V4 || pv.df)) {
    too_big(p, pv, ifc->mtu);
    return Verdict::Drop;
  }
  rw::dec_ttl(p.data, pv);
  if (icmp) rw::nat_icmp(p.data, pv, false, c.vaddr, c.vport);
  else rw::nat(p.data, pv, false, c.vaddr, c.vport);
  if (needs_frag) return fragment(p, pv, ifc->mtu, *ifc, c.client_iface, c.client_mac, nullptr);
  return transmit(p, pv.l3, pv.ip_len, *ifc, c.client_iface, c.client_mac, ethertype(pv.af));
}

// Put an Ethernet header in front of the IP packet at offset l3 (which may be negative: an
// outer header already written into the headroom) and hand the frame to the port.
Verdict Worker::transmit(Packet& p, int32_t l3, uint32_t ip_len, const InterfaceCfg& ifc,
                         uint16_t iface, const Mac& dst, uint16_t type) {
  const int64_t start = int64_t(l3) - rw::eth_len(ifc.vlan);
  if (start < -int64_t(p.headroom)) {
    count(C_DROP_NO_ROOM);
    return Verdict::Drop;
  }
  uint8_t* const end_of_room = p.data + p.len + p.tailroom;
  uint8_t* s = p.data + start;
  rw::write_eth(s, dst, ifc.mac, ifc.vlan, type);
  p.headroom = uint32_t(int64_t(p.headroom) + start);
  p.data = s;
  p.len = rw::eth_len(ifc.vlan) + ip_len;
  p.tailroom = uint32_t(end_of_room - (p.data + p.len));
  p.iface = iface;
  count(C_TX_PACKETS);
  count(C_TX_BYTES, p.len);
  return Verdict::Tx;
}

Verdict Worker::encapsulate(Packet& p, uint32_t l3, uint32_t ip_len, const InterfaceCfg& ifc,
                            const RealCfg& r) {
  const uint32_t outer = r.af == AF_V4 ? 20 : 40;
  if (int64_t(l3) - outer - rw::eth_len(ifc.vlan) < -int64_t(p.headroom)) {
    count(C_DROP_NO_ROOM);
    return Verdict::Drop;
  }
  if ((r.af == AF_V4 && !ifc.has_v4) || (r.af == AF_V6 && !ifc.has_v6)) {
    count(C_DROP_NO_IFACE);  // no source address for the outer header
    return Verdict::Drop;
  }
  const uint8_t* inner = p.data + l3;
  const bool inner_v4 = (inner[0] >> 4) == 4;
  const uint8_t tos = rw::ecn_encap(rw::ip_tos(inner));
  const uint8_t ttl = inner_v4 ? inner[8] : inner[7];
  const uint8_t nh = inner_v4 ? PROTO_IPIP : PROTO_IPV6;
  uint8_t* o = p.data + int64_t(l3) - outer;
  if (r.af == AF_V4) {
    const bool df = inner_v4 ? (load16(inner + 6) & 0x4000) != 0 : true;
    rw::write_ipv4(o, outer + ip_len, tos, ++ip_id_, df, ttl, nh, ifc.v4, r.addr);
  } else {
    // Flow label from the inner addresses and ports, so ECMP on the way keeps a flow together.
    uint32_t flow = 0;
    for (uint32_t k = 0; k < (inner_v4 ? 24u : 44u) && k + 4 <= ip_len; k += 4) flow = flow * 31 + load32(inner + k);
    rw::write_ipv6(o, ip_len, tos, flow ^ (flow >> 12), nh, ttl, ifc.v6, r.addr);
  }
  return transmit(p, int32_t(l3) - int32_t(outer), outer + ip_len, ifc, r.iface, r.mac,
                  r.af == AF_V4 ? ETH_P_IPV4 : ETH_P_IPV6);
}

Verdict Worker::fragment(Packet& p, const PacketView& pv, uint32_t mtu, const InterfaceCfg& ifc,
                         uint16_t iface, const Mac& dst, const RealCfg* tunnel) {
  rw::FragmentPlan plan;
  const uint8_t* ip = p.data + pv.l3;
  if (!rw::plan_fragments(ip, pv.ip_len, mtu, plan)) {
    count(C_DROP_TOO_BIG);
    return Verdict::Drop;
  }
  for (uint32_t k = 0; k < plan.count; ++k) {
    Packet* f = generated();
    if (!f) {
      count(C_DROP_TX_FULL);
      return Verdict::Drop;
    }
    const uint32_t len = rw::write_fragment(ip, plan, k, f->data);
    f->len = len;
    f->tailroom -= len;
    f->verdict = tunnel ? encapsulate(*f, 0, len, ifc, *tunnel) : transmit(*f, 0, len, ifc, iface, dst, ETH_P_IPV4);
    count(C_FRAGMENTS_SENT);
  }
  return Verdict::Drop;  // the original is consumed by its fragments, not a loss
}

// ---------------------------------------------------------------------------------------------
// ICMP errors we originate

Packet* Worker::generated() {
  if (gen_n_ == kMaxGenerated || !port_->allocate(gen_[gen_n_])) return nullptr;
  return &gen_[gen_n_++];
}

bool Worker::icmp_token() {
  if (now_ > icmp_refill_) {
    icmp_tokens_ = std::min<uint64_t>(kIcmpBurst, icmp_tokens_ + (now_ - icmp_refill_));
    icmp_refill_ = now_;
  }
  if (!icmp_tokens_) return false;
  --icmp_tokens_;
  return true;
}

void Worker::send_icmp(const Packet& orig, const PacketView& pv, uint8_t type, uint8_t code, uint32_t info) {
  if (pv.icmp_error) return;  // never an error about an error (RFC 1122 3.2.2)
  if (!icmp_token()) {
    count(C_ICMP_RATELIMITED);
    return;
  }
  const InterfaceCfg* ifc = snap_->iface(orig.iface);
  Addr src = pv.dst;  // fall back to the address the packet was sent to (the VIP)
  if (ifc && pv.af == AF_V4 && ifc->has_v4) src = ifc->v4;
  if (ifc && pv.af == AF_V6 && ifc->has_v6) src = ifc->v6;
  Mac mac;
  if (ifc) mac = ifc->mac; else std::memcpy(mac.b, orig.data, 6);
  const uint16_t vlan = ifc ? ifc->vlan : (pv.has_vlan ? pv.vlan_tci & 0x0fff : 0);
  Packet* g = generated();
  if (!g) {
    count(C_DROP_TX_FULL);
    return;
  }
  const uint32_t len = rw::build_icmp_error(g->data, g->tailroom, orig.data, pv, type, code, info,
                                            src, mac, vlan, ++ip_id_);
  if (!len) {
    g->verdict = Verdict::Drop;  // not allowed (multicast source, ...): just return the buffer
    return;
  }
  g->len = len;
  g->tailroom -= len;
  g->iface = orig.iface;
  g->verdict = Verdict::Tx;
  count(C_ICMP_SENT);
  count(C_TX_PACKETS);
  count(C_TX_BYTES, len);
}

void Worker::too_big(const Packet& orig, const PacketView& pv, uint32_t mtu) {
  count(C_DROP_TOO_BIG);
  if (pv.af == AF_V4) send_icmp(orig, pv, 3, 4, mtu);  // fragmentation needed
  else send_icmp(orig, pv, 2, 0, std::max<uint32_t>(mtu, 1280));  // packet too big
}

void Worker::time_exceeded(const Packet& orig, const PacketView& pv) {
  count(C_DROP_TTL_EXCEEDED);
  send_icmp(orig, pv, pv.af == AF_V4 ? 11 : 3, 0, 0);
}

void Worker::neighbour_miss(uint32_t real, const RealCfg& r) {
  uint64_t& last = neigh_miss_at_[real];
  if (last && now_ - last < kNeighMissEveryMs) return;
  last = now_ ? now_ : 1;
  uint32_t p[6] = {r.iface, r.af, load32(r.addr.b), load32(r.addr.b + 4), load32(r.addr.b + 8),
                   load32(r.addr.b + 12)};
  events_.emit(EV_NEIGH_MISS, p, 6);
}

}  // namespace lvsd
