// Stale mount state (issue 15, item 4): after a view daemon dies, commands see the guest as
// not mounted (guest list says the daemon is dead), unify works and clears the stale mount,
// and mount options that cannot be applied to a mounted guest are named.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>

#include "tests/test_fs_support.hpp"

using namespace vunify::test;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Waits up to 3 s for the view of `guest` to answer ENOTCONN.
bool wait_stale(const ViewPool& v, const std::string& guest) {
  for (int i = 0; i < 300; ++i) {
    struct stat st;
    if (::stat((v.pool + "/guests/" + guest).c_str(), &st) != 0 && (errno == ENOTCONN || errno == ECONNABORTED)) return true;
    ::usleep(10000);
  }
  return false;
}

}  // namespace

TEST_CASE("a dead view daemon: guest list says so, unify works and clears the stale mount", "[fs][view][stale]") {
  VUNIFY_REQUIRE_FUSE();
  ViewPool v(2);
  auto again = cli(v.pool, "mount g1 --no-passthrough");
  INFO(again.out);
  CHECK(again.status == 2);
  CHECK(contains(again.out, "--no-passthrough not applied to g1"));
  auto daemon = run("cat '" + v.pool + "/log/g1.pid'");
  REQUIRE(daemon.status == 0);
  REQUIRE(::kill(std::stoi(daemon.out), SIGKILL) == 0);
  REQUIRE(wait_stale(v, "g1"));

  auto list = cli(v.pool, "guest list");
  INFO(list.out);
  CHECK(contains(list.out, "dead daemon"));
  auto g1_line = list.out.substr(list.out.find("\ng1 "), list.out.find('\n', list.out.find("\ng1 ") + 1) - list.out.find("\ng1 "));
  CHECK(!contains(g1_line, "mounted"));
  auto json = cli(v.pool, "guest list --json");
  CHECK(contains(json.out, "\"stale_mount\": true"));

  // g2 is still mounted: unify g1 alone.
  write_file(v.backing("g1", "new/one"), std::string(4000, 'n'));
  write_file(v.backing("g1", "new/two"), std::string(4000, 'n'));
  auto unified = cli(v.pool, "unify g1 --json");
  INFO(unified.out);
  CHECK(unified.status == 0);
  CHECK(contains(unified.out, "\"files_linked\": 1"));
  CHECK(!contains(cli(v.pool, "guest list").out, "dead daemon"));
  CHECK(cli(v.pool, "fsck").status == 0);
  auto remount = cli(v.pool, "mount g1");
  INFO(remount.out);
  CHECK(remount.status == 0);
  CHECK(content_of(v.root("g1", "new/two")) == std::string(4000, 'n'));
}
