#include "archive/limits.hpp"

#include <fmt/format.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

#include <algorithm>

#include "archive/entry_meta.hpp"
#include "os/error.hpp"

namespace vunify::archive {

ImportBudget::ImportBudget(const ImportLimits& limits, const std::string& label, int pool_fd)
    : lim_(limits), label_(label), pool_fd_(pool_fd) {
  check_space("", 0);
}

void ImportBudget::count_entry(const std::string& entry) {
  if (++entries_ > lim_.max_entries)
    reject(label_, entry, fmt::format("archive has more than the {} entries allowed (--max-entries)", lim_.max_entries));
}

void ImportBudget::reserve_file(const std::string& entry, int64_t size) {
  if (size < 0 || static_cast<uint64_t>(size) > lim_.max_bytes - std::min(lim_.max_bytes, bytes_))
    reject(label_, entry, fmt::format("archive holds more than the {} bytes allowed (--max-size)", lim_.max_bytes));
  bytes_ += static_cast<uint64_t>(size);
  check_space(entry, static_cast<uint64_t>(size));
}

void ImportBudget::check_space(const std::string& entry, uint64_t need) {
  if (unchecked_bytes_ + need + lim_.reserve_bytes <= free_bytes_ && unchecked_bytes_ < (64ULL << 20)) {
    unchecked_bytes_ += need;
    return;
  }
  struct statvfs vfs {};
  if (::fstatvfs(pool_fd_, &vfs) != 0) os::throw_errno("statfs", "pool");
  free_bytes_ = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  unchecked_bytes_ = need;
  if (need + lim_.reserve_bytes > free_bytes_)
    reject(label_, entry,
           fmt::format("not enough free space in the pool: {} bytes needed, {} free (keeping {} in reserve)", need, free_bytes_,
                       lim_.reserve_bytes));
}

void ImportBudget::check_ratio(const std::string& entry, uint64_t data_bytes, int64_t archive_bytes) const {
  uint64_t read = static_cast<uint64_t>(std::max<int64_t>(archive_bytes, 1));
  if (data_bytes > lim_.ratio_floor && static_cast<double>(data_bytes) > lim_.max_ratio * static_cast<double>(read))
    reject(label_, entry,
           fmt::format("archive expands more than {}x (--max-ratio): {} bytes of data from {} archive bytes", lim_.max_ratio,
                       data_bytes, read));
}

void ImportBudget::check_device(const std::string& entry, const struct stat& st) const {
  if (lim_.allow_devices || !(S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))) return;
  // The pseudo-devices a container runtime creates anyway: null zero full random urandom,
  // tty console ptmx.
  unsigned ma = major(st.st_rdev), mi = minor(st.st_rdev);
  bool standard = S_ISCHR(st.st_mode) && ((ma == 1 && (mi == 3 || mi == 5 || mi == 7 || mi == 8 || mi == 9)) || (ma == 5 && mi <= 2));
  if (!standard)
    reject(label_, entry,
           fmt::format("device node {}:{} (only the standard pseudo-devices are imported without --allow-devices)", ma, mi));
}

}  // namespace vunify::archive
