// The inode table of a guest view: one Node per guest inode, holding an O_PATH fd of its
// backing inode. Private inodes are keyed by backing (dev, ino), so guest-internal hard links
// are one node; shared files (store objects) are keyed by guest path (parent node + name),
// never by backing identity, since one object backs many unrelated guest paths. The paths of
// a link group (fs/link_group_table.hpp: a guest's own hard links that are all links to one
// object) are one guest inode: keyed by the group's id.
#pragma once
#include <sys/stat.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "os/unique_fd.hpp"

namespace vunify::fs {

struct Node {
  Node(int path_fd, const struct stat& st, bool is_shared, uint64_t path_hash_value, uint64_t group_id = 0);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  int fd() const { return path_fd.load(std::memory_order_acquire); }
  // Points the node at a new backing inode (after a copy-on-write break; caller holds `mu`).
  // The old fd stays open until the node dies: other threads may still be using it.
  void replace_fd(int new_path_fd);

  const mode_t type;        // S_IFMT bits
  const uint64_t shown_ino;  // st_ino the guest sees: stable for the node's lifetime
  const uint64_t path_hash;  // hash of the guest path at first lookup (children's synthetic inos)
  const uint64_t group;      // nonzero: the link group this shared node serves (all its paths)
  std::atomic<bool> shared;  // backing inode is a store object (modification must break first)
  // The backing inode is known to carry no security.capability: the daemon created it (O_EXCL
  // or O_TMPFILE) and no SETXATTR reached it since. The kernel asks for that xattr before the
  // first write to each inode (to clear it); the answer then needs no backing call.
  std::atomic<bool> no_capability{false};

  // Open-file state, guarded by `mu` (which also serializes breaks of this node).
  std::mutex mu;
  uint32_t epoch = 0;        // bumped by each break; handles opened before it are stale
  uint32_t nopen = 0;        // open file handles
  uint32_t stale_opens = 0;  // handles opened before the last break (still on old content)
  int backing_id = 0;        // kernel passthrough backing id shared by all passthrough opens
  uint32_t backing_users = 0;
  bool backing_stale = false;  // backing_id is the store object's from before a break
  uint32_t cached_users = 0;   // opens in cached mode (the kernel forbids mixing with passthrough)
  // The kernel's page cache of this inode may hold bytes of the shared content from before a
  // break (read by handles from before it): the next cached open drops it (no keep_cache).
  bool cache_stale = false;

 private:
  friend class NodeTable;
  std::atomic<int> path_fd;
  std::vector<int> retired_fds;  // guarded by mu
  // Table key and lookup count, guarded by the table's mutex.
  dev_t key_dev = 0;
  ino_t key_ino = 0;
  uint64_t key_parent = 0;  // nonzero: keyed by (key_parent, key_name)
  uint64_t key_group = 0;   // nonzero: keyed by link group id
  std::string key_name;
  bool in_table = false;
  uint64_t nlookup = 0;
};

// A guest-path identity: 64-bit hash of the path (FNV-1a over parent hash + name).
uint64_t child_path_hash(uint64_t parent_hash, std::string_view name);

class NodeTable {
 public:
  NodeTable() = default;
  ~NodeTable();
  NodeTable(const NodeTable&) = delete;
  NodeTable& operator=(const NodeTable&) = delete;

  // Returns the node for entry `name` of `parent` whose backing inode is `path_fd`/`st`
  // (taking ownership of path_fd), creating it if needed, and counts one kernel lookup.
  // A shared entry that is a member of link group `group` (nonzero) is the group's one node.
  Node* lookup(Node& parent, std::string_view name, os::unique_fd path_fd, const struct stat& st, bool shared,
               uint64_t group = 0);
  // The st_ino the guest sees for entry `name` of `parent` (backing `st`), without counting a
  // lookup: the node's if the table has one, else what a lookup would give (plain READDIR).
  uint64_t shown_ino(Node& parent, std::string_view name, const struct stat& st, bool shared, uint64_t group = 0);
  // Counts one more kernel lookup of a node the kernel already knows (link, create reply).
  void add_lookup(Node& node);
  // Drops `n` kernel lookups; frees the node when none remain.
  void forget(Node* node, uint64_t n);

  // After a break: the node now refers to the private inode `st` (re-keyed by identity).
  void rekey_private(Node& node, const struct stat& st);
  // Takes the node out of the table: the next lookup of its path makes a fresh node.
  void detach(Node& node);
  // Name changes in the guest tree (only path-keyed nodes care).
  void unlinked(Node& parent, std::string_view name);
  void renamed(Node& parent, std::string_view name, Node& new_parent, std::string_view new_name, bool exchange);

  // The guest path of a path-keyed node that is still linked: its parent node and name.
  bool linked_path(const Node& node, Node*& parent, std::string& name);

  size_t size();

 private:
  struct IdKey {
    dev_t dev;
    ino_t ino;
    bool operator==(const IdKey&) const = default;
  };
  struct IdHash {
    size_t operator()(const IdKey& k) const { return std::hash<uint64_t>()(k.ino * 31 + k.dev); }
  };
  struct PathKey {
    uint64_t parent;
    std::string name;
    bool operator==(const PathKey&) const = default;
  };
  struct PathHash {
    size_t operator()(const PathKey& k) const { return std::hash<std::string>()(k.name) ^ (k.parent * 0x9e3779b97f4a7c15ULL); }
  };
  void unkey(Node& node);  // caller holds mu_
  Node* take_path_key(uint64_t parent, std::string_view name);  // caller holds mu_

  static constexpr uint64_t kTrimEvery = 4096;  // nodes freed between two malloc_trim calls
  std::atomic<uint64_t> freed_{0};
  std::mutex mu_;
  std::unordered_map<IdKey, Node*, IdHash> by_id_;
  std::unordered_map<PathKey, Node*, PathHash> by_path_;
  std::unordered_map<uint64_t, Node*> by_group_;
};

inline uint64_t node_id(const Node* n) { return reinterpret_cast<uintptr_t>(n); }

}  // namespace vunify::fs
