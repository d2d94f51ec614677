// The control side of the dataplane: consumes the command ring, keeps the configuration being
// built, publishes immutable snapshots on commit, frees old ones once every worker has moved
// on (epochs), and releases slots of deleted services/reals once no connection uses them.
#pragma once
#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>
#include "control/snapshot.hpp"
#include "engine/shared.hpp"

namespace lvsd {

class Control {
 public:
  // IP_VS_DEST_TRASH_PERIOD: a deleted real stays revivable (connections, counters, weight
  // memory) until it has been idle this long.
  static constexpr uint64_t kTrashPeriodMs = 120'000;

  Control(const Shared& shared, Clock clock, RealFlags& flags, std::vector<WorkerSync>& workers,
          EventSink events, std::function<void()> wake_workers);
  ~Control();

  // Drain the command ring and do the periodic work. True when a command was consumed.
  bool step();
  // Events are waiting for JavaScript to make room in the ring.
  // Or sync records are waiting for room in a worker's inbox.
  bool backlogged() const { return events_.backlogged() || imports_pending_; }
  const Snapshot* current() const { return current_.load(std::memory_order_seq_cst); }

 private:
  struct Drain {
    uint32_t slot;
    uint32_t svc;             // for reals: the service it belonged to
    uint64_t gen;             // first generation without it (0 = not committed yet)
    uint64_t idle_since = 0;  // reals: when it was first seen without connections (0: not yet)
  };

  void apply(const uint32_t* msg);
  void reject(uint32_t op, uint32_t code);
  void commit(uint64_t gen);
  void delete_real(uint32_t slot);
  void log_wrr(ServiceCfg& s, bool init);
  void delete_service(uint32_t slot);
  void reclaim();
  void release_drained();
  bool workers_past(uint64_t gen) const;
  uint64_t real_refs(uint32_t slot) const;
  void zero_counters(bool service, uint32_t slot);
  void forward_imports();

  const Shared& shared_;
  Clock clock_;
  RealFlags& flags_;
  std::vector<WorkerSync>& workers_;
  Ring commands_;
  EventSink events_;
  std::function<void()> wake_workers_;
  Snapshot builder_;
  std::atomic<const Snapshot*> current_;
  std::vector<const Snapshot*> retired_;
  std::vector<Drain> drain_reals_, drain_services_;
  // Tables being received in chunks for the next commit, by (service slot << 2 | kind).
  std::unordered_map<uint64_t, std::shared_ptr<std::vector<uint32_t>>> staging_;
  uint32_t next_version_ = 1;
  uint64_t next_wrr_seq_ = 1;
  uint64_t applied_gen_ = 0;
  bool has_commit_ = false;   // the current burst holds a commit...
  uint32_t last_commit_ = 0;  // ...and this is the ring index just past the last one  // newest generation published and not yet announced
  bool reported_corrupt_ = false;
  // Sync records received and not yet in a worker's inbox, per worker (a chunk is shared by
  // all workers). Handed on at the end of a step, after the step's commits are published, so
  // a worker looks them up in a snapshot at least as new as the commands before them.
  std::vector<std::deque<std::shared_ptr<const std::vector<uint32_t>>>> imports_;
  bool imports_pending_ = false;
};

}  // namespace lvsd
