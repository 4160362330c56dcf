#include "fs/passthrough.hpp"

#include "fs/context.hpp"

#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace vunify::fs {

namespace {

// Protocol 7.40 pieces that Debian 12's headers lack.
struct BackingMap {
  int32_t fd;
  uint32_t flags;
  uint64_t padding;
};
constexpr unsigned long kIocBackingOpen = _IOW(229, 1, BackingMap);
constexpr unsigned long kIocBackingClose = _IOW(229, 2, uint32_t);
constexpr uint32_t kInitExt = 1u << 30;             // flags: flags2 is valid
constexpr uint32_t kFlags2DirectIoAllowMmap = 1u << 4;  // FUSE_DIRECT_IO_ALLOW_MMAP = 1ULL << 36
constexpr uint32_t kFlags2Passthrough = 1u << 5;        // FUSE_PASSTHROUGH = 1ULL << 37
constexpr uint32_t kFopenPassthrough = 1u << 7;
constexpr uint32_t kOpInit = 26;
constexpr uint32_t kOpSetxattr = 21;
constexpr uint32_t kOpCreate = 35;
constexpr uint32_t kOpTmpfile = 51;  // same request and reply layout as CREATE
constexpr uint32_t kInitSetxattrExt = 1u << 29;  // FUSE_SETXATTR_EXT
constexpr uint32_t kSetxattrAclKillSgid = 1u << 0;
constexpr size_t kSetxattrInCompat = 8;  // size, flags (what libfuse 3.14 parses)
struct SetxattrInExt {
  uint32_t size, flags, setxattr_flags, padding;
};

struct InHeader {
  uint32_t len, opcode;
  uint64_t unique, nodeid;
  uint32_t uid, gid, pid;
  uint16_t total_extlen, padding;
};
struct OutHeader {
  uint32_t len;
  int32_t error;
  uint64_t unique;
};
struct InitIn {
  uint32_t major, minor, max_readahead, flags, flags2;
};
struct InitOut {
  uint32_t major, minor, max_readahead, flags;
  uint16_t max_background, congestion_threshold;
  uint32_t max_write, time_gran;
  uint16_t max_pages, map_alignment;
  uint32_t flags2, max_stack_depth;
};
struct OpenOut {
  uint64_t fh;
  uint32_t open_flags;
  int32_t backing_id;
};

// Replies are sent synchronously by the thread that handles the request, so what a reply
// needs patched travels in thread-locals from the handler to the writev hook.
thread_local bool t_init_pending = false;
thread_local int t_backing_id = 0;
thread_local uint32_t t_setxattr_flags = 0;
thread_local bool t_tmpfile = false;

struct PendingBacking {
  explicit PendingBacking(int id) { t_backing_id = id; }
  ~PendingBacking() { t_backing_id = 0; }
};

// An extended SETXATTR request is made the compat one libfuse parses; its flags stay with the
// thread, which handles the request next.
ssize_t to_compat_setxattr(void* buf, ssize_t n) {
  constexpr ssize_t kFixed = sizeof(InHeader) + sizeof(SetxattrInExt);
  if (n < kFixed) return n;
  char* bytes = static_cast<char*>(buf);
  SetxattrInExt in;
  std::memcpy(&in, bytes + sizeof(InHeader), sizeof in);
  t_setxattr_flags = in.setxattr_flags;
  constexpr size_t kDrop = sizeof(SetxattrInExt) - kSetxattrInCompat;
  std::memmove(bytes + sizeof(InHeader) + kSetxattrInCompat, bytes + kFixed, static_cast<size_t>(n - kFixed));
  static_cast<InHeader*>(buf)->len -= kDrop;
  return n - static_cast<ssize_t>(kDrop);
}

}  // namespace

ssize_t hook_read(int fd, void* buf, size_t len, void* userdata) {
  Passthrough& pt = static_cast<FsContext*>(userdata)->passthrough;
  ssize_t n = ::read(fd, buf, len);
  if (n < 0 && errno == ENODEV) pt.set_kernel_gone();
  t_setxattr_flags = 0;
  t_tmpfile = false;
  if (n >= static_cast<ssize_t>(sizeof(InHeader))) {
    auto* h = static_cast<InHeader*>(buf);
    if (h->opcode == kOpInit) {
      t_init_pending = true;
      pt.saw_init_request(h + 1, static_cast<size_t>(n) - sizeof(InHeader));
    } else if (h->opcode == kOpSetxattr && pt.setxattr_ext_.load(std::memory_order_relaxed)) {
      n = to_compat_setxattr(buf, n);
    } else if (h->opcode == kOpTmpfile) {
      h->opcode = kOpCreate;
      t_tmpfile = true;
    }
  }
  return n;
}

namespace {

ssize_t hook_writev(int fd, struct iovec* iov, int count, void* userdata) {
  auto* header = static_cast<OutHeader*>(iov[0].iov_base);
  if (count > 1 && header->error == 0) {
    if (t_init_pending) {
      t_init_pending = false;
      static_cast<FsContext*>(userdata)->passthrough.patch_init_reply(iov[1].iov_base, iov[1].iov_len);
    } else if (t_backing_id > 0 && iov[1].iov_len >= sizeof(OpenOut)) {
      // OPEN replies are an open_out; CREATE replies an entry_out followed by an open_out.
      auto* out = reinterpret_cast<OpenOut*>(static_cast<char*>(iov[1].iov_base) + iov[1].iov_len - sizeof(OpenOut));
      out->open_flags |= kFopenPassthrough;
      out->backing_id = t_backing_id;
    }
  }
  return ::writev(fd, iov, count);
}

}  // namespace

void Passthrough::saw_init_request(const void* data, size_t len) {
  if (len < sizeof(InitIn)) return;
  InitIn in;
  std::memcpy(&in, data, sizeof in);
  bool ext = in.flags & kInitExt;
  kernel_offers_ = ext && (in.flags2 & kFlags2Passthrough);
  kernel_offers_dio_mmap_ = ext && (in.flags2 & kFlags2DirectIoAllowMmap);
  kernel_offers_setxattr_ext_ = (in.flags & kInitSetxattrExt) != 0;
}

bool Passthrough::create_is_tmpfile() { return t_tmpfile; }

bool Passthrough::setxattr_kills_sgid() { return t_setxattr_flags & kSetxattrAclKillSgid; }

void Passthrough::patch_init_reply(void* data, size_t len) {
  if (len < sizeof(InitOut)) return;
  auto* out = static_cast<InitOut*>(data);
  if (kernel_offers_dio_mmap_) {
    out->flags |= kInitExt;
    out->flags2 |= kFlags2DirectIoAllowMmap;  // mmap of direct-I/O opens (used around breaks)
  }
  if (kernel_offers_setxattr_ext_) {
    out->flags |= kInitSetxattrExt;
    setxattr_ext_ = true;
  }
  if (wanted_ && kernel_offers_) {
    out->flags |= kInitExt;
    out->flags2 |= kFlags2Passthrough;
    out->max_stack_depth = 1;
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

fuse_custom_io Passthrough::custom_io() const {
  fuse_custom_io io{};
  io.writev = hook_writev;
  io.read = hook_read;
  return io;
}

void Passthrough::reply_open(fuse_req_t req, fuse_file_info* fi, int backing_id) {
  PendingBacking pending(backing_id);
  fuse_reply_open(req, fi);
}

void Passthrough::reply_create(fuse_req_t req, const fuse_entry_param* e, fuse_file_info* fi, int backing_id) {
  PendingBacking pending(backing_id);
  fuse_reply_create(req, e, fi);
}

}  // namespace vunify::fs
