// The real server's side of tunnel forwarding, and XDP inspection tools.
//
// A real server in tunnel mode receives IPv4-in-IPv4 (protocol 4), IPv6-in-IPv4 (41),
// IPv4-in-IPv6 (next header 4) and IPv6-in-IPv6 (41) from the director. Without the kernel's
// ipip/ip6_tunnel modules, an XDP program ("lvsd_decap") strips the outer header of packets
// whose inner destination is one of the VIPs, gives the Ethernet header (and its 802.1Q tag)
// the inner family's ethertype, and passes the inner packet to the kernel, which delivers it
// to the VIP configured on lo. Anything else passes untouched.
//
// The VIPs are immediates in the program, so a new VIP list is a new program; it replaces the
// old one atomically (netlink IFLA_XDP with XDP_FLAGS_REPLACE). The attachment is made through
// netlink, so it stays after the process exits (`lvsd realserver` is a one-shot command).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>
#include "io/bpf.hpp"
#include "io/steer.hpp"

namespace lvsd {

constexpr const char* kDecapProgName = "lvsd_decap";
constexpr size_t kDecapMaxVips = 4096;  // distinct addresses (see decap_program)

std::vector<bpf_insn> decap_program(const std::vector<IpBytes>& vips);

// Attach (or replace) the decapsulator on ifindex of netns. Refuses (LVS_BPF, EBUSY) to
// replace an XDP program that is not ours.
XdpMode decap_attach(const std::string& netns, uint32_t ifindex, const std::vector<IpBytes>& vips, XdpRequest mode);
// Remove our decapsulator; false when the interface runs no program or someone else's.
bool decap_detach(const std::string& netns, uint32_t ifindex);

struct XdpProgram {
  uint32_t id = 0;
  std::string name;
  XdpMode mode = XdpMode::None;
};
std::optional<XdpProgram> xdp_program(const std::string& netns, uint32_t ifindex);

// Run the program attached to ifindex once on a frame received on `queue` (BPF_PROG_TEST_RUN):
// nothing when no program is attached.
std::optional<bpf::TestRun> xdp_test_run(const std::string& netns, uint32_t ifindex, const uint8_t* frame,
                                         uint32_t len, uint32_t queue);

}  // namespace lvsd
