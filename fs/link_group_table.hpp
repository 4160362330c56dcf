// The link groups of a mounted guest (unify/link_groups.hpp): a guest's own hard links whose
// paths are all links to one store object. The tree alone shows them as separate equal shared
// files; this table, built once at daemon start from POOL/links/NAME, tells the view which
// (directory, name) entries are one guest inode, so it serves them as one node, counts their
// links, and breaks them together. While a group is live its members never change: every
// namespace operation on a member breaks the group first. A break drops the group here and
// from the record (the daemon is the record's only writer while the guest is mounted).
#pragma once
#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "os/unique_fd.hpp"
#include "unify/link_groups.hpp"
#include "unify/object_set.hpp"

namespace vunify::fs {

class LinkGroupTable {
 public:
  LinkGroupTable() = default;  // a guest without link groups
  // Opens each member's directory by handle on the filesystem of `mount_fd` (needs
  // CAP_DAC_READ_SEARCH: call before switching credentials) and keeps the groups whose members
  // (two or more) are links to one store object. `links_dir` is POOL/links, where the record
  // of `guest` is rewritten when a group breaks.
  LinkGroupTable(int mount_fd, const unify::GuestLinks& links, const unify::ObjectSet& objects, os::unique_fd links_dir,
                 std::string guest);
  LinkGroupTable(const LinkGroupTable&) = delete;
  LinkGroupTable& operator=(const LinkGroupTable&) = delete;

  // Cheap filter (no lock): false if no live-at-start group has a member called `name`.
  bool may_be_member(std::string_view name) const { return names_.find(name) != names_.end(); }
  // The live group that entry `name` of the directory `dir_st` belongs to, if `file_st` (what
  // the entry is now) is the group's object.
  std::optional<uint64_t> find(const struct stat& dir_st, std::string_view name, const struct stat& file_st);
  // The guest's link count of live group `id`: its members that are links to the object.
  nlink_t nlink(uint64_t id);

  struct MemberRef {
    int dir;  // O_PATH fd of the member's directory, owned by the table (valid for its lifetime)
    std::string name;
  };
  // The members of live group `id` (empty if it is not live).
  std::vector<MemberRef> members(uint64_t id);
  // Marks group `id` broken and rewrites the record without it. Throws SysError if the record
  // cannot be written (the group is dropped here anyway; resolve_links drops it at next mount).
  void drop(uint64_t id);

  size_t live_groups();

 private:
  struct Member {
    os::unique_fd dir;
    dev_t dir_dev = 0;
    ino_t dir_ino = 0;
    std::string name;
  };
  struct Group {
    uint64_t id = 0;
    dev_t obj_dev = 0;
    ino_t obj_ino = 0;
    std::vector<Member> members;  // the members linked to the object at start
    bool live = true;
  };
  using Key = std::tuple<dev_t, ino_t, std::string>;  // member directory identity + name

  std::mutex mu_;
  std::vector<std::unique_ptr<Group>> groups_;
  std::map<Key, Group*, std::less<>> by_member_;
  std::set<std::string, std::less<>> names_;  // immutable after construction (lookups by string_view)
  unify::GuestLinks record_;     // what POOL/links/NAME holds (groups dropped as they break)
  os::unique_fd links_dir_;
  std::string guest_;

  Group* live_group(uint64_t id);  // caller holds mu_
};

}  // namespace vunify::fs
