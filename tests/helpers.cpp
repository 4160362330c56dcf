#include "tests/helpers.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "os/error.hpp"
#include "os/walk.hpp"
#include "os/xattrs.hpp"
#include "unify/hash.hpp"

namespace vunify::test {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/vunify-test.XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  try {
    os::unique_fd parent = os::open_dir(path_.substr(0, path_.rfind('/')).empty() ? "/" : path_.substr(0, path_.rfind('/')));
    os::remove_tree(parent.get(), path_.substr(path_.rfind('/') + 1));
  } catch (...) {
  }
}

void mkdirs(const std::string& path) {
  for (size_t pos = 1; pos != std::string::npos;) {
    pos = path.find('/', pos + 1);
    std::string p = path.substr(0, pos);
    if (::mkdir(p.c_str(), 0755) != 0 && errno != EEXIST) os::throw_errno("mkdir", p);
  }
}

void write_file(const std::string& path, const std::string& content, mode_t mode, uid_t uid, gid_t gid, int64_t mtime_sec) {
  mkdirs(path.substr(0, path.rfind('/')));
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << content;
    if (!f) throw std::runtime_error("cannot write " + path);
  }
  if (::chown(path.c_str(), uid, gid) != 0) os::throw_errno("chown", path);
  if (::chmod(path.c_str(), mode) != 0) os::throw_errno("chmod", path);
  struct timespec ts[2] = {{mtime_sec, 0}, {mtime_sec, 123456789}};
  if (::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) os::throw_errno("utimes", path);
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void set_xattr(const std::string& path, const std::string& name, const std::string& value) {
  if (::lsetxattr(path.c_str(), name.c_str(), value.data(), value.size(), 0) != 0) os::throw_errno("setxattr " + name, path);
}

struct stat lstat_of(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) os::throw_errno("lstat", path);
  return st;
}

Snapshot snapshot(const std::string& root) {
  Snapshot snap;
  os::unique_fd rootfd = os::open_dir(root);
  auto describe = [&](int dirfd, const char* name, const std::string& rel, const struct stat& st) {
    std::ostringstream line;
    line << std::oct << st.st_mode << std::dec << " " << st.st_uid << " " << st.st_gid << " " << st.st_mtim.tv_sec << "."
         << st.st_mtim.tv_nsec;
    if (!S_ISDIR(st.st_mode)) line << " size=" << st.st_size;
    if (S_ISLNK(st.st_mode)) {
      char buf[4096];
      ssize_t n = ::readlinkat(dirfd, name, buf, sizeof buf);
      line << " -> " << std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
    }
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) line << " dev=" << major(st.st_rdev) << ":" << minor(st.st_rdev);
    for (const auto& x : os::read_xattrs_at(dirfd, name)) line << " " << x.name << "=" << unify::hash_bytes(x.value).hex();
    if (S_ISREG(st.st_mode)) {
      int fd = ::openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) os::throw_errno("open", rel);
      os::unique_fd file(fd);
      line << " sha=" << unify::hash_fd(fd, rel).hex();
    }
    snap[rel.empty() ? "." : rel] = line.str();
  };
  struct stat rst = lstat_of(root);
  describe(AT_FDCWD, root.c_str(), "", rst);
  os::walk_tree(rootfd.get(), [&](const os::WalkEntry& e) {
    describe(e.dirfd, e.name, e.rel, e.st);
    return true;
  });
  return snap;
}

std::vector<std::string> diff(const Snapshot& before, const Snapshot& after) {
  std::vector<std::string> out;
  for (const auto& [path, desc] : before) {
    auto it = after.find(path);
    if (it == after.end()) out.push_back("missing: " + path);
    else if (it->second != desc) out.push_back("changed: " + path + ": " + desc + " => " + it->second);
  }
  for (const auto& [path, desc] : after)
    if (!before.count(path)) out.push_back("extra: " + path);
  return out;
}

CmdResult run(const std::string& command) {
  CmdResult r;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (!p) throw std::runtime_error("popen failed");
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = ::pclose(p);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

CmdResult vunify(const std::string& pool, const std::string& args) {
  return run(std::string(VUNIFY_BIN) + " --pool '" + pool + "' " + args);
}

void make_sample_guest(const std::string& dir) {
  mkdirs(dir + "/etc");
  mkdirs(dir + "/usr/bin");
  mkdirs(dir + "/var/lib");
  write_file(dir + "/etc/hostname", "guest\n");
  write_file(dir + "/etc/os-release", "NAME=Sample\nVERSION=1\n");
  write_file(dir + "/etc/shadow", "root:*:19000:0:99999:7:::\n", 0640, 0, 42);
  write_file(dir + "/usr/bin/true", read_file("/bin/true"), 0755);
  write_file(dir + "/usr/bin/su", read_file("/bin/true"), 04755);
  write_file(dir + "/usr/bin/ping", read_file("/bin/ls"), 0755);
  // cap_net_raw=ep (VFS_CAP_REVISION_2)
  const unsigned char cap[] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00,
                               0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  set_xattr(dir + "/usr/bin/ping", "security.capability", std::string(reinterpret_cast<const char*>(cap), sizeof cap));
  write_file(dir + "/var/lib/acl-file", "acl\n", 0640);
  if (std::system(("setfacl -m u:1234:r '" + dir + "/var/lib/acl-file' 2>/dev/null").c_str()) != 0) {
    // setfacl missing: the other metadata still exercises the code
  }
  write_file(dir + "/var/lib/user-xattr", "x\n");
  set_xattr(dir + "/var/lib/user-xattr", "user.comment", "hello");
  write_file(dir + "/home-file", std::string(100000, 'z'), 0600, 1000, 1000);
  if (::symlink("usr/bin", (dir + "/bin").c_str()) != 0) os::throw_errno("symlink", dir + "/bin");
  if (::mkfifo((dir + "/var/lib/fifo").c_str(), 0620) != 0) os::throw_errno("mkfifo", dir);
  {
    int sock = ::socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    std::string sp = dir + "/var/lib/sock";
    if (sp.size() < sizeof addr.sun_path) {
      std::memcpy(addr.sun_path, sp.c_str(), sp.size() + 1);
      if (::bind(sock, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) != 0) os::throw_errno("bind", sp);
    }
    ::close(sock);
  }
  if (::mknod((dir + "/null").c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0) os::throw_errno("mknod", dir);
  {
    int fd = ::open((dir + "/var/lib/sparse").c_str(), O_WRONLY | O_CREAT, 0644);
    if (fd < 0) os::throw_errno("create", dir);
    if (::pwrite(fd, "end", 3, 10 << 20) != 3) os::throw_errno("write", dir);
    ::close(fd);
  }
  if (::link((dir + "/etc/os-release").c_str(), (dir + "/etc/os-release.hardlink").c_str()) != 0) os::throw_errno("link", dir);
  struct timespec ts[2] = {{1600000000, 0}, {1600000000, 5}};
  for (const char* d : {"/etc", "/usr/bin", "/usr", "/var/lib", "/var", ""})
    ::utimensat(AT_FDCWD, (dir + d).c_str(), ts, AT_SYMLINK_NOFOLLOW);
}

bool is_root() { return ::geteuid() == 0; }

}  // namespace vunify::test
