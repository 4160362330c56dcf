#include "unify/guests.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "os/crash_point.hpp"
#include "os/error.hpp"
#include "os/walk.hpp"
#include "unify/outside_pool.hpp"
#include "unify/recovery.hpp"

namespace vunify::unify {

using os::unique_fd;
using os::UserError;

std::vector<GuestInfo> list_guests(Pool& pool) {
  std::vector<GuestInfo> out;
  Stmt s = pool.index().prepare("SELECT name, created, ifnull(template, '') FROM guests ORDER BY name");
  while (s.step()) {
    GuestInfo g{s.col_text(0), s.col_int(1), s.col_text(2), false};
    os::ViewStatus v = pool.view(g.name);
    g.mounted = v.state == os::ViewState::Live || v.state == os::ViewState::Stopped;
    g.stale = v.state == os::ViewState::Dead;
    g.stopped = v.state == os::ViewState::Stopped;
    g.daemon = v.daemon;
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
  std::string tmp = move ? "" : fmt::format(".add-{}-{}", name, ::getpid());
  if (move) {
    if (st.st_dev != pool.dev())
      throw UserError(fmt::format("--move needs {} on the pool's filesystem ({}); add it without --move to copy it", from,
                                  pool.root()));
  } else {
    try {
      stats = os::copy_tree(src.get(), pool.backing_fd(), tmp, progress);
      if (::syncfs(pool.fd()) != 0) os::throw_errno("syncfs", pool.root());
    } catch (...) {
      os::remove_tree(pool.backing_fd(), tmp);
      throw;
    }
  }
  // A fresh tree has no recorded hard-link groups: never adopt a stale record of the name.
  if (::unlinkat(pool.fd(), ("links/" + name).c_str(), 0) != 0 && errno != ENOENT)
    os::throw_errno("remove stale", pool.path("links/" + name));
  // Registered first, renamed after (see PendingMove): a crash in between is finished by
  // recovery, or undone if the tree never came (a --move).
  PendingMove placing{PendingMove::Kind::GuestAdd, name, tmp, name};
  {
    Transaction tx(pool.index());
    register_guest(pool, name, "");
    write_move_journal(pool.index(), placing);
    tx.commit();
  }
  os::crash_point("guest.add");
  if (move && ::renameat2(AT_FDCWD, from.c_str(), pool.backing_fd(), name.c_str(), RENAME_NOREPLACE) != 0) {
    int err = errno;
    finish_move(pool, placing);  // the tree is not in place: drops the row again
    errno = err;
    os::throw_errno("move", from);
  }
  finish_move(pool, placing);
  return stats;
}

void remove_guest(Pool& pool, const std::string& name) {
  Pool::check_name(name, "guest");
  if (!pool.has_guest(name)) throw UserError(fmt::format("no guest named '{}'", name));
  pool.refuse_if_mounted(name);
  // Dropped from the index first, removed after: recovery finishes a removal a crash cut short.
  PendingMove removing{PendingMove::Kind::GuestRm, name, name, fmt::format(".rm-{}-{}", name, ::getpid())};
  {
    Transaction tx(pool.index());
    for (const char* sql : {"DELETE FROM guests WHERE name=?", "DELETE FROM files WHERE guest=?", "DELETE FROM pending_dirs WHERE guest=?"})
      pool.index().prepare(sql).bind(1, name).run();
    write_move_journal(pool.index(), removing);
    tx.commit();
  }
  os::crash_point("guest.rm");
  finish_move(pool, removing);
}

}  // namespace vunify::unify
