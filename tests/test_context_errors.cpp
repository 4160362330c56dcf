// Errors of the context runtime: each a clear message and a non-zero exit, nothing left behind.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>

#include "tests/context_guest.hpp"

namespace vunify::test {

namespace {

// No cgroup directory named after `guest` under any hierarchy's vunify/.
bool no_cgroups_of(const std::string& guest) {
  return run("find /sys/fs/cgroup -type d -path '*/vunify/" + guest + "' 2>/dev/null").out.empty();
}

}  // namespace

TEST_CASE("context: bad states are refused clearly", "[context][errors]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("bad");
  auto r = vunify(g.pool, "start nosuchguest");
  CHECK(r.status == 2);
  CHECK(r.out.find("no guest named 'nosuchguest'") != std::string::npos);
  r = vunify(g.pool, "stop " + g.name);
  CHECK(r.status == 2);
  CHECK(r.out.find("is not running") != std::string::npos);
  r = vunify(g.pool, "exec " + g.name + " -- true");
  CHECK(r.status == 2);
  CHECK(r.out.find("is not running") != std::string::npos);
  g.ok("start " + g.name + " -- /bin/sleep 1000");
  r = vunify(g.pool, "start " + g.name);
  CHECK(r.status == 2);
  CHECK(r.out.find("already running") != std::string::npos);
  for (const std::string cmd : {"guest rm ", "unify ", "umount "}) {
    r = vunify(g.pool, cmd + g.name);
    INFO(cmd << r.out);
    CHECK(r.status == 2);
    CHECK(r.out.find("vunify stop " + g.name) != std::string::npos);
  }
  CHECK(vunify(g.pool, "exec " + g.name + " -- true").status == 0);
}

TEST_CASE("context: exec reads the pool only when the guest does not run: a dead PID 1 in the state is 'not running'", "[context][errors][exec]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("deadpid1");
  // A state whose PID 1 has exited (as a crash of the whole context leaves it): exec trusts a
  // live PID 1 only.
  pid_t dead = ::fork();
  if (dead == 0) {
    ::pause();
    _exit(0);
  }
  REQUIRE(dead > 0);
  context::RunState s;
  s.pid1 = dead;
  s.pid1_start = context::start_time(dead);
  ::kill(dead, SIGKILL);
  ::waitpid(dead, nullptr, 0);
  for (const std::string& guest : {g.name, std::string("nosuchguest")}) {
    context::write_state(g.pool, guest, s);
    auto r = vunify(g.pool, "exec " + guest + " -- true");
    INFO(r.out);
    CHECK(r.status == 2);
    CHECK(r.out.find(guest == g.name ? "guest " + guest + " is not running" : "no guest named 'nosuchguest'") !=
          std::string::npos);
    context::remove_state(g.pool, guest);
  }
  // No pool at all: the pool's own message (nothing is created there).
  std::string nowhere = g.pool + "-missing";
  auto r = vunify(nowhere, "exec " + g.name + " -- true");
  CHECK(r.status == 2);
  CHECK(r.out.find("no pool at") != std::string::npos);
  struct stat st;
  CHECK(::stat(nowhere.c_str(), &st) != 0);
}

TEST_CASE("context: an init that cannot run leaves nothing behind", "[context][errors]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("noinit");
  auto r = vunify(g.pool, "start " + g.name + " -- /no/such/init");
  INFO(r.out);
  CHECK(r.status != 0);
  CHECK(r.out.find("cannot run /no/such/init") != std::string::npos);
  CHECK(!g.state());
  CHECK(no_cgroups_of(g.name));
  CHECK(!mounted(g.pool + "/guests/" + g.name));
  // a configured init that is not in the guest
  write_file(g.pool + "/etc/" + g.name + ".toml", "[context]\ninit = \"/sbin/missing\"\n");
  r = vunify(g.pool, "start " + g.name);
  CHECK(r.status == 2);
  CHECK(r.out.find("/sbin/missing") != std::string::npos);
  CHECK(no_cgroups_of(g.name));
  CHECK(!mounted(g.pool + "/guests/" + g.name));
}

TEST_CASE("context: a view that cannot mount leaves nothing behind", "[context][errors]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("nomount");
  std::string mnt = g.pool + "/guests/" + g.name;
  ::rmdir(mnt.c_str());
  write_file(mnt, "not a directory");
  auto r = vunify(g.pool, "start " + g.name + " -- /bin/true");
  INFO(r.out);
  CHECK(r.status != 0);
  CHECK(r.out.find(mnt) != std::string::npos);
  CHECK(!g.state());
  CHECK(no_cgroups_of(g.name));
  ::unlink(mnt.c_str());
}

TEST_CASE("context: bad [context] settings are refused naming the file and key", "[context][errors]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("conf");
  std::string toml = g.pool + "/etc/" + g.name + ".toml";
  for (const auto& [text, expect] : std::vector<std::pair<std::string, std::string>>{
           {"[context]\ncolour = \"red\"\n", "colour: unknown key"},
           {"[context]\nstop_signal = \"SIGNOPE\"\n", "'SIGNOPE' is not a signal"},
           {"[context]\nhostname = \"bad host\"\n", "not a valid hostname"},
           {"[context]\nautostart = \"yes\"\n", "expected true or false"},
           {"[context]\nno_new_privs = 1\n", "expected true or false"},
           {"[context]\ninit = \"relative\"\n", "expected an absolute path"},
           {"[context\n", toml}}) {
    write_file(toml, text);
    auto r = vunify(g.pool, "start " + g.name);
    INFO(text << r.out);
    CHECK(r.status == 2);
    CHECK(r.out.find(expect) != std::string::npos);
    CHECK(r.out.find(toml) != std::string::npos);
    CHECK(!g.state());
    CHECK(!mounted(g.pool + "/guests/" + g.name));
  }
  write_file(toml, "[context]\nhostname = \"web-1\"\nstop_signal = \"SIGINT\"\nautostart = true\n");
  g.ok("start --all");
  CHECK(g.sh("hostname").out == "web-1\n");
  CHECK(g.state()->stop_signal == SIGINT);
}

}  // namespace vunify::test
