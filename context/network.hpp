// A guest's network at start and stop (the [network] modes of net_config.hpp).
//
// isolated: a veth pair per guest. The guest's end is created directly in its network
//   namespace as eth0 (its addresses, up, a default route through the host side); the host's
//   end vu-NAME is a port of the bridge vunify0, which vunify creates when the first isolated
//   guest starts and removes when the last one stops. The bridge carries the host side's
//   address of each guest subnet (its first address, e.g. 10.88.0.1/24 for 10.88.0.2/24), so
//   host <-> guest traffic is local and guest <-> guest traffic is switched at layer 2: no
//   ip_forward (a host-global sysctl) and no routes are needed on the host.
// shared: the guest keeps the host's network namespace; cgroup BPF programs on its cgroup2
//   directory restrict its binds to its addresses (bind_filter.hpp).
// none: the guest's own namespace with lo only.
//
// Interface names (IFNAMSIZ: 15 characters): "vu-" + NAME and "vi-" + NAME (the IFB of
// rate_out) while NAME has at most 12 characters; a longer NAME becomes its first 5
// characters, "-" and 6 hex digits of a hash of the whole name (vu-webse-1a2b3c).
#pragma once
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "context/cgroup.hpp"
#include "context/net_config.hpp"

namespace vunify::context {

inline constexpr const char* kBridge = "vunify0";

// What start set up (in the run state; stop and `set` work from it).
struct NetworkState {
  NetworkMode mode = NetworkMode::None;
  std::string veth;    // host end (isolated)
  std::string ifb;     // the IFB's name (exists only while rate_out is set)
  std::string bridge;  // isolated: the bridge the veth is a port of
};

// "vu-NAME" / "vi-NAME" (hashed when too long).
std::string interface_name(const std::string& prefix, const std::string& guest);

// Before PID 1 runs (it waits): the veth pair and the bridge, the guest's eth0, the rates
// (isolated); the bind filter on the guest's cgroup2 directory (shared). Throws; on failure
// what was made is removed.
NetworkState setup_network(const std::string& guest, const NetworkConfig& config, pid_t pid1,
                           const std::vector<CgroupDir>& cgroups);
// At stop: the veth (its qdiscs go with it), the IFB, the bridge once no port is left.
// Never throws; returns false (after trying everything) if something could not be removed.
bool teardown_network(const NetworkState& state);
// Bytes an isolated guest received and sent so far (its veth's counters, from the host end);
// nullopt for the other modes or once the veth is gone.
struct NetworkUsage {
  uint64_t bytes_in = 0, bytes_out = 0;
};
std::optional<NetworkUsage> network_usage(const NetworkState& state);
// Live change of a running isolated guest's limits (0: unlimited).
void apply_rates(const NetworkState& state, uint64_t rate_out, uint64_t rate_in);

}  // namespace vunify::context
