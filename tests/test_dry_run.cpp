// Dry runs tell the truth (issue 15, item 6): `unify --dry-run` reports exactly what the real
// run then does, link groups included, and changes nothing; `gc --dry-run` likewise.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/helpers.hpp"
#include "tests/scratch_pool.hpp"

using namespace vunify;

namespace {

nlohmann::json json_of(const test::ScratchPool& p, const std::string& args) {
  test::CmdResult r = test::vunify(p.pool, args);
  INFO(args << "\n" << r.out);
  REQUIRE(r.status == 0);
  return nlohmann::json::parse(r.out);
}

}  // namespace

TEST_CASE("unify --dry-run reports every count the real run then has, and changes nothing", "[unify][dry-run]") {
  VUNIFY_REQUIRE_ROOT();
  test::ScratchPool p;
  // Three sample guests: each has its own hard-link group (etc/os-release), equal across guests,
  // so one group becomes the new object and the others link to it. g3 has an extra group of
  // three paths and a file that is already an object after the first run.
  for (const char* g : {"g1", "g2", "g3"}) {
    std::string src = p.dir / (std::string("src-") + g);
    test::make_sample_guest(src);
    test::write_file(src + "/data/same.bin", std::string(20000, 's'));
    p.ok(std::string("guest add ") + g + " --from '" + src + "'");
  }
  test::write_file(p.backing("g3", "opt/a"), std::string(9000, 'a'));
  REQUIRE(::link(p.backing("g3", "opt/a").c_str(), p.backing("g3", "opt/b").c_str()) == 0);
  REQUIRE(::link(p.backing("g3", "opt/a").c_str(), p.backing("g3", "opt/c").c_str()) == 0);
  test::write_file(p.backing("g2", "opt/a"), std::string(9000, 'a'));

  auto trees = [&] {
    test::Snapshot all;
    for (const char* sub : {"backing", "store", "links"})
      for (auto& [k, v] : test::snapshot(p.pool + "/" + sub)) all[std::string(sub) + "/" + k] = v;
    return all;
  };
  test::Snapshot before = trees();
  nlohmann::json dry = json_of(p, "unify --all --dry-run --json");
  CHECK(test::diff(before, trees()).empty());
  CHECK(dry["dry_run"] == true);
  nlohmann::json real = json_of(p, "unify --all --json");
  CHECK(real["dry_run"] == false);
  for (const char* key : {"guests", "files_scanned", "already_shared", "skipped_hardlinks", "link_groups", "skipped_small",
                          "skipped_excluded", "files_linked", "objects_created", "bytes_saved", "collisions",
                          "changed_during_run"}) {
    INFO(key << ": dry " << dry[key] << ", real " << real[key]);
    CHECK(dry[key] == real[key]);
  }
  CHECK(real["link_groups"].get<int>() >= 4);  // three os-release groups and opt/{a,b,c}
  CHECK(real["files_linked"].get<int>() > 0);

  // Text output says what would happen, then what happened.
  p.ok("guest add g4 --from '" + (p.dir / "src-g1") + "'");
  test::CmdResult text = test::vunify(p.pool, "unify --all --dry-run");
  INFO(text.out);
  CHECK(text.out.find("dry run: would link ") != std::string::npos);
  CHECK(text.out.find("linked into") == std::string::npos);
  CHECK(text.out.find("nothing was changed") != std::string::npos);

  // gc: the dry run names the count and size the real run then removes.
  p.ok("guest rm g1 g2 g3");  // g4 was never unified: every object is unused
  test::CmdResult gc_dry = test::vunify(p.pool, "gc --dry-run");
  INFO(gc_dry.out);
  REQUIRE(gc_dry.status == 0);
  auto n_of = [](const std::string& out, const std::string& before_word) {
    auto at = out.find(before_word);
    REQUIRE(at != std::string::npos);
    auto start = out.rfind(' ', at - 2) + 1;
    return out.substr(start, at - 1 - start);
  };
  std::string would = n_of(gc_dry.out, "unused objects (");
  CHECK(gc_dry.out.find("dry run: would remove " + would + " unused objects (") != std::string::npos);
  CHECK(would != "0");
  test::CmdResult gc = test::vunify(p.pool, "gc");
  INFO(gc.out);
  REQUIRE(gc.status == 0);
  CHECK(gc.out.find(would + " unused objects removed (") == 0);
  // the sizes agree too
  auto size_in = [](const std::string& out) { return out.substr(out.find('(') + 1, out.find(')') - out.find('(') - 1); };
  CHECK(size_in(gc_dry.out) == size_in(gc.out));
}
