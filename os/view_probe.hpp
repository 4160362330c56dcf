// Is a view mounted, and is its daemon alive? Decided without any system call into the FUSE
// filesystem: a stat of a mount whose daemon is stopped (SIGSTOP) or stuck blocks until the
// daemon answers, which would hang every command that checks its guests. Instead:
//   - the mount table (/proc/self/mountinfo) says whether the mount point has a mount;
//   - the daemon's pid file (POOL/log/NAME.pid: "PID STARTTIME") and /proc/PID/stat say
//     whether that process still runs (start time checked against pid reuse), is stopped
//     (state T or t), or is gone (no process, or a zombie).
// Only a mount without a pid file (a daemon of an older vunify) is probed by a stat, in a
// child process that is killed after a timeout.
#pragma once
#include <sys/types.h>

#include <string>

namespace vunify::os {

enum class ViewState {
  NotMounted,  // no mount at the mount point
  Live,        // mounted, its daemon runs
  Stopped,     // mounted, its daemon is stopped (SIGSTOP, a debugger) or does not answer
  Dead,        // mounted, its daemon is gone: a stale mount (answers ENOTCONN)
};

struct ViewStatus {
  ViewState state = ViewState::NotMounted;
  pid_t daemon = 0;  // the daemon's pid when known
};

// True if `path` (absolute) is the mount point of a mount in this mount namespace.
bool is_mount_point(const std::string& path);

// The view mounted at `mountpoint` whose daemon recorded itself in `pid_file`.
ViewStatus view_status(const std::string& mountpoint, const std::string& pid_file);

// The line a daemon writes into its pid file ("PID STARTTIME\n").
std::string pid_file_line();

// "its view daemon (pid N) is stopped (SIGSTOP): 'kill -CONT N' resumes it" (pid unknown: "does
// not answer").
std::string stopped_daemon_note(const ViewStatus& s);

}  // namespace vunify::os
