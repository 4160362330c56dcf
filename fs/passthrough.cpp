#include "fs/passthrough.hpp"

#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>

#include "fs/protocol_hooks.hpp"

namespace vunify::fs {

using namespace wire;

void Passthrough::saw_init_request(uint32_t flags, uint32_t flags2) {
  bool ext = flags & kInitExt;
  kernel_offers_ = ext && (flags2 & kFlags2Passthrough);
  kernel_offers_dio_mmap_ = ext && (flags2 & kFlags2DirectIoAllowMmap);
}

void Passthrough::patch_init_reply(InitOut& out) {
  if (kernel_offers_dio_mmap_) {
    out.flags |= kInitExt;
    out.flags2 |= kFlags2DirectIoAllowMmap;  // mmap of direct-I/O opens (used around breaks)
  }
  if (wanted_ && kernel_offers_) {
    out.flags |= kInitExt;
    out.flags2 |= kFlags2Passthrough;
    out.max_stack_depth = 1;
    active_ = true;
  }
  fuse_log(FUSE_LOG_INFO, "vunify: kernel passthrough %s\n",
           active_ ? "on" : (wanted_ ? "not offered by the kernel: I/O through the daemon" : "off (--no-passthrough)"));
}

int Passthrough::open_backing(int fd) {
  if (!active()) return 0;
  BackingMap map{fd, 0, 0};
  int id = ::ioctl(dev_fd_, kIocBackingOpen, &map);
  if (id > 0) return id;
  fuse_log(FUSE_LOG_ERR, "passthrough: FUSE_DEV_IOC_BACKING_OPEN failed (%s); serving I/O through the daemon\n",
           std::strerror(errno));
  active_ = false;
  return 0;
}

void Passthrough::close_backing(int backing_id) {
  uint32_t id = static_cast<uint32_t>(backing_id);
  if (::ioctl(dev_fd_, kIocBackingClose, &id) != 0)
    fuse_log(FUSE_LOG_ERR, "passthrough: FUSE_DEV_IOC_BACKING_CLOSE %d failed: %s\n", backing_id, std::strerror(errno));
}

void Passthrough::reply_open(fuse_req_t req, fuse_file_info* fi, int backing_id) {
  ReplyBackingId pending(backing_id);
  fuse_reply_open(req, fi);
}

void Passthrough::reply_create(fuse_req_t req, const fuse_entry_param* e, fuse_file_info* fi, int backing_id) {
  ReplyBackingId pending(backing_id);
  fuse_reply_create(req, e, fi);
}

}  // namespace vunify::fs
