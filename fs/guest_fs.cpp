#include "fs/guest_fs.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <fmt/format.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>

#include "fs/view_state.hpp"
#include "fs/creds.hpp"
#include "fs/ops.hpp"
#include "fs/request_cost.hpp"
#include "fs/serve_loop.hpp"
#include "os/cpu_list.hpp"
#include "os/error.hpp"

namespace vunify::fs {

namespace {

using os::throw_errno;
using os::unique_fd;

void op_init(void*, fuse_conn_info* conn) {
  auto want = [conn](unsigned cap, bool on) {
    if (on && (conn->capable & cap)) conn->want |= cap;
    if (!on) conn->want &= ~cap;
  };
  want(FUSE_CAP_ATOMIC_O_TRUNC, true);      // O_TRUNC arrives with OPEN: break to empty, no copy
  want(FUSE_CAP_CACHE_SYMLINKS, true);
  want(FUSE_CAP_AUTO_INVAL_DATA, false);    // the daemon is the only writer
  want(FUSE_CAP_WRITEBACK_CACHE, false);    // excludes passthrough
  want(FUSE_CAP_EXPORT_SUPPORT, false);
  want(FUSE_CAP_NO_OPENDIR_SUPPORT, true);
  want(FUSE_CAP_PARALLEL_DIROPS, true);
  want(FUSE_CAP_READDIRPLUS, true);
  want(FUSE_CAP_HANDLE_KILLPRIV, false);    // the kernel clears setuid bits on write/chown as usual
  // POSIX ACLs: the kernel caches them (GETXATTR system.posix_acl_*) and enforces them in its
  // permission checks, forgetting them on SETXATTR/REMOVEXATTR and chmod through the view.
  // The backing filesystem keeps mode and ACL in sync (chmod updates the mask, setting an
  // access ACL updates the mode) and inherits default ACLs, which replace the umask: so the
  // kernel must not apply the umask (DONT_MASK); the request's umask is the creating thread's
  // umask instead (CallerCreds).
  want(FUSE_CAP_POSIX_ACL, true);
  want(FUSE_CAP_DONT_MASK, true);
}

void op_destroy(void*) {}

struct SessionDeleter {
  void operator()(fuse_session* se) const { fuse_session_destroy(se); }
};
using Session = std::unique_ptr<fuse_session, SessionDeleter>;

Session new_session(ViewState& vs) {
  fuse_lowlevel_ops ops{};
  ops.init = op_init;
  ops.destroy = op_destroy;
  add_entry_ops(ops);
  add_attr_ops(ops);
  add_dir_ops(ops);
  add_file_ops(ops);
  add_xattr_ops(ops);
  const char* argv[] = {"vunify-view", nullptr};
  fuse_args args = FUSE_ARGS_INIT(1, const_cast<char**>(argv));
  Session se(fuse_session_new(&args, &ops, sizeof ops, &vs));
  if (!se) throw os::SysError(EINVAL, "create FUSE session", "");
  return se;
}

void raise_fd_limit() {
  struct rlimit lim;
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
}

// mount(2) of /dev/fuse fd `dev_fd` at the barrier directory.
void mount_view(const ViewConfig& config, int dev_fd) {
  std::string opts = fmt::format("fd={},rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions", dev_fd);
  unsigned long flags = 0;  // suid allowed: guests need sudo and ping with file capabilities
  if (!config.allow_devices) flags |= MS_NODEV;
  std::string source = "vunify:" + config.guest;
  if (::mount(source.c_str(), config.mountpoint.c_str(), "fuse.vunify", flags, opts.c_str()) != 0)
    throw_errno("mount the view at", config.mountpoint);
}

}  // namespace

int serve_view(const ViewConfig& config, const std::function<void(const std::string&)>& ready_arg) {
  bool reported = false;
  auto ready = [&](const std::string& error) {
    if (!reported) ready_arg(error);
    reported = true;
  };
  try {
    // Before any thread exists: every worker inherits it (fs/view_settings.hpp says why).
    if (!config.cpus.empty()) os::pin_to_cpus(config.cpus, "the view's CPUs");
    ::umask(0);  // the daemon's own files; creations for guests take the request's umask (CallerCreds)
    raise_fd_limit();
    // One malloc arena for all worker threads: per-thread arenas kept ~0.9 MiB more resident
    // after a stat walk, tar and churn (bench/view), for no measurable gain on this workload.
    ::mallopt(M_ARENA_MAX, 1);
    keep_caps_across_fsuid();
    unique_fd root(::open(config.backing_path.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!root) throw_errno("open guest tree", config.backing_path);
    unique_fd barrier(::open(config.mountpoint.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    struct stat barrier_st;
    if (!barrier || ::fstat(barrier.get(), &barrier_st) != 0) throw_errno("open mount point", config.mountpoint);
    unique_fd links_dir;
    if (!config.links.empty()) {
      links_dir.reset(::open(config.links_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!links_dir) throw_errno("open", config.links_dir);
    }
    int dev_fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);  // owned by the session once attached
    if (dev_fd < 0) throw_errno("open", "/dev/fuse");
    // Opens the link groups' directories by handle: before any request switches credentials.
    ViewState vs(std::move(root), std::move(barrier), barrier_st, dev_fd, config.passthrough, config.objects, config.guest,
                  config.links, std::move(links_dir));
    vs.refuse_block_devices = config.allow_devices && !config.allow_block_devices;
    Session se = new_session(vs);
    fuse_custom_io io = protocol_hooks();
    if (fuse_session_custom_io(se.get(), &io, dev_fd) != 0) {
      ::close(dev_fd);
      throw os::SysError(EINVAL, "attach /dev/fuse to the session for", config.mountpoint);
    }
    if (fuse_set_signal_handlers(se.get()) != 0) throw os::SysError(EINVAL, "install signal handlers for", config.mountpoint);
    mount_view(config, dev_fd);
    std::string cpus = config.cpus.empty() ? "any" : os::format_cpu_list(config.cpus);
    fuse_log(FUSE_LOG_INFO, "vunify: serving guest %s at %s (passthrough %s, %zu link groups, %d threads, CPUs %s)\n",
             config.guest.c_str(), config.mountpoint.c_str(), config.passthrough ? "wanted" : "off", vs.groups.live_groups(),
             config.threads, cpus.c_str());
    ready("");
    int rc = serve_requests(se.get(), config.threads,
                            [&vs](const void* request, size_t len) { return request_may_be_slow(vs, request, len); });
    fuse_remove_signal_handlers(se.get());
    if (!vs.protocol.kernel_gone.load()) ::umount2(config.mountpoint.c_str(), MNT_DETACH);
    fuse_log(FUSE_LOG_INFO, "vunify: guest %s unmounted (status %d); %s\n", config.guest.c_str(), rc,
             vs.protocol.request_summary().c_str());
    return rc;
  } catch (const std::exception& e) {
    ready(e.what());
    throw;
  }
}

}  // namespace vunify::fs
