// A view daemon stopped by SIGSTOP answers nothing, and any system call into its mount (a stat
// of the mount point included) blocks until it continues. No command may hang on it: liveness
// comes from the mount table and the daemon's /proc state (os/view_probe.hpp). guest list says
// the daemon is stopped and what to do, unify of that guest refuses saying so, other guests and
// pool-wide commands proceed, and umount unmounts it without waiting for the daemon.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <string>

#include "tests/test_fs_support.hpp"

using namespace vunify::test;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Stops a daemon; continues it when destroyed (before the pool's views are unmounted).
struct Stopped {
  pid_t pid;
  explicit Stopped(pid_t p) : pid(p) { REQUIRE(::kill(pid, SIGSTOP) == 0); }
  ~Stopped() { ::kill(pid, SIGCONT); }
};

char proc_state(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(f, line);
  auto close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() ? 0 : line[close + 2];
}

bool mounted(const std::string& path) {
  return run("grep -q ' " + path + " ' /proc/self/mountinfo").status == 0;
}

// The CLI under a timeout: 124 means it hung.
CmdResult bounded(const ViewPool& v, const std::string& args) {
  return run("timeout 20 " + std::string(VUNIFY_BIN) + " --pool '" + v.pool + "' " + args);
}

}  // namespace

TEST_CASE("a stopped view daemon makes no command hang", "[fs][view][stale]") {
  VUNIFY_REQUIRE_FUSE();
  ViewPool v(2);
  CmdResult um2 = cli(v.pool, "umount g2");
  REQUIRE(um2.status == 0);
  write_file(v.backing("g2", "new/one"), std::string(3000, 's'));
  write_file(v.backing("g2", "new/two"), std::string(3000, 's'));
  pid_t daemon = std::stoi(read_file(v.pool + "/log/g1.pid"));
  Stopped stop(daemon);
  for (int i = 0; i < 100 && proc_state(daemon) != 'T'; ++i) ::usleep(10000);
  REQUIRE(proc_state(daemon) == 'T');

  CmdResult list = bounded(v, "guest list");
  INFO(list.out);
  CHECK(list.status == 0);
  CHECK(contains(list.out, "daemon stopped (SIGSTOP; 'kill -CONT " + std::to_string(daemon)));
  CHECK(contains(bounded(v, "guest list --json").out, "\"daemon_stopped\": true"));

  CmdResult unify1 = bounded(v, "unify g1");
  INFO(unify1.out);
  CHECK(unify1.status == 2);
  CHECK(contains(unify1.out, "is stopped (SIGSTOP): 'kill -CONT " + std::to_string(daemon) + "' resumes it"));

  CmdResult unify2 = bounded(v, "unify g2 --json");  // a pool-changing command checks every guest's mount
  INFO(unify2.out);
  CHECK(unify2.status == 0);
  CHECK(contains(unify2.out, "\"files_linked\": 1"));

  CmdResult fsck = bounded(v, "fsck");
  INFO(fsck.out);
  CHECK(fsck.status == 0);
  CmdResult repair = bounded(v, "fsck --repair");
  INFO(repair.out);
  CHECK(repair.status == 0);

  CmdResult mount = bounded(v, "mount g1");
  INFO(mount.out);
  CHECK(mount.status == 2);
  CHECK(contains(mount.out, "stopped (SIGSTOP)"));

  CmdResult um = bounded(v, "umount g1");
  INFO(um.out);
  CHECK(um.status == 0);
  CHECK(contains(um.out, "guest g1 unmounted; its view daemon (pid " + std::to_string(daemon) + ") is stopped (SIGSTOP)"));
  CHECK_FALSE(mounted(v.pool + "/guests/g1"));

  ::kill(daemon, SIGCONT);  // it finds its mount gone and exits
  for (int i = 0; i < 300 && ::kill(daemon, 0) == 0 && proc_state(daemon) != 'Z'; ++i) ::usleep(10000);
  CHECK((::kill(daemon, 0) != 0 || proc_state(daemon) == 'Z'));
  CHECK(cli(v.pool, "fsck").status == 0);
}
