// CPU lists as the kernel writes them ("0-2,5"): parsing, formatting, and the CPUs this thread
// may run on.
#pragma once
#include <set>
#include <string>

namespace vunify::os {

// "0-2,5" -> {0,1,2,5}; throws os::UserError on bad syntax.
std::set<int> parse_cpu_list(const std::string& text);
std::string format_cpu_list(const std::set<int>& cpus);

// The CPUs the calling thread may run on now (sched_getaffinity: its affinity within its
// cpuset). Throws os::SysError.
std::set<int> allowed_cpus();

// Restricts the calling thread (and the threads it creates later) to `cpus`, after checking
// that each of them is allowed now: an os::UserError names the first that is not (the kernel
// would silently drop it). `what` prefixes the message ("--cpus 0-3").
void pin_to_cpus(const std::set<int>& cpus, const std::string& what);
// The check alone.
void check_allowed_cpus(const std::set<int>& cpus, const std::string& what);

}  // namespace vunify::os
