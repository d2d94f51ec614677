// An immutable configuration snapshot: services, reals, interfaces and timeouts as the
// control plane last committed them, plus the service lookup index. Workers read it without
// locks; the control thread builds a new one per commit and swaps a pointer.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>
#include "control/protocol.hpp"
#include "flow/conn.hpp"
#include "packet/bytes.hpp"

namespace lvsd {

inline constexpr uint32_t kMaxInterfaces = 256;

struct InterfaceCfg {
  bool present = false;
  bool has_v4 = false, has_v6 = false;
  uint16_t vlan = 0;  // 802.1Q VLAN id written on egress; 0 = untagged
  uint32_t mtu = 1500;
  Mac mac;
  Addr v4, v6;        // the director's own addresses here (ICMP errors, tunnel source)
};

struct RealCfg {
  bool present = false;
  uint8_t af = 0;
  uint8_t fwd = proto::FWD_NAT;
  uint16_t port = 0;
  uint16_t iface = 0;  // egress interface towards the real (or its next hop)
  uint32_t svc = NIL;
  int32_t weight = 1;
  uint32_t u_thresh = 0, l_thresh = 0;
  Addr addr;
  Mac mac;             // next-hop MAC; zero = unresolved
};

using Table = std::shared_ptr<const std::vector<uint32_t>>;

// wrr's state (its current weight cw) evolves with every change to the list, one IPVS
// dest_changed call at a time; a worker that picks up a snapshot after several changes replays
// them from this log to end where IPVS would.
struct WrrChange {
  uint64_t seq;
  bool init;       // ip_vs_wrr_init_svc (cw = mw) rather than dest_changed
  int64_t di, mw;  // gcd of the weights and max weight - (di - 1), after the change
};
struct WrrLog {
  static constexpr size_t kKeep = 256;
  std::vector<WrrChange> changes;  // the last kKeep, oldest first
};

struct ServiceCfg {
  bool present = false;
  uint32_t slot = NIL;
  uint8_t af = 0;
  uint8_t proto = 0;   // 0 for firewall-mark services
  uint8_t sched = proto::SCH_RR;
  uint8_t pmask_plen = 0;  // persistence netmask as a prefix length
  uint16_t port = 0;
  uint32_t fwmark = 0;
  uint32_t flags = 0;      // proto::SVC_F_*
  uint32_t persist_s = 0;
  uint32_t lc_epoch = 0;   // a change resets the counts least-connection schedulers see
  uint32_t mh_size = 0;    // Maglev table size (the length of `table` for mh)
  uint32_t version = 0;    // bumped when the service appears or its reals or tables change
  Addr vip;
  Addr pmask;              // persistence netmask, ANDed with the client address
  std::vector<uint32_t> reals;  // real slots in IPVS list order (new reals at the head)
  // Tables computed by the control plane (DESIGN.md rule 3), shared between snapshots.
  Table table;                  // sh/dh/mh buckets
  Table wrr_seq, wrr_cw;        // wrr over one period (absent: the dataplane steps)
  std::shared_ptr<const WrrLog> wrr_log;

  bool persistent() const { return flags & proto::SVC_F_PERSISTENT; }
};

// Firewall-mark classification (what iptables -t mangle -j MARK does for IPVS), evaluated for
// packets that start a connection, before the service lookup. First match wins.
struct MarkRule {
  uint8_t af = 0;
  uint8_t proto = 0;  // 0 = any
  uint8_t dst_plen = 0, src_plen = 0;
  uint16_t port_lo = 0, port_hi = 65535;
  uint32_t mark = 0;
  Addr dst, src;
};

// Does `a` fall in prefix/plen (af: 4 or 16 bytes)?
inline bool in_prefix(const Addr& a, const Addr& prefix, uint8_t plen) {
  uint32_t i = 0;
  for (; plen >= 8; plen -= 8, ++i)
    if (a.b[i] != prefix.b[i]) return false;
  return plen == 0 || ((a.b[i] ^ prefix.b[i]) & uint8_t(0xff00 >> plen)) == 0;
}

class Snapshot {
 public:
  Snapshot(uint32_t max_services, uint32_t max_reals);

  uint64_t gen = 0;
  std::vector<ServiceCfg> services;  // indexed by slot
  std::vector<RealCfg> reals;        // indexed by slot
  std::vector<InterfaceCfg> ifaces;  // indexed by id
  std::vector<MarkRule> marks;
  uint32_t options = 0;              // proto::OPT_*
  uint32_t timeout_ms[proto::S_COUNT];

  // The firewall mark for a packet starting a connection (0 = none).
  uint32_t classify(uint8_t af, uint8_t proto, const Addr& src, const Addr& dst, uint16_t dport) const {
    for (const MarkRule& r : marks) {
      if (r.af == af && (!r.proto || r.proto == proto) && dport >= r.port_lo && dport <= r.port_hi &&
          in_prefix(dst, r.dst, r.dst_plen) && in_prefix(src, r.src, r.src_plen))
        return r.mark;
    }
    return 0;
  }

  // IPVS service lookup order: firewall mark, then <proto, vip, port>, then <proto, vip, 0>.
  uint32_t find_service(uint32_t fwmark, uint8_t proto, uint8_t af, const Addr& vip, uint16_t port) const {
    if (fwmark && !mark_services_.empty()) {
      const uint32_t s = find(0, af, Addr{}, 0, fwmark);
      if (s != NIL) return s;
    }
    if (slots_.empty()) return NIL;
    uint32_t s = find(proto, af, vip, port, 0);
    if (s == NIL && port != 0) s = find(proto, af, vip, 0, 0);
    return s;
  }

  const RealCfg* real(uint32_t slot) const {
    return slot < reals.size() && reals[slot].present ? &reals[slot] : nullptr;
  }
  const ServiceCfg* service(uint32_t slot) const {
    return slot < services.size() && services[slot].present ? &services[slot] : nullptr;
  }
  const InterfaceCfg* iface(uint32_t id) const {
    return id < ifaces.size() && ifaces[id].present ? &ifaces[id] : nullptr;
  }

  // Rebuild the lookup index from `services` (called once before publishing).
  void index();

 private:
  static uint64_t key_hash(uint8_t proto, uint8_t af, const Addr& vip, uint16_t port, uint32_t mark);
  uint32_t find(uint8_t proto, uint8_t af, const Addr& vip, uint16_t port, uint32_t mark) const;

  std::vector<uint32_t> slots_;  // open addressing: service slot or NIL
  std::vector<uint32_t> mark_services_;  // non-empty iff some firewall-mark service exists
  uint32_t mask_ = 0;
};

}  // namespace lvsd
