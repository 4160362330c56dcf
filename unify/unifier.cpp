#include "unify/unifier.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "os/copy.hpp"
#include "os/error.hpp"
#include "os/walk.hpp"
#include "unify/file_key.hpp"
#include "unify/link_groups.hpp"
#include "unify/object_set.hpp"
#include "unify/parallel.hpp"
#include "unify/store.hpp"

namespace vunify::unify {

using os::unique_fd;

bool excluded(const std::vector<std::string>& globs, const std::string& rel) {
  auto slash = rel.rfind('/');
  const char* base = rel.c_str() + (slash == std::string::npos ? 0 : slash + 1);
  for (const std::string& g : globs) {
    if (g.find('/') != std::string::npos) {
      const char* pat = g.c_str() + (g[0] == '/' ? 1 : 0);
      if (::fnmatch(pat, rel.c_str(), FNM_PATHNAME | FNM_LEADING_DIR) == 0) return true;
    } else if (::fnmatch(g.c_str(), base, 0) == 0) {
      return true;
    }
  }
  return false;
}

namespace {

struct Candidate {
  uint32_t guest = 0;
  std::string rel;
  struct stat st {};
  std::optional<Hash128> content;  // real content hash, once known
  FileKey key;                     // grouping key (hooked hash, mtime per options)
  std::vector<std::string> also;   // the other paths of its guest-internal hard-link group
  bool keyed = false;
  bool linked = false;  // now a link to a store object (or adopted as one)
};

// What one guest's walk found.
struct GuestScan {
  std::vector<Candidate> cands;
  uint64_t scanned = 0, shared = 0, hardlinks = 0, small = 0, excluded = 0;
};

struct CacheRow {
  ino_t ino;
  int64_t size, mtime_ns, ctime_ns;
  Hash128 content;
};

// One class of byte-identical files: linked to `object`, or to candidate `rep` once adopted.
struct Plan {
  std::optional<size_t> object;  // index into objects
  size_t rep = 0;                // candidate to adopt when there is no object
  std::vector<size_t> members;   // candidates to replace by links
};

// Candidates (and store objects) with one pre-key: the unit of reading and comparing.
struct Bucket {
  std::vector<size_t> cands, objs;
};

struct ClassifyCounts {
  std::atomic<uint64_t> done{0}, files_read{0}, bytes_read{0}, cached{0}, compared{0}, collisions{0}, changed{0};
};

// The same inode with the same data; its link count and ctime may differ (the paths of a
// hard-link group are replaced one by one).
bool same_inode_data(const struct stat& a, const struct stat& b) {
  return a.st_ino == b.st_ino && a.st_dev == b.st_dev && a.st_size == b.st_size && to_ns(a.st_mtim) == to_ns(b.st_mtim);
}

bool same_state(const struct stat& a, const struct stat& b) {
  return a.st_ino == b.st_ino && a.st_dev == b.st_dev && a.st_size == b.st_size && to_ns(a.st_mtim) == to_ns(b.st_mtim) &&
         to_ns(a.st_ctim) == to_ns(b.st_ctim) && a.st_nlink == b.st_nlink;
}

std::string dir_of(const std::string& rel) {
  auto slash = rel.rfind('/');
  return slash == std::string::npos ? std::string() : rel.substr(0, slash);
}
std::string base_of(const std::string& rel) {
  auto slash = rel.rfind('/');
  return slash == std::string::npos ? rel : rel.substr(slash + 1);
}

// A new object's data must be on disk before other files are replaced by links to it.
// Usually it already is; when it is not (a tree copied just now), writeback starts at once for
// each file and is waited for a window later, so the disk works on many files at a time. One
// syncfs at the end then commits the journal (block allocations) and flushes the device cache
// once: an fdatasync per object would flush the device cache once per object (0.35 ms each on
// a virtio disk, 2.1 s for the 6,000 new objects of 10 guests) even when no data is dirty.
class DurableWindow {
 public:
  explicit DurableWindow(int fs_fd) : fs_fd_(fs_fd) {}
  void add(unique_fd fd, std::string path) {
    ::sync_file_range(fd.get(), 0, 0, SYNC_FILE_RANGE_WRITE);
    window_.push_back({std::move(fd), std::move(path)});
    if (window_.size() > kWindow) wait_oldest();
  }
  void drain() {
    while (!window_.empty()) wait_oldest();
    if (any_ && ::syncfs(fs_fd_) != 0) os::throw_errno("syncfs", "the pool");
  }

 private:
  static constexpr size_t kWindow = 256;
  void wait_oldest() {
    auto& [fd, path] = window_.front();
    constexpr unsigned kAll = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER;
    if (::sync_file_range(fd.get(), 0, 0, kAll) != 0) os::throw_errno("write back", path);
    window_.pop_front();
    any_ = true;
  }
  int fs_fd_;
  bool any_ = false;
  std::deque<std::pair<unique_fd, std::string>> window_;
};

class Unifier {
 public:
  Unifier(Pool& pool, const UnifyOptions& opts) : pool_(pool), opts_(opts), store_(pool) {}
  UnifyReport run();

 private:
  void open_guests();
  void load_cache();
  void scan();
  std::vector<Plan> classify();
  void classify_bucket(const Bucket& bucket, std::vector<Plan>& out, ClassifyCounts& counts);
  void apply(std::vector<Plan>& plans);
  void record_pending_dirs(const std::vector<Plan>& plans);
  void record_link_groups(const std::vector<Plan>& plans);
  void resolve_link_groups();
  ObjectSet object_set() const;  // the store's objects as loaded (and adopted) by this run
  void scan_guest(uint32_t g, const ObjectSet& objects, GuestScan& out, std::atomic<uint64_t>& seen);
  void add_candidate(uint32_t g, const std::string& rel, const struct stat& st, GuestScan& out);
  void add_group_candidates(uint32_t g, std::unordered_map<ino_t, std::vector<std::string>>& multi,
                            std::unordered_map<ino_t, struct stat>& multi_st, GuestScan& out);
  void adopt_reps(std::vector<Plan>& plans);
  void link_members(const std::vector<Plan>& plans);
  void save_cache();
  unique_fd open_candidate(const Candidate& c, int flags) const;
  std::string path_of(const Candidate& c) const { return names_[c.guest] + ":" + c.rel; }
  void step() {
    if (opts_.step_hook) opts_.step_hook(++steps_);
  }
  void progress(const std::string& line) {
    if (opts_.progress) opts_.progress(line);
  }
  void warn(std::string w) {
    std::lock_guard lock(mu_);
    report_.warnings.push_back(std::move(w));
  }
  // Reading is mostly waiting for the disk, and a virtual disk serves small reads fastest with
  // many in flight. Cold dry runs on 10 guests (2 vCPUs): 4 readers 4.2-4.6 s, 16 readers
  // 3.2-3.5 s, 32 readers no better.
  unsigned io_threads() const {
    return opts_.threads ? opts_.threads : std::max(16u, 2 * std::max(1u, std::thread::hardware_concurrency()));
  }
  // Linking is mostly waiting in the filesystem: each rename frees the replaced inode, and on
  // a filesystem mounted with discard that is a synchronous discard. Unlinking 12 KB files on
  // this VM's disk: 1 thread 300 us per file, 4 threads 181 us, 16 threads 147 us, 64 the same.
  unsigned link_threads() const { return std::max(io_threads(), 16u); }
  Hash128 group_hash(const Hash128& h) const { return opts_.hash_hook ? opts_.hash_hook(h) : h; }

  Pool& pool_;
  const UnifyOptions& opts_;
  Store store_;
  UnifyReport report_;
  std::mutex mu_;
  std::atomic<uint64_t> steps_{0};
  std::vector<std::string> names_;
  std::vector<unique_fd> roots_;
  std::vector<ObjectRow> objects_;
  std::vector<std::unordered_map<std::string, CacheRow>> cache_;  // per guest: path -> row
  std::vector<Candidate> cands_;
};

namespace {
// Seconds since `since`, resetting `since` to now.
double lap(std::chrono::steady_clock::time_point& since) {
  auto now = std::chrono::steady_clock::now();
  double s = std::chrono::duration<double>(now - since).count();
  since = now;
  return s;
}
}  // namespace

UnifyReport Unifier::run() {
  auto t0 = std::chrono::steady_clock::now();
  auto t = t0;
  open_guests();
  objects_ = store_.load();
  if (!opts_.dry_run) resolve_link_groups();  // a group left halfway by a crash
  load_cache();
  scan();
  report_.scan_seconds = lap(t);
  if (opts_.phase_hook) opts_.phase_hook("scanned");
  std::vector<Plan> plans = classify();
  report_.read_seconds = lap(t);
  if (opts_.phase_hook) opts_.phase_hook("planned");
  if (opts_.dry_run) {  // counts exactly as apply() does when nothing changes meanwhile
    for (const Plan& p : plans) {
      report_.objects_created += p.object ? 0 : 1;
      if (!p.object && !cands_[p.rep].also.empty()) ++report_.link_groups;  // adopt_reps
      for (size_t m : p.members) {
        const Candidate& c = cands_[m];
        report_.files_linked += 1 + c.also.size();
        if (!c.also.empty()) ++report_.link_groups;
        if (c.st.st_nlink == 1 + c.also.size()) report_.bytes_saved += static_cast<uint64_t>(c.st.st_blocks) * 512;
      }
    }
  } else {
    apply(plans);
  }
  report_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report_;
}

void Unifier::open_guests() {
  names_ = opts_.guests.empty() ? pool_.guest_names() : opts_.guests;
  std::sort(names_.begin(), names_.end());
  names_.erase(std::unique(names_.begin(), names_.end()), names_.end());
  for (const std::string& name : names_) {
    roots_.push_back(pool_.open_guest_root(name));
    pool_.refuse_if_mounted(name, ": unify does not swap files under a running guest");
  }
  report_.guests = names_.size();
}

void Unifier::load_cache() {
  Stmt s = pool_.index().prepare("SELECT path, ino, size, mtime_ns, ctime_ns, content_hash FROM files WHERE guest=?");
  for (const std::string& name : names_) {
    cache_.emplace_back();
    s.bind(1, name);
    while (s.step()) {
      CacheRow row{static_cast<ino_t>(s.col_int(1)), s.col_int(2), s.col_int(3), s.col_int(4), {}};
      if (Hash128::parse(s.col_text(5), row.content)) cache_.back().emplace(s.col_text(0), row);
    }
    s.reset();
  }
}

// Guests are walked in parallel (a cold walk mostly waits for inode reads).
void Unifier::scan() {
  ObjectSet objects = object_set();
  std::vector<GuestScan> scans(names_.size());
  std::atomic<uint64_t> seen{0};
  parallel_for(names_.size(), io_threads(), [&](size_t g) { scan_guest(static_cast<uint32_t>(g), objects, scans[g], seen); });
  size_t total = 0;
  for (const GuestScan& gs : scans) total += gs.cands.size();
  cands_.reserve(total);
  for (GuestScan& gs : scans) {
    report_.files_scanned += gs.scanned;
    report_.already_shared += gs.shared;
    report_.skipped_hardlinks += gs.hardlinks;
    report_.skipped_small += gs.small;
    report_.skipped_excluded += gs.excluded;
    for (Candidate& c : gs.cands) cands_.push_back(std::move(c));
  }
}

void Unifier::scan_guest(uint32_t g, const ObjectSet& objects, GuestScan& out, std::atomic<uint64_t>& seen) {
  std::unordered_map<ino_t, std::vector<std::string>> multi;  // inodes with hard links: their paths
  std::unordered_map<ino_t, struct stat> multi_st;
  os::walk_tree(roots_[g].get(), [&](const os::WalkEntry& e) {
    if (!S_ISREG(e.st.st_mode)) return true;
    ++out.scanned;
    if ((++seen & 4095) == 0) progress(fmt::format("scanning: {} files", seen.load()));
    if (objects.contains(e.st)) {
      ++out.shared;
    } else if (e.st.st_nlink > 1) {
      multi[e.st.st_ino].push_back(e.rel);
      multi_st.emplace(e.st.st_ino, e.st);
    } else {
      add_candidate(g, e.rel, e.st, out);
    }
    return true;
  });
  add_group_candidates(g, multi, multi_st, out);
}

// A hard-link group whose links are all in this guest is one candidate; links that leave the
// guest (another tree holds the inode too) are left alone.
void Unifier::add_group_candidates(uint32_t g, std::unordered_map<ino_t, std::vector<std::string>>& multi,
                                   std::unordered_map<ino_t, struct stat>& multi_st, GuestScan& out) {
  std::vector<ino_t> order;
  for (auto& [ino, paths] : multi) order.push_back(ino);
  std::sort(order.begin(), order.end(), [&](ino_t a, ino_t b) { return multi[a] < multi[b]; });
  for (ino_t ino : order) {
    std::vector<std::string>& paths = multi[ino];
    std::sort(paths.begin(), paths.end());
    const struct stat& st = multi_st[ino];
    bool inside = paths.size() == st.st_nlink;
    bool excl = !opts_.excludes.empty() &&
                std::any_of(paths.begin(), paths.end(), [&](const std::string& p) { return excluded(opts_.excludes, p); });
    if (!inside || excl) {
      (inside ? out.excluded : out.hardlinks) += paths.size();
      continue;
    }
    size_t before = out.cands.size();
    add_candidate(g, paths[0], st, out);
    if (out.cands.size() > before) out.cands.back().also.assign(paths.begin() + 1, paths.end());
  }
}

void Unifier::add_candidate(uint32_t g, const std::string& rel, const struct stat& st, GuestScan& out) {
  if (st.st_size < opts_.min_size) {
    ++out.small;
    return;
  }
  if (!opts_.excludes.empty() && excluded(opts_.excludes, rel)) {
    ++out.excluded;
    return;
  }
  Candidate c;
  c.guest = g;
  c.rel = rel;
  c.st = st;
  const auto& cache = cache_[g];
  auto it = cache.empty() ? cache.end() : cache.find(rel);
  if (it != cache.end() && it->second.ino == st.st_ino && it->second.size == st.st_size &&
      it->second.mtime_ns == to_ns(st.st_mtim) && it->second.ctime_ns == to_ns(st.st_ctim))
    c.content = it->second.content;
  out.cands.push_back(std::move(c));
}

unique_fd Unifier::open_candidate(const Candidate& c, int flags) const {
  int fd = os::try_open_beneath(roots_[c.guest].get(), c.rel, flags | O_NOATIME);
  if (fd == -EPERM) fd = os::try_open_beneath(roots_[c.guest].get(), c.rel, flags);
  if (fd < 0) {
    errno = -fd;
    os::throw_errno("open", path_of(c));
  }
  return unique_fd(fd);
}

// Candidates whose pre-key (size, mode, owner, mtime) no other file or object has are never
// read. The others are read in buckets of one pre-key each, by one thread per bucket: each file
// is read once, hashed, and compared with the earlier files of its bucket that have its key
// while its bytes are still in memory (the hash only proposes; equal bytes decide).
std::vector<Plan> Unifier::classify() {
  bool with_mtime = !opts_.ignore_mtime;
  std::unordered_map<PreKey, Bucket, PreKeyHasher> by_pre_key;
  by_pre_key.reserve(cands_.size());
  for (size_t i = 0; i < cands_.size(); ++i) by_pre_key[pre_key(cands_[i].st, with_mtime)].cands.push_back(i);
  for (size_t o = 0; o < objects_.size(); ++o) {
    auto it = by_pre_key.find(pre_key(objects_[o].key, with_mtime));
    if (it != by_pre_key.end()) it->second.objs.push_back(o);
  }
  std::vector<const Bucket*> buckets;
  size_t files = 0;
  for (const auto& [pk, b] : by_pre_key) {
    if (b.cands.size() + b.objs.size() < 2) continue;  // alone: never read
    buckets.push_back(&b);
    files += b.cands.size();
  }
  // Biggest first, so no thread is left with one large bucket at the end.
  auto bytes_of = [&](const Bucket* b) { return cands_[b->cands[0]].st.st_size * static_cast<int64_t>(b->cands.size()); };
  std::sort(buckets.begin(), buckets.end(), [&](const Bucket* a, const Bucket* b) { return bytes_of(a) > bytes_of(b); });
  ClassifyCounts counts;
  std::vector<Plan> plans;
  parallel_for(buckets.size(), io_threads(), [&](size_t b) {
    std::vector<Plan> local;
    classify_bucket(*buckets[b], local, counts);
    std::lock_guard lock(mu_);
    for (Plan& p : local) plans.push_back(std::move(p));
    if ((b & 63) == 0) progress(fmt::format("reading: {}/{} files", counts.done.load(), files));
  });
  report_.files_read = counts.files_read;
  report_.bytes_read = counts.bytes_read;
  report_.cached_hashes = counts.cached;
  report_.files_compared = counts.compared;
  report_.collisions = counts.collisions;
  report_.changed_during_run += counts.changed;
  // Deterministic order: by first member path.
  std::sort(plans.begin(), plans.end(), [&](const Plan& a, const Plan& b) {
    const Candidate& ca = cands_[a.object ? a.members[0] : a.rep];
    const Candidate& cb = cands_[b.object ? b.members[0] : b.rep];
    return std::tie(ca.guest, ca.rel) < std::tie(cb.guest, cb.rel);
  });
  return plans;
}

namespace {

// One class of byte-identical files within a bucket: a store object or the first candidate
// read with this key. Small representatives keep their bytes for the compares that follow.
struct Class {
  FileKey key;
  Plan plan;
  unique_fd rep_fd;
  std::optional<std::string> bytes;
};

// Files up to this size are read whole into memory; larger ones are hashed in chunks and
// compared through the page cache. A bucket keeps at most kHeldPerBucket bytes of
// representatives (many files of one size and mtime but different bytes); later ones are
// compared through their fds.
constexpr int64_t kInMemory = 256 << 10;
constexpr size_t kHeldPerBucket = size_t{8} << 20;

// Reads all of a `size`-byte file into `out`; false if it is not that long any more. One
// pread usually does: asking one byte more than `size`, a short read is the end of the file.
bool read_whole(int fd, int64_t size, std::string& out, const std::string& path) {
  out.resize(static_cast<size_t>(size) + 1);
  size_t got = 0;
  for (;;) {
    ssize_t n = ::pread(fd, out.data() + got, out.size() - got, static_cast<off_t>(got));
    if (n < 0) {
      if (errno == EINTR) continue;
      os::throw_errno("read", path);
    }
    got += static_cast<size_t>(n);
    if (n == 0 || got >= static_cast<size_t>(size)) break;
  }
  if (got != static_cast<size_t>(size)) return false;
  out.resize(got);
  return true;
}

bool same_content(const Class& k, int fd, const std::optional<std::string>& bytes, const std::string& path) {
  if (k.bytes && bytes) return *k.bytes == *bytes;
  return os::same_bytes(k.rep_fd.get(), fd, path);
}

}  // namespace

void Unifier::classify_bucket(const Bucket& bucket, std::vector<Plan>& out, ClassifyCounts& counts) {
  bool with_mtime = !opts_.ignore_mtime;
  std::vector<Class> classes;
  size_t held = 0;  // bytes of representatives kept in memory
  for (size_t o : bucket.objs) {
    int fd = ::openat(pool_.objects_fd(), objects_[o].name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      warn(fmt::format("store object {} cannot be opened: {} (run 'vunify fsck')", objects_[o].name, std::strerror(errno)));
      continue;
    }
    Class k;
    k.key = objects_[o].key;
    k.key.content = group_hash(k.key.content);
    if (!with_mtime) k.key.mtime_ns = 0;
    k.plan.object = o;
    k.rep_fd.reset(fd);
    classes.push_back(std::move(k));
  }
  for (size_t i : bucket.cands) {
    Candidate& c = cands_[i];
    ++counts.done;
    try {
      unique_fd fd = open_candidate(c, O_RDONLY);
      struct stat st {};
      if (::fstat(fd.get(), &st) != 0) os::throw_errno("stat", path_of(c));
      if (!same_state(st, c.st)) {
        ++counts.changed;
        continue;
      }
      os::Xattrs xattrs = os::read_xattrs(fd.get(), path_of(c));
      std::optional<std::string> bytes;
      if (c.content) {
        ++counts.cached;
      } else if (st.st_size <= kInMemory) {
        bytes.emplace();
        if (!read_whole(fd.get(), st.st_size, *bytes, path_of(c))) {
          ++counts.changed;
          continue;
        }
        c.content = hash_bytes(*bytes);
        ++counts.files_read;
        counts.bytes_read += bytes->size();
      } else {
        uint64_t n = 0;
        c.content = hash_fd(fd.get(), path_of(c), &n);
        ++counts.files_read;
        counts.bytes_read += n;
      }
      c.key = file_key(group_hash(*c.content), st, xattrs, with_mtime);
      c.keyed = true;
      bool same_key = false, placed = false;
      for (Class& k : classes) {
        if (k.key != c.key) continue;
        same_key = true;
        ++counts.compared;
        if (same_content(k, fd.get(), bytes, path_of(c))) {
          k.plan.members.push_back(i);
          placed = true;
          break;
        }
      }
      if (placed) continue;
      if (same_key) ++counts.collisions;
      Class k;
      k.key = c.key;
      k.plan.rep = i;
      k.rep_fd = std::move(fd);
      if (bytes && held + bytes->size() <= kHeldPerBucket) {
        held += bytes->size();
        k.bytes = std::move(bytes);
      }
      classes.push_back(std::move(k));
    } catch (const os::SysError& e) {
      warn(fmt::format("skipped: {}", e.what()));
    }
  }
  for (Class& k : classes)
    if (!k.plan.members.empty()) out.push_back(std::move(k.plan));  // alone in its class: nothing to link
}

void Unifier::apply(std::vector<Plan>& plans) {
  if (plans.empty()) {
    save_cache();
    return;
  }
  auto t = std::chrono::steady_clock::now();
  record_pending_dirs(plans);
  record_link_groups(plans);
  adopt_reps(plans);
  report_.store_seconds = lap(t);
  link_members(plans);
  resolve_link_groups();  // drops the record of a group that could not be linked whole
  report_.link_seconds = lap(t);
  save_cache();
}

// Before any guest directory changes, remember its times (restored on recovery after a crash).
void Unifier::record_pending_dirs(const std::vector<Plan>& plans) {
  std::set<std::pair<uint32_t, std::string>> dirs;
  for (const Plan& p : plans)
    for (size_t m : p.members) {
      dirs.emplace(cands_[m].guest, dir_of(cands_[m].rel));
      for (const std::string& rel : cands_[m].also) dirs.emplace(cands_[m].guest, dir_of(rel));
    }
  Transaction tx(pool_.index());
  pool_.index().exec("INSERT OR REPLACE INTO meta(key, value) VALUES('unify_running', '1')");
  Stmt ins = pool_.index().prepare("INSERT OR REPLACE INTO pending_dirs(guest, path, atime_ns, mtime_ns) VALUES(?,?,?,?)");
  for (const auto& [g, dir] : dirs) {
    struct stat st {};
    if (::fstatat(roots_[g].get(), dir.empty() ? "." : dir.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    ins.bind(1, names_[g]).bind(2, dir).bind(3, to_ns(st.st_atim)).bind(4, to_ns(st.st_mtim)).run();
  }
  tx.commit();
}

// Hard-link groups about to become links to objects are recorded first: a crash halfway leaves
// a recorded group with members on both inodes, which resolve_links() repairs.
void Unifier::record_link_groups(const std::vector<Plan>& plans) {
  std::map<uint32_t, std::vector<std::vector<std::string>>> by_guest;
  auto add = [&](size_t i) {
    const Candidate& c = cands_[i];
    if (c.also.empty()) return;
    std::vector<std::string> paths{c.rel};
    paths.insert(paths.end(), c.also.begin(), c.also.end());
    by_guest[c.guest].push_back(std::move(paths));
  };
  for (const Plan& p : plans) {
    if (p.members.empty()) continue;
    if (!p.object) add(p.rep);
    for (size_t m : p.members) add(m);
  }
  if (by_guest.empty()) return;
  unique_fd dir = open_links_dir(pool_);
  for (auto& [g, groups] : by_guest) {
    GuestLinks links = read_links(dir.get(), names_[g]);
    for (LinkGroup& group : links_from_paths(roots_[g].get(), groups)) links.push_back(std::move(group));
    step();
    write_links(dir.get(), names_[g], links);
  }
}

void Unifier::resolve_link_groups() {
  ObjectSet objects = object_set();
  for (const std::string& name : names_) resolve_links(pool_, name, objects);
}

ObjectSet Unifier::object_set() const {
  std::vector<ino_t> inos;
  for (const ObjectRow& obj : objects_) inos.push_back(obj.ino);
  return ObjectSet(pool_.dev(), std::move(inos));
}

void Unifier::adopt_reps(std::vector<Plan>& plans) {
  DurableWindow durable(pool_.fd());
  Transaction tx(pool_.index());
  size_t done = 0;
  for (Plan& p : plans) {
    if (p.object) continue;
    Candidate& rep = cands_[p.rep];
    step();
    try {
      unique_fd fd = open_candidate(rep, O_RDONLY);
      struct stat st {};
      if (::fstat(fd.get(), &st) != 0) os::throw_errno("stat", path_of(rep));
      if (!same_state(st, rep.st)) {
        ++report_.changed_during_run;
        p.members.clear();
        continue;
      }
      FileKey real = rep.key;
      real.content = *rep.content;
      real.mtime_ns = to_ns(st.st_mtim);
      objects_.push_back(store_.adopt(fd.get(), real, path_of(rep)));
      durable.add(std::move(fd), path_of(rep));
      p.object = objects_.size() - 1;
      rep.linked = true;
      ++report_.objects_created;
      if (!rep.also.empty()) ++report_.link_groups;
    } catch (const os::SysError& e) {
      if (e.err() == ENOSPC || e.err() == EDQUOT) throw;
      warn(fmt::format("skipped: {}", e.what()));
      p.members.clear();
    }
    if ((++done & 255) == 0) progress(fmt::format("storing: {} objects", done));
  }
  durable.drain();
  tx.commit();
}

void Unifier::link_members(const std::vector<Plan>& plans) {
  struct Job {
    size_t cand;
    size_t object;
    std::string dir, base;
  };
  std::vector<Job> jobs;
  for (const Plan& p : plans)
    for (size_t m : p.members) {
      jobs.push_back({m, *p.object, dir_of(cands_[m].rel), base_of(cands_[m].rel)});
      for (const std::string& rel : cands_[m].also) jobs.push_back({m, *p.object, dir_of(rel), base_of(rel)});
    }
  // Sorted by directory (not by path: "etc/a" < "etc/x/b" < "etc/z" would split etc in two),
  // so each directory is one range, changed by one thread only.
  std::sort(jobs.begin(), jobs.end(), [&](const Job& a, const Job& b) {
    return std::tie(cands_[a.cand].guest, a.dir, a.base) < std::tie(cands_[b.cand].guest, b.dir, b.base);
  });
  // One range of jobs per directory; directories are linked in parallel (each rename may wait
  // for the disk, e.g. a discard of the replaced file's blocks), each by one thread so its
  // times can be restored after its last change.
  std::vector<std::pair<size_t, size_t>> dirs;
  for (size_t i = 0; i < jobs.size();) {
    size_t end = i;
    while (end < jobs.size() && cands_[jobs[end].cand].guest == cands_[jobs[i].cand].guest && jobs[end].dir == jobs[i].dir) ++end;
    dirs.emplace_back(i, end);
    i = end;
  }
  std::vector<std::atomic<uint32_t>> paths_linked(cands_.size());
  std::atomic<uint64_t> linked{0}, saved{0}, changed{0};
  parallel_for(dirs.size(), link_threads(), [&](size_t d) {
    auto [begin, end] = dirs[d];
    const Candidate& first = cands_[jobs[begin].cand];
    const std::string& dir = jobs[begin].dir;
    int dfd = os::try_open_beneath(roots_[first.guest].get(), dir, O_RDONLY | O_DIRECTORY);
    if (dfd < 0) {
      warn(fmt::format("skipped directory {}:{}: {}", names_[first.guest], dir, std::strerror(-dfd)));
      return;
    }
    unique_fd dirfd(dfd);
    struct stat dst {};
    if (::fstat(dirfd.get(), &dst) != 0) os::throw_errno("stat", names_[first.guest] + ":" + dir);
    for (size_t i = begin; i < end; ++i) {
      const Job& job = jobs[i];
      const Candidate& c = cands_[job.cand];
      struct stat st {};
      bool same = ::fstatat(dirfd.get(), job.base.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                  (c.also.empty() ? same_state(st, c.st) : same_inode_data(st, c.st));
      if (!same) {
        ++changed;
        continue;
      }
      step();
      store_.link_over(objects_[job.object], dirfd.get(), job.base, names_[c.guest] + ":" + os::join_path(dir, job.base));
      ++paths_linked[job.cand];
      if (st.st_nlink == 1) saved += static_cast<uint64_t>(st.st_blocks) * 512;
      if ((++linked & 1023) == 0) progress(fmt::format("linking: {}/{} files", linked.load(), jobs.size()));
    }
    step();
    struct timespec times[2] = {dst.st_atim, dst.st_mtim};
    if (::futimens(dirfd.get(), times) != 0) os::throw_errno("restore times of", names_[first.guest] + ":" + dir);
  });
  for (size_t i = 0; i < cands_.size(); ++i) {
    Candidate& c = cands_[i];
    if (paths_linked[i] == 0) continue;
    c.linked = true;
    if (!c.also.empty() && paths_linked[i] == c.also.size() + 1) ++report_.link_groups;
  }
  report_.files_linked += linked;
  report_.bytes_saved += saved;
  report_.changed_during_run += changed;
}

// The index caches content hashes of unshared files, so the next run reads only changed files.
void Unifier::save_cache() {
  Transaction tx(pool_.index());
  Stmt del = pool_.index().prepare("DELETE FROM files WHERE guest=?");
  for (const std::string& name : names_) del.bind(1, name).run();
  Stmt ins = pool_.index().prepare(
      "INSERT OR REPLACE INTO files(guest, path, ino, size, mtime_ns, ctime_ns, content_hash) VALUES(?,?,?,?,?,?,?)");
  for (const Candidate& c : cands_) {
    if (c.linked || !c.content) continue;
    ins.bind(1, names_[c.guest]).bind(2, c.rel).bind(3, static_cast<int64_t>(c.st.st_ino)).bind(4, c.st.st_size);
    ins.bind(5, to_ns(c.st.st_mtim)).bind(6, to_ns(c.st.st_ctim)).bind(7, c.content->hex()).run();
  }
  pool_.index().exec("DELETE FROM pending_dirs; DELETE FROM meta WHERE key='unify_running'");
  tx.commit();
  pool_.index().compact();
}

}  // namespace

UnifyReport unify(Pool& pool, const UnifyOptions& options) { return Unifier(pool, options).run(); }

}  // namespace vunify::unify
