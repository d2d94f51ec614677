#include "io/gen.hpp"
#include <arpa/inet.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include "io/netns.hpp"

namespace lvsd::bench {
namespace {

using namespace bpf;

[[noreturn]] void fail(const char* code, const std::string& what) {
  const int e = errno;
  throw IoError(code, e, what);
}

NetnsScope enter(const std::string& netns) {
  try {
    return NetnsScope(netns);
  } catch (const std::system_error& e) {
    throw IoError::wrap("LVS_NETNS", e);
  }
}

constexpr int32_t be16(uint16_t v) { return int32_t(uint16_t((v >> 8) | (v << 8))); }

// Pins the calling thread to one CPU and gives it back its previous set afterwards (the
// thread may be a pool thread that runs other work later).
class Pin {
 public:
  explicit Pin(int cpu) {
    if (cpu < 0) return;
    if (cpu >= CPU_SETSIZE) throw IoError("LVS_INVALID_ARGUMENT", EINVAL, "cpu " + std::to_string(cpu) + " is out of range");
    if (pthread_getaffinity_np(pthread_self(), sizeof saved_, &saved_) != 0)
      throw IoError("LVS_IO_INIT", errno, "pthread_getaffinity_np");
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (const int e = pthread_setaffinity_np(pthread_self(), sizeof one, &one); e != 0)
      throw IoError(e == EINVAL ? "LVS_INVALID_ARGUMENT" : "LVS_IO_INIT", e, "pin the generator to cpu " + std::to_string(cpu));
    pinned_ = true;
  }
  ~Pin() {
    if (pinned_) pthread_setaffinity_np(pthread_self(), sizeof saved_, &saved_);
  }
  Pin(const Pin&) = delete;
  Pin& operator=(const Pin&) = delete;

 private:
  cpu_set_t saved_{};
  bool pinned_ = false;
};

constexpr size_t kMaxFrame = 9018;  // a jumbo frame with a VLAN tag, FCS off

}  // namespace

// ---------------------------------------------------------------------------------------------
// The generator

GenResult generate(const GenOptions& o) {
  if (o.frames.empty()) throw IoError("LVS_INVALID_ARGUMENT", EINVAL, "generator: no frames");
  for (size_t i = 0; i < o.frames.size(); ++i) {
    const size_t n = o.frames[i].size();
    if (n < 14 || n > kMaxFrame)
      throw IoError("LVS_INVALID_ARGUMENT", EINVAL,
                    "generator: frame " + std::to_string(i) + " is " + std::to_string(n) + " bytes; expected 14 to " +
                        std::to_string(kMaxFrame));
  }
  if (!(o.seconds > 0) && o.count == 0)
    throw IoError("LVS_INVALID_ARGUMENT", EINVAL, "generator: give seconds or count (or both)");
  const uint32_t batch = std::clamp<uint32_t>(o.batch, 1, 1024);

  Pin pin(o.cpu);
  NetnsScope scope = enter(o.netns);
  const unsigned ifindex = ::if_nametoindex(o.ifname.c_str());
  if (ifindex == 0)
    throw IoError("LVS_NO_SUCH_DEVICE", errno, "generator: no device \"" + o.ifname + "\"" +
                                                   (o.netns.empty() ? "" : " in namespace " + o.netns));
  // Protocol 0: the socket receives nothing, it only sends.
  Fd s(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
  if (!s) fail("LVS_IO_INIT", "generator: socket(AF_PACKET)");
  // Straight to the driver (dev_direct_xmit): no qdisc, as pktgen does.
  const int one = 1;
  if (::setsockopt(s.get(), SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) != 0)
    fail("LVS_IO_INIT", "generator: setsockopt(PACKET_QDISC_BYPASS)");

  // One destination per frame: the device, and the frame's own ethertype as the protocol.
  const size_t nf = o.frames.size();
  std::vector<sockaddr_ll> to(nf);
  std::vector<iovec> iov(nf);
  for (size_t i = 0; i < nf; ++i) {
    sockaddr_ll& a = to[i];
    a.sll_family = AF_PACKET;
    a.sll_ifindex = int(ifindex);
    std::memcpy(&a.sll_protocol, o.frames[i].data() + 12, 2);
    a.sll_halen = 6;
    std::memcpy(a.sll_addr, o.frames[i].data(), 6);
    iov[i].iov_base = const_cast<uint8_t*>(o.frames[i].data());
    iov[i].iov_len = o.frames[i].size();
  }
  std::vector<mmsghdr> msgs(batch);

  GenResult r;
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto deadline = o.seconds > 0 ? start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds))
                                      : Clock::time_point::max();
  size_t next = 0;
  for (;;) {
    uint64_t want = batch;
    if (o.count) {
      if (r.sent >= o.count) break;
      want = std::min<uint64_t>(want, o.count - r.sent);
    }
    if (Clock::now() >= deadline) break;
    for (uint64_t i = 0; i < want; ++i) {
      const size_t f = (next + i) % nf;
      msghdr& h = msgs[i].msg_hdr;
      h = msghdr{};
      h.msg_name = &to[f];
      h.msg_namelen = sizeof(sockaddr_ll);
      h.msg_iov = &iov[f];
      h.msg_iovlen = 1;
    }
    const int n = ::sendmmsg(s.get(), msgs.data(), unsigned(want), 0);
    ++r.calls;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS || errno == EAGAIN) {
        // The device's queue is full (veth backpressure): the frame is not sent; try again.
        ++r.failed;
        ::sched_yield();
        continue;
      }
      fail(errno == ENXIO || errno == ENODEV ? "LVS_NO_SUCH_DEVICE" : "LVS_IO_INIT",
           "generator: sendmmsg on " + o.ifname);
    }
    r.sent += uint64_t(n);
    next = (next + size_t(n)) % nf;
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return r;
}

// ---------------------------------------------------------------------------------------------
// The sink

namespace {

// The value of the stats map's only entry, per CPU.
struct SinkValue {
  uint64_t packets, bytes, foreign, passed;
};
static_assert(sizeof(SinkValue) == 32);

// Four bytes as a little-endian 32-bit load of them reads.
int32_t word(const uint8_t* b) {
  return int32_t(uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24);
}

}  // namespace

std::vector<bpf_insn> sink_program(const uint8_t mac[6], int stats_map_fd) {
  Asm a;
  const auto pass = a.label(), v4 = a.label(), v6 = a.label(), udp = a.label(), foreign = a.label(),
             counted = a.label(), drop = a.label(), pass_exit = a.label();
  // r6 = ctx, r7 = frame length, r9 = 0 (ours) or 1 (another MAC's). r7 and r9 survive calls.
  a.movr(R6, R1);
  a.ldx(BPF_W, R2, R6, 0);
  a.ldx(BPF_W, R3, R6, 4);
  a.movr(R7, R3);
  a.alur(BPF_SUB, R7, R2);
  a.mov(R9, 0);
  a.movr(R4, R2);
  a.add(R4, 14);
  a.jccr(BPF_JGT, R4, R3, pass);
  a.ldx(BPF_H, R5, R2, 12);
  a.jcc(BPF_JEQ, R5, be16(0x0800), v4);
  a.jcc(BPF_JEQ, R5, be16(0x86dd), v6);
  a.ja(pass);

  a.bind(v4);  // the protocol byte of an IPv4 header (options do not move it)
  a.movr(R4, R2);
  a.add(R4, 14 + 20);
  a.jccr(BPF_JGT, R4, R3, pass);
  a.ldx(BPF_B, R5, R2, 14 + 9);
  a.jcc(BPF_JEQ, R5, 17, udp);
  a.ja(pass);

  a.bind(v6);  // the next header of the fixed IPv6 header
  a.movr(R4, R2);
  a.add(R4, 14 + 40);
  a.jccr(BPF_JGT, R4, R3, pass);
  a.ldx(BPF_B, R5, R2, 14 + 6);
  a.jcc(BPF_JEQ, R5, 17, udp);
  a.ja(pass);

  a.bind(udp);
  a.ldx(BPF_W, R4, R2, 0);
  a.jcc32(BPF_JNE, R4, word(mac), foreign);
  a.ldx(BPF_H, R4, R2, 4);
  a.jcc(BPF_JNE, R4, int32_t(uint32_t(mac[4]) | uint32_t(mac[5]) << 8), foreign);
  a.ja(counted);
  a.bind(foreign);
  a.mov(R9, 1);

  a.bind(counted);
  a.st(BPF_W, FP, -4, 0);
  a.ld_map(R1, stats_map_fd);
  a.movr(R2, FP);
  a.add(R2, -4);
  a.call(BPF_FUNC_map_lookup_elem);
  a.jcc(BPF_JEQ, R0, 0, drop);
  {
    // Per-CPU values: one writer each, plain adds.
    const auto ours = a.label();
    a.jcc(BPF_JEQ, R9, 0, ours);
    a.ldx(BPF_DW, R1, R0, 16);
    a.add(R1, 1);
    a.stx(BPF_DW, R0, 16, R1);
    a.ja(drop);
    a.bind(ours);
    a.ldx(BPF_DW, R1, R0, 0);
    a.add(R1, 1);
    a.stx(BPF_DW, R0, 0, R1);
    a.ldx(BPF_DW, R1, R0, 8);
    a.addr(R1, R7);
    a.stx(BPF_DW, R0, 8, R1);
  }
  a.bind(drop);
  a.mov(R0, XDP_DROP);
  a.exit();

  a.bind(pass);
  a.st(BPF_W, FP, -4, 0);
  a.ld_map(R1, stats_map_fd);
  a.movr(R2, FP);
  a.add(R2, -4);
  a.call(BPF_FUNC_map_lookup_elem);
  a.jcc(BPF_JEQ, R0, 0, pass_exit);
  a.ldx(BPF_DW, R1, R0, 24);
  a.add(R1, 1);
  a.stx(BPF_DW, R0, 24, R1);
  a.bind(pass_exit);
  a.mov(R0, XDP_PASS);
  a.exit();
  return a.finish();
}

XdpMode BenchSink::attach(const std::string& netns, uint32_t ifindex, XdpRequest req) {
  if (link_) throw IoError("LVS_MODE", EALREADY, "bench sink: already attached");
  NetnsScope scope = enter(netns);
  char name[IF_NAMESIZE] = {};
  if (!::if_indextoname(ifindex, name))
    fail("LVS_NO_SUCH_DEVICE", "bench sink: no ifindex " + std::to_string(ifindex) + (netns.empty() ? "" : " in " + netns));
  uint8_t mac[6];
  {
    Fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!s) fail("LVS_IO_INIT", "bench sink: socket(AF_INET)");
    ifreq ifr{};
    std::memcpy(ifr.ifr_name, name, std::min(sizeof ifr.ifr_name - 1, std::strlen(name)));
    if (::ioctl(s.get(), SIOCGIFHWADDR, &ifr) != 0) fail("LVS_IO_INIT", std::string("bench sink: SIOCGIFHWADDR on ") + name);
    std::memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
  }
  Fd stats = map_create(BPF_MAP_TYPE_PERCPU_ARRAY, 4, sizeof(SinkValue), 1, 0, "lvsd_bench_cnt");
  Fd prog = prog_load_xdp(sink_program(mac, stats.get()), kSinkProgName);
  XdpMode got;
  Fd link;
  if (req == XdpRequest::Generic) {
    link = xdp_link_create(prog.get(), ifindex, XDP_FLAGS_SKB_MODE);
    got = XdpMode::Generic;
  } else {
    try {
      link = xdp_link_create(prog.get(), ifindex, XDP_FLAGS_DRV_MODE);
      got = XdpMode::Native;
    } catch (const IoError& e) {
      if (req == XdpRequest::Native || e.code().value() == ENODEV || e.code().value() == EBUSY) throw;
      link = xdp_link_create(prog.get(), ifindex, XDP_FLAGS_SKB_MODE);
      got = XdpMode::Generic;
    }
  }
  stats_ = std::move(stats);
  prog_ = std::move(prog);
  link_ = std::move(link);
  return got;
}

SinkCounts BenchSink::count() const {
  SinkCounts c;
  if (!stats_) return c;
  std::vector<SinkValue> per(possible_cpus());
  const uint32_t key = 0;
  if (!map_lookup(stats_.get(), &key, per.data())) return c;
  for (const SinkValue& v : per) {
    c.packets += v.packets;
    c.bytes += v.bytes;
    c.foreign += v.foreign;
    c.passed += v.passed;
  }
  return c;
}

void BenchSink::close() {
  link_.reset();
  prog_.reset();
  stats_.reset();
}

// ---------------------------------------------------------------------------------------------
// The HTTP responder

namespace {

constexpr size_t kMaxRequest = 8192;
constexpr uint64_t kWakeTag = ~uint64_t(0);

struct Conn {
  std::string buf;
};

}  // namespace

HttpResponder::HttpResponder(const std::string& netns, uint16_t port, const std::string& body, bool ipv6) {
  response_ = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
              "\r\nConnection: close\r\n\r\n" + body;
  {
    NetnsScope scope = enter(netns);
    const int one = 1;
    auto listen_on = [&](int family) {
      Fd s(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (!s) fail("LVS_IO_INIT", "http responder: socket()");
      ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      int r;
      if (family == AF_INET) {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        r = ::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
      } else {
        ::setsockopt(s.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        sockaddr_in6 a{};
        a.sin6_family = AF_INET6;
        a.sin6_port = htons(port);
        r = ::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
      }
      if (r != 0) fail("LVS_IO_INIT", "http responder: bind to port " + std::to_string(port));
      if (::listen(s.get(), 65535) != 0) fail("LVS_IO_INIT", "http responder: listen");
      listeners_.push_back(std::move(s));
    };
    listen_on(AF_INET);
    if (ipv6) listen_on(AF_INET6);
  }
  epoll_ = Fd(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) fail("LVS_IO_INIT", "http responder: epoll_create1");
  wake_ = Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_) fail("LVS_IO_INIT", "http responder: eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeTag;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev) != 0) fail("LVS_IO_INIT", "http responder: epoll_ctl");
  for (size_t i = 0; i < listeners_.size(); ++i) {
    ev.events = EPOLLIN;
    ev.data.u64 = kWakeTag - 1 - i;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listeners_[i].get(), &ev) != 0)
      fail("LVS_IO_INIT", "http responder: epoll_ctl");
  }
  thread_ = std::thread([this] { run(); });
}

HttpResponder::~HttpResponder() { stop(); }

void HttpResponder::stop() {
  if (stopping_.exchange(true)) return;
  const uint64_t one = 1;
  if (::write(wake_.get(), &one, sizeof one) < 0) {
    // An eventfd write fails only when the counter is saturated: a wake-up is pending anyway.
  }
  if (thread_.joinable()) thread_.join();
  listeners_.clear();
}

void HttpResponder::run() {
  std::vector<std::unique_ptr<Conn>> conns;  // by fd
  auto close_conn = [&](int fd, bool complete) {
    ::close(fd);  // also leaves the epoll set
    if (size_t(fd) < conns.size()) conns[size_t(fd)].reset();
    if (!complete) aborted_.fetch_add(1, std::memory_order_relaxed);
  };
  // Read what is there; answer and close once the request's head is complete.
  auto serve = [&](int fd) {
    Conn& c = *conns[size_t(fd)];
    char buf[4096];
    for (;;) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        c.buf.append(buf, size_t(n));
        if (c.buf.find("\r\n\r\n") != std::string::npos) {
          const ssize_t w = ::send(fd, response_.data(), response_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
          const bool ok = w == ssize_t(response_.size());
          if (ok) responses_.fetch_add(1, std::memory_order_relaxed);
          close_conn(fd, ok);
          return;
        }
        if (c.buf.size() > kMaxRequest) return close_conn(fd, false);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n < 0 && errno == EINTR) continue;
      return close_conn(fd, false);  // EOF or an error before a whole request
    }
  };
  epoll_event events[64];
  while (!stopping_.load(std::memory_order_relaxed)) {
    const int n = ::epoll_wait(epoll_.get(), events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;  // EBADF/EINVAL: the set is gone; nothing left to serve
    }
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[i].data.u64;
      if (tag == kWakeTag) continue;  // stop() set the flag
      if (tag >= kWakeTag - listeners_.size()) {
        const int lfd = listeners_[size_t(kWakeTag - 1 - tag)].get();
        for (;;) {
          const int fd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;  // EAGAIN: all taken; anything else: the next event tries again
          if (size_t(fd) >= conns.size()) conns.resize(size_t(fd) + 64);
          conns[size_t(fd)] = std::make_unique<Conn>();
          epoll_event ev{};
          ev.events = EPOLLIN | EPOLLRDHUP;
          ev.data.u64 = uint64_t(fd);
          if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
            close_conn(fd, false);
            continue;
          }
          serve(fd);  // the request is usually there with the handshake's last ACK
        }
        continue;
      }
      const int fd = int(tag);
      if (size_t(fd) < conns.size() && conns[size_t(fd)]) serve(fd);
    }
  }
  for (size_t fd = 0; fd < conns.size(); ++fd)
    if (conns[fd]) ::close(int(fd));
}

}  // namespace lvsd::bench
