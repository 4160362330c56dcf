// Test support for the FUSE view: a pool with unified guests, mounted through the CLI, and
// always unmounted in teardown (vunify umount, then umount -l of anything left under it).
#pragma once
#include <sys/stat.h>

#include <string>
#include <vector>

#include "tests/helpers.hpp"

namespace vunify::test {

// True if FUSE views can be tested here (root, /dev/fuse); else the test should skip.
bool can_mount_views();

#define VUNIFY_REQUIRE_FUSE()                                                    \
  do {                                                                           \
    if (!vunify::test::can_mount_views()) {                                      \
      WARN("skipped: needs root and /dev/fuse (real FUSE mounts)");             \
      return;                                                                    \
    }                                                                            \
  } while (0)

// Unmounts every mount beneath `dir` when destroyed.
class MountGuard {
 public:
  MountGuard(std::string pool, std::string dir) : pool_(std::move(pool)), dir_(std::move(dir)) {}
  ~MountGuard();
  MountGuard(const MountGuard&) = delete;
  MountGuard& operator=(const MountGuard&) = delete;

 private:
  std::string pool_, dir_;
};

// A pool with `count` guests g1..gN made from make_sample_guest plus data/shared.bin and
// data/big.txt (identical in every guest, so shared after unify), unified and mounted.
struct ViewPool {
  explicit ViewPool(int count, bool passthrough = true, bool mount = true);
  TempDir tmp;
  std::string pool = tmp / "pool";
  MountGuard guard{pool, tmp.path()};
  std::vector<std::string> guests;

  std::string root(const std::string& guest, const std::string& rel = "") const;     // through the view
  std::string backing(const std::string& guest, const std::string& rel = "") const;  // the backing tree
  std::string source(const std::string& guest) const { return tmp / ("src-" + guest); }
  void mount_all(bool passthrough = true);
  void umount_all();
};

// Runs the vunify CLI on `pool` (a name that does not clash with namespace vunify).
inline CmdResult cli(const std::string& pool, const std::string& args) { return vunify(pool, args); }

// Snapshot of the store objects (content + metadata, no nlink/ctime).
Snapshot store_snapshot(const std::string& pool);
// Content and metadata snapshot of a path (file or tree) through the view.
struct stat stat_of(const std::string& path);
std::string content_of(const std::string& path);
// Writes (O_WRONLY|extra_flags) `data` at `offset` (or appends with O_APPEND).
void write_at(const std::string& path, const std::string& data, off_t offset, int extra_flags = 0);
// fallocate(2) of the first `len` bytes of `path` (mode 0: the file grows to len).
void allocate(const std::string& path, off_t len);

}  // namespace vunify::test
