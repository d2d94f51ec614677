// The IPVS TCP state machine (net/netfilter/ipvs/ip_vs_proto_tcp.c, tcp_states), default
// timeouts, and which states count as active. See shared/reference/ipvs.md section 2.
#pragma once
#include <cstdint>
#include "control/protocol.hpp"

namespace lvsd::tcp {

enum Dir : uint8_t { DIR_INPUT = 0, DIR_OUTPUT = 1, DIR_INPUT_ONLY = 2 };

// Event index as IPVS computes it: RST > SYN > FIN > ACK; -1 for none of them.
inline int event(uint8_t flags) {
  if (flags & 0x04) return 3;  // rst
  if (flags & 0x02) return 0;  // syn
  if (flags & 0x01) return 1;  // fin
  if (flags & 0x10) return 2;  // ack
  return -1;
}

// Next state for (direction, event, current state). Current states beyond SYNACK are not TCP.
uint8_t next_state(Dir dir, uint8_t flags, uint8_t state);

inline bool is_active(uint8_t state) {
  return state == proto::S_ESTABLISHED || state == proto::S_SYN_SENT ||
         state == proto::S_SYN_RECV || state == proto::S_SYNACK;
}

// States in which a connection is "embryonic": not yet shown to be a real two-way flow.
inline bool is_embryonic(uint8_t state) {
  return state == proto::S_NONE || state == proto::S_SYN_RECV || state == proto::S_SYN_SENT ||
         state == proto::S_SYNACK;
}

const char* state_name(uint8_t state);

// Default timeouts in seconds (IPVS tcp_timeouts / udp_timeouts).
inline constexpr uint32_t kDefaultTimeoutS[proto::S_COUNT] = {
    2,    // NONE
    900,  // ESTABLISHED
    120,  // SYN_SENT
    60,   // SYN_RECV
    120,  // FIN_WAIT
    120,  // TIME_WAIT
    10,   // CLOSE
    60,   // CLOSE_WAIT
    30,   // LAST_ACK
    120,  // LISTEN
    120,  // SYNACK
    300,  // UDP
    60,   // ICMP
};

}  // namespace lvsd::tcp
