// The guest view: exact metadata (invariant 3), private nlink/st_ino, hidden markers
// (invariant 8), full filesystem semantics, and the mount lifecycle.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <dirent.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <fstream>
#include <map>

#include "tests/test_fs_support.hpp"

using namespace vunify::test;

TEST_CASE("the view shows each guest exactly as it was before unify", "[fs][view]") {
  VUNIFY_REQUIRE_FUSE();
  bool passthrough = GENERATE(true, false);
  ViewPool v(2, passthrough);
  for (const auto& g : v.guests) {
    INFO("guest " << g << ", passthrough " << passthrough);
    auto d = diff(snapshot(v.source(g)), snapshot(v.root(g)));
    CHECK(d.empty());
    for (const auto& line : d) WARN(line);
  }
}

TEST_CASE("shared files show nlink 1 and stable inode numbers of their own in each guest", "[fs][view]") {
  VUNIFY_REQUIRE_FUSE();
  ViewPool v(2);
  const std::string f = "data/shared.bin";
  REQUIRE(stat_of(v.backing("g1", f)).st_nlink >= 3);  // store + two guests
  struct stat a = stat_of(v.root("g1", f)), b = stat_of(v.root("g2", f));
  CHECK(a.st_nlink == 1);
  CHECK(b.st_nlink == 1);
  CHECK(a.st_ino != b.st_ino);
  CHECK(a.st_ino != stat_of(v.root("g1", "data/big.txt")).st_ino);
  CHECK(a.st_ino != stat_of(v.root("g1", "etc/hostname")).st_ino);
  // guest-internal hard links still are one file with two links
  struct stat h1 = stat_of(v.root("g1", "etc/os-release")), h2 = stat_of(v.root("g1", "etc/os-release.hardlink"));
  CHECK(h1.st_ino == h2.st_ino);
  CHECK(h1.st_nlink == 2);
  v.umount_all();
  v.mount_all();
  CHECK(stat_of(v.root("g1", f)).st_ino == a.st_ino);  // stable across remounts
}

TEST_CASE("directory listings show the inode numbers stat shows, in every chunk", "[fs][view]") {
  VUNIFY_REQUIRE_FUSE();
  bool passthrough = GENERATE(true, false);
  ViewPool v(2, passthrough, false);
  // Enough entries that the kernel reads the listing in several chunks: after the first it
  // asks plain READDIR (no attributes), which must not show the store object's inode number.
  for (const auto& g : v.guests) {
    ::mkdir(v.backing(g, "many").c_str(), 0755);
    for (int i = 0; i < 600; ++i) write_file(v.backing(g, "many/file-with-a-longish-name-" + std::to_string(i)), "same\n");
    write_file(v.backing(g, "many/own-" + g), "private to " + g + "\n");
  }
  REQUIRE(cli(v.pool, "unify --all").status == 0);
  REQUIRE(stat_of(v.backing("g1", "many/file-with-a-longish-name-7")).st_nlink >= 3);
  v.mount_all(passthrough);
  std::map<std::string, ino_t> listed;
  DIR* dir = ::opendir(v.root("g1", "many").c_str());
  REQUIRE(dir != nullptr);
  while (dirent* d = ::readdir(dir))
    if (std::string(d->d_name) != "." && std::string(d->d_name) != "..") listed[d->d_name] = d->d_ino;
  ::closedir(dir);
  REQUIRE(listed.size() == 601);
  size_t mismatched = 0;
  for (const auto& [name, ino] : listed) mismatched += stat_of(v.root("g1", "many/" + name)).st_ino != ino;
  CHECK(mismatched == 0);
  ino_t object = stat_of(v.backing("g1", "many/file-with-a-longish-name-7")).st_ino;
  CHECK(listed["file-with-a-longish-name-7"] != object);
}

TEST_CASE("O_TMPFILE opens through the view: linkable into the guest, or never with O_EXCL", "[fs][view]") {
  VUNIFY_REQUIRE_FUSE();
  bool passthrough = GENERATE(true, false);
  INFO("passthrough " << passthrough);
  ViewPool v(1, passthrough);
  std::string dir = v.root("g1", "etc");
  auto backing_entries = [&] {
    size_t n = 0;
    DIR* d = ::opendir(v.backing("g1", "etc").c_str());
    while (d && ::readdir(d)) ++n;
    if (d) ::closedir(d);
    return n;
  };
  size_t entries_before = backing_entries();
  mode_t old_mask = ::umask(027);
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0666);
  ::umask(old_mask);
  REQUIRE(fd >= 0);
  struct stat st;
  REQUIRE(::fstat(fd, &st) == 0);
  CHECK(st.st_nlink == 0);
  CHECK((st.st_mode & 07777) == 0640);
  CHECK(S_ISREG(st.st_mode));
  CHECK(::write(fd, "tmp data\n", 9) == 9);
  CHECK(backing_entries() == entries_before);  // nameless until linked
  REQUIRE(::linkat(fd, "", AT_FDCWD, (dir + "/from-tmpfile").c_str(), AT_EMPTY_PATH) == 0);
  REQUIRE(::fstat(fd, &st) == 0);
  CHECK(st.st_nlink == 1);
  ::close(fd);
  CHECK(content_of(dir + "/from-tmpfile") == "tmp data\n");
  CHECK(content_of(v.backing("g1", "etc/from-tmpfile")) == "tmp data\n");
  CHECK((stat_of(dir + "/from-tmpfile").st_mode & 07777) == 0640);

  // O_EXCL: never linkable (the kernel's answer natively too), and nothing left behind
  fd = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_EXCL | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  CHECK(::linkat(fd, "", AT_FDCWD, (dir + "/never").c_str(), AT_EMPTY_PATH) != 0);
  int link_errno = errno;
  ::close(fd);
  int native = ::open(v.tmp.path().c_str(), O_TMPFILE | O_WRONLY | O_EXCL | O_CLOEXEC, 0600);
  REQUIRE(native >= 0);
  CHECK(::linkat(native, "", AT_FDCWD, (v.tmp / "never").c_str(), AT_EMPTY_PATH) != 0);
  CHECK(link_errno == errno);
  ::close(native);
  CHECK(::access((dir + "/never").c_str(), F_OK) != 0);
  CHECK(backing_entries() == entries_before + 1);  // only from-tmpfile
}

TEST_CASE("vunify markers are invisible to guests and cannot be set or removed", "[fs][view]") {
  VUNIFY_REQUIRE_FUSE();
  ViewPool v(1, true, false);
  set_xattr(v.backing("g1", "etc/hostname"), "trusted.vunify.test", "x");
  v.mount_all();
  std::string p = v.root("g1", "etc/hostname");
  char names[1024];
  ssize_t n = ::listxattr(p.c_str(), names, sizeof names);
  REQUIRE(n >= 0);
  CHECK(std::string(names, static_cast<size_t>(n)).find("vunify") == std::string::npos);
  CHECK(::getxattr(p.c_str(), "trusted.vunify.test", nullptr, 0) < 0);
  CHECK(errno == ENODATA);
  CHECK(::setxattr(p.c_str(), "trusted.vunify.object", "y", 1, 0) != 0);
  CHECK(errno == EPERM);
  CHECK(::removexattr(p.c_str(), "trusted.vunify.test") != 0);
  CHECK(errno == EPERM);
}

TEST_CASE("guests get full filesystem semantics through the view", "[fs][view]") {
  VUNIFY_REQUIRE_FUSE();
  ViewPool v(1);
  auto r = [&](const std::string& rel) { return v.root("g1", rel); };
  REQUIRE(::mkdir(r("d").c_str(), 0750) == 0);
  CHECK((stat_of(r("d")).st_mode & 07777) == 0750);
  REQUIRE(::mkfifo(r("d/fifo").c_str(), 0600) == 0);
  CHECK(S_ISFIFO(stat_of(r("d/fifo")).st_mode));
  REQUIRE(::mknod(r("d/null").c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0);
  CHECK(stat_of(r("d/null")).st_rdev == makedev(1, 3));
  REQUIRE(::symlink("../etc/hostname", r("d/link").c_str()) == 0);
  CHECK(content_of(r("d/link")) == "guest\n");
  write_file(r("d/a"), "A", 0644, 1000, 1000);
  write_file(r("d/b"), "B", 0644);
  CHECK(stat_of(r("d/a")).st_uid == 1000);
  CHECK(::renameat2(AT_FDCWD, r("d/a").c_str(), AT_FDCWD, r("d/b").c_str(), RENAME_NOREPLACE) != 0);
  CHECK(errno == EEXIST);
  REQUIRE(::renameat2(AT_FDCWD, r("d/a").c_str(), AT_FDCWD, r("d/b").c_str(), RENAME_EXCHANGE) == 0);
  CHECK(content_of(r("d/a")) == "B");
  CHECK(content_of(r("d/b")) == "A");
  REQUIRE(::rename(r("d/a").c_str(), r("d/c").c_str()) == 0);
  REQUIRE(::link(r("d/c").c_str(), r("d/c2").c_str()) == 0);
  CHECK(stat_of(r("d/c")).st_nlink == 2);
  REQUIRE(::unlink(r("d/c2").c_str()) == 0);
  CHECK(stat_of(r("d/c")).st_nlink == 1);
  // sparse files: SEEK_DATA/SEEK_HOLE and copy_file_range
  int fd = ::open(r("var/lib/sparse").c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  CHECK(::lseek(fd, 0, SEEK_DATA) >= (10 << 20) - 4096);
  CHECK(::lseek(fd, 0, SEEK_HOLE) == 0);
  int out = ::open(r("d/copy").c_str(), O_WRONLY | O_CREAT, 0644);
  REQUIRE(out >= 0);
  loff_t in_off = 0;
  CHECK(::copy_file_range(fd, &in_off, out, nullptr, 1 << 21, 0) >= 0);
  ::close(out);
  ::close(fd);
  // a user who may not write the directory is refused by the kernel (default_permissions)
  auto denied = run("setpriv --reuid=1000 --regid=1000 --clear-groups touch '" + r("etc/new") + "'");
  CHECK(denied.status != 0);
  struct statvfs sv;
  CHECK(::statvfs(r("").c_str(), &sv) == 0);
  CHECK(sv.f_blocks > 0);
  REQUIRE(::unlink(r("d/fifo").c_str()) == 0);
  CHECK(::rmdir(r("d").c_str()) != 0);
  CHECK(errno == ENOTEMPTY);
}

TEST_CASE("setuid bits and file capabilities work when executed through the view", "[fs][view]") {
  VUNIFY_REQUIRE_FUSE();
  if (run("command -v setpriv").status != 0) {
    WARN("skipped: setpriv (util-linux) missing");
    return;
  }
  ViewPool v(1, true, false);
  // a copy of cat that may read any file (cap_dac_read_search=ep), and a setuid-root copy
  write_file(v.backing("g1", "usr/bin/capcat"), read_file("/bin/cat"), 0755);
  const unsigned char cap[] = {0x01, 0x00, 0x00, 0x02, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
                               0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  set_xattr(v.backing("g1", "usr/bin/capcat"), "security.capability", std::string(reinterpret_cast<const char*>(cap), sizeof cap));
  write_file(v.backing("g1", "usr/bin/suid-id"), read_file("/usr/bin/id"), 04755);
  v.mount_all();
  auto as_nobody = [&](const std::string& cmd) { return run("setpriv --reuid=65534 --regid=65534 --clear-groups " + cmd); };
  auto cap_read = as_nobody("'" + v.root("g1", "usr/bin/capcat") + "' '" + v.root("g1", "etc/shadow") + "'");
  CHECK(cap_read.status == 0);
  CHECK(cap_read.out.find("root:") != std::string::npos);
  CHECK(as_nobody("cat '" + v.root("g1", "etc/shadow") + "'").status != 0);
  auto suid = as_nobody("'" + v.root("g1", "usr/bin/suid-id") + "' -u");
  CHECK(suid.out == "0\n");
}

TEST_CASE("a write by an unprivileged guest user clears setuid and setgid bits", "[fs][view]") {
  VUNIFY_REQUIRE_FUSE();
  if (run("command -v setpriv").status != 0) {
    WARN("skipped: setpriv (util-linux) missing");
    return;
  }
  for (bool passthrough : {true, false}) {
    INFO("passthrough " << passthrough);
    ViewPool v(1, passthrough, false);
    REQUIRE(::chmod(v.tmp.path().c_str(), 0755) == 0);  // nobody must reach the view
    write_file(v.backing("g1", "home/prog"), std::string(300000, 'p'), 06775, 65534, 65534);
    v.mount_all();
    std::string prog = v.root("g1", "home/prog");
    auto wrote = run("setpriv --reuid=65534 --regid=65534 --clear-groups sh -c \"echo more >> '" + prog + "'\"");
    INFO(wrote.out);
    CHECK(wrote.status == 0);
    struct stat st = lstat_of(prog);
    CHECK((st.st_mode & 07777) == 0775);
    CHECK(st.st_size == 300005);
  }
}

TEST_CASE("mount is idempotent, and a dead daemon's mount is cleaned up and remounted", "[fs][view]") {
  VUNIFY_REQUIRE_FUSE();
  ViewPool v(1);
  auto again = cli(v.pool, "mount g1");
  CHECK(again.status == 0);
  CHECK(again.out.find("already mounted") != std::string::npos);
  CHECK(cli(v.pool, "guest list").out.find("mounted") != std::string::npos);
  // kill -9 the daemon: the guest gets ENOTCONN, never wrong data
  auto daemon = run("cat '" + v.pool + "/log/g1.pid'");
  REQUIRE(daemon.status == 0);
  REQUIRE(::kill(std::stoi(daemon.out), SIGKILL) == 0);
  ::usleep(200000);
  struct stat st;
  CHECK(::stat(v.root("g1", "etc/hostname").c_str(), &st) != 0);
  CHECK((errno == ENOTCONN || errno == ECONNABORTED));
  auto remount = cli(v.pool, "mount g1");
  CHECK(remount.status == 0);
  INFO(remount.out);
  CHECK(content_of(v.root("g1", "etc/hostname")) == "guest\n");
  auto um = cli(v.pool, "umount g1");
  CHECK(um.status == 0);
  CHECK(cli(v.pool, "guest list").out.find("mounted") == std::string::npos);
}

namespace {

// Bytes the daemon of `guest` has read with read-like system calls so far.
long long daemon_rchar(const ViewPool& v, const std::string& guest) {
  std::string pid = read_file(v.pool + "/log/" + guest + ".pid");
  std::ifstream io("/proc/" + std::to_string(std::stoi(pid)) + "/io");
  for (std::string key; io >> key;) {
    long long value = 0;
    io >> value;
    if (key == "rchar:") return value;
  }
  return -1;
}

}  // namespace

TEST_CASE("big files pass through to the kernel: their reads never reach the daemon", "[fs][view][passthrough]") {
  VUNIFY_REQUIRE_FUSE();
  bool passthrough = GENERATE(true, false);
  ViewPool v(1, passthrough, false);
  std::string big(8 << 20, 'q');
  write_file(v.backing("g1", "big.bin"), big);
  v.mount_all(passthrough);
  stat_of(v.root("g1"));  // INIT has been answered (and logged) once a request got through
  std::string log = read_file(v.pool + "/log/g1.log");
  if (passthrough && log.find("kernel passthrough on") == std::string::npos) {
    WARN("skipped: the kernel does not offer FUSE passthrough here");
    return;
  }
  long long before = daemon_rchar(v, "g1");
  CHECK(content_of(v.root("g1", "big.bin")) == big);
  long long served = daemon_rchar(v, "g1") - before;
  INFO("bytes read by the daemon: " << served << ", passthrough " << passthrough);
  if (passthrough) CHECK(served < (1 << 20));
  else CHECK(served >= (8 << 20));
}

TEST_CASE("the daemon logs the requests it served, by opcode, when it stops", "[fs][view][requests]") {
  VUNIFY_REQUIRE_FUSE();
  ViewPool v(1);
  for (int i = 0; i < 3; ++i) {
    std::string name = v.root("g1", "new" + std::to_string(i));
    write_file(name, "x");
    REQUIRE(::unlink(name.c_str()) == 0);
  }
  REQUIRE(cli(v.pool, "umount g1").status == 0);
  std::string log = read_file(v.pool + "/log/g1.log");
  auto at = log.rfind("requests served:");
  REQUIRE(at != std::string::npos);
  std::string line = log.substr(at, log.find('\n', at) - at);
  INFO(line);
  CHECK(line.find(" CREATE 3,") != std::string::npos);
  CHECK(line.find(" UNLINK 3,") != std::string::npos);
  CHECK(line.find(" INIT 1,") != std::string::npos);
  CHECK(line.find(" total ") != std::string::npos);
}
