// The I/O boundary of a worker. A Port hands the worker batches of received frames and takes
// them back with a verdict; AF_XDP, AF_PACKET and the in-memory backends implement it.
#pragma once
#include <cstdint>

namespace lvsd {

enum class Verdict : uint8_t { Drop = 0, Tx = 1, Pass = 2 };

struct Packet {
  uint8_t* data = nullptr;  // frame start (Ethernet header)
  uint32_t len = 0;
  uint32_t headroom = 0;    // writable bytes before data
  uint32_t tailroom = 0;    // writable bytes after data + len
  uint16_t iface = 0;       // receiving interface; on Tx, the egress interface
  Verdict verdict = Verdict::Drop;
  bool generated = false;   // from allocate(): an ICMP error or a fragment
  uint32_t cookie = 0;      // the port's own bookkeeping
};

class Port {
 public:
  virtual ~Port() = default;
  // Up to `max` received frames; they belong to the worker until complete().
  virtual uint32_t receive(Packet* pkts, uint32_t max) = 0;
  // A blank buffer for a frame the dataplane builds itself (len 0, data at its start).
  virtual bool allocate(Packet& p) = 0;
  // Act on the verdicts (transmit, hand to the kernel, drop) and take the buffers back.
  // Returns how many Tx/Pass frames could not be queued (the worker counts them).
  virtual uint32_t complete(Packet* pkts, uint32_t n) = 0;
};

}  // namespace lvsd
