// Shared test helpers: scratch directories, files with chosen metadata, tree snapshots,
// running the vunify CLI.
#pragma once
#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace vunify::test {

// A scratch directory under $TMPDIR (or /tmp), removed with everything beneath it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

// Writes `content` to `path` (creating parent directories), then applies mode/owner/mtime.
void write_file(const std::string& path, const std::string& content, mode_t mode = 0644, uid_t uid = 0, gid_t gid = 0,
                int64_t mtime_sec = 1700000000);
std::string read_file(const std::string& path);
void mkdirs(const std::string& path);
void set_xattr(const std::string& path, const std::string& name, const std::string& value);
struct stat lstat_of(const std::string& path);

// path -> "type mode uid gid mtime_ns size target xattrs... sha" for every entry (no nlink,
// no ino, no dir size; dir mtimes included), vunify markers excluded.
using Snapshot = std::map<std::string, std::string>;
Snapshot snapshot(const std::string& root);
// Human-readable list of differences (empty if equal).
std::vector<std::string> diff(const Snapshot& before, const Snapshot& after);

struct CmdResult {
  int status = -1;  // exit status, or 128+signal
  std::string out;  // stdout and stderr together
};
// Runs a shell command line.
CmdResult run(const std::string& command);
// Runs the vunify binary with `--pool POOL` and the given arguments (shell-quoted by caller).
CmdResult vunify(const std::string& pool, const std::string& args);

// A small guest tree with varied metadata: text files, a binary copy of /bin/true, a setuid
// file, a file with security.capability, an ACL, a symlink, a fifo, a device node, a sparse
// file and a guest-internal hard link.
void make_sample_guest(const std::string& dir);

bool is_root();

}  // namespace vunify::test

// Skips the current test (with a stated reason) unless running as root.
#define VUNIFY_REQUIRE_ROOT()                                          \
  do {                                                                 \
    if (!vunify::test::is_root()) {                                    \
      WARN("skipped: needs root (real xattrs, devices, ownership)"); \
      return;                                                          \
    }                                                                  \
  } while (0)
