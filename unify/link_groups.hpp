// Link groups: a guest's own hard links whose inode is shared with other guests.
//
// A guest tree has a few hard links of its own (Debian: perl and perl5.36.0 are one inode).
// Unify and provisioning make every path of such a group a link to the same store object,
// like any other shared file. The tree alone then cannot tell the group from separate equal
// files, so the group is recorded in POOL/links/NAME; the view serves a group as one inode
// (its st_nlink counts the group's paths) and breaks all its paths together on a write.
//
// A member's directory is named by its file handle (name_to_handle_at), which survives
// renames of the directory and its ancestors. File format: "vunify-links 1\0", then per group
// its id (16 hex digits), its member count, and per member the handle (hex) and the name,
// every field ended by NUL.
//
// A group is live iff two or more of its members are links to the same store object. A
// group caught halfway (a crash while unify linked it or the view broke it) has members on a
// private inode with the same bytes and metadata: resolve_links() points every member back at
// that private inode and drops the record. It runs under the pool's write lock (unify, mount,
// fsck), never while the guest is mounted.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "os/unique_fd.hpp"
#include "unify/object_set.hpp"
#include "unify/pool.hpp"

namespace vunify::unify {

struct LinkMember {
  std::string dir;   // file handle of the member's directory (opaque bytes)
  std::string name;  // the member's name in that directory
  bool operator==(const LinkMember&) const = default;
};

struct LinkGroup {
  uint64_t id = 0;  // unique within the guest; the view derives the group's st_ino from it
  std::vector<LinkMember> members;
};

using GuestLinks = std::vector<LinkGroup>;

// POOL/links (created on demand: pools made before link groups lack it).
os::unique_fd open_links_dir(const Pool& pool);
// The recorded groups of `guest`; empty if it has none. Throws UserError on a damaged file.
GuestLinks read_links(int links_dir_fd, const std::string& guest);
// Replaces the record atomically and durably; no groups removes it.
void write_links(int links_dir_fd, const std::string& guest, const GuestLinks& links);

std::string encode_links(const GuestLinks& links);
GuestLinks decode_links(const std::string& data, const std::string& what);

// The file handle of an open directory (any fd, O_PATH too).
std::string dir_handle(int dirfd, const std::string& path_for_errors);
// Opens a directory by handle (O_PATH) on the filesystem of `mount_fd`; an invalid fd if the
// directory no longer exists. Needs CAP_DAC_READ_SEARCH.
os::unique_fd open_dir_handle(int mount_fd, const std::string& handle);
uint64_t new_link_group_id();

// A member resolved against the tree: its directory (O_PATH) and the member's stat.
struct ResolvedMember {
  os::unique_fd dir;
  struct stat st {};
  bool exists = false;  // a regular file is there
};
std::vector<ResolvedMember> resolve_members(int mount_fd, const LinkGroup& group);

// The store object most of the resolved members are links to (ties: the lowest inode): the
// index of its first member and how many members link to it. nullopt if no member is shared.
struct GroupObject {
  size_t first = 0;
  size_t links = 0;
};
std::optional<GroupObject> group_object(const std::vector<ResolvedMember>& members, const ObjectSet& objects);

// Paths of each group's members relative to `root_fd` (a guest root): for copying groups
// into templates and clones. Members that are gone are left out.
std::vector<std::vector<std::string>> link_group_paths(int root_fd, const GuestLinks& links);
// Records groups given by paths relative to `root_fd` (members that are not regular files or
// not all links to one inode are left out; groups of fewer than two members are dropped).
GuestLinks links_from_paths(int root_fd, const std::vector<std::vector<std::string>>& groups);

struct LinkRepair {
  size_t kept = 0, dropped = 0, relinked = 0;
};
// Checks every recorded group of `guest` against its tree (see above) and rewrites the record.
// Never for a mounted guest: its daemon owns the record while it runs.
LinkRepair resolve_links(Pool& pool, const std::string& guest, const ObjectSet& objects);

}  // namespace vunify::unify
