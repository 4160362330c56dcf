// The SQLite index (WAL mode): guests, objects, file-hash cache, pending directory times.
// It is a cache of the trees: `vunify fsck --repair` rebuilds it from them.
#pragma once
#include <sqlite3.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace vunify::unify {

class Stmt {
 public:
  Stmt(sqlite3* db, std::string_view sql);
  Stmt(Stmt&& o) noexcept;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt();

  Stmt& bind(int i, int64_t v);
  Stmt& bind(int i, std::string_view v);
  Stmt& bind_null(int i);
  bool step();  // true while a row is available
  void run();   // step to completion, then reset
  void reset();
  int64_t col_int(int i) const;
  std::string col_text(int i) const;
  bool col_null(int i) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// The index file is not a usable database (not SQLite, corrupt, or without a schema): the
// trees are intact, and `vunify fsck --repair` rebuilds the index from them. what(): SQLite's
// reason, without the path.
class IndexDamaged : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Index {
 public:
  static constexpr int kSchemaVersion = 1;

  // Opens (creating if `create`) the database at `path`; applies migrations. `read_only`: for
  // commands holding the pool lock shared, which write nothing (see index.cpp on locking).
  // Throws IndexDamaged if the file is not a database, is corrupt, or (not `create`) has no schema.
  Index(const std::string& path, bool create, bool read_only = false);
  Index(const Index&) = delete;
  Index& operator=(const Index&) = delete;
  ~Index();

  void exec(std::string_view sql);
  Stmt prepare(std::string_view sql) { return Stmt(db_, sql); }
  int schema_version();
  // Gives pages freed by deleted rows back to the filesystem (VACUUM) once they are more than
  // a tenth of the file: each unify run frees the pages of its pending-directory records
  // (~20% of the index after a first run on 10 Debian guests).
  void compact();
  sqlite3* raw() { return db_; }

 private:
  void migrate();
  sqlite3* db_ = nullptr;
  std::string path_;
};

// BEGIN IMMEDIATE ... COMMIT; rolls back if destroyed before commit().
class Transaction {
 public:
  explicit Transaction(Index& index);
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();
  void commit();

 private:
  Index& index_;
  bool done_ = false;
};

}  // namespace vunify::unify
