// vunify's PID 1 for guests without an init of their own (or started with a command): the static
// program of init/vunify_init.cpp, embedded in the vunify binary and run from a sealed memfd
// copy, so a guest cannot reach the host's binary through /proc/1/exe (CVE-2019-5736) and the
// guest's tree needs no libraries for it.
#pragma once
#include <string_view>

#include "os/unique_fd.hpp"

namespace vunify::context {

constexpr std::string_view kInitName = "vunify-init";
// The fd on which init reports that the command could not run (EOF: it runs).
constexpr int kInitReportFd = 3;

// A sealed (no write, no resize) memfd holding vunify-init. Its argv[1..] is the command (none:
// wait for a stop signal). Throws SysError.
os::unique_fd sealed_init();

}  // namespace vunify::context
