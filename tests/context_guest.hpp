// A pool with one small guest (busybox-static and a passwd) for the context runtime's tests.
// Guest names carry the test's pid, so their cgroups (vunify/NAME) are told apart; the fixture
// stops the guest and unmounts its view even when the test fails.
#pragma once
#include <sys/types.h>

#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <vector>

#include "context/state.hpp"
#include "tests/scratch_pool.hpp"

namespace vunify::test {

// Path of a statically linked busybox on this host, or "" (the tests then skip).
std::string static_busybox();
// A guest tree of busybox applets: /bin/{sh,sleep,...}, /etc/passwd with root and nobody.
void make_busybox_guest(const std::string& dir);

struct ContextGuest : ScratchPool {
  std::string name;
  explicit ContextGuest(const std::string& suffix, bool add = true);
  ~ContextGuest();
  void add_guest(const std::string& guest, const std::string& tree);
  // Runs `vunify exec NAME -- sh -c SCRIPT`.
  CmdResult sh(const std::string& script, const std::string& exec_options = "") const;
  std::optional<context::RunState> state() const;
  std::vector<std::string> extra_guests;
};

// Skips the test (with the reason) unless root and a static busybox are available.
#define VUNIFY_REQUIRE_CONTEXT()                                                     \
  do {                                                                               \
    VUNIFY_REQUIRE_ROOT();                                                           \
    if (vunify::test::static_busybox().empty()) {                                    \
      WARN("skipped: needs a statically linked busybox (apt-get install busybox-static)"); \
      return;                                                                        \
    }                                                                                \
  } while (0)

// Directories of `state`'s cgroups that still exist.
std::vector<std::string> existing_cgroups(const context::RunState& state);
// Host pids whose pid namespace is the context's.
std::vector<pid_t> processes_in_namespace(uint64_t context_id);
bool mounted(const std::string& path);

}  // namespace vunify::test
