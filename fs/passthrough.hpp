// Kernel FUSE passthrough (Linux >= 6.9) without a libfuse API for it: the protocol hooks
// (fs/protocol_hooks.hpp) let this class see the kernel's INIT offer, accept it in the INIT
// reply and put backing ids into OPEN/CREATE replies (protocol 7.40; see
// ../shared/probes/passthrough.cc). Backing files are registered with FUSE_DEV_IOC_BACKING_OPEN.
#pragma once
#include <atomic>
#include <cstdint>

#include "fs/fuse.hpp"
#include "fs/fuse_wire.hpp"

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

  // Replies to OPEN/CREATE; a backing_id > 0 makes the open a passthrough open.
  static void reply_open(fuse_req_t req, fuse_file_info* fi, int backing_id);
  static void reply_create(fuse_req_t req, const fuse_entry_param* e, fuse_file_info* fi, int backing_id);

  // INIT negotiation, called by the protocol hooks.
  void saw_init_request(uint32_t flags, uint32_t flags2);
  void patch_init_reply(wire::InitOut& out);

 private:
  int dev_fd_;
  bool wanted_;
  std::atomic<bool> kernel_offers_{false}, kernel_offers_dio_mmap_{false}, active_{false};
};

}  // namespace vunify::fs
