#include "unify/index_rebuild.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <cerrno>
#include <toml++/toml.h>

#include "os/error.hpp"
#include "os/walk.hpp"
#include "unify/store.hpp"

namespace vunify::unify {

namespace {

struct GuestConfig {
  std::string template_name;
  int64_t created_ns = 0;  // 0: unknown
};

// Template and creation time from etc/NAME.toml (written by guest create/clone), if readable.
GuestConfig read_guest_config(Pool& pool, const std::string& name) {
  GuestConfig c;
  toml::table cfg;
  try {
    cfg = toml::parse_file(pool.path("etc/" + name + ".toml"));
  } catch (const std::exception&) {
    return c;  // none (guest add), or unreadable: the guest is kept without
  }
  c.template_name = cfg["template"].value_or(std::string());
  if (auto dt = cfg["created"].value<toml::date_time>()) {
    struct tm tm {};
    tm.tm_year = dt->date.year - 1900;
    tm.tm_mon = dt->date.month - 1;
    tm.tm_mday = dt->date.day;
    tm.tm_hour = dt->time.hour;
    tm.tm_min = dt->time.minute;
    tm.tm_sec = dt->time.second;
    int64_t offset_s = dt->offset ? int64_t{dt->offset->minutes} * 60 : 0;
    c.created_ns = (static_cast<int64_t>(::timegm(&tm)) - offset_s) * 1000000000LL;
  }
  return c;
}

// Non-dot directory entries of `dirfd` that are directories with a valid name.
std::vector<std::pair<std::string, struct stat>> named_dirs(int dirfd, std::string_view what, std::vector<std::string>& notes,
                                                            const std::string& where) {
  std::vector<std::pair<std::string, struct stat>> out;
  os::walk_tree(dirfd, [&](const os::WalkEntry& e) {
    if (e.name[0] == '.' || !S_ISDIR(e.st.st_mode)) return false;
    try {
      Pool::check_name(e.name, what);
      out.emplace_back(e.name, e.st);
    } catch (const os::UserError&) {
      notes.push_back(fmt::format("{}/{}: not a valid {} name, left out of the index; rename or remove it by hand", where,
                                  e.name, what));
    }
    return false;
  });
  return out;
}

void rebuild_guests(Pool& pool, RebuildReport& r) {
  Stmt ins = pool.index().prepare("INSERT INTO guests(name, created, template) VALUES(?,?,?)");
  for (const auto& [name, st] : named_dirs(pool.backing_fd(), "guest", r.notes, "backing")) {
    GuestConfig cfg = read_guest_config(pool, name);
    ins.bind(1, name).bind(2, cfg.created_ns ? cfg.created_ns : now_ns());
    if (cfg.template_name.empty()) ins.bind_null(3);
    else ins.bind(3, cfg.template_name);
    ins.run();
    std::string mnt = pool.path("guests/" + name);
    if (::mkdir(mnt.c_str(), 0755) != 0 && errno != EEXIST) os::throw_errno("create mount point", mnt);
    ++r.guests;
  }
}

void rebuild_templates(Pool& pool, RebuildReport& r) {
  os::unique_fd dir = os::open_dir(pool.path("templates"));
  Stmt ins = pool.index().prepare("INSERT INTO templates(name, created, source) VALUES(?,?,?)");
  for (const auto& [name, st] : named_dirs(dir.get(), "template", r.notes, "templates")) {
    struct stat root {};
    if (::fstatat(dir.get(), (name + "/root").c_str(), &root, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(root.st_mode))
      continue;  // no tree: fsck's template check reports it
    ins.bind(1, name).bind(2, to_ns(st.st_mtim)).bind(3, "rebuilt by fsck --repair").run();
    ++r.templates;
  }
}

}  // namespace

RebuildReport rebuild_index(Pool& pool) {
  RebuildReport r;
  std::vector<std::string> skipped;
  r.objects = Store(pool).record_all(skipped);
  for (const std::string& s : skipped)
    r.notes.push_back(fmt::format("store/objects/{} is not a regular file; left out of the index (remove it by hand)", s));
  Transaction tx(pool.index());
  rebuild_guests(pool, r);
  rebuild_templates(pool, r);
  tx.commit();
  return r;
}

}  // namespace vunify::unify
