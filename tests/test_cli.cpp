// The CLI on good and bad input: clear messages, non-zero exits, nothing changed.
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <sstream>

#include "tests/helpers.hpp"

using namespace vunify;
using vunify::test::TempDir;

namespace {
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
}  // namespace

TEST_CASE("init creates the layout and refuses foreign directories", "[cli]") {
  VUNIFY_REQUIRE_ROOT();
  TempDir dir;
  std::string pool = dir / "pool";
  test::CmdResult r = test::vunify(pool, "init");
  INFO(r.out);
  REQUIRE(r.status == 0);
  for (const char* sub : {"vunify.db", "store/objects/00", "store/objects/ff", "backing", "guests", "templates", "etc"})
    CHECK(::access((pool + "/" + sub).c_str(), F_OK) == 0);
  CHECK((test::lstat_of(pool + "/backing").st_mode & 0777) == 0700);
  CHECK(test::vunify(pool, "init").status == 0);  // idempotent
  CHECK(test::run(std::string(VUNIFY_BIN) + " init --pool '" + pool + "'").status == 0);  // --pool after the command

  test::write_file(dir / "foreign/data.txt", "precious");
  test::CmdResult foreign = test::vunify(dir / "foreign", "init");
  CHECK(foreign.status != 0);
  CHECK(contains(foreign.out, "not a vunify pool"));
  CHECK(test::read_file(dir / "foreign/data.txt") == "precious");

  test::CmdResult missing = test::vunify(dir / "nowhere", "guest list");
  CHECK(missing.status != 0);
  CHECK(contains(missing.out, "no pool at"));
}

TEST_CASE("init refuses a pool whose parts span filesystems", "[cli]") {
  VUNIFY_REQUIRE_ROOT();
  TempDir dir;
  std::string pool = dir / "pool";
  REQUIRE(test::vunify(pool, "init").status == 0);
  if (::mount("tmpfs", (pool + "/backing").c_str(), "tmpfs", 0, "size=1m") != 0) {
    WARN("skipped: cannot mount tmpfs");
    return;
  }
  struct Unmount {
    std::string p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{pool + "/backing"};
  for (const char* cmd : {"init", "guest list", "unify --all"}) {
    test::CmdResult r = test::vunify(pool, cmd);
    INFO(cmd << ": " << r.out);
    CHECK(r.status != 0);
    CHECK(contains(r.out, "different filesystem"));
  }
  test::mkdirs(dir / "fresh/backing");
  REQUIRE(::mount("tmpfs", (dir / "fresh/backing").c_str(), "tmpfs", 0, "size=1m") == 0);
  Unmount unmount2{dir / "fresh/backing"};
  test::CmdResult fresh = test::vunify(dir / "fresh", "init");
  CHECK(fresh.status != 0);
  CHECK(::access((dir / "fresh/vunify.db").c_str(), F_OK) != 0);
}

TEST_CASE("bad names, bad paths and bad arguments are refused clearly", "[cli]") {
  VUNIFY_REQUIRE_ROOT();
  TempDir dir;
  std::string pool = dir / "pool";
  REQUIRE(test::vunify(pool, "init").status == 0);
  test::write_file(dir / "src/file", "x");
  for (const char* bad : {"'../evil'", "'-x'", "'a/b'", "'.hidden'", "'sp ace'", "''"}) {
    test::CmdResult r = test::vunify(pool, std::string("guest add ") + bad + " --from '" + dir / "src" + "'");
    INFO(bad << ": " << r.out);
    CHECK(r.status != 0);
  }
  test::CmdResult named = test::vunify(pool, "guest add '../evil' --from '" + dir / "src" + "'");
  CHECK(contains(named.out, "invalid guest name"));
  test::CmdResult nosrc = test::vunify(pool, "guest add g --from '" + dir / "missing" + "'");
  CHECK(nosrc.status != 0);
  CHECK(contains(nosrc.out, "missing"));
  CHECK(test::vunify(pool, "guest list").out.find("no guests") != std::string::npos);
  CHECK(test::vunify(pool, "unify").status != 0);
  CHECK(contains(test::vunify(pool, "unify").out, "--all"));
  CHECK(contains(test::vunify(pool, "unify nosuch").out, "no guest named 'nosuch'"));
  CHECK(test::vunify(pool, "unify --min-size -5 --all").status != 0);
  CHECK(test::vunify(pool, "frobnicate").status != 0);
  REQUIRE(test::vunify(pool, "guest add g --from '" + dir / "src" + "'").status == 0);
  test::CmdResult dup = test::vunify(pool, "guest add g --from '" + dir / "src" + "'");
  CHECK(dup.status != 0);
  CHECK(contains(dup.out, "already exists"));
  test::CmdResult list = test::vunify(pool, "guest list --json");
  CHECK(contains(list.out, "\"name\": \"g\""));
  CHECK(test::vunify(pool, "guest rm g").status == 0);
  CHECK(::access((pool + "/backing/g").c_str(), F_OK) != 0);
  CHECK(test::vunify(pool, "--help").status == 0);
}

// The CLI registers only the group of subcommands a command line names (cli/commands.cpp): each
// subcommand in the help, and each of `guest` and `template`, must still be found on its own.
TEST_CASE("every subcommand in --help answers its own --help", "[cli]") {
  auto subcommands = [](const std::string& help) {
    std::vector<std::string> out;
    auto at = help.find("Subcommands:\n");
    REQUIRE(at != std::string::npos);
    std::istringstream lines(help.substr(at + 13));
    for (std::string line; std::getline(lines, line);)
      if (line.size() > 2 && line[0] == ' ' && line[2] != ' ') out.push_back(line.substr(2, line.find(' ', 2) - 2));
    return out;
  };
  std::vector<std::string> words;
  for (const auto& top : subcommands(test::vunify("/nonexistent", "--help").out)) {
    words.push_back(top);
    if (top == "guest" || top == "template")
      for (const auto& sub : subcommands(test::vunify("/nonexistent", top + " --help").out)) words.push_back(top + " " + sub);
  }
  CHECK(words.size() >= 30);
  for (const auto& w : {"guest create", "guest clone", "template import", "start", "exec", "set"})
    CHECK(std::find(words.begin(), words.end(), w) != words.end());
  for (const auto& w : words) {
    test::CmdResult r = test::vunify("/nonexistent", w + " --help");
    INFO(w << ": " << r.out);
    CHECK(r.status == 0);
    CHECK(contains(r.out, "vunify " + w + " [OPTIONS]"));
  }
  // --pool before the word, and an unknown word, still parse as before
  CHECK(test::run(std::string(VUNIFY_BIN) + " --pool=/elsewhere status --help").status == 0);
  test::CmdResult typo = test::vunify("/nonexistent", "strat g");
  CHECK(typo.status == 2);
  CHECK(contains(typo.out, "unknown command 'strat'"));
}

TEST_CASE("guest add copies every file type and all metadata", "[cli][guest]") {
  VUNIFY_REQUIRE_ROOT();
  TempDir dir;
  std::string pool = dir / "pool";
  REQUIRE(test::vunify(pool, "init").status == 0);
  test::make_sample_guest(dir / "src");
  auto before = test::snapshot(dir / "src");
  test::CmdResult r = test::vunify(pool, "guest add g --from '" + dir / "src" + "'");
  INFO(r.out);
  REQUIRE(r.status == 0);
  auto d = test::diff(before, test::snapshot(pool + "/backing/g"));
  INFO((d.empty() ? "" : d[0]));
  CHECK(d.empty());
  // hard link kept, sparse file still sparse
  CHECK(test::lstat_of(pool + "/backing/g/etc/os-release").st_ino == test::lstat_of(pool + "/backing/g/etc/os-release.hardlink").st_ino);
  CHECK(test::lstat_of(pool + "/backing/g/var/lib/sparse").st_blocks * 512 < (1 << 20));
  SECTION("--move renames on the same filesystem") {
    test::make_sample_guest(dir / "src2");
    auto before2 = test::snapshot(dir / "src2");
    REQUIRE(test::vunify(pool, "guest add m --move --from '" + dir / "src2" + "'").status == 0);
    CHECK(::access((dir / "src2").c_str(), F_OK) != 0);
    CHECK(test::diff(before2, test::snapshot(pool + "/backing/m")).empty());
  }
}
