// The unify engine on real trees: metadata kept exactly, only equal keys linked, equal
// bytes proven, guest-internal hard links left alone, incremental re-runs.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "tests/helpers.hpp"
#include "tests/scratch_pool.hpp"
#include "unify/guests.hpp"
#include "unify/store.hpp"
#include "unify/unifier.hpp"

using namespace vunify;
using vunify::test::TempDir;

namespace {

struct PoolFixture : test::ScratchPool {
  void add(const std::string& name, const std::string& from) {
    unify::Pool p(pool, unify::Access::Write);
    unify::add_guest(p, name, from, false);
  }
  unify::UnifyReport run(unify::UnifyOptions opts = {}) {
    unify::Pool p(pool, unify::Access::Write);
    return unify::unify(p, opts);
  }
};

ino_t ino_of(const std::string& p) { return test::lstat_of(p).st_ino; }

}  // namespace

TEST_CASE("unify keeps every file's content and metadata and links identical files", "[unify]") {
  VUNIFY_REQUIRE_ROOT();
  PoolFixture f;
  for (const char* g : {"a", "b", "c"}) {
    test::make_sample_guest(f.dir / std::string("src-") + g);
    f.add(g, f.dir / std::string("src-") + g);
  }
  std::map<std::string, test::Snapshot> before;
  for (const char* g : {"a", "b", "c"}) before[g] = test::snapshot(f.backing(g));

  unify::UnifyReport r = f.run();
  CHECK(r.files_linked > 0);
  CHECK(r.bytes_saved > 0);
  for (const char* g : {"a", "b", "c"}) {
    auto d = test::diff(before[g], test::snapshot(f.backing(g)));
    INFO(g << ": " << (d.empty() ? "" : d[0]));
    CHECK(d.empty());
  }
  // identical files now share one inode with the store
  CHECK(ino_of(f.backing("a", "usr/bin/true")) == ino_of(f.backing("b", "usr/bin/true")));
  CHECK(ino_of(f.backing("a", "usr/bin/ping")) == ino_of(f.backing("c", "usr/bin/ping")));
  CHECK(test::lstat_of(f.backing("a", "usr/bin/true")).st_nlink == 4);  // 3 guests + store
  // setuid bit and capability survive on the shared inode
  CHECK((test::lstat_of(f.backing("b", "usr/bin/su")).st_mode & 07777) == 04755);
  // a guest's own hard links are unified as one file: both paths link to the object, and the
  // group is recorded so the view keeps serving them as one inode (invariant 6)
  CHECK(ino_of(f.backing("a", "etc/os-release")) == ino_of(f.backing("a", "etc/os-release.hardlink")));
  CHECK(ino_of(f.backing("a", "etc/os-release")) == ino_of(f.backing("b", "etc/os-release")));
  CHECK(r.link_groups == 3);
  CHECK(r.skipped_hardlinks == 0);

  unify::Pool pool(f.pool, unify::Access::Read);
  CHECK(unify::Store(pool).verify(0).empty());
}

TEST_CASE("files that differ only in owner, mode, an xattr or mtime are not linked", "[unify]") {
  VUNIFY_REQUIRE_ROOT();
  PoolFixture f;
  const std::string data = "same bytes everywhere\n";
  test::write_file(f.dir / "a/base", data);
  test::write_file(f.dir / "b/base", data);
  test::write_file(f.dir / "b/owner", data, 0644, 1000, 0);
  test::write_file(f.dir / "a/owner", data);
  test::write_file(f.dir / "a/mode", data);
  test::write_file(f.dir / "b/mode", data, 0600);
  test::write_file(f.dir / "a/xattr", data);
  test::write_file(f.dir / "b/xattr", data);
  test::set_xattr(f.dir / "b/xattr", "user.tag", "x");
  test::write_file(f.dir / "a/mtime", data);
  test::write_file(f.dir / "b/mtime", data, 0644, 0, 0, 1600000000);
  f.add("a", f.dir / "a");
  f.add("b", f.dir / "b");
  f.run();
  CHECK(ino_of(f.backing("a", "base")) == ino_of(f.backing("b", "base")));
  for (const char* name : {"owner", "mode", "xattr", "mtime"}) {
    INFO(name);
    CHECK(ino_of(f.backing("a", name)) != ino_of(f.backing("b", name)));
  }
  SECTION("--ignore-mtime links mtime-only differences; the file takes the object's mtime") {
    unify::UnifyOptions opts;
    opts.ignore_mtime = true;
    f.run(opts);
    CHECK(ino_of(f.backing("a", "mtime")) == ino_of(f.backing("b", "mtime")));
    CHECK(ino_of(f.backing("a", "owner")) != ino_of(f.backing("b", "owner")));
  }
}

TEST_CASE("a forced hash collision never links different bytes", "[unify]") {
  VUNIFY_REQUIRE_ROOT();
  // Small files are compared in memory, large ones (over 256 KiB) through their fds.
  const std::string body = GENERATE(std::string(), std::string(300 << 10, 'x'));
  const std::string first = body + "first content\n", other = body + "other content\n";
  PoolFixture f;
  test::write_file(f.dir / "a/f", first);
  test::write_file(f.dir / "b/f", other);  // same size, same metadata
  test::write_file(f.dir / "c/f", first);
  test::write_file(f.dir / "d/f", other);
  for (const char* g : {"a", "b", "c", "d"}) f.add(g, f.dir / g);
  unify::UnifyOptions opts;
  opts.hash_hook = [](const unify::Hash128&) { return unify::Hash128{42, 42}; };
  unify::UnifyReport r = f.run(opts);
  CHECK(r.collisions >= 1);
  CHECK(test::read_file(f.backing("a", "f")) == first);
  CHECK(test::read_file(f.backing("b", "f")) == other);
  CHECK(test::read_file(f.backing("c", "f")) == first);
  CHECK(test::read_file(f.backing("d", "f")) == other);
  CHECK(ino_of(f.backing("a", "f")) == ino_of(f.backing("c", "f")));
  CHECK(ino_of(f.backing("b", "f")) == ino_of(f.backing("d", "f")));
  CHECK(ino_of(f.backing("a", "f")) != ino_of(f.backing("b", "f")));
  // a later run with the same forced hash still keeps them apart
  f.run(opts);
  CHECK(ino_of(f.backing("a", "f")) != ino_of(f.backing("b", "f")));
  unify::Pool pool(f.pool, unify::Access::Read);
  CHECK(unify::Store(pool).verify(0).empty());
}

TEST_CASE("many files of one size and mtime with different bytes: each is compared right", "[unify]") {
  VUNIFY_REQUIRE_ROOT();
  PoolFixture f;
  // 40 distinct 250 KiB files in guest a (10 MiB: more than a bucket keeps in memory), the
  // same 40 in guest b, and one more in b equal to none of them.
  auto body = [](int i) { return std::string(250 << 10, static_cast<char>('A' + i % 26)) + std::to_string(100 + i); };
  for (int i = 0; i < 40; ++i)
    for (const char* g : {"a", "b"})
      test::write_file(f.dir / (std::string(g) + "/f" + std::to_string(i)), body(i), 0644, 0, 0, 1500000000);
  std::string odd = body(0);
  odd.back() = 'x';
  test::write_file(f.dir / "b/odd", odd, 0644, 0, 0, 1500000000);
  f.add("a", f.dir / "a");
  f.add("b", f.dir / "b");
  unify::UnifyReport r = f.run();
  CHECK(r.files_linked == 40);
  for (int i = 0; i < 40; ++i) {
    std::string n = "f" + std::to_string(i);
    CHECK(ino_of(f.backing("a", n)) == ino_of(f.backing("b", n)));
    CHECK(test::read_file(f.backing("b", n)) == body(i));
  }
  CHECK(test::read_file(f.backing("b", "odd")) == odd);
  CHECK(ino_of(f.backing("b", "odd")) != ino_of(f.backing("a", "f0")));
}

TEST_CASE("a file whose hash the index remembers is compared byte for byte with a new one", "[unify]") {
  VUNIFY_REQUIRE_ROOT();
  PoolFixture f;
  // Same size and metadata, different bytes: both are read (and their hashes kept), none linked.
  test::write_file(f.dir / "a/f", "aaaa", 0644, 0, 0, 1500000000);
  test::write_file(f.dir / "b/f", "bbbb", 0644, 0, 0, 1500000000);
  f.add("a", f.dir / "a");
  f.add("b", f.dir / "b");
  unify::UnifyReport first = f.run();
  CHECK(first.files_read == 2);
  CHECK(first.files_linked == 0);
  // A new guest with a's bytes: only its file is read; a's hash comes from the index.
  test::write_file(f.dir / "c/f", "aaaa", 0644, 0, 0, 1500000000);
  test::write_file(f.dir / "c/g", "bbbX", 0644, 0, 0, 1500000000);
  f.add("c", f.dir / "c");
  unify::UnifyReport second = f.run();
  CHECK(second.files_read == 2);
  CHECK(second.cached_hashes == 2);
  CHECK(second.files_linked == 1);
  CHECK(ino_of(f.backing("a", "f")) == ino_of(f.backing("c", "f")));
  CHECK(ino_of(f.backing("b", "f")) != ino_of(f.backing("c", "g")));
  CHECK(test::read_file(f.backing("c", "g")) == "bbbX");
}

TEST_CASE("a second run reads only changed files", "[unify]") {
  VUNIFY_REQUIRE_ROOT();
  PoolFixture f;
  for (const char* g : {"a", "b"}) {
    for (int i = 0; i < 20; ++i) test::write_file(f.dir / (std::string(g) + "/shared" + std::to_string(i)), "s" + std::to_string(i));
    for (int i = 0; i < 5; ++i) test::write_file(f.dir / (std::string(g) + "/uniq" + std::to_string(i)), std::string(g) + std::to_string(i));
    f.add(g, f.dir / g);
  }
  unify::UnifyReport first = f.run();
  CHECK(first.files_linked == 20);  // one of each pair is adopted, the other linked
  CHECK(first.objects_created == 20);
  unify::UnifyReport second = f.run();
  CHECK(second.files_read == 0);
  CHECK(second.files_linked == 0);
  CHECK(second.already_shared == 40);
  // change one unshared file to equal a shared one's content: only it is read
  test::write_file(f.backing("a", "uniq0"), "s3");
  unify::UnifyReport third = f.run();
  CHECK(third.files_read == 1);
  CHECK(third.files_linked == 1);
  CHECK(ino_of(f.backing("a", "uniq0")) == ino_of(f.backing("b", "shared3")));
}

TEST_CASE("unify leaves small and excluded files alone, and a dry run changes nothing", "[unify]") {
  VUNIFY_REQUIRE_ROOT();
  PoolFixture f;
  for (const char* g : {"a", "b"}) {
    test::write_file(f.dir / (std::string(g) + "/small"), "12");
    test::write_file(f.dir / (std::string(g) + "/var/log/x.log"), "log line\n");
    test::write_file(f.dir / (std::string(g) + "/big"), std::string(5000, 'b'));
    f.add(g, f.dir / g);
  }
  auto before_a = test::snapshot(f.backing("a"));
  unify::UnifyOptions dry;
  dry.dry_run = true;
  unify::UnifyReport d = f.run(dry);
  CHECK(d.files_linked == 3);
  CHECK(test::diff(before_a, test::snapshot(f.backing("a"))).empty());
  CHECK(ino_of(f.backing("a", "big")) != ino_of(f.backing("b", "big")));

  unify::UnifyOptions opts;
  opts.min_size = 3;
  opts.excludes = {"*.log"};
  unify::UnifyReport r = f.run(opts);
  CHECK(r.files_linked == 1);
  CHECK(ino_of(f.backing("a", "big")) == ino_of(f.backing("b", "big")));
  CHECK(ino_of(f.backing("a", "small")) != ino_of(f.backing("b", "small")));
  CHECK(ino_of(f.backing("a", "var/log/x.log")) != ino_of(f.backing("b", "var/log/x.log")));
  CHECK(unify::excluded({"var/log/*"}, "var/log/x.log"));
  CHECK(unify::excluded({"/var/cache"}, "var/cache/apt/pkg.bin"));
  CHECK_FALSE(unify::excluded({"var/log/*"}, "usr/var/log/x"));
}

TEST_CASE("directory times are restored even when files sort around a subdirectory", "[unify]") {
  VUNIFY_REQUIRE_ROOT();
  PoolFixture f;
  // d/a < d/m/b < d/z: the files of d come before and after those of its subdirectory.
  for (const char* g : {"a", "b", "c"}) {
    std::string root = f.dir / g;
    for (int d = 0; d < 60; ++d) {
      std::string dir = root + "/d" + std::to_string(d);
      test::write_file(dir + "/a", "first " + std::to_string(d));
      test::write_file(dir + "/m/b", "middle " + std::to_string(d));
      test::write_file(dir + "/z", "last " + std::to_string(d));
      struct timespec ts[2] = {{1300000000, 0}, {1300000000 + d, 11}};
      ::utimensat(AT_FDCWD, (dir + "/m").c_str(), ts, 0);
      ::utimensat(AT_FDCWD, dir.c_str(), ts, 0);
    }
    f.add(g, root);
  }
  std::map<std::string, test::Snapshot> before;
  for (const char* g : {"a", "b", "c"}) before[g] = test::snapshot(f.backing(g));
  unify::UnifyReport r = f.run();
  CHECK(r.files_linked == 2 * 3 * 60);
  for (const char* g : {"a", "b", "c"}) {
    auto d = test::diff(before[g], test::snapshot(f.backing(g)));
    INFO(g << ": " << (d.empty() ? "" : d[0]));
    CHECK(d.empty());
  }
}
