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

// What a real-I/O port counts on its own (the worker's counters cover the packet path).
struct PortStats {
  uint64_t rx_packets = 0;
  uint64_t tx_packets = 0;
  uint64_t tx_failed = 0;      // Tx frames the device did not take (ring full, send error)
  uint64_t pass_dropped = 0;   // Pass verdicts on a backend that cannot hand frames back
  uint64_t kernel_dropped = 0; // dropped before we saw them (socket ring full, XDP rx_dropped)
  uint64_t fill_empty = 0;     // AF_XDP: the kernel found no free frame to receive into
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

  // Ports over file descriptors sleep in the kernel: wait() returns when a frame may be ready,
  // wake() was called (from any thread) or `ms` passed. Ports without descriptors return false
  // and the worker sleeps on its own waker.
  virtual bool wait(uint32_t ms) { return false; }
  virtual void wake() {}
  virtual PortStats stats() const { return {}; }
  // Which backend this is, for logs and stats ("memory", "xdp-native", "packet", ...).
  virtual const char* kind() const { return "memory"; }
};

}  // namespace lvsd
