// Limits without a running guest: the key registry, the [limits] table in etc/NAME.toml, the
// translation to cgroup v1 and v2 files (v2 is tested here only: this host's controllers are all
// on v1), the reservation arithmetic, and `vunify set` on a stopped guest.
#include <catch2/catch.hpp>

#include "context/limits_config.hpp"
#include "context/limits_cpu.hpp"
#include "context/limits_memory.hpp"
#include "os/error.hpp"
#include "os/size.hpp"
#include "tests/scratch_pool.hpp"

namespace vunify::test {

using context::CgroupWrite;
using context::Limits;

TEST_CASE("limits: sizes with units are read and written back exactly", "[limits][unit]") {
  CHECK(os::parse_size("64M") == 64ULL << 20);
  CHECK(os::parse_size("64mib") == 64ULL << 20);
  CHECK(os::parse_size("1536") == 1536);
  CHECK(os::parse_size("2 G") == 2ULL << 30);
  CHECK_FALSE(os::parse_size("banana"));
  CHECK_FALSE(os::parse_size("1.5G"));
  CHECK_FALSE(os::parse_size("8E"));
  CHECK(os::format_size(64ULL << 20) == "64M");
  CHECK(os::format_size(1536) == "1536");
  CHECK(os::format_size((1ULL << 30) + 1024) == "1048577K");
}

TEST_CASE("limits: every key checks its value and max or none unsets it", "[limits][unit]") {
  auto ok = [](const char* k, const char* v) { return context::check_limit(k, v, "f"); };
  CHECK(ok("mem.rss", "64M") == "64M");
  CHECK(ok("mem.rss", "67108864") == "64M");
  CHECK(ok("cpu.cap", "0.5") == "0.5");
  CHECK(ok("cpu.cap", "2") == "2");
  CHECK(ok("cpu.share", "512") == "512");
  CHECK(ok("cpu.cpus", "0") == "0");
  CHECK(ok("pids.max", "50") == "50");
  CHECK(context::unsets_limit("max"));
  CHECK(context::unsets_limit("none"));
  for (auto [k, v] : std::vector<std::pair<const char*, const char*>>{{"mem.rss", "banana"},
                                                                     {"mem.rss", "1K"},
                                                                     {"cpu.cap", "0"},
                                                                     {"cpu.cap", "-1"},
                                                                     {"cpu.cap", "half"},
                                                                     {"cpu.share", "1"},
                                                                     {"cpu.share", "3.5"},
                                                                     {"cpu.reserve", "1.5"},
                                                                     {"cpu.cpus", "1-0"},
                                                                     {"cpu.cpus", "9999"},
                                                                     {"pids.max", "0"},
                                                                     {"cpu.bogus", "1"}}) {
    INFO(k << "=" << v);
    CHECK_THROWS_AS(context::check_limit(k, v, "f"), os::UserError);
  }
  CHECK_THROWS_WITH(context::check_limit("mem.rss", "banana", "etc/x.toml"), Catch::Contains("etc/x.toml") && Catch::Contains("mem.rss"));
  CHECK_THROWS_WITH(context::check_limit("cpu.bogus", "1", "etc/x.toml"), Catch::Contains("unknown limit 'cpu.bogus'"));
}

TEST_CASE("limits: the limits table is replaced and nothing else in the file changes", "[limits][unit]") {
  std::string text = "# vunify guest configuration\nhostname = \"g\"\n\n[context]\ninit = \"/sbin/init\" # mine\n\n"
                     "[limits]\ncpu.cap = 0.5\n\n[other]\nx = 1\n";
  Limits l = context::parse_limits(text, "g.toml");
  CHECK(l == Limits{{"cpu.cap", "0.5"}});
  std::string out = context::replace_limits(text, {{"mem.rss", "64M"}, {"pids.max", "50"}}, "g.toml");
  CHECK(out.find("[context]\ninit = \"/sbin/init\" # mine\n") != std::string::npos);
  CHECK(out.find("[other]\nx = 1\n") != std::string::npos);
  CHECK(out.find("cpu.cap") == std::string::npos);
  CHECK(context::parse_limits(out, "g.toml") == Limits{{"mem.rss", "64M"}, {"pids.max", "50"}});
  // idempotent, and removing every limit removes the table
  CHECK(context::replace_limits(out, {{"mem.rss", "64M"}, {"pids.max", "50"}}, "g.toml") == out);
  std::string none = context::replace_limits(out, {}, "g.toml");
  CHECK(none.find("[limits]") == std::string::npos);
  CHECK(context::parse_limits(none, "g.toml").empty());
  // subtables and quoted keys are read
  CHECK(context::parse_limits("[limits.mem]\nrss = \"1G\"\n", "g.toml") == Limits{{"mem.rss", "1G"}});
  CHECK(context::parse_limits("[limits]\n\"cpu.cap\" = 1\n", "g.toml") == Limits{{"cpu.cap", "1"}});
  // limits written inline cannot be rewritten without touching the rest: refused
  CHECK_THROWS_AS(context::replace_limits("limits = { pids = { max = 5 } }\n", {}, "g.toml"), os::UserError);
  CHECK_THROWS_WITH(context::parse_limits("[limits]\nmem.rss = true\n", "g.toml"), Catch::Contains("g.toml") && Catch::Contains("mem.rss"));
  CHECK_THROWS_WITH(context::parse_limits("[limits]\nmem.rss = \"64M\"\nmem.swap = \"32M\"\n", "g.toml"),
                    Catch::Contains("mem.swap"));
}

TEST_CASE("limits: cgroup v1 and v2 files for cpu and memory", "[limits][unit]") {
  using W = std::vector<CgroupWrite>;
  Limits cap{{"cpu.cap", "0.5"}};
  CHECK(context::cpu_cap_writes(cap, false) == W{{"cpu.cfs_period_us", "100000"}, {"cpu.cfs_quota_us", "50000"}});
  CHECK(context::cpu_cap_writes(cap, true) == W{{"cpu.max", "50000 100000"}});
  CHECK(context::cpu_cap_writes({}, false) == W{{"cpu.cfs_period_us", "100000"}, {"cpu.cfs_quota_us", "-1"}});
  CHECK(context::cpu_cap_writes({}, true) == W{{"cpu.max", "max 100000"}});
  // A cap of every usable CPU can never bind: no quota (CFS bandwidth accounting costs forks).
  Limits two{{"cpu.cap", "2"}};
  CHECK(context::cpu_cap_writes(two, false, 2) == W{{"cpu.cfs_period_us", "100000"}, {"cpu.cfs_quota_us", "-1"}});
  CHECK(context::cpu_cap_writes(two, true, 2) == W{{"cpu.max", "max 100000"}});
  CHECK(context::cpu_cap_writes(two, false, 4) == W{{"cpu.cfs_period_us", "100000"}, {"cpu.cfs_quota_us", "200000"}});
  CHECK(context::cpu_share_write(1024, true) == CgroupWrite{"cpu.weight", "100"});
  CHECK(context::cpu_share_write(3072, true) == CgroupWrite{"cpu.weight", "300"});
  CHECK(context::cpu_share_write(3072, false) == CgroupWrite{"cpu.shares", "3072"});
  CHECK(context::share_to_weight(2) == 1);
  CHECK(context::share_to_weight(262144) == 10000);
  CHECK(context::cpuset_writes({{"cpu.cpus", "0"}}, true, "0-1") == W{{"cpuset.cpus", "0"}});
  CHECK(context::cpuset_writes({}, true, "0-1") == W{{"cpuset.cpus", ""}});
  CHECK(context::cpuset_writes({}, false, "0-1") == W{{"cpuset.cpus", "0-1"}});
  // memory: without mem.swap, no way into swap; memsw is lifted first so limit <= memsw holds
  Limits rss{{"mem.rss", "64M"}};
  CHECK(context::memory_writes(rss, true) == W{{"memory.max", "67108864"}, {"memory.swap.max", "0", true}});
  CHECK(context::memory_writes(rss, false) == W{{"memory.memsw.limit_in_bytes", "-1", true},
                                                {"memory.limit_in_bytes", "67108864"},
                                                {"memory.memsw.limit_in_bytes", "67108864", true}});
  Limits both{{"mem.rss", "64M"}, {"mem.swap", "96M"}};
  CHECK(context::memory_writes(both, true) == W{{"memory.max", "67108864"}, {"memory.swap.max", "33554432", true}});
  CHECK(context::memory_writes(both, false).back() == CgroupWrite{"memory.memsw.limit_in_bytes", "100663296", true});
  CHECK(context::memory_writes({}, true) == W{{"memory.max", "max"}, {"memory.swap.max", "max", true}});
  CHECK(context::memory_writes({}, false)[1] == CgroupWrite{"memory.limit_in_bytes", "-1"});
}

TEST_CASE("limits: cpu lists and reservations", "[limits][unit]") {
  CHECK(context::parse_cpu_list("0-2,5") == std::set<int>{0, 1, 2, 5});
  CHECK(context::format_cpu_list({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8");
  CHECK_THROWS_AS(context::parse_cpu_list("a"), os::UserError);
  CHECK_THROWS_AS(context::parse_cpu_list("1,"), os::UserError);
  auto fraction = [](const std::vector<uint64_t>& s, size_t i) {
    double total = 0;
    for (auto v : s) total += static_cast<double>(v);
    return static_cast<double>(s[i]) / total;
  };
  // a small share with a reservation of half against a big share
  auto s = context::reserved_shares({{2, 0.5}, {9216, 0}});
  CHECK(fraction(s, 0) >= 0.499);
  CHECK(s[1] == 9216);
  // two reservations and two plain guests
  s = context::reserved_shares({{1024, 0.3}, {1024, 0.2}, {4096, 0}, {1024, 0}});
  CHECK(fraction(s, 0) >= 0.299);
  CHECK(fraction(s, 1) >= 0.199);
  CHECK(fraction(s, 2) / fraction(s, 3) == Approx(4.0));
  // a share that already gives more than the reservation is kept
  s = context::reserved_shares({{8192, 0.1}, {1024, 0}});
  CHECK(s[0] == 8192);
  CHECK_THROWS_AS(context::reserved_shares({{1024, 0.6}, {1024, 0.6}}), os::UserError);
}

TEST_CASE("limits: set on a stopped guest persists, refuses bad input leaving the file byte-identical", "[limits][cli]") {
  VUNIFY_REQUIRE_ROOT();
  ScratchPool p;
  mkdirs(p.dir / "src/etc");
  p.ok("guest add g --from '" + (p.dir / "src") + "'");
  std::string toml = p.pool + "/etc/g.toml";
  write_file(toml, "# mine\n[context]\nhostname = \"web\"\n");
  auto r = vunify(p.pool, "set g mem.rss=64M pids.max=50 cpu.cap=0.5");
  INFO(r.out);
  REQUIRE(r.status == 0);
  std::string saved = read_file(toml);
  CHECK(saved.rfind("# mine\n[context]\nhostname = \"web\"\n", 0) == 0);
  CHECK(context::load_limits(p.pool, "g") == Limits{{"mem.rss", "64M"}, {"pids.max", "50"}, {"cpu.cap", "0.5"}});
  for (const char* bad : {"mem.rss=banana", "cpu.bogus=1", "pids.max", "cpu.cap=0.5 cpu.cap=1", "mem.swap=8M",
                          "pids.max=10 mem.rss=1"}) {
    r = vunify(p.pool, std::string("set g ") + bad);
    INFO(bad << "\n" << r.out);
    CHECK(r.status == 2);
    CHECK(r.out.find("vunify: ") == 0);
    CHECK(read_file(toml) == saved);
  }
  r = vunify(p.pool, "set g mem.rss=banana");
  CHECK(r.out.find(toml) != std::string::npos);
  CHECK(r.out.find("mem.rss") != std::string::npos);
  p.ok("set g cpu.cap=max pids.max=none");
  CHECK(context::load_limits(p.pool, "g") == Limits{{"mem.rss", "64M"}});
  r = vunify(p.pool, "set g");
  CHECK(r.status == 0);
  CHECK(r.out.find("mem.rss      64M") != std::string::npos);
  CHECK(vunify(p.pool, "set nosuch cpu.cap=1").status == 2);
  CHECK(vunify(p.pool, "set --help").out.find("cpu.reserve") != std::string::npos);
  // a bad table in the file stops start with the file and key named, nothing left running
  write_file(toml, "[limits]\nmem.rss = \"lots\"\n");
  r = vunify(p.pool, "start g -- /bin/true");
  CHECK(r.status == 2);
  CHECK(r.out.find("mem.rss") != std::string::npos);
}

}  // namespace vunify::test
