// The seccomp filter on its own, in a child that keeps every capability (in a private mount
// namespace, with arguments the kernel would reject anyway): each EPERM here is the filter's,
// not a missing capability's.
#include <fcntl.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>

#include "context/capabilities.hpp"
#include "context/seccomp.hpp"
#include "context/security.hpp"
#include "os/error.hpp"
#include "tests/child_report.hpp"
#include "tests/helpers.hpp"

using vunify::test::Reporter;

namespace {

// A system call through the i386 entry point (int 0x80), in a grandchild since the kernel
// may not have it (SIGSEGV then): "OK", an errno name, or "NOI386".
std::string int80(long nr, long a = 0) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::signal(SIGSEGV, SIG_DFL);
    long ret = 0;
    asm volatile("int $0x80" : "=a"(ret) : "0"(nr), "b"(a), "c"(0) : "memory", "r8", "r9", "r10", "r11");
    _exit(ret < 0 ? static_cast<int>(-ret) & 0xff : 0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status)) return "NOI386";
  return WEXITSTATUS(status) == 0 ? "OK" : vunify::test::errno_name(WEXITSTATUS(status));
}

std::string raw_result(long ret) { return ret >= 0 ? "OK" : vunify::test::errno_name(errno); }

constexpr long kI386Getpid = 20, kI386Unshare = 310;
constexpr long kX32Bit = 0x40000000L;

void private_mounts() {
  if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    vunify::os::throw_errno("private mount namespace", "/");
}

void probe(Reporter& r, const std::string& scratch) {
  r.call("mount", ::mount("none", scratch.c_str(), "tmpfs", 0, nullptr));
  r.call("unshare", ::unshare(CLONE_NEWNS));
  r.call("keyctl", ::syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
  r.call("init_module", ::syscall(SYS_init_module, nullptr, 0, ""));
  r.call("reboot", ::syscall(SYS_reboot, 0, 0, 0, nullptr));  // bad magic: EINVAL unfiltered
  long pid = ::syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
  if (pid == 0) _exit(0);
  if (pid > 0) ::waitpid(static_cast<pid_t>(pid), nullptr, 0);
  r.call("clone_newnet", pid);
  pid = ::fork();  // plain clone still works
  if (pid == 0) _exit(0);
  if (pid > 0) ::waitpid(static_cast<pid_t>(pid), nullptr, 0);
  r.call("fork", pid);
  r.call("ioctl_other", ::ioctl(0, FIONREAD, &pid) == 0 || errno != EPERM ? 0 : -1);
  r.put("i386_getpid", int80(kI386Getpid));
  r.put("i386_unshare", int80(kI386Unshare, CLONE_NEWNS));
  r.put("x32_unshare", raw_result(::syscall(kX32Bit | SYS_unshare, CLONE_NEWNS)));
}

}  // namespace

TEST_CASE("seccomp: the filter denies mounts, namespaces, keys, modules whatever the capabilities", "[context][security][seccomp]") {
  VUNIFY_REQUIRE_ROOT();
  vunify::test::TempDir scratch;
  auto report = vunify::test::run_child([&](Reporter& r) {
    private_mounts();
    vunify::context::apply_seccomp(vunify::context::default_capabilities());
    probe(r, scratch.path());
  });
  INFO("child error: " << report.error);
  REQUIRE(report.status == 0);
  for (const char* call : {"mount", "unshare", "keyctl", "init_module", "reboot", "clone_newnet"}) {
    INFO(call);
    CHECK(report.get(call) == "EPERM");
  }
  CHECK(report.get("fork") == "OK");
  CHECK(report.get("ioctl_other") == "OK");
  // The 32-bit entry points are filtered too (ENOSYS where the kernel lacks them).
  if (report.get("i386_getpid") == "OK")
    CHECK(report.get("i386_unshare") == "EPERM");
  else
    WARN("i386 system calls not checked: this kernel has no int 0x80 entry (" << report.get("i386_getpid") << ")");
  CHECK((report.get("x32_unshare") == "EPERM" || report.get("x32_unshare") == "ENOSYS"));
}

TEST_CASE("seccomp: a profile keeping CAP_SYS_ADMIN may mount and unshare, as in Docker", "[context][security][seccomp]") {
  VUNIFY_REQUIRE_ROOT();
  vunify::test::TempDir scratch;
  auto report = vunify::test::run_child([&](Reporter& r) {
    private_mounts();
    vunify::context::apply_seccomp(vunify::context::default_capabilities() | (uint64_t{1} << vunify::context::parse_capability("SYS_ADMIN")));
    probe(r, scratch.path());
  });
  INFO("child error: " << report.error);
  REQUIRE(report.status == 0);
  CHECK(report.get("mount") == "OK");
  CHECK(report.get("unshare") == "OK");
  CHECK(report.get("clone_newnet") == "OK");
  CHECK(report.get("keyctl") == "EPERM");
  CHECK(report.get("init_module") == "EPERM");
}

TEST_CASE("seccomp: the filter has a section for each x86 ABI (x86_64, i386, x32)", "[context][security][seccomp]") {
#if defined(__x86_64__)
  std::string pfc = vunify::context::describe_seccomp(vunify::context::default_capabilities());
  CHECK(pfc.find("# filter for arch x86_64 ") != std::string::npos);
  CHECK(pfc.find("# filter for arch x86 ") != std::string::npos);
  CHECK(pfc.find("# filter for arch x32 ") != std::string::npos);
  // unshare by its number in each: 272, i386 310, x32 0x40000000 + 272.
  CHECK(pfc.find("\"unshare\" (272)") != std::string::npos);
  CHECK(pfc.find("\"unshare\" (310)") != std::string::npos);
  CHECK(pfc.find("\"unshare\" (1073742096)") != std::string::npos);
  CHECK(pfc.find("\"open_by_handle_at\"") != std::string::npos);
  std::string admin = vunify::context::describe_seccomp(vunify::context::default_capabilities() | (uint64_t{1} << vunify::context::parse_capability("SYS_ADMIN")));
  CHECK(admin.find("\"unshare\"") == std::string::npos);
  CHECK(admin.find("\"open_by_handle_at\"") != std::string::npos);
#else
  WARN("skipped: the multi-ABI check is for x86_64 hosts");
#endif
}
