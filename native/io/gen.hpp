// Benchmark tools for the network benchmarks (bench/net.js, bench/conn.js) and their test:
//
//   generate()    a packet generator: AF_PACKET with PACKET_QDISC_BYPASS and sendmmsg, cycling
//                 through a set of ready-made frames (the caller varies the UDP source port
//                 across them, so there are many flows), for a time or for an exact count.
//   BenchSink     a counting XDP sink: UDP frames (IPv4 or IPv6) are counted in a PERCPU_ARRAY
//                 and dropped; everything else (ARP, neighbour discovery, ICMP, TCP) is counted
//                 and passed to the kernel, so the host behind the sink still resolves
//                 addresses and answers pings while it eats the benchmark's traffic.
//   HttpResponder a tiny HTTP/1.1 server on one thread (epoll): every request gets the same
//                 short response and the connection is closed, so a real server costs the
//                 kernel's TCP work and little else (bench/conn.js; the lab's Node real-app
//                 is slower than the paths being compared).
//
// Each acts in a named network namespace (NetnsScope): the sockets, the XDP attachment and the
// listening socket belong to that namespace while the calling thread stays where it is.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>
#include "io/bpf.hpp"
#include "io/steer.hpp"

namespace lvsd::bench {

struct GenOptions {
  std::string netns;                          // "" = the calling thread's namespace
  std::string ifname;                         // the device to transmit on
  std::vector<std::vector<uint8_t>> frames;   // complete Ethernet frames, sent in turn
  double seconds = 0;                         // > 0: stop after this long
  uint64_t count = 0;                         // > 0: stop after exactly this many frames
  uint32_t batch = 64;                        // frames per sendmmsg()
  int cpu = -1;                               // >= 0: run pinned to this CPU
};

struct GenResult {
  uint64_t sent = 0;     // frames the device accepted
  uint64_t failed = 0;   // attempts the device refused (ENOBUFS: its queue was full); retried
  uint64_t calls = 0;    // sendmmsg() calls
  double seconds = 0;    // from the first send to the last
};

// Runs on the calling thread until done. Throws IoError: LVS_NETNS, LVS_NO_SUCH_DEVICE,
// LVS_IO_INIT (socket, bind, affinity), LVS_INVALID_ARGUMENT (no frames, a frame shorter than
// an Ethernet header or longer than 9018 bytes, no limit given).
GenResult generate(const GenOptions& o);

constexpr const char* kSinkProgName = "lvsd_bench_sink";

struct SinkCounts {
  uint64_t packets = 0;  // UDP frames addressed to the device's MAC, dropped
  uint64_t bytes = 0;    // their bytes (Ethernet header on, FCS off)
  uint64_t foreign = 0;  // UDP frames for another MAC (a flooding bridge), dropped, not counted above
  uint64_t passed = 0;   // everything else, given to the kernel
};

// The program, for a device whose MAC is `mac`. Exposed for tests of its shape.
std::vector<bpf_insn> sink_program(const uint8_t mac[6], int stats_map_fd);

class BenchSink {
 public:
  BenchSink() = default;
  ~BenchSink() { close(); }
  BenchSink(const BenchSink&) = delete;
  BenchSink& operator=(const BenchSink&) = delete;

  // Load and attach to ifindex of netns (a bpf_link: it goes with close() or the process).
  // Once only: a second attach throws LVS_MODE.
  XdpMode attach(const std::string& netns, uint32_t ifindex, XdpRequest mode);
  SinkCounts count() const;  // summed over CPUs; zeros before attach()
  void close();
  bool attached() const { return bool(link_); }

 private:
  Fd stats_, prog_, link_;
};

// A listening HTTP server in a namespace, served by one thread of its own.
class HttpResponder {
 public:
  // Listens on 0.0.0.0:port (and [::]:port when ipv6) in netns; the response body is `body`.
  // Throws IoError (LVS_NETNS, LVS_IO_INIT) when it cannot listen.
  HttpResponder(const std::string& netns, uint16_t port, const std::string& body, bool ipv6);
  ~HttpResponder();
  HttpResponder(const HttpResponder&) = delete;
  HttpResponder& operator=(const HttpResponder&) = delete;

  uint64_t responses() const { return responses_.load(std::memory_order_relaxed); }
  // Connections closed without a complete request (or with one too large to read).
  uint64_t aborted() const { return aborted_.load(std::memory_order_relaxed); }
  void stop();

 private:
  void run();
  std::vector<Fd> listeners_;
  Fd epoll_, wake_;
  std::string response_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> responses_{0}, aborted_{0};
};

}  // namespace lvsd::bench
