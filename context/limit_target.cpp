#include "context/limit_target.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

#include "os/error.hpp"
#include "os/size.hpp"
#include "os/unique_fd.hpp"

namespace vunify::context {

namespace {

bool has_token(const std::string& list, std::string_view token, char sep) {
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, sep);)
    if (item == token) return true;
  return false;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

const CgroupDir* LimitTarget::find(std::string_view controller) const {
  for (const auto& d : cgroups)
    if (!d.v2 && has_token(d.options, controller, ',')) return &d;
  for (const auto& d : cgroups)
    if (d.v2 && has_token(read_cgroup(d.dir, "cgroup.controllers").value_or(""), controller, ' ')) return &d;
  return nullptr;
}

const CgroupDir& LimitTarget::need(std::string_view controller, std::string_view key) const {
  if (const CgroupDir* d = find(controller)) return *d;
  throw os::UserError(fmt::format(
      "{} needs the {} cgroup controller, which no hierarchy offers to guest {} (on cgroup2 it must be enabled in the "
      "cgroup.subtree_control of the cgroup vunify runs in: run it from a unit with Delegate=yes)",
      key, controller, guest));
}

std::vector<pid_t> LimitTarget::pids() const { return GuestCgroups(cgroups).pids(); }

void write_cgroup(const CgroupDir& dir, const std::vector<CgroupWrite>& writes) {
  for (const auto& w : writes) {
    std::string path = dir.dir + "/" + w.file;
    if (w.optional && ::access(path.c_str(), F_OK) != 0) continue;
    write_cgroup_file(path, w.value);
  }
}

std::optional<std::string> read_cgroup(const std::string& dir, const std::string& file) {
  std::ifstream in(dir + "/" + file);
  if (!in) return std::nullopt;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return std::nullopt;
  return trimmed(text);
}

std::optional<uint64_t> read_cgroup_key(const std::string& dir, const std::string& file, const std::string& key) {
  std::ifstream in(dir + "/" + file);
  std::string k;
  for (uint64_t v; in >> k >> v;)
    if (k == key) return v;
  return std::nullopt;
}

std::string canonical_size(const std::string& text, uint64_t min_bytes) {
  os::SizeError err;
  auto bytes = os::parse_size(text, &err);
  if (!bytes) throw os::UserError(err == os::SizeError::TooLarge ? "too large" : "not a size");
  if (*bytes < min_bytes) throw os::UserError(fmt::format("less than {}", os::format_size(min_bytes)));
  return os::format_size(*bytes);
}

std::string canonical_integer(const std::string& text, int64_t min, int64_t max) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) throw os::UserError("not a whole number");
  if (v < min || v > max) throw os::UserError(fmt::format("out of range {}..{}", min, max));
  return std::to_string(v);
}

std::string canonical_decimal(const std::string& text, double min, double max) {
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v, std::chars_format::fixed);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty() || !std::isfinite(v))
    throw os::UserError("not a number");
  if (v < min || v > max) throw os::UserError(fmt::format("out of range {}..{}", min, max));
  return fmt::format("{}", v);
}

std::optional<uint64_t> size_of(const std::string& key, const std::map<std::string, std::string>& limits) {
  auto it = limits.find(key);
  return it == limits.end() ? std::nullopt : os::parse_size(it->second);
}

std::optional<int64_t> integer_of(const std::string& key, const std::map<std::string, std::string>& limits) {
  auto it = limits.find(key);
  if (it == limits.end()) return std::nullopt;
  int64_t v = 0;
  std::from_chars(it->second.data(), it->second.data() + it->second.size(), v);
  return v;
}

std::optional<double> decimal_of(const std::string& key, const std::map<std::string, std::string>& limits) {
  auto it = limits.find(key);
  if (it == limits.end()) return std::nullopt;
  double v = 0;
  std::from_chars(it->second.data(), it->second.data() + it->second.size(), v);
  return v;
}

}  // namespace vunify::context
