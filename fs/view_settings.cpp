#include "fs/view_settings.hpp"

#include <fmt/format.h>
#include "os/cpu_list.hpp"
#include "os/error.hpp"
#include "unify/toml_config.hpp"

namespace vunify::fs {

std::set<int> view_cpus(const std::string& text, const std::string& where) {
  try {
    std::set<int> cpus = os::parse_cpu_list(text);
    os::check_allowed_cpus(cpus, where);
    return cpus;
  } catch (const os::UserError& e) {
    std::string msg = e.what();
    throw os::UserError(msg.rfind(where, 0) == 0 ? msg : fmt::format("{}: {}", where, msg));
  }
}

int view_threads(const std::string& text, const std::string& where) {
  bool digits = !text.empty() && text.size() <= 3 && text.find_first_not_of("0123456789") == std::string::npos;
  int n = digits ? std::stoi(text) : 0;
  if (n < 1 || n > kMaxViewThreads)
    throw os::UserError(fmt::format("{}: '{}' is not a number of threads from 1 to {}", where, text, kMaxViewThreads));
  return n;
}

ViewSettings load_view_settings(const std::string& path) {
  ViewSettings s;
  auto doc = unify::parse_toml_file(path);
  if (!doc) return s;
  unify::for_each_key(*doc, path, "view", [&](const std::string& key, const toml::node& value, const std::string& where) {
    if (key == "cpus") {
      if (value.type() != toml::node_type::string) throw os::UserError(where + ": expected a CPU list string, e.g. \"0\" or \"0-1\"");
      s.cpus = view_cpus(*value.value<std::string>(), where);
    } else if (key == "threads") {
      if (value.type() != toml::node_type::integer) throw os::UserError(where + ": expected a number, e.g. 1");
      s.threads = view_threads(std::to_string(*value.value<int64_t>()), where);
    } else {
      throw os::UserError(where + ": unknown key (known: cpus, threads)");
    }
  });
  return s;
}

}  // namespace vunify::fs
