#include "io/vrrp_sock.hpp"
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>

namespace lvsd::host {
namespace {

// The VRRP groups (RFC 5798 5.1.1.2 and 5.1.2.2).
constexpr uint8_t kGroup4[4] = {224, 0, 0, 18};
constexpr uint8_t kGroup6[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12};

[[noreturn]] void fail(const std::string& what, int err) {
  throw HostError(err == ENODEV || err == ENXIO ? "LVS_NO_SUCH_DEVICE" : "LVS_HOST", err, "vrrp socket: " + what + ": " + std::strerror(err));
}

void set_int(int fd, int level, int opt, int value, const char* name) {
  if (::setsockopt(fd, level, opt, &value, sizeof value) < 0) fail(std::string("setsockopt(") + name + ")", errno);
}

IpAddr addr4(const in_addr& a) { return IpAddr::from(reinterpret_cast<const uint8_t*>(&a), 4); }
IpAddr addr6(const in6_addr& a) { return IpAddr::from(a.s6_addr, 16); }

}  // namespace

VrrpSocket::VrrpSocket(const std::string& ifname, int family) : family_(family), buf_(65536) {
  if (family != AF_INET && family != AF_INET6) throw HostError("LVS_HOST", EAFNOSUPPORT, "vrrp socket: family must be IPv4 or IPv6");
  if (ifname.empty() || ifname.size() >= IFNAMSIZ) throw HostError("LVS_NO_SUCH_DEVICE", ENODEV, "vrrp socket: \"" + ifname + "\" is not a device name");
  ifindex_ = ::if_nametoindex(ifname.c_str());
  if (ifindex_ == 0) throw HostError("LVS_NO_SUCH_DEVICE", ENODEV, "vrrp socket: no device \"" + ifname + "\"");
  fd_ = ::socket(family, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, kVrrpProtocol);
  if (fd_ < 0) fail(family == AF_INET ? "socket(AF_INET, SOCK_RAW, 112)" : "socket(AF_INET6, SOCK_RAW, 112)", errno);
  try {
    if (::setsockopt(fd_, SOL_SOCKET, SO_BINDTODEVICE, ifname.c_str(), socklen_t(ifname.size())) < 0)
      fail("SO_BINDTODEVICE " + ifname, errno);
    if (family == AF_INET) {
      // 224.0.0.18 goes out with TTL 255 (RFC 5798 5.1.1.3) and only on this interface.
      set_int(fd_, IPPROTO_IP, IP_MULTICAST_TTL, 255, "IP_MULTICAST_TTL");
      set_int(fd_, IPPROTO_IP, IP_TTL, 255, "IP_TTL");
      set_int(fd_, IPPROTO_IP, IP_MULTICAST_LOOP, 0, "IP_MULTICAST_LOOP");
      // Only the groups this socket joined, not every group some socket on the host joined.
      set_int(fd_, IPPROTO_IP, IP_MULTICAST_ALL, 0, "IP_MULTICAST_ALL");
      set_int(fd_, IPPROTO_IP, IP_RECVTTL, 1, "IP_RECVTTL");
      ip_mreqn ifreq{};
      ifreq.imr_ifindex = int(ifindex_);
      if (::setsockopt(fd_, IPPROTO_IP, IP_MULTICAST_IF, &ifreq, sizeof ifreq) < 0) fail("IP_MULTICAST_IF", errno);
      ip_mreqn mreq{};
      std::memcpy(&mreq.imr_multiaddr, kGroup4, 4);
      mreq.imr_ifindex = int(ifindex_);
      if (::setsockopt(fd_, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq) < 0) fail("IP_ADD_MEMBERSHIP 224.0.0.18 on " + ifname, errno);
    } else {
      set_int(fd_, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 255, "IPV6_MULTICAST_HOPS");
      set_int(fd_, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 255, "IPV6_UNICAST_HOPS");
      set_int(fd_, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 0, "IPV6_MULTICAST_LOOP");
      set_int(fd_, IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0, "IPV6_MULTICAST_ALL");
      set_int(fd_, IPPROTO_IPV6, IPV6_MULTICAST_IF, int(ifindex_), "IPV6_MULTICAST_IF");
      set_int(fd_, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1, "IPV6_RECVHOPLIMIT");
      set_int(fd_, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1, "IPV6_RECVPKTINFO");
      ipv6_mreq mreq{};
      std::memcpy(mreq.ipv6mr_multiaddr.s6_addr, kGroup6, 16);
      mreq.ipv6mr_interface = ifindex_;
      if (::setsockopt(fd_, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, &mreq, sizeof mreq) < 0) fail("IPV6_ADD_MEMBERSHIP ff02::12 on " + ifname, errno);
    }
    wake_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_ < 0) fail("eventfd", errno);
  } catch (...) {
    ::close(fd_);
    if (wake_ >= 0) ::close(wake_);
    throw;
  }
}

VrrpSocket::~VrrpSocket() {
  if (fd_ >= 0) ::close(fd_);
  if (wake_ >= 0) ::close(wake_);
}

void VrrpSocket::stop() {
  const uint64_t one = 1;
  ssize_t n;
  do {
    n = ::write(wake_, &one, sizeof one);
  } while (n < 0 && errno == EINTR);
}

void VrrpSocket::send(const uint8_t* payload, size_t len, const IpAddr& source) {
  iovec iov{const_cast<uint8_t*>(payload), len};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) uint8_t control[CMSG_SPACE(sizeof(in6_pktinfo))] = {};
  sockaddr_in to4{};
  sockaddr_in6 to6{};
  if (family_ == AF_INET) {
    to4.sin_family = AF_INET;
    std::memcpy(&to4.sin_addr, kGroup4, 4);
    msg.msg_name = &to4;
    msg.msg_namelen = sizeof to4;
    if (source.len == 4) {
      // The source address of the advertisement: its checksum covers it (pseudo-header).
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(sizeof(in_pktinfo));
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = IPPROTO_IP;
      c->cmsg_type = IP_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
      in_pktinfo pi{};
      pi.ipi_ifindex = int(ifindex_);
      std::memcpy(&pi.ipi_spec_dst, source.b, 4);
      std::memcpy(CMSG_DATA(c), &pi, sizeof pi);
    }
  } else {
    to6.sin6_family = AF_INET6;
    std::memcpy(to6.sin6_addr.s6_addr, kGroup6, 16);
    to6.sin6_scope_id = ifindex_;
    msg.msg_name = &to6;
    msg.msg_namelen = sizeof to6;
    if (source.len == 16) {
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(sizeof(in6_pktinfo));
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = IPPROTO_IPV6;
      c->cmsg_type = IPV6_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
      in6_pktinfo pi{};
      pi.ipi6_ifindex = ifindex_;
      std::memcpy(pi.ipi6_addr.s6_addr, source.b, 16);
      std::memcpy(CMSG_DATA(c), &pi, sizeof pi);
    }
  }
  ssize_t n;
  do {
    n = ::sendmsg(fd_, &msg, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) fail("sendmsg to " + std::string(family_ == AF_INET ? "224.0.0.18" : "ff02::12") + " from " + (source.len ? source.text() : "any"), errno);
}

bool VrrpSocket::next(std::vector<VrrpPacket>& out, size_t max) {
  for (;;) {
    pollfd p[2] = {{fd_, POLLIN, 0}, {wake_, POLLIN, 0}};
    const int r = ::poll(p, 2, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      fail("poll", errno);
    }
    if (p[1].revents) return false;
    if (p[0].revents & (POLLERR | POLLNVAL)) {
      int err = 0;
      socklen_t l = sizeof err;
      ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &l);
      if (p[0].revents & POLLNVAL) fail("poll", EBADF);
      if (err != 0 && err != EAGAIN) continue;  // a transient error (reported by the next send)
    }
    const size_t before = out.size();
    while (out.size() - before < max) {
      sockaddr_storage from{};
      iovec iov{buf_.data(), buf_.size()};
      alignas(cmsghdr) uint8_t control[256];
      msghdr msg{};
      msg.msg_name = &from;
      msg.msg_namelen = sizeof from;
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      const ssize_t n = ::recvmsg(fd_, &msg, MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        fail("recvmsg", errno);
      }
      VrrpPacket pkt;
      pkt.truncated = (msg.msg_flags & MSG_TRUNC) != 0;
      const size_t got = std::min(size_t(n), buf_.size());
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) {
          int ttl;
          std::memcpy(&ttl, CMSG_DATA(c), sizeof ttl);
          pkt.ttl = ttl;
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT) {
          int hl;
          std::memcpy(&hl, CMSG_DATA(c), sizeof hl);
          pkt.ttl = hl;
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
          in6_pktinfo pi;
          std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
          pkt.destination = addr6(pi.ipi6_addr);
        }
      }
      if (family_ == AF_INET) {
        // An IPv4 raw socket hands over the IP header too: skip it (IHL), take the destination
        // from it. A header the length does not cover leaves an empty payload (counted as short).
        if (from.ss_family == AF_INET) pkt.source = addr4(reinterpret_cast<const sockaddr_in&>(from).sin_addr);
        if (got >= 20) {
          const size_t ihl = size_t(buf_[0] & 0x0f) * 4;
          in_addr dst;
          std::memcpy(&dst, buf_.data() + 16, 4);
          pkt.destination = addr4(dst);
          if (pkt.ttl < 0) pkt.ttl = buf_[8];
          if (ihl >= 20 && ihl <= got) pkt.payload.assign(buf_.begin() + long(ihl), buf_.begin() + long(got));
        }
      } else {
        if (from.ss_family == AF_INET6) pkt.source = addr6(reinterpret_cast<const sockaddr_in6&>(from).sin6_addr);
        pkt.payload.assign(buf_.begin(), buf_.begin() + long(got));
      }
      out.push_back(std::move(pkt));
    }
    if (out.size() > before) return true;
  }
}

}  // namespace lvsd::host
