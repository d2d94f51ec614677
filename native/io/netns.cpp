#include "io/netns.hpp"
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>
#include <cerrno>
#include <cstdlib>
#include <system_error>

namespace lvsd {

namespace {
std::string netns_path(const std::string& netns) {
  return netns.find('/') == std::string::npos ? "/run/netns/" + netns : netns;
}
}  // namespace

void enter_netns(const std::string& netns) {
  const std::string path = netns_path(netns);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "open network namespace " + path);
  const int rc = ::setns(fd, CLONE_NEWNET);
  const int e = errno;
  ::close(fd);
  if (rc != 0) throw std::system_error(e, std::generic_category(), "enter network namespace " + path);
}

NetnsScope::NetnsScope(const std::string& netns) {
  if (netns.empty()) return;
  const std::string path = netns_path(netns);
  const int target = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) throw std::system_error(errno, std::generic_category(), "open network namespace " + path);
  saved_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (saved_ < 0) {
    const int e = errno;
    ::close(target);
    throw std::system_error(e, std::generic_category(), "open /proc/thread-self/ns/net");
  }
  if (::setns(target, CLONE_NEWNET) != 0) {
    const int e = errno;
    ::close(target);
    ::close(saved_);
    saved_ = -1;
    throw std::system_error(e, std::generic_category(), "enter network namespace " + path);
  }
  ::close(target);
}

NetnsScope::~NetnsScope() {
  if (saved_ < 0) return;
  // Going back cannot fail unless the kernel is out of memory; a thread left in the wrong
  // namespace would silently configure the wrong host, so stop instead.
  if (::setns(saved_, CLONE_NEWNET) != 0) std::abort();
  ::close(saved_);
}

}  // namespace lvsd
