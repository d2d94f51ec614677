// libFuzzer harness for the packet path: parse -> connection lookup / scheduling -> rewrite
// (NAT, direct routing, IPIP / IPv6 tunnels, fragmentation, ICMP errors) -> transmit.
//
// One manual-mode Dataplane (no threads, manual clock) is configured once in
// LLVMFuzzerInitialize and reused for every input, so connection state carries over between
// inputs (the connection table is kept small, so filling it and evicting from it happen too).
//
// Input format:
//   byte 0  flags: bit 0  ingress interface (0: client side, 1: real side)
//                  bit 1  byte 1 advances the manual clock by byte1 * 16 ms, up to ~4 s
//                         (expiry, ICMP rate-limit refill); otherwise time stands still
//                  bit 2  "prime": first send the fixture packets below (one batch), so that
//                         inputs about an existing flow (ACKs, NAT replies, ICMP errors quoting
//                         a VIP -> client packet) find their connection whatever came before
//                  bit 3  fix the frame's checksums (IPv4 header, TCP/UDP, ICMP) before
//                         sending it, so mutations get past the parser's checksum checks
//                  bits 4-5 both set: reconfigure (after the fixture packets, before the
//                         frame): delete real 198.19.0.12:8080 of the NAT service
//                         198.18.0.10:80, or add it back, and commit (connections to a deleted
//                         real, scheduler updates, snapshot reclamation, slot release); other
//                         values of the two bits do nothing
//                  bits 6-7 both set: before the frame, a burst of new flows from fresh
//                         client endpoints (UDP to the NAT VIP, plus a few to a service with
//                         no available real): fills the connection table, so that eviction
//                         and the ICMP rate limit are reached
//   [byte 1 clock step, when bit 1 is set]
//   rest    one Ethernet frame, sent alone
// The seed corpus (native/fuzz/corpus/) is written by scripts/fuzz-seeds.js, which uses the
// same addresses as the configuration below.
//
// Invariants checked on everything the dataplane emits (a violation prints a report and traps,
// so libFuzzer saves the input):
//   * 14 <= length <= MemoryPort::kMaxFrame + 80;
//   * Pass (to the kernel) frames are an input frame, unchanged;
//   * Tx frames leave on a configured interface, with that interface's MAC as source, carry
//     exactly one IP packet (no trailing bytes), no longer than the interface's MTU, that
//     lvsd::parse_frame accepts (so the IPv4 header checksum is right), except IPv4 fragments;
//     a tunnelled frame's inner packet must pass the same checks;
//   * the IPv4 fragments made from one packet reassemble into a whole packet (contiguous,
//     8-byte multiples, one last fragment) that parses, with a valid TCP/UDP checksum when the
//     input's was valid;
//   * a TCP/UDP Tx frame made from inputs whose TCP/UDP checksums were valid has a valid
//     checksum too (verified by full recomputation here, independently of native/packet/checksum.*).
//   (one exception, checked narrowly: an ICMPv6 error whose quote is cut by the 1280-byte
//   limit parses as Unhandled, see cut_icmp6_quote)
//
// LVSD_FUZZ_VERBOSE=1 prints what every frame produced (for checking seeds). At exit, the
// dataplane's non-zero global counters are printed (which paths a run reached).
#include <arpa/inet.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "control/layout.hpp"
#include "control/protocol.hpp"
#include "control/ring.hpp"
#include "engine/counters.hpp"
#include "engine/dataplane.hpp"
#include "io/memory.hpp"
#include "packet/bytes.hpp"
#include "packet/parse.hpp"

using namespace lvsd;

namespace {

bool g_verbose = false;

// ---------------------------------------------------------------------------------------------
// Failure reporting

const uint8_t* g_input = nullptr;  // the fuzzed frame while its outputs are checked
uint32_t g_input_len = 0;

void hexdump(const char* what, const uint8_t* p, uint32_t n) {
  std::fprintf(stderr, "%s (%u bytes):", what, n);
  for (uint32_t i = 0; i < n; ++i) std::fprintf(stderr, "%s%02x", i % 32 ? "" : "\n  ", p[i]);
  std::fprintf(stderr, "\n");
}

[[noreturn]] void violation(const char* what, const uint8_t* out, uint32_t out_len, int line) {
  std::fprintf(stderr, "\n==fuzz_packet== INVARIANT VIOLATED: %s (fuzz_packet.cpp:%d)\n", what, line);
  if (g_input) hexdump("input frame", g_input, g_input_len);
  if (out) hexdump("output frame", out, out_len);
  __builtin_trap();
}

#define CHECK(cond, what, out, len)                   \
  do {                                                \
    if (!(cond)) violation(what, out, len, __LINE__); \
  } while (0)

// ---------------------------------------------------------------------------------------------
// Internet checksum, written here on purpose (not native/packet/checksum.*): the check must
// not share a bug with the code it checks.

uint64_t ones_sum(const uint8_t* p, size_t n, uint64_t acc) {
  for (; n >= 2; p += 2, n -= 2) acc += uint32_t(p[0]) << 8 | p[1];
  if (n) acc += uint32_t(p[0]) << 8;  // odd length: pad with a zero byte
  return acc;
}

uint16_t fold(uint64_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return uint16_t(s);
}

uint16_t be16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
void put16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}

// Pseudo-header sum (RFC 793 / RFC 8200 8.1) from the addresses in the IP header at `ip`.
uint64_t pseudo_sum(const uint8_t* ip, uint8_t af, uint8_t proto, uint32_t len) {
  uint64_t s = af == AF_V4 ? ones_sum(ip + 12, 8, 0) : ones_sum(ip + 8, 32, 0);
  return s + (len >> 16) + (len & 0xffff) + proto;
}

// Where a TCP/UDP checksum lives and what it covers: the TCP segment, or the UDP length field.
uint32_t l4_check_at(const PacketView& pv) { return pv.l4 + (pv.proto == PROTO_TCP ? 16 : 6); }
uint32_t l4_cover(const uint8_t* f, const PacketView& pv) {
  return pv.proto == PROTO_TCP ? pv.l3_end() - pv.l4 : be16(f + pv.l4 + 4);
}

enum class L4Sum { NotL4, None, Good, Bad };

// The TCP/UDP checksum state of a frame parse_frame accepted.
L4Sum l4_sum(const uint8_t* f, const PacketView& pv) {
  if (pv.proto != PROTO_TCP && pv.proto != PROTO_UDP) return L4Sum::NotL4;
  if (pv.proto == PROTO_UDP && pv.af == AF_V4 && be16(f + l4_check_at(pv)) == 0)
    return L4Sum::None;  // IPv4 UDP: "no checksum"
  const uint32_t len = l4_cover(f, pv);
  const uint64_t s = ones_sum(f + pv.l4, len, pseudo_sum(f + pv.l3, pv.af, pv.proto, len));
  return fold(s) == 0xffff ? L4Sum::Good : L4Sum::Bad;
}

// Flag bit 3: make a fuzzed frame's checksums right. The IPv4 header checksum first (parse_frame
// stops at a bad one), then whatever parse_frame locates: TCP/UDP (an IPv4 UDP checksum of 0
// stays "none") or ICMP/ICMPv6. Quoted packets inside ICMP errors are left as they are.
// Also used to build the fixture packets.
void fix_checksums(uint8_t* f, uint32_t n) {
  if (n < 14) return;
  uint32_t off = 12;
  uint16_t type = be16(f + off);
  if (type == ETH_P_8021Q) {
    if (n < 18) return;
    off += 4;
    type = be16(f + off);
  }
  off += 2;
  if (type == ETH_P_IPV4) {
    if (n - off < 20 || (f[off] >> 4) != 4) return;
    const uint32_t ihl = uint32_t(f[off] & 15) * 4;
    if (ihl < 20 || ihl > n - off) return;
    put16(f + off + 10, 0);
    put16(f + off + 10, uint16_t(~fold(ones_sum(f + off, ihl, 0))));
  } else if (type != ETH_P_IPV6) {
    return;
  }
  PacketView pv;
  const ParseStatus st = parse_frame(f, n, pv);
  // (An IPv6 UDP checksum of 0 is invalid: parse_frame says so, having located the header.)
  if ((st == ParseStatus::Ok && (pv.proto == PROTO_TCP || pv.proto == PROTO_UDP)) ||
      st == ParseStatus::Udp6ZeroChecksum) {
    uint8_t* check = f + l4_check_at(pv);
    if (pv.proto == PROTO_UDP && pv.af == AF_V4 && be16(check) == 0) return;
    const uint32_t len = l4_cover(f, pv);
    put16(check, 0);
    uint16_t c = uint16_t(~fold(ones_sum(f + pv.l4, len, pseudo_sum(f + pv.l3, pv.af, pv.proto, len))));
    if (pv.proto == PROTO_UDP && c == 0) c = 0xffff;
    put16(check, c);
  } else if ((st == ParseStatus::Ok || st == ParseStatus::IcmpBadChecksum) &&
             (pv.proto == PROTO_ICMP || pv.proto == PROTO_ICMPV6)) {
    const uint32_t len = pv.l3_end() - pv.l4;
    put16(f + pv.l4 + 2, 0);
    uint64_t s = ones_sum(f + pv.l4, len, 0);
    if (pv.af == AF_V6) s = pseudo_sum(f + pv.l3, AF_V6, PROTO_ICMPV6, len) + s;
    put16(f + pv.l4 + 2, uint16_t(~fold(s)));
  }
}

// ---------------------------------------------------------------------------------------------
// ICMPv6 errors with a cut quote

// An ICMPv6 error is at most 1280 bytes (RFC 4443 2.4(c)), so the director's own error about a
// long packet may quote it only up to somewhere inside its extension headers or before its
// ports. parse_frame classifies such an error as Unhandled (the kernel's: it cannot be related
// to a flow) since b209e80 (fuzzer finding F1, native/fuzz/findings/README.md). A Tx frame may
// therefore parse as Unhandled only when it is exactly that: checked here independently, by
// walking the quoted extension headers.
bool cut_icmp6_quote(const uint8_t* f, const PacketView& pv) {
  if (pv.af != AF_V6 || pv.proto != PROTO_ICMPV6 || pv.l3_end() < pv.l4 + 8u) return false;
  if (f[pv.l4] < 1 || f[pv.l4] > 4) return false;  // ICMPv6 error types
  const uint8_t* q = f + pv.l4 + 8;
  const uint32_t quote = pv.l3_end() - (pv.l4 + 8);
  if (quote < 40 || (q[0] >> 4) != 6 || 40u + be16(q + 4) <= quote) return false;  // not cut
  uint8_t nh = q[6];
  uint32_t off = 40;
  for (int i = 0; i < 9; ++i) {
    if (nh == 0 || nh == 43 || nh == 60 || nh == 51 || nh == 44) {
      if (off + 8 > quote) return true;
      const uint32_t len = nh == 44 ? 8 : nh == 51 ? (q[off + 1] + 2u) * 4 : (q[off + 1] + 1u) * 8;
      if (off + len > quote) return true;
      nh = q[off];
      off += len;
    } else {
      return off + 8 > quote;  // the quote stops before the first 8 bytes of the L4 header
    }
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// The fixture: interfaces, services and reals. scripts/fuzz-seeds.js uses the same values.

Addr ip(const char* s) {
  Addr a;
  if (std::strchr(s, ':')) {
    if (inet_pton(AF_INET6, s, a.b) != 1) std::abort();
  } else if (inet_pton(AF_INET, s, a.b) != 1) {
    std::abort();
  }
  return a;
}

constexpr uint32_t kInterfaces = 3;
constexpr uint32_t kIfaceMtu[kInterfaces] = {1500, 1400, 1500};
constexpr uint8_t kIfaceMac[kInterfaces][6] = {{0x02, 0x00, 0x00, 0x00, 0x00, 0x01},
                                               {0x02, 0x00, 0x00, 0x00, 0x01, 0x01},
                                               {0x02, 0x00, 0x00, 0x00, 0x02, 0x01}};
constexpr uint8_t kClientMac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x64};
constexpr uint8_t kZeroMac[6] = {};
// Real servers' MACs: 02:00:00:00:01:<last byte of the real's address>.
struct RealMac {
  uint8_t b[6];
};
RealMac real_mac(uint8_t last) { return RealMac{{0x02, 0x00, 0x00, 0x00, 0x01, last}}; }

struct ServiceOpts {
  uint8_t sched = proto::SCH_RR;
  uint32_t persist_s = 0;  // > 0: persistent (IPv4 /24 netmask)
  uint32_t fwmark = 0;     // > 0: a firewall-mark service (proto, vip and port unused)
};

class Fixture {
 public:
  Fixture() {
    opts_.layout.workers = 1;
    opts_.layout.max_services = 16;
    opts_.layout.max_reals = 64;
    opts_.layout.command_ring_words = 1u << 12;
    opts_.layout.event_ring_words = 1u << 12;
    // Small, so that the table fills (eviction of embryonic entries) within the UDP timeout
    // (300 s) despite the clock steps: bursts add 6 flows, and an input moves the clock by
    // ~1 s on average.
    opts_.conn_capacity = 1024;
    opts_.threaded = false;
    opts_.manual_clock = true;
    opts_.memory_slots = 64;
    opts_.seed = 0x5eed;         // deterministic hashing
    layout_ = Layout::compute(opts_.layout);
    region_.assign((layout_.total + 7) / 8, 0);  // zeroed, 8-byte aligned
    set_clock(1000);
    dp_ = std::make_unique<Dataplane>(opts_, bytes(), layout_.total, nullptr);
    configure();
  }

  Dataplane& dp() { return *dp_; }
  uint64_t clock() const { return clock_; }
  void set_clock(uint64_t ms) {
    clock_ = ms;
    std::atomic_ref<uint64_t>(region_[Layout::kClockWord / 2]).store(ms, std::memory_order_relaxed);
  }

  // Flag bits 4-5: take the real in slot 1 out of its service, or put it back, and commit.
  void toggle_real() {
    if (real1_present_) push(proto::OP_DEL_REAL, {1});
    else set_nat_real1();
    real1_present_ = !real1_present_;
    ++gen_;
    push(proto::OP_COMMIT, {uint32_t(gen_), uint32_t(gen_ >> 32)});
  }

  // The dataplane's global counters (worker 0), or null past the last one.
  const char* counter(uint32_t i, uint64_t& value) const {
    if (i >= C_COUNT) return nullptr;
    const uint64_t* g = reinterpret_cast<const uint64_t*>(
        reinterpret_cast<const uint8_t*>(region_.data()) + layout_.stats);
    value = std::atomic_ref<const uint64_t>(g[i]).load(std::memory_order_relaxed);
    if (i >= C_DROP_PARSE_BASE) return parse_status_name(ParseStatus(i - C_DROP_PARSE_BASE));
    return counter_name(i);
  }

  // Consume every event so the rings never fill; returns how many EV_REJECTED were seen.
  uint32_t drain_events() {
    uint32_t rejected = 0;
    for (uint32_t off : layout_.event_rings) {
      Ring r(bytes() + off, layout_.event_ring_words);
      while (const uint32_t* msg = r.peek()) {
        if ((msg[0] >> 16) == proto::EV_REJECTED) {
          std::fprintf(stderr, "fuzz_packet: command rejected: op %u code %u\n", msg[1], msg[2]);
          ++rejected;
        }
        r.pop(msg);
      }
    }
    return rejected;
  }

 private:
  uint8_t* bytes() { return reinterpret_cast<uint8_t*>(region_.data()); }

  void push(uint32_t op, const std::vector<uint32_t>& w) {
    Ring cmd(bytes() + layout_.command_ring, layout_.command_ring_words);
    if (!cmd.push(op, w.data(), uint32_t(w.size()))) std::abort();
  }
  static void put_addr(std::vector<uint32_t>& w, const Addr& a) {
    for (int i = 0; i < 4; ++i) w.push_back(load32(a.b + 4 * i));
  }
  static void put_mac(std::vector<uint32_t>& w, const uint8_t* m) {
    w.push_back(load32(m));
    w.push_back(uint32_t(m[4]) << 8 | m[5]);
  }

  // OP_SET_INTERFACE [id, mtu, vlan, flags, mac_hi32, mac_lo16, v4, v6 x4]
  void set_interface(uint32_t id, uint32_t mtu, uint32_t vlan, const char* v4, const char* v6) {
    std::vector<uint32_t> w{id, mtu, vlan, 3};  // flags: has IPv4 and IPv6
    put_mac(w, kIfaceMac[id]);
    w.push_back(load32(ip(v4).b));
    put_addr(w, ip(v6));
    push(proto::OP_SET_INTERFACE, w);
  }
  // OP_SET_SERVICE [slot, af, proto, port, fwmark, sched, flags, persist_s, pmask_plen,
  //                 vip x4, pmask x4, lc_epoch, mh_size]
  void set_service(uint32_t slot, uint8_t proto_, const char* vip, uint16_t port, ServiceOpts o = {}) {
    const uint32_t af = std::strchr(vip, ':') ? AF_V6 : AF_V4;
    const uint32_t flags = o.persist_s ? proto::SVC_F_PERSISTENT : 0;
    std::vector<uint32_t> w{slot, af, proto_, port, o.fwmark, o.sched, flags, o.persist_s,
                            o.persist_s ? 24u : 0u};
    put_addr(w, ip(vip));
    put_addr(w, o.persist_s ? ip("255.255.255.0") : Addr{});
    w.push_back(0);  // lc_epoch
    w.push_back(0);  // mh_size (Maglev only)
    push(proto::OP_SET_SERVICE, w);
  }
  // OP_SET_MARKS [first, count, rule]: rule = [af, proto, dst x4, dst_plen, src x4, src_plen,
  //              port_lo, port_hi, mark]
  void set_mark_rule(const char* dst, uint8_t proto_, uint32_t mark) {
    std::vector<uint32_t> w{1, 1, AF_V4, proto_};
    put_addr(w, ip(dst));
    w.push_back(32);
    put_addr(w, Addr{});
    w.push_back(0);
    w.push_back(1);
    w.push_back(65535);
    w.push_back(mark);
    push(proto::OP_SET_MARKS, w);
  }
  // OP_SET_REAL [slot, svc, af, port, weight, fwd, u_thresh, l_thresh, iface, flags,
  //              mac_hi32, mac_lo16, addr x4]
  void set_real(uint32_t slot, uint32_t svc, const char* addr, uint16_t port, uint32_t weight,
                uint8_t fwd, const uint8_t* mac, uint32_t iface = 1) {
    const uint32_t af = std::strchr(addr, ':') ? AF_V6 : AF_V4;
    std::vector<uint32_t> w{slot, svc, af, port, weight, fwd, 0, 0, iface, 0};
    put_mac(w, mac);
    put_addr(w, ip(addr));
    push(proto::OP_SET_REAL, w);
  }

  void set_nat_real1() { set_real(1, 0, "198.19.0.12", 8080, 1, proto::FWD_NAT, real_mac(12).b); }

  void configure() {
    using namespace proto;
    // Client side: MTU 1500. Real side: MTU 1400, so tunnel overhead, fragmentation and
    // "too big" are reachable with ordinary frames. Interface 2 (one real behind it) tags
    // what it sends with VLAN 100.
    set_interface(0, kIfaceMtu[0], 0, "198.18.0.1", "2001:db8::1");
    set_interface(1, kIfaceMtu[1], 0, "198.19.0.1", "2001:db8:1::1");
    set_interface(2, kIfaceMtu[2], 100, "198.19.2.1", "2001:db8:2::1");

    set_service(0, PROTO_TCP, "198.18.0.10", 80);  // NAT
    set_real(0, 0, "198.19.0.11", 8080, 1, FWD_NAT, real_mac(11).b);
    set_nat_real1();
    set_real(2, 0, "198.19.0.19", 8080, 0, FWD_NAT, real_mac(19).b);  // weight 0: never picked

    set_service(1, PROTO_UDP, "198.18.0.10", 53);  // NAT, one real: replies are predictable
    set_real(3, 1, "198.19.0.11", 53, 1, FWD_NAT, real_mac(11).b);

    set_service(2, PROTO_TCP, "198.18.0.20", 80);  // direct routing
    // Reals go to the head of the list, so the resolved one (added last) is picked first.
    set_real(4, 2, "198.19.0.22", 80, 1, FWD_DIRECT, kZeroMac);  // unresolved next hop
    set_real(5, 2, "198.19.0.21", 80, 1, FWD_DIRECT, real_mac(21).b);

    set_service(3, PROTO_TCP, "198.18.0.30", 80);  // IPIP tunnel
    set_real(6, 3, "198.19.0.31", 80, 1, FWD_TUNNEL, real_mac(31).b);

    set_service(4, PROTO_TCP, "198.18.0.31", 80);  // IPv4 in IPv6 tunnel
    set_real(7, 4, "2001:db8:1::31", 80, 1, FWD_TUNNEL, real_mac(0x31).b);

    set_service(5, PROTO_TCP, "2001:db8::10", 80);  // IPv6 NAT
    set_real(8, 5, "2001:db8:1::11", 8080, 1, FWD_NAT, real_mac(0x11).b);
    set_real(9, 5, "2001:db8:1::12", 8080, 1, FWD_NAT, real_mac(0x12).b);

    set_service(6, PROTO_UDP, "2001:db8::20", 53);  // IPv6 direct routing, via VLAN 100
    set_real(10, 6, "2001:db8:2::21", 53, 1, FWD_DIRECT, real_mac(0x21).b, 2);

    // Persistence (templates per client /24, 60 s) with a dynamic scheduler (wlc).
    set_service(9, PROTO_TCP, "198.18.0.50", 80, {proto::SCH_WLC, 60, 0});
    set_real(13, 9, "198.19.0.51", 8080, 1, FWD_NAT, real_mac(51).b);
    set_real(14, 9, "198.19.0.52", 8080, 2, FWD_NAT, real_mac(52).b);
    // A firewall-mark service: TCP to 198.18.0.60 on any port is marked 7 (lc, persistent,
    // port-0 reals keep the client's destination port).
    set_mark_rule("198.18.0.60", PROTO_TCP, 7);
    set_service(10, 0, "0.0.0.0", 0, {proto::SCH_LC, 30, 7});
    set_real(15, 10, "198.19.0.62", 0, 1, FWD_DIRECT, real_mac(62).b);
    set_real(16, 10, "198.19.0.61", 0, 1, FWD_NAT, real_mac(61).b);  // head of the list

    // Services whose only real has weight 0: no destination, ICMP port unreachable.
    set_service(7, PROTO_TCP, "198.18.0.40", 80);
    set_real(11, 7, "198.19.0.41", 80, 0, FWD_NAT, real_mac(41).b);
    set_service(8, PROTO_UDP, "2001:db8::40", 53);
    set_real(12, 8, "2001:db8:1::41", 53, 0, FWD_NAT, real_mac(0x41).b);

    push(OP_COMMIT, {uint32_t(gen_), 0});
    dp_->poll();
    if (drain_events() != 0) {
      std::fprintf(stderr, "fuzz_packet: the fixture configuration was rejected\n");
      std::abort();
    }
  }

  DataplaneOptions opts_;
  Layout layout_;
  std::vector<uint64_t> region_;
  std::unique_ptr<Dataplane> dp_;
  uint64_t clock_ = 0;
  uint64_t gen_ = 1;  // configuration generation last committed
  bool real1_present_ = true;
};

Fixture* g_fixture = nullptr;

// ---------------------------------------------------------------------------------------------
// Fixture packets ("prime"): connections that seeds for existing flows refer to.

struct Frame {
  std::vector<uint8_t> bytes;
  uint16_t iface;
};
std::vector<Frame> g_prime;
Frame g_frame;  // the fuzzed frame (a reused buffer)

// Ethernet (client MAC -> interface 0) + IPv4/IPv6 header + a TCP SYN or a small UDP datagram.
std::vector<uint8_t> make_packet(const Addr& src, const Addr& dst, bool v6, uint8_t proto_,
                                 uint16_t sport, uint16_t dport) {
  const uint32_t l4len = proto_ == PROTO_TCP ? 20 : 12;
  const uint32_t iplen = (v6 ? 40 : 20) + l4len;
  std::vector<uint8_t> f(14 + iplen, 0);
  std::memcpy(f.data(), kIfaceMac[0], 6);
  std::memcpy(f.data() + 6, kClientMac, 6);
  put16(f.data() + 12, v6 ? ETH_P_IPV6 : ETH_P_IPV4);
  uint8_t* p = f.data() + 14;
  if (v6) {
    p[0] = 0x60;
    put16(p + 4, uint16_t(l4len));
    p[6] = proto_;
    p[7] = 64;
    std::memcpy(p + 8, src.b, 16);
    std::memcpy(p + 24, dst.b, 16);
    p += 40;
  } else {
    p[0] = 0x45;
    put16(p + 2, uint16_t(iplen));
    put16(p + 6, 0x4000);  // DF
    p[8] = 64;
    p[9] = proto_;
    std::memcpy(p + 12, src.b, 4);
    std::memcpy(p + 16, dst.b, 4);
    p += 20;
  }
  put16(p, sport);
  put16(p + 2, dport);
  if (proto_ == PROTO_TCP) {
    p[4] = 1;  // sequence number
    p[12] = 5 << 4;
    p[13] = TCP_SYN;
    put16(p + 14, 64240);
  } else {
    put16(p + 4, uint16_t(l4len));
    std::memcpy(p + 8, "fuzz", 4);
  }
  fix_checksums(f.data(), uint32_t(f.size()));
  return f;
}

std::vector<uint8_t> make_packet(const char* src, const char* dst, uint8_t proto_, uint16_t sport,
                                 uint16_t dport) {
  return make_packet(ip(src), ip(dst), std::strchr(src, ':') != nullptr, proto_, sport, dport);
}

void build_prime() {
  // Clients 198.18.0.100 / 2001:db8::100, port 40000 for TCP and 5353 for UDP.
  g_prime.push_back({make_packet("198.18.0.100", "198.18.0.10", PROTO_TCP, 40000, 80), 0});
  g_prime.push_back({make_packet("198.18.0.100", "198.18.0.10", PROTO_UDP, 5353, 53), 0});
  g_prime.push_back({make_packet("198.18.0.100", "198.18.0.20", PROTO_TCP, 40000, 80), 0});
  g_prime.push_back({make_packet("198.18.0.100", "198.18.0.30", PROTO_TCP, 40000, 80), 0});
  g_prime.push_back({make_packet("198.18.0.100", "198.18.0.31", PROTO_TCP, 40000, 80), 0});
  g_prime.push_back({make_packet("2001:db8::100", "2001:db8::10", PROTO_TCP, 40000, 80), 0});
  g_prime.push_back({make_packet("2001:db8::100", "2001:db8::20", PROTO_UDP, 5353, 53), 0});
  g_prime.push_back({make_packet("198.18.0.100", "198.18.0.50", PROTO_TCP, 40000, 80), 0});
  g_prime.push_back({make_packet("198.18.0.100", "198.18.0.60", PROTO_TCP, 40000, 443), 0});
}

// Flags bits 6-7: 6 UDP flows to 198.18.0.10:53 (NAT) and 2 datagrams to [2001:db8::40]:53
// (no available real: ICMPv6 port unreachable), each from a client endpoint not used before.
uint32_t g_burst_seq = 0;

std::vector<Frame> make_burst() {
  std::vector<Frame> burst;
  for (int i = 0; i < 8; ++i, ++g_burst_seq) {
    const uint16_t sport = uint16_t(1024 + (g_burst_seq >> 15) % 60000);
    Addr src;
    if (i < 6) {
      src = ip("198.18.128.0");
      store16(src.b + 2, uint16_t(0x8000 | (g_burst_seq & 0x7fff)));  // 198.18.128.0/17
      burst.push_back({make_packet(src, ip("198.18.0.10"), false, PROTO_UDP, sport, 53), 0});
    } else {
      src = ip("2001:db8::1:0");
      store16(src.b + 14, uint16_t(g_burst_seq));
      burst.push_back({make_packet(src, ip("2001:db8::40"), true, PROTO_UDP, sport, 53), 0});
    }
  }
  return burst;
}

// ---------------------------------------------------------------------------------------------
// Output checks

// What an input frame was, as far as the checks on its outputs care.
struct InputInfo {
  const uint8_t* data;
  uint32_t len;
  L4Sum l4;  // NotL4 unless it parsed as a (non-ICMP) TCP/UDP packet
};

InputInfo classify_input(const uint8_t* data, uint32_t len) {
  InputInfo in{data, len, L4Sum::NotL4};
  // An exact-size heap copy (parse_frame takes a mutable frame): inside the dataplane the frame
  // sits in a larger slot, so this is where ASan sees a parser read past the end of a frame.
  std::vector<uint8_t> copy(data, data + len);
  PacketView pv;
  if (parse_frame(copy.data(), len, pv) == ParseStatus::Ok && !pv.icmp_error)
    in.l4 = l4_sum(copy.data(), pv);
  return in;
}

// IPv4 fragments transmitted for the current batch, to be reassembled once it is drained.
struct Piece {
  std::vector<uint8_t> header;  // IP header (of the fragment at offset 0: the one to keep)
  std::vector<uint8_t> payload;
  uint32_t offset;              // bytes
  bool more;
  uint8_t key[11];              // source, destination, protocol, id
};
std::vector<Piece> g_pieces;

void check_ip_frame(uint8_t* f, uint32_t len, bool inputs_valid, uint32_t mtu);

// The fragments of each original packet must cover it exactly, and the packet they make must
// parse (with a right TCP/UDP checksum when the input's was right).
void check_reassembly(bool inputs_valid) {
  while (!g_pieces.empty()) {
    std::vector<Piece> group;
    const Piece first = g_pieces.front();
    for (auto it = g_pieces.begin(); it != g_pieces.end();) {
      if (std::memcmp(it->key, first.key, sizeof first.key) == 0) {
        group.push_back(std::move(*it));
        it = g_pieces.erase(it);
      } else {
        ++it;
      }
    }
    std::sort(group.begin(), group.end(), [](const Piece& a, const Piece& b) { return a.offset < b.offset; });
    std::vector<uint8_t> ip_ = group.front().header;
    CHECK(group.front().offset == 0, "fragments without a first one", ip_.data(), uint32_t(ip_.size()));
    uint32_t next = 0;
    for (size_t i = 0; i < group.size(); ++i) {
      const Piece& p = group[i];
      const bool last = i + 1 == group.size();
      CHECK(p.offset == next, "fragments overlap or leave a gap", p.header.data(), uint32_t(p.header.size()));
      CHECK(p.more == !last, "fragment 'more fragments' flag wrong", p.header.data(), uint32_t(p.header.size()));
      CHECK(last || p.payload.size() % 8 == 0, "non-last fragment payload not a multiple of 8",
            p.header.data(), uint32_t(p.header.size()));
      ip_.insert(ip_.end(), p.payload.begin(), p.payload.end());
      next += uint32_t(p.payload.size());
    }
    // The reassembled packet: the first fragment's header with its length and flags fixed.
    CHECK(ip_.size() <= 65535, "reassembled packet too long", nullptr, 0);
    put16(ip_.data() + 2, uint16_t(ip_.size()));
    put16(ip_.data() + 6, uint16_t(be16(ip_.data() + 6) & 0x4000));
    const uint32_t ihl = uint32_t(ip_[0] & 15) * 4;
    put16(ip_.data() + 10, 0);
    put16(ip_.data() + 10, uint16_t(~fold(ones_sum(ip_.data(), ihl, 0))));
    std::vector<uint8_t> e(14);
    put16(e.data() + 12, ETH_P_IPV4);
    e.insert(e.end(), ip_.begin(), ip_.end());
    if (g_verbose) std::fprintf(stderr, "  %zu fragments reassembled: %zu bytes\n", group.size(), ip_.size());
    check_ip_frame(e.data(), uint32_t(e.size()), inputs_valid, 0);
  }
}

// Checks on the IP packet of a Tx frame: `f` is an Ethernet frame of `len` bytes (for a
// tunnelled or reassembled packet, a synthetic Ethernet header in front of it).
// `inputs_valid`: the TCP/UDP checksums of the input(s) were valid, so this one must be too.
// `mtu`: the egress interface's, for what goes on the wire; 0 for an inner or reassembled packet.
void check_ip_frame(uint8_t* f, uint32_t len, bool inputs_valid, uint32_t mtu) {
  PacketView pv;
  const ParseStatus st = parse_frame(f, len, pv);
  if (st == ParseStatus::Fragment || st == ParseStatus::Ok || st == ParseStatus::Unhandled)
    CHECK(!mtu || pv.ip_len <= mtu, "a Tx packet is larger than the interface MTU", f, len);
  if (st == ParseStatus::Fragment) {
    CHECK(pv.af == AF_V4, "an IPv6 fragment was transmitted", f, len);
    CHECK(pv.l3_end() == len, "bytes after the IP packet in a Tx frame", f, len);
    Piece p;
    p.header.assign(f + pv.l3, f + pv.l3 + pv.l3_len);
    p.payload.assign(f + pv.l3 + pv.l3_len, f + pv.l3_end());
    const uint16_t frag = be16(f + pv.l3 + 6);
    p.offset = uint32_t(frag & 0x1fff) * 8;
    p.more = (frag & 0x2000) != 0;
    std::memcpy(p.key, f + pv.l3 + 12, 8);
    p.key[8] = pv.proto;
    std::memcpy(p.key + 9, f + pv.l3 + 4, 2);
    g_pieces.push_back(std::move(p));
    return;
  }
  if (mtu && st == ParseStatus::Unhandled && (pv.proto == PROTO_IPIP || pv.proto == PROTO_IPV6)) {
    // A tunnelled packet: the outer header parsed (IPv4: checksum verified); check the inner.
    CHECK(pv.l3_end() == len, "bytes after the IP packet in a Tx frame", f, len);
    CHECK(pv.l3_len == (pv.af == AF_V4 ? 20 : 40), "tunnel header with options", f, len);
    const uint32_t inner_len = pv.l3_end() - pv.l4;
    CHECK(inner_len >= 1, "empty tunnel payload", f, len);
    const uint8_t version = f[pv.l4] >> 4;
    CHECK((pv.proto == PROTO_IPIP && version == 4) || (pv.proto == PROTO_IPV6 && version == 6),
          "tunnel payload does not match the outer protocol", f, len);
    std::vector<uint8_t> e(14 + inner_len);
    std::memcpy(e.data(), f, 12);
    put16(e.data() + 12, version == 4 ? ETH_P_IPV4 : ETH_P_IPV6);
    std::memcpy(e.data() + 14, f + pv.l4, inner_len);
    check_ip_frame(e.data(), uint32_t(e.size()), inputs_valid, 0);
    return;
  }
  if (st == ParseStatus::Unhandled && mtu && cut_icmp6_quote(f, pv)) {
    CHECK(pv.l3_end() == len, "bytes after the IP packet in a Tx frame", f, len);
    return;
  }
  if (st != ParseStatus::Ok) {
    std::fprintf(stderr, "parse status of the %s packet: %u\n", mtu ? "output" : "inner", unsigned(st));
    violation("a Tx frame does not parse", f, len, __LINE__);
  }
  CHECK(pv.l3_end() == len, "bytes after the IP packet in a Tx frame", f, len);
  if (pv.icmp_error) return;  // ICMP: its checksum was verified by parse_frame
  if (inputs_valid) CHECK(l4_sum(f, pv) != L4Sum::Bad, "TCP/UDP checksum broken by the dataplane", f, len);
}

// Check one output of a batch made of the frames `in`. `inputs_valid`: they all had valid
// TCP/UDP checksums, so the outputs must too (the fuzzed frame always goes alone; fixture
// packets are all valid).
void check_output(const MemoryPort::Output& o, const std::vector<InputInfo>& in, bool inputs_valid) {
  CHECK(o.len >= 14 && o.len <= MemoryPort::kMaxFrame + 80, "output frame length out of range",
        o.data, o.len < 4096 ? o.len : 4096);
  if (o.verdict == Verdict::Pass) {
    bool unchanged = false;
    for (const InputInfo& i : in) unchanged |= o.len == i.len && std::memcmp(o.data, i.data, i.len) == 0;
    CHECK(unchanged, "a frame handed to the kernel was modified", o.data, o.len);
    return;
  }
  CHECK(o.verdict == Verdict::Tx, "output with a Drop verdict", o.data, o.len);
  CHECK(o.iface < kInterfaces, "Tx on an interface that does not exist", o.data, o.len);
  CHECK(std::memcmp(o.data + 6, kIfaceMac[o.iface], 6) == 0,
        "Tx frame source MAC is not the egress interface's", o.data, o.len);
  std::vector<uint8_t> copy(o.data, o.data + o.len);
  check_ip_frame(copy.data(), o.len, inputs_valid, kIfaceMtu[o.iface]);
}

// Inject frames (one batch), run the dataplane, and check everything that comes out.
void run_frames(const Frame* frames, size_t n) {
  Dataplane& dp = g_fixture->dp();
  MemoryPort& port = dp.memory(0);
  std::vector<InputInfo> in;
  for (size_t i = 0; i < n; ++i) {
    const Frame& f = frames[i];
    // A frame larger than a slot is not one the dataplane can receive.
    if (port.inject(f.iface, f.bytes.data(), uint32_t(f.bytes.size())))
      in.push_back(classify_input(f.bytes.data(), uint32_t(f.bytes.size())));
  }
  if (in.empty()) return;
  g_input = in.size() == 1 ? in[0].data : nullptr;
  g_input_len = in.size() == 1 ? in[0].len : 0;
  bool inputs_valid = true;
  for (const InputInfo& i : in) inputs_valid &= i.l4 == L4Sum::Good || i.l4 == L4Sum::None;
  dp.poll();
  MemoryPort::Output o;
  uint32_t outputs = 0;
  while (port.peek_output(o)) {
    if (g_verbose)
      std::fprintf(stderr, "  %zu frame(s) in -> %s on %u, %u bytes\n", in.size(),
                   o.verdict == Verdict::Tx ? "tx" : o.verdict == Verdict::Pass ? "pass" : "drop",
                   o.iface, o.len);
    check_output(o, in, inputs_valid);
    port.pop_output();
    ++outputs;
  }
  if (g_verbose && outputs == 0) std::fprintf(stderr, "  %zu frame(s) in -> nothing out\n", in.size());
  check_reassembly(inputs_valid);
  g_fixture->drain_events();
  g_input = nullptr;
}

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v && *v && *v != '0';
}

// At exit: the dataplane counters (drop reasons from the parser prefixed "parse_").
void report_at_exit() {
  std::string line = "fuzz_packet: dataplane counters:";
  uint64_t v = 0;
  for (uint32_t i = 0; const char* name = g_fixture->counter(i, v); ++i) {
    if (!v) continue;
    line += ' ';
    if (i >= C_DROP_PARSE_BASE) line += "parse_";
    line += name;
    line += '=';
    line += std::to_string(v);
  }
  std::fprintf(stderr, "%s\n", line.c_str());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_verbose = env_flag("LVSD_FUZZ_VERBOSE");
  g_fixture = new Fixture();  // lives for the whole process
  build_prime();
  g_frame.bytes.reserve(4096);  // data() is never null, even for an empty input
  std::atexit(report_at_exit);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  size_t pos = 1;
  if ((flags & 2) && pos < size) g_fixture->set_clock(g_fixture->clock() + uint64_t(data[pos++]) * 16);
  if (flags & 4) run_frames(g_prime.data(), g_prime.size());
  if ((flags & 0x30) == 0x30) g_fixture->toggle_real();  // applied by the next poll
  if ((flags & 0xc0) == 0xc0) {
    const std::vector<Frame> burst = make_burst();
    run_frames(burst.data(), burst.size());
  }
  g_frame.bytes.assign(data + pos, data + size);
  g_frame.iface = uint16_t(flags & 1);
  if (flags & 8) fix_checksums(g_frame.bytes.data(), uint32_t(g_frame.bytes.size()));
  run_frames(&g_frame, 1);
  return 0;
}
