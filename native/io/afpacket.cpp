// The AF_PACKET port: for hosts where XDP cannot be used.
//
// Per worker and interface, one TPACKET_V3 receive ring (block-based, mmap'd, blocks retired
// after kRetireMs), bound with ETH_P_ALL, not showing our own transmissions
// (PACKET_IGNORE_OUTGOING), and with several workers joined in a PACKET_FANOUT_HASH group.
// Frames are copied out of the ring into the port's own buffers (headroom kHeadroom) so each
// block goes back to the kernel at once. Transmission is sendmmsg() on the egress interface's
// socket, one call per interface per batch.
//
// The kernel keeps its own copy of everything we see: Pass therefore means "do nothing", and
// the control plane suppresses the kernel's copy of what the dataplane owns (src/host/suppress.ts).
//
// Offloads: frames arrive as the kernel holds them, which on veth or with GRO may be a TCP (or
// UDP) super-frame with a partial checksum. The socket asks for a virtio_net_hdr with every
// frame (PACKET_VNET_HDR): partial checksums are completed from csum_start/csum_offset, and GSO
// frames are cut into gso_size segments here, as the device would have done, before the
// dataplane sees them. The 802.1Q tag the kernel took off (TP_STATUS_VLAN_VALID) is put back.
#include "control/snapshot.hpp"
#include "io/io.hpp"
#include "io/netns.hpp"
#include "packet/bytes.hpp"
#include "packet/checksum.hpp"
// After our headers: <linux/if_ether.h> defines ETH_P_* as macros that packet/bytes.hpp also names.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <system_error>
#include <vector>

namespace lvsd {
namespace {

constexpr uint32_t kHeadroom = 256;
constexpr uint32_t kBlockSize = 1u << 17;  // 128 KiB: a 64 KiB GSO frame fits in one block
constexpr uint32_t kFrameBytes = 2048;     // ring sizing: IoOptions.frames of this size
constexpr uint32_t kRetireMs = 2;          // a partly filled block reaches us after at most this
constexpr uint32_t kPoolBuffers = 1024;    // rx batch (64) + generated (256) + pending segments
constexpr uint32_t kMaxPending = 512;
// Not in Debian 12's headers: PACKET_FANOUT_FLAG_IGNORE_OUTGOING (Linux 6.2, uapi if_packet.h).
constexpr uint16_t kFanoutIgnoreOutgoing = 0x4000;

// struct virtio_net_hdr and its constants, as uapi <linux/virtio_net.h> defines them (that
// header does not compile as C++: it has a member named `class`). AF_PACKET fills it in the
// legacy layout, in the host's byte order (vio_le() in net/packet/af_packet.c).
struct VnetHdr {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
};
static_assert(sizeof(VnetHdr) == 10, "virtio_net_hdr is 10 bytes");
constexpr uint8_t kVnetNeedsCsum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
// VIRTIO_NET_HDR_GSO_NONE, _TCPV4, _TCPV6, _UDP_L4, _ECN
constexpr uint8_t kGsoNone = 0, kGsoTcpV4 = 1, kGsoTcpV6 = 4, kGsoUdpL4 = 5, kGsoEcn = 0x80;

[[noreturn]] void fail(int err, const std::string& step) {
  throw std::system_error(err, std::generic_category(), "AF_PACKET: " + step);
}

// Worker 0 asks the kernel for a unique fanout group id per interface; the other workers of the
// same dataplane (same IoOptions) join it.
std::mutex g_fanout_mu;
std::map<std::pair<const IoOptions*, uint32_t>, uint16_t> g_fanout;

struct Ring {
  int fd = -1;
  uint8_t* map = nullptr;
  size_t map_len = 0;
  uint32_t blocks = 0;
  uint32_t cur = 0;                        // the next block to look at
  tpacket_block_desc* open = nullptr;      // a user-owned block we are reading
  uint32_t left = 0;                       // frames left in it
  uint32_t next_off = 0;                   // offset of the next frame in it
  uint16_t id = 0;                         // the dataplane's interface id
  uint32_t ifindex = 0;
  std::string name;

  tpacket_block_desc* block(uint32_t i) const {
    return reinterpret_cast<tpacket_block_desc*>(map + size_t(i) * kBlockSize);
  }
  bool ready() const {
    return open || (__atomic_load_n(&block(cur)->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER);
  }
};

class PacketPort final : public Port {
 public:
  PacketPort(const IoOptions& o, uint32_t worker);
  ~PacketPort() override { cleanup(); }

  uint32_t receive(Packet* pkts, uint32_t max) override;
  bool allocate(Packet& p) override;
  uint32_t complete(Packet* pkts, uint32_t n) override;
  bool wait(uint32_t ms) override;
  void wake() override;
  PortStats stats() const override;
  const char* kind() const override { return "packet"; }

 private:
  enum class Take { Done, NoBuffer };

  void setup_ring(const IoOptions& o, const IoInterface& ifc, uint32_t worker, uint32_t frames);
  void cleanup();
  uint8_t* buf(uint32_t i) { return pool_.get() + size_t(i) * buf_bytes_; }
  Packet make_packet(uint32_t b, uint32_t len, uint16_t iface);
  void emit(const Packet& p, Packet* pkts, uint32_t& n, uint32_t max);
  Take take(Ring& r, const tpacket3_hdr* h, Packet* pkts, uint32_t& n, uint32_t max);
  bool segment(const uint8_t* f, uint32_t len, const VnetHdr& vh, uint16_t iface, Packet* pkts,
               uint32_t& n, uint32_t max);
  void release(Ring& r);

  const IoOptions* opts_key_ = nullptr;
  uint32_t worker_ = 0;
  std::vector<Ring> rings_;
  int16_t by_id_[kMaxInterfaces];
  int event_fd_ = -1;
  uint32_t buf_bytes_ = 2048;
  std::unique_ptr<uint8_t[]> pool_;
  std::vector<uint32_t> free_;
  std::deque<Packet> pending_;  // segments of a GSO frame that did not fit the batch
  std::vector<uint8_t> scratch_;
  uint32_t rr_ = 0;

  // Transmit batch, reused.
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iovs_;
  std::vector<sockaddr_ll> addrs_;
  std::vector<uint32_t> msg_ring_;

  std::atomic<uint64_t> rx_{0}, tx_{0}, tx_failed_{0}, pass_dropped_{0}, own_dropped_{0};
  mutable std::mutex stats_mu_;
  mutable uint64_t kernel_dropped_ = 0;
};

PacketPort::PacketPort(const IoOptions& o, uint32_t worker) : opts_key_(&o), worker_(worker) {
  std::fill(std::begin(by_id_), std::end(by_id_), int16_t(-1));
  if (o.ifaces.empty()) fail(EINVAL, "no interfaces given");
  const uint32_t frames = std::max<uint32_t>(o.frames, 64);
  try {
    event_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (event_fd_ < 0) fail(errno, "eventfd");
    uint32_t max_mtu = 1500;
    {
      NetnsScope scope(o.netns);
      for (const IoInterface& ifc : o.ifaces) {
        if (ifc.id >= kMaxInterfaces) fail(EINVAL, "interface id " + std::to_string(ifc.id) + " out of range");
        if (by_id_[ifc.id] >= 0) fail(EINVAL, "interface id " + std::to_string(ifc.id) + " given twice");
        setup_ring(o, ifc, worker, frames);
        by_id_[ifc.id] = int16_t(rings_.size() - 1);
        ifreq ifr{};
        ifr.ifr_ifindex = int(ifc.ifindex);
        if (::ioctl(rings_.back().fd, SIOCGIFNAME, &ifr) != 0) fail(errno, "SIOCGIFNAME " + std::to_string(ifc.ifindex));
        if (::ioctl(rings_.back().fd, SIOCGIFMTU, &ifr) != 0) fail(errno, "SIOCGIFMTU " + ifc.name);
        max_mtu = std::max<uint32_t>(max_mtu, uint32_t(ifr.ifr_mtu));
      }
    }
    // Room for the largest frame the interfaces take (Ethernet + a tag), our headroom, and some
    // tailroom; at least 2 KiB.
    buf_bytes_ = std::max<uint32_t>(2048, (kHeadroom + max_mtu + 18 + 128 + 255) & ~255u);
    pool_.reset(new uint8_t[size_t(kPoolBuffers) * buf_bytes_]);
    free_.reserve(kPoolBuffers);
    for (uint32_t i = kPoolBuffers; i-- > 0;) free_.push_back(i);
    scratch_.resize(kBlockSize + 4);
  } catch (...) {
    cleanup();
    throw;
  }
}

void PacketPort::setup_ring(const IoOptions& o, const IoInterface& ifc, uint32_t worker, uint32_t frames) {
  Ring r;
  r.id = ifc.id;
  r.ifindex = ifc.ifindex;
  r.name = ifc.name;
  const std::string on = " on " + ifc.name + " (ifindex " + std::to_string(ifc.ifindex) + ")";
  r.fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);  // protocol 0: nothing arrives before bind
  if (r.fd < 0) fail(errno, "socket" + on);
  rings_.push_back(r);  // cleanup() closes it from here on
  Ring& rr = rings_.back();
  const int v3 = TPACKET_V3, one = 1;
  if (::setsockopt(rr.fd, SOL_PACKET, PACKET_VERSION, &v3, sizeof v3) != 0) fail(errno, "PACKET_VERSION TPACKET_V3" + on);
  if (::setsockopt(rr.fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) != 0) fail(errno, "PACKET_VNET_HDR" + on);
  tpacket_req3 req{};
  req.tp_block_size = kBlockSize;
  req.tp_block_nr = std::max<uint32_t>(8, uint32_t((uint64_t(frames) * kFrameBytes + kBlockSize - 1) / kBlockSize));
  req.tp_frame_size = kFrameBytes;
  req.tp_frame_nr = req.tp_block_nr * (kBlockSize / kFrameBytes);
  req.tp_retire_blk_tov = kRetireMs;
  if (::setsockopt(rr.fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) != 0) fail(errno, "PACKET_RX_RING" + on);
  rr.blocks = req.tp_block_nr;
  rr.map_len = size_t(req.tp_block_nr) * kBlockSize;
  void* m = ::mmap(nullptr, rr.map_len, PROT_READ | PROT_WRITE, MAP_SHARED, rr.fd, 0);
  if (m == MAP_FAILED) fail(errno, "mmap rx ring" + on);
  rr.map = static_cast<uint8_t*>(m);
  if (::setsockopt(rr.fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) != 0)
    fail(errno, "PACKET_IGNORE_OUTGOING" + on);
  const int sndbuf = 4 << 20;
  if (::setsockopt(rr.fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) != 0)
    ::setsockopt(rr.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  sockaddr_ll sa{};
  sa.sll_family = AF_PACKET;
  sa.sll_protocol = htons(ETH_P_ALL);
  sa.sll_ifindex = int(ifc.ifindex);
  if (::bind(rr.fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) fail(errno, "bind" + on);
  if (o.workers > 1) {
    const auto key = std::make_pair(&o, ifc.ifindex);
    std::lock_guard<std::mutex> lock(g_fanout_mu);
    if (worker == 0) {
      const uint32_t arg = uint32_t(PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_UNIQUEID | kFanoutIgnoreOutgoing) << 16;
      if (::setsockopt(rr.fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof arg) != 0) fail(errno, "PACKET_FANOUT (create)" + on);
      uint32_t got = 0;
      socklen_t len = sizeof got;
      if (::getsockopt(rr.fd, SOL_PACKET, PACKET_FANOUT, &got, &len) != 0) fail(errno, "PACKET_FANOUT (read id)" + on);
      g_fanout[key] = uint16_t(got & 0xffff);
    } else {
      const auto it = g_fanout.find(key);
      if (it == g_fanout.end()) fail(ENOENT, "PACKET_FANOUT: worker 0 has no group" + on);
      const uint32_t arg = (uint32_t(PACKET_FANOUT_HASH | kFanoutIgnoreOutgoing) << 16) | it->second;
      if (::setsockopt(rr.fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof arg) != 0) fail(errno, "PACKET_FANOUT (join)" + on);
    }
  }
}

void PacketPort::cleanup() {
  for (Ring& r : rings_) {
    if (r.map) ::munmap(r.map, r.map_len);
    if (r.fd >= 0) ::close(r.fd);
    r.map = nullptr;
    r.fd = -1;
  }
  if (worker_ == 0) {
    std::lock_guard<std::mutex> lock(g_fanout_mu);
    for (const Ring& r : rings_) g_fanout.erase(std::make_pair(opts_key_, r.ifindex));
  }
  rings_.clear();
  if (event_fd_ >= 0) ::close(event_fd_);
  event_fd_ = -1;
}

Packet PacketPort::make_packet(uint32_t b, uint32_t len, uint16_t iface) {
  Packet p;
  p.data = buf(b) + kHeadroom;
  p.len = len;
  p.headroom = kHeadroom;
  p.tailroom = buf_bytes_ - kHeadroom - len;
  p.iface = iface;
  p.verdict = Verdict::Drop;
  p.generated = false;
  p.cookie = b;
  return p;
}

void PacketPort::emit(const Packet& p, Packet* pkts, uint32_t& n, uint32_t max) {
  if (n < max) pkts[n++] = p;
  else pending_.push_back(p);
  rx_.fetch_add(1, std::memory_order_relaxed);
}

void PacketPort::release(Ring& r) {
  __atomic_store_n(&r.open->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
  r.open = nullptr;
  r.cur = r.cur + 1 == r.blocks ? 0 : r.cur + 1;
}

PacketPort::Take PacketPort::take(Ring& r, const tpacket3_hdr* h, Packet* pkts, uint32_t& n, uint32_t max) {
  const auto* base = reinterpret_cast<const uint8_t*>(h);
  sockaddr_ll ll;
  std::memcpy(&ll, base + TPACKET_ALIGN(sizeof(tpacket3_hdr)), sizeof ll);
  // Our own transmissions are not shown (PACKET_IGNORE_OUTGOING); frames for other hosts that
  // reach a promiscuous port are not ours to forward (the kernel drops them too).
  if (ll.sll_pkttype == PACKET_OUTGOING || ll.sll_pkttype == PACKET_OTHERHOST) return Take::Done;
  const uint32_t len = h->tp_snaplen;
  if (len < h->tp_len || len < 14 || h->tp_mac < sizeof(VnetHdr) || r.next_off + h->tp_mac + len > kBlockSize) {
    own_dropped_.fetch_add(1, std::memory_order_relaxed);  // cut short by the ring: cannot forward
    return Take::Done;
  }
  const uint8_t* f = base + h->tp_mac;
  VnetHdr vh;
  std::memcpy(&vh, f - sizeof vh, sizeof vh);
  const bool tagged = h->tp_status & TP_STATUS_VLAN_VALID;
  const uint32_t tag = tagged ? 4 : 0;
  const uint32_t total = len + tag;

  // The frame as it was on the wire: tag back in place (after the two MAC addresses).
  auto copy_to = [&](uint8_t* d) {
    std::memcpy(d, f, 12);
    if (tagged) {
      const uint16_t tpid = (h->tp_status & TP_STATUS_VLAN_TPID_VALID) && h->hv1.tp_vlan_tpid ? h->hv1.tp_vlan_tpid : ETH_P_8021Q;
      store16(d + 12, tpid);
      store16(d + 14, uint16_t(h->hv1.tp_vlan_tci));
    }
    std::memcpy(d + 12 + tag, f + 12, len - 12);
  };

  if (vh.gso_type != kGsoNone) {
    // Segments need buffers; with too few free, wait until this batch is completed.
    const uint32_t need = vh.gso_size ? total / vh.gso_size + 2 : 1;
    if (free_.size() < need || pending_.size() + need > kMaxPending) {
      if (n > 0 || !pending_.empty()) return Take::NoBuffer;
      own_dropped_.fetch_add(1, std::memory_order_relaxed);
      return Take::Done;
    }
    copy_to(scratch_.data());
    if (!segment(scratch_.data(), total, vh, r.id, pkts, n, max)) own_dropped_.fetch_add(1, std::memory_order_relaxed);
    return Take::Done;
  }
  if (kHeadroom + total > buf_bytes_) {
    own_dropped_.fetch_add(1, std::memory_order_relaxed);  // larger than any interface's MTU
    return Take::Done;
  }
  if (free_.empty()) return Take::NoBuffer;
  const uint32_t b = free_.back();
  free_.pop_back();
  uint8_t* d = buf(b) + kHeadroom;
  copy_to(d);
  if (vh.flags & kVnetNeedsCsum) {
    // A partial checksum (the pseudo-header sum is already in the field): finish it as the
    // device would have. csum_start counts from the frame without its tag.
    const uint32_t start = uint32_t(vh.csum_start) + tag;
    const uint32_t at = start + vh.csum_offset;
    if (at + 2 <= total && start < total) {
      const uint16_t c = csum::finish(csum::partial(d + start, total - start));
      store16(d + at, c ? c : 0xffff);
    }
  }
  emit(make_packet(b, total, r.id), pkts, n, max);
  return Take::Done;
}

bool PacketPort::segment(const uint8_t* f, uint32_t len, const VnetHdr& vh, uint16_t iface, Packet* pkts,
                         uint32_t& n, uint32_t max) {
  // Find the headers: Ethernet (one tag at most), IPv4 or IPv6 (+ extension headers), TCP/UDP.
  uint32_t l3 = 14;
  uint16_t type = load16(f + 12);
  if (type == ETH_P_8021Q || type == 0x88a8) {
    if (len < 18) return false;
    type = load16(f + 16);
    l3 = 18;
  }
  uint8_t af, proto;
  uint32_t l4;
  if (type == ETH_P_IPV4 && len >= l3 + 20 && (f[l3] >> 4) == 4) {
    af = AF_V4;
    l4 = l3 + (f[l3] & 0x0f) * 4u;
    proto = f[l3 + 9];
    if (l4 < l3 + 20) return false;
  } else if (type == ETH_P_IPV6 && len >= l3 + 40 && (f[l3] >> 4) == 6) {
    af = AF_V6;
    proto = f[l3 + 6];
    l4 = l3 + 40;
    for (int k = 0; k < 8 && (proto == 0 || proto == 43 || proto == 60); ++k) {
      if (l4 + 8 > len) return false;
      proto = f[l4];
      l4 += (uint32_t(f[l4 + 1]) + 1) * 8;
    }
  } else {
    return false;
  }
  const uint8_t gso = vh.gso_type & ~kGsoEcn;
  const bool tcp = gso == kGsoTcpV4 || gso == kGsoTcpV6;
  if (tcp ? proto != PROTO_TCP : !(gso == kGsoUdpL4 && proto == PROTO_UDP)) return false;
  if ((gso == kGsoTcpV4) != (af == AF_V4) && tcp) return false;
  if (l4 + (tcp ? 20u : 8u) > len) return false;
  const uint32_t hdr_end = l4 + (tcp ? (f[l4 + 12] >> 4) * 4u : 8u);
  const uint32_t mss = vh.gso_size;
  if (mss == 0 || hdr_end > len || (tcp && hdr_end < l4 + 20)) return false;
  const uint32_t payload = len - hdr_end;
  const uint32_t segs = payload ? (payload + mss - 1) / mss : 1;
  if (segs > free_.size() || kHeadroom + hdr_end + std::min(mss, payload) > buf_bytes_) return false;

  const uint16_t id0 = af == AF_V4 ? load16(f + l3 + 4) : 0;
  const uint32_t seq0 = tcp ? load32(f + l4 + 4) : 0;
  const uint8_t* src = f + l3 + (af == AF_V4 ? 12 : 8);
  const uint8_t* dst = f + l3 + (af == AF_V4 ? 16 : 24);
  for (uint32_t i = 0; i < segs; ++i) {
    const uint32_t off = i * mss;
    const uint32_t chunk = std::min(mss, payload - off);
    const uint32_t seg_len = hdr_end + chunk;
    const uint32_t b = free_.back();
    free_.pop_back();
    uint8_t* d = buf(b) + kHeadroom;
    std::memcpy(d, f, hdr_end);
    std::memcpy(d + hdr_end, f + hdr_end + off, chunk);
    if (af == AF_V4) {
      store16(d + l3 + 2, uint16_t(seg_len - l3));
      store16(d + l3 + 4, uint16_t(id0 + i));
      store16(d + l3 + 10, 0);
      store16(d + l3 + 10, csum::finish(csum::partial(d + l3, l4 - l3)));
    } else {
      store16(d + l3 + 4, uint16_t(seg_len - l3 - 40));
    }
    const uint32_t l4_len = seg_len - l4;
    if (tcp) {
      store32(d + l4 + 4, seq0 + off);
      uint8_t fl = d[l4 + 13];
      if (i + 1 < segs) fl &= uint8_t(~0x09);  // FIN and PSH only on the last segment
      if (i > 0) fl &= uint8_t(~0x80);         // CWR only on the first
      d[l4 + 13] = fl;
      store16(d + l4 + 16, 0);
      const uint32_t sum = csum::add(csum::pseudo(af, src, dst, PROTO_TCP, l4_len), csum::partial(d + l4, l4_len));
      store16(d + l4 + 16, csum::finish(sum));
    } else {
      store16(d + l4 + 4, uint16_t(l4_len));
      store16(d + l4 + 6, 0);
      const uint32_t sum = csum::add(csum::pseudo(af, src, dst, PROTO_UDP, l4_len), csum::partial(d + l4, l4_len));
      const uint16_t c = csum::finish(sum);
      store16(d + l4 + 6, c ? c : 0xffff);
    }
    emit(make_packet(b, seg_len, iface), pkts, n, max);
  }
  return true;
}

uint32_t PacketPort::receive(Packet* pkts, uint32_t max) {
  uint32_t n = 0;
  while (n < max && !pending_.empty()) {
    pkts[n++] = pending_.front();
    pending_.pop_front();
  }
  const uint32_t nr = uint32_t(rings_.size());
  for (uint32_t k = 0; k < nr && n < max; ++k) {
    Ring& r = rings_[(rr_ + k) % nr];
    bool stalled = false;
    while (n < max && !stalled) {
      if (!r.open) {
        tpacket_block_desc* b = r.block(r.cur);
        if (!(__atomic_load_n(&b->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) break;
        r.open = b;
        r.left = b->hdr.bh1.num_pkts;
        r.next_off = b->hdr.bh1.offset_to_first_pkt;
      }
      if (r.left == 0 || r.next_off + sizeof(tpacket3_hdr) > kBlockSize) {
        release(r);
        continue;
      }
      const auto* h = reinterpret_cast<const tpacket3_hdr*>(reinterpret_cast<uint8_t*>(r.open) + r.next_off);
      if (take(r, h, pkts, n, max) == Take::NoBuffer) {
        stalled = true;
        break;
      }
      r.next_off = h->tp_next_offset ? r.next_off + h->tp_next_offset : kBlockSize;
      if (--r.left == 0) release(r);
    }
  }
  rr_ = nr ? (rr_ + 1) % nr : 0;
  return n;
}

bool PacketPort::allocate(Packet& p) {
  if (free_.empty()) return false;
  const uint32_t b = free_.back();
  free_.pop_back();
  p = make_packet(b, 0, 0);
  p.tailroom = buf_bytes_ - kHeadroom;
  p.generated = true;
  return true;
}

uint32_t PacketPort::complete(Packet* pkts, uint32_t n) {
  uint32_t lost = 0;
  msgs_.clear();
  iovs_.clear();
  addrs_.clear();
  msg_ring_.clear();
  static const uint8_t kNoOffload[sizeof(VnetHdr)] = {};  // every frame we send is complete
  for (uint32_t i = 0; i < n; ++i) {
    const Packet& p = pkts[i];
    if (p.verdict == Verdict::Tx) {
      const int16_t ri = p.iface < kMaxInterfaces ? by_id_[p.iface] : int16_t(-1);
      if (ri < 0 || p.len < 14) {
        tx_failed_.fetch_add(1, std::memory_order_relaxed);
        ++lost;
        continue;
      }
      const Ring& r = rings_[size_t(ri)];
      sockaddr_ll a{};
      a.sll_family = AF_PACKET;
      std::memcpy(&a.sll_protocol, p.data + 12, 2);
      a.sll_ifindex = int(r.ifindex);
      a.sll_halen = ETH_ALEN;
      std::memcpy(a.sll_addr, p.data, ETH_ALEN);
      addrs_.push_back(a);
      iovs_.push_back(iovec{const_cast<uint8_t*>(kNoOffload), sizeof kNoOffload});
      iovs_.push_back(iovec{p.data, p.len});
      msg_ring_.push_back(uint32_t(ri));
    } else if (p.verdict == Verdict::Pass && p.generated) {
      // A frame we built cannot be handed to the kernel's receive path from here.
      pass_dropped_.fetch_add(1, std::memory_order_relaxed);
      ++lost;
    }
  }
  // Pointers into the vectors are taken once they stop growing.
  msgs_.resize(addrs_.size());
  for (size_t k = 0; k < msgs_.size(); ++k) {
    msghdr& m = msgs_[k].msg_hdr;
    m = msghdr{};
    m.msg_name = &addrs_[k];
    m.msg_namelen = sizeof(sockaddr_ll);
    m.msg_iov = &iovs_[2 * k];
    m.msg_iovlen = 2;
    msgs_[k].msg_len = 0;
  }
  // One sendmmsg per run of frames for the same interface.
  size_t k = 0;
  while (k < msgs_.size()) {
    size_t end = k + 1;
    while (end < msgs_.size() && msg_ring_[end] == msg_ring_[k]) ++end;
    const int fd = rings_[msg_ring_[k]].fd;
    while (k < end) {
      const int r = ::sendmmsg(fd, &msgs_[k], unsigned(end - k), MSG_DONTWAIT);
      if (r > 0) {
        tx_.fetch_add(uint64_t(r), std::memory_order_relaxed);
        k += size_t(r);
        continue;
      }
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
        // The device's queue is full: the rest of this run is lost.
        tx_failed_.fetch_add(end - k, std::memory_order_relaxed);
        lost += uint32_t(end - k);
        k = end;
        break;
      }
      // This frame was refused (too long, device down): skip it, send the others.
      tx_failed_.fetch_add(1, std::memory_order_relaxed);
      ++lost;
      ++k;
    }
  }
  for (uint32_t i = 0; i < n; ++i) free_.push_back(pkts[i].cookie);
  return lost;
}

bool PacketPort::wait(uint32_t ms) {
  if (!pending_.empty()) return true;
  for (const Ring& r : rings_)
    if (r.ready()) return true;
  pollfd p[kMaxInterfaces + 1];
  const uint32_t nr = uint32_t(std::min<size_t>(rings_.size(), kMaxInterfaces));
  for (uint32_t i = 0; i < nr; ++i) p[i] = pollfd{rings_[i].fd, POLLIN, 0};
  p[nr] = pollfd{event_fd_, POLLIN, 0};
  const int r = ::poll(p, nr + 1, int(ms));
  if (r > 0 && p[nr].revents) {
    uint64_t v;
    while (::read(event_fd_, &v, sizeof v) > 0) {
    }
  }
  return true;
}

void PacketPort::wake() {
  const uint64_t one = 1;
  ssize_t r;
  do {
    r = ::write(event_fd_, &one, sizeof one);
  } while (r < 0 && errno == EINTR);
}

PortStats PacketPort::stats() const {
  PortStats s;
  s.rx_packets = rx_.load(std::memory_order_relaxed);
  s.tx_packets = tx_.load(std::memory_order_relaxed);
  s.tx_failed = tx_failed_.load(std::memory_order_relaxed);
  s.pass_dropped = pass_dropped_.load(std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(stats_mu_);
  for (const Ring& r : rings_) {
    // Reading PACKET_STATISTICS resets the kernel's counters: keep the running total here.
    tpacket_stats_v3 st{};
    socklen_t len = sizeof st;
    if (r.fd >= 0 && ::getsockopt(r.fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0) kernel_dropped_ += st.tp_drops;
  }
  // Frames the ring cut short or that no buffer could hold never reached the dataplane either.
  s.kernel_dropped = kernel_dropped_ + own_dropped_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace

std::unique_ptr<Port> make_packet_port(const IoOptions& opts, uint32_t worker) {
  return std::make_unique<PacketPort>(opts, worker);
}

}  // namespace lvsd
