// A guest's network settings: the [network] table of POOL/etc/NAME.toml.
//
//   [network]
//   mode = "isolated"                          # "none" (default), "isolated" or "shared"
//   addresses = ["10.88.0.2/24", "fd00:88::2/64"]
//
//   [limits]                                   # limits_net.cpp, `vunify set NAME net.rate_out=...`
//   net.rate_out = "10mbit"                    # guest -> world (isolated only)
//   net.rate_in = "100mbit"                    # world -> guest (isolated only)
//
// none:     own network namespace with only lo (as before networking existed).
// isolated: own network namespace, eth0 = one end of a veth pair whose host end is a port of
//           the bridge vunify0 (network.hpp).
// shared:   the host's network namespace; the guest may bind only its addresses (bind_filter.hpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vunify::context {

enum class NetworkMode { None, Isolated, Shared };

struct Cidr {
  int family = 0;        // AF_INET or AF_INET6
  uint8_t bytes[16]{};   // the address, network byte order (4 or 16 used)
  int prefix = 0;
  size_t size() const;   // 4 or 16
  // The first address of the subnet (network address + 1) with the same prefix: the host side.
  Cidr gateway() const;
  bool operator==(const Cidr& other) const;
};

struct NetworkConfig {
  NetworkMode mode = NetworkMode::None;
  std::vector<Cidr> addresses;
  uint64_t rate_out = 0, rate_in = 0;  // bits per second, 0 = unlimited: [limits] net.rate_*
};

// "10.0.0.2/24", "fd00::2/64"; a bare address means /32 or /128. Throws os::UserError.
Cidr parse_cidr(const std::string& text);
std::string format_cidr(const Cidr& cidr);     // with the prefix
std::string format_address(const Cidr& cidr);  // without
// tc's units: "10mbit", "1.5gbit", "800kbit", "1000000bit" (bits/s, SI), "2mbps" (bytes/s),
// bare digits = bits/s; "0", "none" or "unlimited" = 0 (no limit). Throws os::UserError.
uint64_t parse_rate(const std::string& text);
std::string format_rate(uint64_t bits_per_second);  // "10mbit", "unlimited"
NetworkMode parse_network_mode(const std::string& text);
std::string network_mode_name(NetworkMode mode);

// Checks the combination (isolated and shared need an address; rates need isolated; an
// isolated address must leave room for the host side). Throws os::UserError prefixed with `where`.
void check_network(const NetworkConfig& config, const std::string& where);

}  // namespace vunify::context
