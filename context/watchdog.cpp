#include "context/watchdog.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "context/state.hpp"
#include "os/error.hpp"
#include "os/files.hpp"

namespace vunify::context {

namespace {

std::string record_name(const std::string& guest) { return guest + ".events.json"; }

os::unique_fd open_run(const std::string& pool) {
  return os::unique_fd(::open(run_dir(pool).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
}

}  // namespace

MemoryEvents memory_events(const LimitTarget& t) {
  MemoryEvents e;
  if (os::unique_fd dir = open_run(t.pool)) {
    try {
      if (auto text = os::read_whole_file(dir.get(), record_name(t.guest))) {
        auto j = nlohmann::json::parse(*text);
        e.oom_events = j.value("oom_events", 0ULL);
        e.pressure_low = j.value("pressure_low", 0ULL);
        e.pressure_medium = j.value("pressure_medium", 0ULL);
        e.pressure_critical = j.value("pressure_critical", 0ULL);
      }
    } catch (const std::exception&) {  // a record being replaced or damaged: counts unknown
    }
  }
  if (const CgroupDir* mem = t.find("memory"))
    e.oom_kills = read_cgroup_key(mem->dir, mem->v2 ? "memory.events" : "memory.oom_control", "oom_kill").value_or(0);
  return e;
}

void remove_memory_events(const std::string& pool, const std::string& guest) {
  if (os::unique_fd dir = open_run(pool)) ::unlinkat(dir.get(), record_name(guest).c_str(), 0);
}

MemoryWatchdog::MemoryWatchdog(const LimitTarget& target) : target_(target) {
  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  const CgroupDir* mem = target_.find("memory");
  if (!epoll_ || !mem) {
    problems_.push_back(!epoll_ ? fmt::format("epoll: {}", std::strerror(errno)) : "no memory cgroup to watch");
    epoll_.reset();
    return;
  }
  mem->v2 ? watch_v2(mem->dir) : watch_v1(mem->dir);
  save();
}

void MemoryWatchdog::add(Kind kind, os::unique_fd fd, os::unique_fd target, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = watches_.size();
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd.get(), &ev) != 0) {
    problems_.push_back(fmt::format("epoll_ctl: {}", std::strerror(errno)));
    return;
  }
  watches_.push_back({kind, std::move(fd), std::move(target)});
}

void MemoryWatchdog::watch_v1(const std::string& dir) {
  std::string control = dir + "/cgroup.event_control";
  auto reg = [&](Kind kind, const char* file, const char* arg) {
    os::unique_fd efd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    os::unique_fd target(::open((dir + "/" + file).c_str(), O_RDONLY | O_CLOEXEC));
    if (!efd || !target) return problems_.push_back(fmt::format("{}/{}: {}", dir, file, std::strerror(errno)));
    std::string line = fmt::format("{} {}{}{}", efd.get(), target.get(), *arg ? " " : "", arg);
    try {
      write_cgroup_file(control, line);
    } catch (const std::exception& e) {
      return problems_.push_back(e.what());
    }
    add(kind, std::move(efd), std::move(target), EPOLLIN);
  };
  reg(Kind::Oom, "memory.oom_control", "");
  reg(Kind::Low, "memory.pressure_level", "low");
  reg(Kind::Medium, "memory.pressure_level", "medium");
  reg(Kind::Critical, "memory.pressure_level", "critical");
}

void MemoryWatchdog::watch_v2(const std::string& dir) {
  os::unique_fd fd(::open((dir + "/memory.events").c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return problems_.push_back(fmt::format("{}/memory.events: {}", dir, std::strerror(errno)));
  add(Kind::V2Events, std::move(fd), {}, EPOLLPRI);
}

std::vector<std::string> MemoryWatchdog::handle() {
  std::vector<std::string> lines;
  epoll_event evs[8];
  int n = ::epoll_wait(epoll_.get(), evs, 8, 0);
  for (int i = 0; i < n; ++i) {
    Watch& w = watches_.at(evs[i].data.u64);
    if (w.kind == Kind::V2Events) {
      const CgroupDir* mem = target_.find("memory");
      if (!mem) continue;
      uint64_t oom = read_cgroup_key(mem->dir, "memory.events", "oom").value_or(0);
      if (oom > counts_.oom_events) lines.push_back(fmt::format("memory: the guest ran out of memory ({} times)", oom));
      counts_.oom_events = oom;
      counts_.pressure_medium = read_cgroup_key(mem->dir, "memory.events", "high").value_or(0);
      counts_.pressure_critical = read_cgroup_key(mem->dir, "memory.events", "max").value_or(0);
      continue;
    }
    uint64_t fired = 0;
    if (::read(w.fd.get(), &fired, sizeof fired) != sizeof fired) continue;
    if (w.kind == Kind::Oom) {
      counts_.oom_events += fired;
      lines.push_back(fmt::format("memory: the guest ran out of memory (OOM kills so far: {})",
                                  memory_events(target_).oom_kills));
    }
    if (w.kind == Kind::Low) counts_.pressure_low += fired;
    if (w.kind == Kind::Medium) counts_.pressure_medium += fired;
    if (w.kind == Kind::Critical) counts_.pressure_critical += fired;
  }
  if (n > 0) save();
  return lines;
}

void MemoryWatchdog::save() const {
  nlohmann::json j = {{"oom_events", counts_.oom_events},
                      {"pressure_low", counts_.pressure_low},
                      {"pressure_medium", counts_.pressure_medium},
                      {"pressure_critical", counts_.pressure_critical}};
  // Replaced by rename but not fsynced: pressure events can come many a second, and the record
  // only lives as long as the context (a lost update is redone by the next event).
  os::unique_fd dir = open_run(target_.pool);
  std::string name = record_name(target_.guest), tmp = "." + name + ".tmp", text = j.dump() + "\n";
  os::unique_fd fd(::openat(dir.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (fd && ::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size()))
    ::renameat(dir.get(), tmp.c_str(), dir.get(), name.c_str());
}

}  // namespace vunify::context
