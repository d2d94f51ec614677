// The AF_XDP port: one UMEM per worker, shared (XDP_SHARED_UMEM) by a socket on every receive
// queue the worker serves (queue q of each interface where q % workers == worker), so a frame
// received on one interface leaves on another from the same buffer, without a copy.
//
// Frames: 4096 bytes each. The kernel writes a received packet XDP_PACKET_HEADROOM (256) bytes
// into its frame, which leaves the dataplane room to prepend tunnel headers; frames the
// dataplane builds (allocate()) start at the same offset.
//
// Every UMEM frame is in exactly one place: the free list, a fill ring or the kernel's receive
// path (`posted`), the worker's hands (between receive()/allocate() and complete()), or a TX
// ring / the kernel's transmit path until its completion comes back (`in_flight`).
//
// An interface on which this worker has no socket that can transmit (fewer queues than
// workers, or its queue is receive-only) still needs a way out: frames for it are sent through
// an AF_PACKET socket (copied), and their frame goes back to the free list at once.
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_xdp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>
#include "io/bpf.hpp"
#include "io/io.hpp"
#include "io/netns.hpp"
#include "io/steer.hpp"

#ifndef AF_XDP
#define AF_XDP 44
#endif
#ifndef SOL_XDP
#define SOL_XDP 283
#endif

namespace lvsd {
namespace {

constexpr uint32_t kFrameSize = 4096;
constexpr uint32_t kHeadroom = XDP_PACKET_HEADROOM;  // where the kernel puts received data
constexpr uint32_t kMaxKicks = 16;                   // sendto() rounds per flush (32 frames each in copy mode)
constexpr int kBindRetries = 200;                    // x 10 ms: a just-released queue (see open_socket)

[[noreturn]] void fail(const std::string& what) { throw IoError("LVS_IO_INIT", errno, what); }

class Mapping {
 public:
  Mapping() = default;
  Mapping(void* p, size_t len) : p_(p), len_(len) {}
  ~Mapping() {
    if (p_ != MAP_FAILED && p_) ::munmap(p_, len_);
  }
  Mapping(Mapping&& o) noexcept : p_(o.p_), len_(o.len_) { o.p_ = nullptr; }
  Mapping& operator=(Mapping&& o) noexcept {
    if (this != &o) {
      if (p_ != MAP_FAILED && p_) ::munmap(p_, len_);
      p_ = o.p_;
      len_ = o.len_;
      o.p_ = nullptr;
    }
    return *this;
  }
  uint8_t* data() const { return static_cast<uint8_t*>(p_); }

 private:
  void* p_ = nullptr;
  size_t len_ = 0;
};

// One of a socket's four rings. Producer and consumer indexes are shared with the kernel.
struct Ring {
  uint32_t* producer = nullptr;
  uint32_t* consumer = nullptr;
  uint32_t* flags = nullptr;
  uint8_t* descs = nullptr;
  uint32_t size = 0;
  Mapping map;

  uint32_t mask() const { return size - 1; }
  static uint32_t load(uint32_t* p) { return std::atomic_ref<uint32_t>(*p).load(std::memory_order_acquire); }
  static void store(uint32_t* p, uint32_t v) { std::atomic_ref<uint32_t>(*p).store(v, std::memory_order_release); }
  bool needs_wakeup() const { return std::atomic_ref<uint32_t>(*flags).load(std::memory_order_relaxed) & XDP_RING_NEED_WAKEUP; }
  // Producer side (fill, tx): we own *producer.
  uint32_t free_slots() const { return size - (*producer - load(consumer)); }
  // Consumer side (rx, completion): we own *consumer.
  uint32_t available() const { return load(producer) - *consumer; }
  uint64_t& addr_at(uint32_t i) { return reinterpret_cast<uint64_t*>(descs)[i & mask()]; }
  xdp_desc& desc_at(uint32_t i) { return reinterpret_cast<xdp_desc*>(descs)[i & mask()]; }
};

struct Sock {
  Fd fd;
  uint16_t iface = 0;  // dataplane interface id
  uint32_t ifindex = 0, queue = 0, queues = 0;
  Ring rx, tx, fill, comp;
  uint32_t posted = 0;     // frames the kernel holds for receiving (fill ring and beyond)
  uint32_t in_flight = 0;  // frames on the TX ring or being sent
  bool tx_queued = false;  // descriptors published since the last kick
};

// Where frames for a dataplane interface leave.
struct Egress {
  int sock = -1;  // index into socks_, or -1: AF_PACKET
  Fd packet;      // AF_PACKET fallback
  bool known = false;
};

void map_ring(Ring& r, int fd, const xdp_ring_offset& off, uint32_t size, size_t desc_bytes, off_t pgoff,
              const char* what) {
  const size_t len = off.desc + size_t(size) * desc_bytes;
  void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, pgoff);
  if (p == MAP_FAILED) fail(std::string("mmap of the AF_XDP ") + what + " ring");
  r.map = Mapping(p, len);
  uint8_t* b = static_cast<uint8_t*>(p);
  r.producer = reinterpret_cast<uint32_t*>(b + off.producer);
  r.consumer = reinterpret_cast<uint32_t*>(b + off.consumer);
  r.flags = reinterpret_cast<uint32_t*>(b + off.flags);
  r.descs = b + off.desc;
  r.size = size;
}

void set_ring_size(int fd, int opt, uint32_t size, const char* what) {
  if (::setsockopt(fd, SOL_XDP, opt, &size, sizeof size) != 0) fail(std::string("setsockopt(SOL_XDP, ") + what + ")");
}

class XskPort final : public Port {
 public:
  XskPort(const IoOptions& opts, uint32_t worker, bool zero_copy) : zc_(zero_copy) {
    if (!opts.steering) throw IoError("LVS_IO_INIT", EINVAL, "AF_XDP needs the steering program");
    registry_ = opts.steering->registry();
    const uint32_t workers = std::max<uint32_t>(1, opts.workers);
    uint32_t frames = 64;
    while (frames < opts.frames && frames < (1u << 16)) frames <<= 1;
    ring_size_ = frames;

    NetnsScope scope = [&]() -> NetnsScope {
      try {
        return NetnsScope(opts.netns);
      } catch (const std::system_error& e) {
        throw IoError::wrap("LVS_NETNS", e);
      }
    }();

    // Which sockets: queue q of each interface, for q % workers == worker.
    struct Want {
      uint16_t iface;
      uint32_t ifindex, queue, queues;
    };
    std::vector<Want> want;
    uint16_t max_id = 0;
    for (const IoInterface& ifc : opts.ifaces) {
      for (const IoInterface& seen : names_)
        if (seen.ifindex == ifc.ifindex || seen.id == ifc.id)
          throw IoError("LVS_IO_INIT", EINVAL, "interface " + ifc.name + " (ifindex " + std::to_string(ifc.ifindex) +
                                                   ", id " + std::to_string(ifc.id) + ") is listed twice");
      max_id = std::max(max_id, ifc.id);
      bpf::Queues qs;
      try {
        qs = bpf::queues(ifc.ifindex);
      } catch (const IoError& e) {
        throw IoError(e.lvs_code(), e.code().value(),
                      "interface " + ifc.name + " (ifindex " + std::to_string(ifc.ifindex) + "): " + e.detail());
      }
      for (uint32_t q = worker; q < qs.rx; q += workers) want.push_back({ifc.id, ifc.ifindex, q, qs.rx});
      tx_queues_.push_back({ifc.ifindex, qs.tx});
      names_.push_back(ifc);
    }
    egress_.resize(size_t(max_id) + 1);

    // The UMEM: `frames` per socket (at least one socket's worth for frames the dataplane
    // builds on a worker that receives nothing).
    total_frames_ = frames * uint32_t(std::max<size_t>(1, want.size()));
    const size_t bytes = size_t(total_frames_) * kFrameSize;
    void* area = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (area == MAP_FAILED) fail("mmap of " + std::to_string(bytes >> 20) + " MiB for the UMEM");
    umem_ = Mapping(area, bytes);
    free_.reserve(total_frames_);
    for (uint32_t i = total_frames_; i-- > 0;) free_.push_back(uint64_t(i) * kFrameSize);

    for (size_t i = 0; i < want.size(); ++i) open_socket(want[i].iface, want[i].ifindex, want[i].queue, want[i].queues, bytes);

    // Egress: the first socket of each interface whose queue also transmits, else AF_PACKET.
    for (size_t i = 0; i < socks_.size(); ++i) {
      Egress& e = egress_[socks_[i]->iface];
      uint32_t txq = 1;
      for (const auto& [ifindex, n] : tx_queues_)
        if (ifindex == socks_[i]->ifindex) txq = n;
      if (!e.known && socks_[i]->queue < txq) {
        e.known = true;
        e.sock = int(i);
      }
    }
    for (const IoInterface& ifc : opts.ifaces) {
      Egress& e = egress_[ifc.id];
      if (e.known) continue;
      e.known = true;
      e.packet = Fd(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
      if (!e.packet) fail("socket(AF_PACKET) to transmit on " + ifc.name);
      sockaddr_ll sa{};
      sa.sll_family = AF_PACKET;
      sa.sll_ifindex = int(ifc.ifindex);
      sa.sll_protocol = 0;  // transmit only
      if (::bind(e.packet.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
        fail("bind(AF_PACKET) on " + ifc.name);
    }

    wake_ = Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake_) fail("eventfd");

    // Give every socket frames to receive into, then let the steering send it traffic.
    for (auto& s : socks_) refill(*s);
    for (auto& s : socks_) {
      const int slot = opts.steering->xsk_slot(s->ifindex, s->queue, s->queues);
      opts.steering->set_xsk(slot, s->fd.get());
      slots_.push_back(slot);
    }
    update_kind();
  }

  ~XskPort() override {
    for (int slot : slots_) registry_->clear(slot);
    // Sockets close before the UMEM is unmapped (members go in reverse order).
  }

  uint32_t receive(Packet* pkts, uint32_t max) override {
    reap();
    uint32_t n = 0;
    const size_t count = socks_.size();
    for (size_t k = 0; k < count && n < max; ++k) {
      Sock& s = *socks_[(next_ + k) % count];
      const uint32_t avail = s.rx.available();
      const uint32_t take = std::min(avail, max - n);
      if (take) {
        uint32_t c = *s.rx.consumer;
        for (uint32_t i = 0; i < take; ++i, ++c) {
          const xdp_desc& d = s.rx.desc_at(c);
          const uint64_t base = d.addr & ~uint64_t(kFrameSize - 1);
          const uint32_t off = uint32_t(d.addr - base);
          Packet& p = pkts[n++];
          p.data = umem_.data() + d.addr;
          p.len = d.len;
          p.headroom = off;
          p.tailroom = kFrameSize - off - std::min<uint32_t>(d.len, kFrameSize - off);
          p.iface = s.iface;
          p.verdict = Verdict::Drop;
          p.generated = false;
          p.cookie = uint32_t(base / kFrameSize);
        }
        Ring::store(s.rx.consumer, c);
        s.posted -= take;
        rx_packets_.fetch_add(take, std::memory_order_relaxed);
      }
      refill(s);
    }
    ++next_;
    return n;
  }

  bool allocate(Packet& p) override {
    if (free_.empty()) reap();
    if (free_.empty()) return false;
    const uint64_t base = free_.back();
    free_.pop_back();
    p.data = umem_.data() + base + kHeadroom;
    p.len = 0;
    p.headroom = kHeadroom;
    p.tailroom = kFrameSize - kHeadroom;
    p.verdict = Verdict::Drop;
    p.generated = true;
    p.cookie = uint32_t(base / kFrameSize);
    return true;
  }

  uint32_t complete(Packet* pkts, uint32_t n) override {
    uint32_t failed = 0;
    for (uint32_t i = 0; i < n; ++i) {
      Packet& p = pkts[i];
      const uint64_t base = uint64_t(p.cookie) * kFrameSize;
      if (p.cookie >= total_frames_) continue;  // not ours: never happens with the worker
      if (p.verdict == Verdict::Tx) {
        if (!transmit(p, base)) {
          ++failed;
          tx_failed_.fetch_add(1, std::memory_order_relaxed);
          free_.push_back(base);
        }
        continue;
      }
      if (p.verdict == Verdict::Pass) pass_dropped_.fetch_add(1, std::memory_order_relaxed);
      free_.push_back(base);
    }
    flush();
    reap();
    return failed;
  }

  bool wait(uint32_t ms) override {
    std::vector<pollfd>& fds = pollfds_;
    fds.clear();
    for (auto& s : socks_) fds.push_back({s->fd.get(), POLLIN, 0});
    fds.push_back({wake_.get(), POLLIN, 0});
    const int r = ::poll(fds.data(), fds.size(), int(ms));
    if (r > 0 && (fds.back().revents & POLLIN)) {
      uint64_t v;
      while (::read(wake_.get(), &v, sizeof v) > 0) {
      }
    }
    return true;
  }

  void wake() override {
    const uint64_t one = 1;
    if (::write(wake_.get(), &one, sizeof one) < 0) {
      // The counter is saturated: a wake-up is pending anyway.
    }
  }

  PortStats stats() const override {
    PortStats st;
    st.rx_packets = rx_packets_.load(std::memory_order_relaxed);
    st.tx_packets = tx_packets_.load(std::memory_order_relaxed);
    st.tx_failed = tx_failed_.load(std::memory_order_relaxed);
    st.pass_dropped = pass_dropped_.load(std::memory_order_relaxed);
    for (const auto& s : socks_) {
      xdp_statistics x{};
      socklen_t len = sizeof x;
      if (::getsockopt(s->fd.get(), SOL_XDP, XDP_STATISTICS, &x, &len) != 0) continue;
      st.kernel_dropped += x.rx_dropped + x.rx_ring_full;
      st.fill_empty += x.rx_fill_ring_empty_descs;
      st.tx_failed += x.tx_invalid_descs;
    }
    return st;
  }

  const char* kind() const override {
    std::lock_guard<std::mutex> g(kind_m_);
    const_cast<XskPort*>(this)->update_kind();
    return kind_.c_str();
  }

 private:
  void open_socket(uint16_t iface, uint32_t ifindex, uint32_t queue, uint32_t queues, size_t umem_bytes) {
    auto s = std::make_unique<Sock>();
    s->iface = iface;
    s->ifindex = ifindex;
    s->queue = queue;
    s->queues = queues;
    const std::string where = "ifindex " + std::to_string(ifindex) + " queue " + std::to_string(queue);
    s->fd = Fd(::socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0));
    if (!s->fd) fail("socket(AF_XDP) for " + where);
    const int fd = s->fd.get();
    const bool owner = socks_.empty();
    if (owner) {
      xdp_umem_reg reg{};
      reg.addr = uint64_t(reinterpret_cast<uintptr_t>(umem_.data()));
      reg.len = umem_bytes;
      reg.chunk_size = kFrameSize;
      reg.headroom = 0;
      if (::setsockopt(fd, SOL_XDP, XDP_UMEM_REG, &reg, sizeof reg) != 0)
        fail("setsockopt(XDP_UMEM_REG) of " + std::to_string(umem_bytes >> 20) + " MiB");
    }
    set_ring_size(fd, XDP_UMEM_FILL_RING, ring_size_, "XDP_UMEM_FILL_RING");
    set_ring_size(fd, XDP_UMEM_COMPLETION_RING, ring_size_, "XDP_UMEM_COMPLETION_RING");
    set_ring_size(fd, XDP_RX_RING, ring_size_, "XDP_RX_RING");
    set_ring_size(fd, XDP_TX_RING, ring_size_, "XDP_TX_RING");
    xdp_mmap_offsets off{};
    socklen_t len = sizeof off;
    if (::getsockopt(fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &len) != 0) fail("getsockopt(XDP_MMAP_OFFSETS)");
    map_ring(s->rx, fd, off.rx, ring_size_, sizeof(xdp_desc), XDP_PGOFF_RX_RING, "RX");
    map_ring(s->tx, fd, off.tx, ring_size_, sizeof(xdp_desc), XDP_PGOFF_TX_RING, "TX");
    map_ring(s->fill, fd, off.fr, ring_size_, sizeof(uint64_t), XDP_UMEM_PGOFF_FILL_RING, "fill");
    map_ring(s->comp, fd, off.cr, ring_size_, sizeof(uint64_t), XDP_UMEM_PGOFF_COMPLETION_RING, "completion");
    sockaddr_xdp sa{};
    sa.sxdp_family = AF_XDP;
    sa.sxdp_ifindex = ifindex;
    sa.sxdp_queue_id = queue;
    if (owner) {
      sa.sxdp_flags = uint16_t((zc_ ? XDP_ZEROCOPY : XDP_COPY) | XDP_USE_NEED_WAKEUP);
    } else {
      // Mode and wake-up behaviour come from the UMEM's owner.
      sa.sxdp_flags = XDP_SHARED_UMEM;
      sa.sxdp_shared_umem_fd = uint32_t(socks_.front()->fd.get());
    }
    // A queue whose previous socket was just closed stays busy until the kernel's deferred
    // release of that socket's buffer pool has run (a workqueue item): wait for it, briefly.
    for (int tries = 0;; ++tries) {
      if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) break;
      if (errno != EBUSY || tries >= kBindRetries)
        fail(std::string("bind(AF_XDP") + (zc_ ? ", zero-copy" : ", copy") + ") to " + where);
      ::usleep(10000);
    }
    socks_.push_back(std::move(s));
  }

  // Top the socket's fill ring up to half its size from the free list.
  void refill(Sock& s) {
    const uint32_t target = ring_size_ / 2;
    if (s.posted >= target) return;
    uint32_t n = std::min<uint32_t>(target - s.posted, s.fill.free_slots());
    n = std::min<uint32_t>(n, uint32_t(free_.size()));
    if (!n) return;
    uint32_t p = *s.fill.producer;
    for (uint32_t i = 0; i < n; ++i, ++p) {
      s.fill.addr_at(p) = free_.back();
      free_.pop_back();
    }
    Ring::store(s.fill.producer, p);
    s.posted += n;
    if (s.fill.needs_wakeup()) ::recvfrom(s.fd.get(), nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
  }

  bool transmit(const Packet& p, uint64_t base) {
    uint8_t* const frame = umem_.data() + base;
    if (p.data < frame || p.len == 0 || p.data + p.len > frame + kFrameSize) return false;
    if (p.iface >= egress_.size() || !egress_[p.iface].known) return false;
    Egress& e = egress_[p.iface];
    if (e.sock < 0) {
      if (::sendto(e.packet.get(), p.data, p.len, MSG_DONTWAIT, nullptr, 0) < 0) return false;
      free_.push_back(base);
      tx_packets_.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    Sock& s = *socks_[size_t(e.sock)];
    if (s.tx.free_slots() == 0) {
      kick(s);
      reap(s);
      if (s.tx.free_slots() == 0) return false;
    }
    uint32_t prod = *s.tx.producer;
    xdp_desc& d = s.tx.desc_at(prod);
    d.addr = uint64_t(p.data - umem_.data());
    d.len = p.len;
    d.options = 0;
    Ring::store(s.tx.producer, prod + 1);
    ++s.in_flight;
    s.tx_queued = true;
    tx_packets_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  void flush() {
    for (auto& s : socks_)
      if (s->tx_queued) kick(*s);
  }

  // Make the kernel send what is on the TX ring (copy mode sends up to 32 per call).
  void kick(Sock& s) {
    s.tx_queued = false;
    if (!s.tx.needs_wakeup()) return;
    for (uint32_t i = 0; i < kMaxKicks; ++i) {
      if (::sendto(s.fd.get(), nullptr, 0, MSG_DONTWAIT, nullptr, 0) >= 0) {
        if (Ring::load(s.tx.consumer) == *s.tx.producer) return;
        continue;
      }
      if (errno != EAGAIN && errno != EBUSY && errno != ENOBUFS) return;  // down: frames stay queued
      reap(s);
      if (Ring::load(s.tx.consumer) == *s.tx.producer) return;
    }
  }

  void reap(Sock& s) {
    const uint32_t avail = s.comp.available();
    if (!avail) return;
    uint32_t c = *s.comp.consumer;
    for (uint32_t i = 0; i < avail; ++i, ++c) free_.push_back(s.comp.addr_at(c) & ~uint64_t(kFrameSize - 1));
    Ring::store(s.comp.consumer, c);
    s.in_flight -= std::min(s.in_flight, avail);
  }

  void reap() {
    for (auto& s : socks_) reap(*s);
  }

  void update_kind() {
    XdpMode mode = XdpMode::None;
    bool mixed = false;
    for (const IoInterface& ifc : names_) {
      const XdpMode m = registry_->mode(ifc.ifindex);
      if (m == XdpMode::None) continue;
      if (mode == XdpMode::None) mode = m;
      else if (m != mode) mixed = true;
    }
    kind_ = std::string("xdp-") + (mixed ? "mixed" : mode == XdpMode::None ? "unattached" : xdp_mode_name(mode)) +
            (zc_ ? "-zc" : "-copy");
  }

  bool zc_;
  uint32_t ring_size_ = 0;
  uint32_t total_frames_ = 0;
  std::shared_ptr<XskRegistry> registry_;
  std::vector<IoInterface> names_;
  std::vector<std::pair<uint32_t, uint32_t>> tx_queues_;  // ifindex -> transmit queues
  Mapping umem_;                            // declared before the sockets: unmapped after them
  std::vector<uint64_t> free_;              // frame base offsets
  std::vector<std::unique_ptr<Sock>> socks_;
  std::vector<Egress> egress_;              // by dataplane interface id
  std::vector<int> slots_;
  Fd wake_;
  std::vector<pollfd> pollfds_;
  size_t next_ = 0;
  std::atomic<uint64_t> rx_packets_{0}, tx_packets_{0}, tx_failed_{0}, pass_dropped_{0};
  mutable std::mutex kind_m_;
  std::string kind_;
};

}  // namespace

std::unique_ptr<Port> make_xsk_port(const IoOptions& opts, uint32_t worker) {
  if (opts.zero_copy > 0) return std::make_unique<XskPort>(opts, worker, true);
  if (opts.zero_copy == 0) return std::make_unique<XskPort>(opts, worker, false);
  try {
    return std::make_unique<XskPort>(opts, worker, true);
  } catch (const IoError& e) {
    // Zero-copy needs driver support (veth has none): everything is undone; try copy mode.
    if (std::string(e.lvs_code()) != "LVS_IO_INIT") throw;
    return std::make_unique<XskPort>(opts, worker, false);
  }
}

}  // namespace lvsd
