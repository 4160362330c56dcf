// The view daemon's own cgroup (vunify/NAME.view) and `vunify top` against a guest doing known
// work: tasks, memory, a cold read, traffic on an interface moved into its network namespace.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <csignal>

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/context_guest.hpp"

namespace vunify::test {

namespace {

std::string cgroup_line(pid_t pid) { return read_file("/proc/" + std::to_string(pid) + "/cgroup"); }

bool listed_in(const std::string& dir, pid_t pid) {
  std::ifstream in(dir + "/cgroup.procs");
  for (pid_t p; in >> p;)
    if (p == pid) return true;
  return false;
}

pid_t daemon_of(const ContextGuest& g) { return std::stoi(read_file(g.pool + "/log/" + g.name + ".pid")); }

}  // namespace

TEST_CASE("view cgroup: the view daemon runs in NAME.view while the guest runs: after stop it is back and NAME.view gone",
          "[context][view-cgroup]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("vcg");
  bool premounted = GENERATE(false, true);
  std::string before;
  if (premounted) {
    g.ok("mount " + g.name);
    before = cgroup_line(daemon_of(g));
  }
  g.ok("start " + g.name + " -- /bin/sleep 1000");
  auto s = g.state();
  REQUIRE(s);
  pid_t daemon = daemon_of(g);
  CHECK(s->view.daemon == daemon);
  std::vector<std::string> kinds;
  for (const auto& d : s->view.cgroups) {
    INFO(d.dir);
    CHECK(d.dir.size() > 5);
    CHECK(d.dir.substr(d.dir.size() - 5) == ".view");
    CHECK(listed_in(d.dir, daemon));
    kinds.push_back(d.v2 ? "cgroup2" : d.options);
  }
  // where it matters: memory, CPU, block I/O, tasks; never devices (it opens /dev/fuse)
  for (const auto& d : s->view.cgroups) CHECK(d.options.find("devices") == std::string::npos);
  for (const auto& c : s->cgroups) CHECK(!listed_in(c.dir, daemon));
  bool v1 = std::any_of(s->cgroups.begin(), s->cgroups.end(), [](const auto& c) { return !c.v2; });
  if (v1)
    for (const char* ctrl : {"memory", "blkio", "pids", "cpuacct"})
      CHECK(std::any_of(kinds.begin(), kinds.end(), [&](const std::string& k) { return k.find(ctrl) != std::string::npos; }));
  g.ok("stop " + g.name);
  for (const auto& d : s->view.cgroups) CHECK(::access(d.dir.c_str(), F_OK) != 0);
  if (premounted) {
    CHECK(::kill(daemon, 0) == 0);
    CHECK(cgroup_line(daemon) == before);
  } else {
    CHECK(!mounted(g.pool + "/guests/" + g.name));
    // it exits right after its unmount (a moment later than its pid file goes)
    std::string proc = "/proc/" + std::to_string(daemon);
    for (int i = 0; i < 150 && ::access(proc.c_str(), F_OK) == 0; ++i) ::usleep(20000);
    CHECK(::access(proc.c_str(), F_OK) != 0);
  }
}

namespace {

// A veth pair in a namespace of the test's own, one end moved into the guest's network
// namespace (10.213.N.2/24 inside, 10.213.N.1 on the test's side); removed with the namespace.
struct GuestLink {
  std::string ns = "vt-top-" + std::to_string(::getpid());
  bool ok = false;
  explicit GuestLink(pid_t pid1) {
    std::string n = std::to_string(::getpid() % 250), p = std::to_string(pid1);
    std::string script = "set -e; ip netns add " + ns + "; ip -n " + ns + " link add vtt0 type veth peer name vtg0;" +
                         "ip -n " + ns + " link set vtg0 netns " + p + "; ip -n " + ns + " addr add 10.213." + n +
                         ".1/24 dev vtt0; ip -n " + ns + " link set vtt0 up; nsenter -t " + p + " -n ip addr add 10.213." +
                         n + ".2/24 dev vtg0; nsenter -t " + p + " -n ip link set vtg0 up";
    auto r = run(script + " 2>&1");
    INFO(r.out);
    ok = r.status == 0;
  }
  ~GuestLink() { run("ip netns del " + ns + " 2>/dev/null"); }
  // Sends `count` UDP datagrams of 1,000 bytes from the test's namespace to the guest (which
  // answers ARP, and each datagram with an ICMP port unreachable).
  bool send(int count) const {
    std::string n = std::to_string(::getpid() % 250);
    return run("ip netns exec " + ns + " bash -c 'for i in $(seq " + std::to_string(count) +
               "); do head -c 1000 /dev/zero > /dev/udp/10.213." + n + ".2/9; sleep 0.05; done'")
               .status == 0;
  }
};

nlohmann::json top_once(const ContextGuest& g) {
  auto r = vunify(g.pool, "top --once --json " + g.name);
  INFO(r.out);
  REQUIRE(r.status == 0);
  auto j = nlohmann::json::parse(r.out);
  REQUIRE(j.at("guests").size() == 1);
  return j.at("guests").at(0);
}

}  // namespace

TEST_CASE("top: --once shows a guest's tasks, memory, I/O, network bytes and its view daemon", "[context][top]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("top");
  write_file(g.backing(g.name, "data"), "");
  REQUIRE(run("head -c 8M /dev/urandom > '" + g.backing(g.name, "data") + "'").status == 0);
  // PID 1 (vunify-init), sh and three sleeps
  g.ok("start " + g.name + " -- /bin/sh -c 'sleep 1000 & sleep 1000 & sleep 1000 & wait'");
  auto s = g.state();
  REQUIRE(s);
  for (int i = 0; i < 100 && processes_in_namespace(s->context_id).size() < 5; ++i) ::usleep(20000);
  auto idle = top_once(g);
  CHECK(idle.at("name") == g.name);
  CHECK(idle.at("pid1") == s->pid1);
  CHECK(idle.at("guest").at("pids") == 5);
  CHECK(idle.at("cpu_percent").get<double>() < 5);
  CHECK(idle.at("view").at("pids").get<int>() >= 1);
  CHECK(idle.at("view").at("memory").get<uint64_t>() > 0);
  // 16 MiB in the guest's /dev/shm (charged to its memory), a cold 8 MiB read (its block I/O)
  REQUIRE(g.sh("head -c 16777216 /dev/zero > /dev/shm/fill").status == 0);
  int fd = ::open(g.backing(g.name, "data").c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  ::fdatasync(fd);  // dirty pages are not dropped
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
  REQUIRE(g.sh("cat /data > /dev/null").status == 0);
  // a busy loop while top samples
  std::thread busy([&] { g.sh("end=$(($(date +%s)+3)); while [ $(date +%s) -lt $end ]; do :; done"); });
  ::usleep(300000);
  auto busy_top = top_once(g);
  busy.join();
  CHECK(busy_top.at("guest").at("memory").get<uint64_t>() >= 16u << 20);
  CHECK(busy_top.at("guest").at("io_read").get<uint64_t>() + busy_top.at("view").at("io_read").get<uint64_t>() >= 8u << 20);
  CHECK(busy_top.at("cpu_percent").get<double>() > 2);
  CHECK(busy_top.at("guest").at("cpu_ns").get<uint64_t>() > idle.at("guest").at("cpu_ns").get<uint64_t>());
  // network bytes: lo is not counted; datagrams through an interface of the guest's are
  CHECK(busy_top.at("net_rx") == 0);
  if (run("command -v ip && command -v nsenter").status != 0) {
    WARN("network part skipped: needs ip and nsenter (iproute2, util-linux)");
  } else {
    GuestLink link(s->pid1);
    REQUIRE(link.ok);
    REQUIRE(link.send(5));
    auto net = top_once(g);
    CHECK(net.at("net_rx").get<uint64_t>() >= 5 * 1000);
    CHECK(net.at("net_tx").get<uint64_t>() > 0);
  }
  // the plain table (no terminal): a header and the guest's row
  auto r = vunify(g.pool, "top -n 2 -d 0.2");
  INFO(r.out);
  CHECK(r.status == 0);
  CHECK(r.out.rfind("GUEST ", 0) == 0);
  CHECK(r.out.find("\n" + g.name + " ") != std::string::npos);
  CHECK(r.out.find("\033") == std::string::npos);
  g.ok("stop " + g.name);
  r = vunify(g.pool, "top --once");
  CHECK(r.out.find("no guest is running") != std::string::npos);
}

TEST_CASE("top: bad input is a usage error", "[top]") {
  VUNIFY_REQUIRE_ROOT();
  ScratchPool p;
  for (const char* args : {"top nosuch", "top --once -n 3", "top -d 0", "top -n 0", "top 'bad/name'"}) {
    auto r = vunify(p.pool, args);
    INFO(args << "\n" << r.out);
    CHECK(r.status == 2);
  }
}

}  // namespace vunify::test

namespace vunify::test {

TEST_CASE("top: on a terminal it redraws, and q or Ctrl-C quit with the terminal restored", "[top]") {
  VUNIFY_REQUIRE_ROOT();
  ScratchPool p;
  for (char key : {'q', '\x03'}) {
    INFO("key " << int(key));
    int master = -1;
    pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::execl(VUNIFY_BIN, "vunify", "--pool", p.pool.c_str(), "top", "-d", "0.2", static_cast<char*>(nullptr));
      _exit(127);
    }
    std::string out;
    char buf[4096];
    auto read_some = [&](int ms) {
      pollfd pfd{master, POLLIN, 0};
      while (::poll(&pfd, 1, ms) > 0) {
        ssize_t n = ::read(master, buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
      }
    };
    for (int i = 0; i < 50 && out.find("no guest is running") == std::string::npos; ++i) read_some(100);
    termios during{};
    REQUIRE(::tcgetattr(master, &during) == 0);
    CHECK(!(during.c_lflag & ICANON));
    REQUIRE(::write(master, &key, 1) == 1);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    read_some(100);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    termios after{};
    REQUIRE(::tcgetattr(master, &after) == 0);
    CHECK((after.c_lflag & ICANON));
    CHECK((after.c_lflag & ECHO));
    CHECK(out.find("\033[2J") != std::string::npos);
    CHECK(out.find("\033[?25h") != std::string::npos);  // cursor shown again
    ::close(master);
  }
}

}  // namespace vunify::test
