#include "fs/creds.hpp"

#include <linux/securebits.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>

#include "os/error.hpp"

namespace vunify::fs {

void keep_caps_across_fsuid() {
  int bits = ::prctl(PR_GET_SECUREBITS);
  if (bits < 0 || ::prctl(PR_SET_SECUREBITS, bits | SECBIT_NO_SETUID_FIXUP) != 0)
    os::throw_errno("set SECBIT_NO_SETUID_FIXUP", "prctl");
}

CallerCreds::CallerCreds(fuse_req_t req) {
  const fuse_ctx* c = fuse_req_ctx(req);
  old_gid_ = ::setfsgid(c->gid);
  old_uid_ = ::setfsuid(c->uid);
}

CallerCreds::~CallerCreds() {
  ::setfsuid(static_cast<uid_t>(old_uid_));
  ::setfsgid(static_cast<gid_t>(old_gid_));
}

}  // namespace vunify::fs
