#include "flow/conn_table.hpp"
#include <sys/mman.h>
#include <cstring>
#include <new>

namespace lvsd {
namespace {

// Large anonymous mappings: the kernel hands out zeroed pages only when they are touched, so
// a 1M-entry table costs memory in proportion to the connections it holds.
void* map_zeroed(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return p;
}

uint64_t splitmix(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

ConnTable::ConnTable(uint32_t capacity, uint64_t seed) : capacity_(capacity ? capacity : 1) {
  uint32_t b = 8;
  while (b < capacity_ && b < (1u << 31)) b <<= 1;
  mask_ = b - 1;
  entries_ = static_cast<Conn*>(map_zeroed(size_t(capacity_) * sizeof(Conn)));
  heads_ = static_cast<uint32_t*>(map_zeroed(size_t(b) * 4));
  std::memset(heads_, 0xff, size_t(b) * 4);
  for (auto& s : seed_) s = splitmix(seed);
}

ConnTable::~ConnTable() {
  munmap(entries_, size_t(capacity_) * sizeof(Conn));
  munmap(heads_, size_t(buckets()) * 4);
}

uint32_t ConnTable::alloc() {
  uint32_t i;
  if (free_ != NIL) {
    i = free_;
    free_ = entries_[i].next;
  } else if (bump_ < capacity_) {
    i = bump_++;
  } else {
    return NIL;
  }
  Conn& c = entries_[i];
  c = Conn{};
  c.next = NIL;
  c.real = NIL;
  c.control = NIL;
  c.lru_prev = c.lru_next = NIL;
  c.flags = CF_IN_USE;
  ++size_;
  return i;
}

void ConnTable::link(uint32_t i, uint64_t h) {
  uint32_t& head = heads_[h & mask_];
  entries_[i].next = head;
  head = i;
}

void ConnTable::release(uint32_t i) {
  Conn& c = entries_[i];
  if (c.flags & CF_EMBRYONIC) embryonic_remove(i);
  const uint64_t h = hash(c.proto, c.af, c.caddr, c.cport);
  uint32_t* link = &heads_[h & mask_];
  while (*link != NIL && *link != i) link = &entries_[*link].next;
  if (*link == i) *link = c.next;
  c.flags = 0;
  c.next = free_;
  free_ = i;
  --size_;
}

void ConnTable::clear() {
  std::memset(heads_, 0xff, size_t(buckets()) * 4);
  for (uint32_t i = 0; i < bump_; ++i) entries_[i].flags = 0;
  bump_ = 0;
  free_ = NIL;
  size_ = 0;
  emb_head_ = emb_tail_ = NIL;
}

void ConnTable::embryonic_push(uint32_t i) {
  Conn& c = entries_[i];
  c.flags |= CF_EMBRYONIC;
  c.lru_next = NIL;
  c.lru_prev = emb_tail_;
  if (emb_tail_ != NIL) entries_[emb_tail_].lru_next = i; else emb_head_ = i;
  emb_tail_ = i;
}

void ConnTable::embryonic_remove(uint32_t i) {
  Conn& c = entries_[i];
  if (!(c.flags & CF_EMBRYONIC)) return;
  if (c.lru_prev != NIL) entries_[c.lru_prev].lru_next = c.lru_next; else emb_head_ = c.lru_next;
  if (c.lru_next != NIL) entries_[c.lru_next].lru_prev = c.lru_prev; else emb_tail_ = c.lru_prev;
  c.lru_prev = c.lru_next = NIL;
  c.flags &= ~CF_EMBRYONIC;
}

}  // namespace lvsd
