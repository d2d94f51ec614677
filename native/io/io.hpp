// Real packet I/O: which backend a dataplane's workers use, and on which interfaces.
//
// Worker w serves the receive queues q of every interface with q % workers == w. The backends:
//   Xdp     AF_XDP sockets fed by the XDP steering program (io/steer.hpp), which sends VIP
//           traffic and NAT replies to them and passes everything else to the kernel.
//   Packet  AF_PACKET TPACKET_V3 rings, for hosts where XDP cannot be used; the kernel's own
//           copy of steered packets is suppressed by the control plane (nftables netdev).
//   Memory  frames injected by the caller (tests, benchmarks).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>
#include "io/port.hpp"

namespace lvsd {

class Steering;  // io/steer.hpp

enum class IoKind : uint8_t { Memory = 0, Xdp = 1, Packet = 2 };

struct IoInterface {
  uint16_t id = 0;       // the dataplane's interface id (OP_SET_INTERFACE)
  uint32_t ifindex = 0;  // in the I/O namespace
  std::string name;
};

struct IoOptions {
  IoKind kind = IoKind::Memory;
  std::string netns;  // a named network namespace (/run/netns/NAME) or a path; "" = ours
  std::vector<IoInterface> ifaces;
  uint32_t workers = 1;          // worker w serves the queues q with q % workers == w
  Steering* steering = nullptr;  // Xdp: owner of the XSKMAP; outlives the dataplane
  uint32_t frames = 4096;        // per worker and interface: UMEM frames / ring slots
  int zero_copy = -1;            // Xdp: -1 try zero-copy then copy, 0 copy, 1 zero-copy only
};

// Implemented by io/xsk.cpp and io/afpacket.cpp. Throw std::system_error (with what failed in
// the message) when the backend cannot be set up; nothing is left behind in that case.
std::unique_ptr<Port> make_xsk_port(const IoOptions& opts, uint32_t worker);
std::unique_ptr<Port> make_packet_port(const IoOptions& opts, uint32_t worker);

}  // namespace lvsd
