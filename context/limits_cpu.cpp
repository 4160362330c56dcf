// cpu.share, cpu.reserve, cpu.cap, cpu.cpus. Shares and reservations are weights among the
// cgroups under the guests' common `vunify` parent: each guest's configured share and
// reservation are recorded as xattrs on its cpu cgroup (trusted.vunify.share/.reserve), and
// every change recomputes the weights of all of the parent's guests (reserved_shares), so a
// reservation holds whatever the other guests' shares are, across pools.
#include "context/limits_cpu.hpp"

#include <dirent.h>
#include <fmt/format.h>
#include <sys/xattr.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "os/error.hpp"

namespace vunify::context {

namespace {

constexpr const char* kShareXattr = "trusted.vunify.share";
constexpr const char* kReserveXattr = "trusted.vunify.reserve";

// The online CPUs (sysfs; CPU 0 alone if it cannot be read).
std::set<int> online_cpus() {
  return parse_cpu_list(read_cgroup("/sys/devices/system/cpu", "online").value_or("0"));
}

std::string cpu_list_canonical(const std::string& text) {
  std::set<int> cpus = parse_cpu_list(text);
  std::set<int> online = online_cpus();
  for (int c : cpus)
    if (!online.count(c)) throw os::UserError(fmt::format("CPU {} is not online (online: {})", c, format_cpu_list(online)));
  return format_cpu_list(cpus);
}

// The CPUs the guest may run on: its cpu.cpus, else every online CPU.
size_t usable_cpus(const Limits& limits) {
  auto it = limits.find("cpu.cpus");
  return it != limits.end() ? parse_cpu_list(it->second).size() : online_cpus().size();
}

std::optional<std::string> get_xattr(const std::string& dir, const char* name) {
  char buf[64];
  ssize_t n = ::getxattr(dir.c_str(), name, buf, sizeof buf);
  if (n < 0) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

void set_xattr(const std::string& dir, const char* name, const std::string& value) {
  if (::setxattr(dir.c_str(), name, value.data(), value.size(), 0) != 0) os::throw_errno("record the cpu limit on", dir);
}

struct Sibling {
  std::string dir;
  bool guest = false;  // has vunify's xattrs: its weight is vunify's to set
  CpuClaim claim;
};

// The cgroups under `parent` as CPU claims; `self` gets `mine` (its new values).
std::vector<Sibling> siblings(const CgroupDir& parent, const std::string& self, const CpuClaim& mine) {
  std::vector<Sibling> out;
  DIR* d = ::opendir(parent.dir.c_str());
  if (!d) os::throw_errno("open", parent.dir);
  while (dirent* e = ::readdir(d)) {
    if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
    Sibling s{parent.dir + "/" + e->d_name};
    if (s.dir == self) {
      s.guest = true;
      s.claim = mine;
    } else if (auto share = get_xattr(s.dir, kShareXattr)) {
      s.guest = true;
      s.claim.share = std::stoull(*share);
      s.claim.reserve = std::stod(get_xattr(s.dir, kReserveXattr).value_or("0"));
    } else if (parent.v2) {
      s.claim.share = weight_to_share(std::stoull(read_cgroup(s.dir, "cpu.weight").value_or("100")));
    } else {
      s.claim.share = std::stoull(read_cgroup(s.dir, "cpu.shares").value_or("1024"));
    }
    out.push_back(s);
  }
  ::closedir(d);
  return out;
}

// Records the guest's share and reservation and recomputes the weights of its parent's guests.
void apply_shares(const CgroupDir& cpu, const Limits& limits) {
  CpuClaim mine{static_cast<uint64_t>(integer_of("cpu.share", limits).value_or(kDefaultShare)),
                decimal_of("cpu.reserve", limits).value_or(0)};
  CgroupDir parent = cpu;
  parent.dir = cpu.dir.substr(0, cpu.dir.rfind('/'));
  auto all = siblings(parent, cpu.dir, mine);
  std::vector<CpuClaim> claims;
  for (const auto& s : all) claims.push_back(s.claim);
  std::vector<uint64_t> shares;
  try {
    shares = reserved_shares(claims);
  } catch (const os::UserError& e) {
    throw os::UserError(fmt::format("cpu.reserve: {} (guests under {})", e.what(), parent.dir));
  }
  try {
    set_xattr(cpu.dir, kShareXattr, std::to_string(mine.share));
    set_xattr(cpu.dir, kReserveXattr, fmt::format("{}", mine.reserve));
  } catch (const os::SysError& e) {
    // A cgroupfs without xattrs: shares still work, each guest on its own; reservations do not.
    if (mine.reserve > 0) throw os::UserError(fmt::format("cpu.reserve needs xattrs on the cgroup filesystem: {}", e.what()));
    return write_cgroup(cpu, {cpu_share_write(mine.share, cpu.v2)});
  }
  for (size_t i = 0; i < all.size(); ++i) {
    if (!all[i].guest) continue;
    CgroupDir d = cpu;
    d.dir = all[i].dir;
    try {
      write_cgroup(d, {cpu_share_write(shares[i], cpu.v2)});
    } catch (const os::SysError&) {
      if (d.dir == cpu.dir) throw;  // another guest stopping meanwhile is no error
    }
  }
}

void apply_cpu(const LimitTarget& t, const Limits& limits) {
  const CgroupDir* cpu = t.find("cpu");
  bool needs_cpu = limits.count("cpu.share") || limits.count("cpu.reserve") || limits.count("cpu.cap");
  if (!cpu && needs_cpu) t.need("cpu", limits.count("cpu.cap") ? "cpu.cap" : "cpu.share");
  if (cpu) {
    apply_shares(*cpu, limits);
    write_cgroup(*cpu, cpu_cap_writes(limits, cpu->v2, usable_cpus(limits)));
  }
  const CgroupDir* cpuset = t.find("cpuset");
  if (!cpuset && limits.count("cpu.cpus")) t.need("cpuset", "cpu.cpus");
  if (!cpuset) return;
  std::string parent = cpuset->dir.substr(0, cpuset->dir.rfind('/'));
  std::string allowed = read_cgroup(parent, cpuset->v2 ? "cpuset.cpus.effective" : "cpuset.cpus").value_or("");
  if (auto it = limits.find("cpu.cpus"); it != limits.end()) {
    std::set<int> have = parse_cpu_list(allowed);
    for (int c : parse_cpu_list(it->second))
      if (!have.count(c))
        throw os::UserError(fmt::format("cpu.cpus={}: CPU {} is not available to guests here (allowed: {}, from {})",
                                        it->second, c, allowed, parent));
  }
  write_cgroup(*cpuset, cpuset_writes(limits, cpuset->v2, allowed));
}

void cpu_usage(const LimitTarget& t, const Limits& limits, nlohmann::json& out) {
  nlohmann::json j;
  if (const CgroupDir* acct = t.find("cpuacct"); acct && !acct->v2) {
    if (auto ns = read_cgroup(acct->dir, "cpuacct.usage")) j["usage_ns"] = std::stoull(*ns);
  } else {
    for (const auto& d : t.cgroups)
      if (auto us = d.v2 ? read_cgroup_key(d.dir, "cpu.stat", "usage_usec") : std::nullopt) j["usage_ns"] = *us * 1000;
  }
  if (const CgroupDir* cpu = t.find("cpu")) {
    j["share"] = integer_of("cpu.share", limits).value_or(kDefaultShare);
    auto w = read_cgroup(cpu->dir, cpu->v2 ? "cpu.weight" : "cpu.shares");
    if (w) j["effective_share"] = cpu->v2 ? weight_to_share(std::stoull(*w)) : std::stoull(*w);
    if (auto r = decimal_of("cpu.reserve", limits)) j["reserve"] = *r;
    j["cap_cores"] = decimal_of("cpu.cap", limits) ? nlohmann::json(*decimal_of("cpu.cap", limits)) : nlohmann::json();
    if (auto stat = read_cgroup_key(cpu->dir, "cpu.stat", "nr_throttled")) j["throttled_periods"] = *stat;
  }
  if (const CgroupDir* cs = t.find("cpuset"))
    j["cpus"] = read_cgroup(cs->dir, cs->v2 ? "cpuset.cpus.effective" : "cpuset.cpus").value_or("");
  out["cpu"] = j;
}

}  // namespace

uint64_t share_to_weight(uint64_t share) { return std::clamp<uint64_t>((share * 100 + 512) / 1024, 1, 10000); }
uint64_t weight_to_share(uint64_t weight) { return std::clamp<uint64_t>((weight * 1024 + 50) / 100, 2, 262144); }

std::vector<uint64_t> reserved_shares(const std::vector<CpuClaim>& claims) {
  double reserved = 0;
  for (const auto& c : claims) reserved += c.reserve;
  if (reserved > kMaxReserveTotal + 1e-9)
    throw os::UserError(fmt::format("reservations add up to {:.2f} of the CPU, more than {}", reserved, kMaxReserveTotal));
  // A reserving claim whose own share already gives it more than its reservation keeps its
  // share; the others get reserve * total. total = (shares of the rest) / (1 - reserved by
  // the reserving ones); a few rounds settle who is which.
  std::vector<bool> by_reserve(claims.size());
  for (size_t i = 0; i < claims.size(); ++i) by_reserve[i] = claims[i].reserve > 0;
  double total = 0;
  for (int round = 0; round < 4; ++round) {
    double rest = 0, fraction = 0;
    for (size_t i = 0; i < claims.size(); ++i)
      by_reserve[i] ? fraction += claims[i].reserve : rest += static_cast<double>(claims[i].share);
    total = fraction < 1 && rest > 0 ? rest / (1 - fraction) : kDefaultShare / std::max(fraction, 1e-3);
    for (size_t i = 0; i < claims.size(); ++i)
      by_reserve[i] = claims[i].reserve > 0 && claims[i].reserve * total > static_cast<double>(claims[i].share);
  }
  std::vector<uint64_t> out;
  for (size_t i = 0; i < claims.size(); ++i) {
    double s = by_reserve[i] ? std::ceil(claims[i].reserve * total) : static_cast<double>(claims[i].share);
    out.push_back(std::clamp<uint64_t>(static_cast<uint64_t>(s), 2, 262144));
  }
  return out;
}

CgroupWrite cpu_share_write(uint64_t share, bool v2) {
  return v2 ? CgroupWrite{"cpu.weight", std::to_string(share_to_weight(share))}
            : CgroupWrite{"cpu.shares", std::to_string(share)};
}

std::vector<CgroupWrite> cpu_cap_writes(const Limits& limits, bool v2, size_t usable_cpus) {
  auto cap = decimal_of("cpu.cap", limits);
  if (cap && usable_cpus > 0 && *cap >= static_cast<double>(usable_cpus)) cap.reset();
  std::string quota = cap ? std::to_string(std::llround(*cap * kCfsPeriodUs)) : (v2 ? "max" : "-1");
  if (v2) return {{"cpu.max", fmt::format("{} {}", quota, kCfsPeriodUs)}};
  return {{"cpu.cfs_period_us", std::to_string(kCfsPeriodUs)}, {"cpu.cfs_quota_us", quota}};
}

std::vector<CgroupWrite> cpuset_writes(const Limits& limits, bool v2, const std::string& parent_cpus) {
  auto it = limits.find("cpu.cpus");
  return {{"cpuset.cpus", it != limits.end() ? it->second : v2 ? "" : parent_cpus}};
}

LimitModule cpu_limit_module() {
  LimitModule m;
  m.name = "cpu";
  m.keys = {
      {"cpu.share", "a relative weight 2..262144 (default 1024)",
       [](const std::string& v) { return canonical_integer(v, 2, 262144); }},
      {"cpu.reserve", "a fraction of the CPU guaranteed under contention, 0.01..0.95",
       [](const std::string& v) { return canonical_decimal(v, 0.01, kMaxReserveTotal); }},
      {"cpu.cap", "cores, e.g. 0.5 or 2 (at least 0.01)",
       [](const std::string& v) { return canonical_decimal(v, 0.01, 4096); }},
      {"cpu.cpus", "a CPU list, e.g. 0 or 0-1,3", cpu_list_canonical, true},
  };
  m.apply = apply_cpu;
  m.usage = cpu_usage;
  return m;
}

}  // namespace vunify::context
