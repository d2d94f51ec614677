// Raw frames and /proc/sys: the two host operations that are not netlink. Both act in the
// network namespace of the calling thread (wrap them in a NetnsScope for another one).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace lvsd::host {

// Transmit one complete Ethernet frame on `ifindex` as it is (AF_PACKET, SOCK_RAW). Throws
// HostError: LVS_NO_SUCH_DEVICE for an unknown ifindex, LVS_HOST otherwise.
void send_frame(uint32_t ifindex, const uint8_t* frame, size_t len);

// Read /proc/sys/<key> ("net/ipv4/ip_forward"), without the trailing newline.
std::string sysctl_read(const std::string& key);
// Write `value` to /proc/sys/<key>; returns the value it had before.
std::string sysctl_write(const std::string& key, const std::string& value);

}  // namespace lvsd::host
