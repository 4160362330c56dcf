// rtnetlink through libmnl: links (veth, bridge, ifb), addresses, routes and the tc objects the
// bandwidth limits use. One socket per network namespace; every request waits for its ack.
#pragma once
#include <linux/netlink.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "context/net_config.hpp"
#include "os/unique_fd.hpp"

struct mnl_socket;

namespace vunify::context {

// A NETLINK_ROUTE socket in the current network namespace, or in the one behind `netns_fd`
// (entered just for the socket(2) call: a netlink socket stays in the namespace it was made in).
class Netlink {
 public:
  Netlink();
  explicit Netlink(int netns_fd);
  ~Netlink();
  Netlink(const Netlink&) = delete;
  Netlink& operator=(const Netlink&) = delete;

  // A request of `type` with `flags` (NLM_F_REQUEST | NLM_F_ACK added); `build` fills the
  // message (family header and attributes). Returns 0 or -errno from the kernel's ack.
  // For NLM_F_DUMP / get requests each reply message goes to `on_reply`.
  int request(uint16_t type, uint16_t flags, const std::function<void(nlmsghdr*)>& build,
              const std::function<void(const nlmsghdr*)>& on_reply = nullptr);
  // request(); a non-zero answer throws os::SysError("<what>", name).
  void must(uint16_t type, uint16_t flags, const std::function<void(nlmsghdr*)>& build, const std::string& what,
            const std::string& name);

 private:
  mnl_socket* sock_ = nullptr;
  uint32_t seq_ = 1, portid_ = 0;
};

struct LinkInfo {
  int index = 0;
  std::string name;
  int master = 0;  // index of the bridge it is a port of (0: none)
  uint64_t rx_bytes = 0, tx_bytes = 0;
};

// Links of the socket's namespace.
std::vector<LinkInfo> list_links(Netlink& nl);
std::optional<LinkInfo> find_link(Netlink& nl, const std::string& name);
int link_index(Netlink& nl, const std::string& name);  // throws SysError(ENODEV) if absent

// A veth pair: `name` here, its peer `peer_name` created directly in the namespace `peer_netns_fd`.
void create_veth(Netlink& nl, const std::string& name, const std::string& peer_name, int peer_netns_fd);
// A link of `kind` ("bridge", "ifb"); false if one of that name exists already.
bool create_link(Netlink& nl, const std::string& name, const std::string& kind);
void set_link_up(Netlink& nl, int index);
void set_link_master(Netlink& nl, int index, int master);
// false if it did not exist.
bool delete_link(Netlink& nl, const std::string& name);
// Adds `address` (no DAD for IPv6); an existing identical address is fine.
void add_address(Netlink& nl, int index, const Cidr& address);
// Default route of the address's family through `gateway` on link `index`.
void add_default_route(Netlink& nl, int index, const Cidr& gateway);

}  // namespace vunify::context
