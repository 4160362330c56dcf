#include "os/crash_point.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstdlib>
#include <string>

namespace vunify::os {

namespace {

struct Target {
  std::string point;  // empty: the hook is off
  long n = 1;
};

Target parse_target() {
  const char* env = std::getenv("VUNIFY_TEST_CRASH_AT");
  if (!env || !*env) return {};
  std::string_view spec = env;
  Target t;
  auto colon = spec.rfind(':');
  t.point = std::string(spec.substr(0, colon));
  if (colon != std::string_view::npos) {
    std::string_view num = spec.substr(colon + 1);
    if (std::from_chars(num.data(), num.data() + num.size(), t.n).ec != std::errc{} || t.n < 1) t.n = 1;
  }
  return t;
}

}  // namespace

void crash_point(std::string_view point) {
  // The environment is read once; the count is the only state, and it exists for tests only.
  static const Target target = parse_target();
  static std::atomic<long> reached{0};
  if (target.point.empty() || point != target.point) return;
  if (reached.fetch_add(1) + 1 == target.n) {
    ::kill(::getpid(), SIGKILL);
    ::_exit(137);  // not reached
  }
}

}  // namespace vunify::os
