// The dataplane: one control step (commands -> snapshots) and N workers, each with its own
// connection table and port. Threaded mode runs them on native threads; manual mode runs
// them on the caller's thread in poll() (deterministic tests, the fuzzer, benchmarks).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>
#include "control/control.hpp"
#include "engine/shared.hpp"
#include "engine/worker.hpp"
#include "io/io.hpp"
#include "io/memory.hpp"

namespace lvsd {

struct DataplaneOptions {
  LayoutOptions layout;
  uint32_t conn_capacity = 1u << 18;
  bool threaded = true;
  bool manual_clock = false;
  uint32_t memory_slots = 1024;
  uint64_t seed = 0;  // 0: random
  IoOptions io;       // Memory unless a real backend is asked for
};

// Sleep until woken or a timeout; wake() before wait() is not lost.
class Waker {
 public:
  void wake() {
    {
      std::lock_guard<std::mutex> g(m_);
      pending_ = true;
    }
    cv_.notify_one();
  }
  void wait_ms(uint32_t ms) {
    std::unique_lock<std::mutex> g(m_);
    cv_.wait_for(g, std::chrono::milliseconds(ms), [&] { return pending_; });
    pending_ = false;
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  bool pending_ = false;
};

struct ReplayResult {
  uint64_t packets = 0, tx = 0, pass = 0, drop = 0, tx_bytes = 0, ns = 0;
};

class Dataplane {
 public:
  Dataplane(const DataplaneOptions& opts, uint8_t* region, uint64_t region_bytes, Notifier* notifier);
  ~Dataplane();
  Dataplane(const Dataplane&) = delete;
  Dataplane& operator=(const Dataplane&) = delete;

  const Layout& layout() const { return shared_.layout(); }
  uint32_t workers() const { return uint32_t(workers_.size()); }
  bool threaded() const { return opts_.threaded; }

  void start();  // threaded mode: spawn the control thread and the workers
  void stop();   // join every thread (idempotent)
  // Manual mode: apply pending commands, then let every worker run until its input is empty.
  void poll();
  // A command was queued and the control thread may be asleep.
  void kick() { control_waker_.wake(); }
  void wake_worker(uint32_t w) {
    worker_wakers_[w]->wake();
    port_of_[w]->wake();
  }

  // The memory backend's port of worker `w` (throws with a real backend).
  MemoryPort& memory(uint32_t w);
  IoKind io_kind() const { return opts_.io.kind; }
  // The port of worker `w`: its kind and its own counters.
  const Port& port(uint32_t w) const { return *port_of_.at(w); }
  // Manual mode only: run `frames` through worker `w`, `total` packets in all.
  ReplayResult replay(std::vector<ReplayPort::Frame> frames, uint64_t total, uint32_t w);
  // A finished connection dump of worker `w`, or false if none is ready.
  bool take_dump(uint32_t w, std::vector<uint8_t>& out);
  size_t table_bytes() const;
  uint32_t table_capacity() const { return opts_.conn_capacity; }

 private:
  void control_loop();
  void worker_loop(uint32_t w);

  DataplaneOptions opts_;
  Shared shared_;
  RealFlags flags_;
  std::vector<WorkerSync> sync_;
  std::unique_ptr<Control> control_;
  std::vector<std::unique_ptr<MemoryPort>> memory_;
  std::vector<std::unique_ptr<Port>> ports_;  // real I/O; empty with the memory backend
  std::vector<Port*> port_of_;                // each worker's port, whichever backend
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::unique_ptr<Waker>> worker_wakers_;
  Waker control_waker_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};
  bool started_ = false;
};

}  // namespace lvsd
