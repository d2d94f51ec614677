// The command and event vocabulary between the TypeScript control plane and the dataplane.
// src/dataplane/protocol.ts mirrors these numbers; test/dataplane/protocol.test.ts checks that
// the two agree (the addon exports this table through bindings/).
#pragma once
#include <cstdint>

namespace lvsd::proto {

// Commands, TS -> native. Payload word layouts are documented per opcode; addresses are 4
// words, each holding 4 address bytes big-endian (IPv4 uses the first word).
enum Op : uint32_t {
  // [id, mtu, vlan, flags(bit0 has ipv4, bit1 has ipv6), mac_hi32, mac_lo16, v4, v6 x4]
  OP_SET_INTERFACE = 1,
  OP_DEL_INTERFACE = 2,  // [id]
  // [slot, af, proto, port, fwmark, sched, flags, persist_s, pmask_plen, vip x4, pmask x4,
  //  lc_epoch, mh_size]. flags: SVC_F_*. lc_epoch: bumping it resets the connection counts the
  //  least-connection schedulers see (Piranha's quiesce_server).
  OP_SET_SERVICE = 3,
  OP_DEL_SERVICE = 4,  // [slot]
  // [slot, svc, af, port, weight, fwd, u_thresh, l_thresh, iface, flags(bit0 new: insert at
  //  the head of the service's list, as IPVS does), mac_hi32, mac_lo16, addr x4]
  OP_SET_REAL = 5,
  OP_DEL_REAL = 6,  // [slot]
  OP_SET_TIMEOUTS = 7,  // [count, ms x count]: per-state timeouts in kTimeout order
  OP_CLEAR = 8,         // []: delete every service and real (ipvsadm -C)
  OP_COMMIT = 9,        // [gen_lo, gen_hi]: publish everything since the last commit
  // [request] or [request, format]: every worker serialises its connection table, as
  // kDumpRecordBytes rows (DUMP_ROWS, the default) or as sync records (DUMP_SYNC: templates
  // first, then connections; flow/sync_record.hpp).
  OP_DUMP_CONNS = 10,
  // [svc, kind, total, offset, count, entries x count]: a scheduling table computed in TS,
  // in chunks (a table may be larger than a ring message). Entries are real slots or NIL.
  OP_SET_TABLE = 11,
  // [first, count, rules x count]: firewall-mark classification rules, each kMarkRuleWords:
  // [af, proto, dst x4, dst_plen, src x4, src_plen, port_lo, port_hi, mark]. first=1 replaces
  // the list, first=0 appends (long lists span messages).
  OP_SET_MARKS = 12,
  OP_SET_OPTIONS = 13,  // [flags: OPT_*]
  // [records x kSyncRecordWords]: sync records (flow/sync_record.hpp) for every worker to apply
  // to its connection table. The control thread hands them on; workers apply them at batch
  // boundaries against their current snapshot.
  OP_SYNC_IMPORT = 14,
};

enum DumpFormat : uint32_t {
  DUMP_ROWS = 0,
  DUMP_SYNC = 1,
};

inline constexpr uint32_t kMarkRuleWords = 15;

enum TableKind : uint32_t {
  TABLE_BUCKETS = 1,  // sh/dh/mh lookup table
  TABLE_WRR_SEQ = 2,  // wrr: real slots over one period
  TABLE_WRR_CW = 3,   // wrr: the current weight of each pick
};

// Service flags, IPVS's values (include/uapi/linux/ip_vs.h IP_VS_SVC_F_*).
enum SvcFlag : uint32_t {
  SVC_F_PERSISTENT = 0x1,
  SVC_F_ONEPACKET = 0x4,
  SVC_F_SCHED1 = 0x8,   // sh-fallback / mh-fallback
  SVC_F_SCHED2 = 0x10,  // sh-port / mh-port
  SVC_F_SCHED3 = 0x20,
};

enum OptionFlag : uint32_t {
  OPT_EXPIRE_NODEST_CONN = 0x1,         // packets of a connection whose real is gone end it
  OPT_EXPIRE_QUIESCENT_TEMPLATE = 0x2,  // a template of a weight-0 real no longer binds
  OPT_SYNC_MASTER = 0x4,                // workers export sync records (EV_SYNC)
};

// Events, native -> TS (one ring per producer: the control thread and each worker).
enum Ev : uint32_t {
  EV_APPLIED = 1,           // [gen_lo, gen_hi]: every worker will use this configuration
  EV_REAL_RELEASED = 2,     // [slot]: a deleted real has no connection left; slot reusable
  EV_SERVICE_RELEASED = 3,  // [slot]
  EV_REJECTED = 4,          // [opcode, code]: a command failed native checks (a bug in TS)
  EV_DUMP_READY = 5,        // [worker, request]
  EV_NEIGH_MISS = 6,        // [iface, af, addr x4]: a real's MAC address is unknown
  EV_SYNC = 7,              // [records x kSyncRecordWords]: connection state for the backup
};

enum RejectCode : uint32_t {
  REJ_BAD_LENGTH = 1,
  REJ_BAD_SLOT = 2,
  REJ_BAD_FIELD = 3,
  REJ_UNKNOWN_OPCODE = 4,
  REJ_RING_CORRUPT = 5,
};

// Per-slot counters for services and reals (ipvsadm --stats, and the live counts).
enum SlotCounter : uint32_t {
  SC_CONNS = 0,
  SC_INPKTS,
  SC_OUTPKTS,
  SC_INBYTES,
  SC_OUTBYTES,
  SC_ACTIVE,    // active connections (TCP in ESTABLISHED/SYN states) bound here
  SC_INACTIVE,  // other connections
  SC_PERSIST,   // persistence templates
  SC_SCHED_ACTIVE,    // active connections as the schedulers count them (reset by quiesce)
  SC_SCHED_INACTIVE,  // inactive connections as the schedulers count them
  SC_COUNT,
};

// Connection states, IPVS numbering for TCP; UDP and ICMP follow.
enum State : uint8_t {
  S_NONE = 0, S_ESTABLISHED, S_SYN_SENT, S_SYN_RECV, S_FIN_WAIT, S_TIME_WAIT, S_CLOSE,
  S_CLOSE_WAIT, S_LAST_ACK, S_LISTEN, S_SYNACK, S_UDP, S_ICMP, S_COUNT
};

enum Fwd : uint8_t { FWD_NAT = 0, FWD_DIRECT = 3, FWD_TUNNEL = 2 };  // IPVS MASQ/DROUTE/TUNNEL
// Schedulers (TS names them; these codes travel in OP_SET_SERVICE).
enum Sched : uint8_t {
  SCH_RR = 1, SCH_WRR, SCH_LC, SCH_WLC, SCH_SED, SCH_NQ, SCH_LBLC, SCH_LBLCR, SCH_DH, SCH_SH,
  SCH_MH, SCH_FO, SCH_OVF, SCH_TWOS,
};

}  // namespace lvsd::proto
