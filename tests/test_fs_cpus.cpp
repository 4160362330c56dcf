// Pinning a view daemon's threads to CPUs: `vunify mount --cpus LIST` and `[view] cpus` in
// POOL/etc/NAME.toml (issue 16, part 3: a request and its reply on one CPU need no
// inter-processor wake-ups). Checked on the real daemon: every thread's allowed CPUs, and the
// CPU each thread last ran on after serving requests from several threads.
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>
#include <sstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "os/cpu_list.hpp"
#include "tests/test_fs_support.hpp"

using namespace vunify::test;

namespace {

// The file's text, "" if it does not exist.
std::string text_of(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

bool mounted(const std::string& path) { return run("grep -q ' " + path + " ' /proc/self/mountinfo").status == 0; }

pid_t daemon_pid(const std::string& pool, const std::string& guest) {
  std::ifstream in(pool + "/log/" + guest + ".pid");
  pid_t pid = 0;
  in >> pid;
  return pid;
}

std::vector<std::string> task_ids(pid_t pid) {
  std::vector<std::string> out;
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') out.push_back(e->d_name);
  ::closedir(d);
  return out;
}

// Cpus_allowed_list of each thread of `pid`.
std::vector<std::string> allowed_lists(pid_t pid) {
  std::vector<std::string> out;
  for (const auto& tid : task_ids(pid)) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + tid + "/status");
    for (std::string line; std::getline(in, line);)
      if (line.rfind("Cpus_allowed_list:", 0) == 0) out.push_back(line.substr(line.find_first_not_of(" \t", 18)));
  }
  return out;
}

// The CPU each thread of `pid` last ran on (/proc/.../stat field 39).
std::set<int> last_cpus(pid_t pid) {
  std::set<int> out;
  for (const auto& tid : task_ids(pid)) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + tid + "/stat");
    std::string line;
    std::getline(in, line);
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    std::string field;
    for (int i = 3; i <= 39 && rest >> field; ++i)
      if (i == 39) out.insert(std::stoi(field));
  }
  return out;
}

// Requests from several threads at once, slow ones (FSYNC) among them, so the daemon starts
// more than one thread (fs/serve_loop.hpp: it does so only before serving a slow request).
void busy_view(const std::string& root) {
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        std::string p = root + "/tmp-cpus-" + std::to_string(t) + "-" + std::to_string(i);
        write_file(p, "x");
        if (i % 10 == 0) {
          int fd = ::open(p.c_str(), O_WRONLY | O_CLOEXEC);
          if (fd >= 0) {
            ::fsync(fd);
            ::close(fd);
          }
        }
        ::unlink(p.c_str());
      }
    });
  for (auto& t : ts) t.join();
}

}  // namespace

TEST_CASE("mount --cpus and [view] cpus pin every thread of the view daemon", "[fs][view][cpus]") {
  VUNIFY_REQUIRE_FUSE();
  std::set<int> allowed = vunify::os::allowed_cpus();
  ViewPool v(1, true, false);
  std::string root = v.root("g1"), config = v.pool + "/etc/g1.toml";
  int first = *allowed.begin(), last = *allowed.rbegin();
  auto expect_pinned = [&](int cpu) {
    busy_view(root);
    pid_t pid = daemon_pid(v.pool, "g1");
    REQUIRE(pid > 1);
    auto lists = allowed_lists(pid);
    CHECK(lists.size() >= 2);  // the main thread and at least one more
    for (const auto& l : lists) CHECK(l == std::to_string(cpu));
    CHECK(last_cpus(pid) == std::set<int>{cpu});
    CHECK(read_file(v.pool + "/log/g1.log").find("CPUs " + std::to_string(cpu) + ")") != std::string::npos);
  };

  SECTION("not pinned by default: the threads may run wherever the mounting process may") {
    REQUIRE(cli(v.pool, "mount g1").status == 0);
    busy_view(root);
    for (const auto& l : allowed_lists(daemon_pid(v.pool, "g1"))) CHECK(l == vunify::os::format_cpu_list(allowed));
    CHECK(read_file(v.pool + "/log/g1.log").find("CPUs any)") != std::string::npos);
  }
  SECTION("--cpus") {
    auto r = cli(v.pool, "mount g1 --cpus " + std::to_string(last));
    INFO(r.out);
    REQUIRE(r.status == 0);
    expect_pinned(last);
  }
  SECTION("[view] cpus, and --cpus overrides it") {
    write_file(config, "[view]\ncpus = \"" + std::to_string(first) + "\"\n");
    REQUIRE(cli(v.pool, "mount g1").status == 0);
    expect_pinned(first);
    REQUIRE(cli(v.pool, "umount g1").status == 0);
    REQUIRE(cli(v.pool, "mount g1 --cpus " + std::to_string(last)).status == 0);
    expect_pinned(last);
  }
  SECTION("an already mounted view is not re-pinned: said so, exit 2") {
    REQUIRE(cli(v.pool, "mount g1").status == 0);
    auto r = cli(v.pool, "mount g1 --cpus " + std::to_string(first));
    CHECK(r.status == 2);
    CHECK(r.out.find("--cpus " + std::to_string(first) + " not applied to g1") != std::string::npos);
  }
}

TEST_CASE("a bad view CPU list is refused with a clear error and nothing is mounted", "[fs][view][cpus]") {
  VUNIFY_REQUIRE_FUSE();
  ViewPool v(1, true, false);
  std::string mnt = v.pool + "/guests/g1", config = v.pool + "/etc/g1.toml";
  std::string before = text_of(config);
  auto refused = [&](const std::string& args, const std::string& message) {
    auto r = cli(v.pool, args.rfind(" --all", 0) == 0 ? "mount" + args : "mount g1" + args);
    INFO(r.out);
    CHECK(r.status != 0);
    CHECK(r.out.find(message) != std::string::npos);
    CHECK_FALSE(mounted(mnt));
    CHECK(daemon_pid(v.pool, "g1") == 0);  // no daemon started (its pid file is written first)
  };
  refused(" --cpus abc", "--cpus abc: 'abc' is not a CPU list");
  refused(" --cpus 1-0", "is not a CPU list");
  refused(" --cpus ''", "is not a CPU list");
  refused(" --cpus 4000", "--cpus 4000: CPU 4000 is not available here (this process may run on");
  refused(" --all --cpus 0,x", "is not a CPU list");
  CHECK(text_of(config) == before);  // the option is not written anywhere

  write_file(config, before + "\n[view]\ncpus = 0\n");
  refused("", "[view] cpus: expected a CPU list string");
  write_file(config, before + "\n[view]\ncpus = \"4000\"\n");
  refused("", "[view] cpus: CPU 4000 is not available here");
  write_file(config, before + "\n[view]\nworkers = 1\n");
  refused("", "[view] workers: unknown key (known: cpus, threads)");
  write_file(config, before + "\nview = 3\n");
  refused("", "[view] must be a table");

  write_file(config, before + "\n[view]\nthreads = 0\n");
  refused("", "[view] threads: '0' is not a number of threads from 1 to 64");
  write_file(config, before + "\n[view]\nthreads = \"2\"\n");
  refused("", "[view] threads: expected a number");
  write_file(config, before + "\n[view]\ncpus = \"x\"\n");  // the file is checked even when --cpus overrides it
  refused(" --cpus 0", "[view] cpus: 'x' is not a CPU list");
  write_file(config, before);
  refused(" --threads 0", "--threads 0: '0' is not a number of threads from 1 to 64");
  refused(" --threads 65", "--threads 65: '65' is not a number of threads from 1 to 64");
  refused(" --threads=-1", "is not a number of threads");

  auto r = cli(v.pool, "mount g1 --cpus " + std::to_string(*vunify::os::allowed_cpus().begin()) + " --threads 2");
  INFO(r.out);
  CHECK(r.status == 0);
  CHECK(mounted(mnt));
}

TEST_CASE("mount --threads and [view] threads bound the view daemon's workers", "[fs][view][cpus]") {
  VUNIFY_REQUIRE_FUSE();
  ViewPool v(1, true, false);
  std::string root = v.root("g1");
  auto threads_after_parallel_requests = [&] {
    busy_view(root);
    return task_ids(daemon_pid(v.pool, "g1")).size();  // the main thread serves too
  };
  SECTION("--threads 1: one thread") {
    REQUIRE(cli(v.pool, "mount g1 --threads 1").status == 0);
    CHECK(threads_after_parallel_requests() == 1);
    CHECK(read_file(v.pool + "/log/g1.log").find("1 threads") != std::string::npos);
  }
  SECTION("[view] threads = 2") {
    write_file(v.pool + "/etc/g1.toml", "[view]\nthreads = 2\n");
    REQUIRE(cli(v.pool, "mount g1").status == 0);
    CHECK(threads_after_parallel_requests() == 2);
  }
  SECTION("default: up to 8, more than one under parallel slow requests") {
    REQUIRE(cli(v.pool, "mount g1").status == 0);
    size_t n = threads_after_parallel_requests();
    CHECK(n >= 2);
    CHECK(n <= 8);
  }
}
