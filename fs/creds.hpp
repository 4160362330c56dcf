// Acting with a FUSE caller's uid/gid for operations that create inodes, so new files get
// the caller's ownership (and the setgid-directory rules of the backing filesystem).
#pragma once
#include "fs/fuse.hpp"

namespace vunify::fs {

// Keeps capabilities when the fs uid changes (SECBIT_NO_SETUID_FIXUP). Call once in the
// daemon's main thread before worker threads start (credentials are per thread).
void keep_caps_across_fsuid();

// Sets this thread's fsuid/fsgid to the caller's for its lifetime.
class CallerCreds {
 public:
  explicit CallerCreds(fuse_req_t req);
  ~CallerCreds();
  CallerCreds(const CallerCreds&) = delete;
  CallerCreds& operator=(const CallerCreds&) = delete;

 private:
  int old_uid_, old_gid_;
};

}  // namespace vunify::fs
