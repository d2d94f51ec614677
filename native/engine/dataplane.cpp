#include "engine/dataplane.hpp"
#include <chrono>
#include <random>
#include <stdexcept>

namespace lvsd {

Dataplane::Dataplane(const DataplaneOptions& opts, uint8_t* region, uint64_t region_bytes, Notifier* notifier)
    : opts_(opts), shared_(region, Layout::compute(opts.layout)), flags_(opts.layout.max_reals),
      sync_(opts.layout.workers) {
  if (region_bytes < shared_.layout().total) throw std::invalid_argument("shared region too small");
  if (opts.layout.workers == 0) throw std::invalid_argument("at least one worker");
  // Each worker's sync inbox is as large as the command ring, so any import message fits.
  const uint32_t inbox_words = shared_.layout().command_ring_words;
  for (auto& ws : sync_) {
    ws.inbox_memory = std::make_unique<uint32_t[]>(Ring::bytes_for(inbox_words) / 4);  // zeroed
    ws.inbox = Ring(ws.inbox_memory.get(), inbox_words);
  }
  uint32_t* notify = shared_.notify_word();
  const Clock clock(&shared_, opts.manual_clock);
  control_ = std::make_unique<Control>(
      shared_, clock, flags_, sync_, EventSink(shared_.event_ring(0), notify, notifier, shared_.globals(0) + C_EVENTS_LOST),
      [this] {
        for (uint32_t w = 0; w < port_of_.size(); ++w) wake_worker(w);
      });
  std::random_device rd;
  uint64_t seed = opts.seed ? opts.seed : (uint64_t(rd()) << 32 | rd());
  for (uint32_t w = 0; w < opts.layout.workers; ++w) {
    switch (opts.io.kind) {
      case IoKind::Memory:
        memory_.push_back(std::make_unique<MemoryPort>(opts.memory_slots));
        port_of_.push_back(memory_.back().get());
        break;
      case IoKind::Xdp:
        ports_.push_back(make_xsk_port(opts.io, w));
        port_of_.push_back(ports_.back().get());
        break;
      case IoKind::Packet:
        ports_.push_back(make_packet_port(opts.io, w));
        port_of_.push_back(ports_.back().get());
        break;
    }
    worker_wakers_.push_back(std::make_unique<Waker>());
    auto worker = std::make_unique<Worker>(
        w, shared_, flags_, sync_[w], *control_, clock,
        EventSink(shared_.event_ring(1 + w), notify, notifier, shared_.globals(w) + C_EVENTS_LOST),
        opts.conn_capacity, seed + w * 0x9e3779b97f4a7c15ull);
    worker->set_port(port_of_[w]);
    workers_.push_back(std::move(worker));
  }
}

Dataplane::~Dataplane() { stop(); }

MemoryPort& Dataplane::memory(uint32_t w) {
  if (opts_.io.kind != IoKind::Memory || w >= memory_.size())
    throw std::logic_error("frames can be injected only with the memory backend");
  return *memory_[w];
}

void Dataplane::start() {
  if (!opts_.threaded || started_) return;
  started_ = true;
  threads_.emplace_back([this] { control_loop(); });
  for (uint32_t w = 0; w < workers_.size(); ++w) threads_.emplace_back([this, w] { worker_loop(w); });
}

void Dataplane::stop() {
  if (!started_) return;
  stopping_.store(true);
  control_waker_.wake();
  for (auto& w : worker_wakers_) w->wake();
  for (Port* p : port_of_) p->wake();
  for (auto& t : threads_) t.join();
  threads_.clear();
  started_ = false;
}

void Dataplane::control_loop() {
  Ring commands = shared_.command_ring();
  while (!stopping_.load(std::memory_order_relaxed)) {
    if (control_->step()) continue;
    // Announce that we may sleep, then look once more: the producer checks the flag after
    // publishing, so either it sees the flag and kicks us, or we see its message.
    commands.set_sleeping(true);
    // With events waiting for room in the ring, look again soon rather than in 50 ms.
    if (!commands.peek()) control_waker_.wait_ms(control_->backlogged() ? 1 : 50);
    commands.set_sleeping(false);
  }
}

void Dataplane::worker_loop(uint32_t w) {
  Worker& worker = *workers_[w];
  uint32_t idle = 0;
  while (!stopping_.load(std::memory_order_relaxed)) {
    if (worker.step() || worker.importing()) {
      idle = 0;
      continue;
    }
    if (++idle < 64) {
      std::this_thread::yield();
      continue;
    }
    worker.quiesce();
    // Housekeeping (expiry, dumps) still runs when idle: sleep at most 20 ms.
    if (!port_of_[w]->wait(20)) worker_wakers_[w]->wait_ms(20);
  }
  worker.quiesce();
}

void Dataplane::poll() {
  if (opts_.threaded) return;
  control_->step();
  for (;;) {
    for (auto& worker : workers_) {
      // Bounded: every step consumes at least one frame or the port is empty (and in manual
      // mode a step applies every sync record waiting).
      while (worker->step()) {
      }
    }
    control_->step();  // reclaim snapshots and release drained slots the workers just freed
    // Sync records the control step could hand on only now (an inbox was full): apply them
    // too, so one poll applies every import queued before it. Each round empties the inboxes.
    bool importing = false;
    for (auto& worker : workers_) importing |= worker->importing();
    if (!importing) break;
  }
}

ReplayResult Dataplane::replay(std::vector<ReplayPort::Frame> frames, uint64_t total, uint32_t w) {
  if (opts_.threaded) throw std::logic_error("replay needs manual mode");
  control_->step();
  ReplayPort port(frames, total);
  frames.clear();
  frames.shrink_to_fit();
  Worker& worker = *workers_.at(w);
  Port* saved = worker.port();
  worker.set_port(&port);
  const auto t0 = std::chrono::steady_clock::now();
  while (worker.step()) {
  }
  const auto t1 = std::chrono::steady_clock::now();
  worker.set_port(saved);
  ReplayResult r;
  r.packets = port.sent;
  r.tx = port.tx;
  r.pass = port.pass;
  r.drop = port.drop;
  r.tx_bytes = port.tx_bytes;
  r.ns = uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
  return r;
}

bool Dataplane::take_dump(uint32_t w, std::vector<uint8_t>& out) {
  if (w >= workers_.size() || !sync_[w].dump_ready.load(std::memory_order_acquire)) return false;
  out = workers_[w]->dump();
  workers_[w]->clear_dump();
  sync_[w].dump_ready.store(0, std::memory_order_release);
  return true;
}

size_t Dataplane::table_bytes() const {
  size_t total = 0;
  for (const auto& w : workers_) total += w->table().reserved_bytes();
  return total;
}

}  // namespace lvsd
