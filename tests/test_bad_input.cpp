// Bad input on the command line (issue 15, items 1 and 5): paths in or around the pool,
// conflicting arguments, parse errors, sizes with units. Refused with exit 2, a message naming
// what is wrong, and nothing changed.
#include <unistd.h>

#include <catch2/catch.hpp>

#include "tests/helpers.hpp"
#include "tests/scratch_pool.hpp"

using namespace vunify;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

struct InputPool : test::ScratchPool {
  std::string src = dir / "src";
  InputPool() {
    test::write_file(src + "/etc/hostname", "guest\n");
    test::write_file(src + "/usr/bin/tool", std::string(5000, 't'), 0755);
    test::write_file(src + "/var/log/x.log", std::string(3000, 'l'));
    REQUIRE(test::run("tar -C '" + src + "' -cf '" + dir.path() + "/t.tar' .").status == 0);
  }
  std::string tar() const { return dir / "t.tar"; }
  // The trees a refused command must leave alone.
  test::Snapshot trees() const {
    test::Snapshot all;
    for (const char* sub : {"backing", "templates", "store", "etc", "links"})
      for (auto& [k, v] : test::snapshot(pool + "/" + sub)) all[std::string(sub) + "/" + k] = v;
    return all;
  }
  test::CmdResult refused(const std::string& args, const std::string& says) const {
    test::CmdResult r = test::vunify(pool, args);
    INFO(args << "\n" << r.out);
    CHECK(r.status == 2);
    CHECK(contains(r.out, says));
    return r;
  }
};

}  // namespace

TEST_CASE("sources and targets that are, lie in or contain the pool are refused", "[cli][input]") {
  VUNIFY_REQUIRE_ROOT();
  InputPool p;
  p.ok("guest add a --from '" + p.src + "'");
  p.ok("template import T '" + p.tar() + "'");
  test::write_file(p.pool + "/etc/inside.tar", test::read_file(p.tar()));
  REQUIRE(::symlink((p.pool + "/backing/a").c_str(), (p.dir / "link-to-a").c_str()) == 0);
  REQUIRE(::symlink((p.pool + "/etc").c_str(), (p.dir / "link-to-etc").c_str()) == 0);
  // A path into the pool spelled through another name of the same directory.
  test::mkdirs(p.dir / "other");
  REQUIRE(::symlink("../pool/backing", (p.dir / "other/b").c_str()) == 0);
  test::Snapshot before = p.trees();

  for (const std::string& from : {p.pool + "/store", p.pool + "/backing/a", p.pool + "/templates/T/root", p.dir / "link-to-a",
                                  p.dir / "other/b/a", p.pool + "/backing/a/etc"}) {
    p.refused("guest add d --move --from '" + from + "'", "inside the pool");
    p.refused("guest add d --from '" + from + "'", "inside the pool");
  }
  p.refused("guest add d --from '" + p.pool + "'", "is the pool");
  p.refused("guest add d --from '" + p.pool + "/.'", "is the pool");
  p.refused("guest add d --from '" + p.dir.path() + "'", "contains the pool");
  p.refused("guest add d --move --from /", "contains the pool");
  p.refused("template import U '" + p.pool + "/etc/inside.tar'", "inside the pool");
  p.refused("template import U '" + p.dir / "link-to-etc/inside.tar" + "'", "inside the pool");
  p.refused("template export T '" + p.pool + "/etc/out.tar'", "inside the pool");
  p.refused("template export T '" + p.pool + "/backing/a/out.tar.gz'", "inside the pool");
  p.refused("template export T '" + p.dir / "link-to-etc/out.tar" + "'", "inside the pool");
  p.refused("template export T '" + p.dir / "src" + "'", "is a directory");
  p.refused("template import U '" + p.src + "'", "is a directory");

  auto d = test::diff(before, p.trees());
  for (const auto& line : d) UNSCOPED_INFO(line);
  CHECK(d.empty());
  p.ok("fsck");
  auto list = test::vunify(p.pool, "guest list");
  CHECK(!contains(list.out, "\nd "));
  // Outside the pool all of these still work.
  p.ok("template export T '" + p.dir / "out.tar" + "'");
  p.ok("guest add b --from '" + p.src + "'");
}

TEST_CASE("parse errors and conflicting arguments exit 2 with a clear message", "[cli][input]") {
  VUNIFY_REQUIRE_ROOT();
  InputPool p;
  p.ok("guest add g1 --from '" + p.src + "'");
  p.ok("guest add g2 --from '" + p.src + "'");
  for (const char* bad : {"frobnicate", "unify --bogus --all", "guest add", "stat --json extra-flag-value --nope", "gc --dry-run=maybe"}) {
    test::CmdResult r = test::vunify(p.pool, bad);
    INFO(bad << "\n" << r.out);
    CHECK(r.status == 2);
  }
  CHECK(test::vunify(p.pool, "--help").status == 0);
  CHECK(test::vunify(p.pool, "unify --help").status == 0);
  CHECK(test::vunify(p.pool, "--version").status == 0);
  p.refused("unify --all g1", "not both");
  p.refused("mount --all g1", "not both");
  p.refused("umount --all g1", "not both");
  p.refused("unify", "or give --all");

  // One value per --exclude: the guest name after it is a guest, not a glob.
  test::CmdResult one = test::vunify(p.pool, "unify --exclude '*.log' g1 --dry-run --json");
  INFO(one.out);
  REQUIRE(one.status == 0);
  CHECK(contains(one.out, "\"guests\": 1"));
  test::CmdResult two = test::vunify(p.pool, "unify --exclude '*.log' --exclude 'etc/*' g1 g2 --json");
  INFO(two.out);
  REQUIRE(two.status == 0);
  CHECK(contains(two.out, "\"guests\": 2"));
  CHECK(contains(two.out, "\"skipped_excluded\": 4"));
}

TEST_CASE("sizes take units everywhere, and a bad size gets a short message", "[cli][input]") {
  VUNIFY_REQUIRE_ROOT();
  InputPool p;
  p.ok("guest add g1 --from '" + p.src + "'");
  p.ok("guest add g2 --from '" + p.src + "'");
  auto linked = [&](const std::string& min_size) {
    test::CmdResult r = test::vunify(p.pool, "unify --all --dry-run --json --min-size " + min_size);
    INFO(min_size << "\n" << r.out);
    REQUIRE(r.status == 0);
    return contains(r.out, "\"files_linked\": 0") ? 0 : 1;
  };
  CHECK(linked("1G") == 0);
  CHECK(linked("1GiB") == 0);
  CHECK(linked("4K") == 1);  // tool (5000 bytes) is linked, x.log (3000) not
  CHECK(linked("4kib") == 1);
  CHECK(linked("4096") == 1);
  CHECK(linked("6K") == 0);
  for (const char* bad : {"1X", "-5", "G", "99999999999999999999", "20E"}) {
    test::CmdResult r = test::vunify(p.pool, std::string("unify --all --dry-run --min-size ") + bad);
    INFO(bad << "\n" << r.out);
    CHECK(r.status == 2);
    CHECK(r.out.size() < 300);
    CHECK(contains(r.out, "--min-size"));
  }
  test::CmdResult max = test::vunify(p.pool, "template import T '" + p.tar() + "' --max-size 1K");
  INFO(max.out);
  CHECK(max.status == 2);  // the archive holds 13000 bytes
  p.ok("template import T '" + p.tar() + "' --max-size 1MiB");
  test::CmdResult bad = test::vunify(p.pool, "template import U '" + p.tar() + "' --max-size lots");
  CHECK(bad.status == 2);
  CHECK(contains(bad.out, "not a size"));
}

TEST_CASE("template rm takes several names", "[cli][input][template]") {
  VUNIFY_REQUIRE_ROOT();
  InputPool p;
  for (const char* t : {"A", "B", "C"}) p.ok(std::string("template import ") + t + " '" + p.tar() + "'");
  p.ok("template rm A C");
  auto list = test::vunify(p.pool, "template list");
  CHECK(!contains(list.out, "A "));
  CHECK(contains(list.out, "B "));
  CHECK(!contains(list.out, "C "));
  p.refused("template rm B nosuch", "no template named 'nosuch'");
  CHECK(contains(test::vunify(p.pool, "template list").out, "B "));
}
