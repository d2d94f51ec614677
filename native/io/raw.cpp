#include "io/raw.hpp"
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <sys/socket.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include "io/netlink.hpp"

namespace lvsd::host {
namespace {

// A descriptor closed on every path.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::string sysctl_path(const std::string& key) {
  // Only relative paths below /proc/sys, without "." or ".." components.
  bool ok = !key.empty() && key.front() != '/' && key.back() != '/' && key.find('\0') == std::string::npos;
  size_t start = 0;
  while (ok && start <= key.size()) {
    const size_t end = std::min(key.find('/', start), key.size());
    const std::string part = key.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") ok = false;
    start = end + 1;
  }
  if (!ok) throw HostError("LVS_HOST", EINVAL, "sysctl: \"" + key + "\" is not a key below /proc/sys");
  return "/proc/sys/" + key;
}

std::string read_all(int fd, const std::string& path) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      throw HostError("LVS_HOST", e, "sysctl: read " + path + ": " + std::strerror(e));
    }
    if (n == 0) break;
    out.append(buf, size_t(n));
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

Fd open_key(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    throw HostError("LVS_HOST", e, "sysctl: open " + path + ": " + std::strerror(e));
  }
  return Fd{fd};
}

}  // namespace

void send_frame(uint32_t ifindex, const uint8_t* frame, size_t len) {
  if (len < 14) throw HostError("LVS_HOST", EINVAL, "send frame: " + std::to_string(len) + " bytes is shorter than an Ethernet header");
  // Protocol 0: this socket receives nothing, it only sends.
  Fd s{::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0)};
  if (s.fd < 0) {
    const int e = errno;
    throw HostError("LVS_HOST", e, std::string("send frame: socket(AF_PACKET): ") + std::strerror(e));
  }
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = int(ifindex);
  std::memcpy(&to.sll_protocol, frame + 12, 2);  // the frame's own ethertype, network order
  to.sll_halen = ETH_ALEN;
  std::memcpy(to.sll_addr, frame, ETH_ALEN);
  ssize_t n;
  do {
    n = ::sendto(s.fd, frame, len, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    const int e = errno;
    // packet_snd answers ENXIO for an ifindex that does not exist.
    const char* code = e == ENXIO || e == ENODEV ? "LVS_NO_SUCH_DEVICE" : "LVS_HOST";
    throw HostError(code, e, "send frame on ifindex " + std::to_string(ifindex) + ": " + std::strerror(e));
  }
}

std::string sysctl_read(const std::string& key) {
  const std::string path = sysctl_path(key);
  Fd f = open_key(path, O_RDONLY);
  return read_all(f.fd, path);
}

std::string sysctl_write(const std::string& key, const std::string& value) {
  const std::string path = sysctl_path(key);
  Fd f = open_key(path, O_RDWR);
  const std::string before = read_all(f.fd, path);
  const std::string text = value + "\n";
  ssize_t n;
  do {
    n = ::pwrite(f.fd, text.data(), text.size(), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    const int e = errno;
    throw HostError("LVS_HOST", e, "sysctl: write \"" + value + "\" to " + path + ": " + std::strerror(e));
  }
  return before;
}

}  // namespace lvsd::host
