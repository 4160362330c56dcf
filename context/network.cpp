#include "context/network.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "context/bandwidth.hpp"
#include "context/bind_filter.hpp"
#include "context/netlink.hpp"
#include "os/error.hpp"

namespace vunify::context {

namespace {

// Serializes bridge creation/removal between vunify processes (two guests starting, one
// stopping): flock on a file in /run.
class NetworkLock {
 public:
  NetworkLock() : fd_(::open(kPath, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
    if (!fd_) os::throw_errno("open", kPath);
    while (::flock(fd_.get(), LOCK_EX) != 0)
      if (errno != EINTR) os::throw_errno("lock", kPath);
  }

 private:
  static constexpr const char* kPath = "/run/vunify-network.lock";
  os::unique_fd fd_;
};

void create_guest_veth(Netlink& host, const std::string& veth, int netns_fd) {
  try {
    create_veth(host, veth, "eth0", netns_fd);
  } catch (const os::SysError& e) {
    if (e.err() != EEXIST) throw;
    throw os::UserError(fmt::format("network interface {} exists already: a guest of the same name runs in another "
                                    "pool, or it is left over ('ip link del {}' removes it)",
                                    veth, veth));
  }
}

// The bridge, up, with the host side's address of every guest subnet.
int bring_up_bridge(Netlink& host, const NetworkConfig& config) {
  create_link(host, kBridge, "bridge");
  int bridge = link_index(host, kBridge);
  set_link_up(host, bridge);
  for (const Cidr& a : config.addresses) add_address(host, bridge, a.gateway());
  return bridge;
}

// In the guest's namespace: eth0 up with its addresses and a default route per family.
void configure_eth0(int netns_fd, const NetworkConfig& config) {
  Netlink guest(netns_fd);
  int eth0 = link_index(guest, "eth0");
  set_link_up(guest, eth0);
  for (const Cidr& a : config.addresses) add_address(guest, eth0, a);
  for (int family : {AF_INET, AF_INET6}) {
    auto first = std::find_if(config.addresses.begin(), config.addresses.end(),
                              [&](const Cidr& a) { return a.family == family; });
    if (first != config.addresses.end()) add_default_route(guest, eth0, first->gateway());
  }
}

// `made_veth` is set once the pair exists: a failure before must not remove an interface of
// that name that is not ours.
void setup_isolated(const NetworkState& s, const NetworkConfig& config, pid_t pid1, bool& made_veth) {
  std::string ns_path = fmt::format("/proc/{}/ns/net", pid1);
  os::unique_fd netns(::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!netns) os::throw_errno("open the guest's network namespace", ns_path);
  NetworkLock lock;
  Netlink host;
  int bridge = bring_up_bridge(host, config);
  create_guest_veth(host, s.veth, netns.get());
  made_veth = true;
  int veth = link_index(host, s.veth);
  set_link_master(host, veth, bridge);
  set_link_up(host, veth);
  configure_eth0(netns.get(), config);
  if (config.rate_in) set_rate_in(host, s.veth, config.rate_in);
  if (config.rate_out) set_rate_out(host, s.veth, s.ifb, config.rate_out);
}

const CgroupDir& cgroup2_of(const std::vector<CgroupDir>& cgroups) {
  for (const auto& c : cgroups)
    if (c.v2) return c;
  throw os::UserError("network mode \"shared\" needs a cgroup2 hierarchy (its bind filter is a cgroup BPF program); "
                      "none is mounted");
}

// The bridge if no port is left on it.
void remove_idle_bridge(Netlink& host, const std::string& bridge) {
  auto br = find_link(host, bridge);
  if (!br) return;
  auto links = list_links(host);
  if (std::none_of(links.begin(), links.end(), [&](const LinkInfo& l) { return l.master == br->index; }))
    delete_link(host, bridge);
}

}  // namespace

std::string interface_name(const std::string& prefix, const std::string& guest) {
  constexpr size_t kMax = 15;  // IFNAMSIZ - 1
  if (prefix.size() + guest.size() <= kMax) return prefix + guest;
  uint32_t hash = 2166136261U;  // FNV-1a
  for (unsigned char c : guest) hash = (hash ^ c) * 16777619U;
  return fmt::format("{}{}-{:06x}", prefix, guest.substr(0, kMax - prefix.size() - 7), hash & 0xffffff);
}

NetworkState setup_network(const std::string& guest, const NetworkConfig& config, pid_t pid1,
                           const std::vector<CgroupDir>& cgroups) {
  NetworkState s;
  s.mode = config.mode;
  if (config.mode == NetworkMode::Shared) {
    restrict_binds(cgroup2_of(cgroups).dir, config.addresses);  // goes with the cgroup
  } else if (config.mode == NetworkMode::Isolated) {
    s.veth = interface_name("vu-", guest);
    s.ifb = interface_name("vi-", guest);
    s.bridge = kBridge;
    bool made_veth = false;
    try {
      setup_isolated(s, config, pid1, made_veth);
    } catch (...) {
      NetworkState undo = s;
      if (!made_veth) undo.veth = undo.ifb = "";
      teardown_network(undo);
      throw;
    }
  }
  return s;
}

bool teardown_network(const NetworkState& s) {
  if (s.mode != NetworkMode::Isolated) return true;
  try {
    NetworkLock lock;
    Netlink host;
    if (!s.veth.empty()) delete_link(host, s.veth);  // the guest's eth0 goes with it
    if (!s.ifb.empty()) delete_link(host, s.ifb);
    remove_idle_bridge(host, s.bridge);
    return true;
  } catch (const std::exception& e) {
    fmt::print(stderr, "vunify: removing the network of {}: {}\n", s.veth, e.what());
    return false;
  }
}

std::optional<NetworkUsage> network_usage(const NetworkState& s) {
  if (s.mode != NetworkMode::Isolated) return std::nullopt;
  Netlink host;
  auto link = find_link(host, s.veth);
  if (!link) return std::nullopt;
  return NetworkUsage{link->tx_bytes, link->rx_bytes};  // the host end sends what the guest receives
}

void apply_rates(const NetworkState& s, uint64_t rate_out, uint64_t rate_in) {
  if (s.mode != NetworkMode::Isolated)
    throw os::UserError("network rates need mode = \"isolated\" (the guest's veth carries the limits)");
  Netlink host;
  set_rate_in(host, s.veth, rate_in);
  set_rate_out(host, s.veth, s.ifb, rate_out);
}

}  // namespace vunify::context
