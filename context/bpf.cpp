#include "context/bpf.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

#include "os/error.hpp"

namespace vunify::context::bpf {

namespace {

long sys_bpf(int cmd, bpf_attr& attr) { return ::syscall(SYS_bpf, cmd, &attr, sizeof attr); }

}  // namespace

bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst & 0xf;
  i.src_reg = src & 0xf;
  i.off = off;
  i.imm = imm;
  return i;
}
bpf_insn load_u32(uint8_t dst, uint8_t src, int16_t off) { return insn(BPF_LDX | BPF_W | BPF_MEM, dst, src, off, 0); }
bpf_insn store_u32(uint8_t dst, int16_t off, uint8_t src) { return insn(BPF_STX | BPF_W | BPF_MEM, dst, src, off, 0); }
bpf_insn store_u64(uint8_t dst, int16_t off, uint8_t src) { return insn(BPF_STX | BPF_DW | BPF_MEM, dst, src, off, 0); }
bpf_insn alu_imm(uint8_t op, uint8_t dst, int32_t imm) { return insn(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm); }
bpf_insn mov_reg(uint8_t dst, uint8_t src) { return insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0); }
bpf_insn jne_imm(uint8_t dst, int32_t imm) { return insn(BPF_JMP | BPF_JNE | BPF_K, dst, 0, 0, imm); }
bpf_insn call(int32_t helper) { return insn(BPF_JMP | BPF_CALL, 0, 0, 0, helper); }
bpf_insn exit_insn() { return insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

void Assembler::jump32(uint8_t op, uint8_t reg, uint32_t imm, const std::string& label) {
  fixups_.emplace_back(code_.size(), label);
  emit(insn(BPF_JMP32 | op | BPF_K, reg, 0, 0, static_cast<int32_t>(imm)));
}

void Assembler::jump(const std::string& label) {
  fixups_.emplace_back(code_.size(), label);
  emit(insn(BPF_JMP | BPF_JA, 0, 0, 0, 0));
}

void Assembler::load_imm64(uint8_t dst, uint64_t value) {
  emit(insn(BPF_LD | BPF_DW | BPF_IMM, dst, 0, 0, static_cast<int32_t>(value & 0xffffffff)));
  emit(insn(0, 0, 0, 0, static_cast<int32_t>(value >> 32)));
}

std::vector<bpf_insn> Assembler::finish() const {
  std::vector<bpf_insn> out = code_;
  for (const auto& [at, label] : fixups_) {
    auto target = labels_.find(label);
    if (target == labels_.end()) throw std::logic_error("bpf: unknown label " + label);
    out[at].off = static_cast<int16_t>(static_cast<long>(target->second) - static_cast<long>(at) - 1);
  }
  return out;
}

os::unique_fd load_program(bpf_prog_type type, bpf_attach_type expected_attach_type, const std::vector<bpf_insn>& code,
                           const std::string& what) {
  std::string log(16384, '\0');
  static const char kLicense[] = "Apache-2.0";
  bpf_attr attr{};
  attr.prog_type = type;
  attr.expected_attach_type = expected_attach_type;
  attr.insns = reinterpret_cast<uintptr_t>(code.data());
  attr.insn_cnt = static_cast<uint32_t>(code.size());
  attr.license = reinterpret_cast<uintptr_t>(kLicense);
  attr.log_buf = reinterpret_cast<uintptr_t>(log.data());
  attr.log_size = static_cast<uint32_t>(log.size());
  attr.log_level = 1;
  long fd = sys_bpf(BPF_PROG_LOAD, attr);
  if (fd < 0) {
    int err = errno;
    throw os::SysError(err, "load BPF program " + what + " (verifier: " + std::string(log.c_str()) + ")", "");
  }
  return os::unique_fd(static_cast<int>(fd));
}

void attach_program(int cgroup_fd, int prog_fd, bpf_attach_type type, const std::string& what, const std::string& dir) {
  bpf_attr attr{};
  attr.target_fd = static_cast<uint32_t>(cgroup_fd);
  attr.attach_bpf_fd = static_cast<uint32_t>(prog_fd);
  attr.attach_type = type;
  attr.attach_flags = BPF_F_ALLOW_MULTI;
  if (sys_bpf(BPF_PROG_ATTACH, attr) != 0) os::throw_errno("attach BPF program " + what + " to cgroup", dir);
}

}  // namespace vunify::context::bpf
