// The guest's seccomp filter: everything allowed but the calls below, which fail with EPERM
// (ENOSYS for clone3, whose flags a filter cannot read, so that libc falls back to clone).
// Filters the native x86_64 ABI and the x32 and i386 ones alike (libseccomp translates the
// numbers per architecture), so a 32-bit entry point cannot be used to go around it.
#include "context/seccomp.hpp"

#include <fmt/format.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <initializer_list>
#include <memory>

#include "os/error.hpp"
#include "os/unique_fd.hpp"

namespace vunify::context {
namespace {

struct SeccompRelease {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using unique_filter = std::unique_ptr<void, SeccompRelease>;

void check(int rc, const std::string& what) {
  if (rc < 0) throw os::SysError(-rc, "seccomp: " + what, "");
}

// Denied whatever the profile: kernel keyrings are not namespaced, BPF and perf expose the
// kernel, kexec and modules change it, open_by_handle_at opens any inode of a filesystem by
// number (the "shocker" escape), userfaultfd widens kernel race windows, io_uring performs
// calls this filter cannot see (Docker denies it too).
constexpr const char* kAlwaysDenied[] = {
    "keyctl",       "add_key",         "request_key",  "bpf",          "perf_event_open",   "kexec_load",
    "kexec_file_load", "open_by_handle_at", "userfaultfd", "init_module", "finit_module", "delete_module",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
};

// Denied unless the profile keeps CAP_SYS_ADMIN, as Docker does: mounts (old and new API),
// namespace creation and joining.
constexpr const char* kSysAdminOnly[] = {
    "mount",  "umount",   "umount2", "unshare",   "setns",     "pivot_root", "fsopen",
    "fsconfig", "fsmount", "fspick", "open_tree", "move_mount", "mount_setattr",
};

constexpr uint64_t kNamespaceFlags[] = {CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER,
                                        CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP};

bool has(uint64_t caps, int cap) { return (caps >> cap) & 1; }

int syscall_number(const char* name) {
  int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR) throw os::SysError(ENOSYS, "seccomp: libseccomp does not know the system call", name);
  return nr;
}

void deny(void* ctx, const char* name, int err = EPERM) {
  check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(err), syscall_number(name), 0), fmt::format("deny {}", name));
}

// TIOCSTI pushes input into a terminal (into the host's shell if the guest holds the host's
// tty), TIOCLINUX can do the same on a virtual console. The command is an int: compare the
// low 32 bits only.
void deny_terminal_injection(void* ctx) {
  for (unsigned long cmd : {TIOCSTI, TIOCLINUX})
    check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffULL, cmd)),
          fmt::format("deny ioctl {:#x}", cmd));
}

// clone with any CLONE_NEW* flag (user namespaces included) fails with EPERM; clone3 with
// ENOSYS so that callers fall back to clone, where the flags are visible.
void deny_namespace_clone(void* ctx) {
  for (uint64_t flag : kNamespaceFlags)
    check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)),
          fmt::format("deny clone flag {:#x}", flag));
  deny(ctx, "clone3", ENOSYS);
}

unique_filter build(uint64_t caps) {
  unique_filter ctx(seccomp_init(SCMP_ACT_ALLOW));
  if (!ctx) throw os::SysError(ENOMEM, "seccomp: init", "");
  // no_new_privs is the profile's choice (apply_security sets it first when asked); without it
  // the caller still holds CAP_SYS_ADMIN, which the kernel requires instead.
  check(seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0), "clear no_new_privs attribute");
#if defined(__x86_64__)
  check(seccomp_arch_add(ctx.get(), SCMP_ARCH_X86), "add arch x86");
  check(seccomp_arch_add(ctx.get(), SCMP_ARCH_X32), "add arch x32");
#endif
  for (const char* name : kAlwaysDenied) deny(ctx.get(), name);
  if (!has(caps, CAP_SYS_ADMIN)) {
    for (const char* name : kSysAdminOnly) deny(ctx.get(), name);
    deny_namespace_clone(ctx.get());
  }
  deny_terminal_injection(ctx.get());
  // reboot: without CAP_SYS_BOOT the kernel answers EPERM anyway (systemd then exits as PID 1
  // "Exiting container", which ends the context). With CAP_SYS_BOOT it is left to the pid
  // namespace: restart/power-off SIGKILL the context's init, whose wait status then carries
  // SIGHUP (reboot) or SIGINT (halt/power-off); every other command is EINVAL there.
  // apply_security refuses CAP_SYS_BOOT outside a child pid namespace.
  if (!has(caps, CAP_SYS_BOOT)) deny(ctx.get(), "reboot");
  return ctx;
}

}  // namespace

std::string describe_seccomp(uint64_t capabilities) {
  unique_filter ctx = build(capabilities);
  os::unique_fd memfd(::memfd_create("vunify-seccomp-pfc", MFD_CLOEXEC));
  if (!memfd) os::throw_errno("seccomp: memfd_create", "");
  check(seccomp_export_pfc(ctx.get(), memfd.get()), "export pfc");
  std::string text;
  char buf[8192];
  for (ssize_t n; (n = ::pread(memfd.get(), buf, sizeof buf, static_cast<off_t>(text.size()))) > 0;) text.append(buf, static_cast<size_t>(n));
  return text;
}

SeccompProgram compile_seccomp(uint64_t capabilities) {
  unique_filter ctx = build(capabilities);
  os::unique_fd memfd(::memfd_create("vunify-seccomp-bpf", MFD_CLOEXEC));
  if (!memfd) os::throw_errno("seccomp: memfd_create", "");
  check(seccomp_export_bpf(ctx.get(), memfd.get()), "export bpf");
  off_t size = ::lseek(memfd.get(), 0, SEEK_END);
  if (size <= 0 || size % static_cast<off_t>(sizeof(sock_filter)) != 0)
    throw os::SysError(EINVAL, "seccomp: exported program has a bad size", std::to_string(size));
  SeccompProgram program;
  program.code.resize(static_cast<size_t>(size) / sizeof(sock_filter));
  if (::pread(memfd.get(), program.code.data(), static_cast<size_t>(size), 0) != size) os::throw_errno("seccomp: read back", "the exported program");
  return program;
}

void load_seccomp(const SeccompProgram& program) {
  sock_fprog prog{};
  prog.len = static_cast<unsigned short>(program.code.size());
  prog.filter = const_cast<sock_filter*>(program.code.data());
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) os::throw_errno("seccomp: load filter", "");
}

void apply_seccomp(uint64_t capabilities) { load_seccomp(compile_seccomp(capabilities)); }

}  // namespace vunify::context
