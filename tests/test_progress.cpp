// Progress lines: drawn on a terminal for every long command, erased before the result, never
// written into a pipe, never mixed into --json output; and an xz export (multi-threaded) that
// imports back to the same tree.
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/helpers.hpp"
#include "tests/scratch_pool.hpp"

using namespace vunify;

namespace {

// Runs `command` with a pseudo-terminal as its stdin, stdout and stderr; returns all it wrote.
test::CmdResult run_on_terminal(const std::string& command) {
  int master = -1;
  pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
  if (pid < 0) FAIL("forkpty failed");
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  test::CmdResult r;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(master, buf, sizeof buf);
    if (n > 0) {
      r.out.append(buf, static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;  // EIO: the child closed the terminal
    }
  }
  ::close(master);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

// 12 directories of 40 small files each (distinct bytes): enough entries and objects for
// every command to report at least once.
void make_tree(const std::string& dir) {
  for (int d = 0; d < 12; ++d)
    for (int f = 0; f < 40; ++f) test::write_file(dir + "/d" + std::to_string(d) + "/f" + std::to_string(f), "file " + std::to_string(d * 100 + f) + "\n");
}

struct ProgressPool : test::ScratchPool {
  std::string src = dir / "src";
  ProgressPool() { make_tree(src); }
  std::string cmd(const std::string& args) const { return std::string(VUNIFY_BIN) + " --pool '" + pool + "' " + args; }
};

constexpr const char* kErase = "\r\033[K";

// The command drew `word` progress on the terminal and erased it before printing its result.
void check_drawn_and_erased(const test::CmdResult& r, const std::string& word, const std::string& result) {
  INFO(r.out);
  REQUIRE(r.status == 0);
  CHECK(r.out.find(std::string(kErase) + word) != std::string::npos);
  size_t last_erase = r.out.rfind(kErase);
  REQUIRE(last_erase != std::string::npos);
  CHECK(r.out.compare(last_erase + 4, result.size(), result) == 0);
}

void check_no_terminal_bytes(const test::CmdResult& r) {
  INFO(r.out);
  CHECK(r.status == 0);
  CHECK(r.out.find('\033') == std::string::npos);
  CHECK(r.out.find('\r') == std::string::npos);
}

}  // namespace

TEST_CASE("long commands draw progress on a terminal, erase it, and write none into a pipe", "[cli][progress]") {
  VUNIFY_REQUIRE_ROOT();
  ProgressPool f;
  check_drawn_and_erased(run_on_terminal(f.cmd("guest add a --from '" + f.src + "'")), "copying:", "guest a added");
  check_no_terminal_bytes(test::vunify(f.pool, "guest add b --from '" + f.src + "'"));
  f.ok("unify --all");
  check_drawn_and_erased(run_on_terminal(f.cmd("verify")), "verifying:", "480 objects verified");
  check_no_terminal_bytes(test::vunify(f.pool, "verify"));
  check_drawn_and_erased(run_on_terminal(f.cmd("fsck")), "fsck:", "fsck: pool is consistent");
  check_no_terminal_bytes(test::vunify(f.pool, "fsck"));
  check_drawn_and_erased(run_on_terminal(f.cmd("guest clone a c")), "cloning a:", "guest c cloned from a");
  check_no_terminal_bytes(test::vunify(f.pool, "guest clone a d"));
  f.ok("guest rm c d b");
  check_drawn_and_erased(run_on_terminal(f.cmd("gc")), "gc:", "0 unused objects removed (0 B), 480 kept");
  check_no_terminal_bytes(test::vunify(f.pool, "gc"));
  check_drawn_and_erased(run_on_terminal(f.cmd("template from-guest fa a")), "copying:", "template fa ready");
  check_no_terminal_bytes(test::vunify(f.pool, "template from-guest fb a"));

  REQUIRE(test::run("tar -C '" + f.src + "' -cf '" + f.dir.path() + "/t.tar' .").status == 0);
  check_drawn_and_erased(run_on_terminal(f.cmd("template import t '" + f.dir.path() + "/t.tar'")), "importing:",
                         "template t ready");
  check_no_terminal_bytes(test::vunify(f.pool, "template import t2 '" + f.dir.path() + "/t.tar'"));
  check_drawn_and_erased(run_on_terminal(f.cmd("template export t '" + f.dir.path() + "/t1.tar'")), "exporting:",
                         "template t exported");
  check_no_terminal_bytes(test::vunify(f.pool, "template export t '" + f.dir.path() + "/t2.tar'"));
  // To stdout: the archive goes to the pipe, the progress to the terminal (stderr) only.
  test::CmdResult piped = run_on_terminal(f.cmd("template export t - | cmp - '" + f.dir.path() + "/t1.tar'"));
  INFO(piped.out);
  CHECK(piped.status == 0);
}

TEST_CASE("unify --json on a terminal prints valid JSON and no progress", "[cli][progress]") {
  VUNIFY_REQUIRE_ROOT();
  ProgressPool f;
  f.ok("guest add a --from '" + f.src + "'");
  f.ok("guest add b --from '" + f.src + "'");
  test::CmdResult r = run_on_terminal(f.cmd("unify --all --json"));
  INFO(r.out);
  REQUIRE(r.status == 0);
  CHECK(r.out.find('\033') == std::string::npos);
  nlohmann::json j = nlohmann::json::parse(r.out);  // the terminal turns \n into \r\n: JSON whitespace
  CHECK(j["files_linked"] == 480);
}

TEST_CASE("an xz export (multi-threaded) imports back to the identical tree, reproducibly", "[template][progress]") {
  VUNIFY_REQUIRE_ROOT();
  ProgressPool f;
  f.ok("guest add a --from '" + f.src + "'");
  f.ok("template from-guest t a");
  f.ok("template export t '" + f.dir.path() + "/t.tar.xz'");
  CHECK(test::run("xz -t '" + f.dir.path() + "/t.tar.xz'").status == 0);
  // The multi-threaded encoder's mark (the single-threaded one leaves sizes out of block headers).
  CHECK(test::run("xz -lvv '" + f.dir.path() + "/t.tar.xz' | grep -q 'Sizes in headers: *Yes'").status == 0);
  f.ok("template import u '" + f.dir.path() + "/t.tar.xz'");
  auto diffs = test::diff(test::snapshot(f.pool + "/templates/t/root"), test::snapshot(f.pool + "/templates/u/root"));
  INFO(diffs.size() << " differences, first: " << (diffs.empty() ? "" : diffs[0]));
  CHECK(diffs.empty());
  f.ok("template export u '" + f.dir.path() + "/u.tar.xz'");
  CHECK(test::run("cmp '" + f.dir.path() + "/t.tar.xz' '" + f.dir.path() + "/u.tar.xz'").status == 0);
}
