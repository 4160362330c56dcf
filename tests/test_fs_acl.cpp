// POSIX ACLs through the view (issue 4, DESIGN invariants 1 and 3): the kernel enforces them
// (FUSE_CAP_POSIX_ACL), new entries inherit default ACLs and honour the caller's umask exactly
// as on the backing filesystem, chmod updates the ACL mask, and setting or removing an ACL of a
// shared file breaks it first. Each case runs with kernel passthrough on and off.
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <functional>

#include "tests/test_fs_support.hpp"

using namespace vunify::test;

namespace {

constexpr const char* kAccess = "system.posix_acl_access";
constexpr const char* kDefault = "system.posix_acl_default";

#define VUNIFY_REQUIRE_ACL_TOOLS()                                     \
  do {                                                                 \
    if (run("command -v setfacl && command -v getfacl").status != 0) { \
      WARN("skipped: setfacl/getfacl (acl package) missing");          \
      return;                                                          \
    }                                                                  \
  } while (0)

// Runs `fn` in a forked child with uid/gid `id` (no supplementary groups) and umask `mask`.
// Returns what fn returns (0 or an errno), 254 if it threw, or -1 if the child could not switch
// or crashed.
int as_user(uid_t id, mode_t mask, const std::function<int()>& fn) {
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    ::umask(mask);
    if (::setgroups(0, nullptr) != 0 || ::setresgid(id, id, id) != 0 || ::setresuid(id, id, id) != 0) ::_exit(255);
    int rc = 254;
    try {
      rc = fn();
    } catch (...) {  // never back into the test runner in the child
    }
    ::_exit(rc & 0xff);
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) == 255) return -1;
  return WEXITSTATUS(status);
}

// 0 if `id` may open `path` with `flags`, else the errno.
int try_open(uid_t id, const std::string& path, int flags = O_RDONLY) {
  return as_user(id, 022, [&] {
    int fd = ::open(path.c_str(), flags | O_CLOEXEC);
    if (fd < 0) return errno;
    ::close(fd);
    return 0;
  });
}

// The raw value of xattr `name` ("" with ENODATA), or "error N".
std::string xattr_of(const std::string& path, const char* name) {
  char buf[4096];
  ssize_t n = ::lgetxattr(path.c_str(), name, buf, sizeof buf);
  if (n < 0) return errno == ENODATA ? "" : "error " + std::to_string(errno);
  return std::string(buf, static_cast<size_t>(n));
}

// getfacl's entries (numeric ids, no header comments).
std::string acl_text(const std::string& path) {
  auto r = run("getfacl -cpn '" + path + "' 2>&1");
  return r.status == 0 ? r.out : "getfacl failed: " + r.out;
}

bool setfacl(const std::string& args, const std::string& path) {
  return run("setfacl " + args + " '" + path + "'").status == 0;
}

bool same_inode(const std::string& a, const std::string& b) {
  struct stat x = stat_of(a), y = stat_of(b);
  return x.st_ino == y.st_ino && x.st_dev == y.st_dev;
}

// A pool whose guests can be reached by unprivileged test users (the scratch directory is
// private by default), not yet mounted.
struct AclPool : ViewPool {
  explicit AclPool(int count) : ViewPool(count, true, false) {
    if (::chmod(tmp.path().c_str(), 0755) != 0) throw std::runtime_error("chmod scratch directory");
  }
  // A 0640 root:root file with ACL user:1000:r-- in every guest's backing tree.
  void acl_file(const std::string& rel, const std::string& content) {
    for (const auto& g : guests) {
      write_file(backing(g, rel), content, 0640, 0, 0);
      if (!setfacl("-m u:1000:r", backing(g, rel))) throw std::runtime_error("setfacl " + rel);
    }
  }
  void unify() {
    auto r = cli(pool, "unify --all");
    if (r.status != 0) throw std::runtime_error("unify: " + r.out);
  }
  // `shared` with ACL user:1000:r-- in every guest and `own` with the same ACL in g1 only, then
  // unified: `shared` is one store object, `own` stays private.
  void shared_and_own(const std::string& shared, const std::string& shared_content, const std::string& own,
                      const std::string& own_content) {
    acl_file(shared, shared_content);
    write_file(backing("g1", own), own_content, 0640, 0, 0);
    if (!setfacl("-m u:1000:r", backing("g1", own))) throw std::runtime_error("setfacl " + own);
    unify();
    if (!same_inode(backing("g1", shared), backing("g2", shared))) throw std::runtime_error(shared + " was not unified");
  }
};

}  // namespace

TEST_CASE("a named-user ACL is enforced through the view, for private and shared files", "[fs][acl]") {
  VUNIFY_REQUIRE_FUSE();
  VUNIFY_REQUIRE_ACL_TOOLS();
  bool passthrough = GENERATE(true, false);
  INFO("passthrough " << passthrough);
  AclPool v(2);
  v.shared_and_own("srv/shared-secret", "same in both guests\n", "srv/own-secret", "only g1\n");
  // the backing filesystem's own answer, for reference (the pool itself is closed to users)
  write_file(v.tmp / "ref/secret", "ref\n", 0640, 0, 0);
  REQUIRE(::chmod((v.tmp / "ref").c_str(), 0755) == 0);
  REQUIRE(setfacl("-m u:1000:r", v.tmp / "ref/secret"));
  REQUIRE(try_open(1000, v.tmp / "ref/secret") == 0);
  REQUIRE(try_open(1001, v.tmp / "ref/secret") == EACCES);
  v.mount_all(passthrough);
  for (const std::string rel : {"srv/own-secret", "srv/shared-secret"}) {
    for (const auto& g : v.guests) {
      if (g == "g2" && rel == "srv/own-secret") continue;
      INFO(g << ":" << rel);
      std::string p = v.root(g, rel);
      CHECK(acl_text(p) == acl_text(v.backing(g, rel)));
      CHECK(try_open(1000, p) == 0);
      CHECK(try_open(1001, p) == EACCES);
      CHECK(try_open(1000, p, O_WRONLY) == EACCES);  // the ACL grants read only
      CHECK(as_user(1000, 022, [&] { return content_of(p).empty() ? EIO : 0; }) == 0);
    }
  }
  // reading changed nothing: still shared, store intact
  CHECK(same_inode(v.backing("g1", "srv/shared-secret"), v.backing("g2", "srv/shared-secret")));
  CHECK(cli(v.pool, "verify").status == 0);
}

TEST_CASE("entries created through the view inherit default ACLs exactly as on the backing filesystem", "[fs][acl]") {
  VUNIFY_REQUIRE_FUSE();
  VUNIFY_REQUIRE_ACL_TOOLS();
  bool passthrough = GENERATE(true, false);
  INFO("passthrough " << passthrough);
  AclPool v(1);
  for (const char* d : {"shared/view", "shared/native"}) {
    mkdirs(v.backing("g1", d));
    REQUIRE(::chmod(v.backing("g1", d).c_str(), 0755) == 0);
    REQUIRE(setfacl("-d -m u:1000:rwx", v.backing("g1", d)));
  }
  v.mount_all(passthrough);
  // The same operations, with the same umask, through the view and directly on the backing tree.
  auto create_all = [](const std::string& dir) {
    return as_user(0, 022, [&] {
      int fd = ::open((dir + "/file").c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd < 0) return errno;
      ::close(fd);
      if (::mkdir((dir + "/sub").c_str(), 0777) != 0) return errno;
      if (::mkfifo((dir + "/fifo").c_str(), 0660) != 0) return errno;
      fd = ::open((dir + "/sub/nested").c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
      if (fd < 0) return errno;
      ::close(fd);
      return 0;
    });
  };
  REQUIRE(create_all(v.root("g1", "shared/view")) == 0);
  REQUIRE(create_all(v.backing("g1", "shared/native")) == 0);
  for (const char* name : {"file", "sub", "fifo", "sub/nested"}) {
    INFO(name);
    std::string through = v.root("g1", std::string("shared/view/") + name);
    std::string native = v.backing("g1", std::string("shared/native/") + name);
    CHECK((stat_of(through).st_mode & 07777) == (stat_of(native).st_mode & 07777));
    CHECK((stat_of(v.backing("g1", std::string("shared/view/") + name)).st_mode & 07777) ==
          (stat_of(native).st_mode & 07777));
    CHECK(acl_text(through) == acl_text(native));
    CHECK(xattr_of(through, kAccess) == xattr_of(native, kAccess));
    CHECK(xattr_of(through, kDefault) == xattr_of(native, kDefault));
    CHECK_FALSE(xattr_of(through, kAccess).empty());
  }
  // what the default ACL means: umask 022 ignored (group rw- is the mask: user 1000 gets
  // rw-), other from the default ACL (r-x of the 0755 directory)
  std::string file = v.root("g1", "shared/view/file");
  CHECK((stat_of(file).st_mode & 0777) == 0664);
  CHECK(acl_text(file).find("user:1000:rwx\t#effective:rw-") != std::string::npos);
  CHECK(acl_text(v.root("g1", "shared/view/sub")).find("default:user:1000:rwx") != std::string::npos);
  CHECK(try_open(1000, file, O_WRONLY) == 0);
  CHECK(try_open(1001, file, O_WRONLY) == EACCES);
  CHECK(try_open(1000, v.root("g1", "shared/view/sub/nested"), O_RDONLY) == 0);
}

TEST_CASE("the caller's umask applies to entries created through the view without a default ACL", "[fs][acl]") {
  VUNIFY_REQUIRE_FUSE();
  bool passthrough = GENERATE(true, false);
  INFO("passthrough " << passthrough);
  AclPool v(1);
  mkdirs(v.backing("g1", "plain"));
  REQUIRE(::chmod(v.backing("g1", "plain").c_str(), 01777) == 0);
  v.mount_all(passthrough);
  std::string dir = v.root("g1", "plain");
  for (mode_t mask : {mode_t{027}, mode_t{0}, mode_t{077}}) {
    INFO("umask 0" << std::oct << mask);
    std::string tag = std::to_string(mask);
    REQUIRE(as_user(1000, mask, [&] {
              int fd = ::open((dir + "/f" + tag).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
              if (fd < 0) return errno;
              ::close(fd);
              if (::mkdir((dir + "/d" + tag).c_str(), 0777) != 0) return errno;
              if (::mknod((dir + "/p" + tag).c_str(), S_IFIFO | 0666, 0) != 0) return errno;
              return 0;
            }) == 0);
    CHECK((stat_of(dir + "/f" + tag).st_mode & 07777) == (0666 & ~mask));
    CHECK((stat_of(dir + "/d" + tag).st_mode & 07777) == (0777 & ~mask));
    CHECK((stat_of(dir + "/p" + tag).st_mode & 07777) == (0666 & ~mask));
    CHECK(stat_of(dir + "/f" + tag).st_uid == 1000);
    CHECK(xattr_of(dir + "/f" + tag, kAccess).empty());
  }
  // the daemon's own umask is untouched by guests: a copy-on-write break still works and
  // keeps the shared file's mode exactly
  write_at(v.root("g1", "data/big.txt"), "x", 0);
  CHECK((stat_of(v.root("g1", "data/big.txt")).st_mode & 07777) == 0664);
}

// The daemon's threads set the caller's fsuid/fsgid/umask only when they differ from what the
// thread has: alternating callers must each get their own owner and umask, and the daemon's own
// work in between (a copy-on-write break) its own credentials.
TEST_CASE("alternating callers create entries with their own owner and umask through the view", "[fs][acl]") {
  VUNIFY_REQUIRE_FUSE();
  bool passthrough = GENERATE(true, false);
  INFO("passthrough " << passthrough);
  AclPool v(1);
  mkdirs(v.backing("g1", "plain"));
  REQUIRE(::chmod(v.backing("g1", "plain").c_str(), 01777) == 0);
  v.mount_all(passthrough);
  std::string dir = v.root("g1", "plain");
  struct Caller {
    uid_t id;
    mode_t mask;
  };
  const Caller callers[] = {{1000, 077}, {0, 022}, {1000, 0}, {0, 0}, {1001, 027}, {0, 077}, {1000, 077}};
  for (size_t round = 0; round < 2; ++round)
    for (size_t i = 0; i < std::size(callers); ++i) {
      const Caller& c = callers[i];
      std::string tag = std::to_string(round) + "-" + std::to_string(i);
      INFO("caller " << c.id << " umask 0" << std::oct << c.mask << std::dec << " " << tag);
      REQUIRE(as_user(c.id, c.mask, [&] {
                int fd = ::open((dir + "/f" + tag).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
                if (fd < 0) return errno;
                ::close(fd);
                if (::mkdir((dir + "/d" + tag).c_str(), 0777) != 0) return errno;
                return 0;
              }) == 0);
      struct stat f = stat_of(dir + "/f" + tag), d = stat_of(dir + "/d" + tag);
      CHECK((f.st_mode & 07777) == (0666 & ~c.mask));
      CHECK((d.st_mode & 07777) == (0777 & ~c.mask));
      CHECK(f.st_uid == c.id);
      CHECK(f.st_gid == c.id);
      CHECK(d.st_uid == c.id);
      // the backing tree agrees (not only the kernel's view of the reply)
      CHECK(stat_of(v.backing("g1", "plain/f" + tag)).st_uid == c.id);
    }
  // a break by the daemon after all of them: its private copy keeps the shared file's mode and owner
  struct stat before = stat_of(v.root("g1", "data/big.txt"));
  write_at(v.root("g1", "data/big.txt"), "x", 0);
  struct stat after = stat_of(v.backing("g1", "data/big.txt"));
  CHECK((after.st_mode & 07777) == (before.st_mode & 07777));
  CHECK(after.st_uid == before.st_uid);
  CHECK(after.st_gid == before.st_gid);
}

TEST_CASE("setting or removing an ACL of a shared file through the view breaks it first", "[fs][acl][cow]") {
  VUNIFY_REQUIRE_FUSE();
  VUNIFY_REQUIRE_ACL_TOOLS();
  bool passthrough = GENERATE(true, false);
  INFO("passthrough " << passthrough);
  AclPool v(2);
  v.acl_file("srv/secret", "secret\n");
  v.unify();
  const std::string secret = "srv/secret", plain = "data/shared.bin";
  REQUIRE(same_inode(v.backing("g1", secret), v.backing("g2", secret)));
  REQUIRE(same_inode(v.backing("g1", plain), v.backing("g2", plain)));
  v.mount_all(passthrough);
  Snapshot g2_before = snapshot(v.root("g2")), store_before = store_snapshot(v.pool);
  // the kernel has cached the ACLs of both guests' inodes
  REQUIRE(try_open(1001, v.root("g1", secret)) == EACCES);
  REQUIRE(try_open(1001, v.root("g2", secret)) == EACCES);
  int reader = ::open(v.root("g1", plain).c_str(), O_RDONLY);  // an open file across the break
  REQUIRE(reader >= 0);

  REQUIRE(setfacl("-m u:1001:r", v.root("g1", secret)));
  CHECK(try_open(1001, v.root("g1", secret)) == 0);       // the new ACL is enforced at once
  CHECK(try_open(1001, v.root("g2", secret)) == EACCES);  // the other guest is unchanged
  CHECK(acl_text(v.root("g1", secret)).find("user:1001:r--") != std::string::npos);
  CHECK_FALSE(same_inode(v.backing("g1", secret), v.backing("g2", secret)));

  REQUIRE(setfacl("-m u:1000:rw", v.root("g1", plain)));
  CHECK(acl_text(v.root("g1", plain)).find("user:1000:rw-") != std::string::npos);
  CHECK((stat_of(v.root("g1", plain)).st_mode & 07777) == 0664);  // the mask shows as group bits
  CHECK_FALSE(same_inode(v.backing("g1", plain), v.backing("g2", plain)));
  CHECK(xattr_of(v.root("g2", plain), kAccess).empty());
  ::close(reader);

  // removing an ACL of a shared file (another guest's copy of the secret stays as it was)
  AclPool w(2);
  w.acl_file("srv/secret", "secret\n");
  w.unify();
  w.mount_all(passthrough);
  REQUIRE(same_inode(w.backing("g1", secret), w.backing("g2", secret)));
  Snapshot w_store = store_snapshot(w.pool);
  REQUIRE(try_open(1000, w.root("g1", secret)) == 0);
  REQUIRE(setfacl("-b", w.root("g1", secret)));
  CHECK(xattr_of(w.root("g1", secret), kAccess).empty());
  CHECK(try_open(1000, w.root("g1", secret)) == EACCES);
  CHECK(try_open(1000, w.root("g2", secret)) == 0);
  CHECK_FALSE(same_inode(w.backing("g1", secret), w.backing("g2", secret)));
  CHECK(diff(w_store, store_snapshot(w.pool)).empty());
  CHECK(cli(w.pool, "verify").status == 0);

  CHECK(diff(g2_before, snapshot(v.root("g2"))).empty());
  CHECK(diff(store_before, store_snapshot(v.pool)).empty());
  auto verify = cli(v.pool, "verify");
  INFO(verify.out);
  CHECK(verify.status == 0);
}

TEST_CASE("chmod through the view updates the ACL mask, private or shared", "[fs][acl]") {
  VUNIFY_REQUIRE_FUSE();
  VUNIFY_REQUIRE_ACL_TOOLS();
  bool passthrough = GENERATE(true, false);
  INFO("passthrough " << passthrough);
  AclPool v(2);
  v.shared_and_own("srv/shared", "same\n", "srv/own", "own\n");
  v.mount_all(passthrough);
  Snapshot store_before = store_snapshot(v.pool);
  for (const std::string rel : {"srv/own", "srv/shared"}) {
    INFO(rel);
    std::string p = v.root("g1", rel);
    REQUIRE(try_open(1000, p) == 0);  // caches the ACL in the kernel
    REQUIRE(::chmod(p.c_str(), 0600) == 0);
    CHECK(try_open(1000, p) == EACCES);
    CHECK(acl_text(p).find("mask::---") != std::string::npos);
    CHECK(acl_text(p).find("user:1000:r--\t#effective:---") != std::string::npos);
    CHECK(acl_text(p) == acl_text(v.backing("g1", rel)));
    REQUIRE(::chmod(p.c_str(), 0640) == 0);
    CHECK(try_open(1000, p) == 0);
  }
  CHECK_FALSE(same_inode(v.backing("g1", "srv/shared"), v.backing("g2", "srv/shared")));
  CHECK(try_open(1000, v.root("g2", "srv/shared")) == 0);
  CHECK(acl_text(v.root("g2", "srv/shared")).find("mask::r--") != std::string::npos);
  CHECK(diff(store_before, store_snapshot(v.pool)).empty());
  CHECK(cli(v.pool, "verify").status == 0);
}

TEST_CASE("a break in a directory with a default ACL keeps the file's own (absent) ACL", "[fs][acl][cow]") {
  VUNIFY_REQUIRE_FUSE();
  VUNIFY_REQUIRE_ACL_TOOLS();
  bool passthrough = GENERATE(true, false);
  INFO("passthrough " << passthrough);
  AclPool v(2);
  for (const auto& g : v.guests) {
    write_file(v.backing(g, "logs/plain"), std::string(5000, 'p'), 0640, 0, 0);
    REQUIRE(setfacl("-d -m u:1000:rwx", v.backing(g, "logs")));  // after the file: it has no ACL
  }
  v.unify();
  REQUIRE(same_inode(v.backing("g1", "logs/plain"), v.backing("g2", "logs/plain")));
  v.mount_all(passthrough);
  std::string p = v.root("g1", "logs/plain");
  REQUIRE(xattr_of(p, kAccess).empty());
  write_at(p, "X", 0);
  CHECK_FALSE(same_inode(v.backing("g1", "logs/plain"), v.backing("g2", "logs/plain")));
  CHECK(xattr_of(p, kAccess).empty());
  CHECK((stat_of(p).st_mode & 07777) == 0640);
  CHECK(try_open(1000, p) == EACCES);
  CHECK(cli(v.pool, "verify").status == 0);
}

TEST_CASE("an ACL set by a user outside the file's group clears setgid, as on the backing filesystem", "[fs][acl]") {
  VUNIFY_REQUIRE_FUSE();
  VUNIFY_REQUIRE_ACL_TOOLS();
  bool passthrough = GENERATE(true, false);
  INFO("passthrough " << passthrough);
  AclPool v(2);
  for (const auto& g : v.guests) write_file(v.backing(g, "srv/shared-sgid"), "same\n", 02775, 1000, 100);
  write_file(v.backing("g1", "srv/own-sgid"), "own\n", 02775, 1000, 100);
  std::string native = v.tmp / "native-sgid";
  write_file(native, "native\n", 02775, 1000, 100);
  v.unify();
  REQUIRE(same_inode(v.backing("g1", "srv/shared-sgid"), v.backing("g2", "srv/shared-sgid")));
  v.mount_all(passthrough);
  Snapshot store_before = store_snapshot(v.pool);
  // uid 1000 owns the files but is not in group 100 (no supplementary groups, no CAP_FSETID)
  auto setfacl_as_owner = [](const std::string& path) {
    return run("setpriv --reuid=1000 --regid=1000 --clear-groups setfacl -m u:65534:r '" + path + "'").status;
  };
  REQUIRE(setfacl_as_owner(native) == 0);
  mode_t native_mode = stat_of(native).st_mode & 07777;
  REQUIRE((native_mode & S_ISGID) == 0);  // what the kernel does natively
  for (const std::string rel : {"srv/own-sgid", "srv/shared-sgid"}) {
    INFO(rel);
    REQUIRE(setfacl_as_owner(v.root("g1", rel)) == 0);
    CHECK((stat_of(v.root("g1", rel)).st_mode & 07777) == native_mode);
    CHECK(acl_text(v.root("g1", rel)) == acl_text(v.backing("g1", rel)));
    CHECK(acl_text(v.root("g1", rel)).find("user:65534:r--") != std::string::npos);
  }
  // root (CAP_FSETID) keeps setgid, as natively
  write_file(native, "native\n", 02775, 1000, 100);
  REQUIRE(setfacl("-m u:65534:r", native));
  REQUIRE(setfacl("-m u:65534:r", v.root("g2", "srv/shared-sgid")));
  CHECK((stat_of(native).st_mode & S_ISGID) != 0);
  CHECK((stat_of(v.root("g2", "srv/shared-sgid")).st_mode & S_ISGID) != 0);
  CHECK(diff(store_before, store_snapshot(v.pool)).empty());
  CHECK(cli(v.pool, "verify").status == 0);
}
