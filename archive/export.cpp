// Archive export: a reproducible pax archive of a template tree.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "archive/archive.hpp"
#include "archive/entry_meta.hpp"
#include "os/error.hpp"
#include "os/walk.hpp"
#include "os/xattrs.hpp"

namespace vunify::archive {

using os::throw_errno;
using os::unique_fd;
using os::UserError;

namespace {

class Exporter {
 public:
  Exporter(struct archive* a, const LinkGroups& links, const os::Progress& progress) : a_(a), progress_(progress) {
    for (const auto& g : links)
      for (const auto& p : g) group_of_[p] = &g;
  }
  void add(int dirfd, const char* name, const std::string& rel, const struct stat& st);
  ExportStats stats;

 private:
  void write_header(archive_entry* e, const std::string& rel);
  void write_file(int fd, archive_entry* e, const struct stat& st, const std::string& rel);
  void report();
  struct archive* a_;
  const os::Progress& progress_;
  uint64_t reported_entries_ = 0, reported_bytes_ = 0;
  std::unordered_map<std::string, const std::vector<std::string>*> group_of_;
  std::unordered_map<const std::vector<std::string>*, std::string> first_of_group_;
};

void Exporter::write_header(archive_entry* e, const std::string& rel) {
  if (archive_write_header(a_, e) < ARCHIVE_WARN) {
    const char* msg = archive_error_string(a_);
    throw std::runtime_error(fmt::format("export: cannot write entry '{}': {}", rel, msg ? msg : "?"));
  }
  ++stats.entries;
  report();
}

// Every 256 entries or 16 MiB of file data.
void Exporter::report() {
  if (!progress_ || (stats.entries - reported_entries_ < 256 && stats.bytes - reported_bytes_ < (16u << 20))) return;
  reported_entries_ = stats.entries;
  reported_bytes_ = stats.bytes;
  progress_(fmt::format("exporting: {} entries, {} MiB of file data", stats.entries, stats.bytes >> 20));
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
    report();
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

// Multi-threaded xz/zstd where this libarchive has the option (Debian 12's 3.6.2 has both);
// without it the export is single-threaded, still correct.
void set_threads(struct archive* a, const char* filter) {
  archive_write_set_filter_option(a, filter, "threads", std::to_string(compression_threads()).c_str());
}

}  // namespace

unsigned compression_threads() {
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return static_cast<unsigned>(std::clamp(n, 2L, 8L));
}

ExportStats export_tree(int root_fd, const LinkGroups& links, int out_fd, const std::string& compression,
                        const os::Progress& progress) {
  ArchivePtr a(archive_write_new(), archive_write_free);
  archive_write_set_format_pax(a.get());
  int r = ARCHIVE_OK;
  if (compression == "gzip") {
    r = archive_write_add_filter_gzip(a.get());
    if (r == ARCHIVE_OK) archive_write_set_filter_option(a.get(), "gzip", "timestamp", nullptr);
  } else if (compression == "xz") {
    r = archive_write_add_filter_xz(a.get());
    if (r == ARCHIVE_OK) set_threads(a.get(), "xz");
  } else if (compression == "zstd") {
    r = archive_write_add_filter_zstd(a.get());
    if (r == ARCHIVE_OK) set_threads(a.get(), "zstd");
  } else if (compression == "bzip2") {
    r = archive_write_add_filter_bzip2(a.get());
  } else if (!compression.empty()) {
    throw UserError(fmt::format("unknown compression '{}' (use gzip, xz, zstd or bzip2)", compression));
  }
  if (r != ARCHIVE_OK) throw std::runtime_error(fmt::format("export: {}", archive_error_string(a.get())));
  // No padding of the last block to 10 KiB (libarchive pads only stdout and devices): the same
  // bytes whether the archive goes to a file or a pipe.
  archive_write_set_bytes_in_last_block(a.get(), 1);
  if (archive_write_open_fd(a.get(), out_fd) != ARCHIVE_OK)
    throw std::runtime_error(fmt::format("export: {}", archive_error_string(a.get())));
  Exporter ex(a.get(), links, progress);
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

}  // namespace vunify::archive
