// Limits on running guests, with real cgroups: memory (the allocating process dies, the guest
// lives, status counts the kill), pids, CPU shares, cap and reservation, and `set` on a running
// guest. CPU is measured from the guests' own cgroup accounting (cpuacct.usage or cpu.stat) and
// compared between guests of one run, so the tests hold on a loaded machine.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <thread>

#include "context/limits_config.hpp"
#include "tests/context_guest.hpp"

namespace vunify::test {

namespace {

constexpr const char* kBusy = "/bin/sh -c 'while :; do :; done'";

// CPU time of a running guest in ns, from its cgroups.
uint64_t cpu_ns(const ContextGuest& g, const std::string& guest) {
  auto s = context::read_state(g.pool, guest);
  REQUIRE(s);
  for (const auto& c : s->cgroups) {
    if (!c.v2 && ("," + c.options + ",").find(",cpuacct,") != std::string::npos) {
      std::ifstream in(c.dir + "/cpuacct.usage");
      uint64_t v = 0;
      in >> v;
      return v;
    }
  }
  for (const auto& c : s->cgroups) {
    std::ifstream in(c.dir + "/cpu.stat");
    std::string k;
    for (uint64_t v; c.v2 && in >> k >> v;)
      if (k == "usage_usec") return v * 1000;
  }
  FAIL("no CPU accounting for " << guest);
  return 0;
}

// CPU time each guest used over `seconds`, after a short warm-up.
std::vector<double> cpu_seconds(const ContextGuest& g, const std::vector<std::string>& guests, double seconds) {
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::vector<uint64_t> before;
  for (const auto& n : guests) before.push_back(cpu_ns(g, n));
  std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(seconds * 1000)));
  std::vector<double> out;
  for (size_t i = 0; i < guests.size(); ++i) out.push_back(static_cast<double>(cpu_ns(g, guests[i]) - before[i]) / 1e9);
  return out;
}

// A second guest beside `g`'s; both get `limits_a` / `limits_b` and run a busy loop.
std::string two_busy_guests(ContextGuest& g, const std::string& limits_a, const std::string& limits_b) {
  std::string b = g.name + "b";
  g.add_guest(b, g.dir / "srcb");
  g.ok("set " + g.name + " " + limits_a);
  g.ok("set " + b + " " + limits_b);
  g.ok("start " + g.name + " -- " + kBusy);
  g.ok("start " + b + " -- " + kBusy);
  return b;
}

bool memory_cgroup_available() {
  return ::access("/sys/fs/cgroup/memory", F_OK) == 0 || ::access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;
}

}  // namespace

TEST_CASE("limits: mem.rss kills the allocating process inside the guest while guest and host live on", "[limits][context]") {
  VUNIFY_REQUIRE_CONTEXT();
  if (!memory_cgroup_available()) {
    WARN("skipped: no memory cgroup controller");
    return;
  }
  ContextGuest g("oom");
  g.ok("set " + g.name + " mem.rss=32M");
  g.ok("start " + g.name + " -- /bin/sleep 1000");
  // the string doubles until it passes 32 MiB
  auto r = g.sh("x=a; while :; do x=$x$x; done; echo survived");
  INFO(r.out);
  CHECK(r.status == 137);
  CHECK(r.out.find("survived") == std::string::npos);
  CHECK(g.sh("echo alive").out == "alive\n");
  auto st = vunify(g.pool, "status " + g.name);
  INFO(st.out);
  CHECK(st.out.find(g.name + ": oom kills 1,") != std::string::npos);
  auto js = vunify(g.pool, "status " + g.name + " --json");
  INFO(js.out);
  CHECK(js.out.find("\"oom_kills\": 1") != std::string::npos);
  CHECK(js.out.find("\"limit_bytes\": 33554432") != std::string::npos);
  // the supervisor's watchdog saw it too (its record and the console log)
  bool logged = false;
  for (int i = 0; i < 50 && !logged; ++i, ::usleep(100000))
    logged = read_file(g.pool + "/log/" + g.name + ".console").find("ran out of memory") != std::string::npos;
  CHECK(logged);
  g.ok("stop " + g.name);
}

TEST_CASE("limits: a fork bomb stops at pids.max and the host stays responsive", "[limits][context]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("pids");
  g.ok("set " + g.name + " pids.max=20");
  g.ok("start " + g.name + " -- /bin/sleep 1000");
  auto t0 = std::chrono::steady_clock::now();
  auto r = g.sh("i=0; while test $i -lt 100; do sleep 2 & i=$((i+1)); done; wait");
  INFO(r.out);
  CHECK(r.out.find("fork") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20));
  auto host = std::chrono::steady_clock::now();
  CHECK(run("true").status == 0);
  CHECK(std::chrono::steady_clock::now() - host < std::chrono::seconds(2));
  auto js = vunify(g.pool, "status " + g.name + " --json");
  CHECK(js.out.find("\"limit\": 20") != std::string::npos);
  g.ok("stop " + g.name);
}

TEST_CASE("limits: mem.memlock is PID 1's from the start, exec's, and changes live", "[limits][context]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("mlk");
  g.ok("set " + g.name + " mem.memlock=64K");
  g.ok("start " + g.name + " -- /bin/sleep 1000");
  auto memlock = [&](const std::string& proc) {
    auto r = g.sh("grep \"locked memory\" /proc/" + proc + "/limits");
    INFO(r.out);
    return r.out;
  };
  CHECK(memlock("1").find("65536                65536") != std::string::npos);
  CHECK(memlock("self").find("65536                65536") != std::string::npos);
  g.ok("set " + g.name + " mem.memlock=32K");
  CHECK(memlock("1").find("32768                32768") != std::string::npos);
  CHECK(memlock("self").find("32768                32768") != std::string::npos);
  g.ok("stop " + g.name);
}

TEST_CASE("limits: shares 1:3 on one pinned core give 25% / 75%", "[limits][context][cpu]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("shr");
  std::string b = two_busy_guests(g, "cpu.share=512 cpu.cpus=0", "cpu.share=1536 cpu.cpus=0");
  auto used = cpu_seconds(g, {g.name, b}, 3);
  double low = used[0] / (used[0] + used[1]);
  INFO("cpu s: " << used[0] << " vs " << used[1]);
  CHECK(used[0] + used[1] > 0.3);
  CHECK(low == Approx(0.25).margin(0.10));
}

TEST_CASE("limits: cpu.cap 0.5 holds a busy guest to half a core and set changes the cap live", "[limits][context][cpu]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("cap");
  g.ok("set " + g.name + " cpu.cap=0.5");
  g.ok("start " + g.name + " -- " + kBusy);
  double capped = cpu_seconds(g, {g.name}, 3)[0] / 3;
  INFO("capped: " << capped << " of a core");
  CHECK(capped <= 0.55);
  CHECK(capped > 0.05);
  // a running guest's cap changes at once, measured: 1% of a core throttles even a loop that
  // gets little CPU on a loaded machine, and lifting it lets the loop run again
  g.ok("set " + g.name + " cpu.cap=0.01");
  double tiny = cpu_seconds(g, {g.name}, 3)[0] / 3;
  g.ok("set " + g.name + " cpu.cap=max");
  double lifted = cpu_seconds(g, {g.name}, 3)[0] / 3;
  INFO("at 0.01: " << tiny << ", lifted: " << lifted);
  CHECK(tiny <= 0.03);
  CHECK(lifted > 3 * tiny);
  g.ok("stop " + g.name + " --timeout 2");
}

TEST_CASE("limits: a reservation holds under contention against a 9x bigger share", "[limits][context][cpu]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("rsv");
  std::string b = two_busy_guests(g, "cpu.share=100 cpu.reserve=0.5 cpu.cpus=0", "cpu.share=900 cpu.cpus=0");
  auto used = cpu_seconds(g, {g.name, b}, 3);
  INFO("cpu s: " << used[0] << " vs " << used[1]);
  CHECK(used[0] + used[1] > 0.3);
  CHECK(used[0] / (used[0] + used[1]) >= 0.40);
  // without the reservation the small share gets its 10%
  g.ok("set " + g.name + " cpu.reserve=none");
  used = cpu_seconds(g, {g.name, b}, 3);
  INFO("without: " << used[0] << " vs " << used[1]);
  CHECK(used[0] / (used[0] + used[1]) < 0.25);
}

TEST_CASE("limits: a set that cannot be applied is rolled back to the old limit with the file byte-identical", "[limits][context]") {
  VUNIFY_REQUIRE_CONTEXT();
  if (::access("/sys/fs/cgroup/memory/memory.limit_in_bytes", F_OK) != 0) {
    WARN("skipped: needs the cgroup v1 memory controller (a limit below usage is refused there)");
    return;
  }
  ContextGuest g("rbk");
  g.ok("set " + g.name + " mem.rss=256M pids.max=100");
  std::string toml = g.pool + "/etc/" + g.name + ".toml";
  // PID 1 holds 32 MiB of anonymous memory; this host has no swap to push it to
  g.ok("start " + g.name + " -- /bin/sh -c 'x=a; i=0; while test $i -lt 25; do x=$x$x; i=$((i+1)); done; sleep 1000'");
  auto s = g.state();
  REQUIRE(s);
  std::string mem, cpu;
  for (const auto& c : s->cgroups) {
    if (("," + c.options + ",").find(",memory,") != std::string::npos) mem = c.dir;
    if (("," + c.options + ",").find(",cpu,") != std::string::npos) cpu = c.dir;
  }
  REQUIRE(!mem.empty());
  for (int i = 0; i < 200 && std::stoull(read_file(mem + "/memory.usage_in_bytes")) < (33u << 20); ++i) ::usleep(50000);
  std::string before = read_file(toml);
  // cpu is applied before memory, so its change is rolled back too
  auto r = vunify(g.pool, "set " + g.name + " cpu.cap=0.3 mem.rss=8M");
  INFO(r.out);
  CHECK(r.status != 0);
  CHECK(r.out.find("old limits are back") != std::string::npos);
  CHECK(read_file(toml) == before);
  CHECK(read_file(mem + "/memory.limit_in_bytes") == "268435456\n");
  if (!cpu.empty()) CHECK(read_file(cpu + "/cpu.cfs_quota_us") == "-1\n");
  g.ok("stop " + g.name + " --timeout 2");
}

}  // namespace vunify::test
