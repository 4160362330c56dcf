#include "cli/options.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdint>

#include "os/error.hpp"

namespace vunify::cli {

namespace {

// Parses all of `s` as a decimal number; false if it is not one or exceeds 2^63-1.
bool fits(std::string_view s, uint64_t& v) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size() && v <= static_cast<uint64_t>(INT64_MAX);
}

}  // namespace

CLI::Validator size_value() {
  CLI::Validator units = CLI::AsSizeValue(false);
  return CLI::Validator(
      [units](std::string& value) {
        std::string original = value;
        std::string_view digits = original;
        digits = digits.substr(0, std::min(digits.find_first_not_of("0123456789"), digits.size()));
        uint64_t n = 0;
        std::string err = "not a size";
        if (!digits.empty() && fits(digits, n)) {
          try {
            err = units(value);
          } catch (const CLI::Error&) {
            err = "bad";
          }
          if (!err.empty()) err = "not a size, or too large";
          if (err.empty() && !fits(value, n)) err = "too large";
        } else if (!digits.empty()) {
          err = "too large";
        }
        if (err.empty()) return err;
        value = original;
        return fmt::format("'{}' is {}: give bytes or a number with a unit (4K, 1M, 2GiB, 1T; less than 8E)", original, err);
      },
      "SIZE");
}

void check_names_or_all(const std::vector<std::string>& names, bool all, std::string_view what) {
  if (all && !names.empty())
    throw os::UserError(fmt::format("give either guest names or --all to {}, not both (got --all and {})", what, names.front()));
  if (!all && names.empty()) throw os::UserError(fmt::format("name the guests to {}, or give --all", what));
}

}  // namespace vunify::cli
