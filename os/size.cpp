#include "os/size.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace vunify::os {

namespace {

constexpr std::string_view kUnits = "KMGTPE";

// The power of 1024 `unit` names ("" and "b" are 0, "k"/"kb"/"kib" 1, ...), or -1.
int unit_power(std::string unit) {
  std::transform(unit.begin(), unit.end(), unit.begin(), [](unsigned char c) { return std::toupper(c); });
  if (unit.empty() || unit == "B") return 0;
  auto pos = kUnits.find(unit[0]);
  std::string rest = unit.substr(1);
  if (pos == std::string_view::npos || !(rest.empty() || rest == "B" || rest == "IB")) return -1;
  return static_cast<int>(pos) + 1;
}

}  // namespace

std::optional<uint64_t> parse_size(std::string_view text, SizeError* error) {
  auto fail = [&](SizeError e) -> std::optional<uint64_t> {
    if (error) *error = e;
    return std::nullopt;
  };
  size_t digits = std::min(text.find_first_not_of("0123456789"), text.size());
  if (digits == 0) return fail(SizeError::NotSize);
  std::string_view unit = text.substr(digits);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  int power = unit_power(std::string(unit));
  if (power < 0) return fail(SizeError::NotSize);
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + digits, n);
  if (ec != std::errc() || end != text.data() + digits) return fail(SizeError::TooLarge);
  for (int i = 0; i < power; ++i) {
    if (n > (static_cast<uint64_t>(INT64_MAX) >> 10)) return fail(SizeError::TooLarge);
    n <<= 10;
  }
  if (n > static_cast<uint64_t>(INT64_MAX)) return fail(SizeError::TooLarge);
  if (error) *error = SizeError::None;
  return n;
}

std::string format_size(uint64_t bytes) {
  int power = 0;
  while (bytes != 0 && power < static_cast<int>(kUnits.size()) && bytes % 1024 == 0) {
    bytes /= 1024;
    ++power;
  }
  return std::to_string(bytes) + (power ? std::string(1, kUnits[static_cast<size_t>(power - 1)]) : "");
}

}  // namespace vunify::os
