// mem.rss, mem.swap (cgroup memory limits) and mem.memlock (RLIMIT_MEMLOCK of every process of
// the guest: set on PID 1 before it runs and on each exec'd command, prlimit on the running
// ones when it changes).
#include "context/limits_memory.hpp"

#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <nlohmann/json.hpp>

#include "context/watchdog.hpp"
#include "os/error.hpp"
#include "os/size.hpp"

namespace vunify::context {

namespace {

constexpr uint64_t kMinMemory = 4 << 20;  // below this a guest cannot even start a shell

void check_memory(const Limits& limits) {
  auto rss = size_of("mem.rss", limits), swap = size_of("mem.swap", limits);
  if (rss && swap && *swap < *rss)
    throw os::UserError(fmt::format("mem.swap ({}) is memory + swap and must be at least mem.rss ({})",
                                    os::format_size(*swap), os::format_size(*rss)));
}

void apply_memory(const LimitTarget& t, const Limits& limits) {
  const CgroupDir* mem = t.find("memory");
  if (!mem) {
    if (limits.count("mem.rss") || limits.count("mem.swap")) t.need("memory", limits.count("mem.rss") ? "mem.rss" : "mem.swap");
    return;
  }
  if (!mem->v2 && limits.count("mem.swap") && !read_cgroup(mem->dir, "memory.memsw.limit_in_bytes"))
    throw os::UserError("mem.swap needs swap accounting (memory.memsw.* is missing: boot with swapaccount=1)");
  write_cgroup(*mem, memory_writes(limits, mem->v2));
}

// RLIMIT_MEMLOCK wanted for guest processes: mem.memlock, else vunify's own.
rlimit memlock_of(const Limits& limits) {
  rlimit own{};
  ::getrlimit(RLIMIT_MEMLOCK, &own);
  auto v = size_of("mem.memlock", limits);
  return v ? rlimit{*v, *v} : own;
}

bool ids_of(pid_t pid, uid_t& uid, gid_t& gid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  bool u = false, g = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Uid:", 0) == 0) u = std::sscanf(line.c_str(), "Uid: %u", &uid) == 1;
    if (line.rfind("Gid:", 0) == 0) g = std::sscanf(line.c_str(), "Gid: %u", &gid) == 1;
  }
  return u && g;
}

// prlimit of another user's process needs CAP_SYS_RESOURCE, which vunify may lack (not in this
// host's bounding set): a child with that process's ids may lower it.
int prlimit_as_owner(pid_t pid, const rlimit& r) {
  uid_t uid;
  gid_t gid;
  if (!ids_of(pid, uid, gid)) return ESRCH;
  pid_t child = ::fork();
  if (child < 0) return errno;
  if (child == 0) {
    if (::setresgid(gid, gid, gid) != 0 || ::setresuid(uid, uid, uid) != 0) _exit(EPERM);
    _exit(::prlimit(pid, RLIMIT_MEMLOCK, &r, nullptr) == 0 ? 0 : errno);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : EPERM;
}

void set_memlock(pid_t pid, const Limits& limits) {
  rlimit r = memlock_of(limits);
  if (::prlimit(pid, RLIMIT_MEMLOCK, &r, nullptr) == 0) return;
  int err = errno;
  if (err == EPERM) err = prlimit_as_owner(pid, r);
  if (err == 0 || err == ESRCH) return;
  rlimit own{};
  ::getrlimit(RLIMIT_MEMLOCK, &own);
  if (err == EPERM && r.rlim_max > own.rlim_max)
    throw os::UserError(fmt::format("mem.memlock={}: above vunify's own hard limit ({}), which it cannot raise without "
                                    "CAP_SYS_RESOURCE", os::format_size(r.rlim_max), os::format_size(own.rlim_max)));
  throw os::SysError(err, "set RLIMIT_MEMLOCK of", "/proc/" + std::to_string(pid));
}

void apply_memlock(const LimitTarget& t, const Limits& limits) {
  for (pid_t pid : t.pids()) set_memlock(pid, limits);
}

void memory_usage(const LimitTarget& t, const Limits& limits, nlohmann::json& out) {
  nlohmann::json j;
  const CgroupDir* mem = t.find("memory");
  auto number = [](const std::optional<std::string>& s) { return s ? nlohmann::json(std::stoull(*s)) : nlohmann::json(); };
  if (mem) {
    j["current_bytes"] = number(read_cgroup(mem->dir, mem->v2 ? "memory.current" : "memory.usage_in_bytes"));
    j["peak_bytes"] = number(read_cgroup(mem->dir, mem->v2 ? "memory.peak" : "memory.max_usage_in_bytes"));
  }
  auto rss = size_of("mem.rss", limits);
  j["limit_bytes"] = rss ? nlohmann::json(*rss) : nlohmann::json();
  if (auto swap = size_of("mem.swap", limits)) j["memory_and_swap_limit_bytes"] = *swap;
  j["memlock_bytes"] = memlock_of(limits).rlim_cur;
  MemoryEvents ev = memory_events(t);
  j["oom_kills"] = ev.oom_kills;
  j["pressure_events"] = {{"low", ev.pressure_low}, {"medium", ev.pressure_medium}, {"critical", ev.pressure_critical}};
  out["memory"] = j;
}

}  // namespace

std::vector<CgroupWrite> memory_writes(const Limits& limits, bool v2) {
  auto rss = size_of("mem.rss", limits), swap = size_of("mem.swap", limits);
  auto bytes = [](std::optional<uint64_t> v, const char* none) { return v ? std::to_string(*v) : std::string(none); };
  if (v2) {
    // (a string at once: through an optional, GCC 12 warns of an uninitialized value it cannot see)
    std::string swap_only = swap ? std::to_string(*swap - rss.value_or(0)) : rss ? "0" : "max";
    return {{"memory.max", bytes(rss, "max")}, {"memory.swap.max", swap_only, true}};
  }
  return {{"memory.memsw.limit_in_bytes", "-1", true},
          {"memory.limit_in_bytes", bytes(rss, "-1")},
          {"memory.memsw.limit_in_bytes", bytes(swap ? swap : rss, "-1"), true}};
}

LimitModule memory_limit_module() {
  LimitModule m;
  m.name = "memory";
  m.keys = {
      {"mem.rss", "a size of at least 4M, e.g. 512M or 2G", [](const std::string& v) { return canonical_size(v, kMinMemory); },
       true},
      {"mem.swap", "a size (memory + swap), at least mem.rss", [](const std::string& v) { return canonical_size(v, kMinMemory); },
       true},
      {"mem.memlock", "a size, e.g. 64K or 8M", [](const std::string& v) { return canonical_size(v, 0); }, true},
  };
  m.check = check_memory;
  m.apply = [](const LimitTarget& t, const Limits& limits) {
    apply_memory(t, limits);
    apply_memlock(t, limits);
  };
  m.on_process = set_memlock;
  m.usage = memory_usage;
  return m;
}

}  // namespace vunify::context
