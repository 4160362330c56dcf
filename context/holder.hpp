// The guest's holder: one host-side process per running guest, the child of its supervisor,
// that makes the guest's Landlock domain once and forks every process of the guest from it:
// PID 1 at start and each `vunify exec`'d command on request. Landlock scopes signals and
// abstract unix sockets per domain, so one domain for the whole guest means an exec'd shell can
// signal (and connect to) what the guest's init started, while other guests and the host stay
// out of reach. The holder:
// - is outside the guest's pid namespace (the guest cannot name it) and outside its cgroups,
//   non-dumpable, and listens only on POOL/run/NAME.sock, a root-only socket outside the guest's
//   root: nothing in the guest can reach it;
// - serves `exec` (holder_protocol.hpp): starts the command in the guest's pid namespace
//   (clone_shared), sends its pidfd, and its exit status once it has reaped it;
// - exits when PID 1 exits (the kernel kills the rest of the pid namespace), with PID 1's
//   status, so it never keeps a stopped guest alive.
#pragma once

#include "context/launch.hpp"
