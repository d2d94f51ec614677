// A small BPF toolkit without libbpf: instruction encoding with labels, maps, program load
// (with the verifier's log when it refuses), XDP attachment through bpf_link or netlink
// (IFLA_XDP), program info, test runs, and the interface facts AF_XDP needs (queue counts).
//
// Everything here acts in the network namespace of the calling thread: callers that work in
// another namespace wrap the calls in a NetnsScope (io/netns.hpp).
#pragma once
#include <linux/bpf.h>
#include <cstdint>
#include <string>
#include <system_error>
#include <vector>

namespace lvsd {

// A failure with a stable LVS_* code for the binding (LVS_BPF, LVS_NETLINK, LVS_NETNS,
// LVS_NO_SUCH_DEVICE, LVS_IO_INIT, LVS_CAPACITY), errno, and what was being done.
class IoError : public std::system_error {
 public:
  IoError(const char* code, int err, const std::string& what)
      : std::system_error(err, std::generic_category(), what), code_(code), detail_(what) {}
  const char* lvs_code() const noexcept { return code_; }
  // What was being done, without the errno text what() appends.
  const std::string& detail() const noexcept { return detail_; }
  // Another std::system_error (NetnsScope's, for one) with a code.
  static IoError wrap(const char* code, const std::system_error& e) {
    std::string w = e.what();
    const std::string tail = ": " + e.code().message();
    if (w.size() > tail.size() && w.compare(w.size() - tail.size(), tail.size(), tail) == 0) w.resize(w.size() - tail.size());
    return IoError(code, e.code().value(), w);
  }

 private:
  const char* code_;
  std::string detail_;
};

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = o.release();
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() {
    const int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

namespace bpf {

enum Reg : uint8_t { R0 = 0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 };
constexpr Reg FP = R10;

// Instruction encoding (linux/bpf.h, Documentation/bpf/standardization/instruction-set.rst).
constexpr bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst & 0xf;
  i.src_reg = src & 0xf;
  i.off = off;
  i.imm = imm;
  return i;
}

// An assembler: instructions plus forward/backward jumps to labels, resolved by finish().
class Asm {
 public:
  using Label = uint32_t;

  Label label();
  void bind(Label l);
  size_t size() const { return code_.size(); }

  // 64-bit ALU.
  void mov(Reg d, int32_t imm) { emit(insn(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, imm)); }
  void movr(Reg d, Reg s) { emit(insn(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)); }
  void alu(uint8_t op, Reg d, int32_t imm) { emit(insn(BPF_ALU64 | op | BPF_K, d, 0, 0, imm)); }
  void alur(uint8_t op, Reg d, Reg s) { emit(insn(BPF_ALU64 | op | BPF_X, d, s, 0, 0)); }
  void add(Reg d, int32_t imm) { alu(BPF_ADD, d, imm); }
  void addr(Reg d, Reg s) { alur(BPF_ADD, d, s); }

  // Memory: size is BPF_B, BPF_H, BPF_W or BPF_DW.
  void ldx(uint8_t size, Reg d, Reg s, int16_t off) { emit(insn(BPF_LDX | BPF_MEM | size, d, s, off, 0)); }
  void stx(uint8_t size, Reg d, int16_t off, Reg s) { emit(insn(BPF_STX | BPF_MEM | size, d, s, off, 0)); }
  void st(uint8_t size, Reg d, int16_t off, int32_t imm) { emit(insn(BPF_ST | BPF_MEM | size, d, 0, off, imm)); }
  // A map's fd as a 64-bit immediate (two instructions, BPF_PSEUDO_MAP_FD).
  void ld_map(Reg d, int map_fd);

  // Jumps. op is BPF_JEQ, BPF_JNE, BPF_JGT, BPF_JGE, BPF_JLT, BPF_JLE, BPF_JSET, ...
  void ja(Label l);
  void jcc(uint8_t op, Reg d, int32_t imm, Label l);    // 64-bit compare, imm sign-extended
  void jcc32(uint8_t op, Reg d, int32_t imm, Label l);  // 32-bit compare (BPF_JMP32)
  void jccr(uint8_t op, Reg d, Reg s, Label l);         // 64-bit register compare

  void call(int32_t helper) { emit(insn(BPF_JMP | BPF_CALL, 0, 0, 0, helper)); }
  void exit() { emit(insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)); }
  void emit(const bpf_insn& i) { code_.push_back(i); }

  // The program with every jump resolved (throws std::logic_error for an unbound label or a
  // jump out of range: bugs in a generator, not in input).
  std::vector<bpf_insn> finish() const;

 private:
  void jump(uint8_t code, Reg d, Reg s, int32_t imm, Label l);
  std::vector<bpf_insn> code_;
  std::vector<int64_t> labels_;                        // instruction index or -1
  std::vector<std::pair<size_t, Label>> fixups_;       // jump instruction -> label
};

// Maps. Failures throw IoError (LVS_BPF; LVS_CAPACITY when a map is full).
Fd map_create(bpf_map_type type, uint32_t key_size, uint32_t value_size, uint32_t max_entries, uint32_t flags,
              const char* name);
void map_update(int fd, const void* key, const void* value, uint64_t flags, const char* what);
bool map_delete(int fd, const void* key);                  // false: there was no such key
bool map_lookup(int fd, const void* key, void* value);     // false: no such key
// Per-CPU maps hold one value per possible CPU (rounded up to 8 bytes each).
uint32_t possible_cpus();

// Load an XDP program. On refusal the IoError (LVS_BPF) carries the verifier's log.
Fd prog_load_xdp(const std::vector<bpf_insn>& code, const char* name);

struct ProgInfo {
  uint32_t id = 0;
  std::string name;
};
ProgInfo prog_info(int prog_fd);
Fd prog_by_id(uint32_t id);  // LVS_BPF when it is gone

// XDP attached as a bpf_link (goes away when the last fd closes). flags: XDP_FLAGS_DRV_MODE or
// XDP_FLAGS_SKB_MODE.
Fd xdp_link_create(int prog_fd, uint32_t ifindex, uint32_t flags);

// Run an XDP program once on a frame (BPF_PROG_TEST_RUN), as received on ifindex/queue (0: no
// device). Returns the action and the frame as the program left it.
struct TestRun {
  uint32_t action = 0;
  std::vector<uint8_t> data;
};
TestRun xdp_test_run(int prog_fd, const uint8_t* frame, uint32_t len, uint32_t ifindex, uint32_t queue);

// The XDP program on an interface, from netlink (RTM_GETLINK, IFLA_XDP).
struct XdpState {
  uint32_t prog_id = 0;  // 0: none
  uint8_t attached = 0;  // XDP_ATTACHED_NONE/DRV/SKB/HW/MULTI
};
XdpState xdp_query(uint32_t ifindex);
// Attach (prog_fd >= 0) or detach (prog_fd < 0) through netlink: persistent, outlives the
// process. expected_fd >= 0 adds XDP_FLAGS_REPLACE (atomic swap of that program).
void xdp_set(uint32_t ifindex, int prog_fd, uint32_t flags, int expected_fd = -1);

// The queues in use on an interface: ETHTOOL_GCHANNELS (rx or tx, plus combined) where the
// driver reports it, else IFLA_NUM_RX_QUEUES / IFLA_NUM_TX_QUEUES. AF_XDP binds to receive
// queues; a socket transmits only if its queue number is also a transmit queue.
struct Queues {
  uint32_t rx = 1, tx = 1;
};
Queues queues(uint32_t ifindex);
// Whether an interface exists (LVS_NO_SUCH_DEVICE otherwise).
void require_link(uint32_t ifindex);

}  // namespace bpf
}  // namespace lvsd
