// The guest's security profile, applied for real in a forked child that has pivoted into a
// scratch root (so Landlock's "beneath /" means that root), checked from inside.
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/reboot.h>
#include <linux/sched.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>

#include "context/landlock.hpp"
#include "context/security.hpp"
#include "os/error.hpp"
#include "tests/child_report.hpp"
#include "tests/helpers.hpp"

using vunify::context::SecurityProfile;
using vunify::test::must;
using vunify::test::own_status;
using vunify::test::report_status;
using vunify::test::Reporter;

namespace {

// A root with the host's /usr (read-only) and the usual merged-/usr links, no /dev.
void make_root_tree(const std::string& root) {
  vunify::test::mkdirs(root + "/usr");
  vunify::test::mkdirs(root + "/proc");
  vunify::test::mkdirs(root + "/tmp");
  for (const char* link : {"bin", "sbin", "lib", "lib64"})
    if (::symlink((std::string("usr/") + link).c_str(), (root + "/" + link).c_str()) != 0) vunify::os::throw_errno("symlink", root);
}

// In the child: a private mount namespace, `root` as "/" by pivot_root, old root detached.
void pivot_into(const std::string& root) {
  must(::unshare(CLONE_NEWNS), "unshare");
  must(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), "make private");
  must(::mount(root.c_str(), root.c_str(), nullptr, MS_BIND, nullptr), "bind root");
  std::string usr = root + "/usr";
  must(::mount("/usr", usr.c_str(), nullptr, MS_BIND | MS_REC, nullptr), "bind usr");
  must(::mount(nullptr, usr.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr), "usr read-only");
  must(::mount("proc", (root + "/proc").c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr), "mount proc");
  must(::chdir(root.c_str()), "chdir root");
  must(::syscall(SYS_pivot_root, ".", "."), "pivot_root");
  must(::umount2(".", MNT_DETACH), "detach old root");
  must(::chdir("/"), "chdir /");
}

void check_denied_calls(Reporter& r) {
  r.call("mount", ::mount("none", "/tmp", "tmpfs", 0, nullptr));
  r.call("umount2", ::umount2("/proc", MNT_DETACH));
  r.call("unshare", ::unshare(CLONE_NEWNS));
  int ns = ::open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
  r.call("setns", ::setns(ns, 0));
  r.call("pivot_root", ::syscall(SYS_pivot_root, "/", "/"));
  r.call("keyctl", ::syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
  r.call("add_key", ::syscall(SYS_add_key, "vunify_no_such_type", "vunify-test", "x", 1, KEY_SPEC_SESSION_KEYRING));
  r.call("request_key", ::syscall(SYS_request_key, "vunify_no_such_type", "vunify-test", nullptr, KEY_SPEC_SESSION_KEYRING));
  char bpf_attr[128] = {};
  r.call("bpf", ::syscall(SYS_bpf, 0 /* BPF_MAP_CREATE */, bpf_attr, sizeof bpf_attr));
  perf_event_attr pe{};
  pe.size = sizeof pe;
  pe.type = PERF_TYPE_SOFTWARE;
  pe.config = PERF_COUNT_SW_CPU_CLOCK;
  r.call("perf_event_open", ::syscall(SYS_perf_event_open, &pe, 0, -1, -1, 0));
  alignas(8) char handle[64] = {};
  r.call("open_by_handle_at", ::syscall(SYS_open_by_handle_at, AT_FDCWD, handle, O_RDONLY));
  r.call("userfaultfd", ::syscall(SYS_userfaultfd, 0));
  r.call("init_module", ::syscall(SYS_init_module, nullptr, 0, ""));
  r.call("finit_module", ::syscall(SYS_finit_module, -1, "", 0));
  r.call("delete_module", ::syscall(SYS_delete_module, "vunify_none", 0));
  // Every call below has arguments the kernel rejects (EINVAL, ENODEV, ...) after its
  // privilege check, so that a broken filter changes nothing on the host.
  r.call("kexec_load", ::syscall(SYS_kexec_load, 0, 1000, nullptr, 0x100));
  // Magic 0 is invalid: even a broken filter could not reboot anything.
  r.call("reboot", ::syscall(SYS_reboot, 0, 0, LINUX_REBOOT_CMD_CAD_OFF, nullptr));
  r.call("io_uring_setup", ::syscall(SYS_io_uring_setup, 1, nullptr));
  long pid = ::syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
  if (pid == 0) _exit(0);
  if (pid > 0) ::waitpid(static_cast<pid_t>(pid), nullptr, 0);
  r.call("clone_newuser", pid);
  clone_args args{};
  args.flags = CLONE_NEWUSER;
  args.exit_signal = SIGCHLD;
  pid = ::syscall(SYS_clone3, &args, sizeof args);
  if (pid == 0) _exit(0);
  if (pid > 0) ::waitpid(static_cast<pid_t>(pid), nullptr, 0);
  r.call("clone3", pid);
  // Threads still start: libc falls back from clone3 (ENOSYS) to clone.
  pthread_t thread{};
  int err = ::pthread_create(&thread, nullptr, [](void*) -> void* { return nullptr; }, nullptr);
  if (err == 0) ::pthread_join(thread, nullptr);
  r.put("pthread_create", vunify::test::errno_name(err));
}

void check_terminal(Reporter& r, int tty) {
  char c = 'x';
  r.call("TIOCSTI", ::ioctl(tty, TIOCSTI, &c));
  char subcode = 0;  // TIOCL_*: any
  r.call("TIOCLINUX", ::ioctl(tty, TIOCLINUX, &subcode));
}

void check_signals(Reporter& r, pid_t outside) {
  r.call("kill_outside", ::kill(outside, SIGTERM));
  r.call("kill0_outside", ::kill(outside, 0));
  r.call("ptrace_outside", ::ptrace(PTRACE_ATTACH, outside, nullptr, nullptr));
  pid_t own = ::fork();
  if (own == 0) {
    for (;;) ::pause();
  }
  r.call("kill_own_child", ::kill(own, SIGKILL));
  int status = 0;
  ::waitpid(own, &status, 0);
  r.put("own_child_signal", WIFSIGNALED(status) ? std::to_string(WTERMSIG(status)) : "none");
}

sockaddr_un abstract_address(const std::string& name, socklen_t& len) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  return addr;
}

int abstract_listener(const std::string& name) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  socklen_t len = 0;
  sockaddr_un addr = abstract_address(name, len);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd, 4) != 0) vunify::os::throw_errno("abstract listener", name);
  return fd;
}

long abstract_connect(const std::string& name) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  socklen_t len = 0;
  sockaddr_un addr = abstract_address(name, len);
  long rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), len);
  int err = errno;
  ::close(fd);
  errno = err;
  return rc;
}

void check_leaked_dir(Reporter& r, int host_dir) {
  r.call("leaked_fd_openat", ::openat(host_dir, "secret", O_RDONLY | O_CLOEXEC));
  r.call("leaked_fd_proc", ::open(("/proc/self/fd/" + std::to_string(host_dir) + "/secret").c_str(), O_RDONLY | O_CLOEXEC));
  r.call("leaked_fd_mkdir", ::mkdirat(host_dir, "made-inside", 0755));
  r.call("leaked_cwd_fchdir", ::fchdir(host_dir));
  r.call("leaked_cwd_open", ::open("secret", O_RDONLY | O_CLOEXEC));
  ::chdir("/");
  r.call("inside_open", ::open("/usr/bin/sh", O_RDONLY | O_CLOEXEC));
  r.call("inside_create", ::open("/tmp/inside", O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
}

// The classic chroot escape (CAP_SYS_CHROOT is in the default set): chroot into a
// subdirectory, climb above it, chroot "." there. The host must stay out of sight.
void check_chroot_escape(Reporter& r, const std::string& host_secret) {
  ::mkdir("/tmp/jail", 0755);
  int above = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  r.call("chroot_jail", ::chroot("/tmp/jail"));
  ::fchdir(above);
  for (int i = 0; i < 64; ++i) ::chdir("..");
  r.call("chroot_escape", ::chroot("."));
  r.call("chroot_host_visible", ::open(host_secret.c_str(), O_RDONLY | O_CLOEXEC));
  r.call("chroot_proc_root", ::open(("/proc/1/root" + host_secret).c_str(), O_RDONLY | O_CLOEXEC));
}

// exec keeps the profile: the shell reports its own status lines.
void check_after_exec(Reporter& r) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(r.fd(), 1);
    ::execl("/bin/sh", "sh", "-c",
            "sed -n 's/^\\(Cap[A-Za-z]*\\|Seccomp\\):[[:space:]]*/exec_\\1 /p' /proc/self/status; "
            "if unshare -m true 2>/tmp/unshare.err; then echo exec_unshare OK; else echo exec_unshare denied; fi",
            static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.put("exec_status", std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)));
}

// A sealed memfd copy of a binary, as the runtime runs its own init from one.
int sealed_copy(const char* path) {
  int fd = ::memfd_create("vunify-test-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  std::string bytes = vunify::test::read_file(path);
  if (fd < 0 || ::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size()) ||
      ::fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0)
    vunify::os::throw_errno("memfd copy of", path);
  return fd;
}

// execveat of that copy still works under the profile (the memfd is on an internal mount).
void check_memfd_exec(Reporter& r, int memfd) {
  pid_t pid = ::fork();
  if (pid == 0) {
    char* argv[] = {const_cast<char*>("true"), nullptr};
    ::syscall(SYS_execveat, memfd, "", argv, environ, AT_EMPTY_PATH);
    _exit(errno);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.put("memfd_exec", WIFEXITED(status) ? vunify::test::errno_name(WEXITSTATUS(status)) : "signal");
}

struct Fixture {
  vunify::test::TempDir dir;
  std::string root = dir / "root";
  std::string host = dir / "host";
  std::string abstract_name = "vunify-test-security-" + std::to_string(::getpid());
  Fixture() {
    make_root_tree(root);
    vunify::test::write_file(host + "/secret", "host secret\n");
  }
};

}  // namespace

TEST_CASE("security: the default profile confines a guest in its root", "[context][security]") {
  VUNIFY_REQUIRE_ROOT();
  if (vunify::context::landlock_abi() < 6) {
    WARN("skipped: Landlock ABI " << vunify::context::landlock_abi() << " < 6 cannot scope signals and sockets");
    return;
  }
  Fixture fx;
  vunify::test::Sleeper outside;
  int listener = abstract_listener(fx.abstract_name);
  auto report = vunify::test::run_child([&](Reporter& r) {
    int host_dir = ::open(fx.host.c_str(), O_RDONLY | O_DIRECTORY);  // leaked on purpose
    int pty = ::posix_openpt(O_RDWR | O_NOCTTY);
    int memfd = sealed_copy("/usr/bin/true");
    if (host_dir < 0 || pty < 0 || ::grantpt(pty) != 0 || ::unlockpt(pty) != 0) vunify::os::throw_errno("setup", fx.host);
    pivot_into(fx.root);
    vunify::context::apply_security(SecurityProfile{});
    report_status(r, "");
    check_denied_calls(r);
    check_terminal(r, pty);
    check_signals(r, outside.pid());
    check_leaked_dir(r, host_dir);
    r.call("abstract_host", abstract_connect(fx.abstract_name));
    int own = abstract_listener(fx.abstract_name + "-inside");
    r.call("abstract_own", abstract_connect(fx.abstract_name + "-inside"));
    ::close(own);
    check_after_exec(r);
    check_memfd_exec(r, memfd);
    check_chroot_escape(r, fx.host + "/secret");  // last: it changes the root
  });
  ::close(listener);
  INFO("child error: " << report.error);
  REQUIRE(report.status == 0);
  CHECK(report.get("CapBnd") == "00000000a80425fb");
  CHECK(report.get("CapPrm") == "00000000a80425fb");
  CHECK(report.get("CapEff") == "00000000a80425fb");
  CHECK(report.get("CapInh") == "0000000000000000");
  CHECK(report.get("CapAmb") == "0000000000000000");
  CHECK(report.get("Seccomp") == "2");
  for (const char* call : {"mount", "umount2", "unshare", "setns", "pivot_root", "keyctl", "add_key", "request_key", "bpf",
                           "perf_event_open", "open_by_handle_at", "userfaultfd", "init_module", "finit_module",
                           "delete_module", "kexec_load", "reboot", "io_uring_setup", "clone_newuser", "TIOCSTI", "TIOCLINUX"}) {
    INFO(call);
    CHECK(report.get(call) == "EPERM");
  }
  CHECK(report.get("clone3") == "ENOSYS");
  CHECK(report.get("pthread_create") == "OK");
  CHECK(report.get("kill_outside") == "EPERM");
  CHECK(report.get("kill0_outside") == "EPERM");
  CHECK(report.get("ptrace_outside") == "EPERM");
  CHECK(outside.alive());
  CHECK(report.get("kill_own_child") == "OK");
  CHECK(report.get("own_child_signal") == std::to_string(SIGKILL));
  CHECK(report.get("leaked_fd_openat") == "EACCES");
  CHECK(report.get("leaked_fd_proc") == "EACCES");
  CHECK(report.get("leaked_fd_mkdir") == "EACCES");
  CHECK(report.get("leaked_cwd_open") == "EACCES");
  CHECK(report.get("inside_open") == "OK");
  CHECK(report.get("inside_create") == "OK");
  CHECK(report.get("abstract_host") == "EPERM");
  CHECK(report.get("abstract_own") == "OK");
  CHECK(report.get("exec_status") == "0");
  CHECK(report.get("exec_CapBnd") == "00000000a80425fb");
  CHECK(report.get("exec_CapEff") == "00000000a80425fb");
  CHECK(report.get("exec_CapInh") == "0000000000000000");
  CHECK(report.get("exec_CapAmb") == "0000000000000000");
  CHECK(report.get("exec_Seccomp") == "2");
  CHECK(report.get("exec_unshare") == "denied");
  CHECK(report.get("memfd_exec") == "OK");
  CHECK(::access((fx.host + "/made-inside").c_str(), F_OK) != 0);
  CHECK(report.get("chroot_escape") == "OK");  // climbing works, but only to the pivoted root
  CHECK(report.get("chroot_host_visible") == "ENOENT");
  CHECK(report.get("chroot_proc_root") != "OK");
}

TEST_CASE("security: the spectator reads other processes but cannot signal them", "[context][security]") {
  VUNIFY_REQUIRE_ROOT();
  if (vunify::context::landlock_abi() < 6) {
    WARN("skipped: Landlock ABI " << vunify::context::landlock_abi() << " < 6 cannot scope signals");
    return;
  }
  vunify::test::Sleeper guest;
  // A guest process running as the spectator's own uid: only Landlock keeps it out of reach.
  pid_t nobody = ::fork();
  if (nobody == 0) {
    if (::setresgid(vunify::context::kSpectatorId, vunify::context::kSpectatorId, vunify::context::kSpectatorId) != 0 ||
        ::setresuid(vunify::context::kSpectatorId, vunify::context::kSpectatorId, vunify::context::kSpectatorId) != 0)
      _exit(1);
    for (;;) ::pause();
  }
  std::string socket_name = "vunify-test-spectator-" + std::to_string(::getpid());
  int listener = abstract_listener(socket_name);
  auto report = vunify::test::run_child([&](Reporter& r) {
    vunify::context::enter_spectator();
    for (auto [who, pid] : {std::pair<std::string, pid_t>{"root", guest.pid()}, {"nobody", nobody}}) {
      std::string proc = "/proc/" + std::to_string(pid);
      std::ifstream status(proc + "/status");
      std::string first;
      std::getline(status, first);
      r.put(who + "_status_read", first.rfind("Name:", 0) == 0 ? "OK" : "FAILED");
      r.call(who + "_cmdline_read", ::open((proc + "/cmdline").c_str(), O_RDONLY | O_CLOEXEC));
      for (const char* file : {"environ", "maps", "mem", "ns/pid", "fd/0"})
        r.call(who + "_" + file, ::open((proc + "/" + file).c_str(), O_RDONLY | O_CLOEXEC));
      r.call(who + "_kill", ::kill(pid, SIGKILL));
      r.call(who + "_kill0", ::kill(pid, 0));
    }
    socklen_t len = 0;
    sockaddr_un addr = abstract_address(socket_name, len);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    r.call("abstract_connect", ::connect(fd, reinterpret_cast<sockaddr*>(&addr), len));
    check_signals(r, guest.pid());
    report_status(r, "");
    r.put("NoNewPrivs", own_status("NoNewPrivs"));
  });
  ::close(listener);
  bool nobody_alive = ::kill(nobody, 0) == 0;
  ::kill(nobody, SIGKILL);
  ::waitpid(nobody, nullptr, 0);
  INFO("child error: " << report.error);
  REQUIRE(report.status == 0);
  for (const char* who : {"root", "nobody"}) {
    INFO(who);
    std::string w = who;
    CHECK(report.get(w + "_status_read") == "OK");
    CHECK(report.get(w + "_cmdline_read") == "OK");
    for (const char* file : {"environ", "maps", "mem", "ns/pid", "fd/0"}) {
      INFO(file);
      CHECK(report.get(w + "_" + file) == "EACCES");
    }
    CHECK(report.get(w + "_kill") == "EPERM");
    CHECK(report.get(w + "_kill0") == "EPERM");
  }
  CHECK(report.get("abstract_connect") == "EPERM");
  CHECK(report.get("ptrace_outside") == "EPERM");
  CHECK(report.get("kill_own_child") == "OK");
  CHECK(guest.alive());
  CHECK(nobody_alive);
  for (const char* set : {"CapBnd", "CapPrm", "CapEff", "CapInh", "CapAmb"}) {
    INFO(set);
    CHECK(report.get(set) == "0000000000000000");
  }
  CHECK(report.get("NoNewPrivs") == "1");
}
