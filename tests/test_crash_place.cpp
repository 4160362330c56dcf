// The window between a tree's rename (into place, or out of it) and the index commit that
// registers (or drops) it, for every command that has one: template import/from-guest, template
// rm, guest add (copy and --move), guest rm, guest create. Killed there (VUNIFY_TEST_CRASH_AT),
// the next command that changes the pool (here gc) leaves the whole tree registered or none of
// it, no store object lost, and fsck exits 0.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <string>

#include "tests/helpers.hpp"
#include "tests/scratch_pool.hpp"

using namespace vunify;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

void crash_at(const std::string& pool, const std::string& point, const std::string& args) {
  test::CmdResult r = test::run("VUNIFY_TEST_CRASH_AT=" + point + " " + std::string(VUNIFY_BIN) + " --pool '" + pool + "' " + args);
  INFO(point << ": " << args << "\n" << r.out);
  REQUIRE(r.status == 128 + 9);
}

size_t count_store_entries(const std::string& pool) {
  return std::stoul(test::run("find '" + pool + "/store/objects' -type f | wc -l").out);
}

bool has_dot_entries(const std::string& dir) { return test::run("ls -A '" + dir + "' | grep -q '^\\.'").status == 0; }

// 30 distinct files (30 objects) in `dir`.
void make_tree(const std::string& dir) {
  for (int i = 0; i < 30; ++i) test::write_file(dir + "/usr/share/f" + std::to_string(i), "file " + std::to_string(i) + "\n");
}

void check_consistent(const test::ScratchPool& sp) {
  CHECK_FALSE(has_dot_entries(sp.pool + "/templates"));
  CHECK_FALSE(has_dot_entries(sp.pool + "/backing"));
  test::CmdResult fsck = test::vunify(sp.pool, "fsck");
  INFO(fsck.out);
  CHECK(fsck.status == 0);
  test::CmdResult verify = test::vunify(sp.pool, "verify");
  INFO(verify.out);
  CHECK(verify.status == 0);
}

// Template T is there whole: registered, its 30 files store objects, and guests can be made.
void check_template_whole(const test::ScratchPool& sp) {
  CHECK(contains(test::vunify(sp.pool, "template list").out, "T "));
  CHECK(test::run("find '" + sp.pool + "/templates/T/root' -type f -links +1 | wc -l").out == "30\n");
  CHECK(count_store_entries(sp.pool) == 30);
  sp.ok("guest create g --template T");
  CHECK(test::read_file(sp.backing("g", "usr/share/f7")) == "file 7\n");
  check_consistent(sp);
}

}  // namespace

TEST_CASE("a template import killed between the index commit and the rename into place", "[crash][template]") {
  VUNIFY_REQUIRE_ROOT();
  test::ScratchPool sp;
  make_tree(sp.dir / "src");
  SECTION("template import") {
    REQUIRE(test::run("tar -C '" + sp.dir / "src" + "' -cf '" + sp.dir / "t.tar" + "' .").status == 0);
    crash_at(sp.pool, "template.place", "template import T '" + sp.dir / "t.tar" + "'");
  }
  SECTION("template from-guest") {
    sp.ok("guest add a --from '" + sp.dir / "src" + "'");
    crash_at(sp.pool, "template.place", "template from-guest T a");
  }
  test::CmdResult fsck = test::vunify(sp.pool, "fsck");  // reads only: one line says what happened
  INFO(fsck.out);
  CHECK(fsck.status == 3);
  CHECK(contains(fsck.out, "template 'T' was being put in place by an interrupted template import"));
  CHECK(std::count(fsck.out.begin(), fsck.out.end(), '\n') <= 3);
  sp.ok("gc");  // any command that changes the pool finishes it first
  check_template_whole(sp);
}

TEST_CASE("a template rm killed between the index commit and the removal", "[crash][template]") {
  VUNIFY_REQUIRE_ROOT();
  test::ScratchPool sp;
  make_tree(sp.dir / "src");
  REQUIRE(test::run("tar -C '" + sp.dir / "src" + "' -cf '" + sp.dir / "t.tar" + "' .").status == 0);
  sp.ok("template import T '" + sp.dir / "t.tar" + "'");
  sp.ok("template import K '" + sp.dir / "t.tar" + "'");  // shares every object with T
  crash_at(sp.pool, "template.rm", "template rm T");
  sp.ok("gc");
  CHECK_FALSE(contains(test::vunify(sp.pool, "template list").out, "T "));
  CHECK_FALSE(exists(sp.pool + "/templates/T"));
  CHECK(count_store_entries(sp.pool) == 30);  // K's objects all stay
  check_consistent(sp);
  sp.ok("template import T '" + sp.dir / "t.tar" + "'");  // the name is free again
}

TEST_CASE("a guest add killed between the rename into place and the index commit", "[crash][guest]") {
  VUNIFY_REQUIRE_ROOT();
  test::ScratchPool sp;
  make_tree(sp.dir / "src");
  bool move = GENERATE(false, true);
  INFO("--move " << move);
  std::string from = move ? sp.dir / "moved" : sp.dir / "src";
  if (move) REQUIRE(test::run("cp -a '" + sp.dir / "src" + "' '" + from + "'").status == 0);
  crash_at(sp.pool, "guest.add", "guest add g --from '" + from + "'" + (move ? " --move" : ""));
  sp.ok("gc");
  test::CmdResult list = test::vunify(sp.pool, "guest list");
  INFO(list.out);
  if (exists(sp.backing("g"))) {
    CHECK(contains(list.out, "g "));
    CHECK(test::read_file(sp.backing("g", "usr/share/f7")) == "file 7\n");
  } else {
    CHECK_FALSE(contains(list.out, "g "));
    CHECK(exists(from + "/usr/share/f7"));  // a move that did not happen left the source alone
  }
  check_consistent(sp);
  if (!exists(sp.backing("g"))) sp.ok("guest add g --from '" + from + "'" + (move ? " --move" : ""));
  sp.ok("unify --all");
  check_consistent(sp);
}

TEST_CASE("a guest rm killed between the index commit and the removal", "[crash][guest]") {
  VUNIFY_REQUIRE_ROOT();
  test::ScratchPool sp;
  make_tree(sp.dir / "src");
  sp.ok("guest add a --from '" + sp.dir / "src" + "'");
  sp.ok("guest add b --from '" + sp.dir / "src" + "'");
  sp.ok("unify --all");
  REQUIRE(count_store_entries(sp.pool) == 30);
  test::write_file(sp.pool + "/etc/a.toml", "hostname = \"a\"\n");
  crash_at(sp.pool, "guest.rm", "guest rm a");
  sp.ok("gc");
  CHECK_FALSE(contains(test::vunify(sp.pool, "guest list").out, "a "));
  CHECK_FALSE(exists(sp.backing("a")));
  CHECK_FALSE(exists(sp.pool + "/etc/a.toml"));
  CHECK_FALSE(exists(sp.pool + "/guests/a"));
  CHECK(count_store_entries(sp.pool) == 30);  // b's objects all stay
  CHECK(test::read_file(sp.backing("b", "usr/share/f7")) == "file 7\n");
  check_consistent(sp);
}

TEST_CASE("a guest clone killed between the rename into place and the index commit", "[crash][guest]") {
  VUNIFY_REQUIRE_ROOT();
  test::ScratchPool sp;
  make_tree(sp.dir / "src");
  sp.ok("guest add a --from '" + sp.dir / "src" + "'");
  sp.ok("guest add a2 --from '" + sp.dir / "src" + "'");
  sp.ok("unify --all");
  crash_at(sp.pool, "create.commit", "guest clone a b");
  sp.ok("gc");  // the batch of one is rolled back
  CHECK_FALSE(contains(test::vunify(sp.pool, "guest list").out, "b "));
  CHECK_FALSE(exists(sp.backing("b")));
  CHECK(count_store_entries(sp.pool) == 30);
  check_consistent(sp);
  sp.ok("guest clone a b");
  check_consistent(sp);
}
