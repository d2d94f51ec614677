// libFuzzer harness for the packet path: parse -> connection lookup / scheduling -> rewrite
// (NAT, direct routing, IPIP / IPv6 tunnels, fragmentation, ICMP errors) -> transmit.
//
// One manual-mode Dataplane (no threads, manual clock) is configured once in
// LLVMFuzzerInitialize and reused for every input, so connection state carries over between
// inputs (the connection table is kept small, so filling it and evicting from it happen too).
//
// Input format:
//   byte 0  flags: bit 0  ingress interface (0: client side, 1: real side)
//                  bit 1  byte 1 advances the manual clock by byte1 * 250 ms (expiry)
//                  bit 2  "prime": first (re)send the fixture packets below, so that inputs
//                         about an existing flow (ACKs, NAT replies, ICMP errors quoting a
//                         VIP -> client packet) find their connection whatever came before
//   [byte 1 clock step, when bit 1 is set]
//   rest    one Ethernet frame
// The seed corpus (native/fuzz/corpus/) is written by scripts/fuzz-seeds.js, which uses the
// same addresses as the configuration below.
//
// Invariants checked on everything the dataplane emits (a violation traps, so libFuzzer saves
// the input as a crash):
//   * 14 <= length <= MemoryPort::kMaxFrame + 80;
//   * Pass (to the kernel) frames are the input frame, unchanged;
//   * Tx frames leave on a configured interface, with that interface's MAC as source, carry
//     exactly one IP packet (no trailing bytes) that lvsd::parse_frame accepts (so the IPv4
//     header checksum is right), except IPv4 fragments; a tunnelled frame's inner packet must
//     pass the same checks;
//   * a TCP/UDP Tx frame made from an input whose TCP/UDP checksum was valid has a valid
//     checksum too (verified here by full recomputation, independently of
//     native/packet/checksum.*).
#include <arpa/inet.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "control/layout.hpp"
#include "control/protocol.hpp"
#include "control/ring.hpp"
#include "engine/dataplane.hpp"
#include "io/memory.hpp"
#include "packet/bytes.hpp"
#include "packet/parse.hpp"

using namespace lvsd;

namespace {

// ---------------------------------------------------------------------------------------------
// Failure reporting

const uint8_t* g_input = nullptr;  // the current frame, for the report
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

#define CHECK(cond, what, out, len) \
  do {                              \
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

enum class L4Sum { NotL4, None, Good, Bad };

// The state of the TCP/UDP checksum of a frame parse_frame accepted. The pseudo-header
// addresses come from the IP header; the length is the TCP segment length, or the UDP length
// field (RFC 768 / RFC 8200 8.1).
L4Sum l4_sum(const uint8_t* f, const PacketView& pv) {
  if (pv.proto != PROTO_TCP && pv.proto != PROTO_UDP) return L4Sum::NotL4;
  const uint8_t* ip = f + pv.l3;
  const uint8_t* l4 = f + pv.l4;
  uint32_t len = pv.l3_end() - pv.l4;
  if (pv.proto == PROTO_UDP) {
    len = uint32_t(l4[4]) << 8 | l4[5];
    if (pv.af == AF_V4 && l4[6] == 0 && l4[7] == 0) return L4Sum::None;  // IPv4: "no checksum"
  }
  uint64_t s = pv.af == AF_V4 ? ones_sum(ip + 12, 8, 0) : ones_sum(ip + 8, 32, 0);
  s += len >> 16;
  s += len & 0xffff;
  s += pv.proto;
  s = ones_sum(l4, len, s);
  return fold(s) == 0xffff ? L4Sum::Good : L4Sum::Bad;
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

constexpr uint8_t kIfaceMac[2][6] = {{0x02, 0x00, 0x00, 0x00, 0x00, 0x01},
                                     {0x02, 0x00, 0x00, 0x00, 0x01, 0x01}};
constexpr uint8_t kClientMac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x64};
constexpr uint8_t kZeroMac[6] = {};
// Real servers' MACs: 02:00:00:00:01:<last byte of the real's address>.
struct RealMac {
  uint8_t b[6];
};
RealMac real_mac(uint8_t last) { return RealMac{{0x02, 0x00, 0x00, 0x00, 0x01, last}}; }

class Fixture {
 public:
  Fixture() {
    opts_.layout.workers = 1;
    opts_.layout.max_services = 16;
    opts_.layout.max_reals = 64;
    opts_.layout.command_ring_words = 1u << 12;
    opts_.layout.event_ring_words = 1u << 12;
    opts_.conn_capacity = 4096;  // small: table-full and eviction paths get exercised
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
  void set_interface(uint32_t id, uint32_t mtu, const char* v4, const char* v6) {
    std::vector<uint32_t> w{id, mtu, 0, 3};
    put_mac(w, kIfaceMac[id]);
    w.push_back(load32(ip(v4).b));
    put_addr(w, ip(v6));
    push(proto::OP_SET_INTERFACE, w);
  }
  // OP_SET_SERVICE [slot, af, proto, port, fwmark, sched, flags, persist_s, pmask_plen,
  //                 vip x4, pmask x4]
  void set_service(uint32_t slot, uint8_t proto_, const char* vip, uint16_t port) {
    const Addr a = ip(vip);
    const uint32_t af = std::strchr(vip, ':') ? AF_V6 : AF_V4;
    std::vector<uint32_t> w{slot, af, proto_, port, 0, proto::SCH_RR, 0, 0, 0};
    put_addr(w, a);
    put_addr(w, Addr{});
    push(proto::OP_SET_SERVICE, w);
  }
  // OP_SET_REAL [slot, svc, af, port, weight, fwd, u_thresh, l_thresh, iface, flags,
  //              mac_hi32, mac_lo16, addr x4]
  void set_real(uint32_t slot, uint32_t svc, const char* addr, uint16_t port, uint32_t weight,
                uint8_t fwd, const uint8_t* mac) {
    const Addr a = ip(addr);
    const uint32_t af = std::strchr(addr, ':') ? AF_V6 : AF_V4;
    std::vector<uint32_t> w{slot, svc, af, port, weight, fwd, 0, 0, /*iface*/ 1, 0};
    put_mac(w, mac);
    put_addr(w, a);
    push(proto::OP_SET_REAL, w);
  }

  void configure() {
    using namespace proto;
    // Client side: MTU 1500. Real side: MTU 1400, so tunnel overhead, fragmentation and
    // "too big" are reachable with ordinary frames.
    set_interface(0, 1500, "198.18.0.1", "2001:db8::1");
    set_interface(1, 1400, "198.19.0.1", "2001:db8:1::1");

    set_service(0, PROTO_TCP, "198.18.0.10", 80);  // NAT
    set_real(0, 0, "198.19.0.11", 8080, 1, FWD_NAT, real_mac(11).b);
    set_real(1, 0, "198.19.0.12", 8080, 1, FWD_NAT, real_mac(12).b);
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

    set_service(6, PROTO_UDP, "2001:db8::20", 53);  // IPv6 direct routing
    set_real(10, 6, "2001:db8:1::21", 53, 1, FWD_DIRECT, real_mac(0x21).b);

    push(OP_COMMIT, {1, 0});
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

// Fill in the IPv4 header checksum and the TCP/UDP checksum of a frame built below.
void finish_frame(std::vector<uint8_t>& f) {
  const bool v4 = f[12] == 0x08;
  uint8_t* ip_ = f.data() + 14;
  const uint32_t ihl = v4 ? uint32_t(ip_[0] & 15) * 4 : 40;
  const uint8_t proto_ = v4 ? ip_[9] : ip_[6];
  uint8_t* l4 = ip_ + ihl;
  const uint32_t len = uint32_t(f.size()) - 14 - ihl;
  if (v4) {
    ip_[10] = ip_[11] = 0;
    const uint16_t c = uint16_t(~fold(ones_sum(ip_, ihl, 0)));
    ip_[10] = uint8_t(c >> 8);
    ip_[11] = uint8_t(c);
  }
  const uint32_t at = proto_ == PROTO_TCP ? 16 : 6;
  l4[at] = l4[at + 1] = 0;
  uint64_t s = v4 ? ones_sum(ip_ + 12, 8, 0) : ones_sum(ip_ + 8, 32, 0);
  s += len + proto_;
  uint16_t c = uint16_t(~fold(ones_sum(l4, len, s)));
  if (c == 0) c = 0xffff;
  l4[at] = uint8_t(c >> 8);
  l4[at + 1] = uint8_t(c);
}

// Ethernet (client MAC -> interface 0) + IPv4/IPv6 header + a TCP SYN or a small UDP datagram.
std::vector<uint8_t> make_packet(const char* src, const char* dst, uint8_t proto_, uint16_t sport,
                                 uint16_t dport) {
  const bool v6 = std::strchr(src, ':') != nullptr;
  const uint32_t l4len = proto_ == PROTO_TCP ? 20 : 12;
  const uint32_t iplen = (v6 ? 40 : 20) + l4len;
  std::vector<uint8_t> f(14 + iplen, 0);
  std::memcpy(f.data(), kIfaceMac[0], 6);
  std::memcpy(f.data() + 6, kClientMac, 6);
  store16(f.data() + 12, v6 ? ETH_P_IPV6 : ETH_P_IPV4);
  uint8_t* p = f.data() + 14;
  if (v6) {
    p[0] = 0x60;
    store16(p + 4, uint16_t(l4len));
    p[6] = proto_;
    p[7] = 64;
    std::memcpy(p + 8, ip(src).b, 16);
    std::memcpy(p + 24, ip(dst).b, 16);
    p += 40;
  } else {
    p[0] = 0x45;
    store16(p + 2, uint16_t(iplen));
    store16(p + 6, 0x4000);  // DF
    p[8] = 64;
    p[9] = proto_;
    std::memcpy(p + 12, ip(src).b, 4);
    std::memcpy(p + 16, ip(dst).b, 4);
    p += 20;
  }
  store16(p, sport);
  store16(p + 2, dport);
  if (proto_ == PROTO_TCP) {
    store32(p + 4, 0x01000000);  // sequence number
    p[12] = 5 << 4;
    p[13] = TCP_SYN;
    store16(p + 14, 64240);
  } else {
    store16(p + 4, uint16_t(l4len));
    std::memcpy(p + 8, "fuzz", 4);
  }
  finish_frame(f);
  return f;
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

// Checks on the IP packet of a Tx frame: `f` is an Ethernet frame of `len` bytes (for a
// tunnelled packet, a synthetic Ethernet header in front of the inner packet).
// `inputs_valid`: the TCP/UDP checksums of the input(s) were valid, so this one must be too.
void check_ip_frame(uint8_t* f, uint32_t len, bool inputs_valid, bool inner) {
  PacketView pv;
  const ParseStatus st = parse_frame(f, len, pv);
  if (st == ParseStatus::Fragment) {
    CHECK(pv.af == AF_V4, "an IPv6 fragment was transmitted", f, len);
    CHECK(pv.l3_end() == len, "bytes after the IP packet in a Tx frame", f, len);
    return;
  }
  if (!inner && st == ParseStatus::Unhandled && (pv.proto == PROTO_IPIP || pv.proto == PROTO_IPV6)) {
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
    store16(e.data() + 12, version == 4 ? ETH_P_IPV4 : ETH_P_IPV6);
    std::memcpy(e.data() + 14, f + pv.l4, inner_len);
    check_ip_frame(e.data(), uint32_t(e.size()), inputs_valid, true);
    return;
  }
  if (st != ParseStatus::Ok) {
    std::fprintf(stderr, "parse status of the %s packet: %u\n", inner ? "inner" : "output", unsigned(st));
    violation("a Tx frame does not parse", f, len, __LINE__);
  }
  CHECK(pv.l3_end() == len, "bytes after the IP packet in a Tx frame", f, len);
  if (pv.icmp_error) return;  // ICMP: its checksum was verified by parse_frame
  if (inputs_valid) CHECK(l4_sum(f, pv) != L4Sum::Bad, "TCP/UDP checksum broken by the dataplane", f, len);
}

// Check one output of a batch made of the frames `in`.
void check_output(const MemoryPort::Output& o, const std::vector<InputInfo>& in) {
  CHECK(o.len >= 14 && o.len <= MemoryPort::kMaxFrame + 80, "output frame length out of range",
        o.data, o.len < 4096 ? o.len : 4096);
  if (o.verdict == Verdict::Pass) {
    bool unchanged = false;
    for (const InputInfo& i : in)
      unchanged |= o.len == i.len && std::memcmp(o.data, i.data, i.len) == 0;
    CHECK(unchanged, "a frame handed to the kernel was modified", o.data, o.len);
    return;
  }
  CHECK(o.verdict == Verdict::Tx, "output with a Drop verdict", o.data, o.len);
  CHECK(o.iface <= 1, "Tx on an interface that does not exist", o.data, o.len);
  CHECK(std::memcmp(o.data + 6, kIfaceMac[o.iface], 6) == 0,
        "Tx frame source MAC is not the egress interface's", o.data, o.len);
  // Checksums must survive when every input of the batch had valid ones (the fuzzed frame
  // always goes alone; the fixture packets are all valid).
  bool inputs_valid = true;
  for (const InputInfo& i : in) inputs_valid &= i.l4 == L4Sum::Good || i.l4 == L4Sum::None;
  std::vector<uint8_t> copy(o.data, o.data + o.len);
  check_ip_frame(copy.data(), o.len, inputs_valid, false);
}

// LVSD_FUZZ_VERBOSE=1 in the environment: print what each frame produced (seed debugging).
bool g_verbose = false;

// Inject frames (one batch), run the dataplane, and check everything that comes out against
// them. The fuzzed frame always goes alone, so its outputs are related to it only.
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
  dp.poll();
  MemoryPort::Output o;
  uint32_t outputs = 0;
  while (port.peek_output(o)) {
    if (g_verbose)
      std::fprintf(stderr, "  in %zu frame(s) -> %s on %u, %u bytes\n", in.size(),
                   o.verdict == Verdict::Tx ? "tx" : o.verdict == Verdict::Pass ? "pass" : "drop",
                   o.iface, o.len);
    check_output(o, in);
    port.pop_output();
    ++outputs;
  }
  if (g_verbose && outputs == 0) std::fprintf(stderr, "  in %zu frame(s) -> nothing\n", in.size());
  g_fixture->drain_events();
  g_input = nullptr;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* v = std::getenv("LVSD_FUZZ_VERBOSE");
  g_verbose = v && *v && *v != '0';
  g_fixture = new Fixture();  // lives for the whole process
  build_prime();
  g_frame.bytes.reserve(4096);  // data() is never null, even for an empty input
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  size_t pos = 1;
  // Time moves forward 1 ms per input (refills the ICMP rate limiter), plus optional jumps.
  uint64_t now = g_fixture->clock() + 1;
  if ((flags & 2) && pos < size) now += uint64_t(data[pos++]) * 250;
  g_fixture->set_clock(now);
  if (flags & 4) run_frames(g_prime.data(), g_prime.size());  // one batch of fixture packets
  g_frame.bytes.assign(data + pos, data + size);
  g_frame.iface = uint16_t(flags & 1);
  run_frames(&g_frame, 1);
  return 0;
}
