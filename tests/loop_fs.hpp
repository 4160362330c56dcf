// An ext4 filesystem on a loop device, mounted on a scratch directory: for tests that need a
// real block device of their own (disk I/O limits). Everything goes in the destructor, in
// order (unmount, detach the loop device, remove the image), even when the test failed.
#pragma once
#include <string>

#include "tests/helpers.hpp"

namespace vunify::test {

class LoopFs {
 public:
  // A sparse image of `size_mib` in a scratch directory, losetup, mkfs.ext4, mount. Check
  // ready() (false: `why()` says what was missing, and the test skips).
  explicit LoopFs(int size_mib = 256);
  ~LoopFs();
  LoopFs(const LoopFs&) = delete;
  LoopFs& operator=(const LoopFs&) = delete;

  bool ready() const { return mounted_; }
  const std::string& why() const { return why_; }
  const std::string& mountpoint() const { return mnt_; }
  const std::string& device() const { return device_; }  // /dev/loopN
  std::string majmin() const;                             // "7:N"

 private:
  TempDir dir_;
  std::string image_, mnt_, device_, why_;
  bool mounted_ = false;
};

}  // namespace vunify::test
