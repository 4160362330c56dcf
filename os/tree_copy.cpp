#include "os/tree_copy.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <vector>
#include <utility>

#include "os/copy.hpp"
#include "os/error.hpp"
#include "os/walk.hpp"
#include "os/xattrs.hpp"

namespace vunify::os {

namespace {

class TreeCopier {
 public:
  TreeCopier(int dst_root, const Progress& progress) : dst_root_(dst_root), progress_(progress) {}

  void copy_dir(int src_dir, int dst_dir, const std::string& rel) {
    walk_children(src_dir, dst_dir, rel);
  }
  TreeCopyStats stats;

 private:
  void walk_children(int src_dir, int dst_dir, const std::string& rel);
  void copy_entry(int src_dir, int dst_dir, const std::string& name, const std::string& rel, const struct stat& st);
  void copy_regular(int src_dir, int dst_dir, const std::string& name, const std::string& rel, const struct stat& st);
  bool link_if_seen(int dst_dir, const std::string& name, const struct stat& st);

  int dst_root_;
  const Progress& progress_;
  std::map<std::pair<dev_t, ino_t>, std::string> first_copy_;  // hard links: src inode -> dst rel
};

void TreeCopier::walk_children(int src_dir, int dst_dir, const std::string& rel) {
  // List direct children only (visit returns false) and recurse by hand, keeping a
  // destination fd per level.
  std::vector<std::pair<std::string, struct stat>> children;
  walk_tree(src_dir, [&](const WalkEntry& e) {
    children.emplace_back(e.name, e.st);
    return false;
  });
  for (auto& [name, st] : children) copy_entry(src_dir, dst_dir, name, join_path(rel, name), st);
}

bool TreeCopier::link_if_seen(int dst_dir, const std::string& name, const struct stat& st) {
  if (st.st_nlink < 2 || S_ISDIR(st.st_mode)) return false;
  auto key = std::make_pair(st.st_dev, st.st_ino);
  auto it = first_copy_.find(key);
  if (it == first_copy_.end()) return false;
  const std::string& target = it->second;
  auto slash = target.rfind('/');
  std::string parent = slash == std::string::npos ? "" : target.substr(0, slash);
  std::string base = slash == std::string::npos ? target : target.substr(slash + 1);
  unique_fd pfd = open_beneath(dst_root_, parent, O_PATH | O_DIRECTORY);
  if (::linkat(pfd.get(), base.c_str(), dst_dir, name.c_str(), 0) != 0) throw_errno("link", name);
  return true;
}

void TreeCopier::copy_regular(int src_dir, int dst_dir, const std::string& name, const std::string& rel, const struct stat& st) {
  unique_fd src = open_read_at(src_dir, name, rel);
  int dfd = ::openat(dst_dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (dfd < 0) throw_errno("create", rel);
  unique_fd dst(dfd);
  stats.bytes_written += static_cast<uint64_t>(copy_file_data(src.get(), dst.get(), st.st_size, rel));
  copy_file_metadata(dst.get(), st, read_xattrs(src.get(), rel), rel);
}

void TreeCopier::copy_entry(int src_dir, int dst_dir, const std::string& name, const std::string& rel, const struct stat& st) {
  if ((++stats.entries & 255) == 0 && progress_)
    progress_(fmt::format("copying: {} entries, {} MiB", stats.entries, stats.bytes_written >> 20));
  if (link_if_seen(dst_dir, name, st)) return;
  switch (st.st_mode & S_IFMT) {
    case S_IFDIR: {
      if (::mkdirat(dst_dir, name.c_str(), 0700) != 0) throw_errno("create directory", rel);
      int s = ::openat(src_dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (s < 0) throw_errno("open directory", rel);
      unique_fd sdir(s);
      int d = ::openat(dst_dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (d < 0) throw_errno("open directory", rel);
      unique_fd ddir(d);
      walk_children(sdir.get(), ddir.get(), rel);
      copy_file_metadata(ddir.get(), st, read_xattrs(sdir.get(), rel), rel);
      return;
    }
    case S_IFREG:
      copy_regular(src_dir, dst_dir, name, rel, st);
      break;
    case S_IFLNK: {
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlinkat(src_dir, name.c_str(), target.data(), target.size());
      if (n < 0) throw_errno("read link", rel);
      target.resize(static_cast<size_t>(n));
      if (::symlinkat(target.c_str(), dst_dir, name.c_str()) != 0) throw_errno("create symlink", rel);
      copy_metadata_at(dst_dir, name, st, read_xattrs_at(src_dir, name));
      break;
    }
    default:  // fifo, socket, char/block device
      if (::mknodat(dst_dir, name.c_str(), st.st_mode & S_IFMT, st.st_rdev) != 0) throw_errno("create node", rel);
      copy_metadata_at(dst_dir, name, st, read_xattrs_at(src_dir, name));
      break;
  }
  if (st.st_nlink > 1) first_copy_[{st.st_dev, st.st_ino}] = rel;
}

}  // namespace

TreeCopyStats copy_tree(int src_root_fd, int dst_parent_fd, const std::string& dst_name, const Progress& progress) {
  struct stat root_st {};
  if (::fstat(src_root_fd, &root_st) != 0) throw_errno("stat", ".");
  if (::mkdirat(dst_parent_fd, dst_name.c_str(), 0700) != 0) throw_errno("create directory", dst_name);
  unique_fd dst = open_beneath(dst_parent_fd, dst_name, O_RDONLY | O_DIRECTORY);
  TreeCopier copier(dst.get(), progress);
  copier.copy_dir(src_root_fd, dst.get(), "");
  copy_file_metadata(dst.get(), root_st, read_xattrs(src_root_fd, "."), dst_name);
  return copier.stats;
}

}  // namespace vunify::os
