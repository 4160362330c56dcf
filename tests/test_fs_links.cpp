// Link groups through the view: a guest's own hard links whose paths all link to one store
// object (POOL/links/NAME) are one inode to the guest (same st_ino, st_nlink = its paths), and a
// change through any path breaks the whole group into one private inode, so the other paths
// see it and no other guest or store object does. Each case runs with passthrough on and off.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <functional>

#include "os/unique_fd.hpp"
#include "os/walk.hpp"
#include "tests/test_fs_support.hpp"
#include "unify/link_groups.hpp"

using namespace vunify::test;
namespace unify = vunify::unify;

namespace {

const std::string kPerl = "usr/bin/perl", kPerl5 = "usr/bin/perl5.36.0";  // one directory
const std::string kLibA = "usr/lib/libx.so.1", kLibB = "usr/share/x/libx.so";  // two directories
const std::string kPerlBytes = std::string(300000, 'p') + "#!perl\n";  // big enough for passthrough reads

bool has_record(const std::string& pool, const std::string& guest) {
  return ::access((pool + "/links/" + guest).c_str(), F_OK) == 0;
}

bool same_inode(const std::string& a, const std::string& b) {
  struct stat x = stat_of(a), y = stat_of(b);
  return x.st_ino == y.st_ino && x.st_dev == y.st_dev;
}

// Two guests whose trees hold the same two hard-link pairs (perl, libx) and a shared file, unified so
// that in g1 every path of each pair is a link to one store object and the pairs are recorded
// as link groups. (If unify does not record groups itself, the test does it the way unify
// would: split the pair into equal files, unify them, record the group.)
struct LinkPool {
  TempDir tmp;
  std::string pool = tmp / "pool";
  MountGuard guard{pool, tmp.path()};

  explicit LinkPool(bool passthrough, bool mount = true) {
    REQUIRE(cli(pool, "init").status == 0);
    for (const std::string g : {"g1", "g2"}) {
      std::string src = source(g);
      write_file(src + "/" + kPerl, kPerlBytes, 0755);
      link_in(src, kPerl, kPerl5);
      write_file(src + "/" + kLibA, "libx bytes\n", 0644, 0, 0, 1500000000);
      mkdirs(src + "/usr/share/x");
      link_in(src, kLibA, kLibB);
      write_file(src + "/data/shared.bin", std::string(5000, 's'));
      write_file(src + "/etc/hostname", g + "\n");
      struct timespec ts[2] = {{1600000000, 0}, {1600000000, 5}};
      for (const char* d : {"/usr/bin", "/usr/lib", "/usr/share/x", "/usr/share", "/usr", "/data", "/etc", ""})
        ::utimensat(AT_FDCWD, (src + d).c_str(), ts, AT_SYMLINK_NOFOLLOW);
      auto r = cli(pool, "guest add " + g + " --from '" + src + "'");
      REQUIRE(r.status == 0);
    }
    auto r = cli(pool, "unify --all");
    INFO(r.out);
    REQUIRE(r.status == 0);
    if (!has_record(pool, "g1")) group_by_hand("g1");
    REQUIRE(has_record(pool, "g1"));
    for (const auto& [a, b] : {std::pair{kPerl, kPerl5}, std::pair{kLibA, kLibB}}) {
      REQUIRE(same_inode(backing("g1", a), backing("g1", b)));
      REQUIRE(stat_of(backing("g1", a)).st_nlink >= 3);  // the store's link and the guest's two
    }
    if (mount) mount_all(passthrough);
  }

  std::string source(const std::string& g) const { return tmp / ("src-" + g); }
  std::string root(const std::string& g, const std::string& rel = "") const {
    return pool + "/guests/" + g + "/root" + (rel.empty() ? "" : "/" + rel);
  }
  std::string backing(const std::string& g, const std::string& rel = "") const {
    return pool + "/backing/" + g + (rel.empty() ? "" : "/" + rel);
  }
  void mount_all(bool passthrough) {
    auto r = cli(pool, std::string("mount --all") + (passthrough ? "" : " --no-passthrough"));
    INFO(r.out);
    REQUIRE(r.status == 0);
  }
  void umount_all() { REQUIRE(cli(pool, "umount --all").status == 0); }

  static void link_in(const std::string& dir, const std::string& from, const std::string& to) {
    mkdirs(dir + "/" + to.substr(0, to.rfind('/')));
    REQUIRE(::link((dir + "/" + from).c_str(), (dir + "/" + to).c_str()) == 0);
  }

  void group_by_hand(const std::string& g) {
    for (const auto& [a, b] : {std::pair{kPerl, kPerl5}, std::pair{kLibA, kLibB}}) {
      std::string tmpname = backing(g, b) + ".split";
      std::string dir = b.substr(0, b.rfind('/'));
      REQUIRE(run("cp -p '" + backing(g, a) + "' '" + tmpname + "' && mv '" + tmpname + "' '" + backing(g, b) +
                  "' && touch -r '" + source(g) + "/" + dir + "' '" + backing(g, dir) + "'").status == 0);
    }
    REQUIRE(cli(pool, "unify " + g).status == 0);
    auto root_fd = vunify::os::open_dir(backing(g));
    unify::GuestLinks links = unify::links_from_paths(root_fd.get(), {{kPerl, kPerl5}, {kLibA, kLibB}});
    REQUIRE(links.size() == 2);
    mkdirs(pool + "/links");
    auto links_dir = vunify::os::open_dir(pool + "/links");
    unify::write_links(links_dir.get(), g, links);
  }
};

// The guest's other files keep nlink 1 and inode numbers of their own.
void check_group_seen_as_one(const LinkPool& p, const std::string& a, const std::string& b) {
  struct stat x = stat_of(p.root("g1", a)), y = stat_of(p.root("g1", b));
  CHECK(x.st_ino == y.st_ino);
  CHECK(x.st_nlink == 2);
  CHECK(y.st_nlink == 2);
  struct stat other = stat_of(p.root("g1", "data/shared.bin"));
  CHECK(other.st_nlink == 1);
  CHECK(other.st_ino != x.st_ino);
  CHECK(stat_of(p.root("g1", "etc/hostname")).st_nlink == 1);
}

// After a break: both paths one private inode of exactly two links, no longer the object.
void check_broken_group(const LinkPool& p, const std::string& a, const std::string& b) {
  CHECK(same_inode(p.root("g1", a), p.root("g1", b)));
  CHECK(stat_of(p.root("g1", a)).st_nlink == 2);
  CHECK(same_inode(p.backing("g1", a), p.backing("g1", b)));
  CHECK(stat_of(p.backing("g1", a)).st_nlink == 2);
  CHECK_FALSE(same_inode(p.backing("g1", a), p.backing("g2", a)));
}

void check_pool_intact(const LinkPool& p, const Snapshot& store_before) {
  CHECK(diff(snapshot(p.source("g2")), snapshot(p.root("g2"))).empty());  // g2 as before unify
  CHECK(diff(store_before, store_snapshot(p.pool)).empty());
  auto verify = cli(p.pool, "verify");
  INFO(verify.out);
  CHECK(verify.status == 0);
  CHECK(run("find '" + p.backing("g1") + "' -name '.vunify-tmp*'").out.empty());
}

struct Change {
  const char* what;
  std::function<void(const std::string& path)> apply;
  std::function<void(const std::string& path)> check;  // what the other path must show
};

std::vector<Change> changes() {
  return {
      {"overwrite in place", [](auto& p) { write_at(p, "XY", 10); },
       [](auto& p) { CHECK(content_of(p) == kPerlBytes.substr(0, 10) + "XY" + kPerlBytes.substr(12)); }},
      {"append", [](auto& p) { write_at(p, "more\n", 0, O_APPEND); },
       [](auto& p) { CHECK(content_of(p) == kPerlBytes + "more\n"); }},
      {"O_TRUNC", [](auto& p) { write_at(p, "new", 0, O_TRUNC); }, [](auto& p) { CHECK(content_of(p) == "new"); }},
      {"truncate", [](auto& p) { REQUIRE(::truncate(p.c_str(), 100) == 0); },
       [](auto& p) { CHECK(content_of(p) == kPerlBytes.substr(0, 100)); }},
      {"chmod", [](auto& p) { REQUIRE(::chmod(p.c_str(), 0700) == 0); },
       [](auto& p) { CHECK((stat_of(p).st_mode & 07777) == 0700); }},
      {"chown", [](auto& p) { REQUIRE(::chown(p.c_str(), 123, 456) == 0); },
       [](auto& p) { CHECK(stat_of(p).st_uid == 123); CHECK(stat_of(p).st_gid == 456); }},
      {"utimes",
       [](auto& p) {
         struct timespec ts[2] = {{1000, 0}, {2000, 7}};
         REQUIRE(::utimensat(AT_FDCWD, p.c_str(), ts, 0) == 0);
       },
       [](auto& p) { CHECK(stat_of(p).st_mtim.tv_sec == 2000); CHECK(stat_of(p).st_mtim.tv_nsec == 7); }},
      {"setxattr", [](auto& p) { REQUIRE(::setxattr(p.c_str(), "user.tag", "v2", 2, 0) == 0); },
       [](auto& p) {
         char v[8] = {};
         CHECK(::getxattr(p.c_str(), "user.tag", v, sizeof v) == 2);
         CHECK(std::string(v) == "v2");
       }},
      {"fallocate",
       [](auto& p) { allocate(p, 1 << 20); },
       [](auto& p) { CHECK(stat_of(p).st_size == 1 << 20); }},
  };
}

}  // namespace

TEST_CASE("the paths of a link group are one inode through the view", "[fs][links]") {
  VUNIFY_REQUIRE_FUSE();
  bool passthrough = GENERATE(true, false);
  INFO("passthrough " << passthrough);
  LinkPool p(passthrough);
  check_group_seen_as_one(p, kPerl, kPerl5);
  check_group_seen_as_one(p, kLibA, kLibB);
  CHECK(stat_of(p.root("g1", kPerl)).st_ino != stat_of(p.root("g1", kLibA)).st_ino);
  CHECK(stat_of(p.root("g1", kPerl)).st_ino != stat_of(p.root("g2", kPerl)).st_ino);
  CHECK(content_of(p.root("g1", kPerl5)) == kPerlBytes);
  CHECK(diff(snapshot(p.source("g1")), snapshot(p.root("g1"))).empty());  // exact metadata
  // readdirplus (ls -i lists through it) gives both paths the same inode number
  auto ls = run("ls -i '" + p.root("g1", "usr/bin") + "'");
  std::string ino = std::to_string(stat_of(p.root("g1", kPerl)).st_ino);
  CHECK(ls.out.find(ino + " perl\n") != std::string::npos);
  CHECK(ls.out.find(ino + " perl5.36.0\n") != std::string::npos);
  ino_t before = stat_of(p.root("g1", kPerl)).st_ino;
  p.umount_all();
  p.mount_all(passthrough);
  CHECK(stat_of(p.root("g1", kPerl5)).st_ino == before);  // stable across remounts
  CHECK(stat_of(p.root("g1", kPerl)).st_ino == before);
}

TEST_CASE("a change through one path of a link group shows through the other and nowhere else", "[fs][links]") {
  VUNIFY_REQUIRE_FUSE();
  bool passthrough = GENERATE(true, false);
  auto all = changes();
  for (size_t i = 0; i < all.size(); ++i) {
    const Change& change = all[i];
    bool through_first = i % 2 == 0;
    {
      INFO("change: " << change.what << ", passthrough " << passthrough << ", through " << (through_first ? kPerl : kPerl5));
      LinkPool p(passthrough);
      Snapshot store_before = store_snapshot(p.pool);
      struct stat dir_before = stat_of(p.root("g1", "usr/bin"));
      const std::string& via = through_first ? kPerl : kPerl5;
      const std::string& other = through_first ? kPerl5 : kPerl;
      change.apply(p.root("g1", via));
      change.check(p.root("g1", other));
      change.check(p.root("g1", via));
      check_broken_group(p, kPerl, kPerl5);
      struct stat dir_after = stat_of(p.root("g1", "usr/bin"));
      CHECK(dir_after.st_mtim.tv_sec == dir_before.st_mtim.tv_sec);
      CHECK(dir_after.st_mtim.tv_nsec == dir_before.st_mtim.tv_nsec);
      check_pool_intact(p, store_before);
      // the broken group left the record; the other group is still there and still one inode
      auto root_fd = vunify::os::open_dir(p.backing("g1"));
      auto links_dir = vunify::os::open_dir(p.pool + "/links");
      auto left = unify::link_group_paths(root_fd.get(), unify::read_links(links_dir.get(), "g1"));
      CHECK(left == std::vector<std::vector<std::string>>{{kLibA, kLibB}});
      check_group_seen_as_one(p, kLibA, kLibB);
    }
  }
}

TEST_CASE("a link group across two directories breaks as one and keeps both directories' times", "[fs][links]") {
  VUNIFY_REQUIRE_FUSE();
  bool passthrough = GENERATE(true, false);
  INFO("passthrough " << passthrough);
  LinkPool p(passthrough);
  Snapshot store_before = store_snapshot(p.pool);
  Snapshot g1_before = snapshot(p.root("g1"));
  write_at(p.root("g1", kLibB), "LIB", 0);
  CHECK(content_of(p.root("g1", kLibA)) == "LIBx bytes\n");
  check_broken_group(p, kLibA, kLibB);
  check_pool_intact(p, store_before);
  auto d = diff(g1_before, snapshot(p.root("g1")));  // only the two paths of the file changed
  CHECK(d.size() == 2);
  for (const auto& line : d) CHECK(line.find("libx.so") != std::string::npos);
  p.umount_all();  // the record lost the group: the next mount still serves it as one inode
  CHECK(has_record(p.pool, "g1"));
  p.mount_all(passthrough);
  check_broken_group(p, kLibA, kLibB);
  check_group_seen_as_one(p, kPerl, kPerl5);
  write_at(p.root("g1", kPerl), "P", 0);
  CHECK(content_of(p.root("g1", kPerl5))[0] == 'P');
  CHECK_FALSE(has_record(p.pool, "g1"));  // no groups left: the record is gone
  check_pool_intact(p, store_before);
}

TEST_CASE("namespace changes of a link group member keep the guest's hard-link semantics", "[fs][links]") {
  VUNIFY_REQUIRE_FUSE();
  bool passthrough = GENERATE(true, false);
  INFO("passthrough " << passthrough);
  LinkPool p(passthrough);
  Snapshot store_before = store_snapshot(p.pool);
  auto r = [&](const std::string& rel) { return p.root("g1", rel); };
  SECTION("unlink one member") {
    REQUIRE(::unlink(r(kPerl).c_str()) == 0);
    CHECK(::access(r(kPerl).c_str(), F_OK) != 0);
    CHECK(stat_of(r(kPerl5)).st_nlink == 1);
    CHECK(content_of(r(kPerl5)) == kPerlBytes);
    write_at(r(kPerl5), "W", 0);
    CHECK(content_of(r(kPerl5))[0] == 'W');
  }
  SECTION("rename a member") {
    REQUIRE(::rename(r(kPerl).c_str(), r("usr/bin/perl.old").c_str()) == 0);
    CHECK(::access(r(kPerl).c_str(), F_OK) != 0);
    CHECK(same_inode(r("usr/bin/perl.old"), r(kPerl5)));
    CHECK(stat_of(r(kPerl5)).st_nlink == 2);
    write_at(r("usr/bin/perl.old"), "R", 0);
    CHECK(content_of(r(kPerl5))[0] == 'R');
  }
  SECTION("rename another file over a member") {
    write_file(r("usr/bin/perl.new"), "new perl\n", 0755);
    REQUIRE(::rename(r("usr/bin/perl.new").c_str(), r(kPerl).c_str()) == 0);
    CHECK(content_of(r(kPerl)) == "new perl\n");
    CHECK(content_of(r(kPerl5)) == kPerlBytes);
    CHECK(stat_of(r(kPerl5)).st_nlink == 1);
    CHECK(stat_of(r(kPerl)).st_nlink == 1);
    CHECK_FALSE(same_inode(r(kPerl), r(kPerl5)));
  }
  SECTION("rename a member over the other") {
    REQUIRE(::rename(r(kPerl).c_str(), r(kPerl5).c_str()) == 0);  // same inode: nothing happens
    CHECK(same_inode(r(kPerl), r(kPerl5)));
    CHECK(stat_of(r(kPerl)).st_nlink == 2);
    CHECK(content_of(r(kPerl)) == kPerlBytes);
  }
  SECTION("link to a member") {
    REQUIRE(::link(r(kPerl5).c_str(), r("usr/bin/perl-link").c_str()) == 0);
    CHECK(same_inode(r(kPerl), r("usr/bin/perl-link")));
    CHECK(same_inode(r(kPerl5), r("usr/bin/perl-link")));
    CHECK(stat_of(r(kPerl)).st_nlink == 3);
    write_at(r("usr/bin/perl-link"), "L", 0);
    CHECK(content_of(r(kPerl))[0] == 'L');
    CHECK(content_of(r(kPerl5))[0] == 'L');
  }
  SECTION("exchange a member with another file") {
    REQUIRE(::renameat2(AT_FDCWD, r(kPerl).c_str(), AT_FDCWD, r("data/shared.bin").c_str(), RENAME_EXCHANGE) == 0);
    CHECK(content_of(r(kPerl)) == std::string(5000, 's'));
    CHECK(content_of(r("data/shared.bin")) == kPerlBytes);
    CHECK(same_inode(r("data/shared.bin"), r(kPerl5)));
    CHECK(stat_of(r(kPerl5)).st_nlink == 2);
    CHECK(stat_of(r(kPerl)).st_nlink == 1);
    write_at(r("data/shared.bin"), "E", 0);
    CHECK(content_of(r(kPerl5))[0] == 'E');
  }
  SECTION("rename the directory holding both members") {
    REQUIRE(::rename(r("usr/bin").c_str(), r("usr/bin2").c_str()) == 0);
    CHECK(same_inode(r("usr/bin2/perl"), r("usr/bin2/perl5.36.0")));
    CHECK(stat_of(r("usr/bin2/perl")).st_nlink == 2);
    write_at(r("usr/bin2/perl"), "D", 0);
    CHECK(content_of(r("usr/bin2/perl5.36.0"))[0] == 'D');
    CHECK(same_inode(r("usr/bin2/perl"), r("usr/bin2/perl5.36.0")));
  }
  check_pool_intact(p, store_before);
}

TEST_CASE("a reader that opened a link group before a write keeps the old bytes: every path shows the new", "[fs][links]") {
  VUNIFY_REQUIRE_FUSE();
  bool passthrough = GENERATE(true, false);
  INFO("passthrough " << passthrough);
  LinkPool p(passthrough);
  Snapshot store_before = store_snapshot(p.pool);
  int reader = ::open(p.root("g1", kPerl).c_str(), O_RDONLY);
  REQUIRE(reader >= 0);
  char buf[4] = {};
  REQUIRE(::pread(reader, buf, 4, 0) == 4);
  write_at(p.root("g1", kPerl5), "WXYZ", 0);
  write_at(p.root("g1", kPerl5), "tail\n", 0, O_APPEND);
  // the other path is the same inode at once (its attributes too), before anything opens it
  CHECK(same_inode(p.root("g1", kPerl), p.root("g1", kPerl5)));
  CHECK(stat_of(p.root("g1", kPerl)).st_size == static_cast<off_t>(kPerlBytes.size() + 5));
  CHECK(::pread(reader, buf, 4, 0) == 4);
  CHECK(std::string(buf, 4) == "pppp");
  CHECK(content_of(p.root("g1", kPerl)) == "WXYZ" + kPerlBytes.substr(4) + "tail\n");
  CHECK(content_of(p.root("g1", kPerl5)).substr(0, 4) == "WXYZ");
  ::close(reader);
  write_at(p.root("g1", kPerl), "AB", 0);
  write_at(p.root("g1", kPerl), "end\n", 0, O_APPEND);
  CHECK(stat_of(p.root("g1", kPerl5)).st_size == static_cast<off_t>(kPerlBytes.size() + 9));
  CHECK(content_of(p.root("g1", kPerl5)) == "ABYZ" + kPerlBytes.substr(4) + "tail\nend\n");
  CHECK(content_of(p.root("g1", kPerl)).substr(0, 4) == "ABYZ");
  CHECK(same_inode(p.root("g1", kPerl), p.root("g1", kPerl5)));
  check_broken_group(p, kPerl, kPerl5);
  check_pool_intact(p, store_before);
}

TEST_CASE("a link group a crash left half broken is joined again at mount", "[fs][links]") {
  VUNIFY_REQUIRE_FUSE();
  bool passthrough = GENERATE(true, false);
  INFO("passthrough " << passthrough);
  LinkPool p(passthrough, false);
  Snapshot store_before = store_snapshot(p.pool);
  // The state a view leaves when killed in a break: one member already relinked to the private
  // copy (same bytes and metadata), the other still the object, the record not yet rewritten.
  std::string tmpname = p.backing("g1", "usr/bin/.vunify-tmp.cow.1.0");
  REQUIRE(run("cp -p '" + p.backing("g1", kPerl) + "' '" + tmpname + "' && mv '" + tmpname + "' '" +
              p.backing("g1", kPerl) + "'").status == 0);
  REQUIRE_FALSE(same_inode(p.backing("g1", kPerl), p.backing("g1", kPerl5)));
  REQUIRE(has_record(p.pool, "g1"));
  p.mount_all(passthrough);
  CHECK(same_inode(p.backing("g1", kPerl), p.backing("g1", kPerl5)));
  CHECK(stat_of(p.backing("g1", kPerl)).st_nlink == 2);  // the private copy: both paths, no store
  check_broken_group(p, kPerl, kPerl5);
  CHECK(content_of(p.root("g1", kPerl5)) == kPerlBytes);
  write_at(p.root("g1", kPerl), "C", 0);
  CHECK(content_of(p.root("g1", kPerl5))[0] == 'C');
  // the joined group left the record; the untouched one is still served as one inode
  auto root_fd = vunify::os::open_dir(p.backing("g1"));
  auto links_dir = vunify::os::open_dir(p.pool + "/links");
  auto left = unify::link_group_paths(root_fd.get(), unify::read_links(links_dir.get(), "g1"));
  CHECK(left == std::vector<std::vector<std::string>>{{kLibA, kLibB}});
  check_group_seen_as_one(p, kLibA, kLibB);
  check_pool_intact(p, store_before);
}
