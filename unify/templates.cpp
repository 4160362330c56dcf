#include "unify/templates.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <map>
#include <unordered_set>

#include "os/copy.hpp"
#include "os/crash_point.hpp"
#include "os/error.hpp"
#include "os/files.hpp"
#include "os/walk.hpp"
#include "os/xattrs.hpp"
#include "unify/link_groups.hpp"
#include "unify/archive.hpp"
#include "unify/object_set.hpp"
#include "unify/outside_pool.hpp"
#include "unify/recovery.hpp"

extern char** environ;

namespace vunify::unify {

using os::throw_errno;
using os::unique_fd;
using os::UserError;

// ---- ObjectSink ----

ObjectSink::ObjectSink(Pool& pool) : pool_(pool), store_(pool) {
  for (ObjectRow& row : store_.load()) {
    FileKey k = row.key;
    by_key_[k].push_back(std::move(row));
  }
}

const ObjectRow* ObjectSink::find_equal(int fd, const FileKey& key, const std::string& path) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return nullptr;
  for (const ObjectRow& obj : it->second) {
    int ofd = ::openat(pool_.objects_fd(), obj.name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
    if (ofd < 0) continue;  // a stale index row: not a candidate
    unique_fd object(ofd);
    if (os::same_bytes(fd, ofd, path)) return &obj;  // equal hash but different bytes: keep apart
  }
  return nullptr;
}

void ObjectSink::place(int fd, const FileKey& key, int dirfd, const std::string& name, const std::string& path) {
  if (const ObjectRow* obj = find_equal(fd, key, path)) {
    // Our own temp tree: nobody else sees the gap between unlink and link.
    if (::unlinkat(dirfd, name.c_str(), 0) != 0) throw_errno("remove", path);
    if (::linkat(pool_.objects_fd(), obj->name.c_str(), dirfd, name.c_str(), 0) != 0)
      throw_errno("link store object " + obj->name + " as", path);
    ++deduplicated_;
    return;
  }
  ObjectRow row = store_.adopt(fd, key, path);
  created_.push_back(row.name);
  by_key_[key].push_back(std::move(row));
  os::crash_point("import.object");
}

const ObjectRow& ObjectSink::object_for(int fd, const FileKey& key, const std::string& path) {
  if (const ObjectRow* obj = find_equal(fd, key, path)) return *obj;
  ObjectRow row = store_.adopt(fd, key, path);
  created_.push_back(row.name);
  auto& rows = by_key_[key];
  rows.push_back(std::move(row));
  return rows.back();
}

void ObjectSink::discard_created() {
  for (const std::string& name : created_) ::unlinkat(pool_.objects_fd(), name.c_str(), 0);
  created_.clear();
}

void relink_template_file(Pool& pool, ObjectSink& sink, int dirfd, const std::string& name, const std::string& path) {
  struct stat dir_st {}, st {};
  if (::fstat(dirfd, &dir_st) != 0) throw_errno("stat the directory of", path);
  unique_fd src(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!src || ::fstat(src.get(), &st) != 0) throw_errno("open", path);
  if (!S_ISREG(st.st_mode)) throw UserError(fmt::format("{} is not a regular file any more", path));
  unique_fd copy(::openat(pool.store_tmp_fd(), ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (!copy) throw_errno("create a copy of", path);
  os::copy_file_data(src.get(), copy.get(), st.st_size, path);
  os::copy_file_metadata(copy.get(), st, os::read_xattrs(src.get(), path), path);
  if (::fsync(copy.get()) != 0) throw_errno("fsync the copy of", path);
  struct stat real {};
  if (::fstat(copy.get(), &real) != 0) throw_errno("stat the copy of", path);
  const ObjectRow& obj = sink.object_for(copy.get(), read_key(copy.get(), real, path), path);
  Store(pool).link_over(obj, dirfd, name, path);
  struct timespec times[2] = {dir_st.st_atim, dir_st.st_mtim};
  if (::futimens(dirfd, times) != 0) throw_errno("restore the times of the directory of", path);
}

// ---- TemplateBuilder ----

namespace {

unique_fd templates_dir(Pool& pool) { return os::open_dir(pool.path("templates")); }

const std::string& checked_new_name(Pool& pool, const std::string& name) {
  Pool::check_name(name, "template");
  if (has_template(pool, name)) throw UserError(fmt::format("template '{}' already exists", name));
  struct stat st {};
  if (::fstatat(pool.fd(), ("templates/" + name).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
    throw UserError(fmt::format("{} exists but is not a registered template; remove it by hand", pool.path("templates/" + name)));
  recover_templates(pool);
  return name;
}

}  // namespace

TemplateBuilder::TemplateBuilder(Pool& pool, const std::string& name, const std::string& source)
    : pool_(pool),
      name_(checked_new_name(pool, name)),
      source_(source),
      tmp_(fmt::format(".new-{}-{}", name, ::getpid())),
      tx_(pool.index()),
      sink_(pool) {
  tmp_fd_ = templates_dir(pool);
  if (::mkdirat(tmp_fd_.get(), tmp_.c_str(), 0700) != 0) throw_errno("create directory", pool.path("templates/" + tmp_));
  try {
    unique_fd dir = os::open_beneath(tmp_fd_.get(), tmp_, O_PATH | O_DIRECTORY);
    if (::mkdirat(dir.get(), "root", 0700) != 0) throw_errno("create directory", tmp_ + "/root");
    root_ = os::open_beneath(dir.get(), "root", O_RDONLY | O_DIRECTORY);
  } catch (...) {
    os::remove_tree(tmp_fd_.get(), tmp_);
    throw;
  }
}

TemplateBuilder::~TemplateBuilder() {
  if (done_ || committed_) return;  // committed: the journaled move is recovery's to finish
  try {
    root_.reset();
    sink_.discard_created();
    os::remove_tree(tmp_fd_.get(), tmp_);
  } catch (...) {
  }
}

void TemplateBuilder::commit() {
  std::string data;
  for (const auto& group : links_) {
    for (const auto& p : group) data += p + '\0';
    data += '\0';
  }
  unique_fd dir = os::open_beneath(tmp_fd_.get(), tmp_, O_PATH | O_DIRECTORY);
  int fd = ::openat(dir.get(), "links", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw_errno("create", tmp_ + "/links");
  unique_fd out(fd);
  if (::write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size())) throw_errno("write", tmp_ + "/links");
  if (::syncfs(pool_.fd()) != 0) throw_errno("syncfs", pool_.root());
  // Registered first, renamed after: a crash in between leaves a journaled move that recovery
  // finishes (unify/recovery.hpp), never a tree in place that the index does not know, whose
  // objects (not in the index either) recovery would take for a dead command's orphans.
  PendingMove move{PendingMove::Kind::TemplateAdd, name_, tmp_, name_};
  pool_.index().prepare("INSERT INTO templates(name, created, source) VALUES(?,?,?)").bind(1, name_).bind(2, now_ns()).bind(3, source_).run();
  write_move_journal(pool_.index(), move);
  tx_.commit();
  committed_ = true;
  os::crash_point("template.place");
  finish_move(pool_, move);
  done_ = true;
}

// ---- queries ----

std::vector<TemplateInfo> list_templates(Pool& pool) {
  std::vector<TemplateInfo> out;
  Stmt s = pool.index().prepare("SELECT name, created, source FROM templates ORDER BY name");
  while (s.step()) out.push_back({s.col_text(0), s.col_int(1), s.col_text(2)});
  return out;
}

bool has_template(Pool& pool, const std::string& name) {
  Stmt s = pool.index().prepare("SELECT 1 FROM templates WHERE name=?");
  s.bind(1, name);
  return s.step();
}

unique_fd open_template_root(Pool& pool, const std::string& name) {
  Pool::check_name(name, "template");
  if (!has_template(pool, name)) throw UserError(fmt::format("no template named '{}' in pool {}", name, pool.root()));
  unique_fd dir = templates_dir(pool);
  return os::open_beneath(dir.get(), name + "/root", O_RDONLY | O_DIRECTORY);
}

LinkGroups read_link_groups(Pool& pool, const std::string& name) {
  unique_fd dir = templates_dir(pool);
  int fd = os::try_open_beneath(dir.get(), name + "/links", O_RDONLY);
  if (fd == -ENOENT) return {};
  if (fd < 0) {
    errno = -fd;
    throw_errno("open", pool.path("templates/" + name + "/links"));
  }
  unique_fd file(fd);
  std::string data;
  char buf[65536];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) != 0;) {
    if (n < 0) throw_errno("read", pool.path("templates/" + name + "/links"));
    data.append(buf, static_cast<size_t>(n));
  }
  LinkGroups groups(1);
  for (size_t pos = 0; pos < data.size();) {
    size_t end = data.find('\0', pos);
    if (end == std::string::npos) break;
    if (end == pos) groups.emplace_back();
    else groups.back().push_back(data.substr(pos, end - pos));
    pos = end + 1;
  }
  if (groups.back().empty()) groups.pop_back();
  return groups;
}

void recover_templates(Pool& pool) {
  unique_fd dir = templates_dir(pool);
  os::walk_tree(dir.get(), [&](const os::WalkEntry& e) {
    if (e.name[0] == '.') os::remove_tree(e.dirfd, e.name);
    return false;
  });
}

void remove_template(Pool& pool, const std::string& name, bool force) {
  Pool::check_name(name, "template");
  if (!has_template(pool, name)) throw UserError(fmt::format("no template named '{}'", name));
  Stmt s = pool.index().prepare("SELECT count(*) FROM guests WHERE template=?");
  s.bind(1, name);
  s.step();
  int64_t users = s.col_int(0);
  if (users > 0 && !force)
    throw UserError(fmt::format("template '{}' is used by {} guest(s); remove them first or use --force (their files stay)",
                                name, users));
  PendingMove move{PendingMove::Kind::TemplateRm, name, name, fmt::format(".rm-{}-{}", name, ::getpid())};
  {
    Transaction tx(pool.index());
    pool.index().prepare("DELETE FROM templates WHERE name=?").bind(1, name).run();
    write_move_journal(pool.index(), move);
    tx.commit();
  }
  os::crash_point("template.rm");
  finish_move(pool, move);
}

// ---- ingest_tree: copy a directory tree into a template ----

namespace {

class Ingester {
 public:
  Ingester(TemplateBuilder& b, ObjectSet objects, const os::Progress& progress)
      : b_(b), objects_(std::move(objects)), progress_(progress) {}
  void copy_children(int src, int dst, const std::string& rel);
  IngestStats stats;

 private:
  void copy_entry(int src, int dst, const std::string& name, const std::string& rel, const struct stat& st);
  void copy_regular(int src, int dst, const std::string& name, const std::string& rel, const struct stat& st);
  TemplateBuilder& b_;
  ObjectSet objects_;
  const os::Progress& progress_;
  std::map<ino_t, std::pair<std::string, size_t>> first_;  // private hard links: ino -> (rel, group)
};

void Ingester::copy_children(int src, int dst, const std::string& rel) {
  std::vector<std::pair<std::string, struct stat>> children;
  os::walk_tree(src, [&](const os::WalkEntry& e) {
    // Not the temp entries of a copy-on-write break or unify under way (of a mounted guest).
    if (!std::string_view(e.name).starts_with(kTempPrefix)) children.emplace_back(e.name, e.st);
    return false;
  });
  for (auto& [name, st] : children) copy_entry(src, dst, name, os::join_path(rel, name), st);
}

void Ingester::copy_regular(int src, int dst, const std::string& name, const std::string& rel, const struct stat& listed) {
  // The source may be a mounted guest, whose view replaces a shared file by a private copy on
  // its first write: what is checked and what is linked must be one inode, the one opened.
  unique_fd file(::openat(src, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!file && errno == ENOENT) return;  // removed since it was listed
  struct stat st = listed;
  if (!file || ::fstat(file.get(), &st) != 0) throw_errno("open", rel);
  if (!S_ISREG(st.st_mode)) throw os::SysError(EAGAIN, "copy (it changed type while being copied)", rel);
  ++stats.files;
  stats.bytes += static_cast<uint64_t>(st.st_size);
  if (objects_.contains(st)) {  // already a store object: share it (that inode, by its fd)
    if (::linkat(AT_FDCWD, os::proc_fd_path(file.get()).c_str(), dst, name.c_str(), AT_SYMLINK_FOLLOW) != 0)
      throw_errno("link", rel);
    return;
  }
  if (st.st_nlink > 1) {
    auto it = first_.find(st.st_ino);
    if (it != first_.end()) {
      auto& [first_rel, group] = it->second;
      auto slash = first_rel.rfind('/');
      std::string parent = slash == std::string::npos ? "" : first_rel.substr(0, slash);
      unique_fd pfd = os::open_beneath(b_.root_fd(), parent, O_PATH | O_DIRECTORY);
      if (::linkat(pfd.get(), first_rel.substr(slash + 1).c_str(), dst, name.c_str(), 0) != 0) throw_errno("link", rel);
      if (group == SIZE_MAX) {
        group = b_.links().size();
        b_.links().push_back({first_rel});
      }
      b_.links()[group].push_back(rel);
      return;
    }
    first_[st.st_ino] = {rel, SIZE_MAX};
  }
  std::string self = os::proc_fd_path(file.get());
  unique_fd in(::open(self.c_str(), O_RDONLY | O_CLOEXEC | O_NOATIME));
  if (!in && errno == EPERM) in.reset(::open(self.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) throw_errno("open", rel);
  int sfd = in.get();
  int tfd = ::openat(dst, name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (tfd < 0) throw_errno("create", rel);
  unique_fd tmp(tfd);
  os::copy_file_data(sfd, tfd, st.st_size, rel);
  Hash128 h = hash_fd(tfd, rel);
  os::copy_file_metadata(tfd, st, os::read_xattrs(sfd, rel), rel);
  struct stat real {};
  if (::fstat(tfd, &real) != 0) throw_errno("stat", rel);
  b_.sink().place(tfd, file_key(h, real, os::read_xattrs(tfd, rel), true), dst, name, rel);
}

void Ingester::copy_entry(int src, int dst, const std::string& name, const std::string& rel, const struct stat& st) {
  if ((++stats.entries & 255) == 0 && progress_)
    progress_(fmt::format("copying: {} entries, {} MiB of file data", stats.entries, stats.bytes >> 20));
  switch (st.st_mode & S_IFMT) {
    case S_IFDIR: {
      if (::mkdirat(dst, name.c_str(), 0700) != 0) throw_errno("create directory", rel);
      unique_fd s = os::open_beneath(src, name, O_RDONLY | O_DIRECTORY);
      unique_fd d = os::open_beneath(dst, name, O_RDONLY | O_DIRECTORY);
      copy_children(s.get(), d.get(), rel);
      os::copy_file_metadata(d.get(), st, os::read_xattrs(s.get(), rel), rel);
      return;
    }
    case S_IFREG:
      return copy_regular(src, dst, name, rel, st);
    case S_IFLNK: {
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlinkat(src, name.c_str(), target.data(), target.size());
      if (n < 0) throw_errno("read link", rel);
      target.resize(static_cast<size_t>(n));
      if (::symlinkat(target.c_str(), dst, name.c_str()) != 0) throw_errno("create symlink", rel);
      break;
    }
    default:
      if (::mknodat(dst, name.c_str(), (st.st_mode & S_IFMT) | 0600, st.st_rdev) != 0) throw_errno("create node", rel);
      break;
  }
  os::copy_metadata_at(dst, name, st, os::read_xattrs_at(src, name));
}

}  // namespace

IngestStats ingest_tree(Pool& pool, int src_root_fd, TemplateBuilder& builder, const os::Progress& progress) {
  struct stat st {};
  if (::fstat(src_root_fd, &st) != 0) throw_errno("stat", ".");
  Ingester ing(builder, ObjectSet::load(pool), progress);
  ing.copy_children(src_root_fd, builder.root_fd(), "");
  os::copy_file_metadata(builder.root_fd(), st, os::read_xattrs(src_root_fd, "."), ".");
  return ing.stats;
}

void unmount_beneath(const std::string& dir) {
  std::ifstream mounts("/proc/self/mounts");
  std::vector<std::string> found;
  std::string dev, mnt, rest;
  while (mounts >> dev >> mnt && std::getline(mounts, rest))
    if (mnt.starts_with(dir + "/")) found.push_back(mnt);
  for (auto it = found.rbegin(); it != found.rend(); ++it) ::umount2(it->c_str(), MNT_DETACH);
}

// ---- the template commands ----

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

ImportResult finish(TemplateBuilder& b, std::chrono::steady_clock::time_point t0, const IngestStats& s = {}) {
  ImportResult r;
  r.entries = s.entries;
  r.files = s.files;
  r.bytes = s.bytes;
  r.new_objects = b.sink().adopted();
  r.shared_files = b.sink().deduplicated();
  b.commit();
  r.seconds = seconds_since(t0);
  return r;
}

int run_program(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  int rc = ::posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ);
  if (rc != 0) {
    errno = rc;
    throw_errno("run", argv[0]);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) throw_errno("wait for", argv[0]);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

ImportResult import_template(Pool& pool, const std::string& name, const std::string& file, const ImportLimits& limits,
                             const os::Progress& progress) {
  auto t0 = std::chrono::steady_clock::now();
  unique_fd owned;
  int fd = 0;
  if (file != "-") {
    fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw_errno("open archive", file);
    owned.reset(fd);
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
      throw UserError(fmt::format("{} is a directory, not an archive: give a tar/cpio/... file (or - for stdin); to make a "
                                  "template from a directory, add it as a guest and use 'template from-guest'",
                                  file));
    check_outside_pool(pool, file, "archive");
    struct statvfs vfs {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && ::statvfs(pool.root().c_str(), &vfs) == 0) {
      uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
      if (static_cast<uint64_t>(st.st_size) + limits.reserve_bytes > free_bytes)
        throw UserError(fmt::format("not enough free space in the pool for {}: its {} bytes (a compressed archive unpacks to at "
                                    "least that) plus a reserve of {} bytes kept free for the index and the guests are "
                                    "needed, {} bytes are free",
                                    file, st.st_size, limits.reserve_bytes, free_bytes));
    }
  }
  TemplateBuilder b(pool, name, "archive:" + file);
  ImportStats s = import_archive(fd, file == "-" ? "(stdin)" : file, b, limits, progress);
  ImportResult r = finish(b, t0);
  r.entries = s.entries;
  r.files = s.files;
  r.bytes = s.bytes;
  r.archive_bytes = s.archive_bytes;
  return r;
}

ImportResult template_from_guest(Pool& pool, const std::string& name, const std::string& guest, const os::Progress& progress) {
  auto t0 = std::chrono::steady_clock::now();
  unique_fd root = pool.open_guest_root(guest);
  TemplateBuilder b(pool, name, "guest:" + guest);
  IngestStats s = ingest_tree(pool, root.get(), b, progress);
  // The guest's own hard links whose inode is shared are recorded, not visible in the tree.
  for (auto& paths : link_group_paths(root.get(), read_links(open_links_dir(pool).get(), guest))) b.links().push_back(paths);
  return finish(b, t0, s);
}

ImportResult build_template(Pool& pool, const std::string& name, const DebootstrapOptions& o, const os::Progress& progress) {
  auto t0 = std::chrono::steady_clock::now();
  if (o.suite.empty()) throw UserError("--debootstrap needs a suite (e.g. bookworm)");
  TemplateBuilder b(pool, name, fmt::format("debootstrap:{}/{}", o.suite, o.variant));
  std::string tmp = fmt::format(".debootstrap-{}-{}", name, ::getpid());
  std::string dir = pool.path("templates/" + tmp);
  unique_fd tdir = os::open_dir(pool.path("templates"));
  if (::mkdirat(tdir.get(), tmp.c_str(), 0700) != 0) throw_errno("create directory", dir);
  struct Cleanup {
    int fd;
    std::string name, path;
    ~Cleanup() {
      try {
        unmount_beneath(path);
        os::remove_tree(fd, name);
      } catch (...) {
      }
    }
  } cleanup{tdir.get(), tmp, dir};
  std::vector<std::string> argv = {"debootstrap"};
  if (!o.variant.empty()) argv.push_back("--variant=" + o.variant);
  if (!o.include.empty()) {
    std::string inc;
    for (const auto& p : o.include) inc += (inc.empty() ? "" : ",") + p;
    argv.push_back("--include=" + inc);
  }
  argv.push_back(o.suite);
  argv.push_back(dir);
  if (!o.mirror.empty()) argv.push_back(o.mirror);
  int rc = run_program(argv);
  unmount_beneath(dir);
  if (rc != 0) throw UserError(fmt::format("debootstrap failed (exit status {}); see its output above", rc));
  unique_fd root = os::open_beneath(tdir.get(), tmp, O_RDONLY | O_DIRECTORY);
  IngestStats s = ingest_tree(pool, root.get(), b, progress);
  return finish(b, t0, s);
}

uint64_t export_template(Pool& pool, const std::string& name, const std::string& file, const os::Progress& progress) {
  unique_fd root = open_template_root(pool, name);
  LinkGroups links = read_link_groups(pool, name);
  std::string compression;
  for (auto [suffix, c] : {std::pair{".gz", "gzip"}, std::pair{".tgz", "gzip"}, std::pair{".xz", "xz"}, std::pair{".zst", "zstd"},
                           std::pair{".bz2", "bzip2"}})
    if (file.ends_with(suffix)) compression = c;
  if (file == "-") return export_tree(root.get(), links, 1, compression, progress).entries;
  struct stat st {};
  if (::stat(file.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    throw UserError(fmt::format("{} is a directory: give the archive file to write (e.g. {}/{}.tar.gz)", file, file, name));
  check_outside_pool(pool, file, "archive");
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw_errno("create", file);
  unique_fd out(fd);
  try {
    uint64_t n = export_tree(root.get(), links, fd, compression, progress).entries;
    if (::fsync(fd) != 0) throw_errno("fsync", file);
    return n;
  } catch (...) {
    ::unlink(file.c_str());
    throw;
  }
}

}  // namespace vunify::unify
