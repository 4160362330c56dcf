// No stale reads after a copy-on-write break (issue 16, part 1): the kernel keeps a guest
// inode's page cache across opens (cached mode: small files, or any file without
// passthrough), so pages of the shared content read before a break must not be served to
// opens after it. Two guests A and B share one file per scenario; in A, the file is held
// open by an fd that has read it, by a shared mmap, or by nothing (read and closed before,
// or never read), another open breaks it, and after every close a fresh open must read the
// new bytes while B and the store keep the old ones. Opens from before the break keep the
// shared content while they last.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tests/test_fs_support.hpp"

using namespace vunify::test;

namespace {

enum class Holder { Fd, Mmap, ReadBefore, Nothing };
enum class Write { Overwrite, Truncate, Append };

struct Scenario {
  const char* name;
  Holder holder;
  Write write;
};

const std::vector<Scenario>& scenarios() {
  static const std::vector<Scenario> all = {
      {"fd-overwrite", Holder::Fd, Write::Overwrite},
      {"fd-trunc", Holder::Fd, Write::Truncate},
      {"mmap-overwrite", Holder::Mmap, Write::Overwrite},
      {"fd-append", Holder::Fd, Write::Append},
      {"read-before-overwrite", Holder::ReadBefore, Write::Overwrite},
      {"nothing-overwrite", Holder::Nothing, Write::Overwrite},
  };
  return all;
}

const std::string kNew = "NEWBYTES!";  // 9 bytes

// Distinct old content per file (so every scenario has its own store object).
std::string old_content(const std::string& file, size_t size) {
  std::string s;
  while (s.size() < size) s += file + ":" + std::to_string(s.size()) + "\n";
  s.resize(size);
  return s;
}

std::string expected(const std::string& old, Write w) {
  switch (w) {
    case Write::Overwrite: return kNew + old.substr(kNew.size());
    case Write::Truncate: return kNew;
    case Write::Append: return old + kNew;
  }
  return {};
}

void apply_write(const std::string& path, Write w) {
  switch (w) {
    case Write::Overwrite: write_at(path, kNew, 0); break;
    case Write::Truncate: write_at(path, kNew, 0, O_TRUNC); break;
    case Write::Append: write_at(path, kNew, 0, O_APPEND); break;
  }
}

std::string pread_all(int fd, size_t size) {
  std::string buf(size + 1, '\0');
  ssize_t n = ::pread(fd, buf.data(), buf.size(), 0);
  REQUIRE(n >= 0);
  buf.resize(static_cast<size_t>(n));
  return buf;
}

// Runs one scenario on `file` (relative to the guest root) in guest A.
void run_scenario(const std::string& pool, const std::string& file, const Scenario& s, const std::string& old) {
  std::string path = pool + "/guests/A/root/" + file;
  int fd = -1;
  void* map = MAP_FAILED;
  if (s.holder != Holder::Nothing) {
    fd = ::open(path.c_str(), O_RDONLY);
    REQUIRE(fd >= 0);
    REQUIRE(pread_all(fd, old.size()) == old);
  }
  if (s.holder == Holder::Mmap) {
    map = ::mmap(nullptr, old.size(), PROT_READ, MAP_SHARED, fd, 0);
    REQUIRE(map != MAP_FAILED);
    CHECK(std::string(static_cast<char*>(map), old.size()) == old);
  }
  if (s.holder == Holder::Mmap || s.holder == Holder::ReadBefore) {
    ::close(fd);
    fd = -1;
  }
  apply_write(path, s.write);
  // Opens from before the break keep the shared content while they last (in cached mode up
  // to the file's new size: after O_TRUNC the first 9 old bytes; in passthrough all of it).
  if (fd >= 0) {
    std::string seen = pread_all(fd, old.size());
    CHECK(seen.size() >= std::min(old.size(), expected(old, s.write).size()));
    CHECK(seen == old.substr(0, seen.size()));
  }
  if (map != MAP_FAILED) {
    CHECK(std::string(static_cast<char*>(map), old.size()) == old);
    ::munmap(map, old.size());
  }
  if (fd >= 0) ::close(fd);
  std::string want = expected(old, s.write);
  CHECK(content_of(path) == want);
  CHECK(stat_of(path).st_size == static_cast<off_t>(want.size()));
  CHECK(content_of(pool + "/backing/A/" + file) == want);
  CHECK(content_of(pool + "/guests/B/root/" + file) == old);
}

}  // namespace

TEST_CASE("every open after a break reads the new bytes, whatever held the file in cached mode", "[fs][cow][stale]") {
  VUNIFY_REQUIRE_FUSE();
  bool passthrough = GENERATE(true, false);
  const std::vector<size_t> sizes = {4000, 300000};  // cached mode; passthrough-sized
  TempDir tmp;
  std::string pool = tmp / "pool";
  MountGuard guard(pool, tmp.path());
  REQUIRE(cli(pool, "init").status == 0);
  for (const char* g : {"A", "B"}) {
    std::string src = tmp / (std::string("src-") + g);
    for (const auto& s : scenarios())
      for (size_t size : sizes) {
        std::string file = std::string(s.name) + "-" + std::to_string(size);
        write_file(src + "/" + file, old_content(file, size));
      }
    REQUIRE(cli(pool, std::string("guest add ") + g + " --from '" + src + "'").status == 0);
  }
  REQUIRE(cli(pool, "unify --all").status == 0);
  REQUIRE(cli(pool, std::string("mount --all") + (passthrough ? "" : " --no-passthrough")).status == 0);
  Snapshot store_before = store_snapshot(pool);
  for (const auto& s : scenarios())
    for (size_t size : sizes) {
      std::string file = std::string(s.name) + "-" + std::to_string(size);
      INFO("scenario " << file << ", passthrough " << passthrough);
      REQUIRE(stat_of(pool + "/backing/A/" + file).st_ino == stat_of(pool + "/backing/B/" + file).st_ino);
      run_scenario(pool, file, s, old_content(file, size));
    }
  CHECK(diff(store_before, store_snapshot(pool)).empty());
  auto verify = cli(pool, "verify");
  INFO(verify.out);
  CHECK(verify.status == 0);
}
