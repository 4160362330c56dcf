// Templates: import (GNU tar with xattrs and ACLs), from-guest, export -> import round trips
// entry by entry, reproducible exports, list and rm.
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "tests/helpers.hpp"
#include "tests/scratch_pool.hpp"
#include "unify/pool.hpp"

using namespace vunify;
using vunify::test::TempDir;

namespace {

struct TemplateFixture : test::ScratchPool {
  std::string src = dir / "src";
  TemplateFixture() { test::make_sample_guest(src); }
  std::string root(const std::string& tpl) const { return pool + "/templates/" + tpl + "/root"; }
};

// Sockets cannot be archived (tar and pax have no type for them): expected to be left out.
void require_same(test::Snapshot a, const test::Snapshot& b) {
  for (auto it = a.begin(); it != a.end();) it = it->second.find("140") == 0 && !b.count(it->first) ? a.erase(it) : std::next(it);
  auto d = test::diff(a, b);
  for (const auto& line : d) UNSCOPED_INFO(line);
  REQUIRE(d.empty());
}

bool is_store_object(const std::string& path) {
  return test::lstat_of(path).st_nlink >= 2;  // the store's link and the template's
}

}  // namespace

TEST_CASE("template import of a GNU tar keeps every file type and metadata kind", "[template]") {
  VUNIFY_REQUIRE_ROOT();
  TemplateFixture f;
  auto tar = test::run("tar --xattrs --xattrs-include='*' --acls --numeric-owner -C '" + f.src + "' -cpf '" + f.dir.path() +
                       "/t.tar' .");
  REQUIRE(tar.status == 0);
  f.ok("template import t '" + f.dir.path() + "/t.tar'");
  require_same(test::snapshot(f.src), test::snapshot(f.root("t")));
  // Every regular file is a store object link; the archive's hard link is one inode.
  for (const char* rel : {"etc/hostname", "usr/bin/ping", "home-file", "var/lib/sparse"})
    CHECK(is_store_object(f.root("t") + "/" + rel));
  CHECK(test::lstat_of(f.root("t") + "/etc/os-release").st_ino == test::lstat_of(f.root("t") + "/etc/os-release.hardlink").st_ino);
  auto list = test::vunify(f.pool, "template list");
  CHECK(list.out.find("t ") != std::string::npos);
}

TEST_CASE("export then import gives the identical tree, sparse files and hard links included", "[template]") {
  VUNIFY_REQUIRE_ROOT();
  TemplateFixture f;
  f.ok("guest add g --from '" + f.src + "'");
  f.ok("template from-guest a g");
  require_same(test::snapshot(f.src), test::snapshot(f.root("a")));
  f.ok("template export a '" + f.dir.path() + "/a.tar'");
  f.ok("template import b '" + f.dir.path() + "/a.tar'");
  require_same(test::snapshot(f.src), test::snapshot(f.root("b")));
  // Link structure: the guest's hard link is one inode, the sparse file kept its holes.
  CHECK(test::lstat_of(f.root("b") + "/etc/os-release").st_ino == test::lstat_of(f.root("b") + "/etc/os-release.hardlink").st_ino);
  CHECK(test::lstat_of(f.root("b") + "/var/lib/sparse").st_blocks * 512 < (1 << 20));
  // The second import found every file already in the store.
  CHECK(test::lstat_of(f.root("b") + "/home-file").st_ino == test::lstat_of(f.root("a") + "/home-file").st_ino);
  // Reproducible: exporting the re-imported template gives the same bytes.
  f.ok("template export b '" + f.dir.path() + "/b.tar'");
  CHECK(test::read_file(f.dir.path() + "/a.tar") == test::read_file(f.dir.path() + "/b.tar"));
  // Compressed round trip through stdin.
  f.ok("template export b '" + f.dir.path() + "/b.tar.zst'");
  auto r = test::run("cat '" + f.dir.path() + "/b.tar.zst' | " VUNIFY_BIN " --pool '" + f.pool + "' template import c -");
  INFO(r.out);
  REQUIRE(r.status == 0);
  require_same(test::snapshot(f.src), test::snapshot(f.root("c")));
}

TEST_CASE("equal files deduplicated in the store do not turn into hard links on export", "[template]") {
  VUNIFY_REQUIRE_ROOT();
  TemplateFixture f;
  test::write_file(f.src + "/twin1", "same bytes\n");
  test::write_file(f.src + "/twin2", "same bytes\n");
  f.ok("guest add g --from '" + f.src + "'");
  f.ok("template from-guest a g");
  CHECK(test::lstat_of(f.root("a") + "/twin1").st_ino == test::lstat_of(f.root("a") + "/twin2").st_ino);  // one object
  auto listing = test::run(VUNIFY_BIN " --pool '" + f.pool + "' template export a - | tar -tvf -");
  REQUIRE(listing.status == 0);
  CHECK(listing.out.find("twin2 link to") == std::string::npos);
  CHECK(listing.out.find("os-release.hardlink link to ./etc/os-release") != std::string::npos);
}

TEST_CASE("template rm refuses while guests use it, --force removes it and objects stay", "[template]") {
  VUNIFY_REQUIRE_ROOT();
  TemplateFixture f;
  f.ok("guest add g --from '" + f.src + "'");
  f.ok("template from-guest a g");
  f.ok("guest create x --template a");
  auto r = test::vunify(f.pool, "template rm a");
  CHECK(r.status == 2);
  CHECK(r.out.find("used by 1 guest") != std::string::npos);
  f.ok("template rm a --force");
  CHECK(::access((f.pool + "/templates/a").c_str(), F_OK) != 0);
  CHECK(test::read_file(f.pool + "/backing/x/home-file") == std::string(100000, 'z'));
  f.ok("gc");
  CHECK(test::read_file(f.pool + "/backing/x/home-file") == std::string(100000, 'z'));
  f.ok("template from-guest a2 x");
  f.ok("guest rm x");
  f.ok("template rm a2");
}

TEST_CASE("fsck finds template files that are not store objects: --repair makes them objects again", "[template][fsck]") {
  VUNIFY_REQUIRE_ROOT();
  TemplateFixture f;
  f.ok("guest add g --from '" + f.src + "'");
  f.ok("template from-guest a g");
  f.ok("fsck");
  // What a from-guest racing the guest's view used to leave: the guest's private inode
  // linked into the template.
  std::string tpl_file = f.root("a") + "/etc/hostname", guest_file = f.pool + "/backing/g/etc/hostname";
  REQUIRE(test::run("ln -f '" + guest_file + "' '" + tpl_file + "'").status == 0);
  struct stat dir_before = test::lstat_of(f.root("a") + "/etc");
  auto r = test::vunify(f.pool, "fsck");
  INFO(r.out);
  CHECK(r.status == 3);
  CHECK(r.out.find("template 'a': etc/hostname is not a store object") != std::string::npos);
  f.ok("fsck --repair");
  f.ok("fsck");
  CHECK(test::lstat_of(tpl_file).st_ino != test::lstat_of(guest_file).st_ino);
  CHECK(is_store_object(tpl_file));
  CHECK(test::read_file(tpl_file) == "guest\n");
  CHECK(test::lstat_of(tpl_file).st_mode == test::lstat_of(guest_file).st_mode);
  CHECK(test::lstat_of(f.root("a") + "/etc").st_mtim.tv_nsec == dir_before.st_mtim.tv_nsec);
  test::write_file(guest_file, "changed by the guest\n");
  CHECK(test::read_file(tpl_file) == "guest\n");
  f.ok("verify");
}
