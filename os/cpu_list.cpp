#include "os/cpu_list.hpp"

#include <fmt/format.h>
#include <sched.h>

#include <algorithm>

#include "os/error.hpp"

namespace vunify::os {

std::set<int> parse_cpu_list(const std::string& text) {
  std::set<int> out;
  auto bad = [&] { return UserError(fmt::format("'{}' is not a CPU list (e.g. 0, 0-3, 0,2-3)", text)); };
  if (text.empty()) throw bad();
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = std::min(text.find(',', pos), text.size());
    std::string item = text.substr(pos, comma - pos);
    size_t dash = item.find('-');
    auto number = [&](const std::string& s) {
      if (s.empty() || s.size() > 4 || s.find_first_not_of("0123456789") != std::string::npos) throw bad();
      return std::stoi(s);
    };
    int lo = number(item.substr(0, dash)), hi = dash == std::string::npos ? lo : number(item.substr(dash + 1));
    if (hi < lo) throw bad();
    for (int c = lo; c <= hi; ++c) out.insert(c);
    pos = comma + 1;
  }
  return out;
}

std::string format_cpu_list(const std::set<int>& cpus) {
  std::string out;
  for (auto it = cpus.begin(); it != cpus.end();) {
    int lo = *it, hi = lo;
    while (++it != cpus.end() && *it == hi + 1) ++hi;
    out += (out.empty() ? "" : ",") + (lo == hi ? std::to_string(lo) : fmt::format("{}-{}", lo, hi));
  }
  return out;
}

std::set<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) throw_errno("read the CPU affinity of", "this process");
  std::set<int> out;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) out.insert(c);
  return out;
}

void check_allowed_cpus(const std::set<int>& cpus, const std::string& what) {
  std::set<int> allowed = allowed_cpus();
  if (cpus.empty()) throw UserError(fmt::format("{}: no CPU given", what));
  for (int c : cpus)
    if (!allowed.count(c))
      throw UserError(fmt::format("{}: CPU {} is not available here (this process may run on {})", what, c,
                                  format_cpu_list(allowed)));
}

void pin_to_cpus(const std::set<int>& cpus, const std::string& what) {
  check_allowed_cpus(cpus, what);
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus) CPU_SET(c, &set);
  if (::sched_setaffinity(0, sizeof set, &set) != 0) throw_errno("set the CPU affinity (" + what + ") of", "this process");
}

}  // namespace vunify::os
