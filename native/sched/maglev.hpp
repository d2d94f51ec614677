// The Maglev population loop (ip_vs_mh.c ip_vs_mh_populate), for the control plane: TypeScript
// decides the reals, their weights and the table size, and computes each real's preference
// list (offset, skip) and turns; this fills the table. Pure C++, called through bindings/.
#pragma once
#include <cstdint>

namespace lvsd {

// table[size] receives slots[i] at every position real i claims; -1 where no real has turns.
// Reals take turns in list order, each claiming its next free preferred position `turns[i]`
// times per round (turns 0: never), until the table is full. The result is exactly IPVS's;
// the search is faster: once few positions are left, each claim picks, among the free ones,
// the first in the real's preference list (position f is step (f - offset) * skip^-1 mod size
// of it, size being prime) instead of probing past taken ones.
void maglev_populate(const uint32_t* offset, const uint32_t* skip, const int32_t* turns,
                     const int32_t* slots, uint32_t n, uint32_t size, int32_t* table);

}  // namespace lvsd
