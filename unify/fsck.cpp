#include "unify/fsck.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <optional>
#include <set>

#include "os/error.hpp"
#include "os/walk.hpp"
#include "unify/fsck_records.hpp"
#include "unify/guests.hpp"
#include "unify/index_rebuild.hpp"
#include "unify/link_groups.hpp"
#include "unify/object_set.hpp"
#include "unify/recovery.hpp"
#include "unify/store.hpp"
#include "unify/templates.hpp"

namespace vunify::unify {

namespace {

void check_guests(Pool& pool, bool repair, FsckReport& r, const std::set<std::string>& reported) {
  std::set<std::string> rows;
  for (const std::string& n : pool.guest_names())
    if (!reported.count(n)) rows.insert(n);
  std::set<std::string> dirs;
  os::walk_tree(pool.backing_fd(), [&](const os::WalkEntry& e) {
    if (S_ISDIR(e.st.st_mode) && e.name[0] != '.') dirs.insert(e.name);
    return false;
  });
  for (const std::string& n : rows) {
    if (dirs.count(n)) continue;
    r.problems.push_back(fmt::format("guest '{}' is in the index but has no tree", n));
    if (repair) {
      pool.index().prepare("DELETE FROM guests WHERE name=?").bind(1, n).run();
      pool.index().prepare("DELETE FROM files WHERE guest=?").bind(1, n).run();
      r.repaired.push_back(fmt::format("dropped guest '{}' from the index", n));
    }
  }
  std::set<std::string> batch;  // guests of an interrupted create: reported as that (leftovers)
  for (const PendingBatch& b : pending_batches(pool.index())) batch.insert(b.names.begin(), b.names.end());
  for (const std::string& n : dirs) {
    if (rows.count(n) || batch.count(n) || reported.count(n)) continue;
    r.problems.push_back(fmt::format("tree backing/{} is not a registered guest", n));
    if (repair) {
      try {
        Pool::check_name(n, "guest");
        register_guest(pool, n, "");
        r.repaired.push_back(fmt::format("registered guest '{}'", n));
      } catch (const os::UserError&) {
        r.problems.push_back(fmt::format("backing/{} has an invalid guest name; rename or remove it by hand", n));
      }
    }
  }
}

void check_objects(Pool& pool, bool repair, FsckReport& r) {
  Store store(pool);
  std::vector<int64_t> stale;
  for (const ObjectRow& obj : store.load()) {
    struct stat st {};
    if (::fstatat(pool.objects_fd(), obj.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      r.problems.push_back(fmt::format("object {} is in the index but missing from the store", obj.name));
      stale.push_back(obj.id);
      continue;
    }
    if (st.st_ino != obj.ino) {
      r.problems.push_back(fmt::format("object {} has another inode than the index says", obj.name));
      stale.push_back(obj.id);
      continue;
    }
    if (st.st_mode != obj.key.mode || st.st_uid != obj.key.uid || st.st_gid != obj.key.gid || st.st_size != obj.key.size ||
        to_ns(st.st_mtim) != obj.key.mtime_ns)
      r.problems.push_back(fmt::format("object {} changed metadata (mode/owner/size/mtime): a store object was modified "
                                       "outside vunify; run 'vunify verify'",
                                       obj.name));
  }
  if (repair && !stale.empty()) {
    for (int64_t id : stale) pool.index().prepare("DELETE FROM objects WHERE id=?").bind(1, id).run();
    r.repaired.push_back(fmt::format("dropped {} stale object rows (rehashed below if still on disk)", stale.size()));
  }
  if (repair) {
    size_t orphans = store.reconcile_orphans();
    if (orphans) r.repaired.push_back(fmt::format("reconciled {} store entries missing from the index", orphans));
  }  // without --repair, orphan store entries are summed up with the other leftovers
}

void check_temp_entries(Pool& pool, bool repair, FsckReport& r) {
  for (const std::string& name : pool.guest_names()) {
    int fd = os::try_open_beneath(pool.backing_fd(), name, O_RDONLY | O_DIRECTORY);
    if (fd < 0) continue;
    os::unique_fd root(fd);
    os::walk_tree(root.get(), [&](const os::WalkEntry& e) {
      if (!std::string_view(e.name).starts_with(kTempPrefix)) return true;
      r.problems.push_back(fmt::format("leftover temp entry {}:{}", name, e.rel));
      if (repair && ::unlinkat(e.dirfd, e.name, 0) == 0) r.repaired.push_back(fmt::format("removed {}:{}", name, e.rel));
      return false;
    });
  }
}

// Recorded hard-link groups against the trees: a group caught halfway, or one whose members
// no longer share one store object, is a problem; --repair resolves it.
void check_link_groups(Pool& pool, bool repair, FsckReport& r) {
  ObjectSet objects = ObjectSet::load(pool);
  os::unique_fd dir = open_links_dir(pool);
  for (const std::string& name : pool.guest_names()) {
    if (pool.guest_mounted(name)) continue;  // its daemon owns the record while it runs
    GuestLinks links;
    try {
      links = read_links(dir.get(), name);
    } catch (const os::UserError& e) {
      r.problems.push_back(e.what());
      if (repair && ::unlinkat(dir.get(), name.c_str(), 0) == 0) r.repaired.push_back(fmt::format("removed links/{}", name));
      continue;
    }
    for (const LinkGroup& g : links) {
      std::vector<ResolvedMember> res = resolve_members(pool.fd(), g);
      std::optional<GroupObject> obj = group_object(res, objects);
      size_t on_object = obj ? obj->links : 0;
      if (res.size() >= 2 && on_object == res.size()) continue;  // every member links to one object
      r.problems.push_back(fmt::format("guest '{}': hard-link group {:016x} is not one shared file ({} members, {} on one "
                                       "store object)",
                                       name, g.id, res.size(), on_object));
    }
    if (repair && !links.empty()) {
      LinkRepair lr = resolve_links(pool, name, objects);
      if (lr.dropped || lr.relinked)
        r.repaired.push_back(fmt::format("guest '{}': {} hard-link groups dropped, {} paths relinked", name, lr.dropped, lr.relinked));
    }
  }
}

// Every regular file of a template must be a store object: any other inode may be a guest's
// private file (a guest writing it would change the template). --repair replaces each by a
// link to an object with the file's current bytes and metadata.
void check_templates(Pool& pool, bool repair, FsckReport& r, const std::set<std::string>& reported) {
  ObjectSet objects = ObjectSet::load(pool);
  std::optional<ObjectSink> sink;
  for (const TemplateInfo& t : list_templates(pool)) {
    if (reported.count(t.name)) continue;
    os::unique_fd root;
    try {
      root = open_template_root(pool, t.name);
    } catch (const std::exception& e) {
      r.problems.push_back(fmt::format("template '{}': {}", t.name, e.what()));
      continue;
    }
    os::walk_tree(root.get(), [&](const os::WalkEntry& e) {
      if (!S_ISREG(e.st.st_mode) || objects.contains(e.st)) return true;
      std::string path = fmt::format("templates/{}/root/{}", t.name, e.rel);
      r.problems.push_back(fmt::format("template '{}': {} is not a store object (another inode, e.g. a guest's, is "
                                       "linked into the template)",
                                       t.name, e.rel));
      if (repair) {
        if (!sink) sink.emplace(pool);
        relink_template_file(pool, *sink, e.dirfd, e.name, pool.path(path));
        r.repaired.push_back(fmt::format("template '{}': {} is a store object again", t.name, e.rel));
      }
      return true;
    });
  }
}

// A Repair open replaced a missing or damaged index by an empty one: fill it from the trees.
void rebuild_replaced_index(Pool& pool, FsckReport& r) {
  if (pool.index_replaced().empty()) return;
  r.problems.push_back(pool.index_replaced());
  if (!pool.index_set_aside().empty()) r.repaired.push_back(fmt::format("moved the damaged index to {}", pool.index_set_aside()));
  RebuildReport rb = rebuild_index(pool);
  r.repaired.push_back(fmt::format("rebuilt the index from the trees: {} objects, {} guests, {} templates", rb.objects, rb.guests,
                                   rb.templates));
  for (const std::string& n : rb.notes) r.problems.push_back(n);
}

}  // namespace

FsckReport fsck(Pool& pool, bool repair, const os::Progress& progress) {
  FsckReport r;
  r.recovered = pool.recovered();
  rebuild_replaced_index(pool, r);
  std::set<std::string> batch_names, moving_templates;  // guests and templates a leftovers line covers
  if (!repair) {  // a plain fsck reads only: what recovery would put right is reported, briefly
    Leftovers left = find_leftovers(pool);
    for (const PendingBatch& b : left.batches) batch_names.insert(b.names.begin(), b.names.end());
    for (const PendingMove& m : left.moves)
      (m.kind == PendingMove::Kind::TemplateAdd || m.kind == PendingMove::Kind::TemplateRm ? moving_templates : batch_names)
          .insert(m.name);
    for (std::string& line : describe(left)) r.problems.push_back(std::move(line));
  }
  auto phase = [&](const char* what) {
    if (progress) progress(fmt::format("fsck: {}", what));
  };
  phase("guests against their trees");
  check_guests(pool, repair, r, batch_names);
  phase("store objects against the index");
  check_objects(pool, repair, r);
  phase("guest trees for leftover temp entries");
  check_temp_entries(pool, repair, r);
  phase("hard-link groups");
  check_link_groups(pool, repair, r);
  phase("templates and guest records");
  check_template_trees(pool, repair, r, moving_templates);
  check_templates(pool, repair, r, moving_templates);
  check_guest_records(pool, repair, r, batch_names);
  if (repair) pool.index().exec("DELETE FROM files WHERE guest NOT IN (SELECT name FROM guests)");
  return r;
}

}  // namespace vunify::unify
