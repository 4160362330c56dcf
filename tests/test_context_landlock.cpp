// One Landlock domain shared by the processes a holder forks (the guest's init and later
// exec'd commands) against separately made domains, which cannot signal each other.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "context/landlock.hpp"
#include "context/security.hpp"
#include "os/error.hpp"
#include "tests/child_report.hpp"
#include "tests/helpers.hpp"
#include "tests/test_fs_support.hpp"

using vunify::test::Reporter;

namespace {

pid_t spawn_pause() {
  pid_t pid = ::fork();
  if (pid == 0) {
    for (;;) ::pause();
  }
  return pid;
}

// Runs `body` in a forked child of this process and waits for it.
template <class F>
void in_child(F body) {
  pid_t pid = ::fork();
  if (pid == 0) {
    body();
    _exit(0);
  }
  ::waitpid(pid, nullptr, 0);
}

void reap(pid_t pid) {
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

}  // namespace

TEST_CASE("landlock: processes forked from the guest's domain share it: a domain of their own is cut off", "[context][security][landlock]") {
  VUNIFY_REQUIRE_ROOT();
  if (vunify::context::landlock_abi() < 6) {
    WARN("skipped: Landlock ABI " << vunify::context::landlock_abi() << " < 6 cannot scope signals");
    return;
  }
  vunify::test::TempDir dir;
  vunify::test::write_file(dir / "root/inside", "guest file\n");
  vunify::test::write_file(dir / "host/secret", "host secret\n");
  auto report = vunify::test::run_child([&](Reporter& r) {
    int root = ::open((dir / "root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) vunify::os::throw_errno("open", dir / "root");
    vunify::context::enter_guest_domain(root);  // the holder
    pid_t init = spawn_pause();
    in_child([&] {  // an exec'd command, forked by the holder
      r.call("sibling_kill_init", ::kill(init, 0));
      r.call("sibling_open_inside", ::open((dir / "root/inside").c_str(), O_RDONLY | O_CLOEXEC));
      r.call("sibling_open_host", ::open((dir / "host/secret").c_str(), O_RDONLY | O_CLOEXEC));
    });
    in_child([&] {  // a command that made its own (nested) domain
      vunify::context::enter_guest_domain(root);
      r.call("own_domain_kill_init", ::kill(init, 0));
    });
    pid_t own = ::fork();
    if (own == 0) {
      vunify::context::enter_guest_domain(root);
      for (;;) ::pause();
    }
    r.call("init_kill_nested", ::kill(own, 0));  // the enclosing domain may signal a nested one
    reap(own);
    r.call("holder_kill_init", ::kill(init, SIGKILL));
    ::waitpid(init, nullptr, 0);
  });
  INFO("child error: " << report.error);
  REQUIRE(report.status == 0);
  CHECK(report.get("sibling_kill_init") == "OK");
  CHECK(report.get("sibling_open_inside") == "OK");
  CHECK(report.get("sibling_open_host") == "EACCES");
  CHECK(report.get("own_domain_kill_init") == "EPERM");
  CHECK(report.get("init_kill_nested") == "OK");
  CHECK(report.get("holder_kill_init") == "OK");
}

TEST_CASE("landlock: a guest on its FUSE view works beneath its root, the pool's backing tree is out of reach", "[context][security][landlock]") {
  VUNIFY_REQUIRE_FUSE();
  if (vunify::context::landlock_abi() == 0) {
    WARN("skipped: no Landlock in this kernel");
    return;
  }
  vunify::test::ViewPool vp(1);
  std::string root = vp.root("g1"), backing = vp.backing("g1");
  auto report = vunify::test::run_child([&](Reporter& r) {
    int leaked = ::open(backing.c_str(), O_RDONLY | O_DIRECTORY);  // the host side of this very guest
    if (leaked < 0) vunify::os::throw_errno("open", backing);
    if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount(root.c_str(), root.c_str(), nullptr, MS_BIND, nullptr) != 0 || ::chdir(root.c_str()) != 0 ||
        ::syscall(SYS_pivot_root, ".", ".") != 0 || ::umount2(".", MNT_DETACH) != 0 || ::chdir("/") != 0)
      vunify::os::throw_errno("pivot into the view", root);
    vunify::context::SecurityProfile profile;
    profile.seccomp = false;  // Landlock on FUSE is what this test is about
    vunify::context::apply_security(profile);
    r.call("read", ::open("/etc/hostname", O_RDONLY | O_CLOEXEC));
    int fd = ::open("/data/new", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    r.call("create", fd);
    r.call("write", ::write(fd, "x", 1));
    r.call("ftruncate", ::ftruncate(fd, 0));
    r.call("mkdir", ::mkdir("/var/lib/newdir", 0755));
    r.call("rename_across", ::rename("/data/new", "/var/lib/newdir/moved"));  // LANDLOCK_ACCESS_FS_REFER
    r.call("link_across", ::link("/var/lib/newdir/moved", "/etc/linked"));
    r.call("symlink", ::symlink("moved", "/var/lib/newdir/sym"));
    r.call("truncate", ::truncate("/data/big.txt", 10));
    r.call("unlink", ::unlink("/etc/linked"));
    r.call("leaked_backing", ::openat(leaked, "etc/hostname", O_RDONLY | O_CLOEXEC));
    r.call("leaked_backing_create", ::openat(leaked, "planted", O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
  });
  INFO("child error: " << report.error);
  REQUIRE(report.status == 0);
  for (const char* op : {"read", "create", "write", "ftruncate", "mkdir", "rename_across", "link_across", "symlink", "truncate", "unlink"}) {
    INFO(op);
    CHECK(report.get(op) == "OK");
  }
  CHECK(report.get("leaked_backing") == "EACCES");
  CHECK(report.get("leaked_backing_create") == "EACCES");
  CHECK(::access((backing + "/planted").c_str(), F_OK) != 0);
  CHECK(vunify::test::content_of(root + "/var/lib/newdir/moved") == "");
}

TEST_CASE("landlock: the domain handles every filesystem right of the kernel's ABI, older ABIs get less", "[context][security][landlock]") {
  using vunify::context::landlock_rights;
  CHECK(landlock_rights(1).fs == 0x1fff);
  CHECK(landlock_rights(2).fs == 0x3fff);
  CHECK(landlock_rights(4).fs == 0x7fff);
  CHECK(landlock_rights(5).fs == 0xffff);
  CHECK(landlock_rights(5).scoped == 0);
  CHECK(landlock_rights(7).scoped == 3);  // signals and abstract unix sockets
  int abi = vunify::context::landlock_abi();
  if (abi == 0) {
    WARN("skipped against the kernel: no Landlock");
    return;
  }
  // The kernel takes exactly these rights: one more filesystem bit or scope is unknown to it.
  struct {
    uint64_t fs, net, scoped;
  } attr{landlock_rights(abi).fs, 0, landlock_rights(abi).scoped};
  long fd = ::syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
  CHECK(fd >= 0);
  if (fd >= 0) ::close(static_cast<int>(fd));
  attr.fs = (attr.fs << 1) | 1;
  CHECK(::syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0) == -1);
  CHECK(errno == EINVAL);
  if (abi >= 6) {
    attr = {landlock_rights(abi).fs, 0, (landlock_rights(abi).scoped << 1) | 1};
    CHECK(::syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0) == -1);
    CHECK(errno == EINVAL);
  }
}
