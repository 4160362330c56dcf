#include "unify/guests.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "os/error.hpp"
#include "os/walk.hpp"
#include "unify/outside_pool.hpp"

namespace vunify::unify {

using os::unique_fd;
using os::UserError;

std::vector<GuestInfo> list_guests(Pool& pool) {
  std::vector<GuestInfo> out;
  Stmt s = pool.index().prepare("SELECT name, created, ifnull(template, '') FROM guests ORDER BY name");
  while (s.step()) {
    GuestInfo g{s.col_text(0), s.col_int(1), s.col_text(2), false};
    g.mounted = pool.guest_mounted(g.name);
    g.stale = !g.mounted && pool.mount_stale(g.name);
    out.push_back(std::move(g));
  }
  return out;
}

void register_guest(Pool& pool, const std::string& name, const std::string& template_name) {
  std::string mnt = pool.path("guests/" + name);
  if (::mkdir(mnt.c_str(), 0755) != 0 && errno != EEXIST) os::throw_errno("create mount point", mnt);
  Stmt s = pool.index().prepare("INSERT INTO guests(name, created, template) VALUES(?,?,?)");
  s.bind(1, name).bind(2, now_ns());
  if (template_name.empty()) s.bind_null(3);
  else s.bind(3, template_name);
  s.run();
}

namespace {

void check_new_guest(Pool& pool, const std::string& name) {
  Pool::check_name(name, "guest");
  if (pool.has_guest(name)) throw UserError(fmt::format("guest '{}' already exists", name));
  struct stat st {};
  if (::fstatat(pool.backing_fd(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
    throw UserError(fmt::format("{} already exists but is not a registered guest; remove it or run 'vunify fsck --repair'",
                                pool.path("backing/" + name)));
}

}  // namespace

os::TreeCopyStats add_guest(Pool& pool, const std::string& name, const std::string& from, bool move,
                            const os::Progress& progress) {
  check_new_guest(pool, name);
  check_outside_pool(pool, from, "source");
  int sfd = ::open(from.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (sfd < 0) {
    if (errno == ENOTDIR) throw UserError(fmt::format("{} is not a directory", from));
    os::throw_errno("open source tree", from);
  }
  unique_fd src(sfd);
  struct stat st {};
  if (::fstat(src.get(), &st) != 0) os::throw_errno("stat", from);
  os::TreeCopyStats stats;
  if (move) {
    if (st.st_dev != pool.dev())
      throw UserError(fmt::format("--move needs {} on the pool's filesystem ({}); add it without --move to copy it", from,
                                  pool.root()));
    if (::renameat(AT_FDCWD, from.c_str(), pool.backing_fd(), name.c_str()) != 0) os::throw_errno("move", from);
  } else {
    std::string tmp = fmt::format(".add-{}-{}", name, ::getpid());
    try {
      stats = os::copy_tree(src.get(), pool.backing_fd(), tmp, progress);
      if (::syncfs(pool.fd()) != 0) os::throw_errno("syncfs", pool.root());
      if (::renameat2(pool.backing_fd(), tmp.c_str(), pool.backing_fd(), name.c_str(), RENAME_NOREPLACE) != 0)
        os::throw_errno("rename into place", pool.path("backing/" + name));
    } catch (...) {
      os::remove_tree(pool.backing_fd(), tmp);
      throw;
    }
  }
  // A fresh tree has no recorded hard-link groups: never adopt a stale record of the name.
  if (::unlinkat(pool.fd(), ("links/" + name).c_str(), 0) != 0 && errno != ENOENT)
    os::throw_errno("remove stale", pool.path("links/" + name));
  Transaction tx(pool.index());
  register_guest(pool, name, "");
  tx.commit();
  return stats;
}

void remove_guest(Pool& pool, const std::string& name) {
  Pool::check_name(name, "guest");
  if (!pool.has_guest(name)) throw UserError(fmt::format("no guest named '{}'", name));
  if (pool.guest_mounted(name))
    throw UserError(fmt::format("guest '{}' is mounted; unmount it first ('vunify umount {}')", name, name));
  std::string doomed = fmt::format(".rm-{}-{}", name, ::getpid());
  if (::renameat(pool.backing_fd(), name.c_str(), pool.backing_fd(), doomed.c_str()) != 0 && errno != ENOENT)
    os::throw_errno("remove", pool.path("backing/" + name));
  Transaction tx(pool.index());
  for (const char* sql : {"DELETE FROM guests WHERE name=?", "DELETE FROM files WHERE guest=?", "DELETE FROM pending_dirs WHERE guest=?"})
    pool.index().prepare(sql).bind(1, name).run();
  tx.commit();
  os::remove_tree(pool.backing_fd(), doomed);
  ::unlinkat(pool.fd(), ("etc/" + name + ".toml").c_str(), 0);
  ::unlinkat(pool.fd(), ("links/" + name).c_str(), 0);
  ::unlinkat(pool.fd(), ("guests/" + name).c_str(), AT_REMOVEDIR);
}

}  // namespace vunify::unify
