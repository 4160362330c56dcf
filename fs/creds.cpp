#include "fs/creds.hpp"

#include <linux/securebits.h>
#include <sched.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "os/error.hpp"

namespace vunify::fs {

namespace {

// Gives the calling thread its own fs attributes (umask, cwd, root) on first use. The daemon
// works with fds only, so a private cwd/root copy changes nothing else.
bool own_umask() {
  thread_local int state = 0;  // 0 untried, 1 private, -1 failed
  if (state == 0) {
    state = ::unshare(CLONE_FS) == 0 ? 1 : -1;
    if (state < 0)
      fuse_log(FUSE_LOG_ERR, "vunify: unshare(CLONE_FS) failed (%s): umask applied by the daemon\n", std::strerror(errno));
  }
  return state > 0;
}

}  // namespace

void keep_caps_across_fsuid() {
  int bits = ::prctl(PR_GET_SECUREBITS);
  if (bits < 0 || ::prctl(PR_SET_SECUREBITS, bits | SECBIT_NO_SETUID_FIXUP) != 0)
    os::throw_errno("set SECBIT_NO_SETUID_FIXUP", "prctl");
}

CallerCreds::CallerCreds(fuse_req_t req) {
  const fuse_ctx* c = fuse_req_ctx(req);
  umask_ = c->umask & 0777;
  thread_umask_ = own_umask();
  if (thread_umask_) old_umask_ = ::umask(umask_);
  old_gid_ = ::setfsgid(c->gid);
  old_uid_ = ::setfsuid(c->uid);
}

CallerCreds::~CallerCreds() {
  ::setfsuid(static_cast<uid_t>(old_uid_));
  ::setfsgid(static_cast<gid_t>(old_gid_));
  if (thread_umask_) ::umask(old_umask_);
}

}  // namespace vunify::fs
