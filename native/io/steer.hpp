// The director's XDP steering program and its maps.
//
// The program looks at every frame an interface receives and either redirects it to the
// AF_XDP socket of that interface and receive queue (the dataplane), or passes it to the
// kernel. It steers:
//   - TCP/UDP to (address, protocol, port) of a service, or (address, protocol, 0);
//   - TCP/UDP/ICMP errors to an address inside a firewall-mark prefix (LPM trie);
//   - ICMP / ICMPv6 errors (v4 types 3, 4, 11, 12; v6 types 1-4) to an address of any service;
//   - IPv4 fragments and IPv6 packets with extension headers to an address of any service (the
//     dataplane counts and handles them);
//   - TCP/UDP from (address, protocol, source port) of a NAT real, or (address, protocol, 0),
//     and ICMP errors from a NAT real's address, unless addressed to one of the director's
//     own addresses (health checks, heartbeats).
// Everything else (ARP, ND, ICMP echo, the director's own traffic) passes. Frames too short
// for the headers they announce pass and are counted as parse failures.
//
// Redirection uses one XSKMAP for all interfaces: each interface gets a range of slots (base +
// receive queue), kept in a small hash map the program reads.
//
// Entries are reference-counted: every add needs its own del, so two services on one VIP, or a
// real in two services, stay steered until the last of them is removed. A del of something
// never added is ignored.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include "io/bpf.hpp"

namespace lvsd {

enum class XdpMode : uint8_t { None = 0, Native = 1, Generic = 2 };
enum class XdpRequest : uint8_t { Native, Generic, Auto };
const char* xdp_mode_name(XdpMode m);

// An IPv4 (family 4, first 4 bytes) or IPv6 (family 6) address in network order.
struct IpBytes {
  uint8_t family = 0;
  uint8_t b[16] = {};
};

// The AF_XDP side of the steering: XSKMAP slots per (interface, queue), and which XDP mode each
// interface got. Shared with the AF_XDP ports so that a port may be torn down after the
// Steering was closed (its calls then do nothing).
class XskRegistry {
 public:
  XskRegistry(Fd xsks, Fd ifaces, uint32_t slots);
  // The slot for (ifindex, queue) of an interface with `queues` receive queues; reserves the
  // interface's range on first use. LVS_CAPACITY when the XSKMAP is full.
  int slot(uint32_t ifindex, uint32_t queue, uint32_t queues);
  void set(int slot, int xsk_fd);
  void clear(int slot);
  XdpMode mode(uint32_t ifindex) const;
  void set_mode(uint32_t ifindex, XdpMode m);
  void close();

 private:
  struct Range {
    uint32_t base, count;
  };
  mutable std::mutex m_;
  Fd xsks_, ifaces_;
  uint32_t slots_;
  uint32_t next_ = 0;
  std::map<uint32_t, Range> ranges_;
  std::map<uint32_t, XdpMode> modes_;
  bool closed_ = false;
};

class Steering {
 public:
  struct Options {
    std::string netns;            // "" = the process's namespace
    uint32_t max_entries = 16384; // per map: services, NAT reals, addresses, prefixes
  };
  struct Stats {
    uint64_t redirected = 0, passed = 0, no_socket = 0, parse_failed = 0;
  };
  static constexpr uint32_t kXskSlots = 4096;

  // Makes the maps and loads the program (IoError LVS_BPF with the verifier log on refusal).
  explicit Steering(const Options& o);
  ~Steering();
  Steering(const Steering&) = delete;
  Steering& operator=(const Steering&) = delete;

  const std::string& netns() const { return netns_; }
  bool closed() const;

  // bpf_link attachment: detached when closed or when the process exits. Auto tries native
  // first, then generic. Attaching an attached interface again in another mode re-attaches.
  XdpMode attach(uint32_t ifindex, XdpRequest mode);
  void detach(uint32_t ifindex);  // nothing attached: no error

  void add_service(uint8_t proto, uint16_t port, const IpBytes& a);
  void del_service(uint8_t proto, uint16_t port, const IpBytes& a);
  void add_nat_real(uint8_t proto, uint16_t port, const IpBytes& a);
  void del_nat_real(uint8_t proto, uint16_t port, const IpBytes& a);
  void add_local(const IpBytes& a);
  void del_local(const IpBytes& a);
  void add_prefix(const IpBytes& a, uint8_t prefix_len);
  void del_prefix(const IpBytes& a, uint8_t prefix_len);
  Stats stats() const;

  // Detach everywhere, unload, close the maps. Idempotent.
  void close();

  // For the AF_XDP ports (see XskRegistry).
  int xsk_slot(uint32_t ifindex, uint32_t queue, uint32_t queues) { return xsk_->slot(ifindex, queue, queues); }
  void set_xsk(int slot, int fd) { xsk_->set(slot, fd); }
  void clear_xsk(int slot) { xsk_->clear(slot); }
  XdpMode mode(uint32_t ifindex) const { return xsk_->mode(ifindex); }
  std::shared_ptr<XskRegistry> registry() const { return xsk_; }

  // Run the program once on a frame as received on (ifindex, queue) of the steering's
  // namespace (BPF_PROG_TEST_RUN): what it would do, without sending anything.
  bpf::TestRun test_run(const uint8_t* frame, uint32_t len, uint32_t ifindex, uint32_t queue);

  // Map key layouts (shared with the program generator in steer.cpp).
  using Key = std::array<uint8_t, 20>;    // {family, proto, port (network order), addr[16]}
  using LpmKey = std::array<uint8_t, 24>; // {prefixlen u32, family, 0, 0, 0, addr[16]}

 private:
  struct AddrRefs {
    uint32_t vip = 0, local = 0, natreal = 0;
  };
  void ensure_open() const;
  void ref(std::map<Key, uint32_t>& refs, int fd, const Key& k, bool add, const char* what);
  void addr_ref(const IpBytes& a, uint32_t AddrRefs::*field, bool add);
  void add_keyed(std::map<Key, uint32_t>& refs, int fd, uint32_t AddrRefs::*flag, uint8_t proto, uint16_t port,
                 const IpBytes& a, const char* what);
  void del_keyed(std::map<Key, uint32_t>& refs, int fd, uint32_t AddrRefs::*flag, uint8_t proto, uint16_t port,
                 const IpBytes& a, const char* what);

  std::string netns_;
  mutable std::mutex m_;
  bool closed_ = false;
  Fd services_, natreals_, addrs_, prefixes_, stats_, prog_;
  std::shared_ptr<XskRegistry> xsk_;
  std::map<uint32_t, std::pair<Fd, XdpMode>> links_;
  std::map<Key, uint32_t> service_refs_, natreal_refs_;
  std::map<Key, AddrRefs> addr_refs_;
  std::map<LpmKey, uint32_t> prefix_refs_;
  uint32_t cpus_ = 1;
};

}  // namespace lvsd
