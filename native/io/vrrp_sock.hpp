// A raw IP socket for VRRP (IP protocol 112, RFC 5798) on one interface: bound to the device,
// joined to the VRRP group (224.0.0.18 or ff02::12) there, sending with TTL / hop limit 255 and
// reporting each received packet's source, destination and TTL / hop limit. The checksum is
// left to the caller in both families (src/ha/vrrp-wire.ts), so a packet with a bad one is
// delivered and counted there instead of vanishing in the kernel.
//
// Opened in the network namespace of the calling thread (wrap the constructor in a NetnsScope);
// the socket stays in that namespace whichever thread uses it afterwards.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>
#include "io/netlink.hpp"

namespace lvsd::host {

constexpr int kVrrpProtocol = 112;

struct VrrpPacket {
  IpAddr source;
  IpAddr destination;
  int ttl = -1;                  // TTL (IPv4) or hop limit (IPv6); -1 if the kernel gave none
  std::vector<uint8_t> payload;  // the VRRP message (after the IPv4 header; IPv6 has none)
  bool truncated = false;        // longer than the receive buffer
};

class VrrpSocket {
 public:
  // family: AF_INET or AF_INET6. Throws HostError: LVS_NO_SUCH_DEVICE for an unknown
  // interface, LVS_HOST for every failed socket call (with its errno).
  VrrpSocket(const std::string& ifname, int family);
  ~VrrpSocket();
  VrrpSocket(const VrrpSocket&) = delete;
  VrrpSocket& operator=(const VrrpSocket&) = delete;

  uint32_t ifindex() const { return ifindex_; }
  int family() const { return family_; }

  // Send one VRRP message to the group from `source` (the interface's primary IPv4 address or
  // its IPv6 link-local address; a zero-length IpAddr lets the kernel choose). Throws HostError.
  void send(const uint8_t* payload, size_t len, const IpAddr& source);

  // Wait for packets; appends every packet already queued (up to `max`) and returns true, or
  // returns false once stop() was called. Throws HostError when the socket fails.
  bool next(std::vector<VrrpPacket>& out, size_t max = 64);

  // Wake next() and make it return false (any thread; idempotent).
  void stop();

 private:
  int fd_ = -1;
  int wake_ = -1;  // eventfd
  int family_;
  uint32_t ifindex_ = 0;
  std::vector<uint8_t> buf_;
};

}  // namespace lvsd::host
