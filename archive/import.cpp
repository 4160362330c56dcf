// Archive import: a streaming, fd-relative extraction that trusts nothing in the archive. Each
// regular file is hashed while it is written and handed to a FilePlacer, which finishes it
// (metadata, store link, index row) on a second thread.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "archive/archive.hpp"
#include "archive/entry_meta.hpp"
#include "archive/limits.hpp"
#include "archive/placer.hpp"
#include "os/copy.hpp"
#include "os/error.hpp"
#include "os/walk.hpp"

namespace vunify::archive {

using os::throw_errno;
using os::unique_fd;
using os::UserError;
using unify::Hash128;

namespace {

constexpr size_t kReadBlock = 1 << 17;  // bytes per read(2) of the archive
constexpr size_t kDirCache = 8;         // open parent directories kept (tar order revisits a parent after each subtree)

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

struct HashState {
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> p{XXH3_createState(), &XXH3_freeState};
};

class Importer {
 public:
  Importer(struct archive* a, const std::string& label, const ImportTarget& t, const ImportLimits& lim)
      : a_(a), label_(label), links_(*t.links), root_(t.root_fd), budget_(lim, label, t.root_fd), placer_(t) {
    if (!hash_.p) throw std::bad_alloc();
    dirs_[""] = DirMeta{};
  }
  ImportStats run();
  void show_progress(const os::Progress* progress, uint64_t input_bytes) {
    progress_ = progress;
    input_bytes_ = input_bytes;
  }

 private:
  [[noreturn]] void bad(const std::string& entry, const std::string& why) const { reject(label_, entry, why); }
  [[noreturn]] void archive_failed(const char* what) const;
  std::string normalize(const char* raw, const std::string& shown) const;
  SharedDir parent_dir(const std::string& parent, const std::string& entry);
  unique_fd walk_to(const std::string& parent, const std::string& entry);
  void entry(archive_entry* e);
  void make_dir(const std::string& rel, archive_entry* e);
  void make_file(const std::string& rel, const SharedDir& dir, const std::string& name, archive_entry* e);
  void make_hardlink(const std::string& rel, int dirfd, const std::string& name, archive_entry* e);
  void make_special(const std::string& rel, int dirfd, const std::string& name, archive_entry* e);
  Hash128 write_data(int fd, const std::string& rel, int64_t size);
  void finish_dirs();
  void report();

  struct archive* a_;
  std::string label_;
  LinkGroups& links_;
  int root_;
  ImportBudget budget_;
  ImportStats stats_;
  std::string last_;
  std::map<std::string, DirMeta> dirs_;              // every directory made, implicit ones too
  std::unordered_map<std::string, mode_t> nondirs_;  // every other entry made: its type
  std::unordered_map<std::string, size_t> group_of_;  // hard-link group index by path
  std::vector<std::pair<std::string, SharedDir>> dir_cache_;  // most recently used first
  HashState hash_;
  uint64_t data_bytes_ = 0;
  const os::Progress* progress_ = nullptr;
  uint64_t input_bytes_ = 0;  // size of the archive file, 0 if unknown (a pipe)
  FilePlacer placer_;  // last: its thread stops before anything it uses goes away
};

void Importer::archive_failed(const char* what) const {
  const char* msg = archive_error_string(a_);
  throw UserError(fmt::format("archive {}: {} {}: {}; nothing was imported", label_, what,
                              last_.empty() ? "at the start" : "after entry '" + last_ + "'",
                              msg ? msg : "truncated or corrupt archive"));
}

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
SharedDir Importer::parent_dir(const std::string& parent, const std::string& entry) {
  auto hit = std::find_if(dir_cache_.begin(), dir_cache_.end(), [&](const auto& c) { return c.first == parent; });
  if (hit == dir_cache_.end()) {
    if (dir_cache_.size() == kDirCache) dir_cache_.pop_back();
    dir_cache_.emplace_back(parent, std::make_shared<const unique_fd>(walk_to(parent, entry)));
    hit = dir_cache_.end() - 1;
  }
  std::rotate(dir_cache_.begin(), hit, hit + 1);
  return dir_cache_.front().second;
}

unique_fd Importer::walk_to(const std::string& parent, const std::string& entry) {
  int fd = dirs_.count(parent) ? os::try_open_beneath(root_, parent, O_PATH | O_DIRECTORY) : -ENOENT;
  if (fd >= 0) return unique_fd(fd);
  unique_fd cur = os::open_beneath(root_, "", O_PATH | O_DIRECTORY);
  std::string sofar;
  for (size_t pos = 0; pos < parent.size();) {
    size_t end = std::min(parent.find('/', pos), parent.size());
    std::string comp = parent.substr(pos, end - pos);
    pos = end + 1;
    sofar = sofar.empty() ? comp : sofar + "/" + comp;
    if (auto it = nondirs_.find(sofar); it != nondirs_.end()) {
      bad(entry, S_ISLNK(it->second) ? fmt::format("path goes through the symlink '{}'", sofar)
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
  return cur;
}

// Writes the entry's data at its offsets (holes stay holes) and returns its XXH3-128, holes
// hashed as zeros.
Hash128 Importer::write_data(int fd, const std::string& rel, int64_t size) {
  XXH3_state_t* h = hash_.p.get();
  XXH3_128bits_reset(h);
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
  XXH128_hash_t d = XXH3_128bits_digest(h);
  return Hash128{d.high64, d.low64};
}

void Importer::make_file(const std::string& rel, const SharedDir& dir, const std::string& name, archive_entry* e) {
  int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
  budget_.reserve_file(rel, size);
  int fd = ::openat(dir->get(), name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) throw_errno("create", rel);
  unique_fd file(fd);
  Hash128 content = write_data(fd, rel, size);
  placer_.push(PlaceJob{std::move(file), dir, name, rel, entry_stat(e), entry_xattrs(e), content});
  stats_.bytes += static_cast<uint64_t>(size);
  ++stats_.files;
  budget_.check_ratio(rel, data_bytes_, archive_filter_bytes(a_, -1));
}

void Importer::make_hardlink(const std::string& rel, int dirfd, const std::string& name, archive_entry* e) {
  std::string raw = archive_entry_hardlink(e);
  std::string target = normalize(raw.c_str(), rel + " (link target '" + raw + "')");
  auto it = nondirs_.find(target);
  if (target.empty() || it == nondirs_.end())
    bad(rel, fmt::format("hard link to '{}', which is not an earlier file of this archive", raw));
  placer_.drain();  // the target must already be its final store link
  auto [tparent, tname] = split(target);
  unique_fd tdir = os::open_beneath(root_, tparent, O_PATH | O_DIRECTORY);
  if (::linkat(tdir.get(), tname.c_str(), dirfd, name.c_str(), 0) != 0) throw_errno("link", rel);
  if (S_ISREG(it->second)) {
    auto [g, fresh] = group_of_.try_emplace(target, links_.size());
    if (fresh) links_.push_back({target});
    links_[g->second].push_back(rel);
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
    SharedDir pdir = parent_dir(parent, rel);
    if (::mkdirat(pdir->get(), name.c_str(), 0700) != 0) throw_errno("create directory", rel);
    it = dirs_.emplace(rel, DirMeta{}).first;
  }
  it->second = DirMeta{entry_stat(e), entry_xattrs(e), true};
  ++stats_.dirs;
}

// A symlink, device node, fifo or socket.
void Importer::make_special(const std::string& rel, int dirfd, const std::string& name, archive_entry* e) {
  struct stat st = entry_stat(e);
  if (S_ISLNK(st.st_mode)) {
    const char* target = archive_entry_symlink(e);
    if (!target) bad(last_, "symlink without a target");
    if (::symlinkat(target, dirfd, name.c_str()) != 0) throw_errno("create symlink", rel);
    ++stats_.symlinks;
  } else {
    budget_.check_device(last_, st);
    if (::mknodat(dirfd, name.c_str(), (st.st_mode & S_IFMT) | 0600, st.st_rdev) != 0) throw_errno("create node", rel);
    ++stats_.nodes;
  }
  os::copy_metadata_at(dirfd, name, st, entry_xattrs(e));
}

void Importer::entry(archive_entry* e) {
  const char* raw = archive_entry_pathname(e);
  last_ = raw ? raw : "?";
  const std::string& shown = last_;
  budget_.count_entry(shown);
  ++stats_.entries;
  std::string rel = normalize(raw, shown);
  mode_t type = archive_entry_filetype(e);
  bool hardlink = archive_entry_hardlink(e) != nullptr;
  if (!hardlink && type == AE_IFDIR) return make_dir(rel, e);
  if (rel.empty()) bad(shown, "the archive root must be a directory");
  if (dirs_.count(rel) || nondirs_.count(rel)) bad(shown, "duplicate entry (a path may appear only once)");
  auto [parent, name] = split(rel);
  SharedDir pdir = parent_dir(parent, shown);
  if (hardlink) return make_hardlink(rel, pdir->get(), name, e);
  switch (type) {
    case AE_IFREG: make_file(rel, pdir, name, e); break;
    case AE_IFLNK:
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO:
    case AE_IFSOCK: make_special(rel, pdir->get(), name, e); break;
    default: bad(shown, fmt::format("unsupported entry type {:o}", type));
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
  archive_entry* e;
  for (;;) {
    int r = archive_read_next_header(a_, &e);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) archive_failed("cannot read the next entry");
    entry(e);
    if ((stats_.entries & 255) == 0) report();
  }
  placer_.drain();
  dir_cache_.clear();
  finish_dirs();
  stats_.archive_bytes = static_cast<uint64_t>(archive_filter_bytes(a_, -1));
  return stats_;
}

void Importer::report() {
  if (!progress_ || !*progress_) return;
  uint64_t read = static_cast<uint64_t>(archive_filter_bytes(a_, -1));
  std::string line = fmt::format("importing: {} entries, {} MiB of file data, {} MiB of the archive read", stats_.entries,
                                 stats_.bytes >> 20, read >> 20);
  if (input_bytes_) line += fmt::format(" ({}%)", std::min<uint64_t>(100, read * 100 / input_bytes_));
  (*progress_)(line);
}

ArchivePtr open_reader(int in_fd, const std::string& label) {
  ArchivePtr a(archive_read_new(), archive_read_free);
  // Never mtree: its entries can name host files whose contents the reader would pull in.
  archive_read_support_filter_all(a.get());
  for (auto fn : {archive_read_support_format_tar, archive_read_support_format_gnutar, archive_read_support_format_cpio,
                  archive_read_support_format_zip_streamable, archive_read_support_format_7zip,
                  archive_read_support_format_iso9660, archive_read_support_format_xar})
    fn(a.get());
  if (archive_read_open_fd(a.get(), in_fd, kReadBlock) != ARCHIVE_OK) {
    const char* msg = archive_error_string(a.get());
    throw UserError(fmt::format("archive {}: {}", label, msg ? msg : "cannot open"));
  }
  return a;
}

}  // namespace

ImportStats import_archive(int in_fd, const std::string& label, const ImportTarget& target, const ImportLimits& limits,
                           const os::Progress& progress) {
  ArchivePtr a = open_reader(in_fd, label);
  Importer importer(a.get(), label, target, limits);
  struct stat st {};
  importer.show_progress(&progress, ::fstat(in_fd, &st) == 0 && S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_size) : 0);
  return importer.run();
}

}  // namespace vunify::archive
