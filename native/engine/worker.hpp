// A dataplane worker: owns a connection table and a port, and runs the packet path
//   rx batch -> parse -> conn lookup -> [miss: service lookup -> scheduler] -> rewrite -> tx batch
// picking up configuration snapshots at batch boundaries. No locks, no JavaScript.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>
#include "control/control.hpp"
#include "engine/counters.hpp"
#include "engine/shared.hpp"
#include "flow/conn_table.hpp"
#include "flow/sync_record.hpp"
#include "io/port.hpp"
#include "sched/scheduler.hpp"

namespace lvsd {

// One row of a connection dump (ipvsadm -L -n -c), little-endian, kDumpRecordBytes each.
//   0 u8 proto, 1 u8 af, 2 u8 daf, 3 u8 state, 4 u8 fwd, 5 u8 -, 6 u16 flags,
//   8 u16 cport, 10 u16 vport, 12 u16 dport, 14 u16 -, 16 u32 svc, 20 u32 real, 24 u32 fwmark,
//   28 u32 n_control, 32 u32 expires_in_ms, 36 u32 in_pkts, 40 caddr[16], 56 vaddr[16], 72 daddr[16]
inline constexpr uint32_t kDumpRecordBytes = 88;

class Worker {
 public:
  static constexpr uint32_t kBatch = 64;
  static constexpr uint32_t kMaxGenerated = 256;
  static constexpr uint64_t kSweepPeriodMs = 1000;  // every entry is visited once per period

  Worker(uint32_t id, const Shared& shared, RealFlags& flags, WorkerSync& sync, const Control& control,
         Clock clock, EventSink events, uint32_t conn_capacity, uint64_t seed);

  void set_port(Port* port) { port_ = port; }
  Port* port() const { return port_; }

  // One batch: returns the number of frames received.
  uint32_t step();
  // About to sleep: stop holding a snapshot so the control thread may free it.
  void quiesce();

  // Sync records are waiting in this worker's inbox (more than one batch's share).
  bool importing() { return !sync_.inbox.empty(); }

  ConnTable& table() { return table_; }
  const std::vector<uint8_t>& dump() const { return dump_; }
  void clear_dump() { dump_.clear(); dump_.shrink_to_fit(); }

 private:
  struct SchedEntry {
    std::unique_ptr<Scheduler> sched;
    uint8_t kind = 0;
    uint32_t version = 0;
    uint32_t lc_epoch = 0;
  };

  void begin_batch();
  void on_snapshot(const Snapshot* snap);
  void housekeeping();
  void sweep(uint32_t budget);
  void progress_dump();
  void progress_sync_dump();

  // Connection sync, export (OPT_SYNC_MASTER): records gather in sync_out_ and leave as one
  // EV_SYNC message per kSyncPerEvent records or per batch.
  static constexpr uint32_t kSyncPerEvent = 64;
  static constexpr uint32_t kSyncThreshold = 3;  // IPVS sync_threshold: packets 3, 53, 103...
  static constexpr uint32_t kSyncPeriod = 50;    // IPVS sync_period
  bool make_record(const Conn& c, SyncRecord& r) const;
  void sync_export(Conn& c);
  void sync_packet(Conn& c, uint8_t old_state, bool created);
  bool sync_due(const Conn& c) const;
  void flush_sync();
  // Connection sync, import.
  enum class Import : uint8_t { Created, Updated, Malformed, NoService, NoReal, Full };
  void drain_inbox();
  Import import_record(const uint8_t* p);
  uint32_t find_template(const ServiceCfg& svc, uint8_t proto, uint8_t af, const Addr& caddr,
                         const Addr& vaddr, uint16_t vport);

  Verdict process(Packet& p, PacketView& pv, ParseStatus st, uint64_t hash);
  Verdict handle(Packet& p, PacketView& pv, uint64_t hash);
  Verdict handle_icmp(Packet& p, PacketView& pv);
  Verdict new_conn(Packet& p, PacketView& pv, uint32_t svc, uint64_t hash);
  uint32_t new_persistent(Packet& p, PacketView& pv, uint32_t svc, uint64_t hash);
  Verdict to_real(Packet& p, PacketView& pv, Conn& c, bool icmp);
  Verdict to_client(Packet& p, PacketView& pv, Conn& c, bool icmp);
  Verdict transmit(Packet& p, int32_t l3, uint32_t ip_len, const InterfaceCfg& ifc, uint16_t iface,
                   const Mac& dst, uint16_t ethertype);
  Verdict encapsulate(Packet& p, uint32_t l3, uint32_t ip_len, const InterfaceCfg& ifc, const RealCfg& r);
  Verdict fragment(Packet& p, const PacketView& pv, uint32_t mtu, const InterfaceCfg& ifc,
                   uint16_t iface, const Mac& dst, const RealCfg* tunnel);
  void send_icmp(const Packet& orig, const PacketView& pv, uint8_t type, uint8_t code, uint32_t info);
  void too_big(const Packet& orig, const PacketView& pv, uint32_t mtu);
  void time_exceeded(const Packet& orig, const PacketView& pv);
  bool icmp_token();
  Packet* generated();

  // Connection lifecycle.
  uint32_t alloc_conn();
  bool expire(uint32_t i);  // false when it must live on (a template that still controls others)
  void destroy(uint32_t i);
  void bind(Conn& c);
  void unbind(Conn& c);
  bool sched_counted(const Conn& c) const;
  bool template_valid(Conn& t);
  uint32_t new_entry(const Packet& p, const PacketView& pv, uint32_t svc, uint32_t real, uint16_t dport);
  void set_state(Conn& c, uint8_t state);
  void touch(Conn& c);
  void neighbour_miss(uint32_t real, const RealCfg& r);

  void count(Counter c, uint64_t v = 1) { bump(globals_ + c, v); }
  uint64_t* real_ctr(uint32_t slot) { return shared_.real_counters(id_, slot); }
  uint64_t* svc_ctr(uint32_t slot) { return shared_.service_counters(id_, slot); }

  uint32_t id_;
  const Shared& shared_;
  RealFlags& flags_;
  WorkerSync& sync_;
  const Control& control_;
  Clock clock_;
  EventSink events_;
  ConnTable table_;
  Port* port_ = nullptr;
  uint64_t* globals_;
  LoadView loads_;
  Rng rng_;

  const Snapshot* snap_ = nullptr;
  bool quiescent_ = true;
  uint64_t now_ = 0;
  std::vector<SchedEntry> sched_;

  Packet gen_[kMaxGenerated];
  uint32_t gen_n_ = 0;
  uint16_t ip_id_ = 0;
  uint64_t icmp_tokens_ = 50, icmp_refill_ = 0;
  std::vector<uint64_t> neigh_miss_at_;  // per real slot: last miss reported (ms)

  uint32_t sweep_cursor_ = 0;
  std::vector<uint32_t> deferred_;  // templates a sweep looks at after the rest of its pass
  uint64_t last_sweep_ = 0;

  std::vector<uint8_t> dump_;
  uint32_t dump_cursor_ = 0;
  uint32_t dump_request_ = 0;
  uint32_t dump_format_ = 0;
  bool dump_templates_done_ = false;  // sync dumps: the template pass is over

  bool sync_master_ = false;
  std::vector<uint32_t> sync_out_;
  std::vector<uint32_t> sync_idx_;  // the entry of each record in sync_out_
  uint32_t sync_out_n_ = 0;
};

}  // namespace lvsd
