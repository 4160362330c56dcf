// One Landlock domain shared by the processes a holder forks (the guest's init and later
// exec'd commands) against separately made domains, which cannot signal each other.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "context/landlock.hpp"
#include "context/security.hpp"
#include "os/error.hpp"
#include "tests/child_report.hpp"
#include "tests/helpers.hpp"

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

TEST_CASE("landlock: processes forked from the guest's domain share it; a domain of their own is cut off", "[context][security][landlock]") {
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
