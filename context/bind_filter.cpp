#include "context/bind_filter.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "context/bpf.hpp"
#include "os/error.hpp"

namespace vunify::context {

namespace {

using bpf::Assembler;

// An address as the u32 words the program loads from the context (network byte order bytes).
struct Words {
  uint32_t w[4]{};
};
Words words_of(const Cidr& c) {
  Words out;
  std::memcpy(out.w, c.bytes, c.size());
  return out;
}
// ::ffff:a.b.c.d of an IPv4 address's words.
Words mapped(const Words& v4) { return Words{{0, 0, htonl(0xffff), v4.w[0]}}; }

struct Guest {
  std::vector<Words> v4, v6;  // v4: w[0] only
};

constexpr int16_t kUserIp4 = offsetof(bpf_sock_addr, user_ip4);
constexpr int16_t kUserIp6 = offsetof(bpf_sock_addr, user_ip6);
constexpr int16_t kSrcIp4 = offsetof(bpf_sock_addr, msg_src_ip4);
constexpr int16_t kSrcIp6 = offsetof(bpf_sock_addr, msg_src_ip6);

// Every program starts with r6 = ctx and ends with these exits (the verifier refuses
// unreachable code: programs that never deny leave the second out).
void prologue(Assembler& a) { a.emit(bpf::mov_reg(BPF_REG_6, BPF_REG_1)); }
void epilogue(Assembler& a, bool denies = true) {
  a.label("allow");
  a.emit(bpf::alu_imm(BPF_MOV, BPF_REG_0, 1));
  a.emit(bpf::exit_insn());
  if (!denies) return;
  a.label("deny");
  a.emit(bpf::alu_imm(BPF_MOV, BPF_REG_1, -EADDRNOTAVAIL));
  a.emit(bpf::call(BPF_FUNC_set_retval));
  a.emit(bpf::alu_imm(BPF_MOV, BPF_REG_0, 0));
  a.emit(bpf::exit_insn());
}

void store_words(Assembler& a, int16_t off, const Words& w, int n) {
  for (int i = 0; i < n; ++i) {
    a.emit(bpf::alu_imm(BPF_MOV, BPF_REG_1, static_cast<int32_t>(w.w[i])));
    a.emit(bpf::store_u32(BPF_REG_6, static_cast<int16_t>(off + 4 * i), BPF_REG_1));
  }
}

// r2 holds an IPv4 address: to "allow" if it is one of the guest's.
void match_v4(Assembler& a, const Guest& g) {
  for (const Words& w : g.v4) a.jump32(BPF_JEQ, BPF_REG_2, w.w[0], "allow");
}

// r2..r5 hold an IPv6 address: to "allow" if it is one of the guest's (v4-mapped included).
void match_v6(Assembler& a, const Guest& g) {
  std::vector<Words> all = g.v6;
  for (const Words& w : g.v4) all.push_back(mapped(w));
  for (size_t i = 0; i < all.size(); ++i) {
    std::string next = "next" + std::to_string(i);
    for (int r = 0; r < 4; ++r) a.jump32(BPF_JNE, static_cast<uint8_t>(BPF_REG_2 + r), all[i].w[r], next);
    a.jump("allow");
    a.label(next);
  }
}

void load_v6(Assembler& a, int16_t off) {
  for (int r = 0; r < 4; ++r) a.emit(bpf::load_u32(static_cast<uint8_t>(BPF_REG_2 + r), BPF_REG_6, static_cast<int16_t>(off + 4 * r)));
}

// bind4 / sendmsg4: the address at `off` must be the guest's; 0 becomes its first.
std::vector<bpf_insn> narrow_v4(const Guest& g, int16_t off) {
  Assembler a;
  prologue(a);
  a.emit(bpf::load_u32(BPF_REG_2, BPF_REG_6, off));
  a.jump32(BPF_JEQ, BPF_REG_2, 0, "any");
  match_v4(a, g);
  a.jump("deny");
  a.label("any");
  if (!g.v4.empty()) store_words(a, off, g.v4[0], 1);
  a.jump(g.v4.empty() ? "deny" : "allow");
  epilogue(a);
  return a.finish();
}

// bind6 / sendmsg6: likewise for IPv6; :: becomes the first IPv6 address (bind: else the
// v4-mapped first IPv4 address).
std::vector<bpf_insn> narrow_v6(const Guest& g, int16_t off, bool mapped_any) {
  Assembler a;
  prologue(a);
  load_v6(a, off);
  for (int r = 0; r < 4; ++r) a.jump32(BPF_JNE, static_cast<uint8_t>(BPF_REG_2 + r), 0, "specific");
  bool rewrite = !g.v6.empty() || (mapped_any && !g.v4.empty());
  if (rewrite) store_words(a, off, g.v6.empty() ? mapped(g.v4[0]) : g.v6[0], 4);
  a.jump(rewrite ? "allow" : "deny");
  a.label("specific");
  match_v6(a, g);
  a.jump("deny");
  epilogue(a);
  return a.finish();
}

// connect: bpf_bind(ctx, sockaddr on the stack at r10-32, len) to the guest's address; an
// already bound socket makes bpf_bind fail harmlessly (EINVAL).
void bind_to(Assembler& a, int family, const Words& addr) {
  uint64_t head = static_cast<uint64_t>(family);  // sa_family, port 0 (, IPv6 flowinfo 0)
  if (family == AF_INET) head |= static_cast<uint64_t>(addr.w[0]) << 32;
  a.load_imm64(BPF_REG_1, head);
  a.emit(bpf::store_u64(BPF_REG_10, -32, BPF_REG_1));
  uint64_t rest[3] = {0, 0, 0};
  if (family == AF_INET6) {
    rest[0] = addr.w[0] | static_cast<uint64_t>(addr.w[1]) << 32;
    rest[1] = addr.w[2] | static_cast<uint64_t>(addr.w[3]) << 32;
  }
  for (int i = 0; i < 3; ++i) {
    a.load_imm64(BPF_REG_1, rest[i]);
    a.emit(bpf::store_u64(BPF_REG_10, static_cast<int16_t>(-24 + 8 * i), BPF_REG_1));
  }
  a.emit(bpf::mov_reg(BPF_REG_1, BPF_REG_6));
  a.emit(bpf::mov_reg(BPF_REG_2, BPF_REG_10));
  a.emit(bpf::alu_imm(BPF_ADD, BPF_REG_2, -32));
  a.emit(bpf::alu_imm(BPF_MOV, BPF_REG_3, family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6)));
  a.emit(bpf::call(BPF_FUNC_bind));
}

std::vector<bpf_insn> connect_v4(const Guest& g) {
  Assembler a;
  prologue(a);
  if (!g.v4.empty()) bind_to(a, AF_INET, g.v4[0]);
  a.jump("allow");
  epilogue(a, false);
  return a.finish();
}

// A v4-mapped destination gets the v4-mapped first IPv4 address, any other the first IPv6.
std::vector<bpf_insn> connect_v6(const Guest& g) {
  Assembler a;
  prologue(a);
  load_v6(a, kUserIp6);
  a.jump32(BPF_JNE, BPF_REG_2, 0, "native");
  a.jump32(BPF_JNE, BPF_REG_3, 0, "native");
  a.jump32(BPF_JNE, BPF_REG_4, htonl(0xffff), "native");
  if (!g.v4.empty()) bind_to(a, AF_INET6, mapped(g.v4[0]));
  a.jump("allow");
  a.label("native");
  if (!g.v6.empty()) bind_to(a, AF_INET6, g.v6[0]);
  a.jump("allow");
  epilogue(a, false);
  return a.finish();
}

void attach(int cgroup_fd, const std::string& dir, bpf_attach_type type, const std::vector<bpf_insn>& code,
            const char* what) {
  os::unique_fd prog = bpf::load_program(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, type, code, what);
  bpf::attach_program(cgroup_fd, prog.get(), type, what, dir);
}

}  // namespace

void restrict_binds(const std::string& dir, const std::vector<Cidr>& addresses) {
  Guest g;
  for (const Cidr& c : addresses) (c.family == AF_INET ? g.v4 : g.v6).push_back(words_of(c));
  os::unique_fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) os::throw_errno("open cgroup", dir);
  attach(fd.get(), dir, BPF_CGROUP_INET4_BIND, narrow_v4(g, kUserIp4), "bind4");
  attach(fd.get(), dir, BPF_CGROUP_INET6_BIND, narrow_v6(g, kUserIp6, true), "bind6");
  attach(fd.get(), dir, BPF_CGROUP_INET4_CONNECT, connect_v4(g), "connect4");
  attach(fd.get(), dir, BPF_CGROUP_INET6_CONNECT, connect_v6(g), "connect6");
  attach(fd.get(), dir, BPF_CGROUP_UDP4_SENDMSG, narrow_v4(g, kSrcIp4), "sendmsg4");
  attach(fd.get(), dir, BPF_CGROUP_UDP6_SENDMSG, narrow_v6(g, kSrcIp6, false), "sendmsg6");
}

}  // namespace vunify::context
