// Which FUSE requests may take long to serve (fs/serve_loop.hpp hands those to another thread
// first, so that the next requests are read meanwhile). Decided from the raw request, before
// libfuse parses it, by what the handlers in fs/ops_*.cpp do with it:
// - slow: anything that may break copy-on-write (a write or truncating OPEN, SETATTR,
//   SETXATTR or REMOVEXATTR of a shared node, LINK of a shared node, UNLINK and RENAME of a
//   name that may belong to a link group); a SETATTR that changes the size (truncation of a big
//   private file); READ and WRITE (cached-mode I/O served by the daemon, cold reads); FSYNC,
//   FSYNCDIR, SYNCFS, FALLOCATE, COPY_FILE_RANGE; READDIR and READDIRPLUS past the first buffer
//   (big directories: READDIRPLUS looks up every entry); and every opcode not listed below.
// - fast: LOOKUP, FORGET, BATCH_FORGET, GETATTR, STATX, READLINK, SYMLINK, MKNOD, MKDIR, RMDIR,
//   CREATE (always a new file), the other OPENs, RELEASE, RELEASEDIR, OPENDIR, STATFS, GETXATTR,
//   LISTXATTR, ACCESS, IOCTL, POLL, LSEEK, BMAP, INIT, DESTROY, INTERRUPT, FLUSH and the lock
//   requests (no handler: libfuse answers ENOSYS at once), and the cases above that cannot break.
// A fast request may still wait: an OPEN or RELEASE of a node takes the node's lock, which a
// break of that same node holds; other nodes' requests do not wait for it.
#pragma once
#include <cstddef>

#include "fs/view_state.hpp"

namespace vunify::fs {

// `request`: `len` bytes as read from /dev/fuse (after fs/protocol_hooks.hpp's read hook).
bool request_may_be_slow(const ViewState& vs, const void* request, size_t len);

}  // namespace vunify::fs
