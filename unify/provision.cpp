#include "unify/provision.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <sstream>
#include <map>
#include <toml++/toml.h>

#include "os/copy.hpp"
#include "os/crash_point.hpp"
#include "os/error.hpp"
#include "os/files.hpp"
#include "os/walk.hpp"
#include "os/xattrs.hpp"
#include "unify/guests.hpp"
#include "unify/link_groups.hpp"
#include "unify/object_set.hpp"
#include "unify/parallel.hpp"
#include "unify/recovery.hpp"
#include "unify/store.hpp"
#include "unify/templates.hpp"

namespace vunify::unify {

using os::throw_errno;
using os::unique_fd;
using os::UserError;

namespace {

// ---- the plan ----

enum class Kind : uint8_t { Link, Private, PrivateLink, Symlink, Node, EmptyLog, Hostname, Hosts, MachineId };

struct Entry {
  Kind kind;
  std::string name;
  struct stat st {};
  os::Xattrs xattrs;
  std::string data;  // symlink target; first copy's path (PrivateLink); template /etc/hosts
};

struct Dir {
  std::string name;
  struct stat st {};
  os::Xattrs xattrs;
  std::vector<Entry> entries;
  std::vector<uint32_t> subdirs;
};

struct Plan {
  std::vector<Dir> dirs;  // dirs[0] is the root
  uint64_t entries = 0, linked = 0, private_files = 0;
};

std::string read_small_file(int dirfd, const char* name, off_t size) {
  if (size > (1 << 20)) return {};
  int fd = ::openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return {};
  unique_fd f(fd);
  std::string out(static_cast<size_t>(size), '\0');
  ssize_t n = ::pread(fd, out.data(), out.size(), 0);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

class Planner {
 public:
  explicit Planner(ObjectSet objects, os::Progress progress = {}) : objects_(std::move(objects)), progress_(std::move(progress)) {}
  Plan make(int root_fd);

 private:
  void scan(int dirfd, uint32_t dir, const std::string& rel);
  Kind regular_kind(const std::string& rel, const struct stat& st);
  void add_customizations();
  ObjectSet objects_;
  os::Progress progress_;
  std::map<ino_t, std::string> private_first_;
  Plan plan_;
};

Kind Planner::regular_kind(const std::string& rel, const struct stat& st) {
  if (rel == "etc/hostname") return Kind::Hostname;
  if (rel == "etc/hosts") return Kind::Hosts;
  if (rel == "etc/machine-id") return Kind::MachineId;
  if (rel.starts_with("var/log/")) return Kind::EmptyLog;
  if (objects_.contains(st)) return Kind::Link;
  if (st.st_nlink > 1 && private_first_.count(st.st_ino)) return Kind::PrivateLink;
  if (st.st_nlink > 1) private_first_[st.st_ino] = rel;
  return Kind::Private;
}

void Planner::scan(int dirfd, uint32_t dir, const std::string& rel) {
  std::vector<std::pair<std::string, struct stat>> children;
  os::walk_tree(dirfd, [&](const os::WalkEntry& e) {
    children.emplace_back(e.name, e.st);
    return false;
  });
  for (auto& [name, st] : children) {
    std::string crel = os::join_path(rel, name);
    if ((++plan_.entries & 255) == 0 && progress_) progress_(fmt::format("reading the source tree: {} entries", plan_.entries));
    if (S_ISDIR(st.st_mode)) {
      auto idx = static_cast<uint32_t>(plan_.dirs.size());
      plan_.dirs.push_back(Dir{name, st, os::read_xattrs_at(dirfd, name), {}, {}});
      plan_.dirs[dir].subdirs.push_back(idx);
      unique_fd sub = os::open_beneath(dirfd, name, O_RDONLY | O_DIRECTORY);
      scan(sub.get(), idx, crel);
      continue;
    }
    Entry e{Kind::Node, name, st, {}, {}};
    if (S_ISREG(st.st_mode)) {
      e.kind = regular_kind(crel, st);
      if (e.kind == Kind::Link) ++plan_.linked;
      else ++plan_.private_files;
      if (e.kind == Kind::PrivateLink) e.data = private_first_[st.st_ino];
      if (e.kind == Kind::Hosts) e.data = read_small_file(dirfd, name.c_str(), st.st_size);
    } else if (S_ISLNK(st.st_mode)) {
      e.kind = Kind::Symlink;
      e.data.assign(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlinkat(dirfd, name.c_str(), e.data.data(), e.data.size());
      if (n < 0) throw_errno("read link", crel);
      e.data.resize(static_cast<size_t>(n));
    }
    if (e.kind != Kind::Link) e.xattrs = os::read_xattrs_at(dirfd, name);
    plan_.dirs[dir].entries.push_back(std::move(e));
  }
}

// A guest gets its own hostname, hosts and machine-id even if the template has none.
void Planner::add_customizations() {
  for (uint32_t idx : plan_.dirs[0].subdirs) {
    Dir& etc = plan_.dirs[idx];
    if (etc.name != "etc") continue;
    auto has = [&etc](const char* n) {
      return std::any_of(etc.entries.begin(), etc.entries.end(), [n](const Entry& e) { return e.name == n; });
    };
    for (auto [name, kind, mode] : {std::tuple{"hostname", Kind::Hostname, 0644}, std::tuple{"hosts", Kind::Hosts, 0644},
                                    std::tuple{"machine-id", Kind::MachineId, 0444}}) {
      if (has(name)) continue;
      Entry e{kind, name, {}, {}, {}};
      e.st.st_mode = S_IFREG | static_cast<mode_t>(mode);
      etc.entries.push_back(std::move(e));
      ++plan_.private_files;
    }
  }
}

Plan Planner::make(int root_fd) {
  struct stat st {};
  if (::fstat(root_fd, &st) != 0) throw_errno("stat", ".");
  plan_.dirs.push_back(Dir{"", st, os::read_xattrs(root_fd, "."), {}, {}});
  scan(root_fd, 0, "");
  add_customizations();
  return std::move(plan_);
}

// ---- per-guest content ----

std::string hosts_for(const std::string& hostname, const std::string& tmpl) {
  std::string line = "127.0.1.1\t" + hostname;
  if (tmpl.empty()) return "127.0.0.1\tlocalhost\n" + line + "\n\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";
  std::string out;
  bool replaced = false;
  for (size_t pos = 0; pos < tmpl.size();) {
    size_t end = tmpl.find('\n', pos);
    std::string cur = tmpl.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    pos = end == std::string::npos ? tmpl.size() : end + 1;
    size_t lead = cur.find_first_not_of(" \t");
    bool ours = lead != std::string::npos && cur.compare(lead, 9, "127.0.1.1") == 0 &&
                (cur.size() == lead + 9 || cur[lead + 9] == ' ' || cur[lead + 9] == '\t');
    if (ours && replaced) continue;
    out += (ours ? line : cur) + "\n";
    replaced = replaced || ours;
  }
  if (!replaced) out += line + "\n";
  return out;
}

std::string new_machine_id() {
  unsigned char b[16];
  for (size_t got = 0; got < sizeof b;) {
    ssize_t n = ::getrandom(b + got, sizeof b - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("getrandom", "machine-id");
    }
    got += static_cast<size_t>(n);
  }
  b[6] = (b[6] & 0x0f) | 0x40;  // a v4 UUID, as systemd makes them
  b[8] = (b[8] & 0x3f) | 0x80;
  std::string out;
  for (unsigned char c : b) out += fmt::format("{:02x}", c);
  return out + "\n";
}

// ---- replay ----

class Replayer {
 public:
  Replayer(const Plan& plan, int src_root, std::string hostname, os::Progress progress = {})
      : plan_(plan), src_root_(src_root), hostname_(std::move(hostname)), progress_(std::move(progress)), uid_(::geteuid()),
        gid_(::getegid()) {}
  void build(int parent_fd, const std::string& tmp);

 private:
  void replay_dir(uint32_t idx, int src, int dst, const std::string& rel);
  void make(const Entry& e, int src, int dst, const std::string& rel);
  void write_new(const Entry& e, int dst, const std::string& rel, const std::string& content, bool now);
  void set_dir_meta(int fd, const Dir& d, const std::string& rel);
  const Plan& plan_;
  int src_root_;
  int dst_root_ = -1;
  std::string hostname_;
  os::Progress progress_;  // per entry placed (a single guest: clone)
  uint64_t placed_ = 0;
  uid_t uid_;
  gid_t gid_;
};

void Replayer::set_dir_meta(int fd, const Dir& d, const std::string& rel) {
  if ((d.st.st_uid != uid_ || d.st.st_gid != gid_) && ::fchown(fd, d.st.st_uid, d.st.st_gid) != 0) throw_errno("chown", rel);
  if (::fchmod(fd, d.st.st_mode & 07777) != 0) throw_errno("chmod", rel);
  if (!d.xattrs.empty()) os::write_xattrs(fd, d.xattrs, rel);
  struct timespec times[2] = {d.st.st_atim, d.st.st_mtim};
  if (::futimens(fd, times) != 0) throw_errno("set times of", rel);
}

void Replayer::write_new(const Entry& e, int dst, const std::string& rel, const std::string& content, bool now) {
  int fd = ::openat(dst, e.name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) throw_errno("create", rel);
  unique_fd f(fd);
  if (!content.empty() && ::write(fd, content.data(), content.size()) != static_cast<ssize_t>(content.size()))
    throw_errno("write", rel);
  struct stat st = e.st;
  if (now) {
    ::clock_gettime(CLOCK_REALTIME, &st.st_mtim);
    st.st_atim = st.st_mtim;
  }
  os::copy_file_metadata(fd, st, e.xattrs, rel);
}

void Replayer::make(const Entry& e, int src, int dst, const std::string& dir_rel) {
  const char* name = e.name.c_str();
  auto rel = [&] { return os::join_path(dir_rel, e.name); };
  switch (e.kind) {
    case Kind::Link:
      if (::linkat(src, name, dst, name, 0) != 0) throw_errno("link", rel());
      return;
    case Kind::Symlink:
      if (::symlinkat(e.data.c_str(), dst, name) != 0) throw_errno("create symlink", rel());
      if ((e.st.st_uid != uid_ || e.st.st_gid != gid_) && ::fchownat(dst, name, e.st.st_uid, e.st.st_gid, AT_SYMLINK_NOFOLLOW) != 0)
        throw_errno("chown", rel());
      if (!e.xattrs.empty()) os::write_xattrs_at(dst, name, e.xattrs);
      {
        struct timespec times[2] = {e.st.st_atim, e.st.st_mtim};
        if (::utimensat(dst, name, times, AT_SYMLINK_NOFOLLOW) != 0) throw_errno("set times of", rel());
      }
      return;
    case Kind::Node:
      if (::mknodat(dst, name, (e.st.st_mode & S_IFMT) | 0600, e.st.st_rdev) != 0) throw_errno("create node", rel());
      return os::copy_metadata_at(dst, name, e.st, e.xattrs);
    case Kind::Private: {
      int sfd = ::openat(src, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (sfd < 0) throw_errno("open", rel());
      unique_fd in(sfd);
      int dfd = ::openat(dst, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (dfd < 0) throw_errno("create", rel());
      unique_fd out(dfd);
      os::copy_file_data(sfd, dfd, e.st.st_size, rel());
      return os::copy_file_metadata(dfd, e.st, e.xattrs, rel());
    }
    case Kind::PrivateLink: {
      auto slash = e.data.rfind('/');
      unique_fd first_dir = os::open_beneath(dst_root_, slash == std::string::npos ? "" : e.data.substr(0, slash), O_PATH | O_DIRECTORY);
      std::string first = slash == std::string::npos ? e.data : e.data.substr(slash + 1);
      if (::linkat(first_dir.get(), first.c_str(), dst, name, 0) != 0) throw_errno("link", rel());
      return;
    }
    case Kind::EmptyLog: return write_new(e, dst, rel(), "", false);
    case Kind::Hostname: return write_new(e, dst, rel(), hostname_ + "\n", true);
    case Kind::Hosts: return write_new(e, dst, rel(), hosts_for(hostname_, e.data), true);
    case Kind::MachineId: return write_new(e, dst, rel(), new_machine_id(), true);
  }
}

void Replayer::replay_dir(uint32_t idx, int src, int dst, const std::string& rel) {
  const Dir& d = plan_.dirs[idx];
  for (const Entry& e : d.entries) {
    make(e, src, dst, rel);
    if ((++placed_ & 255) == 0 && progress_) progress_(fmt::format("placing entries: {}/{}", placed_, plan_.entries));
  }
  for (uint32_t sub : d.subdirs) {
    const Dir& sd = plan_.dirs[sub];
    std::string srel = os::join_path(rel, sd.name);
    if (::mkdirat(dst, sd.name.c_str(), 0700) != 0) throw_errno("create directory", srel);
    int s = ::openat(src, sd.name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (s < 0) throw_errno("open directory", srel);
    unique_fd sfd(s);
    int t = ::openat(dst, sd.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (t < 0) throw_errno("open directory", srel);
    unique_fd dfd(t);
    replay_dir(sub, sfd.get(), dfd.get(), srel);
    set_dir_meta(dfd.get(), sd, srel);
  }
}

void Replayer::build(int parent_fd, const std::string& tmp) {
  if (::mkdirat(parent_fd, tmp.c_str(), 0700) != 0) throw_errno("create directory", tmp);
  unique_fd root = os::open_beneath(parent_fd, tmp, O_RDONLY | O_DIRECTORY);
  dst_root_ = root.get();
  replay_dir(0, src_root_, root.get(), "");
  set_dir_meta(root.get(), plan_.dirs[0], ".");
}

// ---- orchestration ----

void check_new_guest(Pool& pool, const std::string& name) {
  Pool::check_name(name, "guest");
  if (pool.has_guest(name)) throw UserError(fmt::format("guest '{}' already exists; nothing was created", name));
  struct stat st {};
  if (::fstatat(pool.backing_fd(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
    throw UserError(fmt::format("{} already exists (not a registered guest); nothing was created", pool.path("backing/" + name)));
}

std::string toml_time_now() {
  auto now = std::chrono::system_clock::now();
  time_t t = std::chrono::system_clock::to_time_t(now);
  struct tm tm {};
  ::gmtime_r(&t, &tm);
  char buf[64];
  ::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void write_guest_config(Pool& pool, const std::string& name, const std::string& template_name, const std::string& clone_of) {
  toml::table cfg;
  cfg.insert("hostname", name);
  cfg.insert("template", template_name);
  if (!clone_of.empty()) cfg.insert("cloned_from", clone_of);
  if (auto created = toml::parse("t = " + toml_time_now())["t"].as_date_time()) cfg.insert("created", created->get());
  std::ostringstream out;
  out << "# vunify guest configuration\n" << cfg << "\n";
  os::write_file_atomic(os::open_dir(pool.path("etc")).get(), name + ".toml", out.str(), 0644);
}

struct Job {
  std::string name, tmp;
  bool placed = false;
  GuestLinks links;  // the template's (or source guest's) hard-link groups, in this guest
};

// Builds every guest in parallel, then places the batch all or nothing: a journal of the batch
// is committed before anything is placed (recovery rolls back a batch that still has one, see
// unify/recovery.hpp); configs and link records are written, the guests renamed into place and
// registered, and the journal dropped, in one index transaction. On any failure, nothing stays.
void provision(Pool& pool, const Plan& plan, int src_root, const LinkGroups& groups, std::vector<Job>& jobs,
               const std::string& template_name, const std::string& clone_of, unsigned threads,
               const std::function<void(size_t, size_t)>& progress, const os::Progress& entry_progress = {}) {
  std::atomic<size_t> done{0};
  unique_fd links_dir = open_links_dir(pool);
  PendingBatch batch{std::to_string(::getpid()), {}};
  for (const Job& j : jobs) batch.names.push_back(j.name);
  bool journaled = false;
  auto cleanup = [&] {
    for (Job& j : jobs) {
      if (journaled) {
        ::unlinkat(links_dir.get(), j.name.c_str(), 0);
        ::unlinkat(pool.fd(), ("etc/" + j.name + ".toml").c_str(), 0);
      }
      if (j.placed) {
        ::renameat(pool.backing_fd(), j.name.c_str(), pool.backing_fd(), j.tmp.c_str());
        ::unlinkat(pool.fd(), ("guests/" + j.name).c_str(), AT_REMOVEDIR);
      }
      try {
        os::remove_tree(pool.backing_fd(), j.tmp);
      } catch (...) {
      }
    }
    if (journaled) {
      try {
        clear_running(pool.index(), kBatchOp);
      } catch (...) {  // the next recovery rolls back what the journal names
      }
    }
  };
  try {
    parallel_for(jobs.size(), threads, [&](size_t i) {
      Replayer(plan, src_root, jobs[i].name, entry_progress).build(pool.backing_fd(), jobs[i].tmp);
      if (!groups.empty()) {
        unique_fd root = os::open_beneath(pool.backing_fd(), jobs[i].tmp, O_RDONLY | O_DIRECTORY);
        jobs[i].links = links_from_paths(root.get(), groups);
      }
      if (progress) progress(++done, jobs.size());
    });
    {
      Transaction tx(pool.index());
      write_batch_journal(pool.index(), batch);
      tx.commit();
      journaled = true;
    }
    for (Job& j : jobs) {
      os::crash_point("create.config");
      write_guest_config(pool, j.name, template_name, clone_of);
    }
    // Records before the rename (the handles survive it): a guest in place has its groups.
    for (Job& j : jobs)
      if (!j.links.empty()) write_links(links_dir.get(), j.name, j.links);
    os::crash_point("create.links");
    if (::syncfs(pool.fd()) != 0) throw_errno("syncfs", pool.root());
    Transaction tx(pool.index());
    for (Job& j : jobs) {
      os::crash_point("create.rename");
      if (::renameat2(pool.backing_fd(), j.tmp.c_str(), pool.backing_fd(), j.name.c_str(), RENAME_NOREPLACE) != 0)
        throw_errno("rename into place", pool.path("backing/" + j.name));
      j.placed = true;
      register_guest(pool, j.name, template_name);
    }
    clear_running(pool.index(), kBatchOp);
    os::crash_point("create.commit");
    tx.commit();
  } catch (...) {
    cleanup();
    throw;
  }
}

std::vector<Job> make_jobs(const std::vector<std::string>& names) {
  std::vector<Job> jobs;
  for (const auto& n : names) jobs.push_back({n, fmt::format(".create-{}-{}", n, ::getpid())});
  return jobs;
}

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

std::vector<std::string> provision_names(const std::string& name, unsigned count) {
  if (count == 0) return {name};
  int width = std::max(2, static_cast<int>(std::to_string(count).size()));
  std::vector<std::string> out;
  for (unsigned i = 1; i <= count; ++i) out.push_back(fmt::format("{}-{:0{}}", name, i, width));
  return out;
}

CreateReport create_guests(Pool& pool, const std::string& name, const CreateOptions& options) {
  auto t0 = std::chrono::steady_clock::now();
  CreateReport report;
  report.names = provision_names(name, options.count);
  for (const auto& n : report.names) check_new_guest(pool, n);
  unique_fd root = open_template_root(pool, options.template_name);
  Plan plan = Planner(ObjectSet::load(pool)).make(root.get());
  std::vector<Job> jobs = make_jobs(report.names);
  LinkGroups groups = read_link_groups(pool, options.template_name);
  provision(pool, plan, root.get(), groups, jobs, options.template_name, "", options.threads, options.progress);
  report.entries_per_guest = plan.entries;
  report.linked_per_guest = plan.linked;
  report.private_per_guest = plan.private_files;
  report.seconds = since(t0);
  return report;
}

CreateReport clone_guest(Pool& pool, const std::string& src, const std::string& dst, const os::Progress& progress) {
  auto t0 = std::chrono::steady_clock::now();
  CreateReport report;
  report.names = {dst};
  check_new_guest(pool, dst);
  unique_fd root = pool.open_guest_root(src);
  pool.refuse_if_mounted(src, " before cloning it");
  std::string template_name;
  {
    Stmt s = pool.index().prepare("SELECT ifnull(template, '') FROM guests WHERE name=?");
    s.bind(1, src);
    if (s.step()) template_name = s.col_text(0);
  }
  os::Progress report_progress;
  if (progress) report_progress = [&progress, &src](const std::string& line) { progress("cloning " + src + ": " + line); };
  if (report_progress) report_progress("reading its tree");
  Plan plan = Planner(ObjectSet::load(pool), report_progress).make(root.get());
  std::vector<Job> jobs = make_jobs(report.names);
  LinkGroups groups = link_group_paths(root.get(), read_links(open_links_dir(pool).get(), src));
  provision(pool, plan, root.get(), groups, jobs, template_name, src, 1, {}, report_progress);
  report.entries_per_guest = plan.entries;
  report.linked_per_guest = plan.linked;
  report.private_per_guest = plan.private_files;
  report.seconds = since(t0);
  return report;
}

}  // namespace vunify::unify
