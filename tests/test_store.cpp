// gc keeps used objects and removes unused ones; verify detects a corrupted object;
// fsck finds and repairs index problems.
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "tests/helpers.hpp"
#include "unify/fsck.hpp"
#include "unify/guests.hpp"
#include "unify/stats.hpp"
#include "unify/store.hpp"
#include "unify/templates.hpp"
#include "unify/unifier.hpp"

using namespace vunify;
using vunify::test::TempDir;

namespace {

struct TwoGuests {
  TempDir dir;
  std::string pool_path = dir / "pool";
  TwoGuests() {
    unify::Pool::init(pool_path);
    unify::Pool pool(pool_path, unify::Access::Write);
    for (const char* g : {"a", "b"}) {
      test::write_file(dir / (std::string(g) + "/common"), std::string(20000, 'c'));
      test::write_file(dir / (std::string(g) + "/only-" + g), std::string(g) + " alone");
      unify::add_guest(pool, g, dir / g, false);
    }
    test::write_file(dir / "c/common", std::string(20000, 'c'));
    test::write_file(dir / "c/other", "other");
    unify::add_guest(pool, "c", dir / "c", false);
    unify::unify(pool, {});
  }
};

}  // namespace

TEST_CASE("gc keeps used objects and removes unused ones", "[store]") {
  VUNIFY_REQUIRE_ROOT();
  TwoGuests f;
  unify::Pool pool(f.pool_path, unify::Access::Write);
  unify::Store store(pool);
  REQUIRE(store.load().size() == 1);
  std::string obj = f.pool_path + "/store/objects/" + store.load()[0].name;
  unify::GcReport kept = store.gc(false);
  CHECK(kept.removed == 0);
  CHECK(kept.kept == 1);
  CHECK(::access(obj.c_str(), F_OK) == 0);
  for (const char* g : {"a", "b", "c"}) unify::remove_guest(pool, g);
  unify::GcReport dry = store.gc(true);
  CHECK(dry.removed == 1);
  CHECK(::access(obj.c_str(), F_OK) == 0);
  unify::GcReport r = store.gc(false);
  CHECK(r.removed == 1);
  CHECK(r.bytes_freed >= 20000);
  CHECK(::access(obj.c_str(), F_OK) != 0);
  CHECK(store.load().empty());
}

TEST_CASE("gc gives the index pages of removed objects back to the filesystem", "[store]") {
  VUNIFY_REQUIRE_ROOT();
  TempDir dir;
  std::string pool_path = dir / "pool";
  unify::Pool::init(pool_path);
  {
    unify::Pool pool(pool_path, unify::Access::Write);
    for (const char* g : {"a", "b"}) {
      for (int i = 0; i < 600; ++i) test::write_file(dir / (std::string(g) + "/f" + std::to_string(i)), "file " + std::to_string(i));
      unify::add_guest(pool, g, dir / g, false);
    }
    unify::UnifyOptions opts;
    REQUIRE(unify::unify(pool, opts).objects_created == 600);
  }
  auto pragma = [&](unify::Pool& pool, const char* name) {
    unify::Stmt s = pool.index().prepare(std::string("PRAGMA ") + name);
    REQUIRE(s.step());
    return s.col_int(0);
  };
  unify::Pool pool(pool_path, unify::Access::Write);
  int64_t pages_before = pragma(pool, "page_count");
  for (const char* g : {"a", "b"}) unify::remove_guest(pool, g);
  CHECK(unify::Store(pool).gc(false).removed == 600);
  CHECK(pragma(pool, "freelist_count") == 0);
  CHECK(pragma(pool, "page_count") < pages_before);
}

TEST_CASE("verify detects a corrupted object and the CLI exits non-zero", "[store]") {
  VUNIFY_REQUIRE_ROOT();
  TwoGuests f;
  CHECK(test::vunify(f.pool_path, "verify").status == 0);
  std::string obj;
  {
    unify::Pool pool(f.pool_path, unify::Access::Read);
    obj = f.pool_path + "/store/objects/" + unify::Store(pool).load()[0].name;
  }
  int fd = ::open(obj.c_str(), O_WRONLY);
  REQUIRE(fd >= 0);
  REQUIRE(::pwrite(fd, "X", 1, 100) == 1);
  ::close(fd);
  test::CmdResult r = test::vunify(f.pool_path, "verify");
  INFO(r.out);
  CHECK(r.status == 3);
  CHECK(r.out.find("content changed") != std::string::npos);
}

TEST_CASE("stat divides shared bytes among guests and totals the pool", "[store]") {
  VUNIFY_REQUIRE_ROOT();
  TwoGuests f;
  // guest d uses the shared object through two paths: it still counts as one user
  test::write_file(f.dir / "d/common", std::string(20000, 'c'));
  test::write_file(f.dir / "d/copy/common", std::string(20000, 'c'));
  {
    unify::Pool pool(f.pool_path, unify::Access::Write);
    unify::add_guest(pool, "d", f.dir / "d", false);
    unify::unify(pool, {});
  }
  unify::Pool pool(f.pool_path, unify::Access::Read);
  unify::PoolStats ps = unify::pool_stats(pool);
  REQUIRE(ps.guests.size() == 4);
  CHECK(ps.objects == 1);
  uint64_t shared_sum = 0;
  for (const auto& g : ps.guests) {
    CHECK(g.shared_files == (g.name == "d" ? 2 : 1));
    CHECK(g.shared_bytes == ps.object_bytes / 4);
    shared_sum += g.shared_bytes;
  }
  // the object's blocks are divided among its four users (rounding down)
  CHECK(shared_sum <= ps.object_bytes);
  CHECK(shared_sum + 4 >= ps.object_bytes);
  CHECK(ps.standalone_bytes > ps.disk_bytes);
  CHECK(ps.savings_ratio() > 1.0);
  test::CmdResult json = test::vunify(f.pool_path, "stat --json");
  CHECK(json.status == 0);
  CHECK(json.out.find("\"savings_ratio\"") != std::string::npos);
}

TEST_CASE("stat counts a template as one more user of the objects it links", "[store][template]") {
  VUNIFY_REQUIRE_ROOT();
  TwoGuests f;
  {
    unify::Pool pool(f.pool_path, unify::Access::Write);
    unify::unify(pool, {});
    unify::template_from_guest(pool, "t", "a");
  }
  unify::Pool pool(f.pool_path, unify::Access::Read);
  unify::PoolStats ps = unify::pool_stats(pool);
  REQUIRE(ps.templates.size() == 1);
  CHECK(ps.templates[0].name == "t");
  CHECK(ps.templates[0].shared_files >= 1);
  // "common" has four users (a, b, c, t); a's private file went into the store for t alone
  uint64_t sum = ps.templates[0].shared_bytes;
  for (const auto& g : ps.guests) {
    CHECK(g.shared_bytes == ps.guests[0].shared_bytes);
    sum += g.shared_bytes;
  }
  CHECK(ps.templates[0].shared_bytes > ps.guests[0].shared_bytes);
  CHECK(sum <= ps.object_bytes);
  CHECK(sum + 4 >= ps.object_bytes);
  CHECK(ps.disk_bytes >= ps.object_bytes + ps.templates[0].private_bytes);
  test::CmdResult out = test::vunify(f.pool_path, "stat");
  INFO(out.out);
  CHECK(out.out.find("template t") != std::string::npos);
}

TEST_CASE("fsck finds index problems and --repair fixes them", "[store]") {
  VUNIFY_REQUIRE_ROOT();
  TwoGuests f;
  {
    unify::Pool pool(f.pool_path, unify::Access::Write);
    CHECK(unify::fsck(pool, false).problems.empty());
    // lose the objects table (the index is a cache) and plant a stray temp entry
    pool.index().exec("DELETE FROM objects");
  }
  test::write_file(f.pool_path + "/backing/a/.vunify-tmp.999.1", "junk");
  test::CmdResult check = test::vunify(f.pool_path, "fsck");
  INFO(check.out);
  CHECK(check.status == 3);
  CHECK(check.out.find("not in the index") != std::string::npos);
  CHECK(check.out.find("leftover temp entry") != std::string::npos);
  test::CmdResult repair = test::vunify(f.pool_path, "fsck --repair");
  INFO(repair.out);
  CHECK(repair.status == 0);
  CHECK(test::vunify(f.pool_path, "fsck").status == 0);
  unify::Pool pool(f.pool_path, unify::Access::Read);
  CHECK(unify::Store(pool).load().size() == 1);  // rebuilt from the store
  CHECK(unify::Store(pool).verify(0).empty());
}
