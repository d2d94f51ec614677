// Run a stretch of code inside another network namespace. Sockets (netlink, AF_XDP,
// AF_PACKET), interface indexes, BPF attachments and /proc/sys/net belong to the namespace of
// the thread that made or opened them, so a director can live in a namespace while its Node
// process (and every other thread) stays where it is.
#pragma once
#include <string>

namespace lvsd {

// Move the calling thread into a network namespace for good (lvsd --netns: the daemon's own
// sockets, health checks among them, then live there). Throws std::system_error.
void enter_netns(const std::string& netns);

class NetnsScope {
 public:
  // "" stays put; a name is /run/netns/NAME (ip netns); anything with a '/' is a path.
  explicit NetnsScope(const std::string& netns);
  ~NetnsScope();
  NetnsScope(const NetnsScope&) = delete;
  NetnsScope& operator=(const NetnsScope&) = delete;

 private:
  int saved_ = -1;
};

}  // namespace lvsd
