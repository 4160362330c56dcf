#include "cli/options.hpp"

#include <fmt/format.h>

#include "os/error.hpp"
#include "os/size.hpp"

namespace vunify::cli {

CLI::Validator size_value() {
  return CLI::Validator(
      [](std::string& value) {
        os::SizeError err = os::SizeError::None;
        auto bytes = os::parse_size(value, &err);
        if (bytes) {
          value = std::to_string(*bytes);
          return std::string();
        }
        return fmt::format("'{}' is {}: give bytes or a number with a unit (4K, 1M, 2GiB, 1T; less than 8E)", value,
                           err == os::SizeError::TooLarge ? "too large" : "not a size");
      },
      "SIZE");
}

void check_names_or_all(const std::vector<std::string>& names, bool all, std::string_view what) {
  if (all && !names.empty())
    throw os::UserError(fmt::format("give either guest names or --all to {}, not both (got --all and {})", what, names.front()));
  if (!all && names.empty()) throw os::UserError(fmt::format("name the guests to {}, or give --all", what));
}

}  // namespace vunify::cli
