// The view daemon's leader/followers loop (fs/serve_loop.hpp): a slow request (a copy-on-write
// break, made to take 2 s by the VUNIFY_TEST_BREAK_DELAY_MS hook) is served while the next
// requests of the guest are read and answered by another thread; with `--threads 1` they wait
// (the trade-off of one worker). And the loop ends cleanly on an exit signal, with its threads.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "tests/test_fs_support.hpp"

using namespace vunify::test;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

pid_t daemon_pid(const std::string& pool, const std::string& guest) {
  std::ifstream in(pool + "/log/" + guest + ".pid");
  pid_t pid = 0;
  in >> pid;
  return pid;
}

// Mounts g1 with every copy-on-write break of its daemon taking 2 s longer.
void mount_with_slow_breaks(const ViewPool& v, const std::string& options) {
  ::setenv("VUNIFY_TEST_BREAK_DELAY_MS", "2000", 1);
  auto r = cli(v.pool, "mount g1" + options);
  ::unsetenv("VUNIFY_TEST_BREAK_DELAY_MS");
  INFO(r.out);
  REQUIRE(r.status == 0);
}

struct Timings {
  double open_s = 0;   // the write open of a shared file (the break)
  double other_s = 0;  // stat of one file and read of another, started while the break runs
  bool opened = false;
  std::string content;
};

// A write open of the shared file data/shared.bin in a thread; 300 ms into it, a stat of
// etc/os-release and a read of data/big.txt, none of them looked up before.
Timings other_requests_during_a_break(const ViewPool& v) {
  Timings t;
  std::thread writer([&] {
    auto start = Clock::now();
    int fd = ::open(v.root("g1", "data/shared.bin").c_str(), O_WRONLY);
    t.open_s = seconds_since(start);
    t.opened = fd >= 0;
    if (fd >= 0) ::close(fd);
  });
  ::usleep(300000);
  auto start = Clock::now();
  struct stat st;
  bool stat_ok = ::stat(v.root("g1", "etc/os-release").c_str(), &st) == 0;
  t.content = read_file(v.root("g1", "data/big.txt"));
  t.other_s = seconds_since(start);
  writer.join();
  CHECK(stat_ok);
  return t;
}

}  // namespace

TEST_CASE("a slow request does not hold up the view's other requests", "[fs][view][loop]") {
  VUNIFY_REQUIRE_FUSE();
  ViewPool v(2, true, false);  // two identical guests: g1's files are store objects
  SECTION("default threads: served meanwhile") {
    mount_with_slow_breaks(v, "");
    Timings t = other_requests_during_a_break(v);
    CHECK(t.opened);
    CHECK(t.open_s >= 1.9);  // the hook held the break
    CHECK(t.other_s < 0.5);
    CHECK(t.content == std::string(70000, 'b'));
  }
  SECTION("--threads 1: they wait for the break") {
    mount_with_slow_breaks(v, " --threads 1");
    Timings t = other_requests_during_a_break(v);
    CHECK(t.opened);
    CHECK(t.open_s >= 1.9);
    CHECK(t.other_s >= 1.2);  // ~1.7 s: the rest of the break
    CHECK(t.content == std::string(70000, 'b'));
  }
  CHECK(content_of(v.root("g1", "data/shared.bin")) == std::string(300000, 's') + "end\n");
  REQUIRE(cli(v.pool, "umount g1").status == 0);
  CHECK(read_file(v.pool + "/log/g1.log").find("unmounted (status 0)") != std::string::npos);
}

TEST_CASE("the view daemon ends on SIGTERM with all its threads", "[fs][view][loop]") {
  VUNIFY_REQUIRE_FUSE();
  ViewPool v(2, true, false);
  mount_with_slow_breaks(v, "");
  Timings t = other_requests_during_a_break(v);  // several threads serving now
  CHECK(t.other_s < 0.5);
  pid_t pid = daemon_pid(v.pool, "g1");
  REQUIRE(pid > 1);
  size_t tasks = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) ++tasks;
  CHECK(tasks >= 2);
  REQUIRE(::kill(pid, SIGTERM) == 0);
  bool gone = false;
  for (int i = 0; i < 500 && !gone; ++i) {
    gone = ::access(("/proc/" + std::to_string(pid) + "/task").c_str(), F_OK) != 0 ||
           run("grep -q '^State:.*Z' /proc/" + std::to_string(pid) + "/status").status == 0;
    if (!gone) ::usleep(10000);
  }
  CHECK(gone);
  CHECK(run("grep -q ' " + v.pool + "/guests/g1 ' /proc/self/mountinfo").status != 0);
  CHECK(read_file(v.pool + "/log/g1.log").find("unmounted (status 0)") != std::string::npos);
}
