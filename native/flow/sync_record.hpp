// The connection sync record: one connection or persistence template, as the active director
// streams it to the backup (IPVS's sync daemon is the model: shared/reference/ipvs.md section 6).
// The record names everything by address, never by slot, so the backup (whose service and real
// slots differ) can find the service and the real itself. Fixed size, explicit layout, every
// multi-byte field big-endian; encode/decode are pure functions and decode trusts nothing.
//
// Layout (kSyncRecordBytes = 116, version 1):
//   off size field
//     0   1  version          1
//     1   1  reserved         0
//     2   2  length           record length in bytes (116 for version 1)
//     4   1  proto            entry protocol: 6 TCP, 17 UDP; templates also 0 (firewall mark)
//     5   1  af               client/VIP family: 4 or 6
//     6   1  daf              real's family (differs from af only with tunnel forwarding)
//     7   1  state            proto::State (templates: NONE; UDP: UDP; TCP: NONE..SYNACK)
//     8   1  fwd              proto::Fwd: 0 NAT, 2 tunnel, 3 direct
//     9   1  svc_proto        service key: 6, 17, or 0 for a firewall-mark service
//    10   1  svc_af           service key: family (equals af)
//    11   1  reserved         0
//    12   2  flags            SF_* below
//    14   2  cport            client port
//    16   2  vport            virtual port
//    18   2  dport            real-side port of the entry
//    20   2  svc_port         service key: port (0 for firewall-mark and port-0 services)
//    22   2  real_port        the real's configured port (identifies it with daddr and daf)
//    24   4  fwmark           the entry's firewall mark
//    28   4  svc_fwmark       service key: firewall mark (0 for address services)
//    32   4  expires_in_ms    remaining lifetime when the record was made
//    36   4  timeout_ms       the entry's current timeout (state timeout or persistence)
//    40   4  in_pkts          packets seen (the refresh rule and embryonic rules use it)
//    44   6  client_mac       where the client's packets came from (NAT replies go there)
//    50   2  client_iface     dataplane interface id the client's packets came in on (< 256)
//    52  16  caddr            client address (IPv4: 4 bytes then 12 zero bytes)
//    68  16  vaddr            virtual address (firewall-mark templates: the mark, big-endian)
//    84  16  daddr            the real's address (family daf)
//   100  16  svc_vip          service key: VIP (zero for firewall-mark services)
#pragma once
#include <cstddef>
#include <cstdint>
#include "packet/bytes.hpp"

namespace lvsd {

inline constexpr uint8_t kSyncVersion = 1;
inline constexpr uint32_t kSyncRecordBytes = 116;
inline constexpr uint32_t kSyncRecordWords = kSyncRecordBytes / 4;
static_assert(kSyncRecordBytes % 4 == 0, "records travel in 32-bit ring words");

// Flags in a record (their own values, independent of the in-memory ConnFlag bits).
enum SyncFlag : uint16_t {
  SF_TEMPLATE = 1 << 0,
  SF_NOOUTPUT = 1 << 1,
  SF_INACTIVE = 1 << 2,
  SF_ASSURED = 1 << 3,
  SF_NO_CPORT = 1 << 4,
  SF_REPLIED = 1 << 5,
  SF_KNOWN = 0x3f,
};

struct SyncRecord {
  uint8_t proto = 0, af = 0, daf = 0, state = 0, fwd = 0, svc_proto = 0, svc_af = 0;
  uint16_t flags = 0;
  uint16_t cport = 0, vport = 0, dport = 0, svc_port = 0, real_port = 0;
  uint32_t fwmark = 0, svc_fwmark = 0, expires_in_ms = 0, timeout_ms = 0, in_pkts = 0;
  Mac client_mac;
  uint16_t client_iface = 0;
  Addr caddr, vaddr, daddr, svc_vip;
};

enum class SyncStatus : uint8_t {
  Ok = 0,
  Truncated,     // fewer than kSyncRecordBytes bytes
  BadVersion,
  BadLength,     // the length field is not this version's record length
  BadReserved,   // a reserved byte is not zero
  BadFamily,     // af/daf/svc_af not 4 or 6, svc_af != af, or daf != af without tunnel
  BadProtocol,
  BadState,
  BadFwd,
  BadFlags,      // unknown flag bits
  BadAddress,    // IPv4 address with non-zero bytes past the first four
  BadService,    // inconsistent service key (e.g. a firewall mark with a VIP)
  BadInterface,  // client_iface out of range
};

const char* sync_status_name(SyncStatus s);

// Writes exactly kSyncRecordBytes bytes. The record should be valid (sync_decode of the output
// returns Ok); encode does not check.
void sync_encode(const SyncRecord& r, uint8_t* out);
// Reads and validates one record from `len` bytes at `p`.
SyncStatus sync_decode(const uint8_t* p, size_t len, SyncRecord& out);

}  // namespace lvsd
