// Crashes at forced points (VUNIFY_TEST_CRASH_AT, os/crash_point.hpp): after a command dies of
// SIGKILL anywhere, the next command that changes the pool starts from a consistent pool, and
// fsck says so.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <string>

#include "tests/helpers.hpp"
#include "tests/scratch_pool.hpp"

using namespace vunify;

namespace {

[[maybe_unused]] bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Runs the CLI with the crash hook set; the command must die of SIGKILL there.
void crash_at(const std::string& pool, const std::string& point, const std::string& args) {
  test::CmdResult r = test::run("VUNIFY_TEST_CRASH_AT=" + point + " " + std::string(VUNIFY_BIN) + " --pool '" + pool + "' " + args);
  INFO(point << ": " << args << "\n" << r.out);
  REQUIRE(r.status == 128 + 9);
}

// A guest of three pairs of equal files: unify makes three objects only it uses.
void make_pairs_guest(const std::string& dir, const std::string& tag) {
  for (int i = 0; i < 3; ++i)
    for (const char* copy : {"a", "b"})
      test::write_file(dir + "/f" + std::to_string(i) + copy, tag + " content " + std::to_string(i));
}

size_t count_store_entries(const std::string& pool) {
  test::CmdResult r = test::run("find '" + pool + "/store/objects' -type f | wc -l");
  return std::stoul(r.out);
}

}  // namespace

TEST_CASE("a gc killed between unlinks does not break the next unify", "[crash]") {
  VUNIFY_REQUIRE_ROOT();
  test::ScratchPool sp;
  make_pairs_guest(sp.dir / "src1", "one");
  make_pairs_guest(sp.dir / "src3", "three");
  sp.ok("guest add g1 --from '" + sp.dir / "src1" + "'");
  sp.ok("guest add g3 --from '" + sp.dir / "src3" + "'");
  sp.ok("unify --all");
  sp.ok("guest rm g3");
  crash_at(sp.pool, "gc.unlink:2", "gc");  // one of g3's three objects removed
  sp.ok("guest add g3 --from '" + sp.dir / "src3" + "'");
  sp.ok("unify --all");
  test::CmdResult fsck = test::vunify(sp.pool, "fsck");
  INFO(fsck.out);
  CHECK(fsck.status == 0);
  CHECK(count_store_entries(sp.pool) == 6);
}

namespace {

// A tar of `files` distinct small files.
std::string make_archive(const test::TempDir& dir, const std::string& tag, int files) {
  std::string src = dir / ("tree-" + tag);
  for (int i = 0; i < files; ++i) test::write_file(src + "/usr/share/f" + std::to_string(i), tag + " file " + std::to_string(i));
  std::string tar = dir / (tag + ".tar");
  REQUIRE(test::run("tar -C '" + src + "' -cf '" + tar + "' .").status == 0);
  return tar;
}

size_t count_lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

bool has_dot_entries(const std::string& dir) {
  return test::run("ls -A '" + dir + "' | grep -q '^\\.'").status == 0;
}

}  // namespace

TEST_CASE("a killed template import: fsck says so briefly, recovery removes it, a re-import does not duplicate",
          "[crash][template]") {
  VUNIFY_REQUIRE_ROOT();
  test::ScratchPool sp;
  std::string tar = make_archive(sp.dir, "t", 40);
  crash_at(sp.pool, "import.object:25", "template import T '" + tar + "'");
  REQUIRE(has_dot_entries(sp.pool + "/templates"));
  REQUIRE(count_store_entries(sp.pool) == 25);

  test::CmdResult fsck = test::vunify(sp.pool, "fsck");
  INFO(fsck.out);
  CHECK(fsck.status == 3);
  CHECK(contains(fsck.out, "templates/.new-T-"));
  CHECK(contains(fsck.out, "25 store entries are not in the index"));
  CHECK(count_lines(fsck.out) <= 6);  // one line per leftover, not one per store entry

  sp.ok("template import T '" + tar + "'");  // recovery first: the leftover and its orphans go
  CHECK_FALSE(has_dot_entries(sp.pool + "/templates"));
  CHECK(count_store_entries(sp.pool) == 40);
  sp.ok("fsck");

  // Leftovers never pin objects that gc could free.
  std::string tar2 = make_archive(sp.dir, "u", 30);
  crash_at(sp.pool, "import.object:20", "template import U '" + tar2 + "'");
  sp.ok("gc");
  CHECK_FALSE(has_dot_entries(sp.pool + "/templates"));
  CHECK(count_store_entries(sp.pool) == 40);
  sp.ok("fsck");
}

TEST_CASE("gc --dry-run changes nothing on disk, even after a crash left orphans", "[crash][gc]") {
  VUNIFY_REQUIRE_ROOT();
  test::ScratchPool sp;
  make_pairs_guest(sp.dir / "src1", "one");
  sp.ok("guest add g1 --from '" + sp.dir / "src1" + "'");
  sp.ok("unify --all");
  std::string tar = make_archive(sp.dir, "t", 20);
  crash_at(sp.pool, "import.object:10", "template import T '" + tar + "'");
  auto pool_state = [&] {
    return test::run("cd '" + sp.pool + "' && find . ! -name vunify.db-shm -printf '%p %y %n %i %s %T@\\n' | sort && md5sum vunify.db; test ! -e vunify.db-wal || md5sum vunify.db-wal").out;
  };
  std::string before = pool_state();
  test::CmdResult dry = test::vunify(sp.pool, "gc --dry-run");
  INFO(dry.out);
  CHECK(dry.status == 0);
  CHECK(pool_state() == before);
}

namespace {

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// Every guest of the batch G-01..G-06 is there, registered and configured, or none of it is.
void check_batch(const test::ScratchPool& sp, bool whole) {
  test::CmdResult list = test::vunify(sp.pool, "guest list");
  INFO(list.out);
  for (int i = 1; i <= 6; ++i) {
    std::string g = "G-0" + std::to_string(i);
    INFO(g);
    CHECK(exists(sp.backing(g)) == whole);
    CHECK(exists(sp.pool + "/etc/" + g + ".toml") == whole);
    CHECK(exists(sp.pool + "/links/" + g) == whole);  // the template has a hard-link group
    CHECK(contains(list.out, g) == whole);
  }
  CHECK_FALSE(has_dot_entries(sp.pool + "/backing"));
  CHECK_FALSE(has_dot_entries(sp.pool + "/etc"));
  test::CmdResult fsck = test::vunify(sp.pool, "fsck");
  INFO(fsck.out);
  CHECK(fsck.status == 0);
}

}  // namespace

TEST_CASE("guest create --count is all or nothing at every forced crash point", "[crash][provision]") {
  VUNIFY_REQUIRE_ROOT();
  test::ScratchPool sp;
  std::string src = sp.dir / "tree-t";
  for (int i = 0; i < 5; ++i) test::write_file(src + "/usr/bin/f" + std::to_string(i), "file " + std::to_string(i));
  REQUIRE(::link((src + "/usr/bin/f0").c_str(), (src + "/usr/bin/f0-link").c_str()) == 0);
  REQUIRE(test::run("tar -C '" + src + "' -cf '" + sp.dir / "t.tar" + "' .").status == 0);
  sp.ok("template import T '" + sp.dir / "t.tar" + "'");

  for (const char* point : {"create.rename:1", "create.rename:4", "create.config:1", "create.config:3", "create.links",
                            "create.commit"}) {
    SECTION(point) {
      crash_at(sp.pool, point, "guest create G --template T --count 6");
      test::CmdResult fsck = test::vunify(sp.pool, "fsck");
      INFO(fsck.out);
      CHECK(fsck.status == 3);
      CHECK(contains(fsck.out, "interrupted guest create of 6 guest(s) (G-01..G-06)"));
      CHECK(count_lines(fsck.out) <= 4);
      sp.ok("gc");  // any command that changes the pool rolls the batch back first
      check_batch(sp, false);
      sp.ok("guest create G --template T --count 6");
      check_batch(sp, true);
    }
  }
  SECTION("a stale link record is never adopted by guest add") {
    crash_at(sp.pool, "create.links", "guest create G --template T --count 6");
    test::write_file(sp.dir / "plain/etc/hostname", "plain\n");
    sp.ok("guest add G-01 --from '" + sp.dir / "plain" + "'");
    CHECK_FALSE(exists(sp.pool + "/links/G-01"));
    test::CmdResult fsck = test::vunify(sp.pool, "fsck");
    INFO(fsck.out);
    CHECK(fsck.status == 0);
  }
}
