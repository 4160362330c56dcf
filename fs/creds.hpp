// Acting with a FUSE caller's uid/gid and umask for operations that create inodes, so new
// files get the caller's ownership (and the setgid-directory rules of the backing filesystem)
// and the backing filesystem applies the caller's umask or the directory's default ACL.
#pragma once
#include <sys/types.h>

#include "fs/fuse.hpp"

namespace vunify::fs {

// Keeps capabilities when the fs uid changes (SECBIT_NO_SETUID_FIXUP). Call once in the
// daemon's main thread before worker threads start (credentials are per thread).
void keep_caps_across_fsuid();

// Sets this thread's fsuid/fsgid and umask to the caller's for its lifetime.
//
// The kernel does not apply the umask for us (FUSE_CAP_DONT_MASK, needed for POSIX ACLs: a
// directory's default ACL replaces the umask). The backing filesystem does exactly that when
// the creating thread has the caller's umask, so each worker thread gets its own umask
// (unshare(CLONE_FS), once per thread) and takes the request's. Should the unshare fail, the
// umask cannot be per thread: mode() then applies it (default ACLs still inherit, but with
// the umask applied on top).
class CallerCreds {
 public:
  explicit CallerCreds(fuse_req_t req);
  ~CallerCreds();
  CallerCreds(const CallerCreds&) = delete;
  CallerCreds& operator=(const CallerCreds&) = delete;

  // The mode to pass to the creating call for a requested `mode`.
  mode_t mode(mode_t requested) const { return thread_umask_ ? requested : requested & ~umask_; }

 private:
  uid_t uid_;
  gid_t gid_;
  mode_t umask_;             // the caller's
  bool thread_umask_;        // umask_ is this thread's umask
};

}  // namespace vunify::fs
