#include "unify/toml_config.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include "os/error.hpp"

namespace vunify::unify {

toml::table parse_toml(const std::string& text, const std::string& path) {
  try {
    return toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    throw os::UserError(fmt::format("{}: {} (line {})", path, e.description(), e.source().begin.line));
  }
}

std::optional<toml::table> parse_toml_file(const std::string& path) {
  if (::access(path.c_str(), F_OK) != 0) return std::nullopt;
  try {
    return toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    throw os::UserError(fmt::format("{}: {} (line {})", path, e.description(), e.source().begin.line));
  }
}

void refuse_non_table(const std::string& path, const char* section) {
  throw os::UserError(fmt::format("{}: [{}] must be a table", path, section));
}

}  // namespace vunify::unify
