#include "unify/index.hpp"

#include <fmt/format.h>

#include <sys/stat.h>

#include <cstring>
#include <stdexcept>

#include "os/error.hpp"

namespace vunify::unify {

namespace {

bool damaged(sqlite3* db) {
  int rc = sqlite3_errcode(db);
  return rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT;
}

// SQLite's message plus the system errno behind it ("disk I/O error" alone says little).
std::string describe(sqlite3* db, std::string msg) {
  if (sqlite3_errcode(db) == SQLITE_FULL) msg += " (the pool's filesystem is full)";
  if (damaged(db)) msg += " (the index is damaged: 'vunify fsck --repair' rebuilds it from the trees)";
  if (int sys = sqlite3_system_errno(db)) msg += fmt::format(" ({})", std::strerror(sys));
  return msg;
}

[[noreturn]] void fail(sqlite3* db, std::string_view what) {
  throw std::runtime_error(fmt::format("index: {}: {}", what, describe(db, sqlite3_errmsg(db))));
}

// Each entry migrates the schema from version i to i+1.
constexpr const char* kMigrations[] = {
    R"sql(
    CREATE TABLE guests(
      name TEXT PRIMARY KEY,
      created INTEGER NOT NULL,
      template TEXT);
    CREATE TABLE objects(
      id INTEGER PRIMARY KEY,
      name TEXT UNIQUE NOT NULL,      -- path under store/objects: "ab/cdef..."
      content_hash TEXT NOT NULL,
      size INTEGER NOT NULL,
      mode INTEGER NOT NULL,
      uid INTEGER NOT NULL,
      gid INTEGER NOT NULL,
      xattr_hash TEXT NOT NULL,
      mtime_ns INTEGER NOT NULL,
      ino INTEGER NOT NULL);
    CREATE INDEX objects_by_size ON objects(size);
    CREATE TABLE files(               -- content-hash cache of unshared guest files
      guest TEXT NOT NULL,
      path TEXT NOT NULL,
      ino INTEGER NOT NULL,
      size INTEGER NOT NULL,
      mtime_ns INTEGER NOT NULL,
      ctime_ns INTEGER NOT NULL,
      content_hash TEXT NOT NULL,
      PRIMARY KEY(guest, path)) WITHOUT ROWID;
    CREATE TABLE pending_dirs(        -- directories a unify run is changing: times to restore
      guest TEXT NOT NULL,
      path TEXT NOT NULL,
      atime_ns INTEGER NOT NULL,
      mtime_ns INTEGER NOT NULL,
      PRIMARY KEY(guest, path)) WITHOUT ROWID;
    CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE templates(
      name TEXT PRIMARY KEY,
      created INTEGER NOT NULL,
      source TEXT NOT NULL);
    )sql",
};

}  // namespace

Stmt::Stmt(sqlite3* db, std::string_view sql) : db_(db) {
  if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr) != SQLITE_OK) fail(db, "prepare");
}
Stmt::Stmt(Stmt&& o) noexcept : db_(o.db_), stmt_(o.stmt_) { o.stmt_ = nullptr; }
Stmt::~Stmt() { sqlite3_finalize(stmt_); }

Stmt& Stmt::bind(int i, int64_t v) {
  if (sqlite3_bind_int64(stmt_, i, v) != SQLITE_OK) fail(db_, "bind");
  return *this;
}
Stmt& Stmt::bind(int i, std::string_view v) {
  if (sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT) != SQLITE_OK) fail(db_, "bind");
  return *this;
}
Stmt& Stmt::bind_null(int i) {
  if (sqlite3_bind_null(stmt_, i) != SQLITE_OK) fail(db_, "bind");
  return *this;
}
bool Stmt::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  fail(db_, "step");
}
void Stmt::run() {
  while (step()) {
  }
  reset();
}
void Stmt::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}
int64_t Stmt::col_int(int i) const { return sqlite3_column_int64(stmt_, i); }
std::string Stmt::col_text(int i) const {
  auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i));
  return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, i))) : std::string();
}
bool Stmt::col_null(int i) const { return sqlite3_column_type(stmt_, i) == SQLITE_NULL; }

namespace {

bool wal_has_frames(const std::string& db_path) {
  struct stat st {};
  return ::stat((db_path + "-wal").c_str(), &st) == 0 && st.st_size > 0;
}

// A file: URI for sqlite3_open_v2 with SQLITE_OPEN_URI.
std::string uri_for(const std::string& path, const char* query) {
  std::string out = "file:";
  for (char c : path) {
    if (c == '%' || c == '?' || c == '#') out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    else out += c;
  }
  return out + "?" + query;
}

}  // namespace

// No connection ever maps a -shm file: the wal-index of a connection in EXCLUSIVE locking mode
// lives in its heap. SQLite extends a -shm by writing one byte per 4 KiB page, which on a
// filesystem with 1 KiB blocks leaves holes; the first store into one on a full disk was a
// SIGBUS (issue 15, item 11). Two vunify processes never use the index at once except readers
// (the pool lock: exclusive for writers, shared for readers), so:
//  - a writer holds SQLite's lock for its whole run (EXCLUSIVE mode; WAL in heap);
//  - a reader opens the file immutable (no lock, no -shm, no write of any kind: it works on a
//    full disk and changes nothing), unless a killed writer left frames in the WAL: then it
//    reads them as a writer would but never checkpoints (readers after a crash run one at a
//    time until the next pool-changing command folds the WAL in).
Index::Index(const std::string& path, bool create, bool read_only) : path_(path) {
  bool immutable = read_only && !wal_has_frames(path);
  int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI | (immutable ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
              (create ? SQLITE_OPEN_CREATE : 0);
  std::string uri = uri_for(path, immutable ? "immutable=1" : "cache=private");
  if (sqlite3_open_v2(uri.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw std::runtime_error(fmt::format("cannot open index {}: {}", path, msg));
  }
  sqlite3_busy_timeout(db_, 30000);
  try {
    if (!immutable) {
      exec("PRAGMA locking_mode=EXCLUSIVE");  // before the first access: the wal-index goes to the heap
      if (read_only) {
        sqlite3_db_config(db_, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
        exec("PRAGMA query_only=1");
      } else {
        exec("PRAGMA journal_mode=WAL");
        exec("PRAGMA synchronous=NORMAL");
      }
    }
    exec("PRAGMA foreign_keys=ON");
    if (!create && schema_version() == 0) throw IndexDamaged("no schema: an empty file");
    if (read_only) {
      if (schema_version() != kSchemaVersion)
        throw std::runtime_error(fmt::format("index {} has schema version {}, this vunify uses {}: run a command that "
                                             "changes the pool (e.g. 'vunify gc') to migrate it",
                                             path, schema_version(), kSchemaVersion));
    } else {
      migrate();
    }
  } catch (const IndexDamaged&) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  } catch (const std::exception&) {
    bool bad = damaged(db_);
    std::string msg = sqlite3_errmsg(db_);
    sqlite3_close(db_);
    db_ = nullptr;
    if (bad) throw IndexDamaged(msg);
    throw;
  }
}

Index::~Index() { sqlite3_close(db_); }

void Index::exec(std::string_view sql) {
  char* err = nullptr;
  std::string s(sql);
  if (sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = describe(db_, err ? err : "unknown error");
    sqlite3_free(err);
    throw std::runtime_error(fmt::format("index {}: {}", path_, msg));
  }
}

void Index::compact() {
  int64_t total = 0, unused = 0;
  {  // statements in progress would make VACUUM fail
    Stmt pages(db_, "PRAGMA page_count"), free_pages(db_, "PRAGMA freelist_count");
    if (!pages.step() || !free_pages.step()) return;
    total = pages.col_int(0);
    unused = free_pages.col_int(0);
  }
  if (unused >= 16 && unused * 10 > total) exec("VACUUM");
}

int Index::schema_version() {
  Stmt s(db_, "PRAGMA user_version");
  s.step();
  return static_cast<int>(s.col_int(0));
}

void Index::migrate() {
  int version = schema_version();
  if (version > kSchemaVersion)
    throw std::runtime_error(fmt::format("index {} has schema version {}, newer than this vunify ({}); upgrade vunify",
                                         path_, version, kSchemaVersion));
  for (int v = version; v < kSchemaVersion; ++v) {
    Transaction tx(*this);
    exec(kMigrations[v]);
    exec(fmt::format("PRAGMA user_version={}", v + 1));
    tx.commit();
  }
}

Transaction::Transaction(Index& index) : index_(index) { index_.exec("BEGIN IMMEDIATE"); }
Transaction::~Transaction() {
  if (!done_) {
    try {
      index_.exec("ROLLBACK");
    } catch (...) {
    }
  }
}
void Transaction::commit() {
  index_.exec("COMMIT");
  done_ = true;
}

}  // namespace vunify::unify
