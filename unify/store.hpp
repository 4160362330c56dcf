// Store objects: immutable inodes under store/objects, one per distinct FileKey.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "os/progress.hpp"
#include "os/walk.hpp"
#include "unify/file_key.hpp"
#include "unify/pool.hpp"

namespace vunify::unify {

struct ObjectRow {
  int64_t id = 0;
  std::string name;  // "ab/cdef..." under store/objects
  FileKey key;       // with the object's real mtime
  ino_t ino = 0;
};

struct GcReport {
  uint64_t removed = 0, bytes_freed = 0, kept = 0;
};

struct VerifyProblem {
  std::string object;
  std::string problem;
};

class Store {
 public:
  explicit Store(Pool& pool) : pool_(pool) {}

  std::vector<ObjectRow> load();

  // Makes the open regular file `fd` (entry `name` in `dirfd`) a store object: a hard link
  // in the store, recorded in the index (its inode is its identity). `key` carries the real mtime.
  ObjectRow adopt(int fd, const FileKey& key, const std::string& path_for_errors);

  // Atomically replaces `name` in `dirfd` by a hard link to `obj` (temp link + rename).
  // On failure the original entry is untouched.
  void link_over(const ObjectRow& obj, int dirfd, const std::string& name, const std::string& path_for_errors);

  // Removes objects no guest or template uses (nlink 1). Crash-safe: index rows first (with a
  // running mark), then the files. A dry run changes nothing (reports from the index as it is).
  GcReport gc(bool dry_run, const os::Progress& progress = {});

  // Re-hashes every object and checks its metadata against the index.
  std::vector<VerifyProblem> verify(unsigned threads, const os::Progress& progress = {});

  // Objects on disk but not in the index (a run interrupted before its index commit): rehash
  // and record them when two or more guest paths use them, otherwise drop the store link, which leaves the one guest file as it was. Returns how many.
  size_t reconcile_orphans();

  // Records every regular store entry missing from the index as an object, whatever its link
  // count (rebuilding a lost index: an object only a template uses has two links). Returns
  // how many; `skipped` receives entries that are not regular files (left in place).
  size_t record_all(std::vector<std::string>& skipped);

 private:
  ObjectRow insert_row(const std::string& name, const FileKey& key, ino_t ino);
  // Calls `visit` for every store entry the index does not list, in one transaction.
  void for_each_unindexed(const std::function<void(const os::WalkEntry&)>& visit);
  // Records the store entry `e` (a regular file) in the index under its current key.
  void record_entry(const os::WalkEntry& e);
  Pool& pool_;
  std::optional<Stmt> insert_;  // prepared once: adopt runs once per new object
};

// Reads the FileKey (with real mtime) of an open regular file by hashing it.
FileKey read_key(int fd, const struct stat& st, const std::string& path_for_errors);

}  // namespace vunify::unify
