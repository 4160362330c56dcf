#include "unify/stats.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <unordered_map>
#include <unordered_set>

#include "os/walk.hpp"
#include "unify/object_set.hpp"
#include "unify/store.hpp"
#include "unify/templates.hpp"

namespace vunify::unify {

namespace {

uint64_t blocks(const struct stat& st) { return static_cast<uint64_t>(st.st_blocks) * 512; }

// Walks one guest (or template) tree; fills everything but shared_bytes, and collects the
// objects it uses.
GuestStats tree_stats(int root_fd, const std::string& name, const ObjectSet& objects, std::unordered_set<ino_t>& used) {
  GuestStats g;
  g.name = name;
  struct stat rst {};
  if (::fstat(root_fd, &rst) == 0) g.private_bytes += blocks(rst);
  std::unordered_set<ino_t> seen;  // guest-internal hard links count once
  os::walk_tree(root_fd, [&](const os::WalkEntry& e) {
    const struct stat& st = e.st;
    if (!S_ISREG(st.st_mode)) {
      g.private_bytes += blocks(st);
      g.standalone_bytes += blocks(st);
      return true;
    }
    ++g.files;
    g.apparent_bytes += static_cast<uint64_t>(st.st_size);
    if (objects.contains(st)) {
      ++g.shared_files;
      if (used.insert(st.st_ino).second) g.standalone_bytes += blocks(st);
    } else if (st.st_nlink == 1 || seen.insert(st.st_ino).second) {
      g.private_bytes += blocks(st);
      g.standalone_bytes += blocks(st);
    }
    return true;
  });
  return g;
}

}  // namespace

PoolStats pool_stats(Pool& pool) {
  PoolStats ps;
  std::vector<ino_t> inos;
  std::unordered_map<ino_t, uint64_t> object_blocks;
  for (const ObjectRow& obj : Store(pool).load()) {
    struct stat st {};
    if (::fstatat(pool.objects_fd(), obj.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    inos.push_back(st.st_ino);
    object_blocks[st.st_ino] = blocks(st);
    ++ps.objects;
    ps.object_bytes += blocks(st);
  }
  ps.disk_bytes = ps.object_bytes;
  ObjectSet objects(pool.dev(), std::move(inos));
  std::vector<std::unordered_set<ino_t>> used;
  std::unordered_map<ino_t, uint32_t> users;  // object -> number of guests and templates using it
  auto add_tree = [&](int root_fd, const std::string& name, std::vector<GuestStats>& to) {
    used.emplace_back();
    GuestStats g = tree_stats(root_fd, name, objects, used.back());
    for (ino_t ino : used.back()) ++users[ino];
    ps.disk_bytes += g.private_bytes;
    to.push_back(std::move(g));
  };
  for (const std::string& name : pool.guest_names()) {
    add_tree(pool.open_guest_root(name).get(), name, ps.guests);
    ps.standalone_bytes += ps.guests.back().standalone_bytes;
  }
  for (const TemplateInfo& t : list_templates(pool)) add_tree(open_template_root(pool, t.name).get(), t.name, ps.templates);
  // Each object's blocks are divided equally among the guests and templates that use it.
  size_t i = 0;
  for (auto* list : {&ps.guests, &ps.templates})
    for (GuestStats& g : *list)
      for (ino_t ino : used[i++]) g.shared_bytes += object_blocks[ino] / users[ino];
  return ps;
}

}  // namespace vunify::unify
