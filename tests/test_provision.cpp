// Provisioning: many guests from one template cost only their directories and customized
// files, every guest tree is complete, guests are independent, name collisions create nothing.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <set>

#include "os/walk.hpp"
#include "tests/helpers.hpp"
#include "tests/scratch_pool.hpp"
#include "unify/pool.hpp"

using namespace vunify;
using vunify::test::TempDir;

namespace {

struct ProvisionFixture : test::ScratchPool {
  std::string src = dir / "src";
  ProvisionFixture() {
    test::make_sample_guest(src);
    test::write_file(src + "/etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\tguest\n::1\tlocalhost\n");
    test::write_file(src + "/etc/machine-id", "0123456789abcdef0123456789abcdef\n", 0444);
    test::write_file(src + "/var/log/dpkg.log", std::string(50000, 'l'), 0640, 0, 4);
    test::write_file(src + "/var/log/apt/history.log", "history\n");
    for (int i = 0; i < 40; ++i) test::write_file(src + "/usr/share/doc/pkg" + std::to_string(i) + "/copyright", "text\n");
    ok("guest add seed --from '" + src + "'");
    ok("template from-guest tpl seed");
    ok("guest rm seed");
  }
  std::string tpl(const std::string& rel = "") const { return pool + "/templates/tpl/root" + (rel.empty() ? "" : "/" + rel); }
  // Disk blocks (KiB) under the pool, each inode counted once, as du does.
  uint64_t pool_kib() const {
    auto r = test::run("du -sk '" + pool + "' | cut -f1");
    return std::stoull(r.out);
  }
  uint64_t template_dir_kib() const {
    uint64_t blocks = 0;
    os::unique_fd root = os::open_dir(tpl());
    blocks += static_cast<uint64_t>(test::lstat_of(tpl()).st_blocks);
    os::walk_tree(root.get(), [&](const os::WalkEntry& e) {
      if (S_ISDIR(e.st.st_mode)) blocks += static_cast<uint64_t>(e.st.st_blocks);
      return true;
    });
    return blocks / 2;
  }
};

const std::set<std::string> kCustomized = {"etc/hostname", "etc/hosts", "etc/machine-id", "var/log/dpkg.log",
                                           "var/log/apt/history.log"};

}  // namespace

TEST_CASE("50 guests from one template: only directories and customized files cost disk", "[provision]") {
  VUNIFY_REQUIRE_ROOT();
  ProvisionFixture f;
  ::sync();
  uint64_t before = f.pool_kib();
  f.ok("guest create web --template tpl --count 50");
  uint64_t per_guest = (f.pool_kib() - before) / 50;
  // Directories, plus hostname/hosts/machine-id (a block each), the config file and the
  // mount point: never any file data.
  uint64_t limit = f.template_dir_kib() * 105 / 100 + 64;
  INFO("per guest " << per_guest << " KiB, limit " << limit);
  CHECK(per_guest <= limit);

  test::Snapshot tpl = test::snapshot(f.tpl());
  std::set<std::string> machine_ids;
  for (int i = 1; i <= 50; ++i) {
    std::string name = (i < 10 ? "web-0" : "web-") + std::to_string(i);
    // Complete: every entry of the template, same metadata and content, but the customized files.
    test::Snapshot g = test::snapshot(f.backing(name));
    for (const auto& line : test::diff(tpl, g)) {
      std::string path = line.substr(line.find(' ') + 1);
      path = path.substr(0, path.find(':'));
      INFO(name << ": " << line);
      CHECK(kCustomized.count(path) == 1);
    }
    CHECK(test::read_file(f.backing(name, "etc/hostname")) == name + "\n");
    CHECK(test::read_file(f.backing(name, "etc/hosts")) == "127.0.0.1\tlocalhost\n127.0.1.1\t" + name + "\n::1\tlocalhost\n");
    machine_ids.insert(test::read_file(f.backing(name, "etc/machine-id")));
    CHECK(test::lstat_of(f.backing(name, "var/log/dpkg.log")).st_size == 0);
    CHECK((test::lstat_of(f.backing(name, "var/log/dpkg.log")).st_mode & 07777) == 0640);
    // Shared files are the template's inodes (no data copied).
    for (const char* rel : {"home-file", "usr/bin/ping", "var/lib/sparse", "etc/os-release"})
      CHECK(test::lstat_of(f.backing(name, rel)).st_ino == test::lstat_of(f.tpl(rel)).st_ino);
    CHECK(test::read_file(f.pool + "/etc/" + name + ".toml").find("template = 'tpl'") != std::string::npos);
  }
  CHECK(machine_ids.size() == 50);

  // A guest's private file is its own: writing it changes no other guest and not the template.
  test::write_file(f.backing("web-07", "etc/hostname"), "changed\n");
  CHECK(test::read_file(f.backing("web-08", "etc/hostname")) == "web-08\n");
  CHECK(test::read_file(f.tpl("etc/hostname")) == "guest\n");
  auto list = test::vunify(f.pool, "guest list");
  CHECK(list.out.find("web-50") != std::string::npos);
}

TEST_CASE("guest create --count with a name collision fails before creating anything", "[provision]") {
  VUNIFY_REQUIRE_ROOT();
  ProvisionFixture f;
  f.ok("guest create web-03 --template tpl");
  test::Snapshot before = test::snapshot(f.pool + "/backing");
  auto r = test::vunify(f.pool, "guest create web --template tpl --count 5");
  INFO(r.out);
  CHECK(r.status == 2);
  CHECK(r.out.find("guest 'web-03' already exists") != std::string::npos);
  CHECK(test::diff(before, test::snapshot(f.pool + "/backing")).empty());
  auto list = test::vunify(f.pool, "guest list");
  CHECK(list.out.find("web-01") == std::string::npos);
  CHECK(::access((f.pool + "/etc/web-01.toml").c_str(), F_OK) != 0);
  CHECK(test::vunify(f.pool, "guest create nope --template missing").status == 2);
}

TEST_CASE("guest clone shares the shared files, copies private ones and customizes", "[provision]") {
  VUNIFY_REQUIRE_ROOT();
  ProvisionFixture f;
  f.ok("guest create a --template tpl");
  test::write_file(f.backing("a", "root/notes"), "private to a\n");
  f.ok("guest clone a b");
  CHECK(test::read_file(f.backing("b", "root/notes")) == "private to a\n");
  CHECK(test::lstat_of(f.backing("b", "root/notes")).st_ino != test::lstat_of(f.backing("a", "root/notes")).st_ino);
  CHECK(test::lstat_of(f.backing("b", "home-file")).st_ino == test::lstat_of(f.tpl("home-file")).st_ino);
  CHECK(test::read_file(f.backing("b", "etc/hostname")) == "b\n");
  CHECK(test::read_file(f.pool + "/etc/b.toml").find("cloned_from = 'a'") != std::string::npos);
  auto r = test::vunify(f.pool, "template rm tpl");
  CHECK(r.status == 2);  // a and b use it
}
