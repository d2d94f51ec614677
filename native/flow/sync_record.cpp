#include "flow/sync_record.hpp"
#include "control/protocol.hpp"
#include "control/snapshot.hpp"

namespace lvsd {
namespace {

using namespace proto;

bool valid_af(uint8_t af) { return af == AF_V4 || af == AF_V6; }

// An IPv4 address uses the first 4 bytes; the rest must be zero (addresses compare as 16 bytes).
bool clean(uint8_t af, const Addr& a) { return af == AF_V6 || (a.hi() == 0 && load32(a.b + 4) == 0); }

Addr read_addr(const uint8_t* p) { return Addr::v6(p); }

}  // namespace

const char* sync_status_name(SyncStatus s) {
  switch (s) {
    case SyncStatus::Ok: return "ok";
    case SyncStatus::Truncated: return "truncated";
    case SyncStatus::BadVersion: return "bad_version";
    case SyncStatus::BadLength: return "bad_length";
    case SyncStatus::BadReserved: return "bad_reserved";
    case SyncStatus::BadFamily: return "bad_family";
    case SyncStatus::BadProtocol: return "bad_protocol";
    case SyncStatus::BadState: return "bad_state";
    case SyncStatus::BadFwd: return "bad_fwd";
    case SyncStatus::BadFlags: return "bad_flags";
    case SyncStatus::BadAddress: return "bad_address";
    case SyncStatus::BadService: return "bad_service";
    case SyncStatus::BadInterface: return "bad_interface";
  }
  return "unknown";
}

void sync_encode(const SyncRecord& r, uint8_t* o) {
  o[0] = kSyncVersion;
  o[1] = 0;
  store16(o + 2, uint16_t(kSyncRecordBytes));
  o[4] = r.proto;
  o[5] = r.af;
  o[6] = r.daf;
  o[7] = r.state;
  o[8] = r.fwd;
  o[9] = r.svc_proto;
  o[10] = r.svc_af;
  o[11] = 0;
  store16(o + 12, r.flags);
  store16(o + 14, r.cport);
  store16(o + 16, r.vport);
  store16(o + 18, r.dport);
  store16(o + 20, r.svc_port);
  store16(o + 22, r.real_port);
  store32(o + 24, r.fwmark);
  store32(o + 28, r.svc_fwmark);
  store32(o + 32, r.expires_in_ms);
  store32(o + 36, r.timeout_ms);
  store32(o + 40, r.in_pkts);
  std::memcpy(o + 44, r.client_mac.b, 6);
  store16(o + 50, r.client_iface);
  std::memcpy(o + 52, r.caddr.b, 16);
  std::memcpy(o + 68, r.vaddr.b, 16);
  std::memcpy(o + 84, r.daddr.b, 16);
  std::memcpy(o + 100, r.svc_vip.b, 16);
}

SyncStatus sync_decode(const uint8_t* p, size_t len, SyncRecord& r) {
  if (!p || len < kSyncRecordBytes) return SyncStatus::Truncated;
  if (p[0] != kSyncVersion) return SyncStatus::BadVersion;
  if (load16(p + 2) != kSyncRecordBytes) return SyncStatus::BadLength;
  if (p[1] != 0 || p[11] != 0) return SyncStatus::BadReserved;
  r = SyncRecord{};
  r.proto = p[4];
  r.af = p[5];
  r.daf = p[6];
  r.state = p[7];
  r.fwd = p[8];
  r.svc_proto = p[9];
  r.svc_af = p[10];
  r.flags = load16(p + 12);
  r.cport = load16(p + 14);
  r.vport = load16(p + 16);
  r.dport = load16(p + 18);
  r.svc_port = load16(p + 20);
  r.real_port = load16(p + 22);
  r.fwmark = load32(p + 24);
  r.svc_fwmark = load32(p + 28);
  r.expires_in_ms = load32(p + 32);
  r.timeout_ms = load32(p + 36);
  r.in_pkts = load32(p + 40);
  std::memcpy(r.client_mac.b, p + 44, 6);
  r.client_iface = load16(p + 50);
  r.caddr = read_addr(p + 52);
  r.vaddr = read_addr(p + 68);
  r.daddr = read_addr(p + 84);
  r.svc_vip = read_addr(p + 100);

  if (!valid_af(r.af) || !valid_af(r.daf) || r.svc_af != r.af) return SyncStatus::BadFamily;
  if (r.fwd != FWD_NAT && r.fwd != FWD_DIRECT && r.fwd != FWD_TUNNEL) return SyncStatus::BadFwd;
  if (r.daf != r.af && r.fwd != FWD_TUNNEL) return SyncStatus::BadFamily;
  if (r.flags & ~uint16_t(SF_KNOWN)) return SyncStatus::BadFlags;
  const bool tmpl = r.flags & SF_TEMPLATE;
  const bool fw = r.svc_fwmark != 0;
  // The service key: a firewall mark alone, or <protocol, VIP, port>.
  if (fw) {
    if (r.svc_proto != 0 || r.svc_port != 0 || !r.svc_vip.is_zero()) return SyncStatus::BadService;
  } else if (r.svc_proto != PROTO_TCP && r.svc_proto != PROTO_UDP) {
    return SyncStatus::BadService;
  }
  if (tmpl) {
    // Templates: the service's protocol, or IPPROTO_IP (0) for a firewall-mark service's.
    if (fw ? (r.proto != 0 && r.proto != PROTO_TCP && r.proto != PROTO_UDP) : r.proto != r.svc_proto)
      return SyncStatus::BadProtocol;
    if (r.state != S_NONE) return SyncStatus::BadState;
  } else {
    if (r.proto != PROTO_TCP && r.proto != PROTO_UDP) return SyncStatus::BadProtocol;
    if (!fw && r.proto != r.svc_proto) return SyncStatus::BadProtocol;
    if (r.proto == PROTO_TCP ? r.state > S_SYNACK : r.state != S_UDP) return SyncStatus::BadState;
  }
  // (A firewall-mark template's vaddr holds the mark in its first four bytes: clean as well.)
  if (!clean(r.af, r.caddr) || !clean(r.af, r.vaddr) || !clean(r.af, r.svc_vip) || !clean(r.daf, r.daddr))
    return SyncStatus::BadAddress;
  if (r.client_iface >= kMaxInterfaces) return SyncStatus::BadInterface;
  return SyncStatus::Ok;
}

}  // namespace lvsd
