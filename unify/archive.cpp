#include "unify/archive.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

#include "os/copy.hpp"
#include "os/error.hpp"
#include "os/walk.hpp"
#include "os/xattrs.hpp"

namespace vunify::unify {

using os::throw_errno;
using os::unique_fd;
using os::UserError;

namespace {

using ArchivePtr = std::unique_ptr<struct archive, int (*)(struct archive*)>;

constexpr size_t kZeroChunk = 1 << 16;
const char* zeros() {
  static const std::vector<char> z(kZeroChunk, '\0');
  return z.data();
}

// ---- ACLs: libarchive's parsed ACL entries -> the kernel's xattr encoding ----

std::string acl_xattr(archive_entry* e, int type) {
  if (archive_entry_acl_reset(e, type) <= 0) return {};
  struct Ent {
    uint16_t tag, perm;
    uint32_t id;
  };
  std::vector<Ent> v;
  int t, perm, tag, qual;
  const char* name;
  while (archive_entry_acl_next(e, type, &t, &perm, &tag, &qual, &name) == ARCHIVE_OK) {
    Ent x{0, static_cast<uint16_t>(perm & 7), 0xffffffffu};
    switch (tag) {
      case ARCHIVE_ENTRY_ACL_USER_OBJ: x.tag = 0x01; break;
      case ARCHIVE_ENTRY_ACL_USER: x.tag = 0x02; x.id = static_cast<uint32_t>(qual); break;
      case ARCHIVE_ENTRY_ACL_GROUP_OBJ: x.tag = 0x04; break;
      case ARCHIVE_ENTRY_ACL_GROUP: x.tag = 0x08; x.id = static_cast<uint32_t>(qual); break;
      case ARCHIVE_ENTRY_ACL_MASK: x.tag = 0x10; break;
      case ARCHIVE_ENTRY_ACL_OTHER: x.tag = 0x20; break;
      default: continue;
    }
    v.push_back(x);
  }
  std::sort(v.begin(), v.end(), [](const Ent& a, const Ent& b) { return a.tag != b.tag ? a.tag < b.tag : a.id < b.id; });
  std::string out;
  auto put = [&out](uint64_t val, int bytes) {
    for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((val >> (8 * i)) & 0xff));
  };
  put(2, 4);  // POSIX_ACL_XATTR_VERSION, little endian
  for (const Ent& x : v) {
    put(x.tag, 2);
    put(x.perm, 2);
    put(x.id, 4);
  }
  return out;
}

os::Xattrs entry_xattrs(archive_entry* e) {
  os::Xattrs out;
  archive_entry_xattr_reset(e);
  const char* name;
  const void* value;
  size_t size;
  auto has = [&out](const std::string& n) {
    return std::any_of(out.begin(), out.end(), [&](const os::Xattr& x) { return x.name == n; });
  };
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    if (!name || os::is_marker_xattr(name) || has(name)) continue;
    out.push_back({name, std::string(static_cast<const char*>(value), size)});
  }
  for (auto [type, xname] : {std::pair{ARCHIVE_ENTRY_ACL_TYPE_ACCESS, "system.posix_acl_access"},
                             std::pair{ARCHIVE_ENTRY_ACL_TYPE_DEFAULT, "system.posix_acl_default"}}) {
    if (has(xname)) continue;
    std::string acl = acl_xattr(e, type);
    if (!acl.empty()) out.push_back({xname, acl});
  }
  std::sort(out.begin(), out.end(), [](const os::Xattr& a, const os::Xattr& b) { return a.name < b.name; });
  return out;
}

struct stat entry_stat(archive_entry* e) {
  struct stat st {};
  st.st_mode = archive_entry_mode(e);
  st.st_uid = static_cast<uid_t>(archive_entry_uid(e));
  st.st_gid = static_cast<gid_t>(archive_entry_gid(e));
  st.st_mtim = {archive_entry_mtime(e), archive_entry_mtime_nsec(e)};
  st.st_atim = archive_entry_atime_is_set(e) ? timespec{archive_entry_atime(e), archive_entry_atime_nsec(e)} : st.st_mtim;
  st.st_rdev = archive_entry_rdev(e);
  st.st_size = archive_entry_size(e);
  return st;
}

bool standard_device(const struct stat& st) {
  if (!S_ISCHR(st.st_mode)) return false;
  unsigned ma = major(st.st_rdev), mi = minor(st.st_rdev);
  return (ma == 1 && (mi == 3 || mi == 5 || mi == 7 || mi == 8 || mi == 9)) || (ma == 5 && mi <= 2);
}

struct DirMeta {
  struct stat st {};
  os::Xattrs xattrs;
  bool explicit_entry = false;
};

// Splits "a/b/c" into ("a/b", "c"); "c" into ("", "c").
std::pair<std::string, std::string> split(const std::string& rel) {
  auto slash = rel.rfind('/');
  if (slash == std::string::npos) return {"", rel};
  return {rel.substr(0, slash), rel.substr(slash + 1)};
}

class Importer {
 public:
  Importer(struct archive* a, const std::string& label, TemplateBuilder& b, const ImportLimits& lim)
      : a_(a), label_(label), b_(b), lim_(lim), root_(b.root_fd()), queue_(b.sink()) {
    dirs_[""] = DirMeta{};
  }
  ImportStats run();

 private:
  [[noreturn]] void bad(const std::string& entry, const std::string& why) const {
    throw UserError(fmt::format("archive {}: entry '{}': {}; nothing was imported", label_, entry, why));
  }
  [[noreturn]] void archive_failed(const char* what) const {
    const char* msg = archive_error_string(a_);
    throw UserError(fmt::format("archive {}: {} {}: {}; nothing was imported", label_, what,
                                last_.empty() ? "at the start" : "after entry '" + last_ + "'",
                                msg ? msg : "truncated or corrupt archive"));
  }
  std::string normalize(const char* raw, const std::string& shown) const;
  int parent_fd(const std::string& parent, const std::string& entry);
  void entry(archive_entry* e);
  void make_dir(const std::string& rel, archive_entry* e);
  void make_file(const std::string& rel, int dirfd, const std::string& name, archive_entry* e);
  void make_hardlink(const std::string& rel, int dirfd, const std::string& name, archive_entry* e);
  void write_data(int fd, const std::string& rel, int64_t size, XXH3_state_t* h);
  void check_space(const std::string& rel, uint64_t need);
  void finish_dirs();

  struct archive* a_;
  std::string label_;
  TemplateBuilder& b_;
  const ImportLimits& lim_;
  int root_;
  ImportStats stats_;
  std::string last_;
  std::map<std::string, DirMeta> dirs_;                  // every directory made, implicit ones too
  std::unordered_map<std::string, mode_t> nondirs_;      // every other entry made: its type
  std::unordered_map<std::string, size_t> group_of_;     // hard-link group index by path
  std::string cached_parent_ = "\n";
  unique_fd cached_fd_;
  uint64_t data_bytes_ = 0, unchecked_bytes_ = 0, free_bytes_ = 0;
  PlaceQueue queue_;  // last: stopped before anything it uses goes away
};

std::string Importer::normalize(const char* raw, const std::string& shown) const {
  if (!raw) bad(shown, "name is not valid in this locale");
  std::string_view p = raw;
  if (p.find('\n') != std::string_view::npos || p.find('\r') != std::string_view::npos) bad(shown, "name contains a newline");
  if (p.starts_with('/')) bad(shown, "absolute path");
  std::string out;
  for (size_t pos = 0; pos <= p.size();) {
    size_t end = p.find('/', pos);
    if (end == std::string_view::npos) end = p.size();
    std::string_view comp = p.substr(pos, end - pos);
    pos = end + 1;
    if (comp.empty() || comp == ".") continue;
    if (comp == "..") bad(shown, "path contains '..'");
    if (!out.empty()) out += '/';
    out += comp;
  }
  if (out.size() > 4000) bad(shown, "path too long");
  return out;
}

// The directory `parent` (created if missing), reached without following any symlink.
int Importer::parent_fd(const std::string& parent, const std::string& entry) {
  if (parent == cached_parent_) return cached_fd_.get();
  unique_fd cur;
  int fd = dirs_.count(parent) ? os::try_open_beneath(root_, parent, O_PATH | O_DIRECTORY) : -ENOENT;
  if (fd >= 0) {
    cur.reset(fd);
  } else {
    cur = os::open_beneath(root_, "", O_PATH | O_DIRECTORY);
    std::string sofar;
    for (size_t pos = 0; pos < parent.size();) {
      size_t end = std::min(parent.find('/', pos), parent.size());
      std::string comp = parent.substr(pos, end - pos);
      pos = end + 1;
      sofar = sofar.empty() ? comp : sofar + "/" + comp;
      if (nondirs_.count(sofar)) {
        bad(entry, S_ISLNK(nondirs_[sofar]) ? fmt::format("path goes through the symlink '{}'", sofar)
                                            : fmt::format("'{}' is not a directory", sofar));
      }
      if (!dirs_.count(sofar)) {
        if (::mkdirat(cur.get(), comp.c_str(), 0700) != 0) throw_errno("create directory", sofar);
        DirMeta m;
        m.st.st_mode = S_IFDIR | 0755;
        ::clock_gettime(CLOCK_REALTIME, &m.st.st_mtim);
        m.st.st_atim = m.st.st_mtim;
        dirs_[sofar] = m;
      }
      int next = os::try_open_beneath(cur.get(), comp, O_PATH | O_DIRECTORY);
      if (next < 0) bad(entry, fmt::format("cannot reach '{}' without following a link: {}", sofar, std::strerror(-next)));
      cur.reset(next);
    }
  }
  cached_parent_ = parent;
  cached_fd_ = std::move(cur);
  return cached_fd_.get();
}

void Importer::check_space(const std::string& rel, uint64_t need) {
  if (unchecked_bytes_ + need + lim_.reserve_bytes <= free_bytes_ && unchecked_bytes_ < (64ULL << 20)) {
    unchecked_bytes_ += need;
    return;
  }
  struct statvfs vfs {};
  if (::fstatvfs(root_, &vfs) != 0) throw_errno("statfs", "pool");
  free_bytes_ = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  unchecked_bytes_ = need;
  if (need + lim_.reserve_bytes > free_bytes_)
    bad(rel, fmt::format("not enough free space in the pool: {} bytes needed, {} free (keeping {} in reserve)", need,
                         free_bytes_, lim_.reserve_bytes));
}

void Importer::write_data(int fd, const std::string& rel, int64_t size, XXH3_state_t* h) {
  int64_t hashed = 0;
  auto hash_zeros_to = [&](int64_t off) {
    while (hashed < off) {
      size_t n = static_cast<size_t>(std::min<int64_t>(off - hashed, kZeroChunk));
      XXH3_128bits_update(h, zeros(), n);
      hashed += static_cast<int64_t>(n);
    }
  };
  for (;;) {
    const void* buf;
    size_t len;
    la_int64_t off;
    int r = archive_read_data_block(a_, &buf, &len, &off);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) archive_failed("cannot read the data of the next entry");
    if (off < hashed || off + static_cast<int64_t>(len) > size) bad(rel, "data does not match its header");
    hash_zeros_to(off);
    for (size_t done = 0; done < len;) {
      ssize_t n = ::pwrite(fd, static_cast<const char*>(buf) + done, len - done, off + static_cast<off_t>(done));
      if (n < 0) {
        if (errno == EINTR) continue;
        throw_errno("write", rel);
      }
      done += static_cast<size_t>(n);
    }
    XXH3_128bits_update(h, buf, len);
    hashed += static_cast<int64_t>(len);
    data_bytes_ += len;
  }
  bool ends_in_hole = hashed < size;
  hash_zeros_to(size);
  if (ends_in_hole && ::ftruncate(fd, size) != 0) throw_errno("truncate", rel);
}

void Importer::make_file(const std::string& rel, int dirfd, const std::string& name, archive_entry* e) {
  int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
  if (size < 0 || static_cast<uint64_t>(size) > lim_.max_bytes - std::min(lim_.max_bytes, stats_.bytes))
    bad(rel, fmt::format("archive holds more than the {} bytes allowed (--max-size)", lim_.max_bytes));
  check_space(rel, static_cast<uint64_t>(size));
  int fd = ::openat(dirfd, name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) throw_errno("create", rel);
  unique_fd file(fd);
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> h(XXH3_createState(), &XXH3_freeState);
  XXH3_128bits_reset(h.get());
  write_data(fd, rel, size, h.get());
  XXH128_hash_t digest = XXH3_128bits_digest(h.get());
  struct stat st = entry_stat(e);
  os::Xattrs xattrs = entry_xattrs(e);
  os::copy_file_metadata(fd, st, xattrs, rel);
  struct stat real {};
  if (::fstat(fd, &real) != 0) throw_errno("stat", rel);
  FileKey key = file_key({digest.high64, digest.low64}, real, xattrs.empty() ? os::Xattrs{} : os::read_xattrs(fd, rel), true);
  int dir = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
  if (dir < 0) throw_errno("dup directory fd of", rel);
  queue_.push(std::move(file), unique_fd(dir), name, rel, key);
  stats_.bytes += static_cast<uint64_t>(size);
  ++stats_.files;
  uint64_t read = static_cast<uint64_t>(std::max<la_int64_t>(archive_filter_bytes(a_, -1), 1));
  if (data_bytes_ > lim_.ratio_floor && static_cast<double>(data_bytes_) > lim_.max_ratio * static_cast<double>(read))
    bad(rel, fmt::format("archive expands more than {}x (--max-ratio): {} bytes of data from {} archive bytes", lim_.max_ratio,
                         data_bytes_, read));
}

void Importer::make_hardlink(const std::string& rel, int dirfd, const std::string& name, archive_entry* e) {
  std::string raw = archive_entry_hardlink(e);
  std::string target = normalize(raw.c_str(), rel + " (link target '" + raw + "')");
  auto it = nondirs_.find(target);
  if (target.empty() || it == nondirs_.end())
    bad(rel, fmt::format("hard link to '{}', which is not an earlier file of this archive", raw));
  queue_.drain();  // the target must already be its final store link
  auto [tparent, tname] = split(target);
  unique_fd tdir = os::open_beneath(root_, tparent, O_PATH | O_DIRECTORY);
  if (::linkat(tdir.get(), tname.c_str(), dirfd, name.c_str(), 0) != 0) throw_errno("link", rel);
  if (S_ISREG(it->second)) {
    auto [g, fresh] = group_of_.try_emplace(target, b_.links().size());
    if (fresh) b_.links().push_back({target});
    b_.links()[g->second].push_back(rel);
    group_of_[rel] = g->second;
  }
  nondirs_[rel] = it->second;
  ++stats_.hardlinks;
}

void Importer::make_dir(const std::string& rel, archive_entry* e) {
  auto it = dirs_.find(rel);
  if ((it != dirs_.end() && it->second.explicit_entry) || nondirs_.count(rel)) bad(rel, "duplicate entry");
  if (it == dirs_.end()) {
    auto [parent, name] = split(rel);
    int pfd = parent_fd(parent, rel);
    if (::mkdirat(pfd, name.c_str(), 0700) != 0) throw_errno("create directory", rel);
    it = dirs_.emplace(rel, DirMeta{}).first;
  }
  it->second = DirMeta{entry_stat(e), entry_xattrs(e), true};
  ++stats_.dirs;
}

void Importer::entry(archive_entry* e) {
  const char* raw = archive_entry_pathname(e);
  std::string shown = raw ? raw : "?";
  last_ = shown;
  if (++stats_.entries > lim_.max_entries)
    bad(shown, fmt::format("archive has more than the {} entries allowed (--max-entries)", lim_.max_entries));
  std::string rel = normalize(raw, shown);
  mode_t type = archive_entry_filetype(e);
  if (archive_entry_hardlink(e) == nullptr && type == AE_IFDIR) return make_dir(rel, e);
  if (rel.empty()) bad(shown, "the archive root must be a directory");
  if (dirs_.count(rel) || nondirs_.count(rel)) bad(shown, "duplicate entry (a path may appear only once)");
  auto [parent, name] = split(rel);
  int pfd = parent_fd(parent, shown);
  if (archive_entry_hardlink(e)) return make_hardlink(rel, pfd, name, e);
  struct stat st = entry_stat(e);
  switch (type) {
    case AE_IFREG:
      make_file(rel, pfd, name, e);
      break;
    case AE_IFLNK: {
      const char* target = archive_entry_symlink(e);
      if (!target) bad(shown, "symlink without a target");
      if (::symlinkat(target, pfd, name.c_str()) != 0) throw_errno("create symlink", rel);
      os::copy_metadata_at(pfd, name, st, entry_xattrs(e));
      ++stats_.symlinks;
      break;
    }
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO:
    case AE_IFSOCK:
      if ((type == AE_IFCHR || type == AE_IFBLK) && !lim_.allow_devices && !standard_device(st))
        bad(shown, fmt::format("device node {}:{} (only the standard pseudo-devices are imported without --allow-devices)",
                               major(st.st_rdev), minor(st.st_rdev)));
      if (::mknodat(pfd, name.c_str(), type | 0600, st.st_rdev) != 0) throw_errno("create node", rel);
      os::copy_metadata_at(pfd, name, st, entry_xattrs(e));
      ++stats_.nodes;
      break;
    default:
      bad(shown, fmt::format("unsupported entry type {:o}", type));
  }
  nondirs_[rel] = type;
}

void Importer::finish_dirs() {
  // Children before parents: longest paths first (a parent is a prefix of its children).
  std::vector<const std::pair<const std::string, DirMeta>*> order;
  for (const auto& d : dirs_) order.push_back(&d);
  std::sort(order.begin(), order.end(), [](auto* x, auto* y) { return x->first.size() > y->first.size(); });
  for (const auto* d : order) {
    unique_fd fd = os::open_beneath(root_, d->first, O_RDONLY | O_DIRECTORY);
    struct stat st = d->second.st;
    if (d->first.empty() && !d->second.explicit_entry) {  // no root entry: a plain 0755 root
      st.st_mode = S_IFDIR | 0755;
      ::clock_gettime(CLOCK_REALTIME, &st.st_mtim);
      st.st_atim = st.st_mtim;
    }
    os::copy_file_metadata(fd.get(), st, d->second.xattrs, d->first.empty() ? "." : d->first);
  }
}

ImportStats Importer::run() {
  check_space("", 0);
  archive_entry* e;
  for (;;) {
    int r = archive_read_next_header(a_, &e);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) archive_failed("cannot read the next entry");
    entry(e);
  }
  queue_.drain();
  cached_fd_.reset();
  finish_dirs();
  stats_.archive_bytes = static_cast<uint64_t>(archive_filter_bytes(a_, -1));
  return stats_;
}

ArchivePtr open_reader(int in_fd, const std::string& label) {
  ArchivePtr a(archive_read_new(), archive_read_free);
  // Never mtree: its entries can name host files whose contents the reader would pull in.
  archive_read_support_filter_all(a.get());
  for (auto fn : {archive_read_support_format_tar, archive_read_support_format_gnutar, archive_read_support_format_cpio,
                  archive_read_support_format_zip_streamable, archive_read_support_format_7zip,
                  archive_read_support_format_iso9660, archive_read_support_format_xar})
    fn(a.get());
  if (archive_read_open_fd(a.get(), in_fd, 1 << 17) != ARCHIVE_OK) {
    const char* msg = archive_error_string(a.get());
    throw UserError(fmt::format("archive {}: {}", label, msg ? msg : "cannot open"));
  }
  return a;
}

}  // namespace

ImportStats import_archive(int in_fd, const std::string& label, TemplateBuilder& builder, const ImportLimits& limits) {
  ArchivePtr a = open_reader(in_fd, label);
  return Importer(a.get(), label, builder, limits).run();
}

// ---------------------------------------------------------------------------------------
// Export

namespace {

class Exporter {
 public:
  Exporter(struct archive* a, const LinkGroups& links) : a_(a) {
    for (const auto& g : links)
      for (const auto& p : g) group_of_[p] = &g;
  }
  void add(int dirfd, const char* name, const std::string& rel, const struct stat& st);
  ExportStats stats;

 private:
  void write_header(archive_entry* e, const std::string& rel);
  void write_file(int fd, archive_entry* e, const struct stat& st, const std::string& rel);
  struct archive* a_;
  std::unordered_map<std::string, const std::vector<std::string>*> group_of_;
  std::unordered_map<const std::vector<std::string>*, std::string> first_of_group_;
};

void Exporter::write_header(archive_entry* e, const std::string& rel) {
  if (archive_write_header(a_, e) < ARCHIVE_WARN) {
    const char* msg = archive_error_string(a_);
    throw std::runtime_error(fmt::format("export: cannot write entry '{}': {}", rel, msg ? msg : "?"));
  }
  ++stats.entries;
}

void Exporter::write_file(int fd, archive_entry* e, const struct stat& st, const std::string& rel) {
  std::vector<std::pair<off_t, off_t>> data;  // [offset, length) of data regions
  bool sparse = st.st_blocks * 512 < st.st_size;
  for (off_t pos = 0; sparse && pos < st.st_size;) {
    off_t d = ::lseek(fd, pos, SEEK_DATA);
    if (d < 0) break;
    off_t hole = ::lseek(fd, d, SEEK_HOLE);
    if (hole < 0 || hole > st.st_size) hole = st.st_size;
    data.push_back({d, hole - d});
    pos = hole;
  }
  if (!sparse) data.push_back({0, st.st_size});
  if (sparse) {
    for (auto [off, len] : data) archive_entry_sparse_add_entry(e, off, len);
    if (data.empty() || data.back().first + data.back().second < st.st_size) archive_entry_sparse_add_entry(e, st.st_size, 0);
  }
  write_header(e, rel);
  static thread_local std::vector<char> buf(1 << 20);
  auto put = [&](const char* p, size_t n) {
    if (archive_write_data(a_, p, n) < 0)
      throw std::runtime_error(fmt::format("export: cannot write '{}': {}", rel, archive_error_string(a_)));
    stats.bytes += n;
  };
  off_t pos = 0;
  for (auto [off, len] : data) {
    for (; pos < off; pos += static_cast<off_t>(kZeroChunk)) put(zeros(), static_cast<size_t>(std::min<off_t>(kZeroChunk, off - pos)));
    pos = off;
    for (off_t end = off + len; pos < end;) {
      ssize_t n = ::pread(fd, buf.data(), static_cast<size_t>(std::min<off_t>(static_cast<off_t>(buf.size()), end - pos)), pos);
      if (n < 0) throw_errno("read", rel);
      if (n == 0) throw std::runtime_error(fmt::format("export: '{}' shrank while being read", rel));
      put(buf.data(), static_cast<size_t>(n));
      pos += n;
    }
  }
  for (; pos < st.st_size;) {
    size_t n = static_cast<size_t>(std::min<off_t>(kZeroChunk, st.st_size - pos));
    put(zeros(), n);
    pos += static_cast<off_t>(n);
  }
}

void Exporter::add(int dirfd, const char* name, const std::string& rel, const struct stat& st) {
  if (S_ISSOCK(st.st_mode)) {  // no archive format has a type for sockets (tar skips them too)
    ++stats.skipped_sockets;
    return;
  }
  std::unique_ptr<archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(), archive_entry_free);
  archive_entry_set_pathname(e.get(), rel.empty() ? "./" : ("./" + rel).c_str());
  archive_entry_set_mode(e.get(), st.st_mode);
  archive_entry_set_uid(e.get(), st.st_uid);
  archive_entry_set_gid(e.get(), st.st_gid);
  archive_entry_set_mtime(e.get(), st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  for (const os::Xattr& x : os::read_xattrs_at(dirfd, name))
    archive_entry_xattr_add_entry(e.get(), x.name.c_str(), x.value.data(), x.value.size());
  if (S_ISREG(st.st_mode)) {
    auto g = group_of_.find(rel);
    if (g != group_of_.end()) {
      auto [first, fresh] = first_of_group_.try_emplace(g->second, rel);
      if (!fresh) {
        archive_entry_set_hardlink(e.get(), ("./" + first->second).c_str());
        archive_entry_set_size(e.get(), 0);
        return write_header(e.get(), rel);
      }
    }
    archive_entry_set_size(e.get(), st.st_size);
    int fd = ::openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) throw_errno("open", rel);
    unique_fd file(fd);
    return write_file(fd, e.get(), st, rel);
  }
  archive_entry_set_size(e.get(), 0);
  if (S_ISLNK(st.st_mode)) {
    std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
    ssize_t n = ::readlinkat(dirfd, name, target.data(), target.size());
    if (n < 0) throw_errno("read link", rel);
    target.resize(static_cast<size_t>(n));
    archive_entry_set_symlink(e.get(), target.c_str());
  } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
    archive_entry_set_rdev(e.get(), st.st_rdev);
  }
  write_header(e.get(), rel);
}

}  // namespace

ExportStats export_tree(int root_fd, const LinkGroups& links, int out_fd, const std::string& compression) {
  ArchivePtr a(archive_write_new(), archive_write_free);
  archive_write_set_format_pax(a.get());
  int r = ARCHIVE_OK;
  if (compression == "gzip") {
    r = archive_write_add_filter_gzip(a.get());
    if (r == ARCHIVE_OK) archive_write_set_filter_option(a.get(), "gzip", "timestamp", nullptr);
  } else if (compression == "xz") {
    r = archive_write_add_filter_xz(a.get());
  } else if (compression == "zstd") {
    r = archive_write_add_filter_zstd(a.get());
  } else if (compression == "bzip2") {
    r = archive_write_add_filter_bzip2(a.get());
  } else if (!compression.empty()) {
    throw UserError(fmt::format("unknown compression '{}' (use gzip, xz, zstd or bzip2)", compression));
  }
  if (r != ARCHIVE_OK) throw std::runtime_error(fmt::format("export: {}", archive_error_string(a.get())));
  if (archive_write_open_fd(a.get(), out_fd) != ARCHIVE_OK)
    throw std::runtime_error(fmt::format("export: {}", archive_error_string(a.get())));
  Exporter ex(a.get(), links);
  struct stat root_st {};
  if (::fstat(root_fd, &root_st) != 0) throw_errno("stat", ".");
  ex.add(root_fd, ".", "", root_st);
  os::walk_tree(root_fd, [&](const os::WalkEntry& w) {
    ex.add(w.dirfd, w.name, w.rel, w.st);
    return true;
  });
  if (archive_write_close(a.get()) != ARCHIVE_OK)
    throw std::runtime_error(fmt::format("export: {}", archive_error_string(a.get())));
  return ex.stats;
}

}  // namespace vunify::unify
