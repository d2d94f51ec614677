// Per-worker global counters, in the shared stats region (JavaScript sums the workers).
#pragma once
#include <cstdint>
#include "packet/parse.hpp"

namespace lvsd {

// Drop reasons from the parser occupy [DROP_PARSE_BASE + ParseStatus]; the statuses NotIp and
// Unhandled are passes, not drops, and their slots stay zero.
enum Counter : uint32_t {
  C_RX_PACKETS = 0,
  C_RX_BYTES,
  C_TX_PACKETS,
  C_TX_BYTES,
  C_PASS_PACKETS,       // handed to the kernel: not for a VIP, or not something we direct
  C_PASS_NO_CONN,       // of those: TCP without SYN to a VIP with no connection
  C_DROP_NO_DEST,       // the scheduler found no available real (ICMP unreachable sent)
  C_DROP_DEST_GONE,     // the connection's real was deleted (expire_nodest_conn=0)
  C_DROP_NO_NEIGHBOUR,  // the next hop's MAC address is unknown
  C_DROP_NO_IFACE,      // no usable egress interface / source address
  C_DROP_TTL_EXCEEDED,
  C_DROP_TOO_BIG,       // needed fragmentation with DF set: ICMP sent instead
  C_DROP_TABLE_FULL,    // no connection entry could be had, even by eviction
  C_DROP_TX_FULL,
  C_DROP_NO_ROOM,       // no headroom/tailroom to grow the frame
  C_ICMP_SENT,
  C_ICMP_RATELIMITED,
  C_FRAGMENTS_SENT,
  C_CONN_CREATED,
  C_CONN_EXPIRED,
  C_CONN_EVICTED,       // embryonic connections evicted to make room (SYN flood policy)
  C_CONN_REUSED,        // a new SYN on a TIME_WAIT/CLOSE connection rescheduled it
  C_CONN_COUNT,         // gauge: entries in this worker's table
  C_SNAPSHOTS,          // configuration snapshots picked up
  C_BATCHES,
  C_EVENTS_LOST,        // event ring full
  // Connection sync (flow/sync_record.hpp). Export: records a worker emitted, or lost because
  // its event ring was full. Import: counted once per record (by worker 0, although every
  // worker applies it), so the import counters add up to the records given.
  C_SYNC_EXPORTED,
  C_SYNC_DROPPED,
  C_SYNC_IMPORTED,           // created an entry
  C_SYNC_UPDATED,            // updated an existing entry
  C_SYNC_REJECTED_MALFORMED, // failed sync_decode
  C_SYNC_REJECTED_NO_SERVICE,
  C_SYNC_REJECTED_NO_REAL,
  C_SYNC_REJECTED_FULL,      // no entry could be had, even by eviction
  C_DROP_PARSE_BASE,
  C_COUNT = C_DROP_PARSE_BASE + 24,
};

static_assert(uint32_t(ParseStatus::IcmpBadInner) < 24, "parse status counters overflow");

inline const char* counter_name(uint32_t c) {
  static const char* const names[] = {
      "rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "pass_packets", "pass_no_conn",
      "drop_no_dest", "drop_dest_gone", "drop_no_neighbour", "drop_no_iface",
      "drop_ttl_exceeded", "drop_too_big", "drop_table_full", "drop_tx_full", "drop_no_room",
      "icmp_sent", "icmp_ratelimited", "fragments_sent", "conn_created", "conn_expired",
      "conn_evicted", "conn_reused", "conn_count", "snapshots", "batches", "events_lost",
      "sync_exported", "sync_dropped", "sync_imported", "sync_updated", "sync_rejected_malformed",
      "sync_rejected_no_service", "sync_rejected_no_real", "sync_rejected_full"};
  static_assert(sizeof(names) / sizeof(names[0]) == C_DROP_PARSE_BASE);
  return c < C_DROP_PARSE_BASE ? names[c] : nullptr;
}

inline const char* parse_status_name(ParseStatus s) {
  switch (s) {
    case ParseStatus::Ok: return "ok";
    case ParseStatus::NotIp: return "not_ip";
    case ParseStatus::Unhandled: return "unhandled";
    case ParseStatus::EthTruncated: return "eth_truncated";
    case ParseStatus::VlanTruncated: return "vlan_truncated";
    case ParseStatus::Ipv4Truncated: return "ipv4_truncated";
    case ParseStatus::Ipv4BadVersion: return "ipv4_bad_version";
    case ParseStatus::Ipv4BadIhl: return "ipv4_bad_ihl";
    case ParseStatus::Ipv4BadLength: return "ipv4_bad_length";
    case ParseStatus::Ipv4BadChecksum: return "ipv4_bad_checksum";
    case ParseStatus::Ipv6Truncated: return "ipv6_truncated";
    case ParseStatus::Ipv6BadVersion: return "ipv6_bad_version";
    case ParseStatus::Ipv6BadLength: return "ipv6_bad_length";
    case ParseStatus::Ipv6BadExtension: return "ipv6_bad_extension";
    case ParseStatus::Ipv6RoutingHeader: return "ipv6_routing_header";
    case ParseStatus::Fragment: return "fragment";
    case ParseStatus::L4Truncated: return "l4_truncated";
    case ParseStatus::TcpBadOffset: return "tcp_bad_offset";
    case ParseStatus::UdpBadLength: return "udp_bad_length";
    case ParseStatus::Udp6ZeroChecksum: return "udp6_zero_checksum";
    case ParseStatus::IcmpBadChecksum: return "icmp_bad_checksum";
    case ParseStatus::IcmpBadInner: return "icmp_bad_inner";
  }
  return "unknown";
}

}  // namespace lvsd
