#include "io/decap.hpp"
#include <linux/if_link.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include "io/netns.hpp"

namespace lvsd {
namespace {

using namespace bpf;

constexpr int32_t kProtoIpip = 4, kProtoIpv6 = 41;
constexpr int32_t be16(uint16_t v) { return int32_t(uint16_t((v >> 8) | (v << 8))); }

// Four bytes of an address as a little-endian 32-bit load of them reads.
int32_t word(const uint8_t* b) {
  return int32_t(uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24);
}

// The body after the Ethernet header of length l2 (14, or 18 with a tag): r2 = data,
// r3 = data_end, r5 = ethertype.
void decap_body(Asm& a, int16_t l2, const std::vector<IpBytes>& vips, Asm::Label pass) {
  const auto o4 = a.label(), o6 = a.label(), in4 = a.label(), in6 = a.label(), strip4 = a.label(),
             strip6 = a.label(), strip = a.label();
  a.jcc(BPF_JEQ, R5, be16(0x0800), o4);
  a.jcc(BPF_JEQ, R5, be16(0x86dd), o6);
  a.ja(pass);

  // Outer IPv4 (options allowed, no fragments). r7 = outer header length, r8 = protocol, and
  // r2 moves by r7 so that the inner header is at r2 + l2.
  a.bind(o4);
  a.movr(R4, R2);
  a.add(R4, l2 + 20);
  a.jccr(BPF_JGT, R4, R3, pass);
  a.ldx(BPF_B, R5, R2, l2);
  a.movr(R4, R5);
  a.alu(BPF_RSH, R4, 4);
  a.jcc(BPF_JNE, R4, 4, pass);
  a.alu(BPF_AND, R5, 15);
  a.jcc(BPF_JLT, R5, 5, pass);
  a.alu(BPF_LSH, R5, 2);
  a.ldx(BPF_H, R4, R2, int16_t(l2 + 6));
  a.alu(BPF_AND, R4, be16(0x3fff));
  a.jcc(BPF_JNE, R4, 0, pass);
  a.ldx(BPF_B, R8, R2, int16_t(l2 + 9));
  a.movr(R7, R5);
  a.addr(R2, R5);
  a.jcc(BPF_JEQ, R8, kProtoIpip, in4);
  a.jcc(BPF_JEQ, R8, kProtoIpv6, in6);
  a.ja(pass);

  // Outer IPv6 (fixed header directly followed by the inner packet).
  a.bind(o6);
  a.movr(R4, R2);
  a.add(R4, l2 + 40);
  a.jccr(BPF_JGT, R4, R3, pass);
  a.ldx(BPF_B, R5, R2, l2);
  a.alu(BPF_RSH, R5, 4);
  a.jcc(BPF_JNE, R5, 6, pass);
  a.ldx(BPF_B, R8, R2, int16_t(l2 + 6));
  a.mov(R7, 40);
  a.add(R2, 40);
  a.jcc(BPF_JEQ, R8, kProtoIpip, in4);
  a.jcc(BPF_JEQ, R8, kProtoIpv6, in6);
  a.ja(pass);

  a.bind(in4);
  a.movr(R4, R2);
  a.add(R4, l2 + 20);
  a.jccr(BPF_JGT, R4, R3, pass);
  a.ldx(BPF_B, R5, R2, l2);
  a.alu(BPF_RSH, R5, 4);
  a.jcc(BPF_JNE, R5, 4, pass);
  a.ldx(BPF_W, R4, R2, int16_t(l2 + 16));
  for (const IpBytes& v : vips)
    if (v.family == 4) a.jcc32(BPF_JEQ, R4, word(v.b), strip4);
  a.ja(pass);

  a.bind(in6);
  a.movr(R4, R2);
  a.add(R4, l2 + 40);
  a.jccr(BPF_JGT, R4, R3, pass);
  a.ldx(BPF_B, R5, R2, l2);
  a.alu(BPF_RSH, R5, 4);
  a.jcc(BPF_JNE, R5, 6, pass);
  a.ldx(BPF_W, R0, R2, int16_t(l2 + 24));
  a.ldx(BPF_W, R1, R2, int16_t(l2 + 28));
  a.ldx(BPF_W, R4, R2, int16_t(l2 + 32));
  a.ldx(BPF_W, R5, R2, int16_t(l2 + 36));
  for (const IpBytes& v : vips) {
    if (v.family != 6) continue;
    const auto next = a.label();
    a.jcc32(BPF_JNE, R0, word(v.b), next);
    a.jcc32(BPF_JNE, R1, word(v.b + 4), next);
    a.jcc32(BPF_JNE, R4, word(v.b + 8), next);
    a.jcc32(BPF_JNE, R5, word(v.b + 12), next);
    a.ja(strip6);
    a.bind(next);
  }
  a.ja(pass);

  // The verifier refuses unreachable code: only what some VIP can reach.
  const bool has4 = std::any_of(vips.begin(), vips.end(), [](const IpBytes& v) { return v.family == 4; });
  const bool has6 = std::any_of(vips.begin(), vips.end(), [](const IpBytes& v) { return v.family == 6; });
  if (!has4 && !has6) return;
  if (has4) {
    a.bind(strip4);
    a.mov(R8, be16(0x0800));
    a.ja(strip);
  }
  if (has6) {
    a.bind(strip6);
    a.mov(R8, be16(0x86dd));
  }

  // Keep the first 16 bytes (MACs, and the tag when there is one), drop r7 bytes from the
  // front, and write the Ethernet header back in front of the inner packet.
  a.bind(strip);
  a.ldx(BPF_W, R2, R6, 0);
  a.ldx(BPF_W, R3, R6, 4);
  a.movr(R4, R2);
  a.add(R4, 16);
  a.jccr(BPF_JGT, R4, R3, pass);
  a.ldx(BPF_DW, R4, R2, 0);
  a.stx(BPF_DW, FP, -8, R4);
  a.ldx(BPF_DW, R4, R2, 8);
  a.stx(BPF_DW, FP, -16, R4);
  a.movr(R1, R6);
  a.movr(R2, R7);
  a.call(BPF_FUNC_xdp_adjust_head);
  a.jcc(BPF_JNE, R0, 0, pass);
  a.ldx(BPF_W, R2, R6, 0);
  a.ldx(BPF_W, R3, R6, 4);
  a.movr(R4, R2);
  a.add(R4, l2);
  a.jccr(BPF_JGT, R4, R3, pass);
  a.ldx(BPF_DW, R4, FP, -8);
  a.stx(BPF_DW, R2, 0, R4);
  if (l2 == 14) {
    a.ldx(BPF_W, R4, FP, -16);
    a.stx(BPF_W, R2, 8, R4);
  } else {
    a.ldx(BPF_DW, R4, FP, -16);
    a.stx(BPF_DW, R2, 8, R4);
  }
  a.stx(BPF_H, R2, int16_t(l2 - 2), R8);
  a.ja(pass);
}

NetnsScope enter(const std::string& netns) {
  try {
    return NetnsScope(netns);
  } catch (const std::system_error& e) {
    throw IoError::wrap("LVS_NETNS", e);
  }
}

XdpMode mode_of(uint8_t attached) {
  return attached == XDP_ATTACHED_DRV ? XdpMode::Native : attached == XDP_ATTACHED_SKB ? XdpMode::Generic : XdpMode::None;
}

uint32_t flag_of(XdpMode m) { return m == XdpMode::Native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE; }

}  // namespace

std::vector<bpf_insn> decap_program(const std::vector<IpBytes>& list) {
  // Each VIP costs one (IPv4) or five (IPv6) instructions between the first comparison and the
  // strip code, and BPF conditional jumps reach 32767 instructions: 4096 VIPs always fit.
  std::vector<IpBytes> vips;
  for (const IpBytes& v : list) {
    if (v.family != 4 && v.family != 6) throw std::invalid_argument("vips: expected 4 or 16 bytes each");
    const size_t n = v.family == 4 ? 4 : 16;
    const bool dup = std::any_of(vips.begin(), vips.end(),
                                 [&](const IpBytes& w) { return w.family == v.family && std::memcmp(w.b, v.b, n) == 0; });
    if (!dup) vips.push_back(v);
  }
  if (vips.size() > kDecapMaxVips)
    throw IoError("LVS_CAPACITY", E2BIG,
                  std::to_string(vips.size()) + " VIPs for the decapsulator; at most " + std::to_string(kDecapMaxVips));
  Asm a;
  const auto pass = a.label(), tagged = a.label();
  a.movr(R6, R1);
  a.ldx(BPF_W, R2, R6, 0);
  a.ldx(BPF_W, R3, R6, 4);
  a.movr(R4, R2);
  a.add(R4, 14);
  a.jccr(BPF_JGT, R4, R3, pass);
  a.ldx(BPF_H, R5, R2, 12);
  a.jcc(BPF_JEQ, R5, be16(0x8100), tagged);
  decap_body(a, 14, vips, pass);
  a.bind(tagged);
  a.movr(R4, R2);
  a.add(R4, 18);
  a.jccr(BPF_JGT, R4, R3, pass);
  a.ldx(BPF_H, R5, R2, 16);
  decap_body(a, 18, vips, pass);
  a.bind(pass);
  a.mov(R0, XDP_PASS);
  a.exit();
  return a.finish();
}

XdpMode decap_attach(const std::string& netns, uint32_t ifindex, const std::vector<IpBytes>& vips, XdpRequest req) {
  NetnsScope scope = enter(netns);
  const XdpState now = xdp_query(ifindex);
  Fd current;
  XdpMode current_mode = XdpMode::None;
  if (now.prog_id) {
    current = prog_by_id(now.prog_id);
    const ProgInfo info = prog_info(current.get());
    if (info.name != kDecapProgName)
      throw IoError("LVS_BPF", EBUSY,
                    "ifindex " + std::to_string(ifindex) + " already runs XDP program \"" + info.name + "\" (id " +
                        std::to_string(info.id) + "); not replacing it");
    current_mode = mode_of(now.attached);
  }
  Fd prog = prog_load_xdp(decap_program(vips), kDecapProgName);

  // Ours in the same mode (or any mode with "auto"): swap atomically.
  if (current && current_mode != XdpMode::None &&
      (req == XdpRequest::Auto || (req == XdpRequest::Native) == (current_mode == XdpMode::Native))) {
    xdp_set(ifindex, prog.get(), flag_of(current_mode), current.get());
    return current_mode;
  }
  // Ours in the other mode: take it away first (the kernel allows one mode at a time), and
  // put it back if the new mode is refused.
  if (current && current_mode != XdpMode::None) xdp_set(ifindex, -1, flag_of(current_mode), current.get());
  auto put_back = [&] {
    if (current && current_mode != XdpMode::None) {
      try {
        xdp_set(ifindex, current.get(), flag_of(current_mode) | XDP_FLAGS_UPDATE_IF_NOEXIST);
      } catch (const IoError&) {
        // The error being reported already says the interface changed under us.
      }
    }
  };
  const uint32_t noexist = XDP_FLAGS_UPDATE_IF_NOEXIST;
  try {
    if (req == XdpRequest::Generic) {
      xdp_set(ifindex, prog.get(), XDP_FLAGS_SKB_MODE | noexist);
      return XdpMode::Generic;
    }
    try {
      xdp_set(ifindex, prog.get(), XDP_FLAGS_DRV_MODE | noexist);
      return XdpMode::Native;
    } catch (const IoError& e) {
      if (req == XdpRequest::Native || e.code().value() == ENODEV || e.code().value() == EBUSY) throw;
      try {
        xdp_set(ifindex, prog.get(), XDP_FLAGS_SKB_MODE | noexist);
      } catch (const IoError& e2) {
        throw IoError(e2.lvs_code(), e2.code().value(), e.detail() + " (" + e.code().message() + "); then " + e2.detail());
      }
      return XdpMode::Generic;
    }
  } catch (...) {
    put_back();
    throw;
  }
}

bool decap_detach(const std::string& netns, uint32_t ifindex) {
  NetnsScope scope = enter(netns);
  const XdpState now = xdp_query(ifindex);
  if (!now.prog_id) return false;
  Fd current;
  try {
    current = prog_by_id(now.prog_id);
  } catch (const IoError&) {
    return false;  // replaced or removed meanwhile
  }
  if (prog_info(current.get()).name != kDecapProgName) return false;
  const XdpMode m = mode_of(now.attached);
  if (m == XdpMode::None) return false;
  xdp_set(ifindex, -1, flag_of(m), current.get());
  return true;
}

std::optional<XdpProgram> xdp_program(const std::string& netns, uint32_t ifindex) {
  NetnsScope scope = enter(netns);
  const XdpState now = xdp_query(ifindex);
  if (!now.prog_id) return std::nullopt;
  XdpProgram p;
  p.id = now.prog_id;
  p.mode = mode_of(now.attached);
  try {
    Fd fd = prog_by_id(now.prog_id);
    p.name = prog_info(fd.get()).name;
  } catch (const IoError&) {
    return std::nullopt;  // detached between the two questions
  }
  return p;
}

std::optional<TestRun> xdp_test_run(const std::string& netns, uint32_t ifindex, const uint8_t* frame, uint32_t len,
                                    uint32_t queue) {
  NetnsScope scope = enter(netns);
  const XdpState now = xdp_query(ifindex);
  if (!now.prog_id) return std::nullopt;
  Fd fd = prog_by_id(now.prog_id);
  return bpf::xdp_test_run(fd.get(), frame, len, ifindex, queue);
}

}  // namespace lvsd
