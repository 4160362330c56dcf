// The context runtime end to end: a guest's command runs isolated, stop leaves nothing behind.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <ctime>
#include <thread>

#include "tests/context_guest.hpp"

namespace vunify::test {

TEST_CASE("context: a guest's command runs alone in its own namespaces", "[context]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("iso");
  write_file(g.dir / "host-only-marker", "x");
  g.ok("start " + g.name + " -- /bin/sleep 1000");
  auto s = g.state();
  REQUIRE(s);
  struct stat host_ns;
  REQUIRE(::stat("/proc/self/ns/pid", &host_ns) == 0);
  CHECK(s->context_id != host_ns.st_ino);
  // init is PID 1 and only the guest's processes are visible (init, sleep, sh, ls, wc)
  auto r = g.sh("cat /proc/1/comm; ls -d /proc/[0-9]* | wc -l");
  INFO(r.out);
  REQUIRE(r.status == 0);
  CHECK(r.out.rfind("vunify-init\n", 0) == 0);
  CHECK(std::stoi(r.out.substr(r.out.find('\n') + 1)) <= 5);
  CHECK(g.sh("hostname").out == g.name + "\n");
  r = g.sh("tail -n +3 /proc/net/dev | cut -d: -f1");
  CHECK(g.sh("grep -c : /proc/net/dev").out == "1\n");
  CHECK(g.sh("grep -q \"^ *lo:\" /proc/net/dev").status == 0);
  CHECK(g.sh("test -e " + g.dir.path() + "/host-only-marker").status == 1);
  CHECK(g.sh("test -e /proc/1/root" + g.dir.path() + "/host-only-marker").status == 1);
  // ps and status from the host
  r = vunify(g.pool, "ps " + g.name);
  CHECK(r.out.find("/bin/sleep 1000") != std::string::npos);
  r = vunify(g.pool, "status " + g.name + " --json");
  CHECK(r.out.find("\"running\"") != std::string::npos);
  g.ok("stop " + g.name);
}

TEST_CASE("context: stop leaves no process, cgroup, mount or state: a view mounted before stays", "[context]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("stop");
  std::string view = g.pool + "/guests/" + g.name;
  bool premounted = GENERATE(false, true);
  if (premounted) g.ok("mount " + g.name);
  g.ok("start " + g.name + " -- /bin/sleep 1000");
  auto s = g.state();
  REQUIRE(s);
  REQUIRE(!existing_cgroups(*s).empty());
  REQUIRE(processes_in_namespace(s->context_id).size() == 2);
  // an exec'd process is ended with the guest
  std::thread bg([&] { g.sh("sleep 999"); });
  for (int i = 0; i < 100 && processes_in_namespace(s->context_id).size() < 3; ++i) ::usleep(20000);
  g.ok("stop " + g.name);
  bg.join();
  CHECK(processes_in_namespace(s->context_id).empty());
  CHECK(::kill(s->pid1, 0) != 0);
  CHECK(existing_cgroups(*s).empty());
  CHECK(::access(s->cgroups.at(0).dir.c_str(), F_OK) != 0);
  CHECK(!g.state());
  CHECK(mounted(view) == premounted);
  CHECK(vunify(g.pool, "status " + g.name).out.find("stopped") != std::string::npos);
}

TEST_CASE("context: a one-shot command's context goes away by itself: its output is in the console log", "[context]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("once");
  g.ok("start " + g.name + " -- /bin/sh -c 'echo hello from $(hostname)'");
  for (int i = 0; i < 250 && g.state(); ++i) ::usleep(20000);
  CHECK(!g.state());
  CHECK(!mounted(g.pool + "/guests/" + g.name));
  std::string log = read_file(g.pool + "/log/" + g.name + ".console");
  CHECK(log.find("hello from " + g.name) != std::string::npos);
  CHECK(log.find("PID 1 exited with status 0") != std::string::npos);
}

TEST_CASE("context: start of a command that ends at once reports success every time", "[context]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("quick");
  g.ok("mount " + g.name);  // no mount/unmount per start: the cleanup races start's return
  for (int i = 0; i < 8; ++i) {
    auto r = vunify(g.pool, "start " + g.name + " -- /bin/true");
    INFO("start " << i << ": " << r.out);
    REQUIRE(r.status == 0);
    CHECK(r.out.find("started (PID 1: vunify-init, host pid ") != std::string::npos);
  }
  for (int i = 0; i < 250 && g.state(); ++i) ::usleep(20000);
  CHECK(!g.state());
}

TEST_CASE("context: a garbled state file from before this boot is no context, a fresh one is an error", "[context]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("garbled");
  std::string file = g.pool + "/run/" + g.name + ".json";
  ::mkdir((g.pool + "/run").c_str(), 0700);
  write_file(file, "", 0600, 0, 0, ::time(nullptr));  // what a crash can leave of a state written without fsync
  auto r = vunify(g.pool, "status " + g.name);
  INFO(r.out);
  CHECK(r.status != 0);
  CHECK(r.out.find("damaged") != std::string::npos);
  timespec boot;
  ::clock_gettime(CLOCK_BOOTTIME, &boot);
  timespec before_boot{::time(nullptr) - boot.tv_sec - 3600, 0};
  timespec times[2] = {before_boot, before_boot};
  REQUIRE(::utimensat(AT_FDCWD, file.c_str(), times, 0) == 0);
  r = vunify(g.pool, "status " + g.name);
  INFO(r.out);
  CHECK(r.status == 0);
  CHECK(r.out.find("stopped") != std::string::npos);
  g.ok("start " + g.name + " -- /bin/sleep 1000");
  auto s = g.state();
  REQUIRE(s);
  CHECK(s->pid1 > 0);
  g.ok("stop " + g.name);
  CHECK(!g.state());
}

TEST_CASE("context: a relative --pool or VUNIFY_POOL names the same pool for start, exec, status and stop", "[context][cli]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("relpool");
  // the supervisor and the holder work from "/": the CLI makes the pool absolute first
  auto slash = g.pool.rfind('/');
  std::string parent = g.pool.substr(0, slash), base = g.pool.substr(slash + 1);
  auto in_parent = [&](const std::string& args) {
    return run("cd '" + parent + "' && " + std::string(VUNIFY_BIN) + " --pool ./" + base + "/ " + args);
  };
  auto r = in_parent("start " + g.name + " -- /bin/sleep 1000");
  INFO(r.out);
  REQUIRE(r.status == 0);
  REQUIRE(g.state());
  r = in_parent("exec " + g.name + " -- /bin/sh -c 'echo in $(hostname)'");
  CHECK(r.status == 0);
  CHECK(r.out == "in " + g.name + "\n");
  r = run("cd '" + parent + "' && VUNIFY_POOL=" + base + " " + std::string(VUNIFY_BIN) + " status " + g.name);
  CHECK(r.status == 0);
  CHECK(r.out.find("running") != std::string::npos);
  r = in_parent("stop " + g.name);
  CHECK(r.status == 0);
  CHECK(!g.state());
  r = vunify("", "status " + g.name);
  CHECK(r.status == 2);
  CHECK(r.out.find("empty") != std::string::npos);
}

TEST_CASE("context: stop kills a guest that ignores its stop signal after the timeout", "[context]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("stubborn");
  g.ok("start " + g.name + " -- /bin/sh -c 'trap \"\" TERM; while :; do sleep 1; done'");
  auto s = g.state();
  REQUIRE(s);
  auto t0 = std::chrono::steady_clock::now();
  auto r = vunify(g.pool, "stop " + g.name + " --timeout 1");
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO(r.out);
  CHECK(r.status == 0);
  CHECK(r.out.find("did not stop within 1 s") != std::string::npos);
  CHECK(secs >= 1.0);
  CHECK(processes_in_namespace(s->context_id).empty());
  CHECK(existing_cgroups(*s).empty());
}

TEST_CASE("context: without a command or an init, vunify's init keeps the context alive", "[context]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("idle");
  g.ok("start " + g.name);
  CHECK(g.sh("cat /proc/1/comm").out == "vunify-init\n");
  auto s = g.state();
  REQUIRE(s);
  CHECK(s->stop_signal == SIGTERM);
  g.ok("restart " + g.name);
  auto s2 = g.state();
  REQUIRE(s2);
  CHECK(s2->pid1_start >= s->pid1_start);
  CHECK(s2->started_ns > s->started_ns);
  CHECK(existing_cgroups(*s2).size() == s2->cgroups.size());
  g.ok("stop " + g.name);
  CHECK(!g.state());
}

TEST_CASE("context: ps --all lists the processes of every running guest with its context", "[context]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("spa");
  std::string second = g.name + "b";
  g.add_guest(second, g.dir / "src2");
  g.ok("start " + g.name + " -- /bin/sleep 1001");
  g.ok("start " + second + " -- /bin/sleep 1002");
  auto r = vunify(g.pool, "ps --all");
  INFO(r.out);
  REQUIRE(r.status == 0);
  CHECK(r.out.find(g.name + " ") != std::string::npos);
  CHECK(r.out.find("/bin/sleep 1001") != std::string::npos);
  CHECK(r.out.find(second + " ") != std::string::npos);
  CHECK(r.out.find("/bin/sleep 1002") != std::string::npos);
}

}  // namespace vunify::test

namespace vunify::test {

TEST_CASE("context: no_new_privs is set in PID 1 and exec'd commands unless [context] turns it off", "[context][security]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("nnp");
  std::string script = "grep NoNewPrivs /proc/1/status /proc/self/status | cut -f2";
  g.ok("start " + g.name + " -- /bin/sleep 1003");
  CHECK(g.sh(script).out == "1\n1\n");
  g.ok("stop " + g.name);
  write_file(g.pool + "/etc/" + g.name + ".toml", "[context]\nno_new_privs = false\n");
  g.ok("start " + g.name + " -- /bin/sleep 1004");
  CHECK(g.sh(script).out == "0\n0\n");
}

}  // namespace vunify::test
