// The per-worker connection table. Entries live in one array (so a connection is named by a
// 32-bit index); a chained hash index keyed on the client endpoint (protocol, client address,
// client port) finds them, as IPVS hashes ip_vs_conn. The same chain serves both directions:
// client->VIP packets hash their source, real->client (NAT) replies hash their destination.
//
// Entries are handed out from a bump pointer and a free list, so memory is touched only as
// the table fills. Embryonic entries (SYN seen, no reply yet) are also on a FIFO list: when
// the table is full, the oldest of them is evicted first (the SYN-flood policy).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include "flow/conn.hpp"

namespace lvsd {

class ConnTable {
 public:
  ConnTable(uint32_t capacity, uint64_t seed);
  ~ConnTable();
  ConnTable(const ConnTable&) = delete;
  ConnTable& operator=(const ConnTable&) = delete;

  uint32_t capacity() const { return capacity_; }
  uint32_t size() const { return size_; }
  uint32_t buckets() const { return mask_ + 1; }
  // Bytes the table reserves: entries plus the bucket array.
  size_t reserved_bytes() const { return size_t(capacity_) * sizeof(Conn) + size_t(buckets()) * 4; }

  uint64_t hash(uint8_t proto, uint8_t af, const Addr& client, uint16_t cport) const {
    const uint64_t k = uint64_t(cport) << 16 | uint64_t(proto) << 8 | af;
    return mum(client.lo() ^ seed_[0], client.hi() ^ seed_[1] ^ k) ^ seed_[2];
  }
  void prefetch(uint64_t h) const { __builtin_prefetch(&heads_[h & mask_]); }
  uint32_t head(uint64_t h) const { return heads_[h & mask_]; }
  // Both cache lines of an entry: the key, and the state a packet updates.
  void prefetch_entry(uint32_t i) const {
    if (i == NIL) return;
    __builtin_prefetch(&entries_[i]);
    __builtin_prefetch(reinterpret_cast<const uint8_t*>(&entries_[i]) + 64);
  }

  // client -> VIP: the packet's (saddr, sport) is the client, (daddr, dport) the VIP.
  uint32_t find_in(uint64_t h, uint8_t proto, uint8_t af, const Addr& caddr, uint16_t cport,
                   const Addr& vaddr, uint16_t vport, bool want_template) const {
    const uint16_t want = want_template ? CF_TEMPLATE : 0;
    for (uint32_t i = heads_[h & mask_]; i != NIL; i = entries_[i].next) {
      const Conn& c = entries_[i];
      if (c.cport == cport && c.vport == vport && c.proto == proto && c.af == af &&
          (c.flags & CF_TEMPLATE) == want && c.caddr == caddr && c.vaddr == vaddr)
        return i;
    }
    return NIL;
  }
  // real -> client: the packet's (daddr, dport) is the client, (saddr, sport) the real.
  uint32_t find_out(uint64_t h, uint8_t proto, uint8_t af, const Addr& caddr, uint16_t cport,
                    const Addr& daddr, uint16_t dport) const {
    for (uint32_t i = heads_[h & mask_]; i != NIL; i = entries_[i].next) {
      const Conn& c = entries_[i];
      if (c.cport == cport && c.dport == dport && c.proto == proto && c.daf == af &&
          !(c.flags & CF_TEMPLATE) && c.caddr == caddr && c.daddr == daddr)
        return i;
    }
    return NIL;
  }

  Conn& at(uint32_t i) { return entries_[i]; }
  const Conn& at(uint32_t i) const { return entries_[i]; }
  // Entries [0, high_water) have been handed out at least once: the range a sweep visits.
  uint32_t high_water() const { return bump_; }

  // A fresh entry (zeroed, CF_IN_USE set, not yet in the index), or NIL when full.
  uint32_t alloc();
  // Put an allocated entry into the index under hash h (of its client endpoint).
  void link(uint32_t i, uint64_t h);
  // Take an entry out of the index and the embryonic list, and free it.
  void release(uint32_t i);
  // Drop every entry.
  void clear();

  void embryonic_push(uint32_t i);
  void embryonic_remove(uint32_t i);
  uint32_t embryonic_oldest() const { return emb_head_; }

 private:
  static uint64_t mum(uint64_t a, uint64_t b) {
    const __uint128_t r = static_cast<__uint128_t>(a) * b;
    return uint64_t(r) ^ uint64_t(r >> 64);
  }

  Conn* entries_ = nullptr;
  uint32_t* heads_ = nullptr;
  uint32_t capacity_ = 0;
  uint32_t mask_ = 0;
  uint32_t size_ = 0;
  uint32_t bump_ = 0;
  uint32_t free_ = NIL;
  uint32_t emb_head_ = NIL, emb_tail_ = NIL;
  uint64_t seed_[3];
};

}  // namespace lvsd
