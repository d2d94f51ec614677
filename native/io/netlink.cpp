#include "io/netlink.hpp"
#include <arpa/inet.h>
#include <linux/if_addr.h>
#include <linux/if_arp.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

namespace lvsd::host {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

[[noreturn]] void fail_errno(const char* code, int err, const std::string& what) {
  throw HostError(code, err, what + ": " + errno_text(err));
}

// A netlink request under construction: the header, a fixed family header, then attributes.
class Message {
 public:
  Message(uint16_t type, uint16_t flags, const void* family_hdr, size_t family_len) {
    buf_.resize(NLMSG_SPACE(family_len), 0);
    nlmsghdr h{};
    h.nlmsg_type = type;
    h.nlmsg_flags = flags;
    std::memcpy(buf_.data(), &h, sizeof h);
    std::memcpy(buf_.data() + NLMSG_HDRLEN, family_hdr, family_len);
    finish();
  }
  void attr(uint16_t type, const void* data, size_t len) {
    const size_t at = buf_.size();
    buf_.resize(at + RTA_SPACE(len), 0);
    rtattr a{};
    a.rta_type = type;
    a.rta_len = uint16_t(RTA_LENGTH(len));
    std::memcpy(buf_.data() + at, &a, sizeof a);
    if (len) std::memcpy(buf_.data() + at + RTA_LENGTH(0), data, len);
    finish();
  }
  void attr_u32(uint16_t type, uint32_t v) { attr(type, &v, sizeof v); }
  std::vector<uint8_t>& bytes() { return buf_; }

 private:
  void finish() {
    const uint32_t len = uint32_t(buf_.size());
    std::memcpy(buf_.data() + offsetof(nlmsghdr, nlmsg_len), &len, sizeof len);
  }
  std::vector<uint8_t> buf_;
};

// Attributes of a message or of a nested attribute, walked with bounds checks.
struct Attrs {
  const uint8_t* p;
  size_t len;

  template <typename F>
  void each(F&& f) const {
    size_t off = 0;
    while (off + sizeof(rtattr) <= len) {
      rtattr a;
      std::memcpy(&a, p + off, sizeof a);
      if (a.rta_len < sizeof(rtattr) || off + a.rta_len > len) break;
      f(uint16_t(a.rta_type & NLA_TYPE_MASK), p + off + RTA_LENGTH(0), size_t(a.rta_len - RTA_LENGTH(0)));
      off += RTA_ALIGN(a.rta_len);
    }
  }
};

// The attributes that follow a family header of `family_len` bytes in message `h`.
Attrs attrs_of(const nlmsghdr* h, size_t family_len) {
  const size_t start = NLMSG_SPACE(family_len);
  if (h->nlmsg_len < start) return {nullptr, 0};
  return {reinterpret_cast<const uint8_t*>(h) + start, size_t(h->nlmsg_len - start)};
}

uint32_t u32_of(const uint8_t* d, size_t n) {
  uint32_t v = 0;
  if (n >= 4) std::memcpy(&v, d, 4);
  return v;
}

std::string string_of(const uint8_t* d, size_t n) {
  size_t k = 0;
  while (k < n && d[k]) ++k;
  return std::string(reinterpret_cast<const char*>(d), k);
}

bool addr_of(int family, const uint8_t* d, size_t n, IpAddr& out) {
  const size_t want = family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
  if (!want || n < want) return false;
  out.len = uint8_t(want);
  std::memset(out.b, 0, sizeof out.b);
  std::memcpy(out.b, d, want);
  return true;
}

// Run a dump, again if the kernel says it was interrupted by a change (NLM_F_DUMP_INTR).
template <typename Parse>
void dump(uint16_t type, const void* family_hdr, size_t family_len, const char* what, Parse&& parse) {
  Socket s;
  for (int attempt = 0;; ++attempt) {
    bool interrupted = false;
    Message m(type, NLM_F_REQUEST | NLM_F_DUMP, family_hdr, family_len);
    if (type == RTM_GETLINK) m.attr_u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
    std::string ext;
    const int err = s.transact(m.bytes(), [&](const nlmsghdr* h) {
      if (h->nlmsg_flags & NLM_F_DUMP_INTR) interrupted = true;
      parse(h);
    }, &ext);
    if (err) fail_errno("LVS_NETLINK", err, std::string("netlink ") + what + (ext.empty() ? "" : " (" + ext + ")"));
    if (!interrupted || attempt == 4) return;
  }
}

const char* code_for(int err) { return err == ENODEV || err == ENXIO ? "LVS_NO_SUCH_DEVICE" : "LVS_NETLINK"; }

}  // namespace

int IpAddr::family() const { return len == 4 ? AF_INET : AF_INET6; }

std::string IpAddr::text() const {
  char s[INET6_ADDRSTRLEN] = {};
  inet_ntop(family(), b, s, sizeof s);
  return s;
}

IpAddr IpAddr::from(const uint8_t* p, size_t n) {
  if (n != 4 && n != 16) throw HostError("LVS_HOST", EINVAL, "an address must be 4 or 16 bytes, got " + std::to_string(n));
  IpAddr a;
  a.len = uint8_t(n);
  std::memcpy(a.b, p, n);
  return a;
}

// ---------------------------------------------------------------------------------------------
// Socket

Socket::Socket(const std::vector<uint32_t>& groups) {
  fd_ = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd_ < 0) fail_errno("LVS_NETLINK", errno, "netlink socket");
  const int one = 1;
  // Error messages from the kernel (extended ack) and no copy of our request in them.
  ::setsockopt(fd_, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  ::setsockopt(fd_, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    const int e = errno;
    ::close(fd_);
    fail_errno("LVS_NETLINK", e, "netlink bind");
  }
  for (uint32_t g : groups) {
    if (::setsockopt(fd_, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof g) != 0) {
      const int e = errno;
      ::close(fd_);
      fail_errno("LVS_NETLINK", e, "netlink join group " + std::to_string(g));
    }
  }
}

Socket::~Socket() {
  if (fd_ >= 0) ::close(fd_);
}

int Socket::transact(std::vector<uint8_t>& msg, const std::function<void(const nlmsghdr*)>& on_msg, std::string* ext_msg) {
  const uint32_t seq = ++seq_;
  std::memcpy(msg.data() + offsetof(nlmsghdr, nlmsg_seq), &seq, sizeof seq);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t sent;
  do {
    sent = ::sendto(fd_, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) fail_errno("LVS_NETLINK", errno, "netlink send");

  std::vector<uint8_t> buf(32768);
  for (;;) {
    // Size the buffer to the next datagram first, so nothing is ever truncated.
    ssize_t want;
    do {
      want = ::recv(fd_, nullptr, 0, MSG_PEEK | MSG_TRUNC);
    } while (want < 0 && errno == EINTR);
    if (want < 0) fail_errno("LVS_NETLINK", errno, "netlink receive");
    if (size_t(want) > buf.size()) buf.resize(size_t(want));
    ssize_t n;
    do {
      n = ::recv(fd_, buf.data(), buf.size(), 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) fail_errno("LVS_NETLINK", errno, "netlink receive");

    size_t off = 0;
    while (off + sizeof(nlmsghdr) <= size_t(n)) {
      const auto* h = reinterpret_cast<const nlmsghdr*>(buf.data() + off);
      if (h->nlmsg_len < sizeof(nlmsghdr) || off + h->nlmsg_len > size_t(n)) break;
      off += NLMSG_ALIGN(h->nlmsg_len);
      if (h->nlmsg_seq != seq) continue;  // an answer to an earlier request, or a notification
      if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_DONE) {
        int32_t code = 0;
        if (h->nlmsg_len >= NLMSG_HDRLEN + sizeof(int32_t)) std::memcpy(&code, NLMSG_DATA(h), sizeof code);
        if (ext_msg && (h->nlmsg_flags & NLM_F_ACK_TLVS)) {
          // Extended-ack attributes follow the error code and the (capped) request header.
          size_t at = NLMSG_HDRLEN + (h->nlmsg_type == NLMSG_ERROR ? sizeof(nlmsgerr) : sizeof(int32_t));
          if (h->nlmsg_type == NLMSG_ERROR && !(h->nlmsg_flags & NLM_F_CAPPED)) {
            nlmsghdr orig;
            std::memcpy(&orig, reinterpret_cast<const uint8_t*>(h) + NLMSG_HDRLEN + sizeof(int32_t), sizeof orig);
            at = NLMSG_HDRLEN + sizeof(int32_t) + NLMSG_ALIGN(orig.nlmsg_len);
          }
          if (at < h->nlmsg_len) {
            Attrs a{reinterpret_cast<const uint8_t*>(h) + at, size_t(h->nlmsg_len - at)};
            a.each([&](uint16_t t, const uint8_t* d, size_t len) {
              if (t == NLMSGERR_ATTR_MSG) *ext_msg = string_of(d, len);
            });
          }
        }
        return code < 0 ? -code : 0;
      }
      on_msg(h);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Links, addresses, routes

std::vector<Link> links() {
  std::vector<Link> out;
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  dump(RTM_GETLINK, &ifi, sizeof ifi, "RTM_GETLINK", [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg))) return;
    ifinfomsg m;
    std::memcpy(&m, NLMSG_DATA(h), sizeof m);
    Link l;
    l.ifindex = uint32_t(m.ifi_index);
    l.up = m.ifi_flags & IFF_UP;
    if (m.ifi_type == ARPHRD_LOOPBACK) l.kind = "loopback";
    attrs_of(h, sizeof m).each([&](uint16_t t, const uint8_t* d, size_t n) {
      switch (t) {
        case IFLA_IFNAME: l.name = string_of(d, n); break;
        case IFLA_ADDRESS:
          if (n == 6) {
            std::memcpy(l.mac, d, 6);
            l.has_mac = true;
          }
          break;
        case IFLA_MTU: l.mtu = u32_of(d, n); break;
        case IFLA_NUM_RX_QUEUES: l.rx_queues = u32_of(d, n); break;
        case IFLA_LINKINFO:
          Attrs{d, n}.each([&](uint16_t it, const uint8_t* id, size_t in) {
            if (it == IFLA_INFO_KIND) l.kind = string_of(id, in);
          });
          break;
        case IFLA_XDP:
          Attrs{d, n}.each([&](uint16_t xt, const uint8_t* xd, size_t xn) {
            if (xt == IFLA_XDP_PROG_ID) l.xdp_prog_id = u32_of(xd, xn);
          });
          break;
        default: break;
      }
    });
    out.push_back(std::move(l));
  });
  return out;
}

std::vector<AddressEntry> addresses() {
  std::vector<AddressEntry> out;
  ifaddrmsg ifa{};
  ifa.ifa_family = AF_UNSPEC;
  dump(RTM_GETADDR, &ifa, sizeof ifa, "RTM_GETADDR", [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWADDR || h->nlmsg_len < NLMSG_LENGTH(sizeof(ifaddrmsg))) return;
    ifaddrmsg m;
    std::memcpy(&m, NLMSG_DATA(h), sizeof m);
    if (m.ifa_family != AF_INET && m.ifa_family != AF_INET6) return;
    AddressEntry e;
    e.ifindex = m.ifa_index;
    e.prefix_len = m.ifa_prefixlen;
    e.flags = m.ifa_flags;
    IpAddr local, address;
    bool has_local = false, has_address = false;
    attrs_of(h, sizeof m).each([&](uint16_t t, const uint8_t* d, size_t n) {
      if (t == IFA_LOCAL) has_local = addr_of(m.ifa_family, d, n, local);
      else if (t == IFA_ADDRESS) has_address = addr_of(m.ifa_family, d, n, address);
      else if (t == IFA_FLAGS) e.flags = u32_of(d, n);
    });
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer's on point-to-point links.
    if (has_local) e.address = local;
    else if (has_address) e.address = address;
    else return;
    out.push_back(e);
  });
  return out;
}

namespace {

void address_request(uint16_t type, uint32_t ifindex, const IpAddr& a, uint8_t plen, bool nodad) {
  ifaddrmsg m{};
  m.ifa_family = uint8_t(a.family());
  m.ifa_prefixlen = plen;
  m.ifa_index = ifindex;
  m.ifa_scope = RT_SCOPE_UNIVERSE;
  const bool v6 = a.len == 16;
  if (nodad && v6) m.ifa_flags = IFA_F_NODAD;
  const uint16_t flags = NLM_F_REQUEST | NLM_F_ACK | (type == RTM_NEWADDR ? NLM_F_CREATE | NLM_F_EXCL : 0);
  Message msg(type, flags, &m, sizeof m);
  msg.attr(IFA_LOCAL, a.b, a.len);
  msg.attr(IFA_ADDRESS, a.b, a.len);
  if (nodad && v6) msg.attr_u32(IFA_FLAGS, IFA_F_NODAD);
  Socket s;
  std::string ext;
  const int err = s.transact(msg.bytes(), [](const nlmsghdr*) {}, &ext);
  if (err == 0) return;
  // Idempotent: adding what is there, or deleting what is not, succeeds.
  if (type == RTM_NEWADDR && err == EEXIST) return;
  if (type == RTM_DELADDR && err == EADDRNOTAVAIL) return;
  const std::string what = std::string(type == RTM_NEWADDR ? "RTM_NEWADDR " : "RTM_DELADDR ") + a.text() + "/" +
                           std::to_string(plen) + " on ifindex " + std::to_string(ifindex) + ": " + errno_text(err) +
                           (ext.empty() ? "" : " (" + ext + ")");
  throw HostError(code_for(err), err, what);
}

}  // namespace

void add_address(uint32_t ifindex, const IpAddr& a, uint8_t plen, bool nodad) {
  address_request(RTM_NEWADDR, ifindex, a, plen, nodad);
}

void del_address(uint32_t ifindex, const IpAddr& a, uint8_t plen) { address_request(RTM_DELADDR, ifindex, a, plen, false); }

Route route_get(const IpAddr& dst) {
  rtmsg r{};
  r.rtm_family = uint8_t(dst.family());
  r.rtm_dst_len = uint8_t(dst.len * 8);
  Message msg(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_ACK, &r, sizeof r);
  msg.attr(RTA_DST, dst.b, dst.len);
  Route out;
  bool got = false;
  Socket s;
  std::string ext;
  const int err = s.transact(msg.bytes(), [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWROUTE || h->nlmsg_len < NLMSG_LENGTH(sizeof(rtmsg)) || got) return;
    rtmsg m;
    std::memcpy(&m, NLMSG_DATA(h), sizeof m);
    got = true;
    out.type = m.rtm_type;
    attrs_of(h, sizeof m).each([&](uint16_t t, const uint8_t* d, size_t n) {
      switch (t) {
        case RTA_OIF: out.ifindex = u32_of(d, n); break;
        case RTA_GATEWAY: out.has_gateway = addr_of(m.rtm_family, d, n, out.gateway); break;
        case RTA_VIA:
          // struct rtvia: a family, then the address (an IPv4 route via an IPv6 next hop).
          if (n >= 2) {
            uint16_t fam;
            std::memcpy(&fam, d, 2);
            out.has_gateway = addr_of(fam, d + 2, n - 2, out.gateway);
          }
          break;
        case RTA_PREFSRC: out.has_source = addr_of(m.rtm_family, d, n, out.source); break;
        default: break;
      }
    });
  }, &ext);
  if (err) {
    throw HostError(code_for(err), err, "RTM_GETROUTE " + dst.text() + ": " + errno_text(err) + (ext.empty() ? "" : " (" + ext + ")"));
  }
  if (!got) throw HostError("LVS_NETLINK", 0, "RTM_GETROUTE " + dst.text() + ": the kernel answered without a route");
  return out;
}

// ---------------------------------------------------------------------------------------------
// Neighbours

bool parse_neighbour(const nlmsghdr* h, Neighbour& out) {
  if ((h->nlmsg_type != RTM_NEWNEIGH && h->nlmsg_type != RTM_DELNEIGH) || h->nlmsg_len < NLMSG_LENGTH(sizeof(ndmsg))) return false;
  ndmsg m;
  std::memcpy(&m, NLMSG_DATA(h), sizeof m);
  if (m.ndm_family != AF_INET && m.ndm_family != AF_INET6) return false;
  if (m.ndm_flags & NTF_PROXY) return false;
  out = Neighbour{};
  out.ifindex = uint32_t(m.ndm_ifindex);
  out.state = m.ndm_state;
  out.deleted = h->nlmsg_type == RTM_DELNEIGH;
  bool has_dst = false;
  attrs_of(h, sizeof m).each([&](uint16_t t, const uint8_t* d, size_t n) {
    if (t == NDA_DST) has_dst = addr_of(m.ndm_family, d, n, out.address);
    else if (t == NDA_LLADDR && n == 6) {
      std::memcpy(out.mac, d, 6);
      out.has_mac = true;
    }
  });
  return has_dst;
}

std::vector<Neighbour> neighbours() {
  std::vector<Neighbour> out;
  ndmsg nd{};
  nd.ndm_family = AF_UNSPEC;
  dump(RTM_GETNEIGH, &nd, sizeof nd, "RTM_GETNEIGH", [&](const nlmsghdr* h) {
    Neighbour n;
    if (parse_neighbour(h, n)) out.push_back(n);
  });
  return out;
}

void resolve(uint32_t ifindex, const IpAddr& a) {
  // RTM_NEWNEIGH with NTF_USE (net/core/neighbour.c, neigh_add): the entry is created if
  // missing (NLM_F_CREATE) and neigh_event_send() starts resolution as if a packet were
  // waiting, without changing a valid entry's state (NEIGH_UPDATE_F_USE, Linux >= 5.16).
  ndmsg nd{};
  nd.ndm_family = uint8_t(a.family());
  nd.ndm_ifindex = int32_t(ifindex);
  nd.ndm_state = NUD_NONE;
  nd.ndm_flags = NTF_USE;
  Message msg(RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE, &nd, sizeof nd);
  msg.attr(NDA_DST, a.b, a.len);
  Socket s;
  std::string ext;
  const int err = s.transact(msg.bytes(), [](const nlmsghdr*) {}, &ext);
  if (err) {
    throw HostError(code_for(err), err, "RTM_NEWNEIGH (use) " + a.text() + " on ifindex " + std::to_string(ifindex) + ": " +
                                            errno_text(err) + (ext.empty() ? "" : " (" + ext + ")"));
  }
}

NeighbourMonitor::NeighbourMonitor() : events_({RTNLGRP_NEIGH}), dumps_() {
  // Room for bursts (a whole table flushed at once); SO_RCVBUFFORCE needs CAP_NET_ADMIN.
  const int bytes = 4 << 20;
  if (::setsockopt(events_.fd(), SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) != 0)
    ::setsockopt(events_.fd(), SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) fail_errno("LVS_HOST", errno, "eventfd");
}

NeighbourMonitor::~NeighbourMonitor() {
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

void NeighbourMonitor::stop() {
  const uint64_t one = 1;
  ssize_t r;
  do {
    r = ::write(stop_fd_, &one, sizeof one);
  } while (r < 0 && errno == EINTR);
}

bool NeighbourMonitor::next(std::vector<Neighbour>& batch) {
  batch.clear();
  std::vector<uint8_t> buf(65536);
  for (;;) {
    pollfd p[2] = {{events_.fd(), POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    const int r = ::poll(p, 2, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      fail_errno("LVS_HOST", errno, "poll (neighbour monitor)");
    }
    if (p[1].revents) return false;
    bool resync = false;
    for (;;) {
      const ssize_t n = ::recv(events_.fd(), buf.data(), buf.size(), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == ENOBUFS) {  // notifications were lost: read the whole table instead
          resync = true;
          continue;
        }
        fail_errno("LVS_NETLINK", errno, "netlink receive (neighbour monitor)");
      }
      size_t off = 0;
      while (off + sizeof(nlmsghdr) <= size_t(n)) {
        const auto* h = reinterpret_cast<const nlmsghdr*>(buf.data() + off);
        if (h->nlmsg_len < sizeof(nlmsghdr) || off + h->nlmsg_len > size_t(n)) break;
        off += NLMSG_ALIGN(h->nlmsg_len);
        Neighbour e;
        if (parse_neighbour(h, e)) batch.push_back(e);
      }
    }
    if (resync) {
      batch.clear();
      ndmsg nd{};
      nd.ndm_family = AF_UNSPEC;
      Message m(RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, &nd, sizeof nd);
      const int err = dumps_.transact(m.bytes(), [&](const nlmsghdr* h) {
        Neighbour e;
        if (parse_neighbour(h, e)) batch.push_back(e);
      });
      if (err) fail_errno("LVS_NETLINK", err, "netlink RTM_GETNEIGH (neighbour monitor resync)");
    }
    if (!batch.empty()) return true;
  }
}

}  // namespace lvsd::host
