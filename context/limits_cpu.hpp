// CPU limits (limits_cpu.cpp): the translation to cgroup files, exposed for the tests.
#pragma once
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "context/limit_keys.hpp"
#include "context/limit_target.hpp"
#include "os/cpu_list.hpp"

namespace vunify::context {

constexpr uint64_t kDefaultShare = 1024;     // cpu.share when unset (cgroup v1's default)
constexpr uint64_t kCfsPeriodUs = 100000;    // CFS period for cpu.cap
constexpr double kMaxReserveTotal = 0.95;    // what the guests of one parent may reserve in all

// "0-2,5" -> {0,1,2,5}; throws os::UserError on bad syntax (os/cpu_list.hpp).
using os::format_cpu_list;
using os::parse_cpu_list;

// cgroup v1 shares (2..262144, default 1024) -> cgroup2 cpu.weight (1..10000, default 100),
// proportionally, so ratios between guests stay.
uint64_t share_to_weight(uint64_t share);
uint64_t weight_to_share(uint64_t weight);

// One cgroup under the guests' common parent competing for CPU: its configured share and its
// reservation (a fraction of what the parent gets; 0 = none).
struct CpuClaim {
  uint64_t share = kDefaultShare;
  double reserve = 0;
};
// The shares that give every claim with a reservation at least that fraction of the total
// (under contention CFS gives each sibling share/total), and the others their own share.
// Throws os::UserError if the reservations add up to more than kMaxReserveTotal.
std::vector<uint64_t> reserved_shares(const std::vector<CpuClaim>& claims);

// The writes of cpu.cap and cpu.cpus into the cpu (and cpuset) hierarchy; `parent_cpus` is
// what an unset cpu.cpus gets on v1 (v2: "" inherits). A cap of at least `usable_cpus` (the
// CPUs the guest may run on) can never bind and is written as no quota: CFS bandwidth control
// costs every fork and wake-up its accounting even when it never throttles (bench/limits: +7%
// on fork+exit with a cap of every core, within 1% without).
std::vector<CgroupWrite> cpu_cap_writes(const Limits& limits, bool v2, size_t usable_cpus = 0);
std::vector<CgroupWrite> cpuset_writes(const Limits& limits, bool v2, const std::string& parent_cpus);
CgroupWrite cpu_share_write(uint64_t share, bool v2);

}  // namespace vunify::context
