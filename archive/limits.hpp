// Internal to the archive import: the limits a hostile archive runs into (entries, bytes,
// expansion ratio, free space, device nodes). Each check throws UserError naming the entry.
#pragma once
#include <sys/stat.h>

#include <cstdint>
#include <string>

#include "archive/archive.hpp"

namespace vunify::archive {

class ImportBudget {
 public:
  // `pool_fd`: any fd on the pool's filesystem (for its free space).
  ImportBudget(const ImportLimits& limits, const std::string& label, int pool_fd);

  // One more entry (--max-entries).
  void count_entry(const std::string& entry);
  // Before a regular file of `size` bytes is written: --max-size, and the free space.
  void reserve_file(const std::string& entry, int64_t size);
  // After a file's data: `data_bytes` written by the import so far, `archive_bytes` read (--max-ratio).
  void check_ratio(const std::string& entry, uint64_t data_bytes, int64_t archive_bytes) const;
  // A device node other than the standard pseudo-devices needs allow_devices.
  void check_device(const std::string& entry, const struct stat& st) const;

 private:
  void check_space(const std::string& entry, uint64_t need);
  const ImportLimits& lim_;
  std::string label_;
  int pool_fd_;
  uint64_t bytes_ = 0, entries_ = 0;
  uint64_t unchecked_bytes_ = 0, free_bytes_ = 0;  // free space: statfs every 64 MiB or when short
};

}  // namespace vunify::archive
