// A full disk: a small ext4 with 1 KiB blocks on a loop device, filled to ~64 KiB free. Every
// command ends with a clear message (never a signal), read-only commands still work.
#include <sys/mount.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>

#include "tests/helpers.hpp"
#include "unify/pool.hpp"

using namespace vunify;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// An ext4 image on a loop device mounted at dir/mnt; unmounted and detached even on failure.
class LoopExt4 {
 public:
  LoopExt4(const test::TempDir& dir, int size_kib) : image_(dir / "ext4.img"), mnt_(dir / "mnt") {
    test::mkdirs(mnt_);
    if (test::run("truncate -s " + std::to_string(size_kib) + "K '" + image_ + "' && mkfs.ext4 -q -F -b 1024 -m 0 '" + image_ + "'")
            .status != 0) {
      why_ = "mkfs.ext4 failed";
      return;
    }
    test::CmdResult loop = test::run("losetup --find --show '" + image_ + "'");
    if (loop.status != 0) {
      why_ = "no loop device: " + loop.out;
      return;
    }
    device_ = loop.out.substr(0, loop.out.find('\n'));
    if (::mount(device_.c_str(), mnt_.c_str(), "ext4", 0, nullptr) != 0) why_ = std::string("mount: ") + std::strerror(errno);
    else mounted_ = true;
  }
  ~LoopExt4() {
    if (mounted_) ::umount2(mnt_.c_str(), MNT_DETACH);
    if (!device_.empty()) test::run("losetup -d '" + device_ + "'");
  }
  LoopExt4(const LoopExt4&) = delete;
  LoopExt4& operator=(const LoopExt4&) = delete;
  bool ok() const { return mounted_; }
  const std::string& why() const { return why_; }
  const std::string& mnt() const { return mnt_; }

 private:
  std::string image_, mnt_, device_, why_;
  bool mounted_ = false;
};

// Fills the filesystem, then frees `free_kib` again.
void fill_leaving(const std::string& mnt, int free_kib) {
  test::run("dd if=/dev/zero of='" + mnt + "/fill' bs=1k 2>/dev/null; sync");
  test::run("truncate -s -" + std::to_string(free_kib) + "K '" + mnt + "/fill'; sync");
}

void check_clear_failure(const test::CmdResult& r) {
  CHECK(r.status < 128);  // never a signal (SIGBUS was 135)
  if (r.status != 0) CHECK((contains(r.out, "No space left on device") || contains(r.out, "full")));
}

}  // namespace

TEST_CASE("a full disk gives clear errors, never a signal, and read-only commands still work", "[safety][full]") {
  VUNIFY_REQUIRE_ROOT();
  test::TempDir dir;
  LoopExt4 fs(dir, 24 * 1024);
  if (!fs.ok()) {
    WARN("skipped: " << fs.why());
    return;
  }
  std::string pool = fs.mnt() + "/pool";
  unify::Pool::init(pool);
  for (const char* g : {"a", "b", "c"}) {
    for (int i = 0; i < 300; ++i) test::write_file(dir / (std::string(g) + "/d" + std::to_string(i % 10) + "/f" + std::to_string(i)), "same content " + std::to_string(i));
    test::CmdResult add = test::vunify(pool, std::string("guest add ") + g + " --from '" + dir / g + "'");
    INFO(add.out);
    REQUIRE(add.status == 0);
  }
  // SQLite extended its -shm by one byte per 4 KiB page: on 1 KiB blocks the first store into a
  // hole of the mapped file with no block left was a SIGBUS (at 8-10, 16, 20, 32 KiB free here).
  for (int free_kib : {0, 4, 8, 9, 10, 16, 20, 32, 64}) {
    fill_leaving(fs.mnt(), free_kib);
    INFO("free KiB: " << free_kib);
    for (const char* cmd : {"fsck", "verify", "guest list", "stat", "gc --dry-run"}) {
      test::CmdResult r = test::vunify(pool, cmd);
      INFO(cmd << ": " << r.out);
      CHECK((r.status == 0 || (std::string(cmd) == "fsck" && r.status == 3)));
    }
    for (const char* cmd : {"unify --all", "fsck --repair", "gc"}) {
      test::CmdResult r = test::vunify(pool, cmd);
      INFO(cmd << ": " << r.out);
      check_clear_failure(r);
    }
  }
  test::write_file(dir / "big.tar", std::string(200 * 1024, 'x'));
  test::CmdResult import = test::vunify(pool, "template import T '" + dir / "big.tar" + "'");
  INFO(import.out);
  CHECK(import.status == 2);
  CHECK(contains(import.out, "reserve"));

  ::unlink((fs.mnt() + "/fill").c_str());  // room again: the pool works as before
  test::CmdResult after = test::vunify(pool, "unify --all");
  INFO(after.out);
  CHECK(after.status == 0);
  CHECK(test::vunify(pool, "fsck").status == 0);
}
