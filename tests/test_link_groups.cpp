// Hard-link groups of a guest (its own hard links) unified as one file: every path links to
// the store object, the group is recorded in POOL/links/NAME, and a group caught halfway by a
// crash is put back together.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <set>

#include "os/files.hpp"
#include "os/walk.hpp"
#include "tests/helpers.hpp"
#include "tests/scratch_pool.hpp"
#include "unify/fsck.hpp"
#include "unify/guests.hpp"
#include "unify/link_groups.hpp"
#include "unify/object_set.hpp"
#include "unify/provision.hpp"
#include "unify/templates.hpp"
#include "unify/store.hpp"
#include "unify/unifier.hpp"

using namespace vunify;
using vunify::test::TempDir;

namespace {

struct GroupPool : test::ScratchPool {
  // A guest with a hard-link group across two directories, plus a file `alone`.
  void add_guest_with_group(const std::string& name, const std::string& content = "perl binary\n") {
    std::string src = dir / ("src-" + name);
    test::write_file(src + "/usr/bin/perl", content, 0755);
    test::mkdirs(src + "/usr/lib");
    REQUIRE(::link((src + "/usr/bin/perl").c_str(), (src + "/usr/lib/perl5.36").c_str()) == 0);
    test::write_file(src + "/alone", "only in " + name);
    struct timespec ts[2] = {{1400000000, 0}, {1400000000, 5}};
    for (const char* d : {"/usr/bin", "/usr/lib", "/usr"}) ::utimensat(AT_FDCWD, (src + d).c_str(), ts, 0);
    unify::Pool p(pool, unify::Access::Write);
    unify::add_guest(p, name, src, false);
  }
  unify::UnifyReport run(unify::UnifyOptions opts = {}) {
    unify::Pool p(pool, unify::Access::Write);
    return unify::unify(p, opts);
  }
  // Read straight from POOL/links (no pool lock: callers may hold the pool open for writing).
  unify::GuestLinks links(const std::string& guest) {
    return unify::read_links(os::open_dir(pool + "/links").get(), guest);
  }
  ino_t ino(const std::string& guest, const std::string& rel) const { return test::lstat_of(backing(guest, rel)).st_ino; }
};

}  // namespace

TEST_CASE("a guest's own hard links are unified as one recorded group", "[unify][links]") {
  VUNIFY_REQUIRE_ROOT();
  GroupPool f;
  f.add_guest_with_group("a");
  f.add_guest_with_group("b");
  test::Snapshot before_a = test::snapshot(f.backing("a"));
  unify::UnifyReport r = f.run();
  CHECK(r.link_groups == 2);
  CHECK(r.skipped_hardlinks == 0);
  CHECK(r.files_linked == 2);  // b's two paths; a's inode became the object
  // One inode for all four paths and the store: 4 guest links + 1 store link.
  CHECK(f.ino("a", "usr/bin/perl") == f.ino("b", "usr/lib/perl5.36"));
  CHECK(f.ino("a", "usr/lib/perl5.36") == f.ino("b", "usr/bin/perl"));
  CHECK(test::lstat_of(f.backing("a", "usr/bin/perl")).st_nlink == 5);
  CHECK(test::diff(before_a, test::snapshot(f.backing("a"))).empty());  // dir times too
  for (const char* g : {"a", "b"}) {
    unify::GuestLinks links = f.links(g);
    REQUIRE(links.size() == 1);
    REQUIRE(links[0].members.size() == 2);
    std::set<std::string> names{links[0].members[0].name, links[0].members[1].name};
    CHECK(names == std::set<std::string>{"perl", "perl5.36"});
  }
  CHECK(f.links("a")[0].id != 0);
  // A second run changes nothing and keeps the records.
  unify::UnifyReport again = f.run();
  CHECK(again.files_linked == 0);
  CHECK(again.already_shared == 4);
  CHECK(f.links("a").size() == 1);
  unify::Pool pool(f.pool, unify::Access::Write);
  unify::FsckReport fr = unify::fsck(pool, false);
  INFO((fr.problems.empty() ? std::string() : fr.problems[0]));
  CHECK(fr.problems.empty());
  // guest rm drops the record
  unify::remove_guest(pool, "b");
  struct stat st {};
  CHECK(::stat((f.pool + "/links/b").c_str(), &st) != 0);
}

TEST_CASE("hard links that reach outside the guest are left alone", "[unify][links]") {
  VUNIFY_REQUIRE_ROOT();
  GroupPool f;
  f.add_guest_with_group("a");
  f.add_guest_with_group("b");
  // a third link from another guest's tree: the inode is not a's alone
  REQUIRE(::link(f.backing("a", "usr/bin/perl").c_str(), f.backing("b", "stray").c_str()) == 0);
  ino_t before = f.ino("a", "usr/bin/perl");
  unify::UnifyReport r = f.run();
  CHECK(r.skipped_hardlinks == 3);  // a's two paths and b's stray link
  CHECK(f.ino("a", "usr/bin/perl") == before);
  CHECK(f.links("a").empty());
}

TEST_CASE("the link-group record round-trips and a damaged one is refused", "[unify][links]") {
  unify::GuestLinks links{{0x1234, {{std::string("\x01\x00\x00\x00\xff", 5), "perl"}, {"hh", "name with\nnewline"}}}};
  unify::GuestLinks back = unify::decode_links(unify::encode_links(links), "t");
  REQUIRE(back.size() == 1);
  CHECK(back[0].id == 0x1234);
  CHECK(back[0].members == links[0].members);
  std::string data = unify::encode_links(links);
  CHECK_THROWS_WITH(unify::decode_links(data.substr(0, data.size() - 3), "links/g"), Catch::Contains("damaged"));
  CHECK_THROWS_WITH(unify::decode_links("garbage", "links/g"), Catch::Contains("links/g"));
}

TEST_CASE("a group caught halfway is put back on its private inode", "[unify][links]") {
  VUNIFY_REQUIRE_ROOT();
  GroupPool f;
  f.add_guest_with_group("a");
  f.add_guest_with_group("b");
  f.run();
  REQUIRE(f.links("b").size() == 1);
  ino_t object = f.ino("b", "usr/bin/perl");
  test::Snapshot before = test::snapshot(f.backing("b"));

  SECTION("one member already on a private copy (a view's break that crashed)") {
    // what the view's break does first: a private copy with equal bytes and metadata
    std::string copy = f.backing("b", "usr/bin/.copy");
    REQUIRE(test::run("cp -a --preserve=all '" + f.backing("b", "usr/bin/perl") + "' '" + copy + "'").status == 0);
    REQUIRE(::rename(copy.c_str(), f.backing("b", "usr/bin/perl").c_str()) == 0);
    struct timespec ts[2] = {{1400000000, 0}, {1400000000, 5}};
    ::utimensat(AT_FDCWD, f.backing("b", "usr/bin").c_str(), ts, 0);
    unify::Pool pool(f.pool, unify::Access::Write);
    unify::FsckReport fr = unify::fsck(pool, false);
    CHECK(fr.problems.size() == 1);
    unify::LinkRepair lr = unify::resolve_links(pool, "b", unify::ObjectSet::load(pool));
    CHECK(lr.relinked == 1);
    CHECK(lr.dropped == 1);
    CHECK(f.ino("b", "usr/bin/perl") == f.ino("b", "usr/lib/perl5.36"));
    CHECK(f.ino("b", "usr/bin/perl") != object);
    CHECK(test::lstat_of(f.backing("b", "usr/bin/perl")).st_nlink == 2);
    CHECK(f.links("b").empty());
    CHECK(test::diff(before, test::snapshot(f.backing("b"))).empty());
    CHECK(unify::fsck(pool, false).problems.empty());
  }
  SECTION("a member replaced by an unrelated file: it leaves the group") {
    REQUIRE(::unlink(f.backing("b", "usr/bin/perl").c_str()) == 0);  // never write into the object
    test::write_file(f.backing("b", "usr/bin/perl"), "the guest's own new perl\n");
    unify::Pool pool(f.pool, unify::Access::Write);
    unify::LinkRepair lr = unify::resolve_links(pool, "b", unify::ObjectSet::load(pool));
    CHECK(lr.relinked == 0);
    CHECK(lr.dropped == 1);  // one member left: a plain shared file
    CHECK(f.ino("b", "usr/lib/perl5.36") == object);
    CHECK(test::read_file(f.backing("b", "usr/bin/perl")) == "the guest's own new perl\n");
    CHECK(f.links("b").empty());
  }
  SECTION("fsck --repair does the same") {
    REQUIRE(::unlink(f.backing("b", "usr/lib/perl5.36").c_str()) == 0);
    unify::Pool pool(f.pool, unify::Access::Write);
    unify::FsckReport fr = unify::fsck(pool, true);
    CHECK(fr.problems.size() == 1);
    CHECK(fr.repaired.size() == 1);
    CHECK(f.links("b").empty());
    CHECK(unify::fsck(pool, false).problems.empty());
  }
}

TEST_CASE("an interrupted unify never splits a group", "[unify][links][crash]") {
  VUNIFY_REQUIRE_ROOT();
  // Abort at every step of a run (an exception stands in for the crash: nothing after it runs),
  // then let recovery and the next run finish. The two paths stay one inode throughout.
  uint64_t total = 0;
  {
    GroupPool probe;
    probe.add_guest_with_group("a");
    probe.add_guest_with_group("b");
    unify::UnifyOptions opts;
    opts.step_hook = [&](uint64_t s) { total = s; };
    probe.run(opts);
  }
  REQUIRE(total >= 5);
  for (uint64_t stop = 1; stop <= total; ++stop) {
    INFO("stopped at step " << stop << " of " << total);
    GroupPool f;
    f.add_guest_with_group("a");
    f.add_guest_with_group("b");
    test::Snapshot before = test::snapshot(f.backing("b"));
    unify::UnifyOptions opts;
    opts.step_hook = [&](uint64_t s) {
      if (s == stop) throw std::runtime_error("crash");
    };
    CHECK_THROWS(f.run(opts));
    {
      unify::Pool pool(f.pool, unify::Access::Write);  // recovery
      unify::FsckReport fr = unify::fsck(pool, false);
      INFO((fr.problems.empty() ? std::string() : fr.problems[0]));
      CHECK(fr.problems.empty());
    }
    for (const char* g : {"a", "b"}) CHECK(f.ino(g, "usr/bin/perl") == f.ino(g, "usr/lib/perl5.36"));
    CHECK(test::diff(before, test::snapshot(f.backing("b"))).empty());
    f.run();
    CHECK(f.ino("a", "usr/bin/perl") == f.ino("b", "usr/lib/perl5.36"));
    CHECK(f.links("a").size() == 1);
    CHECK(f.links("b").size() == 1);
  }
}

TEST_CASE("templates, guests made from them and clones keep shared hard-link groups", "[unify][links][template]") {
  VUNIFY_REQUIRE_ROOT();
  GroupPool f;
  f.add_guest_with_group("a");
  f.add_guest_with_group("b");
  f.run();
  {
    unify::Pool pool(f.pool, unify::Access::Write);
    unify::template_from_guest(pool, "t", "a");
    unify::LinkGroups groups = unify::read_link_groups(pool, "t");
    REQUIRE(groups.size() == 1);
    CHECK(std::set<std::string>(groups[0].begin(), groups[0].end()) ==
          std::set<std::string>{"usr/bin/perl", "usr/lib/perl5.36"});
    unify::CreateOptions opts;
    opts.template_name = "t";
    opts.count = 2;
    unify::create_guests(pool, "n", opts);
    unify::clone_guest(pool, "n-01", "c");
  }
  for (const char* g : {"n-01", "n-02", "c"}) {
    INFO(g);
    CHECK(f.ino(g, "usr/bin/perl") == f.ino(g, "usr/lib/perl5.36"));
    CHECK(f.ino(g, "usr/bin/perl") == f.ino("b", "usr/bin/perl"));
    unify::GuestLinks links = f.links(g);
    REQUIRE(links.size() == 1);
    CHECK(links[0].members.size() == 2);
  }
  CHECK(f.links("n-01")[0].id != f.links("n-02")[0].id);
  unify::Pool pool(f.pool, unify::Access::Write);
  unify::FsckReport fr = unify::fsck(pool, false);
  INFO((fr.problems.empty() ? std::string() : fr.problems[0]));
  CHECK(fr.problems.empty());
}
