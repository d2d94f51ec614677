// The host's network state over rtnetlink, in plain C++: links, addresses, routes and
// neighbours; requests the kernel acknowledges (with its errno and extended-ack message),
// dumps, and a subscription to neighbour changes.
//
// Every function opens its sockets in the network namespace of the calling thread: wrap the
// call in a NetnsScope (io/netns.hpp) to act on another namespace.
#pragma once
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

struct nlmsghdr;

namespace lvsd::host {

// A failed host operation, with the stable code the binding hands to JavaScript
// ("LVS_NETLINK", "LVS_NO_SUCH_DEVICE", "LVS_HOST") and the errno behind it (0 if none).
class HostError : public std::runtime_error {
 public:
  HostError(const char* code, int err, const std::string& what) : std::runtime_error(what), code_(code), err_(err) {}
  const char* code() const { return code_; }
  int err() const { return err_; }

 private:
  const char* code_;
  int err_;
};

// An IPv4 (4 bytes) or IPv6 (16 bytes) address in network order.
struct IpAddr {
  uint8_t len = 0;  // 4 or 16
  uint8_t b[16] = {};
  int family() const;  // AF_INET / AF_INET6
  std::string text() const;
  static IpAddr from(const uint8_t* p, size_t len);  // throws HostError for a length not 4/16
};

struct Link {
  uint32_t ifindex = 0;
  std::string name;
  uint8_t mac[6] = {};
  bool has_mac = false;
  uint32_t mtu = 0;
  bool up = false;          // IFF_UP
  uint32_t rx_queues = 1;
  std::string kind;         // IFLA_INFO_KIND; "loopback" for ARPHRD_LOOPBACK
  uint32_t xdp_prog_id = 0;
};

struct AddressEntry {
  uint32_t ifindex = 0;
  IpAddr address;
  uint8_t prefix_len = 0;
  uint32_t flags = 0;  // IFA_F_*
};

struct Route {
  uint32_t ifindex = 0;
  bool has_gateway = false;
  IpAddr gateway;
  bool has_source = false;
  IpAddr source;
  uint8_t type = 0;  // RTN_*
};

struct Neighbour {
  uint32_t ifindex = 0;
  IpAddr address;
  bool has_mac = false;
  uint8_t mac[6] = {};
  uint16_t state = 0;  // NUD_*
  bool deleted = false;
};

// One NETLINK_ROUTE socket (in the calling thread's namespace), optionally joined to
// multicast groups (RTNLGRP_* numbers).
class Socket {
 public:
  explicit Socket(const std::vector<uint32_t>& groups = {});
  ~Socket();
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

  // Send `msg` (a complete netlink message; its sequence number is filled in) and read the
  // answers until the acknowledgement or the end of a dump. Data messages go to `on_msg`.
  // Returns 0, or the positive errno the kernel answered with (its extended-ack text, if it
  // gave one, in `ext_msg`).
  int transact(std::vector<uint8_t>& msg, const std::function<void(const nlmsghdr*)>& on_msg, std::string* ext_msg = nullptr);

 private:
  int fd_ = -1;
  uint32_t seq_ = 0;
};

std::vector<Link> links();
std::vector<AddressEntry> addresses();
// Idempotent: an address that is already there is not an error. nodad: IFA_F_NODAD (IPv6).
void add_address(uint32_t ifindex, const IpAddr& a, uint8_t prefix_len, bool nodad);
// Idempotent: an address that is not there is not an error.
void del_address(uint32_t ifindex, const IpAddr& a, uint8_t prefix_len);
Route route_get(const IpAddr& destination);
std::vector<Neighbour> neighbours();
// Start address resolution (ARP / neighbour solicitation) for `a` on `ifindex` now.
void resolve(uint32_t ifindex, const IpAddr& a);

// Parse an RTM_NEWNEIGH / RTM_DELNEIGH message (IPv4 and IPv6 entries only).
bool parse_neighbour(const nlmsghdr* h, Neighbour& out);

// A subscription to neighbour changes (RTNLGRP_NEIGH): made in the calling thread's
// namespace, read from any one thread. If the kernel reports that notifications were lost
// (ENOBUFS), the next batch is the whole table again (deleted entries then simply stop
// appearing).
class NeighbourMonitor {
 public:
  NeighbourMonitor();
  ~NeighbourMonitor();
  NeighbourMonitor(const NeighbourMonitor&) = delete;
  NeighbourMonitor& operator=(const NeighbourMonitor&) = delete;

  // Block until changes arrive (returns true with a non-empty batch) or stop() was called
  // (returns false). Throws HostError if the socket fails.
  bool next(std::vector<Neighbour>& batch);
  // From any thread: make next() return false.
  void stop();

 private:
  Socket events_;
  Socket dumps_;  // made with events_, so in the same namespace, for resynchronisation
  int stop_fd_ = -1;
};

}  // namespace lvsd::host
