// Copy-on-write through the view (DESIGN invariant 1): every change of a shared file in one
// guest breaks its link first; the other guests and the store object stay identical.
// Each case runs with kernel passthrough on and off.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <functional>

#include "os/error.hpp"
#include "tests/test_fs_support.hpp"

using namespace vunify::test;

namespace {

struct Change {
  const char* what;
  const char* file;  // relative to the guest root
  std::function<void(const std::string& path)> apply;
  std::function<void(const std::string& path)> check;  // what g1 must see afterwards
};

std::vector<Change> changes() {
  const std::string shared(300000, 's');
  return {
      {"append", "data/shared.bin", [](auto& p) { write_at(p, "more\n", 0, O_APPEND); },
       [shared](auto& p) { CHECK(content_of(p) == shared + "end\nmore\n"); }},
      {"overwrite in place", "data/shared.bin", [](auto& p) { write_at(p, "XY", 10); },
       [](auto& p) { CHECK(content_of(p).substr(8, 4) == "ssXY"); CHECK(stat_of(p).st_size == 300004); }},
      {"O_TRUNC", "data/shared.bin", [](auto& p) { write_at(p, "new", 0, O_TRUNC); },
       [](auto& p) { CHECK(content_of(p) == "new"); }},
      {"truncate", "data/shared.bin", [](auto& p) { REQUIRE(::truncate(p.c_str(), 100) == 0); },
       [shared](auto& p) { CHECK(content_of(p) == shared.substr(0, 100)); }},
      {"chmod", "data/shared.bin", [](auto& p) { REQUIRE(::chmod(p.c_str(), 0600) == 0); },
       [](auto& p) { CHECK((stat_of(p).st_mode & 07777) == 0600); }},
      {"chown", "data/shared.bin", [](auto& p) { REQUIRE(::chown(p.c_str(), 123, 456) == 0); },
       [](auto& p) { CHECK(stat_of(p).st_uid == 123); CHECK(stat_of(p).st_gid == 456); }},
      {"utimes", "data/shared.bin",
       [](auto& p) {
         struct timespec ts[2] = {{1000, 0}, {2000, 7}};
         REQUIRE(::utimensat(AT_FDCWD, p.c_str(), ts, 0) == 0);
       },
       [](auto& p) { CHECK(stat_of(p).st_mtim.tv_sec == 2000); CHECK(stat_of(p).st_mtim.tv_nsec == 7); }},
      {"setxattr", "data/big.txt", [](auto& p) { REQUIRE(::setxattr(p.c_str(), "user.tag", "v2", 2, 0) == 0); },
       [](auto& p) {
         char v[8] = {};
         CHECK(::getxattr(p.c_str(), "user.tag", v, sizeof v) == 2);
         CHECK(std::string(v) == "v2");
       }},
      {"removexattr", "data/big.txt", [](auto& p) { REQUIRE(::removexattr(p.c_str(), "user.tag") == 0); },
       [](auto& p) { CHECK(::getxattr(p.c_str(), "user.tag", nullptr, 0) < 0); }},
      {"fallocate", "data/shared.bin",
       [](auto& p) { allocate(p, 1 << 20); },
       [](auto& p) { CHECK(stat_of(p).st_size == 1 << 20); }},
      {"link", "data/shared.bin",
       [](auto& p) { REQUIRE(::link(p.c_str(), (p + ".link").c_str()) == 0); },
       [](auto& p) {
         CHECK(stat_of(p).st_nlink == 2);
         CHECK(stat_of(p).st_ino == stat_of(p + ".link").st_ino);
         write_at(p + ".link", "L", 0);
         CHECK(content_of(p)[0] == 'L');
       }},
  };
}

bool same_inode(const std::string& a, const std::string& b) {
  struct stat x = stat_of(a), y = stat_of(b);
  return x.st_ino == y.st_ino && x.st_dev == y.st_dev;
}

}  // namespace

TEST_CASE("every change of a shared file breaks the link: other guests and the store stay identical", "[fs][cow]") {
  VUNIFY_REQUIRE_FUSE();
  bool passthrough = GENERATE(true, false);
  for (const Change& change : changes()) {
    INFO("change: " << change.what << ", passthrough " << passthrough);
    ViewPool v(2, passthrough);
    REQUIRE(same_inode(v.backing("g1", change.file), v.backing("g2", change.file)));  // shared before
    Snapshot g2_before = snapshot(v.root("g2")), store_before = store_snapshot(v.pool);
    std::string path = v.root("g1", change.file);
    change.apply(path);
    change.check(path);
    CHECK_FALSE(same_inode(v.backing("g1", change.file), v.backing("g2", change.file)));
    CHECK(diff(g2_before, snapshot(v.root("g2"))).empty());
    CHECK(diff(store_before, store_snapshot(v.pool)).empty());
    auto verify = cli(v.pool, "verify");
    CHECK(verify.status == 0);
    INFO(verify.out);
  }
}

TEST_CASE("a break keeps the guest's directory mtime and leaves no temp files", "[fs][cow]") {
  VUNIFY_REQUIRE_FUSE();
  ViewPool v(2);
  struct stat dir_before = stat_of(v.root("g1", "data"));
  write_at(v.root("g1", "data/shared.bin"), "x", 0);
  struct stat dir_after = stat_of(v.root("g1", "data"));
  CHECK(dir_after.st_mtim.tv_sec == dir_before.st_mtim.tv_sec);
  CHECK(dir_after.st_mtim.tv_nsec == dir_before.st_mtim.tv_nsec);
  auto listing = run("ls -A '" + v.backing("g1", "data") + "'");
  CHECK(listing.out.find(".vunify-tmp") == std::string::npos);
}

TEST_CASE("readers that opened before a break keep the shared content", "[fs][cow]") {
  VUNIFY_REQUIRE_FUSE();
  bool passthrough = GENERATE(true, false);
  INFO("passthrough " << passthrough);
  ViewPool v(2, passthrough);
  std::string path = v.root("g1", "data/shared.bin");
  int reader = ::open(path.c_str(), O_RDONLY);
  REQUIRE(reader >= 0);
  char buf[4] = {};
  REQUIRE(::pread(reader, buf, 4, 0) == 4);
  write_at(path, "WXYZ", 0);
  CHECK(::pread(reader, buf, 4, 0) == 4);
  CHECK(std::string(buf, 4) == "ssss");
  CHECK(content_of(path).substr(0, 4) == "WXYZ");  // later opens see the private copy
  ::close(reader);
  write_at(path, "AB", 0);  // after the old reader is gone: normal opens again
  CHECK(content_of(path).substr(0, 4) == "ABYZ");
  CHECK(content_of(v.root("g2", "data/shared.bin")).substr(0, 4) == "ssss");
}

TEST_CASE("10 guests writing the same shared file at once get 10 private copies and lose no write", "[fs][cow]") {
  VUNIFY_REQUIRE_FUSE();
  ViewPool v(10);
  std::vector<pid_t> kids;
  for (const auto& g : v.guests) {
    pid_t pid = ::fork();
    if (pid == 0) {
      std::string path = v.root(g, "data/shared.bin");
      int fd = ::open(path.c_str(), O_WRONLY | O_APPEND);
      if (fd < 0) _exit(1);
      std::string line = "written by " + g + "\n";
      for (int i = 0; i < 50; ++i)
        if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(2);
      _exit(::close(fd) == 0 ? 0 : 3);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  std::string shared = std::string(300000, 's') + "end\n";
  std::vector<ino_t> inos;
  for (const auto& g : v.guests) {
    std::string expect = shared;
    for (int i = 0; i < 50; ++i) expect += "written by " + g + "\n";
    CHECK(content_of(v.root(g, "data/shared.bin")) == expect);
    inos.push_back(stat_of(v.backing(g, "data/shared.bin")).st_ino);
  }
  std::sort(inos.begin(), inos.end());
  CHECK(std::unique(inos.begin(), inos.end()) == inos.end());  // 10 distinct private copies
  CHECK(cli(v.pool, "verify").status == 0);
}

TEST_CASE("ENOSPC during a break leaves the shared file untouched and reaches the guest", "[fs][cow]") {
  VUNIFY_REQUIRE_FUSE();
  TempDir tmp;
  std::string fsdir = tmp / "small";
  mkdirs(fsdir);
  if (run("mount -t tmpfs -o size=6m vunify-test '" + fsdir + "'").status != 0) {
    WARN("skipped: cannot mount a small tmpfs");
    return;
  }
  std::string pool = fsdir + "/pool";
  MountGuard guard(pool, tmp.path());
  REQUIRE(cli(pool, "init").status == 0);
  std::string payload(1500000, 'p');
  for (const char* g : {"g1", "g2"}) {
    write_file(tmp / (std::string("src-") + g) + "/big", payload);
    REQUIRE(cli(pool, std::string("guest add ") + g + " --from '" + tmp / (std::string("src-") + g) + "'").status == 0);
  }
  REQUIRE(cli(pool, "unify --all").status == 0);
  REQUIRE(cli(pool, "mount --all").status == 0);
  run("dd if=/dev/zero of='" + fsdir + "/filler' bs=64k 2>/dev/null");  // fill the filesystem
  std::string path = pool + "/guests/g1/root/big";
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND);
  int err = errno;
  CHECK(fd < 0);
  CHECK(err == ENOSPC);
  if (fd >= 0) ::close(fd);
  CHECK(content_of(path) == payload);
  CHECK(stat_of(pool + "/backing/g1/big").st_ino == stat_of(pool + "/backing/g2/big").st_ino);  // still shared
  CHECK(run("ls -A '" + pool + "/backing/g1'").out == "big\n");  // no temp left behind
  ::unlink((fsdir + "/filler").c_str());  // verify needs room for its index
  auto verify = cli(pool, "verify");
  CHECK(verify.status == 0);
  INFO(verify.out);
  write_at(path, "ok", 0, O_APPEND);  // with room again the break succeeds
  CHECK(content_of(path) == payload + "ok");
}
