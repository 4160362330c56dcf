// Kernel FUSE passthrough (Linux >= 6.9) without a libfuse API for it: the daemon sees the
// raw INIT request and patches the INIT and OPEN/CREATE replies through fuse_session_custom_io
// (protocol fields from linux/fuse.h 7.40; see ../shared/probes/passthrough.cc).
// The same hooks negotiate the extended SETXATTR request (7.33), which libfuse 3.14 does not:
// its setxattr_flags say whether an ACL change must clear the file's setgid bit. And they hand
// libfuse 3.14 (which has no tmpfile operation) an O_TMPFILE open (TMPFILE, 7.37) as a CREATE
// of the same layout, marked for the create handler.
#pragma once
#include <atomic>

#include "fs/fuse.hpp"

namespace vunify::fs {

class Passthrough {
 public:
  Passthrough(int dev_fd, bool wanted) : dev_fd_(dev_fd), wanted_(wanted) {}

  // True once the kernel accepted passthrough for this connection.
  bool active() const { return active_.load(std::memory_order_relaxed); }
  // Registers an open backing file with the kernel: backing id > 0, or 0 (then serve I/O
  // through the daemon; failures turn passthrough off for later opens).
  int open_backing(int fd);
  void close_backing(int backing_id);

  // True once the kernel ended the connection (unmounted): nothing left to unmount.
  bool kernel_gone() const { return kernel_gone_.load(); }
  void set_kernel_gone() { kernel_gone_ = true; }

  // The session's custom I/O hooks (the session's userdata is the FsContext).
  fuse_custom_io custom_io() const;

  // Replies to OPEN/CREATE; a backing_id > 0 makes the open a passthrough open.
  static void reply_open(fuse_req_t req, fuse_file_info* fi, int backing_id);
  static void reply_create(fuse_req_t req, const fuse_entry_param* e, fuse_file_info* fi, int backing_id);

  // FUSE_SETXATTR_ACL_KILL_SGID for the SETXATTR request this thread is handling: the caller
  // is neither in the file's group nor has CAP_FSETID, so a new access ACL clears setgid.
  static bool setxattr_kills_sgid();

  // True while this thread handles a CREATE that is really an O_TMPFILE open of the directory.
  static bool create_is_tmpfile();

  // Called by the hooks.
  void saw_init_request(const void* init_in, size_t len);
  void patch_init_reply(void* init_out, size_t len);

 private:
  int dev_fd_;
  bool wanted_;
  std::atomic<bool> kernel_offers_{false}, kernel_offers_dio_mmap_{false}, active_{false}, kernel_gone_{false};
  std::atomic<bool> kernel_offers_setxattr_ext_{false}, setxattr_ext_{false};
  friend ssize_t hook_read(int, void*, size_t, void*);
};

}  // namespace vunify::fs
