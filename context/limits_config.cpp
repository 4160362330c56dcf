#include "context/limits_config.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <regex>
#include <sstream>
#include <toml++/toml.h>

#include "os/error.hpp"
#include "os/files.hpp"
#include "os/unique_fd.hpp"
#include "unify/toml_config.hpp"

namespace vunify::context {

namespace {

using os::UserError;

// A TOML value as the text a limit's parser takes.
std::string value_text(const toml::node& node, const std::string& where) {
  if (auto i = node.as_integer()) return std::to_string(i->get());
  if (auto f = node.as_floating_point()) return fmt::format("{}", f->get());
  if (auto s = node.as_string()) return s->get();
  throw UserError(where + ": expected a number or a string");
}

void collect(const toml::table& table, const std::string& prefix, const std::string& path, Limits& out) {
  for (const auto& [k, v] : table) {
    std::string key = prefix + std::string(k.str());
    if (const toml::table* sub = v.as_table()) {
      collect(*sub, key + ".", path, out);
      continue;
    }
    std::string where = fmt::format("{}: [limits]", path);
    std::string text = value_text(v, fmt::format("{} {}", where, key));
    if (unsets_limit(text)) {
      if (!find_limit_key(key)) check_limit(key, text, where);
      continue;
    }
    out[key] = check_limit(key, text, where);
  }
}

Limits limits_of(const toml::table& doc, const std::string& path) {
  Limits out;
  const toml::node* node = doc.get("limits");
  if (!node) return out;
  if (!node->is_table()) throw UserError(path + ": [limits] must be a table");
  collect(*node->as_table(), "", path, out);
  check_limits(out, path + ": [limits]");
  return out;
}

std::string toml_string(const std::string& s) {
  // Canonical values are plain ("64M", "0-1"): a basic string, as the rest of the file has.
  if (s.find_first_of("\"\\\n\t") == std::string::npos) return "\"" + s + "\"";
  std::ostringstream out;
  out << toml::value<std::string>(s);
  return out.str();
}

// "[limits]" or "[limits.cpu]" (spaces and a comment allowed) starts our table; any other
// header ends it.
bool limits_header(const std::string& line) {
  static const std::regex re(R"(^\s*\[\s*limits\s*(\.[^\]]*)?\]\s*(#.*)?$)");
  return std::regex_match(line, re);
}

bool any_header(const std::string& line) {
  static const std::regex re(R"(^\s*\[.*)");
  return std::regex_match(line, re);
}

}  // namespace

std::string config_path(const std::string& pool_root, const std::string& guest) {
  return pool_root + "/etc/" + guest + ".toml";
}

Limits parse_limits(const std::string& text, const std::string& path) { return limits_of(unify::parse_toml(text, path), path); }

Limits load_limits(const std::string& pool_root, const std::string& guest) {
  std::string path = config_path(pool_root, guest);
  os::unique_fd dir(::open((pool_root + "/etc").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return {};
  auto text = os::read_whole_file(dir.get(), guest + ".toml");
  return text ? parse_limits(*text, path) : Limits{};
}

std::string render_limits(const Limits& limits) {
  if (limits.empty()) return "";
  std::string out = "[limits]\n";
  for (const auto& m : limit_modules())
    for (const auto& k : m.keys)
      if (auto it = limits.find(k.name); it != limits.end())
        out += fmt::format("{} = {}\n", k.name, k.quoted ? toml_string(it->second) : it->second);
  return out;
}

std::string replace_limits(const std::string& text, const Limits& limits, const std::string& path) {
  std::string kept;
  bool inside = false;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (any_header(line)) inside = limits_header(line);
    if (!inside) kept += line + "\n";
  }
  std::string block = render_limits(limits), out = kept;
  if (!block.empty()) {
    if (!out.empty() && !out.ends_with("\n\n")) out += "\n";  // a blank line before the table
    out += block;
  }
  toml::table before = unify::parse_toml(text, path), after = unify::parse_toml(out, path);
  before.erase("limits");
  Limits back = limits_of(after, path);
  after.erase("limits");
  if (!(before == after) || back != limits)
    throw UserError(fmt::format("{}: its limits are not in a [limits] table of their own, so vunify cannot rewrite them "
                                "without touching the rest; move them into a [limits] table",
                                path));
  return out;
}

}  // namespace vunify::context
