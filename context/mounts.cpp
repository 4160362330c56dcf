#include "context/mounts.hpp"

#include <fcntl.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "context/devices.hpp"
#include "os/error.hpp"

namespace vunify::context {

namespace {

using os::unique_fd;

constexpr unsigned long kNoSuidDevExec = MS_NOSUID | MS_NODEV | MS_NOEXEC;

int openat2_beneath(int dirfd, const std::string& rel, int flags) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags) | O_CLOEXEC | O_NOFOLLOW;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(::syscall(SYS_openat2, dirfd, rel.c_str(), &how, sizeof how));
}

// Paths masked with /dev/null (files) or an empty read-only tmpfs (directories), as runc does.
const char* const kMaskedFiles[] = {"proc/kcore", "proc/keys", "proc/latency_stats", "proc/timer_list",
                                    "proc/timer_stats", "proc/sched_debug"};
const char* const kMaskedDirs[] = {"proc/acpi", "proc/asound", "proc/scsi"};
const char* const kMaskedSysDirs[] = {"sys/firmware", "sys/devices/virtual/powercap"};
const char* const kReadOnly[] = {"proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger"};

void mask_dir(int root_fd, const char* rel) {
  mount_at(root_fd, rel, "tmpfs", "tmpfs", MS_RDONLY | kNoSuidDevExec, "size=4k,mode=555");
}

bool exists(int root_fd, const std::string& rel) {
  int fd = openat2_beneath(root_fd, rel, O_PATH);
  if (fd >= 0) ::close(fd);
  return fd >= 0;
}

void mount_proc(int root_fd) {
  mount_at(root_fd, "proc", "proc", "proc", kNoSuidDevExec);
  for (const char* f : kMaskedFiles)
    if (exists(root_fd, f)) bind_at(root_fd, f, "/dev/null", true);
  for (const char* d : kMaskedDirs)
    if (exists(root_fd, d)) mask_dir(root_fd, d);
  for (const char* p : kReadOnly) {
    if (!exists(root_fd, p)) continue;
    unique_fd self = open_target(root_fd, p, false);
    if (::mount(fd_link(self.get()).c_str(), fd_link(self.get()).c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
      os::throw_errno("bind onto itself", std::string("/") + p);
    remount_read_only(root_fd, p, kNoSuidDevExec);
  }
}

// sys read-only; /sys/fs/cgroup a read-only tmpfs holding the guest's own cgroup of each
// hierarchy (writable where the guest's init manages it: name=systemd and cgroup2).
void mount_sys(int root_fd, const std::vector<CgroupDir>& cgroups) {
  mount_at(root_fd, "sys", "sysfs", "sysfs", MS_RDONLY | kNoSuidDevExec);
  bool v2_root = cgroups.size() == 1 && cgroups[0].guest_target() == "sys/fs/cgroup";
  if (!v2_root) mount_at(root_fd, "sys/fs/cgroup", "tmpfs", "tmpfs", kNoSuidDevExec, "mode=755,size=64k");
  for (const auto& c : cgroups) {
    bind_at(root_fd, c.guest_target(), c.dir);
    if (!c.delegated()) remount_read_only(root_fd, c.guest_target(), kNoSuidDevExec);
  }
  if (!v2_root) remount_read_only(root_fd, "sys/fs/cgroup", kNoSuidDevExec);
  for (const char* d : kMaskedSysDirs)
    if (exists(root_fd, d)) mask_dir(root_fd, d);
}

// What systemd needs as a container's init (podman --systemd=always).
void mount_for_systemd(int root_fd) {
  mount_at(root_fd, "run", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=20%");
  mount_at(root_fd, "run/lock", "tmpfs", "tmpfs", kNoSuidDevExec, "mode=1777,size=5m");
  mount_at(root_fd, "tmp", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  if (::mkdirat(root_fd, "run/systemd", 0755) != 0 && errno != EEXIST) os::throw_errno("create", "/run/systemd");
  unique_fd dir(openat2_beneath(root_fd, "run/systemd", O_RDONLY | O_DIRECTORY));
  if (!dir) os::throw_errno("open", "/run/systemd");
  unique_fd f(::openat(dir.get(), "container", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0444));
  if (!f || ::write(f.get(), "vunify\n", 7) != 7) os::throw_errno("write", "/run/systemd/container");
}

}  // namespace

std::string fd_link(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

unique_fd open_target(int root_fd, const std::string& rel, bool create, bool file) {
  unique_fd fd(openat2_beneath(root_fd, rel, O_PATH));
  if (fd || errno != ENOENT || !create) {
    if (!fd) os::throw_errno("open mount point (symlinks refused)", "/" + rel);
    return fd;
  }
  auto slash = rel.rfind('/');
  unique_fd parent = slash == std::string::npos ? unique_fd(::fcntl(root_fd, F_DUPFD_CLOEXEC, 3))
                                                : open_target(root_fd, rel.substr(0, slash), true, false);
  std::string leaf = slash == std::string::npos ? rel : rel.substr(slash + 1);
  unique_fd dir(::openat(parent.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) os::throw_errno("open", "/" + rel.substr(0, slash));
  if (file) {
    unique_fd f(::openat(dir.get(), leaf.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!f && errno != EEXIST) os::throw_errno("create mount point", "/" + rel);
  } else if (::mkdirat(dir.get(), leaf.c_str(), 0755) != 0 && errno != EEXIST) {
    os::throw_errno("create mount point", "/" + rel);
  }
  return open_target(root_fd, rel, false, file);
}

void mount_at(int root_fd, const std::string& rel, const char* source, const char* type, unsigned long flags,
              const char* data, bool file) {
  unique_fd target = open_target(root_fd, rel, true, file);
  if (::mount(source, fd_link(target.get()).c_str(), type, flags, data) != 0)
    os::throw_errno(std::string("mount ") + type + " on", "/" + rel);
}

void bind_at(int root_fd, const std::string& rel, const std::string& source, bool file) {
  unique_fd target = open_target(root_fd, rel, true, file);
  if (::mount(source.c_str(), fd_link(target.get()).c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
    os::throw_errno("bind " + source + " on", "/" + rel);
}

void remount_read_only(int root_fd, const std::string& rel, unsigned long flags) {
  unique_fd target = open_target(root_fd, rel, false);
  if (::mount(nullptr, fd_link(target.get()).c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | flags, nullptr) != 0)
    os::throw_errno("remount read-only", "/" + rel);
}

unique_fd clone_root(const std::string& root) {
  unique_fd tree(static_cast<int>(
      ::syscall(SYS_open_tree, AT_FDCWD, root.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE)));
  if (!tree) os::throw_errno("clone the mount of the guest root", root);
  return tree;
}

unique_fd prepare_root(const RootPlan& plan) {
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) os::throw_errno("make mounts slaves", "/");
  if (::syscall(SYS_move_mount, plan.tree_fd, "", AT_FDCWD, plan.attach_at.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0)
    os::throw_errno("attach the guest root on", plan.attach_at);
  unique_fd root(::fcntl(plan.tree_fd, F_DUPFD_CLOEXEC, 3));
  if (!root) os::throw_errno("dup", "the guest root");
  mount_proc(root.get());
  mount_sys(root.get(), plan.cgroups);
  make_dev(root.get());
  if (plan.systemd) mount_for_systemd(root.get());
  return root;
}

void enter_root(int root_fd) {
  if (::fchdir(root_fd) != 0) os::throw_errno("chdir to", "the guest root");
  if (::syscall(SYS_pivot_root, ".", ".") != 0) os::throw_errno("pivot_root", "the guest root");
  if (::umount2(".", MNT_DETACH) != 0) os::throw_errno("detach", "the old root");
  if (::chdir("/") != 0) os::throw_errno("chdir", "/");
}

}  // namespace vunify::context
