// `mount` against pool-changing commands (issue 16, part 2; DESIGN invariant 1): a view
// daemon treats every file that is not in the object list it was given as private, so no
// command may turn the guest's files into store objects between `mount` loading that list and
// the view serving. The daemon is held in that gap by the test hook VUNIFY_TEST_MOUNT_GATE.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <string>

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
