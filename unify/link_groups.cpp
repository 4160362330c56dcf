#include "unify/link_groups.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <optional>

#include "os/copy.hpp"
#include "os/error.hpp"
#include "os/files.hpp"
#include "os/walk.hpp"

namespace vunify::unify {

using os::throw_errno;
using os::unique_fd;

namespace {

constexpr std::string_view kMagic = "vunify-links 1";

std::string to_hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

bool from_hex(const std::string& hex, std::string& out) {
  auto val = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (hex.size() % 2) return false;
  out.clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = val(hex[i]), lo = val(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out += static_cast<char>(hi << 4 | lo);
  }
  return true;
}

// Reads NUL-ended fields one by one.
class Fields {
 public:
  Fields(const std::string& data, const std::string& what) : data_(data), what_(what) {}
  bool done() const { return pos_ >= data_.size(); }
  std::string next() {
    size_t end = data_.find('\0', pos_);
    if (end == std::string::npos) throw os::UserError(fmt::format("{} is damaged (truncated field)", what_));
    std::string f = data_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return f;
  }
  uint64_t number(int base) {
    std::string f = next();
    char* end = nullptr;
    uint64_t v = std::strtoull(f.c_str(), &end, base);
    if (f.empty() || *end) throw os::UserError(fmt::format("{} is damaged (bad number '{}')", what_, f));
    return v;
  }

 private:
  const std::string& data_;
  const std::string& what_;
  size_t pos_ = 0;
};

// Room for a struct file_handle with the largest handle.
struct HandleBuffer {
  alignas(file_handle) unsigned char bytes[sizeof(file_handle) + MAX_HANDLE_SZ] = {};
  file_handle* handle() { return reinterpret_cast<file_handle*>(bytes); }
};

// Points member `m` (now a link to the store object) at the private inode `file_fd`, keeping
// its directory's mtime.
void relink_member(const ResolvedMember& m, const LinkMember& rec, int file_fd) {
  if (!os::replace_by_link_keep_mtime(file_fd, m.dir.get(), rec.name, std::string(kTempPrefix), rec.name))
    throw_errno("restore the mtime of the directory of", rec.name);
}

bool same_meta(const struct stat& a, const struct stat& b) {
  return a.st_size == b.st_size && a.st_mode == b.st_mode && a.st_uid == b.st_uid && a.st_gid == b.st_gid &&
         to_ns(a.st_mtim) == to_ns(b.st_mtim);
}

// True if the private member `p` has the same bytes, metadata and xattrs as the object `o`:
// a member left behind by an interrupted unify or break, not a file made later in its place.
bool same_file(const ResolvedMember& p, const LinkMember& prec, const ResolvedMember& o, const LinkMember& orec) {
  if (!same_meta(p.st, o.st)) return false;
  unique_fd pf(::openat(p.dir.get(), prec.name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  unique_fd of(::openat(o.dir.get(), orec.name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!pf || !of) return false;
  return os::read_xattrs(pf.get(), prec.name) == os::read_xattrs(of.get(), orec.name) &&
         os::same_bytes(pf.get(), of.get(), prec.name);
}

// Resolves one group; returns the members to keep (empty: drop the record).
std::vector<LinkMember> resolve_group(int mount_fd, const LinkGroup& group, const ObjectSet& objects, LinkRepair& r) {
  std::vector<ResolvedMember> res = resolve_members(mount_fd, group);
  std::optional<GroupObject> obj = group_object(res, objects);
  if (!obj) return {};
  size_t oi = obj->first;
  ino_t object = res[oi].st.st_ino;
  for (size_t i = 0; i < res.size(); ++i) {
    if (!res[i].exists || objects.contains(res[i].st)) continue;
    if (!same_file(res[i], group.members[i], res[oi], group.members[oi])) continue;
    // Halfway: every member back to the private inode, which then holds the group itself.
    unique_fd pf(::openat(res[i].dir.get(), group.members[i].name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!pf) throw_errno("open", group.members[i].name);
    for (size_t j = 0; j < res.size(); ++j) {
      if (!res[j].exists || res[j].st.st_ino != object) continue;
      relink_member(res[j], group.members[j], pf.get());
      ++r.relinked;
    }
    return {};
  }
  std::vector<LinkMember> keep;
  for (size_t i = 0; i < res.size(); ++i)
    if (res[i].exists && res[i].st.st_ino == object) keep.push_back(group.members[i]);
  if (keep.size() < 2) keep.clear();
  return keep;
}

}  // namespace

unique_fd open_links_dir(const Pool& pool) {
  if (::mkdirat(pool.fd(), "links", 0700) != 0 && errno != EEXIST) throw_errno("create", pool.path("links"));
  unique_fd dir(::openat(pool.fd(), "links", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir) throw_errno("open", pool.path("links"));
  return dir;
}

std::string encode_links(const GuestLinks& links) {
  std::string out(kMagic);
  out += '\0';
  for (const LinkGroup& g : links) {
    out += fmt::format("{:016x}", g.id) + '\0' + std::to_string(g.members.size()) + '\0';
    for (const LinkMember& m : g.members) out += to_hex(m.dir) + '\0' + m.name + '\0';
  }
  return out;
}

GuestLinks decode_links(const std::string& data, const std::string& what) {
  Fields f(data, what);
  if (f.next() != kMagic) throw os::UserError(fmt::format("{} is not a vunify link-group record", what));
  GuestLinks links;
  while (!f.done()) {
    LinkGroup g;
    g.id = f.number(16);
    uint64_t n = f.number(10);
    for (uint64_t i = 0; i < n; ++i) {
      LinkMember m;
      if (!from_hex(f.next(), m.dir)) throw os::UserError(fmt::format("{} is damaged (bad handle)", what));
      m.name = f.next();
      if (m.name.empty() || m.name.find('/') != std::string::npos)
        throw os::UserError(fmt::format("{} is damaged (bad name '{}')", what, m.name));
      g.members.push_back(std::move(m));
    }
    links.push_back(std::move(g));
  }
  return links;
}

GuestLinks read_links(int links_dir_fd, const std::string& guest) {
  auto data = os::read_whole_file(links_dir_fd, guest);
  if (!data) return {};
  return decode_links(*data, "links/" + guest);
}

void write_links(int links_dir_fd, const std::string& guest, const GuestLinks& links) {
  if (links.empty()) return os::remove_file_durable(links_dir_fd, guest);
  os::write_file_atomic(links_dir_fd, guest, encode_links(links), 0600);
}

std::string dir_handle(int dirfd, const std::string& path_for_errors) {
  HandleBuffer buf;
  file_handle* fh = buf.handle();
  fh->handle_bytes = MAX_HANDLE_SZ;
  int mount_id = 0;
  if (::name_to_handle_at(dirfd, "", fh, &mount_id, AT_EMPTY_PATH) != 0) throw_errno("get the file handle of", path_for_errors);
  std::string out(reinterpret_cast<const char*>(&fh->handle_type), sizeof fh->handle_type);
  out.append(reinterpret_cast<const char*>(fh->f_handle), fh->handle_bytes);
  return out;
}

unique_fd open_dir_handle(int mount_fd, const std::string& handle) {
  if (handle.size() < sizeof(int) || handle.size() - sizeof(int) > MAX_HANDLE_SZ) return {};
  HandleBuffer buf;
  file_handle* fh = buf.handle();
  std::memcpy(&fh->handle_type, handle.data(), sizeof(int));
  fh->handle_bytes = static_cast<unsigned>(handle.size() - sizeof(int));
  std::memcpy(fh->f_handle, handle.data() + sizeof(int), fh->handle_bytes);
  int fd = ::open_by_handle_at(mount_fd, fh, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ESTALE || errno == ENOENT || errno == ENOTDIR) return {};
    throw_errno("open a directory by handle", "");
  }
  unique_fd dir(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_nlink == 0) return {};  // removed while held open elsewhere
  return dir;
}

uint64_t new_link_group_id() {
  uint64_t id = 0;
  while (id == 0)
    if (::getrandom(&id, sizeof id, 0) != sizeof id) throw_errno("getrandom", "link group id");
  return id;
}

std::vector<ResolvedMember> resolve_members(int mount_fd, const LinkGroup& group) {
  std::vector<ResolvedMember> out;
  for (const LinkMember& m : group.members) {
    ResolvedMember r;
    r.dir = open_dir_handle(mount_fd, m.dir);
    r.exists = r.dir && ::fstatat(r.dir.get(), m.name.c_str(), &r.st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(r.st.st_mode);
    out.push_back(std::move(r));
  }
  return out;
}

std::optional<GroupObject> group_object(const std::vector<ResolvedMember>& members, const ObjectSet& objects) {
  std::map<ino_t, GroupObject> by_ino;
  for (size_t i = 0; i < members.size(); ++i) {
    const ResolvedMember& m = members[i];
    if (!m.exists || !objects.contains(m.st)) continue;
    auto [it, fresh] = by_ino.try_emplace(m.st.st_ino, GroupObject{i, 0});
    ++it->second.links;
  }
  std::optional<GroupObject> best;
  for (const auto& [ino, g] : by_ino)
    if (!best || g.links > best->links) best = g;
  return best;
}

std::vector<std::vector<std::string>> link_group_paths(int root_fd, const GuestLinks& links) {
  std::string root = os::fd_path(root_fd);
  std::vector<std::vector<std::string>> out;
  for (const LinkGroup& g : links) {
    std::vector<ResolvedMember> res = resolve_members(root_fd, g);
    std::vector<std::string> paths;
    for (size_t i = 0; i < res.size(); ++i) {
      if (!res[i].exists) continue;
      std::string dir = os::fd_path(res[i].dir.get());
      if (dir == root) paths.push_back(g.members[i].name);
      else if (dir.starts_with(root + "/")) paths.push_back(dir.substr(root.size() + 1) + "/" + g.members[i].name);
    }
    if (paths.size() >= 2) out.push_back(std::move(paths));
  }
  return out;
}

GuestLinks links_from_paths(int root_fd, const std::vector<std::vector<std::string>>& groups) {
  GuestLinks out;
  for (const auto& paths : groups) {
    LinkGroup g;
    g.id = new_link_group_id();
    std::optional<ino_t> ino;
    for (const std::string& rel : paths) {
      auto slash = rel.rfind('/');
      std::string dir = slash == std::string::npos ? "." : rel.substr(0, slash);
      std::string name = slash == std::string::npos ? rel : rel.substr(slash + 1);
      int fd = os::try_open_beneath(root_fd, dir, O_PATH | O_DIRECTORY);
      if (fd < 0) continue;
      unique_fd dfd(fd);
      struct stat st {};
      if (::fstatat(fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
      if (ino && *ino != st.st_ino) continue;
      ino = st.st_ino;
      g.members.push_back({dir_handle(fd, rel), name});
    }
    if (g.members.size() >= 2) out.push_back(std::move(g));
  }
  return out;
}

LinkRepair resolve_links(Pool& pool, const std::string& guest, const ObjectSet& objects) {
  LinkRepair r;
  unique_fd dir = open_links_dir(pool);
  GuestLinks links = read_links(dir.get(), guest);
  if (links.empty()) return r;
  GuestLinks kept;
  for (LinkGroup& g : links) {
    std::vector<LinkMember> members = resolve_group(pool.fd(), g, objects, r);
    if (members.empty()) {
      ++r.dropped;
      continue;
    }
    ++r.kept;
    kept.push_back({g.id, std::move(members)});
  }
  bool changed = kept.size() != links.size();
  for (size_t i = 0; !changed && i < kept.size(); ++i) changed = kept[i].members != links[i].members;
  if (changed) write_links(dir.get(), guest, kept);
  return r;
}

}  // namespace vunify::unify
