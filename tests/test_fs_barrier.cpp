// The barrier (DESIGN invariant 7): only the host context passes guests/NAME; a process in
// another pid namespace gets EACCES, even root with all capabilities, and cannot climb out
// of a chroot into the view.
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>

#include "tests/test_fs_support.hpp"

using namespace vunify::test;

namespace {

// Exit codes of the escape attempt, run in a child.
enum Escape { kStoppedByEacces = 10, kEscaped = 11, kSetupFailed = 12, kStoppedOtherwise = 13 };

// chroot into the view's root (as the host), enter a new pid namespace, then the classic
// escape: chroot into a subdirectory (cwd stays outside it) and climb with "..".
int try_chroot_escape(const std::string& view_root, const std::string& host_file, bool new_pidns) {
  if (::chroot(view_root.c_str()) != 0 || ::chdir("/") != 0) return kSetupFailed;
  if (new_pidns && ::unshare(CLONE_NEWPID) != 0) return kSetupFailed;
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::chroot("etc") != 0) _exit(kSetupFailed);
    for (int i = 0; i < 8; ++i)
      if (::chdir("..") != 0) _exit(errno == EACCES ? kStoppedByEacces : kStoppedOtherwise);
    if (::chroot(".") != 0) _exit(kSetupFailed);
    struct stat st;
    _exit(::stat(host_file.c_str(), &st) == 0 ? kEscaped : kStoppedOtherwise);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : kSetupFailed;
}

int run_in_child(const std::string& view_root, const std::string& host_file, bool new_pidns) {
  pid_t pid = ::fork();
  if (pid == 0) _exit(try_chroot_escape(view_root, host_file, new_pidns));
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : kSetupFailed;
}

}  // namespace

TEST_CASE("the barrier denies other pid namespaces and admits the host", "[fs][barrier]") {
  VUNIFY_REQUIRE_FUSE();
  ViewPool v(1);
  std::string in_ns = "unshare -p -f -m --mount-proc ";
  auto denied = run(in_ns + "stat '" + v.root("g1", "etc") + "'");
  CHECK(denied.status != 0);
  CHECK(denied.out.find("Permission denied") != std::string::npos);
  CHECK(run(in_ns + "ls '" + v.pool + "/guests/g1'").out.find("Permission denied") != std::string::npos);
  // host processes pass, before and after denied callers (nothing is cached across callers)
  CHECK(run("stat '" + v.root("g1", "etc") + "'").status == 0);
  CHECK(run("ls '" + v.pool + "/guests/g1'").out == "root\n");
  CHECK(run(in_ns + "cat '" + v.root("g1", "etc/hostname") + "'").status != 0);
  CHECK(content_of(v.root("g1", "etc/hostname")) == "guest\n");
  // the barrier itself cannot be changed, even by the host
  CHECK(::mkdir((v.pool + "/guests/g1/x").c_str(), 0755) != 0);
  CHECK(errno == EPERM);
}

TEST_CASE("a chroot escape from the view stops at the barrier", "[fs][barrier]") {
  VUNIFY_REQUIRE_FUSE();
  ViewPool v(1);
  std::string pool_file = v.pool + "/vunify.db";  // reachable only outside the guest
  CHECK(run_in_child(v.root("g1"), pool_file, true) == kStoppedByEacces);
  // The same climb from the host context is not restricted by the view (it is the host).
  CHECK(run_in_child(v.root("g1"), pool_file, false) == kEscaped);
}
