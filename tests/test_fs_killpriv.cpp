// Clearing of setuid/setgid bits and file capabilities (security.capability) through the view
// is exactly native: write, truncate and chown, by root (CAP_FSETID keeps the bits on write and
// truncate, never the capability) and by the unprivileged owner, on private and shared files,
// passthrough on and off. Each case is done on the view and on a native twin file on the
// backing filesystem, and the outcomes compared.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "tests/test_fs_support.hpp"

using namespace vunify::test;

namespace {

constexpr uid_t kNobody = 65534;

struct Kind {
  const char* name;
  mode_t mode;
  bool capability;
};

const std::vector<Kind>& kinds() {
  static const std::vector<Kind> all = {
      {"suid-sgid-exec", 06775, false},
      {"sgid-no-group-exec", 02664, false},
      {"capability", 0775, true},
  };
  return all;
}

struct Op {
  const char* name;
  const char* command;  // shell command on "$F"
};

const std::vector<Op>& ops() {
  static const std::vector<Op> all = {
      {"write", "printf more >> \"$F\""},
      {"truncate", "truncate -s 10 \"$F\""},
      {"chown", "chown 65534:65534 \"$F\""},
  };
  return all;
}

// cap_net_raw=ep (VFS_CAP_REVISION_2)
std::string capability() {
  const unsigned char cap[] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00,
                               0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  return std::string(reinterpret_cast<const char*>(cap), sizeof cap);
}

void make(const std::string& path, const Kind& k) {
  write_file(path, std::string(5000, 'k'), k.mode, kNobody, kNobody);
  if (k.capability) set_xattr(path, "security.capability", capability());
}

struct Outcome {
  int status;
  mode_t mode;
  bool capability;
  off_t size;
  bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  return os << "status " << o.status << " mode " << std::oct << o.mode << std::dec << " cap " << o.capability << " size "
            << o.size;
}

Outcome apply(const std::string& path, const Op& op, bool as_root) {
  std::string line = as_root ? "sh -c '" + std::string("F=\"") + path + "\"; " + op.command + "'"
                             : "setpriv --reuid=65534 --regid=65534 --clear-groups sh -c '" + std::string("F=\"") + path +
                                   "\"; " + op.command + "'";
  Outcome o{};
  o.status = run(line).status;
  struct stat st = stat_of(path);
  o.mode = st.st_mode & 07777;
  o.size = st.st_size;
  o.capability = ::getxattr(path.c_str(), "security.capability", nullptr, 0) > 0;
  return o;
}

}  // namespace

TEST_CASE("setuid and setgid bits and file capabilities are cleared through the view exactly as natively", "[fs][killpriv]") {
  VUNIFY_REQUIRE_FUSE();
  if (run("command -v setpriv").status != 0) {
    WARN("skipped: setpriv (util-linux) missing");
    return;
  }
  bool passthrough = GENERATE(true, false);
  ViewPool v(2, passthrough, false);
  REQUIRE(::chmod(v.tmp.path().c_str(), 0755) == 0);  // nobody must reach the view and the twins
  mkdirs(v.tmp / "native");
  std::vector<std::string> files;
  for (const Kind& k : kinds())
    for (const Op& op : ops())
      for (bool root : {true, false})
        for (bool shared : {true, false}) {
          std::string f = std::string("kp/") + k.name + "-" + op.name + (root ? "-root" : "-user") + (shared ? "-shared" : "-private");
          files.push_back(f);
          make(v.backing("g1", f), k);
          if (shared) make(v.backing("g2", f), k);
          make(v.tmp / ("native/" + std::string(k.name) + op.name + (root ? "r" : "u") + (shared ? "s" : "p")), k);
        }
  REQUIRE(cli(v.pool, "unify --all").status == 0);
  v.mount_all(passthrough);
  size_t i = 0;
  for (const Kind& k : kinds())
    for (const Op& op : ops())
      for (bool root : {true, false})
        for (bool shared : {true, false}) {
          const std::string& f = files[i++];
          INFO(f << ", passthrough " << passthrough);
          if (shared) REQUIRE(stat_of(v.backing("g1", f)).st_ino == stat_of(v.backing("g2", f)).st_ino);
          Outcome native = apply(v.tmp / ("native/" + std::string(k.name) + op.name + (root ? "r" : "u") + (shared ? "s" : "p")), op, root);
          Outcome view = apply(v.root("g1", f), op, root);
          CHECK(native.status == 0);
          CHECK(view == native);
        }
  CHECK(cli(v.pool, "verify").status == 0);
}

// The daemon answers the kernel's security.capability question for a file it has just created
// (O_EXCL or O_TMPFILE) without asking the backing filesystem: a capability set on it through
// the view afterwards must still be seen, and cleared by the next write, as natively.
TEST_CASE("a capability set on a file just created through the view is cleared by the next write", "[fs][killpriv]") {
  VUNIFY_REQUIRE_FUSE();
  bool passthrough = GENERATE(true, false);
  INFO("passthrough " << passthrough);
  ViewPool v(1, passthrough, false);
  mkdirs(v.tmp / "native");
  mkdirs(v.backing("g1", "new"));
  v.mount_all(passthrough);
  for (const char* flags : {"excl", "tmpfile"}) {
    INFO(flags);
    std::string name = flags;
    auto outcome = [&](const std::string& dir) {
      std::string path = dir + "/" + name;
      int fd = std::string(flags) == "excl" ? ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0755)
                                            : ::open(dir.c_str(), O_RDWR | O_TMPFILE | O_CLOEXEC, 0755);
      REQUIRE(fd >= 0);
      REQUIRE(::write(fd, "a", 1) == 1);  // the kernel asks for the capability: none yet
      if (std::string(flags) == "tmpfile")
        REQUIRE(::linkat(AT_FDCWD, ("/proc/self/fd/" + std::to_string(fd)).c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) == 0);
      std::string cap = capability();
      REQUIRE(::fsetxattr(fd, "security.capability", cap.data(), cap.size(), 0) == 0);
      bool set = ::getxattr(path.c_str(), "security.capability", nullptr, 0) > 0;
      REQUIRE(::write(fd, "b", 1) == 1);  // must clear it
      ::close(fd);
      bool after = ::getxattr(path.c_str(), "security.capability", nullptr, 0) > 0;
      return std::pair(set, after);
    };
    auto native = outcome(v.tmp / "native");
    auto view = outcome(v.root("g1", "new"));
    CHECK(native == std::pair(true, false));
    CHECK(view == native);
    CHECK(::getxattr(v.backing("g1", "new/" + name).c_str(), "security.capability", nullptr, 0) < 0);
  }
}
