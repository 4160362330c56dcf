// Small cgroup BPF programs assembled in code (no libbpf, no compiler): instruction builders,
// a label-resolving assembler, and PROG_LOAD / PROG_ATTACH through bpf(2).
#pragma once
#include <linux/bpf.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "os/unique_fd.hpp"

namespace vunify::context::bpf {

bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm);
bpf_insn load_u32(uint8_t dst, uint8_t src, int16_t off);               // dst = *(u32*)(src + off)
bpf_insn store_u32(uint8_t dst, int16_t off, uint8_t src);              // *(u32*)(dst + off) = src
bpf_insn store_u64(uint8_t dst, int16_t off, uint8_t src);              // *(u64*)(dst + off) = src
bpf_insn alu_imm(uint8_t op, uint8_t dst, int32_t imm);                 // 64-bit dst op= imm
bpf_insn mov_reg(uint8_t dst, uint8_t src);
bpf_insn jne_imm(uint8_t dst, int32_t imm);                             // offset to be set
bpf_insn call(int32_t helper);
bpf_insn exit_insn();

// Instructions with forward jumps to named labels.
class Assembler {
 public:
  void emit(const bpf_insn& i) { code_.push_back(i); }
  void emit(const std::vector<bpf_insn>& is) { code_.insert(code_.end(), is.begin(), is.end()); }
  // 32-bit compare of `reg` with `imm`: jump to `label` if equal (BPF_JEQ) / not equal (BPF_JNE).
  void jump32(uint8_t op, uint8_t reg, uint32_t imm, const std::string& label);
  void jump(const std::string& label);  // unconditional
  void load_imm64(uint8_t dst, uint64_t value);
  void label(const std::string& name) { labels_[name] = code_.size(); }
  std::vector<bpf_insn> finish() const;  // throws std::logic_error for an unknown label

 private:
  std::vector<bpf_insn> code_;
  std::map<std::string, size_t> labels_;
  std::vector<std::pair<size_t, std::string>> fixups_;
};

// Loads a program of `type` (with `expected_attach_type` for those that need one); the
// verifier's log is in the error. `what` names it in messages.
os::unique_fd load_program(bpf_prog_type type, bpf_attach_type expected_attach_type, const std::vector<bpf_insn>& code,
                           const std::string& what);
// Attaches it to the cgroup2 directory (BPF_F_ALLOW_MULTI: programs of enclosing cgroups, the
// host's own policy, still apply too). The attachment lives as long as the cgroup.
void attach_program(int cgroup_fd, int prog_fd, bpf_attach_type type, const std::string& what, const std::string& dir);

}  // namespace vunify::context::bpf
