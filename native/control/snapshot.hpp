// An immutable configuration snapshot: services, reals, interfaces and timeouts as the
// control plane last committed them, plus the service lookup index. Workers read it without
// locks; the control thread builds a new one per commit and swaps a pointer.
#pragma once
#include <cstdint>
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

struct ServiceCfg {
  bool present = false;
  uint8_t af = 0;
  uint8_t proto = 0;   // 0 for firewall-mark services
  uint8_t sched = proto::SCH_RR;
  uint8_t pmask_plen = 0;
  uint16_t port = 0;
  uint32_t fwmark = 0;
  uint32_t flags = 0;
  uint32_t persist_s = 0;
  uint32_t version = 0;  // bumped whenever the service or its real list changes
  Addr vip, pmask;
  std::vector<uint32_t> reals;  // real slots in IPVS list order (new reals at the head)
};

class Snapshot {
 public:
  Snapshot(uint32_t max_services, uint32_t max_reals);

  uint64_t gen = 0;
  std::vector<ServiceCfg> services;  // indexed by slot
  std::vector<RealCfg> reals;        // indexed by slot
  std::vector<InterfaceCfg> ifaces;  // indexed by id
  uint32_t timeout_ms[proto::S_COUNT];

  // IPVS service lookup order: firewall mark, then <proto, vip, port>, then <proto, vip, 0>.
  uint32_t find_service(uint32_t fwmark, uint8_t proto, uint8_t af, const Addr& vip, uint16_t port) const {
    if (fwmark && !marks_.empty()) {
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
  std::vector<uint32_t> marks_;  // non-empty iff some firewall-mark service exists
  uint32_t mask_ = 0;
};

}  // namespace lvsd
