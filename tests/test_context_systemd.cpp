// A real Debian guest with systemd as its init boots in a context and stops cleanly (the cached
// debootstrap tree of the acceptance checks; skipped when it is not there).
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>

#include "tests/context_guest.hpp"

namespace vunify::test {

namespace {

std::string systemd_tree() {
  const char* home = std::getenv("HOME");
  std::string cache = std::getenv("VUNIFY_ACCEPT_CACHE") ? std::getenv("VUNIFY_ACCEPT_CACHE")
                                                         : std::string(home ? home : "/root") + "/.cache/vunify-acceptance";
  return ::access((cache + "/guest-systemd.done").c_str(), F_OK) == 0 ? cache + "/guest-systemd" : "";
}

}  // namespace

TEST_CASE("context: a Debian guest boots systemd to running and stops cleanly", "[context][systemd]") {
  VUNIFY_REQUIRE_ROOT();
  std::string tree = systemd_tree();
  if (tree.empty()) {
    WARN("skipped: no cached debootstrap guest with systemd (~/.cache/vunify-acceptance/guest-systemd.done; "
         "made by ../shared/acceptance/context)");
    return;
  }
  ContextGuest g("sd", false);
  g.ok("guest add " + g.name + " --from '" + tree + "'");
  g.ok("start " + g.name);
  auto s = g.state();
  REQUIRE(s);
  CHECK(s->init == "/sbin/init");
  CHECK(s->stop_signal == SIGRTMIN + 3);
  std::string state;
  for (int i = 0; i < 120 && state.empty(); ++i) {
    auto r = vunify(g.pool, "exec " + g.name + " -- systemctl is-system-running --wait");
    state = r.out.substr(0, r.out.find('\n'));
    if (state != "running" && state != "degraded") state.clear(), ::sleep(1);
  }
  INFO(read_file(g.pool + "/log/" + g.name + ".console"));
  CHECK((state == "running" || state == "degraded"));
  CHECK(vunify(g.pool, "exec " + g.name + " -- cat /proc/1/comm").out == "systemd\n");
  auto failed = vunify(g.pool, "exec " + g.name + " -- systemctl --failed --no-legend --plain");
  INFO("failed units: " << failed.out);
  CHECK(failed.out.empty());
  auto t0 = std::chrono::steady_clock::now();
  g.ok("stop " + g.name);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20));
  CHECK(processes_in_namespace(s->context_id).empty());
  CHECK(existing_cgroups(*s).empty());
  CHECK(!g.state());
}

}  // namespace vunify::test
