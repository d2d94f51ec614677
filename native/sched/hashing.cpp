#include "sched/hashing.hpp"

namespace lvsd {
namespace {

constexpr uint32_t kBuckets = 256;  // IP_VS_SH_TAB_SIZE / IP_VS_DH_TAB_SIZE
constexpr uint64_t kMhHash1 = 2654435761ull;  // ip_vs_mh.c hash1 (hash2 only places reals: TS)

inline uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

}  // namespace

uint32_t hsiphash_1u32(uint32_t value, uint64_t k0, uint64_t k1) {
  uint64_t v0 = 0x736f6d6570736575ull ^ k0;
  uint64_t v1 = 0x646f72616e646f6dull ^ k1;
  uint64_t v2 = 0x6c7967656e657261ull ^ k0;
  uint64_t v3 = 0x7465646279746573ull ^ k1;
  const uint64_t b = (uint64_t(4) << 56) | value;
  auto round = [&] {
    v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);
    v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;
    v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;
    v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);
  };
  v3 ^= b;
  round();
  v0 ^= b;
  v2 ^= 0xff;
  round();
  round();
  round();
  return uint32_t((v0 ^ v1) ^ (v2 ^ v3));
}

// The lookup both sh and mh make: the bucket the client hashes to; if its real is unavailable
// and the service has the fallback flag, buckets at further offsets of the same key until an
// empty one (ip_vs_sh_get_fallback, ip_vs_mh_get_fallback).
template <typename Key>
static uint32_t lookup(const SchedEnv& env, const ServiceCfg& svc, const std::vector<uint32_t>& t,
                       uint32_t size, Key key) {
  const uint32_t ihash = key(0);
  uint32_t dest = t[ihash];
  if (dest == NIL) return NIL;
  if (env.available(dest)) return dest;
  if (!(svc.flags & proto::SVC_F_SCHED1)) return NIL;
  for (uint32_t offset = 0; offset < size; ++offset) {
    dest = t[key((offset + ihash) % size)];
    if (dest == NIL) break;
    if (env.available(dest)) return dest;
  }
  return NIL;
}

// The port sh/mh hash with their "-port" flag: the client's source port, TCP/UDP only.
static uint16_t hash_port(const ServiceCfg& svc, const PacketView& pv) {
  return (svc.flags & proto::SVC_F_SCHED2) && (pv.proto == PROTO_TCP || pv.proto == PROTO_UDP) ? pv.sport : 0;
}

uint32_t SourceHash::schedule(const SchedEnv& env, const ServiceCfg& svc, const PacketView& pv) {
  const auto* t = svc.table.get();
  if (!t || t->size() != kBuckets) return NIL;
  const uint32_t h = uint32_t(hash_port(svc, pv)) + addr_fold(pv.af, pv.src);
  return lookup(env, svc, *t, kBuckets, [&](uint32_t offset) { return (offset + hash_32(h, 8)) & (kBuckets - 1); });
}

uint32_t DestinationHash::schedule(const SchedEnv& env, const ServiceCfg& svc, const PacketView& pv) {
  const auto* t = svc.table.get();
  if (!t || t->size() != kBuckets) return NIL;
  const uint32_t dest = (*t)[hash_32(addr_fold(pv.af, pv.dst), 8)];
  return dest != NIL && env.available(dest) ? dest : NIL;
}

uint32_t Maglev::schedule(const SchedEnv& env, const ServiceCfg& svc, const PacketView& pv) {
  const auto* t = svc.table.get();
  const uint32_t m = svc.mh_size;
  if (!t || m == 0 || t->size() != m) return NIL;
  const uint32_t base = uint32_t(hash_port(svc, pv)) + addr_fold(pv.af, pv.src);
  return lookup(env, svc, *t, m, [&](uint32_t offset) { return hsiphash_1u32(offset + base, kMhHash1, kMhHash1) % m; });
}

}  // namespace lvsd
