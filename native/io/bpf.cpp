#include "io/bpf.hpp"
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <stdexcept>

namespace lvsd {

void Fd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

namespace bpf {
namespace {

long sys_bpf(int cmd, bpf_attr* attr, unsigned size) { return ::syscall(__NR_bpf, cmd, attr, size); }

uint64_t ptr(const void* p) { return uint64_t(reinterpret_cast<uintptr_t>(p)); }

[[noreturn]] void fail(const char* code, const std::string& what) {
  const int e = errno;
  throw IoError(code, e, what);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The assembler

Asm::Label Asm::label() {
  labels_.push_back(-1);
  return Label(labels_.size() - 1);
}

void Asm::bind(Label l) { labels_.at(l) = int64_t(code_.size()); }

void Asm::ld_map(Reg d, int map_fd) {
  emit(insn(BPF_LD | BPF_DW | BPF_IMM, d, BPF_PSEUDO_MAP_FD, 0, map_fd));
  emit(insn(0, 0, 0, 0, 0));
}

void Asm::jump(uint8_t code, Reg d, Reg s, int32_t imm, Label l) {
  fixups_.emplace_back(code_.size(), l);
  emit(insn(code, d, s, 0, imm));
}

void Asm::ja(Label l) { jump(BPF_JMP | BPF_JA, R0, R0, 0, l); }
void Asm::jcc(uint8_t op, Reg d, int32_t imm, Label l) { jump(BPF_JMP | op | BPF_K, d, R0, imm, l); }
void Asm::jcc32(uint8_t op, Reg d, int32_t imm, Label l) { jump(BPF_JMP32 | op | BPF_K, d, R0, imm, l); }
void Asm::jccr(uint8_t op, Reg d, Reg s, Label l) { jump(BPF_JMP | op | BPF_X, d, s, 0, l); }

std::vector<bpf_insn> Asm::finish() const {
  std::vector<bpf_insn> out = code_;
  for (const auto& [at, l] : fixups_) {
    const int64_t target = labels_.at(l);
    if (target < 0) throw std::logic_error("bpf: jump to an unbound label");
    const int64_t off = target - int64_t(at) - 1;
    if (off < INT16_MIN || off > INT16_MAX) throw std::logic_error("bpf: jump out of range");
    out[at].off = int16_t(off);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Maps and programs

Fd map_create(bpf_map_type type, uint32_t key_size, uint32_t value_size, uint32_t max_entries, uint32_t flags,
              const char* name) {
  bpf_attr a{};
  a.map_type = type;
  a.key_size = key_size;
  a.value_size = value_size;
  a.max_entries = max_entries;
  a.map_flags = flags;
  std::strncpy(a.map_name, name, sizeof a.map_name - 1);
  const long fd = sys_bpf(BPF_MAP_CREATE, &a, sizeof a);
  if (fd < 0) fail("LVS_BPF", std::string("bpf(BPF_MAP_CREATE) for map ") + name);
  return Fd(int(fd));
}

void map_update(int fd, const void* key, const void* value, uint64_t flags, const char* what) {
  bpf_attr a{};
  a.map_fd = uint32_t(fd);
  a.key = ptr(key);
  a.value = ptr(value);
  a.flags = flags;
  if (sys_bpf(BPF_MAP_UPDATE_ELEM, &a, sizeof a) != 0)
    // Full: E2BIG from hash maps, ENOSPC from the LPM trie.
    fail(errno == E2BIG || errno == ENOSPC ? "LVS_CAPACITY" : "LVS_BPF", std::string("bpf(BPF_MAP_UPDATE_ELEM) on ") + what);
}

bool map_delete(int fd, const void* key) {
  bpf_attr a{};
  a.map_fd = uint32_t(fd);
  a.key = ptr(key);
  if (sys_bpf(BPF_MAP_DELETE_ELEM, &a, sizeof a) == 0) return true;
  if (errno == ENOENT) return false;
  fail("LVS_BPF", "bpf(BPF_MAP_DELETE_ELEM)");
}

bool map_lookup(int fd, const void* key, void* value) {
  bpf_attr a{};
  a.map_fd = uint32_t(fd);
  a.key = ptr(key);
  a.value = ptr(value);
  if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &a, sizeof a) == 0) return true;
  if (errno == ENOENT) return false;
  fail("LVS_BPF", "bpf(BPF_MAP_LOOKUP_ELEM)");
}

uint32_t possible_cpus() {
  // "0-3" or "0,2-5": the highest CPU number + 1 is what per-CPU maps are sized by.
  std::ifstream f("/sys/devices/system/cpu/possible");
  std::string s;
  std::getline(f, s);
  uint32_t highest = 0;
  bool any = false;
  uint32_t v = 0;
  bool digits = false;
  for (char c : s + ",") {
    if (c >= '0' && c <= '9') {
      v = v * 10 + uint32_t(c - '0');
      digits = true;
    } else {
      if (digits) {
        highest = std::max(highest, v);
        any = true;
      }
      v = 0;
      digits = false;
    }
  }
  if (!any) throw IoError("LVS_BPF", EINVAL, "cannot read /sys/devices/system/cpu/possible");
  return highest + 1;
}

Fd prog_load_xdp(const std::vector<bpf_insn>& code, const char* name) {
  static const char license[] = "GPL";
  bpf_attr a{};
  a.prog_type = BPF_PROG_TYPE_XDP;
  a.expected_attach_type = BPF_XDP;
  a.insns = ptr(code.data());
  a.insn_cnt = uint32_t(code.size());
  a.license = ptr(license);
  std::strncpy(a.prog_name, name, sizeof a.prog_name - 1);
  long fd = sys_bpf(BPF_PROG_LOAD, &a, sizeof a);
  if (fd >= 0) return Fd(int(fd));
  const int first = errno;
  // Load again with the verifier's log to say why.
  std::vector<char> log(1 << 22);
  a.log_level = 1;
  a.log_buf = ptr(log.data());
  a.log_size = uint32_t(log.size());
  fd = sys_bpf(BPF_PROG_LOAD, &a, sizeof a);
  if (fd >= 0) return Fd(int(fd));  // refused once, accepted now: keep it
  std::string text(log.data(), strnlen(log.data(), log.size()));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.size() > 8000) text = "..." + text.substr(text.size() - 8000);
  throw IoError("LVS_BPF", first,
                std::string("bpf(BPF_PROG_LOAD) of ") + name + " (" + std::to_string(code.size()) +
                    " instructions)" + (text.empty() ? "" : "; verifier log:\n" + text + "\n"));
}

ProgInfo prog_info(int prog_fd) {
  bpf_prog_info info{};
  bpf_attr a{};
  a.info.bpf_fd = uint32_t(prog_fd);
  a.info.info_len = sizeof info;
  a.info.info = ptr(&info);
  if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a, sizeof a) != 0) fail("LVS_BPF", "bpf(BPF_OBJ_GET_INFO_BY_FD)");
  ProgInfo p;
  p.id = info.id;
  p.name.assign(info.name, strnlen(info.name, sizeof info.name));
  return p;
}

Fd prog_by_id(uint32_t id) {
  bpf_attr a{};
  a.prog_id = id;
  const long fd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &a, sizeof a);
  if (fd < 0) fail("LVS_BPF", "bpf(BPF_PROG_GET_FD_BY_ID) for program " + std::to_string(id));
  return Fd(int(fd));
}

Fd xdp_link_create(int prog_fd, uint32_t ifindex, uint32_t flags) {
  bpf_attr a{};
  a.link_create.prog_fd = uint32_t(prog_fd);
  a.link_create.target_ifindex = ifindex;
  a.link_create.attach_type = BPF_XDP;
  a.link_create.flags = flags;
  const long fd = sys_bpf(BPF_LINK_CREATE, &a, sizeof a);
  if (fd < 0) {
    const char* mode = flags & XDP_FLAGS_DRV_MODE ? "native" : flags & XDP_FLAGS_SKB_MODE ? "generic" : "default";
    fail(errno == ENODEV ? "LVS_NO_SUCH_DEVICE" : "LVS_BPF",
         std::string("bpf(BPF_LINK_CREATE) XDP ") + mode + " on ifindex " + std::to_string(ifindex));
  }
  return Fd(int(fd));
}

TestRun xdp_test_run(int prog_fd, const uint8_t* frame, uint32_t len, uint32_t ifindex, uint32_t queue) {
  xdp_md ctx{};
  ctx.data = 0;
  ctx.data_end = len;
  ctx.ingress_ifindex = ifindex;
  ctx.rx_queue_index = queue;
  TestRun r;
  r.data.resize(size_t(len) + 512);
  bpf_attr a{};
  a.test.prog_fd = uint32_t(prog_fd);
  a.test.data_in = ptr(frame);
  a.test.data_size_in = len;
  a.test.data_out = ptr(r.data.data());
  a.test.data_size_out = uint32_t(r.data.size());
  a.test.ctx_in = ptr(&ctx);
  a.test.ctx_size_in = sizeof ctx;
  a.test.repeat = 1;
  if (sys_bpf(BPF_PROG_TEST_RUN, &a, sizeof a) != 0)
    fail(errno == ENODEV ? "LVS_NO_SUCH_DEVICE" : "LVS_BPF", "bpf(BPF_PROG_TEST_RUN)");
  r.action = a.test.retval;
  r.data.resize(std::min<size_t>(a.test.data_size_out, r.data.size()));
  return r;
}

// ---------------------------------------------------------------------------------------------
// rtnetlink

namespace {

class Netlink {
 public:
  Netlink() {
    fd_.reset(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (!fd_) fail("LVS_NETLINK", "socket(AF_NETLINK, NETLINK_ROUTE)");
    const int one = 1;
    // Best effort: the kernel's own words for a refusal, without echoing our request.
    ::setsockopt(fd_.get(), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
    ::setsockopt(fd_.get(), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) fail("LVS_NETLINK", "bind(AF_NETLINK)");
  }

  // Send one request; call on_msg for each reply message until the ack (NLMSG_ERROR) or, for
  // requests without NLM_F_ACK, the first reply. Throws IoError on a netlink error.
  template <typename F>
  void request(nlmsghdr* req, const std::string& what, F&& on_msg) {
    req->nlmsg_seq = ++seq_;
    sockaddr_nl to{};
    to.nl_family = AF_NETLINK;
    if (::sendto(fd_.get(), req, req->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0)
      fail("LVS_NETLINK", what + ": sendto(netlink)");
    const bool wants_ack = req->nlmsg_flags & NLM_F_ACK;
    std::vector<char> buf(1 << 16);
    for (;;) {
      const ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        fail("LVS_NETLINK", what + ": recv(netlink)");
      }
      int left = int(n);
      for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
        if (h->nlmsg_seq != seq_) continue;
        if (h->nlmsg_type == NLMSG_ERROR) {
          const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
          if (e->error == 0) return;
          errno = -e->error;
          std::string msg = what;
          const std::string ext = ext_ack(h);
          if (!ext.empty()) msg += " (" + ext + ")";
          fail(errno == ENODEV ? "LVS_NO_SUCH_DEVICE" : "LVS_NETLINK", msg);
        }
        if (h->nlmsg_type == NLMSG_DONE) return;
        on_msg(h);
        if (!wants_ack) return;
      }
    }
  }

 private:
  static std::string ext_ack(const nlmsghdr* h) {
    if (!(h->nlmsg_flags & NLM_F_ACK_TLVS)) return {};
    const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
    size_t off = NLMSG_HDRLEN + sizeof(nlmsgerr);
    if (!(h->nlmsg_flags & NLM_F_CAPPED)) off += e->msg.nlmsg_len - NLMSG_HDRLEN;
    const char* base = reinterpret_cast<const char*>(h);
    while (off + sizeof(nlattr) <= h->nlmsg_len) {
      const auto* a = reinterpret_cast<const nlattr*>(base + off);
      if (a->nla_len < sizeof(nlattr) || off + a->nla_len > h->nlmsg_len) break;
      if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG)
        return std::string(base + off + NLA_HDRLEN, strnlen(base + off + NLA_HDRLEN, a->nla_len - NLA_HDRLEN));
      off += NLA_ALIGN(a->nla_len);
    }
    return {};
  }

  Fd fd_;
  uint32_t seq_ = 0;
};

// A request buffer: nlmsghdr, ifinfomsg, then attributes.
struct LinkRequest {
  alignas(NLMSG_ALIGNTO) char buf[256] = {};
  nlmsghdr& nh = *reinterpret_cast<nlmsghdr*>(buf);
  ifinfomsg& ifi = *reinterpret_cast<ifinfomsg*>(buf + NLMSG_HDRLEN);
};

nlattr* put_attr(nlmsghdr* nh, uint16_t type, const void* data, uint16_t len) {
  auto* a = reinterpret_cast<nlattr*>(reinterpret_cast<char*>(nh) + NLMSG_ALIGN(nh->nlmsg_len));
  a->nla_type = type;
  a->nla_len = uint16_t(NLA_HDRLEN + len);
  if (len) std::memcpy(reinterpret_cast<char*>(a) + NLA_HDRLEN, data, len);
  nh->nlmsg_len = NLMSG_ALIGN(nh->nlmsg_len) + NLA_ALIGN(a->nla_len);
  return a;
}

template <typename F>
void for_each_attr(const char* data, size_t len, F&& f) {
  size_t off = 0;
  while (off + NLA_HDRLEN <= len) {
    const auto* a = reinterpret_cast<const nlattr*>(data + off);
    if (a->nla_len < NLA_HDRLEN || off + a->nla_len > len) break;
    f(uint16_t(a->nla_type & NLA_TYPE_MASK), data + off + NLA_HDRLEN, size_t(a->nla_len - NLA_HDRLEN));
    off += NLA_ALIGN(a->nla_len);
  }
}

uint32_t get_u32(const char* p, size_t len) {
  uint32_t v = 0;
  if (len >= 4) std::memcpy(&v, p, 4);
  return v;
}

struct LinkFacts {
  std::string name;
  uint32_t rx_queues = 0, tx_queues = 0;
  XdpState xdp;
};

LinkFacts get_link(uint32_t ifindex) {
  LinkRequest req;
  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg));
  req.nh.nlmsg_type = RTM_GETLINK;
  req.nh.nlmsg_flags = NLM_F_REQUEST;
  req.ifi.ifi_family = AF_UNSPEC;
  req.ifi.ifi_index = int(ifindex);
  const uint32_t mask = RTEXT_FILTER_SKIP_STATS;
  put_attr(&req.nh, IFLA_EXT_MASK, &mask, 4);
  LinkFacts facts;
  Netlink nl;
  nl.request(&req.nh, "RTM_GETLINK for ifindex " + std::to_string(ifindex), [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWLINK) return;
    const char* attrs = static_cast<const char*>(NLMSG_DATA(h)) + NLMSG_ALIGN(sizeof(ifinfomsg));
    const size_t len = h->nlmsg_len - NLMSG_LENGTH(NLMSG_ALIGN(sizeof(ifinfomsg)));
    for_each_attr(attrs, len, [&](uint16_t type, const char* p, size_t n) {
      if (type == IFLA_IFNAME) facts.name.assign(p, strnlen(p, n));
      else if (type == IFLA_NUM_RX_QUEUES) facts.rx_queues = get_u32(p, n);
      else if (type == IFLA_NUM_TX_QUEUES) facts.tx_queues = get_u32(p, n);
      else if (type == IFLA_XDP) {
        for_each_attr(p, n, [&](uint16_t t, const char* q, size_t m) {
          if (t == IFLA_XDP_ATTACHED && m >= 1) facts.xdp.attached = uint8_t(*q);
          else if (t == IFLA_XDP_PROG_ID) facts.xdp.prog_id = get_u32(q, m);
          // With programs in several modes there is no IFLA_XDP_PROG_ID: take any of them.
          else if ((t == IFLA_XDP_DRV_PROG_ID || t == IFLA_XDP_SKB_PROG_ID || t == IFLA_XDP_HW_PROG_ID) &&
                   !facts.xdp.prog_id)
            facts.xdp.prog_id = get_u32(q, m);
        });
      }
    });
  });
  return facts;
}

}  // namespace

XdpState xdp_query(uint32_t ifindex) { return get_link(ifindex).xdp; }

void require_link(uint32_t ifindex) { get_link(ifindex); }

void xdp_set(uint32_t ifindex, int prog_fd, uint32_t flags, int expected_fd) {
  LinkRequest req;
  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg));
  req.nh.nlmsg_type = RTM_SETLINK;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  req.ifi.ifi_family = AF_UNSPEC;
  req.ifi.ifi_index = int(ifindex);
  nlattr* nest = put_attr(&req.nh, IFLA_XDP | NLA_F_NESTED, nullptr, 0);
  const int32_t fd = prog_fd;
  put_attr(&req.nh, IFLA_XDP_FD, &fd, 4);
  if (expected_fd >= 0) {
    flags |= XDP_FLAGS_REPLACE;
    const int32_t ex = expected_fd;
    put_attr(&req.nh, IFLA_XDP_EXPECTED_FD, &ex, 4);
  }
  put_attr(&req.nh, IFLA_XDP_FLAGS, &flags, 4);
  nest->nla_len = uint16_t(reinterpret_cast<char*>(&req.nh) + req.nh.nlmsg_len - reinterpret_cast<char*>(nest));
  Netlink nl;
  nl.request(&req.nh,
             std::string("RTM_SETLINK IFLA_XDP ") + (prog_fd < 0 ? "detach" : "attach") + " on ifindex " +
                 std::to_string(ifindex),
             [](const nlmsghdr*) {});
}

Queues queues(uint32_t ifindex) {
  const LinkFacts facts = get_link(ifindex);
  Queues q;
  q.rx = facts.rx_queues ? facts.rx_queues : 1;
  q.tx = facts.tx_queues ? facts.tx_queues : 1;
  // The driver's current channel counts (veth reports real_num_rx_queues here, which can be
  // less than the queues it allocated); AF_XDP binds only below them.
  Fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (s && !facts.name.empty() && facts.name.size() < IFNAMSIZ) {
    ethtool_channels ch{};
    ch.cmd = ETHTOOL_GCHANNELS;
    ifreq ifr{};
    std::memcpy(ifr.ifr_name, facts.name.c_str(), facts.name.size());
    ifr.ifr_data = reinterpret_cast<char*>(&ch);
    if (::ioctl(s.get(), SIOCETHTOOL, &ifr) == 0) {
      if (ch.rx_count + ch.combined_count > 0) q.rx = std::min(q.rx, ch.rx_count + ch.combined_count);
      if (ch.tx_count + ch.combined_count > 0) q.tx = std::min(q.tx, ch.tx_count + ch.combined_count);
    }
  }
  return q;
}

}  // namespace bpf
}  // namespace lvsd
