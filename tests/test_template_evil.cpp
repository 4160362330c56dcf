// Hostile and broken archives: each is refused with an error naming the entry, and nothing
// outside the import's temp directory changes (a sentinel directory and the pool are compared
// before and after; the temp directory itself is gone).
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "tests/helpers.hpp"
#include "tests/scratch_pool.hpp"
#include "os/error.hpp"
#include "unify/archive.hpp"
#include "unify/pool.hpp"

using namespace vunify;
using vunify::test::TempDir;

namespace {

struct EvilFixture : test::ScratchPool {
  std::string sentinel = dir / "sentinel";
  EvilFixture() {
    test::write_file(sentinel + "/passwd", "root:x:0:0::/root:/bin/sh\n");
    test::write_file(sentinel + "/sub/keep", "keep\n");
  }
  // Everything under the test directory but the index files (which SQLite may touch) and the
  // mtimes of the pool's own directories (a temp directory came and went in them).
  test::Snapshot state() const {
    test::Snapshot s = test::snapshot(dir.path());
    for (auto it = s.begin(); it != s.end();) {
      bool db = it->first.find("pool/vunify.") == 0 || it->first == "pool";
      if (!db && it->first.find("pool/") == 0 && it->second.find("40") == 0) {
        std::istringstream in(it->second);  // "mode uid gid mtime [xattrs...]": drop the mtime
        std::string mode, uid, gid, mtime, rest;
        in >> mode >> uid >> gid >> mtime;
        std::getline(in, rest);
        it->second = mode + " " + uid + " " + gid + rest;
      }
      it = db ? s.erase(it) : std::next(it);
    }
    return s;
  }
  // Writes a tar made by a Python snippet (`t` is an open tarfile) and returns its path.
  std::string make_tar(const std::string& body, const std::string& mode = "w") const {
    std::string path = dir.path() + "/in/evil.tar";
    test::mkdirs(dir / "in");
    std::string py = "import io, sys, tarfile\n"
                     "def f(t, name, data=b'x', **kw):\n"
                     "    ti = tarfile.TarInfo(name); ti.size = len(data)\n"
                     "    for k, v in kw.items(): setattr(ti, k, v)\n"
                     "    t.addfile(ti, io.BytesIO(data))\n"
                     "def l(t, name, kind, target):\n"
                     "    ti = tarfile.TarInfo(name); ti.type = kind; ti.linkname = target; t.addfile(ti)\n"
                     "with tarfile.open(sys.argv[1], '" + mode + "', format=tarfile.PAX_FORMAT) as t:\n" + body;
    std::ofstream(dir.path() + "/in/make.py") << py;
    auto r = test::run("python3 '" + (dir.path() + "/in/make.py") + "' '" + path + "'");
    INFO(r.out);
    REQUIRE(r.status == 0);
    return path;
  }
  void expect_refused(const std::string& archive, const std::string& message, const std::string& args = "") const {
    test::Snapshot before = state();
    auto r = test::vunify(pool, "template import evil '" + archive + "' " + args);
    INFO(r.out);
    CHECK(r.status == 2);
    CHECK(r.out.find(message) != std::string::npos);
    CHECK(test::vunify(pool, "template list").out.find("evil") == std::string::npos);
    // The archive file itself is the only thing allowed to differ (it was read: atime).
    test::Snapshot after = state();
    auto d = test::diff(before, after);
    for (const auto& line : d) UNSCOPED_INFO(line);
    CHECK(d.empty());
  }
};

}  // namespace

TEST_CASE("evil archive: '..' escaping the root", "[template][evil]") {
  VUNIFY_REQUIRE_ROOT();
  EvilFixture f;
  f.expect_refused(f.make_tar("    f(t, 'ok.txt')\n    f(t, '../../../../escaped')\n"), "entry '../../../../escaped': path contains '..'");
  CHECK(::access((f.dir / "escaped").c_str(), F_OK) != 0);
}

TEST_CASE("evil archive: absolute path", "[template][evil]") {
  VUNIFY_REQUIRE_ROOT();
  EvilFixture f;
  f.expect_refused(f.make_tar("    f(t, '" + f.sentinel + "/abs')\n"), "absolute path");
}

TEST_CASE("evil archive: a symlink, then a file written through it", "[template][evil]") {
  VUNIFY_REQUIRE_ROOT();
  EvilFixture f;
  f.expect_refused(f.make_tar("    l(t, 'a', tarfile.SYMTYPE, '" + f.sentinel + "')\n    f(t, 'a/passwd', b'owned')\n"),
                   "entry 'a/passwd': path goes through the symlink 'a'");
}

TEST_CASE("evil archive: hard links outside the archive", "[template][evil]") {
  VUNIFY_REQUIRE_ROOT();
  EvilFixture f;
  f.expect_refused(f.make_tar("    l(t, 'h', tarfile.LNKTYPE, '../../../../sentinel/passwd')\n"), "path contains '..'");
  f.expect_refused(f.make_tar("    l(t, 'h', tarfile.LNKTYPE, '/etc/shadow')\n"), "absolute path");
  f.expect_refused(f.make_tar("    l(t, 'h', tarfile.LNKTYPE, 'etc/shadow')\n"), "not an earlier file of this archive");
}

TEST_CASE("evil archive: a directory replaced by a symlink mid-archive", "[template][evil]") {
  VUNIFY_REQUIRE_ROOT();
  EvilFixture f;
  std::string body = "    ti = tarfile.TarInfo('d'); ti.type = tarfile.DIRTYPE; t.addfile(ti)\n"
                     "    f(t, 'd/f')\n"
                     "    l(t, 'd', tarfile.SYMTYPE, '" + f.sentinel + "')\n"
                     "    f(t, 'd/passwd', b'owned')\n";
  f.expect_refused(f.make_tar(body), "entry 'd': duplicate entry");
}

TEST_CASE("evil archive: duplicate entries", "[template][evil]") {
  VUNIFY_REQUIRE_ROOT();
  EvilFixture f;
  f.expect_refused(f.make_tar("    f(t, 'etc/passwd', b'a')\n    f(t, './etc/passwd', b'b')\n"), "entry './etc/passwd': duplicate entry");
  f.expect_refused(f.make_tar("    f(t, 'x')\n    ti = tarfile.TarInfo('x'); ti.type = tarfile.DIRTYPE; t.addfile(ti)\n"),
                   "entry 'x': duplicate entry");
}

TEST_CASE("evil archive: device nodes unless allowed", "[template][evil]") {
  VUNIFY_REQUIRE_ROOT();
  EvilFixture f;
  std::string body = "    ti = tarfile.TarInfo('dev/null'); ti.type = tarfile.CHRTYPE; ti.devmajor = 1; ti.devminor = 3; t.addfile(ti)\n"
                     "    ti = tarfile.TarInfo('dev/sda'); ti.type = tarfile.BLKTYPE; ti.devmajor = 8; ti.devminor = 0; t.addfile(ti)\n";
  std::string tar = f.make_tar(body);
  f.expect_refused(tar, "entry 'dev/sda': device node 8:0");
  auto r = test::vunify(f.pool, "template import dev '" + tar + "' --allow-devices");
  INFO(r.out);
  CHECK(r.status == 0);
}

TEST_CASE("evil archive: newline in a name", "[template][evil]") {
  VUNIFY_REQUIRE_ROOT();
  EvilFixture f;
  f.expect_refused(f.make_tar("    f(t, 'etc/pass\\nwd')\n"), "name contains a newline");
}

TEST_CASE("broken archives: truncated and corrupt", "[template][evil]") {
  VUNIFY_REQUIRE_ROOT();
  EvilFixture f;
  std::string tar = f.make_tar("    f(t, 'a', b'a' * 4096)\n    f(t, 'big', b'b' * 100000)\n");
  REQUIRE(::truncate(tar.c_str(), 40000) == 0);
  f.expect_refused(tar, "cannot read");
  std::string gz = f.dir.path() + "/in/corrupt.tar.gz";
  std::ofstream(gz) << std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10) << std::string(5000, '\x55');
  f.expect_refused(gz, "archive");
  std::string junk = f.dir.path() + "/in/junk";
  std::ofstream(junk) << "this is not an archive\n";
  f.expect_refused(junk, "archive");
}

TEST_CASE("bombs: size, entry count and expansion ratio limits", "[template][evil]") {
  VUNIFY_REQUIRE_ROOT();
  EvilFixture f;
  f.expect_refused(f.make_tar("    f(t, 'big', b'z' * 3000000)\n"), "--max-size", "--max-size 1M");
  f.expect_refused(f.make_tar("    for i in range(10): f(t, 'f%d' % i)\n"), "--max-entries", "--max-entries 5");
  // Ratio and free space through the library (their thresholds are large by default).
  std::string gz = f.make_tar("    f(t, 'zeros', bytes(8 << 20))\n", "w:gz");
  test::Snapshot before = f.state();
  for (int which = 0; which < 2; ++which) {
    unify::Pool pool(f.pool, unify::Access::Write);
    unify::ImportLimits lim;
    if (which == 0) {
      lim.ratio_floor = 1 << 20;
      lim.max_ratio = 50;
    } else {
      lim.reserve_bytes = 1ULL << 60;
    }
    int fd = ::open(gz.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    try {
      unify::TemplateBuilder b(pool, "bomb", "test");
      unify::import_archive(fd, gz, b, lim);
      FAIL("bomb accepted");
    } catch (const os::UserError& e) {
      CHECK_THAT(e.what(), Catch::Contains(which == 0 ? "--max-ratio" : "not enough free space"));
    }
    ::close(fd);
  }
  CHECK(test::diff(before, f.state()).empty());
}

TEST_CASE("a file that cannot be finished stops the import and undoes the files queued around it", "[template][evil]") {
  VUNIFY_REQUIRE_ROOT();
  EvilFixture f;
  // Files get their metadata and their store link on the import's second thread: an error
  // there (the kernel refuses a malformed capability) must stop the import and undo all of it.
  std::string tar = f.make_tar(
      "    for i in range(300): f(t, 'a/f%d' % i, b'%d' % i)\n"
      "    ti = tarfile.TarInfo('a/bad'); ti.size = 1\n"
      "    ti.pax_headers = {'SCHILY.xattr.security.capability': 'garbage'}\n"
      "    t.addfile(ti, io.BytesIO(b'x'))\n"
      "    for i in range(300): f(t, 'b/f%d' % i, b'%d' % i)\n");
  test::Snapshot before = f.state();
  auto r = test::vunify(f.pool, "template import evil '" + tar + "'");
  INFO(r.out);
  CHECK(r.status != 0);
  CHECK(r.out.find("security.capability") != std::string::npos);
  CHECK(r.out.find("a/bad") != std::string::npos);
  CHECK(test::vunify(f.pool, "template list").out.find("evil") == std::string::npos);
  CHECK(test::diff(before, f.state()).empty());
  CHECK(test::vunify(f.pool, "verify").status == 0);
}

TEST_CASE("evil archive: a NUL inside a name ends the name and stays inside", "[template][evil]") {
  VUNIFY_REQUIRE_ROOT();
  EvilFixture f;
  // libarchive (like GNU tar) ends names at a NUL, so the rest of a pax path never takes effect:
  // "ok\0/../../escaped" is imported as "ok", inside the template.
  std::string tar = f.make_tar(
      "    ti = tarfile.TarInfo('x'); ti.pax_headers = {'path': 'ok\\x00/../../../../escaped'}; ti.size = 1\n"
      "    t.addfile(ti, io.BytesIO(b'x'))\n");
  auto r = test::vunify(f.pool, "template import n '" + tar + "'");
  INFO(r.out);
  REQUIRE(r.status == 0);
  CHECK(test::read_file(f.pool + "/templates/n/root/ok") == "x");
  CHECK(::access((f.dir.path() + "/escaped").c_str(), F_OK) != 0);
}
