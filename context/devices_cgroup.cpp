// The device allowlist of a guest's cgroup, Docker's default: mknod of any node (CAP_MKNOD is
// in the default set, and package scripts create nodes), but read/write only of the harmless
// character devices. A guest root that makes a node for the host's disk cannot open it, so
// the pool's store cannot be written behind the view's back.
//   v1: devices.deny "a", then one devices.allow line per rule.
//   v2: a BPF_CGROUP_DEVICE program, assembled here (a few dozen instructions, no libbpf),
//       attached to the cgroup2 directory; the cgroup keeps it alive.
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <vector>

#include "context/bpf.hpp"
#include "context/security.hpp"
#include "os/error.hpp"
#include "os/unique_fd.hpp"

namespace vunify::context {
namespace {

constexpr int kAny = -1;

struct DeviceRule {
  char type;           // 'c', 'b' or 'a'
  int major, minor;    // kAny for "*"
  const char* access;  // subset of "rwm"
};

constexpr DeviceRule kAllowed[] = {
    {'c', kAny, kAny, "m"}, {'b', kAny, kAny, "m"},  // mknod of anything, opening is what matters
    {'c', 1, 3, "rwm"},     {'c', 1, 5, "rwm"},      // null, zero
    {'c', 1, 7, "rwm"},     {'c', 1, 8, "rwm"},      // full, random
    {'c', 1, 9, "rwm"},     {'c', 5, 0, "rwm"},      // urandom, tty
    {'c', 5, 1, "rwm"},     {'c', 5, 2, "rwm"},      // console, ptmx
    {'c', 136, kAny, "rwm"},                         // pts/*
};

std::string number(int n) { return n == kAny ? "*" : std::to_string(n); }

void write_control(int dir_fd, const char* file, const std::string& line) {
  os::unique_fd fd(::openat(dir_fd, file, O_WRONLY | O_CLOEXEC));
  if (!fd) os::throw_errno("devices cgroup: open", file);
  if (::write(fd.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size()))
    os::throw_errno(fmt::format("devices cgroup: write '{}' to", line), file);
}

// --- v2: the BPF program -------------------------------------------------------------
// On entry r1 = struct bpf_cgroup_dev_ctx*; we load r2 = type, r3 = access, r4 = major,
// r5 = minor, then one block per rule that jumps to the next block on any mismatch and
// otherwise returns 1 (allow). Falling off the last block returns 0 (deny: EPERM).

using bpf::alu_imm;
using bpf::exit_insn;
using bpf::jne_imm;
using bpf::mov_reg;
bpf_insn load_u32(uint8_t dst, int16_t off) { return bpf::load_u32(dst, BPF_REG_1, off); }

int access_bits(const char* access) {
  int bits = 0;
  for (const char* c = access; *c; ++c)
    bits |= *c == 'r' ? BPF_DEVCG_ACC_READ : *c == 'w' ? BPF_DEVCG_ACC_WRITE : BPF_DEVCG_ACC_MKNOD;
  return bits;
}

std::vector<bpf_insn> rule_block(const DeviceRule& rule) {
  std::vector<bpf_insn> block;
  if (rule.type != 'a') block.push_back(jne_imm(BPF_REG_2, rule.type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR));
  int allowed = access_bits(rule.access);
  if (allowed != (BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD)) {
    block.push_back(mov_reg(BPF_REG_1, BPF_REG_3));  // r1 = access & ~allowed; mismatch if != 0
    block.push_back(alu_imm(BPF_AND, BPF_REG_1, ~allowed & 7));
    block.push_back(jne_imm(BPF_REG_1, 0));
  }
  if (rule.major != kAny) block.push_back(jne_imm(BPF_REG_4, rule.major));
  if (rule.minor != kAny) block.push_back(jne_imm(BPF_REG_5, rule.minor));
  block.push_back(alu_imm(BPF_MOV, BPF_REG_0, 1));
  block.push_back(exit_insn());
  for (size_t i = 0; i < block.size(); ++i)  // every jump goes to the end of its block
    if (BPF_CLASS(block[i].code) == BPF_JMP && BPF_OP(block[i].code) == BPF_JNE) block[i].off = static_cast<int16_t>(block.size() - i - 1);
  return block;
}

std::vector<bpf_insn> device_program() {
  std::vector<bpf_insn> prog = {
      load_u32(BPF_REG_2, offsetof(bpf_cgroup_dev_ctx, access_type)), alu_imm(BPF_AND, BPF_REG_2, 0xffff),
      load_u32(BPF_REG_3, offsetof(bpf_cgroup_dev_ctx, access_type)), alu_imm(BPF_RSH, BPF_REG_3, 16),
      load_u32(BPF_REG_4, offsetof(bpf_cgroup_dev_ctx, major)),       load_u32(BPF_REG_5, offsetof(bpf_cgroup_dev_ctx, minor)),
  };
  for (const DeviceRule& rule : kAllowed) {
    std::vector<bpf_insn> block = rule_block(rule);
    prog.insert(prog.end(), block.begin(), block.end());
  }
  prog.push_back(alu_imm(BPF_MOV, BPF_REG_0, 0));
  prog.push_back(exit_insn());
  return prog;
}

}  // namespace

void restrict_devices_v1(int devices_cgroup_dir_fd) {
  write_control(devices_cgroup_dir_fd, "devices.deny", "a");
  for (const DeviceRule& r : kAllowed)
    write_control(devices_cgroup_dir_fd, "devices.allow", fmt::format("{} {}:{} {}", r.type, number(r.major), number(r.minor), r.access));
}

void restrict_devices_v2(int cgroup2_dir_fd) {
  os::unique_fd prog = bpf::load_program(BPF_PROG_TYPE_CGROUP_DEVICE, BPF_CGROUP_DEVICE, device_program(), "BPF_CGROUP_DEVICE");
  bpf::attach_program(cgroup2_dir_fd, prog.get(), BPF_CGROUP_DEVICE, "BPF_CGROUP_DEVICE",
                      "fd " + std::to_string(cgroup2_dir_fd));
}

}  // namespace vunify::context
