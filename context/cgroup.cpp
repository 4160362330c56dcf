#include "context/cgroup.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <fstream>
#include <set>
#include <sstream>

#include "os/error.hpp"

namespace vunify::context {

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, sep);) out.push_back(item);
  return out;
}

struct Hierarchy {
  std::string mount, root, options, dev;
  bool v2 = false;
};

// cgroup and cgroup2 mounts of this mount namespace, one per hierarchy.
std::vector<Hierarchy> hierarchies() {
  std::ifstream in("/proc/self/mountinfo");
  std::vector<Hierarchy> out;
  std::set<std::string> seen;
  for (std::string line; std::getline(in, line);) {
    auto fields = split(line, ' ');
    auto dash = std::find(fields.begin(), fields.end(), "-");
    if (fields.size() < 7 || dash == fields.end() || fields.end() - dash < 4) continue;
    const std::string& type = *(dash + 1);
    if (type != "cgroup" && type != "cgroup2") continue;
    if (!seen.insert(fields[2]).second) continue;
    Hierarchy h{fields[4], fields[3], "", fields[2], type == "cgroup2"};
    if (!h.v2) {
      std::vector<std::string> keep;
      for (const auto& o : split(*(dash + 3), ','))
        if (o != "rw" && o != "ro" && o != "xattr" && o != "noprefix" && o.rfind("release_agent", 0) != 0 &&
            o != "clone_children" && o != "cpuset_v2_mode")
          keep.push_back(o);
      for (size_t i = 0; i < keep.size(); ++i) h.options += (i ? "," : "") + keep[i];
    }
    out.push_back(h);
  }
  return out;
}

// This process's (or the one `cgroup_file` is of) cgroup in hierarchy `h` ("/" if not listed).
std::string own_cgroup(const Hierarchy& h, const std::string& cgroup_file = "/proc/self/cgroup") {
  std::ifstream in(cgroup_file);
  auto wanted = split(h.options, ',');
  for (std::string line; std::getline(in, line);) {
    auto first = line.find(':'), second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    std::string ctrls = line.substr(first + 1, second - first - 1), path = line.substr(second + 1);
    bool match = h.v2 ? ctrls.empty() && line.rfind("0:", 0) == 0 : !ctrls.empty() && [&] {
      auto have = split(ctrls, ',');
      return std::is_permutation(have.begin(), have.end(), wanted.begin(), wanted.end());
    }();
    if (!match) continue;
    if (h.root != "/" && path.rfind(h.root, 0) == 0) path = path.substr(h.root.size());
    return path.empty() ? "/" : path;
  }
  return "/";
}

void collect_pids(const std::string& dir, std::vector<pid_t>& out) {
  std::ifstream in(dir + "/cgroup.procs");
  for (pid_t p; in >> p;) out.push_back(p);
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = ::readdir(d))
    if (e->d_type == DT_DIR && e->d_name[0] != '.') collect_pids(dir + "/" + e->d_name, out);
  ::closedir(d);
}

// rmdir of `dir` and its subdirectories, deepest first; true if `dir` is gone.
bool remove_tree(const std::string& dir) {
  if (DIR* d = ::opendir(dir.c_str())) {
    std::vector<std::string> subs;
    while (dirent* e = ::readdir(d))
      if (e->d_type == DT_DIR && e->d_name[0] != '.') subs.push_back(dir + "/" + e->d_name);
    ::closedir(d);
    for (const auto& s : subs) remove_tree(s);
  }
  return ::rmdir(dir.c_str()) == 0 || errno == ENOENT;
}

// True if `parent` (the vunify/ directory above `d`) is a cpuset: the v1 cpuset hierarchy, or
// a cgroup2 directory with the cpuset controller.
bool is_cpuset(const CgroupDir& d, const std::string& parent) {
  if (!d.v2) return d.has("cpuset");
  std::ifstream in(parent + "/cgroup.controllers");
  for (std::string c; in >> c;)
    if (c == "cpuset") return true;
  return false;
}

}  // namespace

void write_cgroup_file(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) os::throw_errno("open", path);
  ssize_t n = ::write(fd, text.data(), text.size());
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(text.size())) throw os::SysError(n < 0 ? err : EIO, "write '" + text + "' to", path);
}

bool CgroupDir::has(const std::string& controller) const {
  return !v2 && ("," + options + ",").find("," + controller + ",") != std::string::npos;
}

std::string CgroupDir::guest_target() const {
  if (mount == "/sys/fs/cgroup") return "sys/fs/cgroup";
  return "sys/fs/cgroup/" + mount.substr(mount.rfind('/') + 1);
}

namespace {

// Creates `vunify/LEAF` under this process's cgroup in every hierarchy `wanted` accepts.
GuestCgroups create_dirs(const std::string& leaf, bool (*wanted)(const Hierarchy&), bool prepare) {
  std::vector<CgroupDir> made;
  try {
    for (const Hierarchy& h : hierarchies()) {
      if (!wanted(h)) continue;
      std::string base = h.mount + (own_cgroup(h) == "/" ? "" : own_cgroup(h));
      CgroupDir d{h.mount, h.options, base + "/vunify/" + leaf, h.v2};
      std::string parent = base + "/vunify";
      // The parent goes when its last guest stops (remove()); one retry covers a stop removing
      // it between our two mkdirs.
      for (int attempt = 0;; ++attempt) {
        bool fresh_parent = ::mkdir(parent.c_str(), 0755) == 0;
        if (!fresh_parent && errno != EEXIST) os::throw_errno("create cgroup", parent);
        // A kept cpuset parent (remove()) takes its parent's cpus and mems again: v1 does not give
        // a child back a CPU that went offline and came back.
        CgroupDir p{h.mount, h.options, parent, h.v2};
        if (!h.v2 && (fresh_parent || p.has("cpuset"))) prepare_v1_dir(p);
        if (h.v2) enable_v2_controllers(parent);
        if (::mkdir(d.dir.c_str(), 0755) == 0) break;
        if (errno == ENOENT && attempt == 0) continue;
        if (errno == EEXIST) throw os::SysError(EEXIST, "create the guest's cgroup (left by an earlier run?)", d.dir);
        os::throw_errno("create cgroup", d.dir);
      }
      made.push_back(d);
      if (prepare) h.v2 ? prepare_v2_dir(d) : prepare_v1_dir(d);
    }
  } catch (...) {
    GuestCgroups(made).remove();
    throw;
  }
  return GuestCgroups(std::move(made));
}

// What a view daemon costs: memory, CPU, block I/O, tasks (and cgroup2, which has them all).
bool accounts_view(const Hierarchy& h) {
  if (h.v2) return true;
  for (const auto& c : split(h.options, ','))
    if (c == "memory" || c == "cpu" || c == "cpuacct" || c == "blkio" || c == "pids") return true;
  return false;
}

}  // namespace

GuestCgroups GuestCgroups::create(const std::string& guest) {
  return create_dirs(guest, [](const Hierarchy&) { return true; }, true);
}

GuestCgroups GuestCgroups::create_view(const std::string& guest) { return create_dirs(guest + ".view", accounts_view, false); }

std::string cgroup_of(pid_t pid, const CgroupDir& like) {
  for (const Hierarchy& h : hierarchies()) {
    if (h.mount != like.mount) continue;
    std::string path = own_cgroup(h, "/proc/" + std::to_string(pid) + "/cgroup");
    return h.mount + (path == "/" ? "" : path);
  }
  return "";
}

void GuestCgroups::add(pid_t pid) const {
  for (const auto& d : dirs_) write_cgroup_file(d.dir + "/cgroup.procs", std::to_string(pid));
}

std::vector<os::unique_fd> GuestCgroups::open_procs() const {
  std::vector<os::unique_fd> out;
  for (const auto& d : dirs_) {
    std::string path = d.dir + "/cgroup.procs";
    out.emplace_back(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!out.back()) os::throw_errno("open", path);
  }
  return out;
}

void join_cgroups(const std::vector<int>& procs) {
  for (int fd : procs)  // "0": the writing process (the file was opened by root on the host)
    if (::write(fd, "0", 1) != 1) os::throw_errno("join the guest's cgroup (cgroup.procs fd)", std::to_string(fd));
}

std::vector<pid_t> GuestCgroups::pids() const {
  std::vector<pid_t> out;
  for (const auto& d : dirs_) collect_pids(d.dir, out);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

void GuestCgroups::kill_all() const {
  for (const auto& d : dirs_)
    if (d.v2 && kill_v2(d)) return;
  for (pid_t p : pids()) ::kill(p, SIGKILL);
}

bool GuestCgroups::remove() const {
  bool all = true;
  for (const auto& d : dirs_) {
    all = remove_tree(d.dir) && all;
    // The shared vunify/ parent too once no guest is left in it (EBUSY/ENOTEMPTY otherwise),
    // but not where it is a cpuset: the host's first cpuset cgroup switches the kernel's cpuset
    // checks on (patching kernel text, ~6 ms of CPU on this VM) and its removal off again, so
    // each one-shot start paid that twice. An empty vunify/ stays in that hierarchy.
    std::string parent = d.dir.substr(0, d.dir.rfind('/'));
    if (!is_cpuset(d, parent)) ::rmdir(parent.c_str());
  }
  return all;
}

}  // namespace vunify::context
