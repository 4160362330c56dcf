// The guest's own cgroups: one directory `vunify/NAME` under the caller's cgroup in every
// hierarchy of the host (v1 controllers, the named `systemd` hierarchy, cgroup2), created at
// start and removed at stop. Hybrid hosts (v1 controllers + a cgroup2 at .../unified) and pure
// v2 hosts (cgroup2 at /sys/fs/cgroup) both work.
#pragma once
#include <sys/types.h>

#include <string>
#include <vector>

#include "os/unique_fd.hpp"

namespace vunify::context {

struct CgroupDir {
  std::string mount;    // where the hierarchy is mounted on the host (/sys/fs/cgroup/cpu)
  std::string options;  // its controllers ("cpu", "name=systemd"; empty for cgroup2)
  std::string dir;      // the guest's cgroup directory in it
  bool v2 = false;
  // Writable for the guest (its systemd manages it): the named systemd hierarchy and cgroup2.
  bool delegated() const { return v2 || options == "name=systemd"; }
  // A v1 hierarchy with `controller` among its controllers ("blkio"; "cpuacct" in "cpu,cpuacct").
  bool has(const std::string& controller) const;
  // Where the guest sees it, relative to its root: sys/fs/cgroup/<last component of mount>
  // (sys/fs/cgroup itself for a cgroup2 mounted there).
  std::string guest_target() const;
};

class GuestCgroups {
 public:
  // Creates `vunify/NAME` under this process's cgroup in every hierarchy (cpuset inherits its
  // parent's cpus and mems; the device allowlist is applied). Throws SysError; on failure the
  // directories made so far are removed.
  static GuestCgroups create(const std::string& guest);
  // `vunify/NAME.view` beside it, for the guest's view daemon, in the hierarchies that account
  // its cost (memory, cpu, cpuacct, blkio, pids; cgroup2): nothing restricted in them.
  static GuestCgroups create_view(const std::string& guest);
  explicit GuestCgroups(std::vector<CgroupDir> dirs) : dirs_(std::move(dirs)) {}

  const std::vector<CgroupDir>& dirs() const { return dirs_; }
  // Moves `pid` into the guest's cgroup in every hierarchy.
  void add(pid_t pid) const;
  // cgroup.procs of every directory, opened for writing: a process that holds them can later
  // join the guest's cgroups (join_cgroups) without opening anything of the host (the guest's
  // holder, in its Landlock domain, could not).
  std::vector<os::unique_fd> open_procs() const;
  // Every process in the guest's cgroups (descendants included).
  std::vector<pid_t> pids() const;
  // SIGKILL to every process in them (cgroup.kill where the kernel has it).
  void kill_all() const;
  // Removes the directories, deepest first. Returns false if some are still busy.
  bool remove() const;

 private:
  std::vector<CgroupDir> dirs_;
};

// Writes `text` to a cgroup file in one write(2); throws os::SysError naming the file and text.
void write_cgroup_file(const std::string& path, const std::string& text);

// The cgroup directory `pid` is in, in the hierarchy of `like` ("" if it is not mounted).
std::string cgroup_of(pid_t pid, const CgroupDir& like);
// Moves this process into the cgroups whose cgroup.procs `procs` are (open_procs).
void join_cgroups(const std::vector<int>& procs);

// cgroup_v1.cpp / cgroup_v2.cpp: what differs between the two.
void prepare_v1_dir(const CgroupDir& dir);
void prepare_v2_dir(const CgroupDir& dir);
bool kill_v2(const CgroupDir& dir);
// Enables for the guests below `parent` (vunify/, which holds no process) every controller
// limits use that `parent` has (cgroup.controllers): cpu cpuset memory pids io.
void enable_v2_controllers(const std::string& parent);

}  // namespace vunify::context
