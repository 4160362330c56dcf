// Escape attempts against the runtime's own parts (the security profile has its own tests):
// mount targets redirected by guest symlinks, PID 1's executable, leaked fds and directories.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "tests/context_guest.hpp"

namespace vunify::test {

TEST_CASE("context: a guest symlink cannot redirect a mount of the start sequence onto the host", "[context][escape]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("link", false);
  std::string tree = g.dir / "src";
  make_busybox_guest(tree);
  mkdirs(g.dir / "host-target");
  const char* target = GENERATE("proc", "dev", "sys");
  REQUIRE(::rmdir((tree + "/" + target).c_str()) == 0);
  REQUIRE(::symlink((g.dir / "host-target").c_str(), (tree + "/" + target).c_str()) == 0);
  g.ok("guest add " + g.name + " --from '" + tree + "'");
  auto r = vunify(g.pool, "start " + g.name + " -- /bin/true");
  INFO(target << ": " << r.out);
  CHECK(r.status != 0);
  CHECK(r.out.find(std::string("/") + target) != std::string::npos);
  CHECK(!mounted(g.dir / "host-target"));
  CHECK(!g.state());
  CHECK(run("find /sys/fs/cgroup -type d -path '*/vunify/" + g.name + "'").out.empty());
}

TEST_CASE("context: PID 1 runs from a sealed copy and no host fd or directory reaches the guest", "[context][escape]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("leak");
  struct stat before;
  REQUIRE(::stat(VUNIFY_BIN, &before) == 0);
  g.ok("start " + g.name + " -- /bin/sleep 1000");
  // Looked at from the host: with the security profile, a guest's exec'd command is in a Landlock
  // domain of its own and may not read PID 1's /proc links.
  auto s = g.state();
  REQUIRE(s);
  std::string pid1 = "/proc/" + std::to_string(s->pid1);
  // CVE-2019-5736: /proc/1/exe is a sealed memfd, not the host's binary
  CHECK(run("readlink " + pid1 + "/exe").out.find("memfd:vunify-init") != std::string::npos);
  CHECK(g.sh("echo x >> /proc/1/exe").status != 0);
  CHECK(g.sh("echo x > /proc/1/exe").status != 0);
  struct stat after;
  REQUIRE(::stat(VUNIFY_BIN, &after) == 0);
  CHECK(after.st_mtime == before.st_mtime);
  CHECK(after.st_size == before.st_size);
  // CVE-2024-21626: only 0-2 are open in PID 1, its command and an exec'd command; their
  // directories are the guest's
  for (pid_t p : processes_in_namespace(s->context_id))
    CHECK(run("ls /proc/" + std::to_string(p) + "/fd").out == "0\n1\n2\n");
  CHECK(g.sh("ls /proc/$$/fd; true").out == "0\n1\n2\n");  // `; true`: sh forks ls instead of becoming it
  CHECK(g.sh("readlink /proc/$$/cwd; readlink /proc/$$/root").out == "/root\n/\n");
  struct stat root, cwd1, root1;
  REQUIRE(::stat((g.pool + "/guests/" + g.name + "/root").c_str(), &root) == 0);
  REQUIRE(::stat((pid1 + "/cwd").c_str(), &cwd1) == 0);
  REQUIRE(::stat((pid1 + "/root").c_str(), &root1) == 0);
  CHECK((cwd1.st_dev == root.st_dev && cwd1.st_ino == root.st_ino));
  CHECK((root1.st_dev == root.st_dev && root1.st_ino == root.st_ino));
  CHECK(g.sh("test -e /proc/1/root" + g.pool).status == 1);
}

TEST_CASE("context: the guest's /sys and cgroups give no release_agent and cannot be written", "[context][escape]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("sysfs");
  g.ok("start " + g.name + " -- /bin/sleep 1000");
  // CVE-2022-0492: each hierarchy shows the guest's own cgroup, never a root with release_agent
  CHECK(g.sh("ls /sys/fs/cgroup/*/release_agent 2>/dev/null | wc -l").out == "0\n");
  CHECK(g.sh("ls /sys/fs/cgroup | wc -l").status == 0);
  CHECK(g.sh("echo 1 > /sys/kernel/mm/ksm/run").status != 0);
  CHECK(g.sh("touch /sys/fs/cgroup/new").status != 0);
  CHECK(g.sh("echo 1 > /proc/sys/vm/drop_caches").status != 0);
  CHECK(g.sh("echo 1 > /proc/sysrq-trigger").status != 0);
  // the controllers are read-only; the hierarchies the guest's init manages are its own
  CHECK(g.sh("mkdir /sys/fs/cgroup/pids/x").status != 0);
  CHECK(g.sh("mkdir /sys/fs/cgroup/unified/x && rmdir /sys/fs/cgroup/unified/x").status == 0);
}

}  // namespace vunify::test
