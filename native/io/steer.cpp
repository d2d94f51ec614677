#include "io/steer.hpp"
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>
#include "io/netns.hpp"

namespace lvsd {

const char* xdp_mode_name(XdpMode m) {
  switch (m) {
    case XdpMode::Native: return "native";
    case XdpMode::Generic: return "generic";
    default: return "none";
  }
}

namespace {

using namespace bpf;

// Bits of the address map's value.
constexpr uint32_t kAddrVip = 1;      // an address of some service
constexpr uint32_t kAddrLocal = 2;    // one of the director's own addresses
constexpr uint32_t kAddrNatReal = 4;  // the address of some NAT real

// The statistics map (PERCPU_ARRAY of u64).
enum StatIndex : int32_t { ST_REDIRECTED = 0, ST_PASSED = 1, ST_NO_SOCKET = 2, ST_PARSE_FAILED = 3, ST_COUNT = 4 };

// Stack layout of the program (offsets from the frame pointer).
//   LPM key  [-28, -4): prefixlen u32 at -28, then the destination key's bytes
//   dst key  [-24, -4): header u32 {family, proto, port} at -24, address at -20
//   src key  [-48, -28): header at -48, address at -44
//   scratch  [-56, -52): u32 key for the small maps
constexpr int16_t kLpm = -28, kDst = -24, kDstAddr = -20, kSrc = -48, kSrcAddr = -44, kScratch = -56;
constexpr int32_t kLpmFullPrefix = 160;  // 32 bits of {family, 0, 0, 0} + 128 address bits

// ctx (struct xdp_md) offsets.
constexpr int16_t kCtxData = 0, kCtxDataEnd = 4, kCtxIfindex = 12, kCtxQueue = 16;

constexpr int32_t kTcp = 6, kUdp = 17, kIcmp = 1, kIcmp6 = 58;

// Network-order 16-bit constants as a little-endian load of them reads.
constexpr int32_t be16(uint16_t v) { return int32_t(uint16_t((v >> 8) | (v << 8))); }

struct SteerMaps {
  int services, natreals, addrs, prefixes, ifaces, xsks, stats;
};

std::vector<bpf_insn> steering_program(const SteerMaps& m) {
  Asm a;
  const auto steer = a.label(), pass = a.label(), trunc = a.label(), count = a.label(), no_socket = a.label();
  const auto ethtype = a.label(), ipv4 = a.label(), ipv6 = a.label(), ports = a.label(), icmp4 = a.label(),
             icmp6 = a.label(), icmp_err = a.label(), frag = a.label();

  // lookup(map, fp + off) -> r0 (r1-r5 clobbered)
  auto lookup = [&](int map, int16_t off) {
    a.ld_map(R1, map);
    a.movr(R2, FP);
    a.add(R2, off);
    a.call(BPF_FUNC_map_lookup_elem);
  };

  a.movr(R6, R1);
  for (int16_t off = -56; off < 0; off += 8) a.st(BPF_DW, FP, off, 0);
  a.ldx(BPF_W, R2, R6, kCtxData);
  a.ldx(BPF_W, R3, R6, kCtxDataEnd);

  // Ethernet, with at most one 802.1Q tag. r2: the L3 header from here on.
  a.movr(R4, R2);
  a.add(R4, 14);
  a.jccr(BPF_JGT, R4, R3, trunc);
  a.ldx(BPF_H, R5, R2, 12);
  a.add(R2, 14);
  a.jcc(BPF_JNE, R5, be16(0x8100), ethtype);
  a.movr(R4, R2);
  a.add(R4, 4);
  a.jccr(BPF_JGT, R4, R3, trunc);
  a.ldx(BPF_H, R5, R2, 2);
  a.add(R2, 4);
  a.bind(ethtype);
  a.jcc(BPF_JEQ, R5, be16(0x0800), ipv4);
  a.jcc(BPF_JEQ, R5, be16(0x86dd), ipv6);
  a.ja(pass);

  // IPv4: r8 = protocol, r9 = family; the addresses go into the keys.
  a.bind(ipv4);
  a.movr(R4, R2);
  a.add(R4, 20);
  a.jccr(BPF_JGT, R4, R3, trunc);
  a.ldx(BPF_B, R5, R2, 0);
  a.movr(R4, R5);
  a.alu(BPF_RSH, R4, 4);
  a.jcc(BPF_JNE, R4, 4, trunc);
  a.alu(BPF_AND, R5, 15);
  a.jcc(BPF_JLT, R5, 5, trunc);
  a.alu(BPF_LSH, R5, 2);
  a.ldx(BPF_W, R4, R2, 16);
  a.stx(BPF_W, FP, kDstAddr, R4);
  a.ldx(BPF_W, R4, R2, 12);
  a.stx(BPF_W, FP, kSrcAddr, R4);
  a.ldx(BPF_B, R8, R2, 9);
  a.mov(R9, 4);
  a.ldx(BPF_H, R4, R2, 6);
  a.alu(BPF_AND, R4, be16(0x3fff));  // MF or a fragment offset: a fragment
  a.jcc(BPF_JNE, R4, 0, frag);
  a.addr(R2, R5);
  a.jcc(BPF_JEQ, R8, kTcp, ports);
  a.jcc(BPF_JEQ, R8, kUdp, ports);
  a.jcc(BPF_JEQ, R8, kIcmp, icmp4);
  a.ja(pass);

  a.bind(icmp4);
  a.movr(R4, R2);
  a.add(R4, 8);
  a.jccr(BPF_JGT, R4, R3, trunc);
  a.ldx(BPF_B, R5, R2, 0);
  a.jcc(BPF_JEQ, R5, 3, icmp_err);   // destination unreachable
  a.jcc(BPF_JEQ, R5, 4, icmp_err);   // source quench
  a.jcc(BPF_JEQ, R5, 11, icmp_err);  // time exceeded
  a.jcc(BPF_JEQ, R5, 12, icmp_err);  // parameter problem
  a.ja(pass);

  // IPv6 (fixed header; an extension header next is left to the dataplane).
  a.bind(ipv6);
  a.movr(R4, R2);
  a.add(R4, 40);
  a.jccr(BPF_JGT, R4, R3, trunc);
  a.ldx(BPF_B, R5, R2, 0);
  a.alu(BPF_RSH, R5, 4);
  a.jcc(BPF_JNE, R5, 6, trunc);
  for (int16_t i = 0; i < 16; i += 4) {
    a.ldx(BPF_W, R4, R2, int16_t(8 + i));
    a.stx(BPF_W, FP, int16_t(kSrcAddr + i), R4);
    a.ldx(BPF_W, R4, R2, int16_t(24 + i));
    a.stx(BPF_W, FP, int16_t(kDstAddr + i), R4);
  }
  a.ldx(BPF_B, R8, R2, 6);
  a.mov(R9, 6);
  a.add(R2, 40);
  a.jcc(BPF_JEQ, R8, kTcp, ports);
  a.jcc(BPF_JEQ, R8, kUdp, ports);
  a.jcc(BPF_JEQ, R8, kIcmp6, icmp6);
  for (int32_t ext : {0, 43, 44, 51, 60}) a.jcc(BPF_JEQ, R8, ext, frag);  // hop-by-hop, routing, fragment, AH, dstopts
  a.ja(pass);

  a.bind(icmp6);
  a.movr(R4, R2);
  a.add(R4, 8);
  a.jccr(BPF_JGT, R4, R3, trunc);
  a.ldx(BPF_B, R5, R2, 0);
  a.add(R5, -1);
  a.jcc(BPF_JLT, R5, 4, icmp_err);  // types 1-4: unreachable, too big, time exceeded, parameter
  a.ja(pass);

  // TCP/UDP. r7 = dst key header, r9 = src key header, r8 = {family, proto} with port 0.
  a.bind(ports);
  a.movr(R4, R2);
  a.add(R4, 4);
  a.jccr(BPF_JGT, R4, R3, trunc);
  a.ldx(BPF_H, R4, R2, 0);
  a.ldx(BPF_H, R5, R2, 2);
  a.alu(BPF_LSH, R8, 8);
  a.alur(BPF_OR, R8, R9);
  a.movr(R7, R5);
  a.alu(BPF_LSH, R7, 16);
  a.alur(BPF_OR, R7, R8);
  a.movr(R9, R4);
  a.alu(BPF_LSH, R9, 16);
  a.alur(BPF_OR, R9, R8);
  {
    const auto nat = a.label();
    a.stx(BPF_W, FP, kDst, R7);
    lookup(m.services, kDst);
    a.jcc(BPF_JNE, R0, 0, steer);
    a.stx(BPF_W, FP, kDst, R8);
    lookup(m.services, kDst);
    a.jcc(BPF_JNE, R0, 0, steer);
    a.movr(R1, R8);
    a.alu(BPF_AND, R1, 0xff);
    a.stx(BPF_W, FP, kDst, R1);
    a.st(BPF_W, FP, kLpm, kLpmFullPrefix);
    lookup(m.prefixes, kLpm);
    a.jcc(BPF_JNE, R0, 0, steer);
    lookup(m.addrs, kDst);
    a.jcc(BPF_JEQ, R0, 0, nat);
    a.ldx(BPF_W, R1, R0, 0);
    a.jcc(BPF_JSET, R1, kAddrLocal, pass);
    a.bind(nat);
    a.stx(BPF_W, FP, kSrc, R9);
    lookup(m.natreals, kSrc);
    a.jcc(BPF_JNE, R0, 0, steer);
    a.stx(BPF_W, FP, kSrc, R8);
    lookup(m.natreals, kSrc);
    a.jcc(BPF_JNE, R0, 0, steer);
    a.ja(pass);
  }

  // ICMP errors. r9 = family; r7 = the destination's address flags.
  a.bind(icmp_err);
  {
    const auto prefix = a.label();
    a.stx(BPF_W, FP, kDst, R9);
    a.stx(BPF_W, FP, kSrc, R9);
    a.mov(R7, 0);
    lookup(m.addrs, kDst);
    a.jcc(BPF_JEQ, R0, 0, prefix);
    a.ldx(BPF_W, R7, R0, 0);
    a.jcc(BPF_JSET, R7, kAddrVip, steer);
    a.bind(prefix);
    a.st(BPF_W, FP, kLpm, kLpmFullPrefix);
    lookup(m.prefixes, kLpm);
    a.jcc(BPF_JNE, R0, 0, steer);
    a.jcc(BPF_JSET, R7, kAddrLocal, pass);
    lookup(m.addrs, kSrc);
    a.jcc(BPF_JEQ, R0, 0, pass);
    a.ldx(BPF_W, R1, R0, 0);
    a.jcc(BPF_JSET, R1, kAddrNatReal, steer);
    a.ja(pass);
  }

  // IPv4 fragments and IPv6 extension headers: steered when addressed to a service address.
  a.bind(frag);
  a.stx(BPF_W, FP, kDst, R9);
  lookup(m.addrs, kDst);
  a.jcc(BPF_JEQ, R0, 0, pass);
  a.ldx(BPF_W, R1, R0, 0);
  a.jcc(BPF_JSET, R1, kAddrVip, steer);
  a.ja(pass);

  // Redirect to the socket of this interface and queue: slot = base(ifindex) + queue.
  a.bind(steer);
  a.ldx(BPF_W, R1, R6, kCtxIfindex);
  a.stx(BPF_W, FP, kScratch, R1);
  lookup(m.ifaces, kScratch);
  a.jcc(BPF_JEQ, R0, 0, no_socket);
  a.ldx(BPF_W, R1, R0, 0);
  a.ldx(BPF_W, R2, R0, 4);
  a.ldx(BPF_W, R3, R6, kCtxQueue);
  a.jccr(BPF_JGE, R3, R2, no_socket);
  a.addr(R3, R1);
  a.movr(R2, R3);
  a.ld_map(R1, m.xsks);
  a.mov(R3, XDP_PASS);  // the action when the slot holds no socket
  a.call(BPF_FUNC_redirect_map);
  a.jcc(BPF_JNE, R0, XDP_REDIRECT, no_socket);
  a.mov(R9, XDP_REDIRECT);
  a.mov(R8, ST_REDIRECTED);
  a.ja(count);

  a.bind(no_socket);
  a.mov(R9, XDP_PASS);
  a.mov(R8, ST_NO_SOCKET);
  a.ja(count);
  a.bind(pass);
  a.mov(R9, XDP_PASS);
  a.mov(R8, ST_PASSED);
  a.ja(count);
  a.bind(trunc);
  a.mov(R9, XDP_PASS);
  a.mov(R8, ST_PARSE_FAILED);

  a.bind(count);
  {
    const auto out = a.label();
    a.stx(BPF_W, FP, kScratch, R8);
    lookup(m.stats, kScratch);
    a.jcc(BPF_JEQ, R0, 0, out);
    a.ldx(BPF_DW, R1, R0, 0);
    a.add(R1, 1);
    a.stx(BPF_DW, R0, 0, R1);
    a.bind(out);
    a.movr(R0, R9);
    a.exit();
  }
  return a.finish();
}

Steering::Key make_key(uint8_t proto, uint16_t port, const IpBytes& a) {
  if (a.family != 4 && a.family != 6) throw std::invalid_argument("address: expected 4 or 16 bytes");
  Steering::Key k{};
  k[0] = a.family;
  k[1] = proto;
  k[2] = uint8_t(port >> 8);
  k[3] = uint8_t(port);
  std::memcpy(k.data() + 4, a.b, a.family == 4 ? 4 : 16);
  return k;
}

NetnsScope enter(const std::string& netns) {
  try {
    return NetnsScope(netns);
  } catch (const std::system_error& e) {
    throw IoError::wrap("LVS_NETNS", e);
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// XskRegistry

XskRegistry::XskRegistry(Fd xsks, Fd ifaces, uint32_t slots)
    : xsks_(std::move(xsks)), ifaces_(std::move(ifaces)), slots_(slots) {}

int XskRegistry::slot(uint32_t ifindex, uint32_t queue, uint32_t queues) {
  std::lock_guard<std::mutex> g(m_);
  if (closed_) throw IoError("LVS_CLOSED", EBADF, "the steering is closed");
  if (queue >= queues) throw IoError("LVS_IO_INIT", EINVAL, "queue " + std::to_string(queue) + " out of range");
  auto it = ranges_.find(ifindex);
  if (it == ranges_.end() || it->second.count < queues) {
    // Slots are not reused for other interfaces while this steering lives: few interfaces,
    // 4096 slots.
    if (next_ + queues > slots_)
      throw IoError("LVS_CAPACITY", ENOSPC, "XSKMAP full: no room for " + std::to_string(queues) + " queues of ifindex " +
                                                std::to_string(ifindex));
    const Range r{next_, queues};
    const uint32_t value[2] = {r.base, r.count};
    map_update(ifaces_.get(), &ifindex, value, BPF_ANY, "the interface map");
    next_ += queues;
    it = ranges_.insert_or_assign(ifindex, r).first;
  }
  return int(it->second.base + queue);
}

void XskRegistry::set(int slot, int xsk_fd) {
  std::lock_guard<std::mutex> g(m_);
  if (closed_) throw IoError("LVS_CLOSED", EBADF, "the steering is closed");
  const uint32_t key = uint32_t(slot);
  const uint32_t value = uint32_t(xsk_fd);
  map_update(xsks_.get(), &key, &value, BPF_ANY, "the XSKMAP");
}

void XskRegistry::clear(int slot) {
  std::lock_guard<std::mutex> g(m_);
  if (closed_ || slot < 0) return;
  const uint32_t key = uint32_t(slot);
  try {
    map_delete(xsks_.get(), &key);
  } catch (const IoError&) {
    // Closing the socket removes it from the map anyway.
  }
}

XdpMode XskRegistry::mode(uint32_t ifindex) const {
  std::lock_guard<std::mutex> g(m_);
  const auto it = modes_.find(ifindex);
  return it == modes_.end() ? XdpMode::None : it->second;
}

void XskRegistry::set_mode(uint32_t ifindex, XdpMode md) {
  std::lock_guard<std::mutex> g(m_);
  if (md == XdpMode::None) modes_.erase(ifindex);
  else modes_[ifindex] = md;
}

void XskRegistry::close() {
  std::lock_guard<std::mutex> g(m_);
  closed_ = true;
  modes_.clear();
  xsks_.reset();
  ifaces_.reset();
}

// ---------------------------------------------------------------------------------------------
// Steering

Steering::Steering(const Options& o) : netns_(o.netns) {
  const uint32_t n = o.max_entries ? o.max_entries : 1;
  cpus_ = possible_cpus();
  // Maps and programs are not tied to a namespace; only attachments are.
  services_ = map_create(BPF_MAP_TYPE_HASH, sizeof(Key), 4, n, 0, "lvsd_services");
  natreals_ = map_create(BPF_MAP_TYPE_HASH, sizeof(Key), 4, n, 0, "lvsd_natreals");
  addrs_ = map_create(BPF_MAP_TYPE_HASH, sizeof(Key), 4, n, 0, "lvsd_addrs");
  prefixes_ = map_create(BPF_MAP_TYPE_LPM_TRIE, sizeof(LpmKey), 4, n, BPF_F_NO_PREALLOC, "lvsd_prefixes");
  stats_ = map_create(BPF_MAP_TYPE_PERCPU_ARRAY, 4, 8, ST_COUNT, 0, "lvsd_stats");
  Fd ifaces = map_create(BPF_MAP_TYPE_HASH, 4, 8, 1024, 0, "lvsd_ifaces");
  Fd xsks = map_create(BPF_MAP_TYPE_XSKMAP, 4, 4, kXskSlots, 0, "lvsd_xsks");
  const SteerMaps maps{services_.get(), natreals_.get(), addrs_.get(), prefixes_.get(),
                       ifaces.get(),    xsks.get(),     stats_.get()};
  prog_ = prog_load_xdp(steering_program(maps), "lvsd_steer");
  xsk_ = std::make_shared<XskRegistry>(std::move(xsks), std::move(ifaces), kXskSlots);
}

Steering::~Steering() { close(); }

bool Steering::closed() const {
  std::lock_guard<std::mutex> g(m_);
  return closed_;
}

void Steering::ensure_open() const {
  if (closed_) throw IoError("LVS_CLOSED", EBADF, "the steering is closed");
}

XdpMode Steering::attach(uint32_t ifindex, XdpRequest req) {
  std::lock_guard<std::mutex> g(m_);
  ensure_open();
  const auto it = links_.find(ifindex);
  if (it != links_.end()) {
    const XdpMode have = it->second.second;
    if (req == XdpRequest::Auto || (req == XdpRequest::Native) == (have == XdpMode::Native)) return have;
  }
  NetnsScope scope = enter(netns_);
  require_link(ifindex);  // LVS_NO_SUCH_DEVICE (bpf_link_create says only EINVAL)
  if (it != links_.end()) {
    links_.erase(it);  // closing the link detaches: make room for the other mode
    xsk_->set_mode(ifindex, XdpMode::None);
  }
  Fd link;
  XdpMode got = XdpMode::None;
  if (req != XdpRequest::Generic) {
    try {
      link = xdp_link_create(prog_.get(), ifindex, XDP_FLAGS_DRV_MODE);
      got = XdpMode::Native;
    } catch (const IoError& e) {
      if (req == XdpRequest::Native || e.code().value() == ENODEV) throw;
      try {
        link = xdp_link_create(prog_.get(), ifindex, XDP_FLAGS_SKB_MODE);
        got = XdpMode::Generic;
      } catch (const IoError& e2) {
        throw IoError(e2.lvs_code(), e2.code().value(), e.detail() + " (" + e.code().message() + "); then " + e2.detail());
      }
    }
  } else {
    link = xdp_link_create(prog_.get(), ifindex, XDP_FLAGS_SKB_MODE);
    got = XdpMode::Generic;
  }
  links_.emplace(ifindex, std::make_pair(std::move(link), got));
  xsk_->set_mode(ifindex, got);
  return got;
}

void Steering::detach(uint32_t ifindex) {
  std::lock_guard<std::mutex> g(m_);
  ensure_open();
  links_.erase(ifindex);
  xsk_->set_mode(ifindex, XdpMode::None);
}

void Steering::ref(std::map<Key, uint32_t>& refs, int fd, const Key& k, bool add, const char* what) {
  auto it = refs.find(k);
  if (add) {
    if (it != refs.end()) {
      ++it->second;
      return;
    }
    const uint32_t one = 1;
    map_update(fd, k.data(), &one, BPF_ANY, what);
    refs.emplace(k, 1);
  } else {
    if (it == refs.end()) return;
    if (--it->second) return;
    refs.erase(it);
    map_delete(fd, k.data());
  }
}

void Steering::addr_ref(const IpBytes& a, uint32_t AddrRefs::*field, bool add) {
  const Key k = make_key(0, 0, a);
  auto it = addr_refs_.find(k);
  if (!add && it == addr_refs_.end()) return;
  AddrRefs r = it == addr_refs_.end() ? AddrRefs{} : it->second;
  if (add) ++(r.*field);
  else if (r.*field) --(r.*field);
  else return;
  const uint32_t flags = (r.vip ? kAddrVip : 0) | (r.local ? kAddrLocal : 0) | (r.natreal ? kAddrNatReal : 0);
  const uint32_t before = it == addr_refs_.end() ? 0
                                                 : (it->second.vip ? kAddrVip : 0) | (it->second.local ? kAddrLocal : 0) |
                                                       (it->second.natreal ? kAddrNatReal : 0);
  if (flags != before) {
    if (flags) map_update(addrs_.get(), k.data(), &flags, BPF_ANY, "the address map");
    else map_delete(addrs_.get(), k.data());
  }
  if (flags) addr_refs_[k] = r;
  else addr_refs_.erase(k);
}

// A (protocol, port, address) entry and the address-level flag it implies, together: both are
// in place, or (if the second step fails) neither.
void Steering::add_keyed(std::map<Key, uint32_t>& refs, int fd, uint32_t AddrRefs::*flag, uint8_t proto,
                         uint16_t port, const IpBytes& a, const char* what) {
  std::lock_guard<std::mutex> g(m_);
  ensure_open();
  const Key k = make_key(proto, port, a);
  ref(refs, fd, k, true, what);
  try {
    addr_ref(a, flag, true);
  } catch (...) {
    ref(refs, fd, k, false, what);
    throw;
  }
}

void Steering::del_keyed(std::map<Key, uint32_t>& refs, int fd, uint32_t AddrRefs::*flag, uint8_t proto,
                         uint16_t port, const IpBytes& a, const char* what) {
  std::lock_guard<std::mutex> g(m_);
  ensure_open();
  const Key k = make_key(proto, port, a);
  if (!refs.count(k)) return;
  ref(refs, fd, k, false, what);
  addr_ref(a, flag, false);
}

void Steering::add_service(uint8_t proto, uint16_t port, const IpBytes& a) {
  add_keyed(service_refs_, services_.get(), &AddrRefs::vip, proto, port, a, "the service map");
}

void Steering::del_service(uint8_t proto, uint16_t port, const IpBytes& a) {
  del_keyed(service_refs_, services_.get(), &AddrRefs::vip, proto, port, a, "the service map");
}

void Steering::add_nat_real(uint8_t proto, uint16_t port, const IpBytes& a) {
  add_keyed(natreal_refs_, natreals_.get(), &AddrRefs::natreal, proto, port, a, "the NAT real map");
}

void Steering::del_nat_real(uint8_t proto, uint16_t port, const IpBytes& a) {
  del_keyed(natreal_refs_, natreals_.get(), &AddrRefs::natreal, proto, port, a, "the NAT real map");
}

void Steering::add_local(const IpBytes& a) {
  std::lock_guard<std::mutex> g(m_);
  ensure_open();
  addr_ref(a, &AddrRefs::local, true);
}

void Steering::del_local(const IpBytes& a) {
  std::lock_guard<std::mutex> g(m_);
  ensure_open();
  addr_ref(a, &AddrRefs::local, false);
}

namespace {
Steering::LpmKey lpm_key(const IpBytes& a, uint8_t plen) {
  if (a.family != 4 && a.family != 6) throw std::invalid_argument("address: expected 4 or 16 bytes");
  const uint32_t bits = a.family == 4 ? 32 : 128;
  if (plen > bits)
    throw std::invalid_argument("prefix length " + std::to_string(plen) + " is longer than " + std::to_string(bits));
  Steering::LpmKey k{};
  const uint32_t prefixlen = 32 + plen;
  std::memcpy(k.data(), &prefixlen, 4);
  k[4] = a.family;
  // Host bits cleared: 198.18.0.5/24 and 198.18.0.0/24 are the same entry.
  for (uint32_t i = 0; i < bits / 8; ++i) {
    const int keep = std::clamp(int(plen) - int(i) * 8, 0, 8);
    k[8 + i] = uint8_t(a.b[i] & uint8_t(0xff00 >> keep));
  }
  return k;
}
}  // namespace

void Steering::add_prefix(const IpBytes& a, uint8_t plen) {
  std::lock_guard<std::mutex> g(m_);
  ensure_open();
  const LpmKey k = lpm_key(a, plen);
  auto it = prefix_refs_.find(k);
  if (it != prefix_refs_.end()) {
    ++it->second;
    return;
  }
  const uint32_t one = 1;
  map_update(prefixes_.get(), k.data(), &one, BPF_ANY, "the prefix map");
  prefix_refs_.emplace(k, 1);
}

void Steering::del_prefix(const IpBytes& a, uint8_t plen) {
  std::lock_guard<std::mutex> g(m_);
  ensure_open();
  const LpmKey k = lpm_key(a, plen);
  auto it = prefix_refs_.find(k);
  if (it == prefix_refs_.end()) return;
  if (--it->second) return;
  prefix_refs_.erase(it);
  map_delete(prefixes_.get(), k.data());
}

Steering::Stats Steering::stats() const {
  std::lock_guard<std::mutex> g(m_);
  ensure_open();
  uint64_t sum[ST_COUNT] = {};
  std::vector<uint64_t> v(cpus_);
  for (uint32_t i = 0; i < ST_COUNT; ++i) {
    if (!map_lookup(stats_.get(), &i, v.data())) continue;
    for (uint64_t x : v) sum[i] += x;
  }
  Stats s;
  s.redirected = sum[ST_REDIRECTED];
  s.passed = sum[ST_PASSED];
  s.no_socket = sum[ST_NO_SOCKET];
  s.parse_failed = sum[ST_PARSE_FAILED];
  return s;
}

bpf::TestRun Steering::test_run(const uint8_t* frame, uint32_t len, uint32_t ifindex, uint32_t queue) {
  std::lock_guard<std::mutex> g(m_);
  ensure_open();
  NetnsScope scope = enter(netns_);
  return xdp_test_run(prog_.get(), frame, len, ifindex, queue);
}

void Steering::close() {
  std::lock_guard<std::mutex> g(m_);
  if (closed_) return;
  closed_ = true;
  links_.clear();  // closing a bpf_link detaches its program
  prog_.reset();
  services_.reset();
  natreals_.reset();
  addrs_.reset();
  prefixes_.reset();
  stats_.reset();
  service_refs_.clear();
  natreal_refs_.clear();
  addr_refs_.clear();
  prefix_refs_.clear();
  if (xsk_) xsk_->close();
}

}  // namespace lvsd
