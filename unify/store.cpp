#include "unify/store.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <unordered_set>

#include "os/crash_point.hpp"
#include "os/error.hpp"
#include "os/walk.hpp"
#include "unify/parallel.hpp"
#include "unify/recovery.hpp"

namespace vunify::unify {

using os::throw_errno;
using os::unique_fd;

namespace {

std::string temp_name() {  // for entries in guest directories
  static std::atomic<uint64_t> counter{0};
  return fmt::format("{}{}.{}", kTempPrefix, ::getpid(), counter.fetch_add(1));
}

ObjectRow row_from(Stmt& s) {
  ObjectRow r;
  r.id = s.col_int(0);
  r.name = s.col_text(1);
  Hash128::parse(s.col_text(2), r.key.content);
  r.key.size = s.col_int(3);
  r.key.mode = static_cast<uint32_t>(s.col_int(4));
  r.key.uid = static_cast<uint32_t>(s.col_int(5));
  r.key.gid = static_cast<uint32_t>(s.col_int(6));
  Hash128::parse(s.col_text(7), r.key.xattrs);
  r.key.mtime_ns = s.col_int(8);
  r.ino = static_cast<ino_t>(s.col_int(9));
  return r;
}

constexpr const char* kSelectObjects = "SELECT id, name, content_hash, size, mode, uid, gid, xattr_hash, mtime_ns, ino FROM objects";

}  // namespace

FileKey read_key(int fd, const struct stat& st, const std::string& path) {
  return file_key(hash_fd(fd, path), st, os::read_xattrs(fd, path), true);
}

std::vector<ObjectRow> Store::load() {
  std::vector<ObjectRow> rows;
  Stmt s = pool_.index().prepare(kSelectObjects);
  while (s.step()) rows.push_back(row_from(s));
  return rows;
}

ObjectRow Store::insert_row(const std::string& name, const FileKey& key, ino_t ino) {
  if (!insert_)
    insert_.emplace(pool_.index().prepare(
        "INSERT INTO objects(name, content_hash, size, mode, uid, gid, xattr_hash, mtime_ns, ino) VALUES(?,?,?,?,?,?,?,?,?)"));
  Stmt& s = *insert_;
  s.bind(1, name).bind(2, key.content.hex()).bind(3, key.size).bind(4, int64_t{key.mode});
  s.bind(5, int64_t{key.uid}).bind(6, int64_t{key.gid}).bind(7, key.xattrs.hex()).bind(8, key.mtime_ns);
  s.bind(9, static_cast<int64_t>(ino));
  s.run();
  return ObjectRow{sqlite3_last_insert_rowid(pool_.index().raw()), name, key, ino};
}

ObjectRow Store::adopt(int fd, const FileKey& key, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_errno("stat", path);
  // A link via /proc/self/fd works for any open file, without a path into the guest tree.
  // Straight to the final name: linkat never replaces, so EEXIST finds name collisions
  // (same key name, different bytes: forced hashes). A crash before the index row is
  // committed leaves an orphan that recovery reconciles.
  std::string self = "/proc/self/fd/" + std::to_string(fd);
  std::string base = object_name(key);
  for (int n = 0;; ++n) {
    std::string name = n == 0 ? base : fmt::format("{}-{}", base, n);
    if (::linkat(AT_FDCWD, self.c_str(), pool_.objects_fd(), name.c_str(), AT_SYMLINK_FOLLOW) == 0) {
      try {
        return insert_row(name, key, st.st_ino);
      } catch (...) {
        ::unlinkat(pool_.objects_fd(), name.c_str(), 0);
        throw;
      }
    }
    if (errno != EEXIST) throw_errno("link into the store", path);
  }
}

void Store::link_over(const ObjectRow& obj, int dirfd, const std::string& name, const std::string& path) {
  std::string tmp;
  for (;;) {
    tmp = temp_name();
    if (::linkat(pool_.objects_fd(), obj.name.c_str(), dirfd, tmp.c_str(), 0) == 0) break;
    if (errno != EEXIST) throw_errno("link store object " + obj.name + " for", path);
  }
  if (::renameat(dirfd, tmp.c_str(), dirfd, name.c_str()) != 0) {
    int err = errno;
    ::unlinkat(dirfd, tmp.c_str(), 0);
    errno = err;
    throw_errno("replace", path);
  }
}

GcReport Store::gc(bool dry_run, const os::Progress& progress) {
  GcReport report;
  if (progress) progress("gc: reconciling the store with the index");
  if (!dry_run) reconcile_orphans();
  std::vector<ObjectRow> doomed;
  std::vector<int64_t> stale;
  std::vector<ObjectRow> rows = load();
  size_t checked = 0;
  for (ObjectRow& obj : rows) {
    if ((checked++ & 255) == 0 && progress) progress(fmt::format("gc: checking objects: {}/{}", checked, rows.size()));
    struct stat st {};
    if (::fstatat(pool_.objects_fd(), obj.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT) throw_errno("stat store object", obj.name);
      stale.push_back(obj.id);  // already gone: a stale row
      continue;
    }
    if (st.st_nlink > 1) {
      ++report.kept;
      continue;
    }
    ++report.removed;
    report.bytes_freed += static_cast<uint64_t>(st.st_blocks) * 512;
    doomed.push_back(std::move(obj));
  }
  if (dry_run) return report;  // nothing on disk changes: no reconcile, no unlink, no index write
  // Rows first, files after: a crash in between leaves unrecorded store entries of one link,
  // which recovery drops (the "running:gc" mark makes it look), never rows without files.
  {
    Transaction tx(pool_.index());
    Stmt del = pool_.index().prepare("DELETE FROM objects WHERE id=?");
    for (int64_t id : stale) del.bind(1, id).run();
    for (const ObjectRow& obj : doomed) del.bind(1, obj.id).run();
    pool_.index().prepare("INSERT OR REPLACE INTO meta(key, value) VALUES(?, '')").bind(1, running_key("gc")).run();
    tx.commit();
  }
  size_t removed = 0;
  for (const ObjectRow& obj : doomed) {
    if ((removed++ & 255) == 0 && progress) progress(fmt::format("gc: removing unused objects: {}/{}", removed, doomed.size()));
    os::crash_point("gc.unlink");
    if (::unlinkat(pool_.objects_fd(), obj.name.c_str(), 0) != 0 && errno != ENOENT) throw_errno("remove store object", obj.name);
  }
  clear_running(pool_.index(), "gc");
  pool_.index().compact();
  return report;
}

std::vector<VerifyProblem> Store::verify(unsigned threads, const os::Progress& progress) {
  std::vector<ObjectRow> objects = load();
  std::atomic<size_t> checked{0};
  std::vector<VerifyProblem> problems;
  std::mutex mu;
  auto report = [&](const std::string& name, std::string what) {
    std::lock_guard lock(mu);
    problems.push_back({name, std::move(what)});
  };
  parallel_for(objects.size(), threads, [&](size_t i) {
    const ObjectRow& obj = objects[i];
    int fd = ::openat(pool_.objects_fd(), obj.name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
    if (fd < 0) return report(obj.name, fmt::format("cannot open: {}", std::strerror(errno)));
    unique_fd file(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return report(obj.name, "not a regular file");
    FileKey key = read_key(fd, st, obj.name);
    if (key.content != obj.key.content || key.size != obj.key.size) report(obj.name, "content changed (hash mismatch)");
    if (key.mode != obj.key.mode || key.uid != obj.key.uid || key.gid != obj.key.gid)
      report(obj.name, fmt::format("metadata changed (mode {:o} uid {} gid {}, expected {:o} {} {})", key.mode, key.uid, key.gid,
                                   obj.key.mode, obj.key.uid, obj.key.gid));
    if (key.xattrs != obj.key.xattrs) report(obj.name, "xattrs changed");
    if (key.mtime_ns != obj.key.mtime_ns) report(obj.name, "mtime changed");
    if (st.st_ino != obj.ino) report(obj.name, "inode number differs from the index");
    if ((++checked & 63) == 0 && progress) progress(fmt::format("verifying: {}/{} objects", checked.load(), objects.size()));
  });
  std::sort(problems.begin(), problems.end(), [](auto& a, auto& b) { return a.object < b.object; });
  return problems;
}

void Store::for_each_unindexed(const std::function<void(const os::WalkEntry&)>& visit) {
  std::unordered_set<std::string> known;
  for (const ObjectRow& obj : load()) known.insert(obj.name);
  Transaction tx(pool_.index());
  os::walk_tree(pool_.objects_fd(), [&](const os::WalkEntry& e) {
    if (S_ISDIR(e.st.st_mode)) return true;
    if (!known.count(e.rel)) visit(e);
    return false;
  });
  tx.commit();
}

void Store::record_entry(const os::WalkEntry& e) {
  int fd = ::openat(e.dirfd, e.name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) throw_errno("open store object", e.rel);
  unique_fd file(fd);
  insert_row(e.rel, read_key(fd, e.st, e.rel), e.st.st_ino);
}

size_t Store::reconcile_orphans() {
  size_t found = 0;
  for_each_unindexed([&](const os::WalkEntry& e) {
    ++found;
    if (e.st.st_nlink > 2 && S_ISREG(e.st.st_mode)) record_entry(e);
    else if (::unlinkat(e.dirfd, e.name, 0) != 0) throw_errno("remove orphan store entry", e.rel);
  });
  return found;
}

size_t Store::record_all(std::vector<std::string>& skipped) {
  size_t found = 0;
  for_each_unindexed([&](const os::WalkEntry& e) {
    if (!S_ISREG(e.st.st_mode)) return skipped.push_back(e.rel);
    record_entry(e);
    ++found;
  });
  return found;
}

}  // namespace vunify::unify
