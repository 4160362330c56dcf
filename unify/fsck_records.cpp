#include "unify/fsck_records.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <set>

#include "os/error.hpp"
#include "os/view_probe.hpp"
#include "os/walk.hpp"
#include "unify/templates.hpp"

namespace vunify::unify {

namespace {

// Non-dot entries of `dir` (under the pool) with their stat.
std::vector<std::pair<std::string, struct stat>> entries(Pool& pool, const std::string& dir) {
  std::vector<std::pair<std::string, struct stat>> out;
  os::unique_fd fd = os::open_dir(pool.path(dir));
  os::walk_tree(fd.get(), [&](const os::WalkEntry& e) {
    if (e.name[0] != '.') out.emplace_back(e.name, e.st);
    return false;
  });
  return out;
}

// Subdirectory names of guests/, from the directory listing alone (its type in getdents): a
// stat of a mount point would reach into a view, and hang while its daemon is stopped.
std::vector<std::string> mount_point_names(Pool& pool) {
  std::vector<std::string> out;
  os::unique_fd fd = os::open_dir(pool.path("guests"));
  DIR* d = ::fdopendir(::dup(fd.get()));
  if (!d) os::throw_errno("read directory", pool.path("guests"));
  while (struct dirent* e = ::readdir(d))
    if (e->d_name[0] != '.' && (e->d_type == DT_DIR || e->d_type == DT_UNKNOWN)) out.emplace_back(e->d_name);
  ::closedir(d);
  return out;
}

bool has_root_tree(Pool& pool, const std::string& name) {
  struct stat st {};
  return ::fstatat(pool.fd(), ("templates/" + name + "/root").c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

void check_template_trees(Pool& pool, bool repair, FsckReport& r, const std::set<std::string>& reported) {
  std::set<std::string> rows;
  for (const TemplateInfo& t : list_templates(pool))
    if (!reported.count(t.name)) rows.insert(t.name);
  std::set<std::string> dirs;
  for (const auto& [name, st] : entries(pool, "templates"))
    if (!reported.count(name)) dirs.insert(name);
  for (const std::string& n : rows) {
    if (has_root_tree(pool, n)) continue;
    r.problems.push_back(fmt::format("template '{}' is in the index but has no tree (templates/{}/root)", n, n));
    if (!repair) continue;
    pool.index().prepare("DELETE FROM templates WHERE name=?").bind(1, n).run();
    r.repaired.push_back(fmt::format("dropped template '{}' from the index (import it again to use it)", n));
  }
  for (const std::string& n : dirs) {
    if (rows.count(n) && has_root_tree(pool, n)) continue;
    bool tree = has_root_tree(pool, n);
    if (rows.count(n) == 0)
      r.problems.push_back(tree ? fmt::format("tree templates/{} is not a registered template", n)
                                : fmt::format("templates/{} is neither a registered template nor a template tree", n));
    if (!repair) continue;
    if (tree) {
      bool valid = true;
      try {
        Pool::check_name(n, "template");
      } catch (const os::UserError&) {
        valid = false;
      }
      if (valid) {
        pool.index().prepare("INSERT INTO templates(name, created, source) VALUES(?,?,?)").bind(1, n).bind(2, now_ns()).bind(3, "found by fsck").run();
        r.repaired.push_back(fmt::format("registered template '{}'", n));
      } else {
        r.problems.push_back(fmt::format("templates/{} has an invalid template name; rename or remove it by hand", n));
      }
      continue;
    }
    // No tree: what is left (a links list at most) cannot make a template, and its objects
    // are pinned by nothing else: removed (a dot-named quarantine would be taken for a dead
    // command's temp tree by recovery anyway).
    os::unique_fd tdir = os::open_dir(pool.path("templates"));
    os::remove_tree(tdir.get(), n);
    r.repaired.push_back(fmt::format("removed templates/{} (no tree, nothing to keep)", n));
  }
}

void check_guest_records(Pool& pool, bool repair, FsckReport& r, const std::set<std::string>& reported_batches) {
  std::set<std::string> guests;
  for (const std::string& n : pool.guest_names()) guests.insert(n);
  std::set<std::string> known = guests;  // records of these are not orphans
  known.insert(reported_batches.begin(), reported_batches.end());
  for (const auto& [name, st] : entries(pool, "etc")) {
    if (!S_ISREG(st.st_mode) || !name.ends_with(".toml")) continue;
    std::string guest = name.substr(0, name.size() - 5);
    if (known.count(guest)) continue;
    r.problems.push_back(fmt::format("etc/{} belongs to no guest", name));
    if (!repair) continue;
    std::string q = name + ".orphaned-" + name_stamp();
    if (::renameat(pool.fd(), ("etc/" + name).c_str(), pool.fd(), ("etc/" + q).c_str()) != 0)
      os::throw_errno("quarantine", pool.path("etc/" + name));
    r.repaired.push_back(fmt::format("moved etc/{} aside to etc/{}", name, q));
  }
  for (const std::string& name : mount_point_names(pool)) {
    if (known.count(name)) continue;
    if (pool.guest_mounted(name)) {
      r.problems.push_back(fmt::format("guests/{} is a mounted view of no guest; unmount it by hand (umount {})", name,
                                       pool.path("guests/" + name)));
      continue;
    }
    r.problems.push_back(fmt::format("mount point guests/{} belongs to no guest", name));
    if (repair && ::unlinkat(pool.fd(), ("guests/" + name).c_str(), AT_REMOVEDIR) == 0)
      r.repaired.push_back(fmt::format("removed the mount point guests/{}", name));
  }
  for (const std::string& name : guests) {
    struct stat st {};
    if (os::is_mount_point(pool.path("guests/" + name))) continue;  // a view (not to be stat'ed)
    if (::fstatat(pool.fd(), ("guests/" + name).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT) continue;
    r.problems.push_back(fmt::format("guest '{}' has no mount point guests/{}", name, name));
    if (repair && ::mkdirat(pool.fd(), ("guests/" + name).c_str(), 0755) == 0)
      r.repaired.push_back(fmt::format("created the mount point guests/{}", name));
  }
}

}  // namespace vunify::unify
