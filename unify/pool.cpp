#include "unify/pool.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <ctime>

#include "os/error.hpp"
#include "os/view_probe.hpp"
#include "os/walk.hpp"
#include "unify/link_groups.hpp"
#include "unify/object_set.hpp"
#include "unify/recovery.hpp"

namespace vunify::unify {

using os::throw_errno;
using os::unique_fd;
using os::UserError;

std::string name_stamp() {
  char buf[32];
  time_t t = ::time(nullptr);
  struct tm tm {};
  ::gmtime_r(&t, &tm);
  ::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

namespace {

constexpr const char* kDirs[] = {"store", "store/objects", "store/tmp", "backing", "guests", "templates", "links", "etc", "log"};

void mkdir_p(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) == 0) return;
  if (errno == EEXIST) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return;
    throw UserError(fmt::format("{} exists and is not a directory", path));
  }
  if (errno == ENOENT) {
    auto slash = path.rfind('/');
    if (slash != std::string::npos && slash > 0) {
      mkdir_p(path.substr(0, slash), 0755);
      if (::mkdir(path.c_str(), mode) == 0 || errno == EEXIST) return;
    }
  }
  throw_errno("create directory", path);
}

bool dir_is_empty(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (!d) throw_errno("open directory", path);
  bool empty = true;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") {
      empty = false;
      break;
    }
  }
  ::closedir(d);
  return empty;
}

void check_one_filesystem(const std::string& root, dev_t dev) {
  for (const char* sub : kDirs) {
    std::string p = root + "/" + sub;
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) throw_errno("stat", p);
    if (!S_ISDIR(st.st_mode)) throw UserError(fmt::format("{} is not a directory", p));
    if (st.st_dev != dev)
      throw UserError(fmt::format("{} is on a different filesystem than the pool {}: every part of a pool must be on one "
                                  "filesystem (hard links)",
                                  p, root));
  }
}

std::string normalize_root(const std::string& root) {
  if (root.empty()) throw UserError("empty pool path");
  std::string r = root;
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  if (r[0] != '/') {
    char cwd[4096];
    if (!::getcwd(cwd, sizeof cwd)) throw_errno("getcwd", ".");
    r = os::join_path(cwd, r);
  }
  return r;
}

// A pool's layout without its index: the index was lost, the trees are there.
bool looks_like_pool(const std::string& root) {
  struct stat st {};
  return ::stat((root + "/store/objects").c_str(), &st) == 0 && S_ISDIR(st.st_mode) &&
         ::stat((root + "/backing").c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string index_missing_message(const std::string& root) {
  return fmt::format("the index {}/vunify.db is missing (the pool's trees are there): run 'vunify --pool {} fsck --repair' "
                     "to rebuild it from the trees",
                     root, root);
}

std::string index_damaged_message(const std::string& root, const std::string& why) {
  return fmt::format("the index {}/vunify.db is unreadable ({}): run 'vunify --pool {} fsck --repair' to rebuild it from "
                     "the trees (the damaged file is kept aside)",
                     root, why, root);
}

// Moves vunify.db (and its -wal and -shm) to vunify.db.damaged-TIME*; returns the new name of
// the database ("" if only leftovers, or nothing, were there).
std::string set_aside_index(const std::string& root) {
  std::string stamp = name_stamp();
  std::string aside;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::string from = root + "/vunify.db" + suffix;
    std::string to = fmt::format("{}/vunify.db.damaged-{}{}", root, stamp, suffix);
    if (::rename(from.c_str(), to.c_str()) == 0) {
      if (*suffix == 0) aside = to;
    } else if (errno != ENOENT) {
      throw_errno("set aside", from);
    }
  }
  return aside;
}

}  // namespace

int64_t to_ns(const struct timespec& ts) { return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec; }
struct timespec from_ns(int64_t ns) {
  struct timespec ts {};
  ts.tv_sec = static_cast<time_t>(ns / 1000000000LL);
  ts.tv_nsec = static_cast<long>(ns % 1000000000LL);
  if (ts.tv_nsec < 0) {
    ts.tv_nsec += 1000000000L;
    ts.tv_sec -= 1;
  }
  return ts;
}
int64_t now_ns() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return to_ns(ts);
}

std::string Pool::default_root() {
  const char* env = std::getenv("VUNIFY_POOL");
  return env && *env ? env : "/var/lib/vunify";
}

void Pool::check_name(std::string_view name, std::string_view what) {
  auto ok_first = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  bool ok = !name.empty() && name.size() <= 64 && ok_first(name[0]);
  for (char c : name) ok = ok && (ok_first(c) || c == '.' || c == '_' || c == '-');
  if (!ok)
    throw UserError(fmt::format("invalid {} name '{}': use 1-64 characters [A-Za-z0-9._-], starting with a letter or digit",
                                what, name));
}

void Pool::init(const std::string& root_arg) {
  std::string root = normalize_root(root_arg);
  struct stat st {};
  bool exists = ::lstat(root.c_str(), &st) == 0;
  if (exists && !S_ISDIR(st.st_mode)) throw UserError(fmt::format("{} exists and is not a directory", root));
  bool has_db = ::access((root + "/vunify.db").c_str(), F_OK) == 0;
  if (exists && !has_db && looks_like_pool(root)) throw UserError(index_missing_message(root));
  if (exists && !has_db && !dir_is_empty(root))
    throw UserError(fmt::format("{} is not empty and is not a vunify pool (no vunify.db); refusing to use it", root));
  mkdir_p(root, 0755);
  if (::lstat(root.c_str(), &st) != 0) throw_errno("stat", root);
  // Refuse before creating anything if a part already exists on another filesystem.
  for (const char* sub : kDirs) {
    struct stat sst {};
    std::string p = root + "/" + sub;
    if (::lstat(p.c_str(), &sst) == 0 && sst.st_dev != st.st_dev)
      throw UserError(fmt::format("{} is on a different filesystem than the pool {}: every part of a pool must be on one "
                                  "filesystem (hard links)",
                                  p, root));
  }
  for (const char* sub : kDirs) {
    std::string_view s = sub;
    bool is_private = s.starts_with("store") || s == "backing" || s == "templates" || s == "links";
    mkdir_p(root + "/" + sub, is_private ? 0700 : 0755);
  }
  for (int i = 0; i < 256; ++i) mkdir_p(fmt::format("{}/store/objects/{:02x}", root, i), 0700);
  check_one_filesystem(root, st.st_dev);
  try {
    Index index(root + "/vunify.db", true);
  } catch (const IndexDamaged& e) {
    throw UserError(index_damaged_message(root, e.what()));
  }
}

Pool::Pool(const std::string& root_arg, Access access) : root_(normalize_root(root_arg)) {
  struct stat st {};
  if (::stat(root_.c_str(), &st) != 0) {
    if (errno == ENOENT) throw UserError(fmt::format("no pool at {}: run 'vunify --pool {} init' first", root_, root_));
    throw_errno("stat", root_);
  }
  bool has_db = ::access(path("vunify.db").c_str(), F_OK) == 0;
  if (!has_db && !looks_like_pool(root_))
    throw UserError(fmt::format("{} is not a vunify pool (no vunify.db): run 'vunify --pool {} init'", root_, root_));
  if (!has_db && access != Access::Repair) throw UserError(index_missing_message(root_));
  dev_ = st.st_dev;
  int lfd = ::open(path("vunify.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lfd < 0) throw_errno("open", path("vunify.lock"));
  lock_fd_.reset(lfd);
  int mode = access == Access::Read ? LOCK_SH : LOCK_EX;
  if (::flock(lfd, mode | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) throw_errno("lock", path("vunify.lock"));
    fmt::print(stderr, "vunify: waiting for another vunify command on pool {}\n", root_);
    if (::flock(lfd, mode) != 0) throw_errno("lock", path("vunify.lock"));
  }
  check_one_filesystem(root_, dev_);
  root_fd_ = os::open_dir(root_);
  objects_fd_ = os::open_dir(path("store/objects"));
  store_tmp_fd_ = os::open_dir(path("store/tmp"));
  backing_fd_ = os::open_dir(path("backing"));
  open_index(access);
  if (access != Access::Read) recovered_ = detach_stale_mounts() + recover();
}

void Pool::open_index(Access access) {
  std::string db = path("vunify.db");
  if (::access(db.c_str(), F_OK) == 0) {
    try {
      index_ = std::make_unique<Index>(db, false, access == Access::Read);
      return;
    } catch (const IndexDamaged& e) {
      if (access != Access::Repair) throw UserError(index_damaged_message(root_, e.what()));
      index_replaced_ = fmt::format("index {} is unreadable ({})", db, e.what());
    }
  } else {
    if (access != Access::Repair) throw UserError(index_missing_message(root_));  // removed while we waited
    index_replaced_ = fmt::format("index {} is missing", db);
  }
  index_set_aside_ = set_aside_index(root_);
  index_ = std::make_unique<Index>(db, true);
}

Pool::~Pool() = default;

std::string Pool::path(std::string_view sub) const { return os::join_path(root_, std::string(sub)); }

std::vector<std::string> Pool::guest_names() {
  std::vector<std::string> names;
  Stmt s = index_->prepare("SELECT name FROM guests ORDER BY name");
  while (s.step()) names.push_back(s.col_text(0));
  return names;
}

bool Pool::has_guest(std::string_view name) {
  Stmt s = index_->prepare("SELECT 1 FROM guests WHERE name=?");
  s.bind(1, name);
  return s.step();
}

unique_fd Pool::open_guest_root(const std::string& name) {
  check_name(name, "guest");
  if (!has_guest(name)) throw UserError(fmt::format("no guest named '{}' in pool {}", name, root_));
  return os::open_beneath(backing_fd(), name, O_RDONLY | O_DIRECTORY);
}

os::ViewStatus Pool::view(const std::string& name) const {
  return os::view_status(path("guests/" + name), path("log/" + name + ".pid"));
}

bool Pool::guest_mounted(const std::string& name) const {
  os::ViewState s = view(name).state;
  return s == os::ViewState::Live || s == os::ViewState::Stopped;
}

bool Pool::mount_stale(const std::string& name) const { return view(name).state == os::ViewState::Dead; }

void Pool::refuse_if_mounted(const std::string& name, std::string_view why) const {
  os::ViewStatus v = view(name);
  if (v.state == os::ViewState::Live)
    throw UserError(fmt::format("guest '{}' is mounted; unmount it first ('vunify umount {}'){}", name, name, why));
  if (v.state == os::ViewState::Stopped)
    throw UserError(fmt::format("guest '{}' is mounted and {}; or unmount it first ('vunify umount {}', which does not "
                                "wait for the daemon){}",
                                name, os::stopped_daemon_note(v), name, why));
}

size_t Pool::detach_stale_mounts() {
  size_t n = 0;
  for (const std::string& name : guest_names()) {
    if (!mount_stale(name)) continue;
    std::string mnt = path("guests/" + name);
    if (::umount2(mnt.c_str(), MNT_DETACH) != 0 && errno != EINVAL) throw_errno("remove the stale mount", mnt);
    ++n;
  }
  return n;
}

size_t Pool::recover() { return recover_pool(*this); }

size_t Pool::restore_pending_dirs() {
  struct Pending {
    std::string guest, path;
    int64_t atime_ns, mtime_ns;
  };
  std::vector<Pending> pending;
  {
    Stmt s = index_->prepare("SELECT guest, path, atime_ns, mtime_ns FROM pending_dirs");
    while (s.step()) pending.push_back({s.col_text(0), s.col_text(1), s.col_int(2), s.col_int(3)});
  }
  for (const Pending& p : pending) {
    int gfd = os::try_open_beneath(backing_fd(), p.guest, O_RDONLY | O_DIRECTORY);
    if (gfd < 0) continue;  // guest removed since
    unique_fd guest(gfd);
    int dfd = os::try_open_beneath(guest.get(), p.path, O_RDONLY | O_DIRECTORY);
    if (dfd < 0) continue;
    unique_fd dir(dfd);
    os::walk_tree(dir.get(), [&](const os::WalkEntry& e) {
      if (std::string_view(e.name).starts_with(kTempPrefix)) ::unlinkat(e.dirfd, e.name, 0);
      return false;
    });
    struct timespec times[2] = {from_ns(p.atime_ns), from_ns(p.mtime_ns)};
    if (::futimens(dir.get(), times) != 0) throw_errno("restore times of", os::join_path(p.guest, p.path));
  }
  if (!pending.empty()) index_->exec("DELETE FROM pending_dirs");
  return pending.size();
}

void Pool::resolve_all_links() {
  ObjectSet objects = ObjectSet::load(*this);
  unique_fd dir = open_links_dir(*this);
  os::walk_tree(dir.get(), [&](const os::WalkEntry& e) {
    // A mounted guest's record belongs to its daemon (which may be breaking a group right now).
    if (S_ISREG(e.st.st_mode) && e.name[0] != '.' && has_guest(e.name) && !guest_mounted(e.name))
      resolve_links(*this, e.name, objects);
    return false;
  });
}

}  // namespace vunify::unify
