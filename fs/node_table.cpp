#include "fs/node_table.hpp"

#include <malloc.h>
#include <unistd.h>

namespace vunify::fs {

namespace {

// Synthetic inode numbers for shared files have the top bit set: backing filesystems
// never hand out such numbers, so they cannot collide with private inodes. The next bit tells
// a link group's number (derived from its id) from a guest path's (derived from the path
// hash), so the two kinds cannot collide either.
constexpr uint64_t kSyntheticInoBit = 1ULL << 63;
constexpr uint64_t kGroupInoBit = 1ULL << 62;

uint64_t synthetic_ino(uint64_t path_hash, uint64_t group) {
  if (group) return group | kSyntheticInoBit | kGroupInoBit;  // ids are random: their low 62 bits
  return (path_hash & ~kGroupInoBit) | kSyntheticInoBit;
}

uint64_t shown_ino_of(const struct stat& st, bool shared, uint64_t path_hash, uint64_t group) {
  return shared ? synthetic_ino(path_hash, group) : st.st_ino;
}

}  // namespace

uint64_t child_path_hash(uint64_t parent_hash, std::string_view name) {
  uint64_t h = parent_hash ^ 0xcbf29ce484222325ULL;
  for (unsigned char c : name) h = (h ^ c) * 0x100000001b3ULL;
  h = (h ^ '/') * 0x100000001b3ULL;
  return h;
}

Node::Node(int fd, const struct stat& st, bool is_shared, uint64_t path_hash_value, uint64_t group_id)
    : type(st.st_mode & S_IFMT),
      shown_ino(shown_ino_of(st, is_shared, path_hash_value, group_id)),
      path_hash(path_hash_value),
      group(is_shared ? group_id : 0),
      shared(is_shared),
      path_fd(fd) {}

Node::~Node() {
  int fd = path_fd.load();
  if (fd >= 0) ::close(fd);
  for (int old : retired_fds) ::close(old);
}

void Node::replace_fd(int new_path_fd) {
  retired_fds.push_back(path_fd.exchange(new_path_fd, std::memory_order_acq_rel));
}

NodeTable::~NodeTable() {
  std::vector<Node*> all;
  for (auto& [k, n] : by_id_) all.push_back(n);
  for (auto& [k, n] : by_path_) all.push_back(n);
  for (auto& [k, n] : by_group_) all.push_back(n);
  for (Node* n : all) delete n;
}

Node* NodeTable::take_path_key(uint64_t parent, std::string_view name) {
  auto it = by_path_.find(PathKey{parent, std::string(name)});
  if (it == by_path_.end()) return nullptr;
  Node* n = it->second;
  by_path_.erase(it);
  n->in_table = false;
  return n;
}

Node* NodeTable::lookup(Node& parent, std::string_view name, os::unique_fd path_fd, const struct stat& st, bool shared,
                        uint64_t group) {
  std::lock_guard lock(mu_);
  Node* found = nullptr;
  if (!shared) group = 0;
  if (group) {
    auto it = by_group_.find(group);
    if (it != by_group_.end()) {
      if (it->second->key_dev == st.st_dev && it->second->key_ino == st.st_ino) found = it->second;
      else unkey(*it->second);  // not the group's object any more
    }
  } else if (shared) {
    auto it = by_path_.find(PathKey{node_id(&parent), std::string(name)});
    if (it != by_path_.end()) {
      if (it->second->key_dev == st.st_dev && it->second->key_ino == st.st_ino) found = it->second;
      else take_path_key(node_id(&parent), name);  // the path now names another inode
    }
  } else {
    auto it = by_id_.find(IdKey{st.st_dev, st.st_ino});
    if (it != by_id_.end()) found = it->second;
  }
  if (found) {
    ++found->nlookup;
    return found;
  }
  auto* node = new Node(path_fd.release(), st, shared, child_path_hash(parent.path_hash, name), group);
  node->key_dev = st.st_dev;
  node->key_ino = st.st_ino;
  node->nlookup = 1;
  node->in_table = true;
  if (group) {
    node->key_group = group;
    by_group_.emplace(group, node);
  } else if (shared) {
    node->key_parent = node_id(&parent);
    node->key_name = name;
    by_path_.emplace(PathKey{node->key_parent, node->key_name}, node);
  } else {
    by_id_.emplace(IdKey{st.st_dev, st.st_ino}, node);
  }
  return node;
}

uint64_t NodeTable::shown_ino(Node& parent, std::string_view name, const struct stat& st, bool shared, uint64_t group) {
  if (!shared) return st.st_ino;  // private nodes show their backing inode number
  std::lock_guard lock(mu_);
  Node* known = nullptr;
  if (group) {
    auto it = by_group_.find(group);
    if (it != by_group_.end()) known = it->second;
  } else {
    auto it = by_path_.find(PathKey{node_id(&parent), std::string(name)});
    if (it != by_path_.end()) known = it->second;
  }
  if (known && known->key_dev == st.st_dev && known->key_ino == st.st_ino) return known->shown_ino;
  return shown_ino_of(st, shared, child_path_hash(parent.path_hash, name), group);
}

void NodeTable::add_lookup(Node& node) {
  std::lock_guard lock(mu_);
  ++node.nlookup;
}

void NodeTable::unkey(Node& node) {
  if (!node.in_table) return;
  if (node.key_group) {
    auto it = by_group_.find(node.key_group);
    if (it != by_group_.end() && it->second == &node) by_group_.erase(it);
  } else if (node.key_parent) {
    auto it = by_path_.find(PathKey{node.key_parent, node.key_name});
    if (it != by_path_.end() && it->second == &node) by_path_.erase(it);
  } else {
    auto it = by_id_.find(IdKey{node.key_dev, node.key_ino});
    if (it != by_id_.end() && it->second == &node) by_id_.erase(it);
  }
  node.in_table = false;
}

void NodeTable::forget(Node* node, uint64_t n) {
  {
    std::lock_guard lock(mu_);
    node->nlookup = n >= node->nlookup ? 0 : node->nlookup - n;
    if (node->nlookup) return;
    unkey(*node);
  }
  delete node;
  // Nodes freed in bulk (a guest deleting many files) leave free pages between the ones that
  // live on, which malloc only returns from the top of the heap: give them back now and then.
  if (freed_.fetch_add(1, std::memory_order_relaxed) % kTrimEvery == kTrimEvery - 1) ::malloc_trim(0);
}

void NodeTable::rekey_private(Node& node, const struct stat& st) {
  std::lock_guard lock(mu_);
  unkey(node);
  node.key_group = 0;
  node.key_parent = 0;
  node.key_name.clear();
  node.key_name.shrink_to_fit();
  node.key_dev = st.st_dev;
  node.key_ino = st.st_ino;
  auto [it, inserted] = by_id_.emplace(IdKey{st.st_dev, st.st_ino}, &node);
  if (!inserted) it->second = &node;
  node.in_table = true;
}

void NodeTable::detach(Node& node) {
  std::lock_guard lock(mu_);
  unkey(node);
}

void NodeTable::unlinked(Node& parent, std::string_view name) {
  std::lock_guard lock(mu_);
  take_path_key(node_id(&parent), name);
}

void NodeTable::renamed(Node& parent, std::string_view name, Node& new_parent, std::string_view new_name, bool exchange) {
  std::lock_guard lock(mu_);
  Node* moved = take_path_key(node_id(&parent), name);
  Node* target = take_path_key(node_id(&new_parent), new_name);
  auto put = [&](Node* n, Node& p, std::string_view nm) {
    n->key_parent = node_id(&p);
    n->key_name = nm;
    n->in_table = by_path_.emplace(PathKey{n->key_parent, n->key_name}, n).second;
  };
  if (moved) put(moved, new_parent, new_name);
  if (target && exchange) put(target, parent, name);
}

bool NodeTable::linked_path(const Node& node, Node*& parent, std::string& name) {
  std::lock_guard lock(mu_);
  if (!node.in_table || !node.key_parent) return false;
  parent = reinterpret_cast<Node*>(node.key_parent);
  name = node.key_name;
  return true;
}

size_t NodeTable::size() {
  std::lock_guard lock(mu_);
  return by_id_.size() + by_path_.size() + by_group_.size();
}

}  // namespace vunify::fs
