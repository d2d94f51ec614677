// A connection entry (IPVS struct ip_vs_conn, trimmed to what the dataplane needs).
// 128 bytes: the first cache line holds everything a lookup compares.
#pragma once
#include <cstdint>
#include "control/protocol.hpp"
#include "packet/bytes.hpp"

namespace lvsd {

inline constexpr uint32_t NIL = 0xffffffffu;

enum ConnFlag : uint16_t {
  CF_IN_USE = 1 << 0,
  CF_INACTIVE = 1 << 1,   // counted in InActConn (IPVS IP_VS_CONN_F_INACTIVE)
  CF_NOOUTPUT = 1 << 2,   // no reply seen through the director (DR/tunnel, or NAT so far)
  CF_TEMPLATE = 1 << 3,   // a persistence template
  CF_EMBRYONIC = 1 << 4,  // on the embryonic list: first candidates for eviction
  CF_ASSURED = 1 << 5,    // template: a controlled connection completed (IPVS ASSURED)
  CF_NO_CPORT = 1 << 6,   // client port not yet known (FTP passive data)
  CF_REPLIED = 1 << 7,    // a packet went real -> client (UDP: the flow is no longer embryonic)
};

struct Conn {
  // ---- cache line 0: lookup ----
  uint32_t next;        // hash chain; free-list link when not in use
  uint8_t proto;
  uint8_t af;           // client and VIP family
  uint8_t daf;          // real's family (differs only in tunnel mode)
  uint8_t state;        // proto::State
  uint16_t cport, vport, dport;  // host byte order
  uint16_t flags;
  Addr caddr, vaddr, daddr;
  // ---- cache line 1 ----
  uint64_t expires;     // ms on the dataplane clock
  uint32_t svc;         // service slot
  uint32_t real;        // real slot (NIL for none)
  uint32_t fwmark;
  uint32_t control;     // the template controlling this connection, or NIL
  uint32_t n_control;   // connections this template controls
  uint32_t lru_prev, lru_next;  // embryonic list
  uint32_t in_pkts;
  uint32_t timeout_ms;  // current timeout (state timeout or, for templates, persistence)
  Mac client_mac;       // where client traffic came from: replies go back there
  uint16_t client_iface;
  uint8_t fwd;          // proto::Fwd
  uint8_t reserved[3];
  uint32_t lc_epoch;    // the service's least-connection epoch when this was created
  uint32_t synced_at;   // connection sync: low 32 bits of the clock (ms) at the last export; 0 never
};

static_assert(sizeof(Conn) == 128, "a connection entry is two cache lines");

}  // namespace lvsd
