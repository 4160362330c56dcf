// Safety of the unify engine: symlink attacks (invariant 5), kill -9 at any point
// (invariant 4), a full disk.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <random>

#include "tests/helpers.hpp"
#include "unify/fsck.hpp"
#include "unify/guests.hpp"
#include "unify/store.hpp"
#include "unify/unifier.hpp"

using namespace vunify;
using vunify::test::TempDir;

namespace {

std::string backing(const std::string& pool, const std::string& guest) { return pool + "/backing/" + guest; }

void add_guest(const std::string& pool_path, const std::string& name, const std::string& from) {
  unify::Pool pool(pool_path, unify::Access::Write);
  unify::add_guest(pool, name, from, false);
}

}  // namespace

TEST_CASE("symlinks planted in a guest never make unify read or change the host", "[unify][safety]") {
  VUNIFY_REQUIRE_ROOT();
  TempDir dir;
  std::string pool_path = dir / "pool";
  unify::Pool::init(pool_path);
  // An outside directory with a file identical to the guests' files.
  test::write_file(dir / "outside/passwd", "root:x:0:0::/root:/bin/sh\n");
  auto outside_before = test::snapshot(dir / "outside");
  struct stat outside_st = test::lstat_of(dir / "outside/passwd");
  for (const char* g : {"a", "b"}) {
    std::string src = dir / (std::string("src-") + g);
    test::write_file(src + "/sub/passwd", "root:x:0:0::/root:/bin/sh\n");
    test::write_file(src + "/keep", "keep\n");
    REQUIRE(::symlink((dir / "outside").c_str(), (src + "/etc").c_str()) == 0);
    REQUIRE(::symlink("../../../..", (src + "/lib").c_str()) == 0);
    add_guest(pool_path, g, src);
  }
  unify::UnifyOptions opts;
  // Swap guest a's directory `sub` for a symlink to the outside directory after the walk.
  opts.phase_hook = [&](std::string_view phase) {
    if (phase != "planned") return;
    std::string sub = backing(pool_path, "a") + "/sub";
    REQUIRE(::rename(sub.c_str(), (sub + ".moved").c_str()) == 0);
    REQUIRE(::symlink((dir / "outside").c_str(), sub.c_str()) == 0);
  };
  unify::UnifyReport r;
  {
    unify::Pool pool(pool_path, unify::Access::Write);
    r = unify::unify(pool, opts);
  }
  CHECK(!r.warnings.empty());
  CHECK(test::diff(outside_before, test::snapshot(dir / "outside")).empty());
  struct stat after = test::lstat_of(dir / "outside/passwd");
  CHECK(after.st_ino == outside_st.st_ino);
  CHECK(after.st_nlink == 1);
  CHECK(after.st_ctim.tv_sec == outside_st.st_ctim.tv_sec);
  CHECK(after.st_ctim.tv_nsec == outside_st.st_ctim.tv_nsec);
  // the symlinks themselves are untouched
  char buf[256];
  ssize_t n = ::readlink((backing(pool_path, "b") + "/lib").c_str(), buf, sizeof buf);
  CHECK(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0) == "../../../..");
}

TEST_CASE("kill -9 at any point of unify leaves every file old or new", "[unify][safety][crash]") {
  VUNIFY_REQUIRE_ROOT();
  TempDir dir;
  std::string pool_path = dir / "pool";
  unify::Pool::init(pool_path);
  const std::vector<std::string> guests = {"g1", "g2", "g3"};
  for (const auto& g : guests) {
    std::string src = dir / ("src-" + g);
    for (int d = 0; d < 4; ++d)
      for (int i = 0; i < 6; ++i)
        test::write_file(src + "/d" + std::to_string(d) + "/f" + std::to_string(i),
                         std::string(100 + i, static_cast<char>('a' + d)), 0644, 0, 0, 1500000000 + i);
    test::write_file(src + "/own", "only " + g);
    // a hard-link group across two directories: unified as one file, never split
    REQUIRE(::link((src + "/d0/f0").c_str(), (src + "/d3/twin").c_str()) == 0);
    struct timespec ts[2] = {{1400000000, 0}, {1400000000, 7}};
    for (int d = 0; d < 4; ++d) ::utimensat(AT_FDCWD, (src + "/d" + std::to_string(d)).c_str(), ts, 0);
    add_guest(pool_path, g, src);
  }
  std::map<std::string, test::Snapshot> before;
  for (const auto& g : guests) before[g] = test::snapshot(backing(pool_path, g));

  // Count the steps of a full run on a scratch copy of the pool.
  uint64_t total_steps = 0;
  {
    TempDir probe;
    REQUIRE(test::run("cp -a '" + pool_path + "' '" + probe.path() + "/pool'").status == 0);
    unify::Pool pool(probe / "pool", unify::Access::Write);
    unify::UnifyOptions opts;
    opts.step_hook = [&](uint64_t s) { total_steps = s; };
    unify::unify(pool, opts);
  }
  REQUIRE(total_steps > 20);

  std::mt19937 rng(12345);
  std::uniform_int_distribution<uint64_t> pick(1, total_steps);
  for (int round = 0; round < 50; ++round) {
    uint64_t kill_at = round == 0 ? 1 : round == 1 ? total_steps : pick(rng);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      try {
        unify::Pool pool(pool_path, unify::Access::Write);
        unify::UnifyOptions opts;
        opts.step_hook = [&](uint64_t s) {
          if (s == kill_at) ::raise(SIGKILL);
        };
        unify::unify(pool, opts);
      } catch (...) {
        ::_exit(2);
      }
      ::_exit(0);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    INFO("round " << round << ", killed at step " << kill_at << " of " << total_steps);
    // Before any recovery: every file has its old content and metadata (dir times may lag).
    for (const auto& g : guests) {
      test::Snapshot now = test::snapshot(backing(pool_path, g));
      for (const auto& [path, desc] : before[g]) {
        struct stat st = test::lstat_of(backing(pool_path, g) + "/" + path);
        if (S_ISDIR(st.st_mode)) continue;
        REQUIRE(now.count(path));
        REQUIRE(now[path] == desc);
      }
    }
    // Recovery (any write open) + fsck: exactly the old trees, consistent index.
    {
      unify::Pool pool(pool_path, unify::Access::Write);
      unify::FsckReport fr = unify::fsck(pool, false);
      INFO((fr.problems.empty() ? std::string() : fr.problems[0]));
      REQUIRE(fr.problems.empty());
      REQUIRE(unify::Store(pool).verify(0).empty());
    }
    for (const auto& g : guests) {
      auto d = test::diff(before[g], test::snapshot(backing(pool_path, g)));
      INFO(g << ": " << (d.empty() ? "" : d[0]));
      REQUIRE(d.empty());
      std::string root = backing(pool_path, g);
      REQUIRE(test::lstat_of(root + "/d0/f0").st_ino == test::lstat_of(root + "/d3/twin").st_ino);
    }
    if (round % 10 == 9) {  // undo progress now and then, so later kills hit early steps too
      unify::Pool pool(pool_path, unify::Access::Write);
      for (const auto& g : guests) unify::remove_guest(pool, g);
      unify::Store(pool).gc(false);
      for (const auto& g : guests) unify::add_guest(pool, g, dir / ("src-" + g), false);
      for (const auto& g : guests) before[g] = test::snapshot(backing(pool_path, g));
    }
  }
}

TEST_CASE("a full disk stops unify with a clear error and leaves files intact", "[unify][safety]") {
  VUNIFY_REQUIRE_ROOT();
  TempDir dir;
  std::string mnt = dir / "small";
  test::mkdirs(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=8m,nr_inodes=2000") != 0) {
    WARN("skipped: cannot mount a tmpfs: " << std::strerror(errno));
    return;
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{mnt};
  std::string pool_path = mnt + "/pool";
  unify::Pool::init(pool_path);
  for (const char* g : {"a", "b"}) {
    for (int i = 0; i < 40; ++i) test::write_file(dir / (std::string(g) + "/f" + std::to_string(i)), "data" + std::to_string(i));
    add_guest(pool_path, g, dir / g);
  }
  auto before = test::snapshot(backing(pool_path, "a"));
  // Fill the filesystem: data blocks and inodes.
  test::run("dd if=/dev/zero of='" + mnt + "/fill' bs=64k 2>/dev/null");
  for (int i = 0; i < 1000; ++i) {
    int fd = ::open((mnt + "/i" + std::to_string(i)).c_str(), O_CREAT | O_WRONLY, 0600);
    if (fd < 0) break;
    ::close(fd);
  }
  test::CmdResult r = test::vunify(pool_path, "unify --all");
  INFO(r.out);
  if (r.status == 0) {
    // tmpfs may still find room for links; then the result must simply be correct
    CHECK(test::diff(before, test::snapshot(backing(pool_path, "a"))).empty());
    return;
  }
  CHECK(r.status != 0);
  bool clear = r.out.find("No space left on device") != std::string::npos || r.out.find("full") != std::string::npos;
  CHECK(clear);
  CHECK(test::diff(before, test::snapshot(backing(pool_path, "a"))).empty());
}
