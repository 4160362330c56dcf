#include "context/state.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "os/error.hpp"
#include "os/files.hpp"

namespace vunify::context {

namespace {

using nlohmann::json;

os::unique_fd open_run_dir(const std::string& pool_root) {
  std::string dir = run_dir(pool_root);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) os::throw_errno("create", dir);
  os::unique_fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) os::throw_errno("open", dir);
  return fd;
}

json cgroups_json(const std::vector<CgroupDir>& dirs) {
  json out = json::array();
  for (const auto& c : dirs) out.push_back({{"mount", c.mount}, {"options", c.options}, {"dir", c.dir}, {"v2", c.v2}});
  return out;
}

std::vector<CgroupDir> cgroup_dirs(const json& list) {
  std::vector<CgroupDir> out;
  for (const auto& c : list) out.push_back({c.at("mount"), c.at("options"), c.at("dir"), c.at("v2")});
  return out;
}

}  // namespace

std::string run_dir(const std::string& pool_root) { return pool_root + "/run"; }

namespace {

// True if `name` in `dirfd` was last written before this boot. The state is written without
// fsync (write_state): a crash can leave it empty or garbled, and such a file is no context.
bool written_before_boot(int dirfd, const std::string& name) {
  struct stat st;
  timespec real, boot;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return false;
  ::clock_gettime(CLOCK_REALTIME, &real);
  ::clock_gettime(CLOCK_BOOTTIME, &boot);
  return st.st_mtim.tv_sec < real.tv_sec - boot.tv_sec;
}

}  // namespace

std::optional<RunState> read_state(const std::string& pool_root, const std::string& guest) {
  // Not created here: a pool that never ran a guest (or no pool at all) has no state.
  os::unique_fd dir(::open(run_dir(pool_root).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) {
    if (errno == ENOENT) return std::nullopt;
    os::throw_errno("open", run_dir(pool_root));
  }
  auto text = os::read_whole_file(dir.get(), guest + ".json");
  if (!text) return std::nullopt;
  try {
    json j = json::parse(*text);
    RunState s;
    s.pid1 = j.at("pid1");
    s.pid1_start = j.at("pid1_start");
    s.supervisor = j.at("supervisor");
    s.supervisor_start = j.at("supervisor_start");
    s.started_ns = j.at("started_ns");
    s.mounted_view = j.at("mounted_view");
    s.init = j.at("init");
    s.stop_signal = j.at("stop_signal");
    s.context_id = j.at("context_id");
    s.cgroups = cgroup_dirs(j.at("cgroups"));
    if (j.contains("view")) {
      const json& v = j.at("view");
      s.view.daemon = v.at("daemon");
      s.view.daemon_start = v.at("daemon_start");
      s.view.cgroups = cgroup_dirs(v.at("cgroups"));
      s.view.origin = v.at("origin").get<std::vector<std::string>>();
    }
    if (j.contains("network")) {
      const json& n = j.at("network");
      s.network = {parse_network_mode(n.at("mode")), n.at("veth"), n.at("ifb"), n.at("bridge")};
    }
    return s;
  } catch (const json::exception& e) {
    if (written_before_boot(dir.get(), guest + ".json")) return std::nullopt;
    throw os::UserError(run_dir(pool_root) + "/" + guest + ".json: damaged (" + e.what() + ")");
  }
}

void write_state(const std::string& pool_root, const std::string& guest, const RunState& s) {
  json cg = cgroups_json(s.cgroups);
  json view = {{"daemon", s.view.daemon},
               {"daemon_start", s.view.daemon_start},
               {"cgroups", cgroups_json(s.view.cgroups)},
               {"origin", s.view.origin}};
  json j = {{"pid1", s.pid1},         {"pid1_start", s.pid1_start},     {"supervisor", s.supervisor},
            {"supervisor_start", s.supervisor_start}, {"started_ns", s.started_ns},
            {"mounted_view", s.mounted_view}, {"init", s.init},     {"stop_signal", s.stop_signal},
            {"context_id", s.context_id},     {"cgroups", cg}, {"view", view},
            {"network", {{"mode", network_mode_name(s.network.mode)}, {"veth", s.network.veth},
                         {"ifb", s.network.ifb}, {"bridge", s.network.bridge}}}};
  // Not synced: the state means nothing after a reboot (read_state ignores a garbled file from
  // before it), and a sync is a journal commit on every start.
  os::write_file_atomic(open_run_dir(pool_root).get(), guest + ".json", j.dump(2) + "\n", 0600,
                        os::Durability::Volatile);
}

void remove_state(const std::string& pool_root, const std::string& guest) {
  if (::unlinkat(open_run_dir(pool_root).get(), (guest + ".json").c_str(), 0) != 0 && errno != ENOENT)
    os::throw_errno("remove", run_dir(pool_root) + "/" + guest + ".json");
}

uint64_t start_time(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(text.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i)
    if (i == 22) return std::stoull(field);
  return 0;
}

namespace {
char state_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  return close == std::string::npos || close + 2 >= text.size() ? 'X' : text[close + 2];
}
}  // namespace

os::unique_fd open_live(pid_t pid, uint64_t start) {
  if (pid <= 0) return {};
  os::unique_fd fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!fd) return {};
  // Checked after the pidfd exists: if the start time still matches, the pidfd is that process.
  if (start_time(pid) != start || state_of(pid) == 'Z') return {};
  return fd;
}

GuestLock::GuestLock(const std::string& pool_root, const std::string& guest) {
  os::unique_fd dir = open_run_dir(pool_root);
  fd_ = os::unique_fd(::openat(dir.get(), (guest + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd_) os::throw_errno("open", run_dir(pool_root) + "/" + guest + ".lock");
  if (::flock(fd_.get(), LOCK_EX) != 0) os::throw_errno("lock", run_dir(pool_root) + "/" + guest + ".lock");
}

}  // namespace vunify::context
