// Pool commands racing a guest's view (issue 16, part 2; DESIGN invariant 1):
// - a view daemon treats every file that is not in the object list it was given as private,
//   so no command may turn the guest's files into store objects between `mount` loading that
//   list and the view serving (the daemon is held in that gap by VUNIFY_TEST_MOUNT_GATE);
// - `template from-guest` of a mounted guest whose view breaks shared files meanwhile links
//   only store objects into the template, never the guest's private copies.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include <catch2/catch.hpp>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "tests/test_fs_support.hpp"

using namespace vunify::test;

namespace {

bool wait_for(const std::string& path, int seconds) {
  for (int i = 0; i < seconds * 100; ++i) {
    if (::access(path.c_str(), F_OK) == 0) return true;
    ::usleep(10000);
  }
  return false;
}

// Runs `vunify --pool POOL args` in the background (with `env` before it); its output goes to
// DIR/NAME.out and its exit status to DIR/NAME.rc.
void start(const std::string& dir, const std::string& name, const std::string& env, const std::string& pool,
           const std::string& args) {
  std::string out = dir + "/" + name;
  run("( " + env + " " + VUNIFY_BIN + " --pool '" + pool + "' " + args + " > '" + out + ".out' 2>&1; echo $? > '" + out +
      ".rc.tmp'; mv '" + out + ".rc.tmp' '" + out + ".rc' ) > /dev/null 2>&1 &");
}

int status_of(const std::string& dir, const std::string& name) {
  std::ifstream in(dir + "/" + name + ".rc");
  int rc = -1;
  in >> rc;
  return rc;
}

// Opens the gate and waits for the held mount to finish, however the test ends (before the
// MountGuard declared ahead of it unmounts).
struct Gate {
  std::string path, dir;
  ~Gate() {
    std::ofstream(path).put('\n');
    wait_for(dir + "/mount.rc", 70);
  }
};

}  // namespace

TEST_CASE("unify cannot slip between mount loading the object list and the view serving", "[fs][race]") {
  VUNIFY_REQUIRE_FUSE();
  TempDir tmp;
  std::string pool = tmp / "pool";
  MountGuard guard(pool, tmp.path());
  REQUIRE(cli(pool, "init").status == 0);
  const std::string content(4000, 'c');
  for (const char* g : {"A", "B"}) {
    std::string src = tmp / (std::string("src-") + g);
    write_file(src + "/file", content);
    REQUIRE(cli(pool, std::string("guest add ") + g + " --from '" + src + "'").status == 0);
  }
  Gate gate{tmp / "gate", tmp.path()};
  start(tmp.path(), "mount", "VUNIFY_TEST_MOUNT_GATE='" + gate.path + "'", pool, "mount A");
  REQUIRE(wait_for(pool + "/log/A.pid", 30));  // the daemon is held in the gap
  start(tmp.path(), "unify", "", pool, "unify A B");
  ::usleep(1500000);
  CHECK(::access((tmp / "unify.rc").c_str(), F_OK) != 0);  // unify waits for the mount
  std::ofstream(gate.path).put('\n');
  REQUIRE(wait_for(tmp / "mount.rc", 70));
  CHECK(status_of(tmp.path(), "mount") == 0);
  REQUIRE(wait_for(tmp / "unify.rc", 30));
  std::string unify_out = read_file(tmp / "unify.out");
  INFO("unify: " << unify_out);
  CHECK(status_of(tmp.path(), "unify") == 2);
  CHECK(unify_out.find("'A' is mounted") != std::string::npos);
  Snapshot store_before = store_snapshot(pool);
  write_at(pool + "/guests/A/root/file", "written through the view", 0);
  CHECK(diff(store_before, store_snapshot(pool)).empty());
  CHECK(read_file(pool + "/backing/B/file") == content);
  auto verify = cli(pool, "verify");
  INFO(verify.out);
  CHECK(verify.status == 0);
}

TEST_CASE("template from-guest of a mounted guest whose view breaks files meanwhile links only store objects",
          "[fs][race][template]") {
  VUNIFY_REQUIRE_FUSE();
  TempDir tmp;
  std::string pool = tmp / "pool";
  MountGuard guard(pool, tmp.path());
  REQUIRE(cli(pool, "init").status == 0);
  constexpr int kFiles = 400;
  auto name = [](int i) { return "d/f" + std::to_string(1000 + i); };
  for (const char* g : {"A", "B"}) {
    std::string src = tmp / (std::string("src-") + g);
    for (int i = 0; i < kFiles; ++i) write_file(src + "/" + name(i), "file " + std::to_string(i) + "\n");
    REQUIRE(cli(pool, std::string("guest add ") + g + " --from '" + src + "'").status == 0);
  }
  REQUIRE(cli(pool, "unify --all").status == 0);
  // A's first file in name order is big and private: the template copies it (a while) after
  // listing d/ and before linking the shared files listed with it.
  write_file(pool + "/backing/A/d/a-big", std::string(48 << 20, 'x'));
  REQUIRE(cli(pool, "mount A").status == 0);
  // A writer in guest A breaks the shared files, last name first, until the template is made.
  std::string stop = tmp / "stop";
  pid_t writer = ::fork();
  REQUIRE(writer >= 0);
  if (writer == 0) {
    for (int i = kFiles - 1; i >= 0 && ::access(stop.c_str(), F_OK) != 0; --i) {
      try {
        write_at(pool + "/guests/A/root/" + name(i), "guest A wrote this", 0, O_APPEND);
      } catch (...) {
        _exit(1);
      }
    }
    _exit(0);
  }
  auto made = cli(pool, "template from-guest T A");
  std::ofstream(stop).put('\n');
  int status = 0;
  ::waitpid(writer, &status, 0);
  INFO(made.out);
  REQUIRE(made.status == 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  int private_linked = 0, broken = 0;
  for (int i = 0; i < kFiles; ++i) {
    struct stat tpl = stat_of(pool + "/templates/T/root/" + name(i)), a = stat_of(pool + "/backing/A/" + name(i)),
                b = stat_of(pool + "/backing/B/" + name(i));
    broken += a.st_ino != b.st_ino;
    private_linked += tpl.st_ino == a.st_ino && a.st_ino != b.st_ino;
  }
  INFO(broken << " files broken by the writer");
  CHECK(broken > 0);
  CHECK(private_linked == 0);
  auto fsck = cli(pool, "fsck");
  INFO(fsck.out);
  CHECK(fsck.status == 0);
  Snapshot store_before = store_snapshot(pool);
  write_at(pool + "/guests/A/root/" + name(kFiles - 1), "and more", 0, O_APPEND);  // private now: no break
  CHECK(diff(store_before, store_snapshot(pool)).empty());
  CHECK(cli(pool, "verify").status == 0);
}

TEST_CASE("guest clone of a mounted guest is refused and changes nothing", "[fs][race][provision]") {
  VUNIFY_REQUIRE_FUSE();
  TempDir tmp;
  std::string pool = tmp / "pool";
  MountGuard guard(pool, tmp.path());
  REQUIRE(cli(pool, "init").status == 0);
  write_file(tmp / "src/file", "content\n");
  REQUIRE(cli(pool, "guest add A --from '" + tmp / "src" + "'").status == 0);
  REQUIRE(cli(pool, "mount A").status == 0);
  auto r = cli(pool, "guest clone A C");
  INFO(r.out);
  CHECK(r.status == 2);
  CHECK(r.out.find("guest 'A' is mounted") != std::string::npos);
  CHECK(::access((pool + "/backing/C").c_str(), F_OK) != 0);
  CHECK(cli(pool, "guest list --json").out.find("\"C\"") == std::string::npos);
}
