#include "cli/format.hpp"

#include <fmt/format.h>

#include <ctime>

namespace vunify::cli {

std::string human_bytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", v, kUnits[u]);
}

std::string human_time_ns(int64_t ns) {
  time_t t = static_cast<time_t>(ns / 1000000000LL);
  struct tm tm {};
  ::localtime_r(&t, &tm);
  char buf[64];
  ::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

}  // namespace vunify::cli
