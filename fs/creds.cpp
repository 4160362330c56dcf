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

// This thread's fsuid/fsgid (the daemon's own between requests) and, with a private umask, its
// umask, learnt on first use: what is already set is not set again (each is a syscall; root
// callers with an unchanged umask then cost none). The umask stays the last caller's: the
// daemon's own creations (private copies) set their modes explicitly.
struct ThreadCreds {
  uid_t fsuid = static_cast<uid_t>(::setfsuid(static_cast<uid_t>(-1)));  // -1: only reads it
  gid_t fsgid = static_cast<gid_t>(::setfsgid(static_cast<gid_t>(-1)));
  mode_t umask = 01000;  // not a umask: the first caller's is always set
};
thread_local ThreadCreds t_creds;

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
  if (thread_umask_ && t_creds.umask != umask_) {
    ::umask(umask_);
    t_creds.umask = umask_;
  }
  uid_ = c->uid;
  gid_ = c->gid;
  if (gid_ != t_creds.fsgid) ::setfsgid(gid_);
  if (uid_ != t_creds.fsuid) ::setfsuid(uid_);
}

CallerCreds::~CallerCreds() {
  if (uid_ != t_creds.fsuid) ::setfsuid(t_creds.fsuid);
  if (gid_ != t_creds.fsgid) ::setfsgid(t_creds.fsgid);
}

}  // namespace vunify::fs
