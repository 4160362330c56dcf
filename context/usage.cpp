#include "context/usage.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace vunify::context {

namespace {

// The file `name` in the v1 directory of controller `ctrl`, else in the cgroup2 directory, if it
// exists there.
std::string counter_file(const std::vector<CgroupDir>& dirs, const std::string& ctrl, const std::string& v1,
                         const std::string& v2) {
  for (const auto& d : dirs)
    if (d.has(ctrl)) return d.dir + "/" + v1;
  for (const auto& d : dirs) {
    std::string f = d.dir + "/" + v2;
    if (d.v2 && std::ifstream(f)) return f;
  }
  return "";
}

uint64_t read_number(const std::string& path) {
  std::ifstream in(path);
  uint64_t v = 0;
  in >> v;
  return v;
}

// "key value" lines (cgroup2 cpu.stat): the value of `key`.
uint64_t keyed(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string k;
  for (uint64_t v; in >> k >> v;)
    if (k == key) return v;
  return 0;
}

void add_io(const std::vector<CgroupDir>& dirs, Usage& u) {
  for (const auto& d : dirs) {
    if (!d.has("blkio")) continue;
    // "MAJ:MIN Read N" lines, and a closing "Total N".
    std::ifstream in(d.dir + "/blkio.throttle.io_service_bytes_recursive");
    for (std::string line; std::getline(in, line);) {
      std::istringstream f(line);
      std::string dev, op;
      uint64_t n = 0;
      if (!(f >> dev >> op >> n)) continue;
      if (op == "Read") u.io_read += n;
      if (op == "Write") u.io_write += n;
    }
    return;
  }
  for (const auto& d : dirs) {
    if (!d.v2) continue;
    // "MAJ:MIN rbytes=N wbytes=N rios=N ..." per device.
    std::ifstream in(d.dir + "/io.stat");
    for (std::string word; in >> word;) {
      if (word.rfind("rbytes=", 0) == 0) u.io_read += std::stoull(word.substr(7));
      if (word.rfind("wbytes=", 0) == 0) u.io_write += std::stoull(word.substr(7));
    }
  }
}

uint64_t tasks(const std::vector<CgroupDir>& dirs) {
  std::string f = counter_file(dirs, "pids", "pids.current", "pids.current");
  if (!f.empty() && std::ifstream(f)) return read_number(f);
  std::vector<pid_t> all = GuestCgroups(dirs).pids();
  return all.size();
}

}  // namespace

Usage cgroup_usage(const std::vector<CgroupDir>& dirs) {
  Usage u;
  bool v1_cpuacct = std::any_of(dirs.begin(), dirs.end(), [](const CgroupDir& d) { return d.has("cpuacct"); });
  std::string cpu = counter_file(dirs, "cpuacct", "cpuacct.usage", "cpu.stat");
  if (!cpu.empty()) u.cpu_ns = v1_cpuacct ? read_number(cpu) : keyed(cpu, "usage_usec") * 1000;
  std::string mem = counter_file(dirs, "memory", "memory.usage_in_bytes", "memory.current");
  if (!mem.empty()) u.memory = read_number(mem);
  u.pids = tasks(dirs);
  add_io(dirs, u);
  return u;
}

NetBytes net_bytes(pid_t pid) {
  NetBytes b;
  std::ifstream in("/proc/" + std::to_string(pid) + "/net/dev");
  std::string line;
  for (int skip = 0; skip < 2 && std::getline(in, line); ++skip) {
  }
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    if (name == "lo") continue;
    // rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes ...
    std::istringstream f(line.substr(colon + 1));
    uint64_t v[9] = {};
    for (auto& x : v) f >> x;
    b.rx += v[0];
    b.tx += v[8];
  }
  return b;
}

}  // namespace vunify::context
