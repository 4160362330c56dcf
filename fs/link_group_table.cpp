#include "fs/link_group_table.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>

#include "os/error.hpp"

namespace vunify::fs {

LinkGroupTable::LinkGroupTable(int mount_fd, const unify::GuestLinks& links, const unify::ObjectSet& objects,
                               os::unique_fd links_dir, std::string guest)
    : record_(links), links_dir_(std::move(links_dir)), guest_(std::move(guest)) {
  for (const unify::LinkGroup& rec : links) {
    std::vector<unify::ResolvedMember> res = unify::resolve_members(mount_fd, rec);
    // The group's object: the store object most of its members are links to (after
    // resolve_links at mount, all of them).
    std::optional<unify::GroupObject> obj = unify::group_object(res, objects);
    if (!obj || obj->links < 2) continue;
    auto group = std::make_unique<Group>();
    group->id = rec.id;
    group->obj_dev = res[obj->first].st.st_dev;
    group->obj_ino = res[obj->first].st.st_ino;
    for (size_t i = 0; i < res.size(); ++i) {
      unify::ResolvedMember& m = res[i];
      if (!m.exists || m.st.st_dev != group->obj_dev || m.st.st_ino != group->obj_ino) continue;
      struct stat dst {};
      if (::fstat(m.dir.get(), &dst) != 0) os::throw_errno("stat the directory of", rec.members[i].name);
      group->members.push_back({std::move(m.dir), dst.st_dev, dst.st_ino, rec.members[i].name});
    }
    for (const Member& m : group->members) {
      by_member_.emplace(Key{m.dir_dev, m.dir_ino, m.name}, group.get());
      names_.insert(m.name);
    }
    groups_.push_back(std::move(group));
  }
}

LinkGroupTable::Group* LinkGroupTable::live_group(uint64_t id) {
  for (auto& g : groups_)
    if (g->id == id) return g->live ? g.get() : nullptr;
  return nullptr;
}

std::optional<uint64_t> LinkGroupTable::find(const struct stat& dir_st, std::string_view name, const struct stat& file_st) {
  std::lock_guard lock(mu_);
  auto it = by_member_.find(Key{dir_st.st_dev, dir_st.st_ino, std::string(name)});
  if (it == by_member_.end()) return std::nullopt;
  const Group& g = *it->second;
  if (!g.live || g.obj_dev != file_st.st_dev || g.obj_ino != file_st.st_ino) return std::nullopt;
  return g.id;
}

nlink_t LinkGroupTable::nlink(uint64_t id) {
  std::lock_guard lock(mu_);
  Group* g = live_group(id);
  if (!g) return 1;
  nlink_t n = 0;
  for (const Member& m : g->members) {
    struct stat st {};
    if (::fstatat(m.dir.get(), m.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == g->obj_dev &&
        st.st_ino == g->obj_ino)
      ++n;
  }
  return std::max<nlink_t>(n, 1);
}

std::vector<LinkGroupTable::MemberRef> LinkGroupTable::members(uint64_t id) {
  std::lock_guard lock(mu_);
  std::vector<MemberRef> out;
  if (Group* g = live_group(id))
    for (const Member& m : g->members) out.push_back({m.dir.get(), m.name});
  return out;
}

void LinkGroupTable::drop(uint64_t id) {
  std::lock_guard lock(mu_);
  if (Group* g = live_group(id)) g->live = false;
  auto it = std::remove_if(record_.begin(), record_.end(), [id](const unify::LinkGroup& g) { return g.id == id; });
  if (it == record_.end()) return;
  record_.erase(it, record_.end());
  unify::write_links(links_dir_.get(), guest_, record_);
}

size_t LinkGroupTable::live_groups() {
  std::lock_guard lock(mu_);
  return static_cast<size_t>(std::count_if(groups_.begin(), groups_.end(), [](auto& g) { return g->live; }));
}

}  // namespace vunify::fs
