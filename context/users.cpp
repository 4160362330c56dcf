#include "context/users.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "os/error.hpp"

namespace vunify::context {

namespace {

std::vector<std::string> fields(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream in(line);
  for (std::string f; std::getline(in, f, ':');) out.push_back(f);
  if (!line.empty() && line.back() == ':') out.emplace_back();
  return out;
}

bool numeric(const std::string& s) { return !s.empty() && s.size() < 10 && std::all_of(s.begin(), s.end(), ::isdigit); }

}  // namespace

GuestUser lookup_user(const std::string& spec) {
  std::string want = spec.empty() ? "root" : spec;
  GuestUser u;
  bool found = false;
  std::ifstream passwd("/etc/passwd");
  for (std::string line; !found && std::getline(passwd, line);) {
    auto f = fields(line);
    if (f.size() < 7 || !numeric(f[2]) || !numeric(f[3])) continue;
    if (f[0] != want && !(numeric(want) && f[2] == want)) continue;
    u = {static_cast<uid_t>(std::stoul(f[2])), static_cast<gid_t>(std::stoul(f[3])), f[0], f[5].empty() ? "/" : f[5],
         f[6].empty() ? "/bin/sh" : f[6], {}};
    found = true;
  }
  if (!found) {
    if (spec.empty()) return GuestUser{0, 0, "root", "/", "/bin/sh", {}};  // a guest without /etc/passwd
    if (!numeric(want)) throw os::UserError(fmt::format("no user '{}' in the guest's /etc/passwd", want));
    u.uid = u.gid = static_cast<uid_t>(std::stoul(want));
    u.name = want;
    return u;
  }
  std::ifstream group("/etc/group");
  for (std::string line; std::getline(group, line);) {
    auto f = fields(line);
    if (f.size() < 4 || !numeric(f[2])) continue;
    std::stringstream members(f[3]);
    for (std::string m; std::getline(members, m, ',');)
      if (m == u.name) u.groups.push_back(static_cast<gid_t>(std::stoul(f[2])));
  }
  return u;
}

}  // namespace vunify::context
