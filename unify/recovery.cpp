#include "unify/recovery.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <unordered_set>

#include "os/error.hpp"
#include "os/walk.hpp"
#include "unify/link_groups.hpp"
#include "unify/store.hpp"
#include "unify/templates.hpp"

namespace vunify::unify {

using os::throw_errno;
using os::unique_fd;

namespace {

constexpr size_t kExamples = 3;

// Dot-named entries of a directory: temp trees of dead processes (guest and template names
// cannot start with a dot). All entries for store/tmp.
std::vector<std::string> temp_entries(Pool& pool, const std::string& sub, bool all) {
  std::vector<std::string> out;
  unique_fd dir = os::open_dir(pool.path(sub));
  os::walk_tree(dir.get(), [&](const os::WalkEntry& e) {
    if (all || e.name[0] == '.') out.push_back(e.name);
    return false;
  });
  return out;
}

std::vector<std::string> all_temp_trees(Pool& pool) {
  std::vector<std::string> out;
  for (auto [sub, all] : {std::pair{"store/tmp", true}, std::pair{"backing", false}, std::pair{"templates", false}})
    for (const std::string& n : temp_entries(pool, sub, all)) out.push_back(std::string(sub) + "/" + n);
  return out;
}

void remove_temp_tree(Pool& pool, const std::string& rel) {
  auto slash = rel.rfind('/');
  std::string parent = rel.substr(0, slash), name = rel.substr(slash + 1);
  unmount_beneath(pool.path(rel));  // a debootstrap killed with proc/sys mounted in its tree
  unique_fd dir = os::open_dir(pool.path(parent));
  os::remove_tree(dir.get(), name);
}

std::vector<std::string> running_ops(Index& index) {
  std::vector<std::string> ops;
  Stmt s = index.prepare("SELECT substr(key, 9) FROM meta WHERE key LIKE 'running:%' ORDER BY key");
  while (s.step())
    if (s.col_text(0) != kBatchOp) ops.push_back(s.col_text(0));
  Stmt u = index.prepare("SELECT 1 FROM meta WHERE key='unify_running' UNION ALL SELECT 1 FROM pending_dirs LIMIT 1");
  if (u.step()) ops.push_back("unify");
  return ops;
}

std::vector<std::string> orphan_link_records(Pool& pool) {
  std::vector<std::string> out;
  unique_fd dir = open_links_dir(pool);
  os::walk_tree(dir.get(), [&](const os::WalkEntry& e) {
    if (e.name[0] != '.' && !pool.has_guest(e.name)) out.push_back(e.name);
    return false;
  });
  return out;
}

// Undoes a guest batch that never reached its index commit: nothing of it was registered.
void roll_back(Pool& pool, const PendingBatch& b) {
  for (const std::string& name : b.names) {
    if (pool.has_guest(name)) continue;  // not ours (the journal is dropped in the commit)
    std::string doomed = ".create-" + name + "-" + b.tmp_suffix;
    if (::renameat(pool.backing_fd(), name.c_str(), pool.backing_fd(), doomed.c_str()) != 0 && errno != ENOENT)
      throw_errno("roll back", pool.path("backing/" + name));
    os::remove_tree(pool.backing_fd(), doomed);
    for (const std::string& f : {"links/" + name, "etc/" + name + ".toml", "etc/." + name + ".toml.tmp"})
      if (::unlinkat(pool.fd(), f.c_str(), 0) != 0 && errno != ENOENT) throw_errno("roll back", pool.path(f));
    ::unlinkat(pool.fd(), ("guests/" + name).c_str(), AT_REMOVEDIR);  // the empty mount point
  }
}

constexpr const char* kMovePrefix = "move:";

const char* kind_name(PendingMove::Kind k) {
  switch (k) {
    case PendingMove::Kind::TemplateAdd: return "template-add";
    case PendingMove::Kind::TemplateRm: return "template-rm";
    case PendingMove::Kind::GuestAdd: return "guest-add";
    case PendingMove::Kind::GuestRm: return "guest-rm";
  }
  return "";
}

bool is_template(const PendingMove& m) {
  return m.kind == PendingMove::Kind::TemplateAdd || m.kind == PendingMove::Kind::TemplateRm;
}
bool is_add(const PendingMove& m) { return m.kind == PendingMove::Kind::TemplateAdd || m.kind == PendingMove::Kind::GuestAdd; }

std::string move_key(const PendingMove& m) { return std::string(kMovePrefix) + kind_name(m.kind) + ":" + m.name; }

// The dot-named end of a move (its temp tree), "" if none: not a dead command's leftover.
std::string move_temp(const PendingMove& m) { return is_add(m) ? m.from : m.to; }

std::string move_dir(const PendingMove& m) { return is_template(m) ? "templates" : "backing"; }

bool present(int dirfd, const std::string& name, const std::string& where) {
  struct stat st {};
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return true;
  if (errno != ENOENT) throw_errno("stat", where);
  return false;
}

// The records a guest has outside backing/ (a removal takes them along).
void remove_guest_records(Pool& pool, const std::string& name) {
  for (const std::string& f : {"links/" + name, "etc/" + name + ".toml"})
    if (::unlinkat(pool.fd(), f.c_str(), 0) != 0 && errno != ENOENT) throw_errno("remove", pool.path(f));
  ::unlinkat(pool.fd(), ("guests/" + name).c_str(), AT_REMOVEDIR);  // the empty mount point
}

// An added tree that is not in place: the row committed for it goes again.
void drop_added_row(Pool& pool, const PendingMove& m) {
  Transaction tx(pool.index());
  if (is_template(m)) {
    pool.index().prepare("DELETE FROM templates WHERE name=?").bind(1, m.name).run();
  } else {
    for (const char* sql : {"DELETE FROM guests WHERE name=?", "DELETE FROM files WHERE guest=?"})
      pool.index().prepare(sql).bind(1, m.name).run();
  }
  clear_move_journal(pool.index(), m);
  tx.commit();
  if (!is_template(m)) ::unlinkat(pool.fd(), ("guests/" + m.name).c_str(), AT_REMOVEDIR);
}

}  // namespace

void write_move_journal(Index& index, const PendingMove& m) {
  index.prepare("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)").bind(1, move_key(m)).bind(2, m.from + "\n" + m.to).run();
}

void clear_move_journal(Index& index, const PendingMove& m) {
  index.prepare("DELETE FROM meta WHERE key=?").bind(1, move_key(m)).run();
}

std::vector<PendingMove> pending_moves(Index& index) {
  std::vector<PendingMove> out;
  Stmt s = index.prepare("SELECT key, value FROM meta WHERE key LIKE 'move:%' ORDER BY key");
  while (s.step()) {
    std::string key = s.col_text(0), value = s.col_text(1);
    auto colon = key.find(':', 5);
    auto nl = value.find('\n');
    if (colon == std::string::npos || nl == std::string::npos) continue;
    std::string kind = key.substr(5, colon - 5);
    PendingMove m{PendingMove::Kind::TemplateAdd, key.substr(colon + 1), value.substr(0, nl), value.substr(nl + 1)};
    bool known = false;
    for (auto k : {PendingMove::Kind::TemplateAdd, PendingMove::Kind::TemplateRm, PendingMove::Kind::GuestAdd,
                   PendingMove::Kind::GuestRm})
      if (kind == kind_name(k)) {
        m.kind = k;
        known = true;
      }
    if (known) out.push_back(std::move(m));
  }
  return out;
}

void finish_move(Pool& pool, const PendingMove& m) {
  std::string dir = move_dir(m);
  unique_fd d = os::open_dir(pool.path(dir));
  auto where = [&](const std::string& n) { return pool.path(dir + "/" + n); };
  if (!m.from.empty() && present(d.get(), m.from, where(m.from)) && !present(d.get(), m.to, where(m.to)) &&
      ::renameat2(d.get(), m.from.c_str(), d.get(), m.to.c_str(), RENAME_NOREPLACE) != 0)
    throw_errno("rename " + where(m.from) + " to", where(m.to));
  if (is_add(m)) {
    if (!present(d.get(), m.to, where(m.to))) return drop_added_row(pool, m);
  } else {
    if (present(d.get(), m.to, where(m.to))) {
      unmount_beneath(where(m.to));
      os::remove_tree(d.get(), m.to);
    }
    if (!is_template(m)) remove_guest_records(pool, m.name);
  }
  clear_move_journal(pool.index(), m);
}

std::string running_key(const std::string& op) { return "running:" + op; }

void clear_running(Index& index, const std::string& op) {
  index.prepare("DELETE FROM meta WHERE key=?").bind(1, running_key(op)).run();
}

void write_batch_journal(Index& index, const PendingBatch& batch) {
  std::string value = batch.tmp_suffix;
  for (const std::string& n : batch.names) value += "\n" + n;
  index.prepare("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)").bind(1, running_key(kBatchOp)).bind(2, value).run();
}

std::vector<PendingBatch> pending_batches(Index& index) {
  std::vector<PendingBatch> out;
  Stmt s = index.prepare("SELECT value FROM meta WHERE key=?");
  s.bind(1, running_key(kBatchOp));
  while (s.step()) {
    std::string v = s.col_text(0);
    PendingBatch b;
    for (size_t pos = 0, i = 0; pos <= v.size(); ++i) {
      size_t end = v.find('\n', pos);
      if (end == std::string::npos) end = v.size();
      (i == 0 ? b.tmp_suffix : b.names.emplace_back()) = v.substr(pos, end - pos);
      pos = end + 1;
    }
    out.push_back(std::move(b));
  }
  return out;
}

Leftovers find_leftovers(Pool& pool) {
  Leftovers l;
  l.running = running_ops(pool.index());
  l.batches = pending_batches(pool.index());
  l.moves = pending_moves(pool.index());
  std::set<std::string> in_batch;
  for (const PendingMove& m : l.moves)
    if (!move_temp(m).empty()) in_batch.insert(move_dir(m) + "/" + move_temp(m));  // the batch's own temp trees and records are part of its line
  for (const PendingBatch& b : l.batches)
    for (const std::string& n : b.names) {
      in_batch.insert("backing/.create-" + n + "-" + b.tmp_suffix);
      in_batch.insert(n);
    }
  for (std::string& t : all_temp_trees(pool))
    if (!in_batch.count(t)) l.temp_trees.push_back(std::move(t));
  for (std::string& n : orphan_link_records(pool))
    if (!in_batch.count(n)) l.orphan_links.push_back(std::move(n));
  std::unordered_set<std::string> known;
  for (const ObjectRow& obj : Store(pool).load()) known.insert(obj.name);
  os::walk_tree(pool.objects_fd(), [&](const os::WalkEntry& e) {
    if (S_ISDIR(e.st.st_mode)) return true;
    if (known.count(e.rel)) return false;
    if (l.orphan_objects++ < kExamples) l.orphan_examples.push_back(e.rel);
    return false;
  });
  return l;
}

std::vector<std::string> describe(const Leftovers& l) {
  constexpr const char* kFix = "the next command that changes the pool (or fsck --repair) puts it right";
  std::vector<std::string> out;
  for (const std::string& op : l.running) out.push_back(fmt::format("an interrupted {} run: {}", op, kFix));
  for (const PendingBatch& b : l.batches)
    out.push_back(fmt::format("an interrupted guest create of {} guest(s) ({}{}): none of them is registered; {} (rolls it back)",
                              b.names.size(), b.names.empty() ? "" : b.names.front(),
                              b.names.size() > 1 ? ".." + b.names.back() : "", kFix));
  for (const PendingMove& m : l.moves) {
    bool tmpl = is_template(m);
    std::string what = is_add(m) ? "put in place" : "removed";
    std::string cmd = is_add(m) ? (tmpl ? "template import, from-guest or build" : "guest add") : (tmpl ? "template rm" : "guest rm");
    out.push_back(fmt::format("{} '{}' was being {} by an interrupted {} ({}/{} -> {}/{}); {} (finishes it)",
                              tmpl ? "template" : "guest", m.name, what, cmd, move_dir(m), m.from.empty() ? "(outside)" : m.from,
                              move_dir(m), m.to, kFix));
  }
  for (const std::string& t : l.temp_trees) out.push_back(fmt::format("leftover of an interrupted run: {}; {}", t, kFix));
  for (const std::string& n : l.orphan_links) out.push_back(fmt::format("links/{} belongs to no guest; {}", n, kFix));
  if (l.orphan_objects) {
    std::string ex;
    for (const std::string& e : l.orphan_examples) ex += (ex.empty() ? "" : ", ") + e;
    out.push_back(fmt::format("{} store entries are not in the index (e.g. {}{}); {}", l.orphan_objects, ex,
                              l.orphan_objects > l.orphan_examples.size() ? ", ..." : "", kFix));
  }
  return out;
}

size_t reconcile_store(Pool& pool) {
  Store store(pool);
  std::vector<int64_t> stale;
  for (const ObjectRow& obj : store.load()) {
    struct stat st {};
    bool gone = ::fstatat(pool.objects_fd(), obj.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0;
    if (gone && errno != ENOENT) throw_errno("stat store object", obj.name);
    if (gone || st.st_ino != obj.ino) stale.push_back(obj.id);
  }
  if (!stale.empty()) {
    Transaction tx(pool.index());
    Stmt del = pool.index().prepare("DELETE FROM objects WHERE id=?");
    for (int64_t id : stale) del.bind(1, id).run();
    tx.commit();
  }
  return stale.size() + store.reconcile_orphans();
}

size_t recover_pool(Pool& pool) {
  size_t fixed = 0;
  std::vector<PendingMove> moves = pending_moves(pool.index());  // before the temp trees: some are theirs
  for (const PendingMove& m : moves) finish_move(pool, m);
  std::vector<PendingBatch> batches = pending_batches(pool.index());
  for (const PendingBatch& b : batches) roll_back(pool, b);
  std::vector<std::string> temps = all_temp_trees(pool);
  for (const std::string& t : temps) remove_temp_tree(pool, t);
  std::vector<std::string> ops = running_ops(pool.index());
  bool store_touched = !ops.empty() || std::any_of(temps.begin(), temps.end(), [](const std::string& t) {
    return t.starts_with("templates/") || t.starts_with("store/");
  });
  if (store_touched) {
    fixed += reconcile_store(pool);
    pool.resolve_all_links();  // hard-link groups caught halfway
  }
  size_t dirs = pool.restore_pending_dirs();
  std::vector<std::string> orphan_links = orphan_link_records(pool);
  if (!orphan_links.empty()) {
    unique_fd links = open_links_dir(pool);
    for (const std::string& name : orphan_links) os::remove_tree(links.get(), name);  // a record, or a stray directory
  }
  fixed += orphan_links.size();
  pool.index().exec("DELETE FROM meta WHERE key LIKE 'running:%' OR key='unify_running'");
  return fixed + moves.size() + batches.size() + temps.size() + dirs + ops.size();
}

}  // namespace vunify::unify
