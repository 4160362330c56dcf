// Directories. OPENDIR is answered with ENOSYS (no per-open state): the kernel then stops
// sending OPENDIR/RELEASEDIR and caches listings itself. Each READDIR reads from its offset.
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include "fs/view_state.hpp"
#include "fs/ops.hpp"
#include "unify/pool.hpp"

namespace vunify::fs {

namespace {

void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  if (is_barrier(ino) && !state_of(req).host_only.admits(req)) return (void)fuse_reply_err(req, EACCES);
  fuse_reply_err(req, ENOSYS);
}

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};

bool hidden(std::string_view name) { return name.starts_with(unify::kTempPrefix); }
bool dot_or_dotdot(std::string_view name) { return name == "." || name == ".."; }

// The d_ino of a plain READDIR entry: what stat shows (a shared file's synthetic number, not
// its store object's).
uint64_t plain_entry_ino(ViewState& vs, Node& dir, const dirent& d) {
  if (d.d_type != DT_REG || !vs.objects.contains(vs.objects.dev(), d.d_ino)) return d.d_ino;
  struct stat st {};
  st.st_dev = vs.objects.dev();
  st.st_ino = d.d_ino;
  st.st_mode = S_IFREG;
  return vs.nodes.shown_ino(dir, d.d_name, st, true, group_of_entry(vs, dir, d.d_name, st));
}

// Fills one entry; returns its size (> room means it did not fit and nothing was added).
size_t add_entry(fuse_req_t req, Node& dir, const dirent& d, char* buf, size_t room, bool plus) {
  if (!plus) {
    struct stat st {};
    st.st_ino = plain_entry_ino(state_of(req), dir, d);
    st.st_mode = static_cast<mode_t>(d.d_type) << 12;
    return fuse_add_direntry(req, buf, room, d.d_name, &st, d.d_off);
  }
  fuse_entry_param e{};
  if (dot_or_dotdot(d.d_name)) {  // the kernel ignores attributes of these and counts no lookup
    e.attr.st_ino = d.d_ino;
    e.attr.st_mode = static_cast<mode_t>(d.d_type) << 12;
    return fuse_add_direntry_plus(req, buf, room, d.d_name, &e, d.d_off);
  }
  if (lookup_entry(req, dir, d.d_name, e) != 0) {  // vanished meanwhile: a plain entry
    e = fuse_entry_param{};
    e.attr.st_ino = d.d_ino;
    e.attr.st_mode = static_cast<mode_t>(d.d_type) << 12;
    return fuse_add_direntry_plus(req, buf, room, d.d_name, &e, d.d_off);
  }
  size_t size = fuse_add_direntry_plus(req, buf, room, d.d_name, &e, d.d_off);
  if (size > room) state_of(req).nodes.forget(reinterpret_cast<Node*>(e.ino), 1);
  return size;
}

void readdir_barrier(fuse_req_t req, size_t size, off_t offset, bool plus) {
  ViewState& vs = state_of(req);
  if (!vs.host_only.admits(req)) return (void)fuse_reply_err(req, EACCES);
  const char* names[] = {".", "..", kRootEntry};
  std::vector<char> buf(size);
  size_t used = 0;
  for (off_t i = offset; i < 3; ++i) {
    fuse_entry_param e{};  // ino 0 in a plus entry: no attributes, no lookup counted
    e.attr.st_ino = i == 2 ? 2 : FUSE_ROOT_ID;
    e.attr.st_mode = S_IFDIR;
    size_t n = plus ? fuse_add_direntry_plus(req, buf.data() + used, size - used, names[i], &e, i + 1)
                    : fuse_add_direntry(req, buf.data() + used, size - used, names[i], &e.attr, i + 1);
    if (n > size - used) break;
    used += n;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void read_dir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, bool plus) {
  if (is_barrier(ino)) return readdir_barrier(req, size, offset, plus);
  Node& dir = node_of(req, ino);
  int fd = reopen(dir, O_RDONLY | O_DIRECTORY);
  if (fd < 0) return (void)fuse_reply_err(req, -fd);
  std::unique_ptr<DIR, DirCloser> stream(::fdopendir(fd));
  if (!stream) {
    ::close(fd);
    return (void)fuse_reply_err(req, errno);
  }
  if (offset) ::seekdir(stream.get(), offset);
  std::vector<char> buf(size);
  size_t used = 0;
  for (;;) {
    errno = 0;
    dirent* d = ::readdir(stream.get());
    if (!d) {
      if (errno && used == 0) return (void)fuse_reply_err(req, errno);
      break;
    }
    if (hidden(d->d_name)) continue;
    size_t n = add_entry(req, dir, *d, buf.data() + used, size - used, plus);
    if (n > size - used) break;
    used += n;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info*) {
  read_dir(req, ino, size, offset, false);
}

void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info*) {
  read_dir(req, ino, size, offset, true);
}

void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info*) {
  if (is_barrier(ino)) return (void)fuse_reply_err(req, 0);
  int fd = reopen(node_of(req, ino), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return (void)fuse_reply_err(req, -fd);
  int rc = datasync ? ::fdatasync(fd) : ::fsync(fd);
  int err = rc != 0 ? errno : 0;
  ::close(fd);
  fuse_reply_err(req, err);
}

}  // namespace

void add_dir_ops(fuse_lowlevel_ops& ops) {
  ops.opendir = op_opendir;
  ops.readdir = op_readdir;
  ops.readdirplus = op_readdirplus;
  ops.fsyncdir = op_fsyncdir;
}

}  // namespace vunify::fs
