// fsck against the trees (issue 15, items 2 and 3): templates without trees, records without
// owners, and a missing or damaged index, which every command names and fsck --repair rebuilds.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "tests/helpers.hpp"
#include "tests/scratch_pool.hpp"

using namespace vunify;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Guests a and b (added, equal files), template T (imported), guest c made from T; unified.
struct FullPool : test::ScratchPool {
  std::string src = dir / "src";
  FullPool() {
    test::write_file(src + "/etc/hostname", "guest\n");
    test::write_file(src + "/usr/bin/tool", std::string(5000, 't'), 0755);
    test::write_file(src + "/usr/lib/lib.so", std::string(7000, 'l'), 0644);
    REQUIRE(::link((src + "/usr/bin/tool").c_str(), (src + "/usr/bin/tool2").c_str()) == 0);
    REQUIRE(test::run("tar -C '" + src + "' -cf '" + dir.path() + "/t.tar' .").status == 0);
    ok("guest add a --from '" + src + "'");
    ok("guest add b --from '" + src + "'");
    ok("template import T '" + dir.path() + "/t.tar'");
    ok("guest create c --template T");
    ok("unify --all");
  }
  test::CmdResult run(const std::string& args) const { return test::vunify(pool, args); }
  std::string out(const std::string& args) const {
    auto r = run(args);
    INFO(args << "\n" << r.out);
    REQUIRE(r.status == 0);
    return r.out;
  }
};

}  // namespace

TEST_CASE("fsck finds a template without a tree and records without owners, and --repair fixes them", "[fsck]") {
  VUNIFY_REQUIRE_ROOT();
  FullPool p;
  p.ok("fsck");
  REQUIRE(test::run("rm -rf '" + p.pool + "/templates/T/root'").status == 0);
  test::write_file(p.pool + "/links/ghost", "vunify-links 1");
  test::write_file(p.pool + "/etc/ghost.toml", "hostname = \"ghost\"\n");
  test::mkdirs(p.pool + "/guests/ghost");
  REQUIRE(::rmdir((p.pool + "/guests/a").c_str()) == 0);
  auto found = p.run("fsck");
  INFO(found.out);
  CHECK(found.status == 3);
  CHECK(contains(found.out, "template 'T' is in the index but has no tree"));
  CHECK(contains(found.out, "links/ghost belongs to no guest"));
  CHECK(contains(found.out, "etc/ghost.toml belongs to no guest"));
  CHECK(contains(found.out, "guests/ghost belongs to no guest"));
  CHECK(contains(found.out, "guest 'a' has no mount point"));
  std::string repaired = p.out("fsck --repair");
  CHECK(contains(repaired, "dropped template 'T'"));
  CHECK(contains(repaired, "moved etc/ghost.toml aside"));
  CHECK(contains(p.out("fsck"), "pool is consistent"));
  CHECK(!contains(p.out("template list"), "T "));
  CHECK(::access((p.pool + "/links/ghost").c_str(), F_OK) != 0);
  CHECK(::access((p.pool + "/guests/ghost").c_str(), F_OK) != 0);
  CHECK(::access((p.pool + "/guests/a").c_str(), F_OK) == 0);
  CHECK(test::run("ls '" + p.pool + "/etc/' | grep -q '^ghost.toml.orphaned-'").status == 0);
  // The template can be imported again under its name.
  p.ok("template import T '" + p.dir.path() + "/t.tar'");
  p.ok("guest create d --template T");
  p.ok("fsck");
}

namespace {

void require_rebuilt(FullPool& p, const std::string& objects_before) {
  auto repaired = p.run("fsck --repair");
  INFO(repaired.out);
  REQUIRE(repaired.status == 0);
  CHECK(contains(repaired.out, "rebuilt the index from the trees"));
  CHECK(contains(p.out("fsck"), "pool is consistent"));
  CHECK(contains(p.out("verify"), "all intact"));
  CHECK(contains(p.out("stat --json"), objects_before));
  std::string guests = p.out("guest list --json");
  for (const char* g : {"\"a\"", "\"b\"", "\"c\""}) CHECK(contains(guests, g));
  CHECK(contains(guests, "\"template\": \"T\""));  // from etc/c.toml
  CHECK(contains(p.out("template list"), "T "));
  p.ok("guest add e --from '" + p.src + "'");
  std::string unified = p.out("unify --all --json");
  CHECK(contains(unified, "\"objects_created\": 0"));  // e's files link to the rebuilt objects
  p.ok("guest create f --template T");
  p.ok("fsck");
}

}  // namespace

TEST_CASE("a missing index: every command says to run fsck --repair, which rebuilds it from the trees", "[fsck][index]") {
  VUNIFY_REQUIRE_ROOT();
  FullPool p;
  std::string objects = "\"objects\": ";
  {
    std::string st = p.out("stat --json");
    auto at = st.find(objects);
    REQUIRE(at != std::string::npos);
    objects = st.substr(at, st.find(',', at) - at);
  }
  REQUIRE(::unlink((p.pool + "/vunify.db").c_str()) == 0);
  for (const char* cmd : {"guest list", "stat", "unify --all", "fsck", "verify", "gc", "init", "template list"}) {
    auto r = p.run(cmd);
    INFO(cmd << "\n" << r.out);
    CHECK(r.status == 2);
    CHECK(contains(r.out, "fsck --repair"));
  }
  require_rebuilt(p, objects);
}

TEST_CASE("a damaged index is set aside and rebuilt by fsck --repair", "[fsck][index]") {
  VUNIFY_REQUIRE_ROOT();
  FullPool p;
  std::string objects = "\"objects\": ";
  {
    std::string st = p.out("stat --json");
    auto at = st.find(objects);
    objects = st.substr(at, st.find(',', at) - at);
  }
  std::string garbage;
  for (int i = 0; i < 2000; ++i) garbage += "not a database ";
  test::write_file(p.pool + "/vunify.db", garbage);
  for (const char* cmd : {"guest list", "unify --all", "fsck"}) {
    auto r = p.run(cmd);
    INFO(cmd << "\n" << r.out);
    CHECK(r.status == 2);
    CHECK(contains(r.out, "fsck --repair"));
  }
  require_rebuilt(p, objects);
  auto aside = test::run("ls '" + p.pool + "'");
  CHECK(contains(aside.out, "vunify.db.damaged-"));
  std::string kept = test::run("cat '" + p.pool + "'/vunify.db.damaged-*Z").out;
  CHECK(kept == garbage);
}
