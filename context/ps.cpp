// ps and status: what runs in each context, read from the host's /proc (a context's processes
// are those in its pid namespace). `ps --all` runs as the spectator: it reads every guest's
// processes (found through their cgroups: Landlock keeps it from their /proc/PID/ns) but
// cannot signal them.
#include <dirent.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "context/config.hpp"
#include "context/limits.hpp"
#include "context/runtime.hpp"
#include "context/security.hpp"
#include "context/state.hpp"
#include "fs/mount_control.hpp"
#include "os/error.hpp"
#include "unify/pool.hpp"

namespace vunify::context {

namespace {

struct Proc {
  pid_t host_pid = 0, guest_pid = 0;
  uid_t uid = 0;
  std::string command;
};

std::string command_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && text.back() == '\0') text.pop_back();
  std::replace(text.begin(), text.end(), '\0', ' ');
  if (text.empty()) {
    std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
    std::getline(comm, text);
    text = "[" + text + "]";
  }
  return text;
}

// Uid and pid in the innermost pid namespace, from /proc/PID/status (no ptrace access needed:
// the spectator may not look at other domains' /proc/PID/ns). False if gone.
bool read_status(Proc& p, int& ns_depth) {
  std::ifstream status("/proc/" + std::to_string(p.host_pid) + "/status");
  ns_depth = 0;
  for (std::string line; std::getline(status, line);) {
    std::istringstream f(line);
    std::string key;
    f >> key;
    if (key == "Uid:") f >> p.uid;
    if (key == "NSpid:")
      for (pid_t v; f >> v; ++ns_depth) p.guest_pid = v;
  }
  return ns_depth > 0;
}

void by_guest_pid(std::vector<Proc>& procs) {
  std::sort(procs.begin(), procs.end(), [](const Proc& a, const Proc& b) { return a.guest_pid < b.guest_pid; });
}

// The processes of a context as the spectator sees them: those in its cgroups that are in a pid
// namespace below the host's.
std::vector<Proc> processes_in(const GuestCgroups& cgroups) {
  std::vector<Proc> out;
  for (pid_t pid : cgroups.pids()) {
    Proc p;
    p.host_pid = pid;
    int depth;
    if (!read_status(p, depth) || depth < 2) continue;
    p.command = command_of(pid);
    out.push_back(p);
  }
  by_guest_pid(out);
  return out;
}

// Processes whose pid namespace is `ns` (an inode of nsfs), by their pid inside it.
std::vector<Proc> processes_in(uint64_t ns) {
  std::vector<Proc> out;
  DIR* d = ::opendir("/proc");
  if (!d) os::throw_errno("open", "/proc");
  while (dirent* e = ::readdir(d)) {
    if (!std::isdigit(static_cast<unsigned char>(e->d_name[0]))) continue;
    std::string dir = std::string("/proc/") + e->d_name;
    struct stat st;
    if (::stat((dir + "/ns/pid").c_str(), &st) != 0 || st.st_ino != ns) continue;
    Proc p;
    p.host_pid = std::stoi(e->d_name);
    int depth;
    if (!read_status(p, depth)) continue;
    p.command = command_of(p.host_pid);
    out.push_back(p);
  }
  ::closedir(d);
  by_guest_pid(out);
  return out;
}

std::vector<std::string> guests_of(const std::string& pool_root) {
  unify::Pool pool(pool_root, unify::Access::Read);
  return pool.guest_names();
}

// The running contexts among `guests`: name -> state.
std::vector<std::pair<std::string, RunState>> running(const std::string& pool_root, const std::vector<std::string>& guests) {
  std::vector<std::pair<std::string, RunState>> out;
  for (const auto& g : guests)
    if (auto s = read_state(pool_root, g); s && open_live(s->pid1, s->pid1_start)) out.emplace_back(g, *s);
  return out;
}

std::string uptime(int64_t started_ns) {
  timespec now;
  ::clock_gettime(CLOCK_REALTIME, &now);
  int64_t secs = (static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec - started_ns) / 1000000000;
  if (secs < 3600) return fmt::format("{}m{:02}s", secs / 60, secs % 60);
  return fmt::format("{}h{:02}m", secs / 3600, secs / 60 % 60);
}

// {"mode": ..., and for an isolated guest "veth", "bytes_in", "bytes_out"}.
nlohmann::json network_json(const NetworkState& n) {
  nlohmann::json j = {{"mode", network_mode_name(n.mode)}};
  if (n.mode != NetworkMode::Isolated) return j;
  j["veth"] = n.veth;
  if (auto usage = network_usage(n)) {
    j["bytes_in"] = usage->bytes_in;
    j["bytes_out"] = usage->bytes_out;
  }
  return j;
}

}  // namespace

void ps(const std::string& pool_root, const std::string& guest) {
  unify::Pool::check_name(guest, "guest");
  auto r = running(pool_root, {guest});
  if (r.empty()) throw os::UserError(fmt::format("guest {} is not running", guest));
  fmt::print("{:>7} {:>8} {:>6}  {}\n", "PID", "HOST-PID", "UID", "COMMAND");
  for (const Proc& p : processes_in(r[0].second.context_id))
    fmt::print("{:>7} {:>8} {:>6}  {}\n", p.guest_pid, p.host_pid, p.uid, p.command);
}

void ps_all(const std::string& pool_root) {
  auto r = running(pool_root, guests_of(pool_root));
  enter_spectator();
  fmt::print("{:<16} {:>7} {:>8} {:>6}  {}\n", "CONTEXT", "PID", "HOST-PID", "UID", "COMMAND");
  for (const auto& [name, s] : r)
    for (const Proc& p : processes_in(GuestCgroups(s.cgroups)))
      fmt::print("{:<16} {:>7} {:>8} {:>6}  {}\n", name, p.guest_pid, p.host_pid, p.uid, p.command);
}

void status(const std::string& pool_root, const std::vector<std::string>& names, bool json) {
  std::vector<std::string> guests = names;
  {
    unify::Pool pool(pool_root, unify::Access::Read);
    if (guests.empty()) guests = pool.guest_names();
    for (const auto& g : guests) {
      unify::Pool::check_name(g, "guest");
      if (!pool.has_guest(g)) throw os::UserError(fmt::format("no guest named '{}' in pool {}", g, pool_root));
    }
  }
  nlohmann::json out = nlohmann::json::array();
  if (!json) fmt::print("{:<20} {:<8} {:>8} {:>8} {:>12} {:<7} {}\n", "GUEST", "STATE", "PID1", "UPTIME", "CONTEXT", "VIEW", "INIT");
  for (const auto& g : guests) {
    auto r = running(pool_root, {g});
    bool mounted = fs::mount_state(pool_root + "/guests/" + g) == fs::MountState::Live;
    const RunState* s = r.empty() ? nullptr : &r[0].second;
    if (json) {
      nlohmann::json j = {{"name", g}, {"state", s ? "running" : "stopped"}, {"view_mounted", mounted}};
      if (s) {
        j["pid1"] = s->pid1;
        j["context_id"] = s->context_id;
        j["started_ns"] = s->started_ns;
        j["init"] = s->init;
        j["stop_signal"] = signal_name(s->stop_signal);
        j["network"] = network_json(s->network);
      }
      j.update(limits_json(pool_root, g, s));
      out.push_back(j);
    } else {
      fmt::print("{:<20} {:<8} {:>8} {:>8} {:>12} {:<7} {}\n", g, s ? "running" : "stopped", s ? std::to_string(s->pid1) : "-",
                 s ? uptime(s->started_ns) : "-", s ? std::to_string(s->context_id) : "-", mounted ? "mounted" : "-",
                 s ? s->init : "");
    }
  }
  if (json) return fmt::print("{}\n", out.dump(2));
  for (const auto& g : guests)
    if (auto r = running(pool_root, {g}); !r.empty()) fmt::print("{}: {}\n", g, memory_events_line(pool_root, g, r[0].second));
}

}  // namespace vunify::context
