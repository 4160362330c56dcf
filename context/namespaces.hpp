// The namespaces of a context: pid, mount, uts, ipc, net (created with PID 1) and cgroup
// (entered by PID 1 once it is in the guest's cgroups, so the guest's cgroup is its root).
#pragma once
#include <sys/types.h>

#include <sched.h>

#include <cstdint>
#include <string>

#include "os/unique_fd.hpp"

namespace vunify::context {

constexpr int kCloneNamespaces = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET;
constexpr int kAllNamespaces = kCloneNamespaces | CLONE_NEWCGROUP;

// fork() into fresh namespaces `flags` (clone3): returns 0 in the child, the child's pid in the
// parent with `pidfd` set to its pidfd. Throws SysError.
pid_t clone_into(int flags, os::unique_fd& pidfd);

// Runs `fn(arg)` in a child that shares this process's memory until it exits or execs
// (CLONE_VM | CLONE_VFORK, as posix_spawn does; `flags` may add namespaces), on a stack of its
// own; this thread waits meanwhile. A fork would copy this process's page tables and fault in
// every page either side then writes, which is most of a short child's cost on a paravirtualized
// VM. The child must only set itself up and exec or _exit: it must free what it allocates (the
// heap is this process's), and not change what this process keeps (no setenv, no stdio). Returns
// the child's pid (reap it with waitpid; exit signal SIGCHLD). Throws SysError.
pid_t clone_shared(int (*fn)(void*), void* arg, int flags = 0);

// Joins every namespace of the process behind `pidfd` but its pid namespace (an exec'd command
// is forked into that one by the guest's holder).
void join_namespaces(int pidfd);

// The pid (in this process's pid namespace) of the process behind `pidfd`; 0 if it has exited.
pid_t pid_of(int pidfd);

// Inode of /proc/PID/ns/pid (0 if unreadable): the context id.
uint64_t pid_namespace_of(pid_t pid);

// Sets the hostname of this uts namespace and brings the network namespace's lo up.
void set_hostname(const std::string& name);
void loopback_up();

}  // namespace vunify::context
