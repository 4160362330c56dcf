// Open files: open/create (a write open of a shared file breaks it first), I/O served by the
// daemon when not passed through to the kernel, release, fsync, fallocate, copy_file_range, lseek.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <vector>

#include "fs/view_state.hpp"
#include "fs/cow_break.hpp"
#include "fs/creds.hpp"
#include "fs/file_handle.hpp"
#include "fs/ops.hpp"
#include "fs/protocol_hooks.hpp"

namespace vunify::fs {

namespace {

bool opens_for_change(int flags) { return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC); }

// Reads of smaller files are served in cached mode: warm reads come from the kernel's page cache
// of the view with no request at all, while a passthrough open costs two backing ioctls and a
// GETATTR after each read (atime). Bigger files and write opens pass through (a cached write is
// a WRITE request plus a GETXATTR for setuid/capability clearing).
constexpr off_t kPassthroughMinSize = 256 << 10;

bool wants_passthrough(const Node& node, int fd, int flags) {
  // A shared link group is read in cached mode: a break while a passthrough open held the
  // object would need a fresh node, and the kernel's dentries of the group's other paths would
  // keep the old one (with its old attributes). Cached, the node itself turns private.
  if (node.group && node.shared.load()) return false;
  if (node.backing_id) return true;         // opens of one inode share one backing file
  if (node.cached_users) return false;      // and may not mix with cached opens
  if (opens_for_change(flags)) return true;
  struct stat st;
  return ::fstat(fd, &st) == 0 && st.st_size >= kPassthroughMinSize;
}

// Records an open of `node` (caller holds node.mu) and chooses its I/O mode:
// - opens while handles from before a break exist: direct I/O through the daemon (no shared
//   page cache with them, and never their store-object backing id);
// - passthrough: every open of the node shares one backing id, registered on first open;
// - otherwise cached I/O through the daemon, keeping the kernel's page cache of the inode,
//   except for the first cached open after a break: the cache may still hold the shared
//   content read before it, which the kernel drops on an open without keep_cache.
// Returns the backing id for the reply (0: none).
int start_open(ViewState& vs, Node& node, FileHandle& fh, fuse_file_info* fi) {
  fh.epoch = node.epoch;
  ++node.nopen;
  fi->keep_cache = 0;
  fi->direct_io = 0;
  if (node.stale_opens > 0) {
    fi->direct_io = 1;
    return 0;
  }
  if (vs.passthrough.active() && S_ISREG(node.type) && wants_passthrough(node, fh.fd.get(), fi->flags)) {
    if (!node.backing_id) node.backing_id = vs.passthrough.open_backing(fh.fd.get());
    if (node.backing_id) {
      ++node.backing_users;
      fh.uses_backing = true;
      return node.backing_id;
    }
  }
  fi->keep_cache = !node.cache_stale;
  node.cache_stale = false;
  if (fi->flags & O_DIRECT) fi->direct_io = 1;
  fh.cached = !fi->direct_io;
  node.cached_users += fh.cached;
  return 0;
}

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (is_barrier(ino)) return (void)fuse_reply_err(req, EISDIR);
  ViewState& vs = state_of(req);
  Node& node = node_of(req, ino);
  std::unique_lock lock(node.mu);
  if (opens_for_change(fi->flags) && node.shared.load()) {
    if (int err = break_shared_locked(vs, node, (fi->flags & O_TRUNC) ? 0 : kKeepAll)) return (void)fuse_reply_err(req, err);
  }
  // This kernel inode still passes I/O through to the store object for readers from before a
  // break: ESTALE makes the kernel look the path up again (LOOKUP_REVAL) and open the fresh node.
  if (node.backing_stale) return (void)fuse_reply_err(req, ESTALE);
  int fd = reopen(node, fi->flags);
  if (fd < 0) return (void)fuse_reply_err(req, -fd);
  auto fh = std::make_unique<FileHandle>();
  fh->fd.reset(fd);
  fh->flags = fi->flags;
  int backing_id = start_open(vs, node, *fh, fi);
  lock.unlock();
  fi->fh = reinterpret_cast<uint64_t>(fh.release());
  Passthrough::reply_open(req, fi, backing_id);
}

// The backing open of an O_TMPFILE request. Never O_EXCL: the kernel enforces "not linkable"
// on its own inode, while the daemon's linkat of the backing inode needs it linkable.
int tmpfile_flags(int guest_flags) {
  constexpr int kKept = O_ACCMODE | O_APPEND | O_NONBLOCK | O_DSYNC | O_SYNC | O_DIRECT | O_NOATIME | O_LARGEFILE;
  return (guest_flags & kKept) | O_TMPFILE | O_CLOEXEC;
}

// An O_PATH fd of the inode open as `fd` (-1 if that fails: entry_of then reports EBADF).
int reopen_path(int fd) { return ::open(proc_path(fd).c_str(), O_PATH | O_CLOEXEC); }

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  if (refuse_barrier_change(req, parent)) return;
  ViewState& vs = state_of(req);
  Node& dir = node_of(req, parent);
  bool tmpfile = request_is_tmpfile();
  int fd;
  {
    CallerCreds creds(req);
    fd = tmpfile ? ::openat(dir.fd(), ".", tmpfile_flags(fi->flags), creds.mode(mode))
                 : ::openat(dir.fd(), name, (fi->flags | O_CREAT | O_CLOEXEC) & ~O_NOFOLLOW, creds.mode(mode));
  }
  if (fd < 0) return (void)fuse_reply_err(req, errno);
  auto fh = std::make_unique<FileHandle>();
  fh->fd.reset(fd);
  fh->flags = fi->flags;
  fuse_entry_param e;
  int err = tmpfile ? entry_of(req, dir, name, os::unique_fd(reopen_path(fd)), e) : lookup_entry(req, dir, name, e);
  if (err) return (void)fuse_reply_err(req, err);
  Node& node = *reinterpret_cast<Node*>(e.ino);
  if (tmpfile || (fi->flags & O_EXCL)) node.no_capability.store(true, std::memory_order_relaxed);
  int backing_id;
  {
    std::lock_guard lock(node.mu);
    backing_id = start_open(vs, node, *fh, fi);
  }
  fi->fh = reinterpret_cast<uint64_t>(fh.release());
  Passthrough::reply_create(req, &e, fi, backing_id);
}

void op_release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  ViewState& vs = state_of(req);
  Node& node = node_of(req, ino);
  std::unique_ptr<FileHandle> fh(&handle_of(fi));
  int close_id = 0;
  {
    std::lock_guard lock(node.mu);
    --node.nopen;
    if (fh->epoch != node.epoch && node.stale_opens > 0) --node.stale_opens;
    if (fh->cached) --node.cached_users;
    if (fh->uses_backing && --node.backing_users == 0) {
      close_id = std::exchange(node.backing_id, 0);
      node.backing_stale = false;
    }
  }
  if (close_id) vs.passthrough.close_backing(close_id);
  fuse_reply_err(req, 0);
}

// Served from one buffer per daemon thread: libfuse's own path mallocs a buffer per READ, and
// above glibc's mmap threshold (the kernel asks 256 KiB after FADV_SEQUENTIAL) every READ then
// maps and faults in fresh pages: 8x slower than reusing them. Not zero-filled: only the pages
// reads have filled count in the daemon's RSS (cached-mode files are < 256 KiB, while the
// kernel asks for its whole readahead window).
void op_read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  thread_local std::unique_ptr<char[]> buffer;
  thread_local size_t capacity = 0;
  FileHandle& fh = handle_of(fi);
  if (capacity < size) {
    buffer.reset(new char[size]);  // default-initialized: no page is touched here
    capacity = size;
  }
  ssize_t n = ::pread(fh.fd.get(), buffer.get(), size, off);
  if (n < 0) fuse_reply_err(req, errno);
  else fuse_reply_buf(req, buffer.get(), static_cast<size_t>(n));
}

void op_write_buf(fuse_req_t req, fuse_ino_t, fuse_bufvec* in, off_t off, fuse_file_info* fi) {
  fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
  out.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
  out.buf[0].fd = handle_of(fi).fd.get();
  out.buf[0].pos = off;
  ssize_t n = fuse_buf_copy(&out, in, fuse_buf_copy_flags{});
  if (n < 0) fuse_reply_err(req, static_cast<int>(-n));
  else fuse_reply_write(req, static_cast<size_t>(n));
}

void op_fsync(fuse_req_t req, fuse_ino_t, int datasync, fuse_file_info* fi) {
  int fd = handle_of(fi).fd.get();
  fuse_reply_err(req, (datasync ? ::fdatasync(fd) : ::fsync(fd)) != 0 ? errno : 0);
}

// Only write opens reach here with a changing mode, and write opens are private.
void op_fallocate(fuse_req_t req, fuse_ino_t, int mode, off_t off, off_t len, fuse_file_info* fi) {
  fuse_reply_err(req, ::fallocate(handle_of(fi).fd.get(), mode, off, len) != 0 ? errno : 0);
}

void op_copy_file_range(fuse_req_t req, fuse_ino_t, off_t off_in, fuse_file_info* fi_in, fuse_ino_t, off_t off_out,
                        fuse_file_info* fi_out, size_t len, int flags) {
  loff_t in = off_in, out = off_out;
  ssize_t n = ::copy_file_range(handle_of(fi_in).fd.get(), &in, handle_of(fi_out).fd.get(), &out, len,
                                static_cast<unsigned>(flags));
  if (n < 0) fuse_reply_err(req, errno);
  else fuse_reply_write(req, static_cast<size_t>(n));
}

void op_lseek(fuse_req_t req, fuse_ino_t, off_t off, int whence, fuse_file_info* fi) {
  off_t pos = ::lseek(handle_of(fi).fd.get(), off, whence);
  if (pos < 0) fuse_reply_err(req, errno);
  else fuse_reply_lseek(req, pos);
}

}  // namespace

void add_file_ops(fuse_lowlevel_ops& ops) {
  ops.open = op_open;
  ops.create = op_create;
  ops.release = op_release;
  ops.read = op_read;
  ops.write_buf = op_write_buf;
  ops.fsync = op_fsync;
  ops.fallocate = op_fallocate;
  ops.copy_file_range = op_copy_file_range;
  ops.lseek = op_lseek;
}

}  // namespace vunify::fs
