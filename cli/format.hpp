// Human-readable output helpers.
#pragma once
#include <cstdint>
#include <string>

namespace vunify::cli {

std::string human_bytes(uint64_t bytes);   // "1.5 GiB"
std::string human_time_ns(int64_t ns);     // "2026-11-25 12:00:00"

}  // namespace vunify::cli
