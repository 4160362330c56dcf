#include "fs/protocol_hooks.hpp"

#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "fs/view_state.hpp"
#include "fs/fuse_wire.hpp"

namespace vunify::fs {

namespace {

using namespace wire;

thread_local bool t_init_pending = false;
thread_local int t_backing_id = 0;
thread_local uint32_t t_setxattr_flags = 0;
thread_local bool t_tmpfile = false;

// An extended SETXATTR request made the compat one (8 bytes fewer); returns the new length.
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

void saw_init(ViewState& vs, const void* data, size_t len) {
  if (len < sizeof(InitIn)) return;
  InitIn in;
  std::memcpy(&in, data, sizeof in);
  t_init_pending = true;
  vs.passthrough.saw_init_request(in.flags, in.flags2);
  vs.protocol.setxattr_ext_offered = (in.flags & kInitSetxattrExt) != 0;
}

ssize_t hook_read(int fd, void* buf, size_t len, void* userdata) {
  auto& vs = *static_cast<ViewState*>(userdata);
  ssize_t n = ::read(fd, buf, len);
  if (n < 0 && errno == ENODEV) vs.protocol.kernel_gone = true;
  t_setxattr_flags = 0;
  t_tmpfile = false;
  if (n < static_cast<ssize_t>(sizeof(InHeader))) return n;
  auto* h = static_cast<InHeader*>(buf);
  vs.protocol.count_request(h->opcode);
  if (h->opcode == kOpInit) {
    saw_init(vs, h + 1, static_cast<size_t>(n) - sizeof(InHeader));
  } else if (h->opcode == kOpSetxattr && vs.protocol.setxattr_ext.load(std::memory_order_relaxed)) {
    n = to_compat_setxattr(buf, n);
  } else if (h->opcode == kOpTmpfile) {
    h->opcode = kOpCreate;
    t_tmpfile = true;
  }
  return n;
}

void patch_init_reply(ViewState& vs, void* data, size_t len) {
  if (len < sizeof(InitOut)) return;
  auto* out = static_cast<InitOut*>(data);
  if (vs.protocol.setxattr_ext_offered) {
    out->flags |= kInitSetxattrExt;
    vs.protocol.setxattr_ext = true;
  }
  vs.passthrough.patch_init_reply(*out);
}

ssize_t hook_writev(int fd, struct iovec* iov, int count, void* userdata) {
  auto* header = static_cast<OutHeader*>(iov[0].iov_base);
  if (count > 1 && header->error == 0) {
    if (t_init_pending) {
      t_init_pending = false;
      patch_init_reply(*static_cast<ViewState*>(userdata), iov[1].iov_base, iov[1].iov_len);
    } else if (t_backing_id > 0 && iov[1].iov_len >= sizeof(OpenOut)) {
      // OPEN replies are an open_out; CREATE replies an entry_out followed by an open_out.
      auto* out = reinterpret_cast<OpenOut*>(static_cast<char*>(iov[1].iov_base) + iov[1].iov_len - sizeof(OpenOut));
      out->open_flags |= kFopenPassthrough;
      out->backing_id = t_backing_id;
    }
  }
  return ::writev(fd, iov, count);
}

// linux/fuse.h's opcode names, by number (empty: unused).
const char* opcode_name(size_t op) {
  static constexpr const char* kNames[ProtocolState::kCountedOpcodes] = {
      "", "LOOKUP", "FORGET", "GETATTR", "SETATTR", "READLINK", "SYMLINK", "", "MKNOD", "MKDIR", "UNLINK",
      "RMDIR", "RENAME", "LINK", "OPEN", "READ", "WRITE", "STATFS", "RELEASE", "", "FSYNC", "SETXATTR",
      "GETXATTR", "LISTXATTR", "REMOVEXATTR", "FLUSH", "INIT", "OPENDIR", "READDIR", "RELEASEDIR", "FSYNCDIR",
      "GETLK", "SETLK", "SETLKW", "ACCESS", "CREATE", "INTERRUPT", "BMAP", "DESTROY", "IOCTL", "POLL",
      "NOTIFY_REPLY", "BATCH_FORGET", "FALLOCATE", "READDIRPLUS", "RENAME2", "LSEEK", "COPY_FILE_RANGE",
      "SETUPMAPPING", "REMOVEMAPPING", "SYNCFS", "TMPFILE", "STATX"};
  return op < ProtocolState::kCountedOpcodes && kNames[op][0] ? kNames[op] : "other";
}

}  // namespace

std::string ProtocolState::request_summary() const {
  std::string out = "requests served:";
  uint64_t total = 0;
  for (size_t op = 0; op < requests.size(); ++op) {
    uint64_t n = requests[op].load(std::memory_order_relaxed);
    if (n == 0) continue;
    out += fmt::format(" {} {},", opcode_name(op), n);
    total += n;
  }
  return out + fmt::format(" total {}", total);
}

fuse_custom_io protocol_hooks() {
  fuse_custom_io io{};
  io.writev = hook_writev;
  io.read = hook_read;
  return io;
}

bool request_is_tmpfile() { return t_tmpfile; }
bool setxattr_kills_sgid() { return t_setxattr_flags & kSetxattrAclKillSgid; }

ReplyBackingId::ReplyBackingId(int backing_id) { t_backing_id = backing_id; }
ReplyBackingId::~ReplyBackingId() { t_backing_id = 0; }

}  // namespace vunify::fs
