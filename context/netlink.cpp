#include "context/netlink.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "os/error.hpp"

namespace vunify::context {

namespace {

// setns into `netns_fd` for the lifetime of the object, back to the original at the end.
class NetnsSwitch {
 public:
  explicit NetnsSwitch(int netns_fd) : home_(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) {
    if (!home_) os::throw_errno("open", "/proc/thread-self/ns/net");
    if (::setns(netns_fd, CLONE_NEWNET) != 0) os::throw_errno("enter the guest's network namespace", "");
  }
  ~NetnsSwitch() {
    if (::setns(home_.get(), CLONE_NEWNET) != 0) std::abort();  // never stay in the guest's namespace
  }

 private:
  os::unique_fd home_;
};

mnl_socket* open_route_socket() {
  mnl_socket* s = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
  if (!s) os::throw_errno("open a netlink socket", "");
  if (mnl_socket_bind(s, 0, MNL_SOCKET_AUTOPID) < 0) {
    int err = errno;
    mnl_socket_close(s);
    throw os::SysError(err, "bind a netlink socket", "");
  }
  return s;
}

ifinfomsg* link_header(nlmsghdr* nlh, int index = 0) {
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = index;
  return ifi;
}

LinkInfo parse_link(const nlmsghdr* nlh) {
  LinkInfo info;
  auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  info.index = ifi->ifi_index;
  mnl_attr_parse(
      nlh, sizeof(ifinfomsg),
      [](const nlattr* attr, void* data) {
        auto* out = static_cast<LinkInfo*>(data);
        if (mnl_attr_get_type(attr) == IFLA_IFNAME) out->name = mnl_attr_get_str(attr);
        if (mnl_attr_get_type(attr) == IFLA_MASTER) out->master = static_cast<int>(mnl_attr_get_u32(attr));
        if (mnl_attr_get_type(attr) == IFLA_STATS64 && mnl_attr_get_payload_len(attr) >= sizeof(rtnl_link_stats64)) {
          rtnl_link_stats64 stats;
          std::memcpy(&stats, mnl_attr_get_payload(attr), sizeof stats);
          out->rx_bytes = stats.rx_bytes;
          out->tx_bytes = stats.tx_bytes;
        }
        return MNL_CB_OK;
      },
      &info);
  return info;
}

}  // namespace

Netlink::Netlink() : sock_(open_route_socket()), portid_(mnl_socket_get_portid(sock_)) {}

Netlink::Netlink(int netns_fd) {
  NetnsSwitch in(netns_fd);
  sock_ = open_route_socket();
  portid_ = mnl_socket_get_portid(sock_);
}

Netlink::~Netlink() { mnl_socket_close(sock_); }

int Netlink::request(uint16_t type, uint16_t flags, const std::function<void(nlmsghdr*)>& build,
                     const std::function<void(const nlmsghdr*)>& on_reply) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
  nlh->nlmsg_seq = ++seq_;
  build(nlh);
  if (mnl_socket_sendto(sock_, nlh, nlh->nlmsg_len) < 0) return -errno;
  struct Ctx {
    const std::function<void(const nlmsghdr*)>* on_reply;
  } ctx{&on_reply};
  auto data_cb = [](const nlmsghdr* m, void* data) {
    auto* c = static_cast<Ctx*>(data);
    if (*c->on_reply) (*c->on_reply)(m);
    return MNL_CB_OK;
  };
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(sock_, buf.data(), buf.size());
    if (n < 0) return -errno;
    int rc = mnl_cb_run(buf.data(), static_cast<size_t>(n), seq_, portid_, data_cb, &ctx);
    if (rc < 0) return -errno;  // the ack's error (mnl sets errno)
    if (rc == MNL_CB_STOP) return 0;
  }
}

void Netlink::must(uint16_t type, uint16_t flags, const std::function<void(nlmsghdr*)>& build, const std::string& what,
                   const std::string& name) {
  int rc = request(type, flags, build);
  if (rc != 0) throw os::SysError(-rc, what, name);
}

std::vector<LinkInfo> list_links(Netlink& nl) {
  std::vector<LinkInfo> out;
  int rc = nl.request(RTM_GETLINK, NLM_F_DUMP, [](nlmsghdr* nlh) { link_header(nlh); },
                      [&](const nlmsghdr* m) { out.push_back(parse_link(m)); });
  if (rc != 0) throw os::SysError(-rc, "list network interfaces", "");
  return out;
}

std::optional<LinkInfo> find_link(Netlink& nl, const std::string& name) {
  std::optional<LinkInfo> found;
  int rc = nl.request(
      RTM_GETLINK, 0,
      [&](nlmsghdr* nlh) {
        link_header(nlh);
        mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
      },
      [&](const nlmsghdr* m) { found = parse_link(m); });
  if (rc != 0 && rc != -ENODEV) throw os::SysError(-rc, "look up network interface", name);
  return rc == 0 ? found : std::nullopt;
}

int link_index(Netlink& nl, const std::string& name) {
  auto link = find_link(nl, name);
  if (!link) throw os::SysError(ENODEV, "find network interface", name);
  return link->index;
}

void create_veth(Netlink& nl, const std::string& name, const std::string& peer_name, int peer_netns_fd) {
  nl.must(
      RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
      [&](nlmsghdr* nlh) {
        link_header(nlh);
        mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
        nlattr* linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
        mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
        nlattr* data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
        nlattr* peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
        // The peer's ifinfomsg sits inside the attribute, before its own attributes.
        auto* pifi = static_cast<ifinfomsg*>(mnl_nlmsg_get_payload_tail(nlh));
        *pifi = ifinfomsg{};
        nlh->nlmsg_len += MNL_ALIGN(sizeof(ifinfomsg));
        mnl_attr_put_strz(nlh, IFLA_IFNAME, peer_name.c_str());
        mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, static_cast<uint32_t>(peer_netns_fd));
        mnl_attr_nest_end(nlh, peer);
        mnl_attr_nest_end(nlh, data);
        mnl_attr_nest_end(nlh, linkinfo);
      },
      "create veth pair", name + " / " + peer_name);
}

bool create_link(Netlink& nl, const std::string& name, const std::string& kind) {
  int rc = nl.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, [&](nlmsghdr* nlh) {
    link_header(nlh);
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
    if (kind == "ifb") mnl_attr_put_u32(nlh, IFLA_TXQLEN, 1000);  // ifb's default queue is 32 packets
    nlattr* linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(nlh, IFLA_INFO_KIND, kind.c_str());
    mnl_attr_nest_end(nlh, linkinfo);
  });
  if (rc == -EEXIST) return false;
  if (rc != 0) throw os::SysError(-rc, "create " + kind, name);
  return true;
}

void set_link_up(Netlink& nl, int index) {
  nl.must(
      RTM_NEWLINK, 0,
      [&](nlmsghdr* nlh) {
        ifinfomsg* ifi = link_header(nlh, index);
        ifi->ifi_flags = IFF_UP;
        ifi->ifi_change = IFF_UP;
      },
      "bring up network interface", std::to_string(index));
}

void set_link_master(Netlink& nl, int index, int master) {
  nl.must(
      RTM_NEWLINK, 0,
      [&](nlmsghdr* nlh) {
        link_header(nlh, index);
        mnl_attr_put_u32(nlh, IFLA_MASTER, static_cast<uint32_t>(master));
      },
      "attach network interface to bridge", std::to_string(index));
}

bool delete_link(Netlink& nl, const std::string& name) {
  int rc = nl.request(RTM_DELLINK, 0, [&](nlmsghdr* nlh) {
    link_header(nlh);
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
  });
  if (rc == -ENODEV) return false;
  if (rc != 0) throw os::SysError(-rc, "delete network interface", name);
  return true;
}

void add_address(Netlink& nl, int index, const Cidr& address) {
  int rc = nl.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, [&](nlmsghdr* nlh) {
    auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
    ifa->ifa_family = static_cast<uint8_t>(address.family);
    ifa->ifa_prefixlen = static_cast<uint8_t>(address.prefix);
    ifa->ifa_index = static_cast<uint32_t>(index);
    ifa->ifa_flags = address.family == AF_INET6 ? IFA_F_NODAD : 0;
    mnl_attr_put(nlh, IFA_LOCAL, address.size(), address.bytes);
    mnl_attr_put(nlh, IFA_ADDRESS, address.size(), address.bytes);
  });
  if (rc != 0 && rc != -EEXIST) throw os::SysError(-rc, "add address " + format_cidr(address) + " to interface", std::to_string(index));
}

void add_default_route(Netlink& nl, int index, const Cidr& gateway) {
  nl.must(
      RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL,
      [&](nlmsghdr* nlh) {
        auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
        rtm->rtm_family = static_cast<uint8_t>(gateway.family);
        rtm->rtm_table = RT_TABLE_MAIN;
        rtm->rtm_protocol = RTPROT_STATIC;
        rtm->rtm_scope = RT_SCOPE_UNIVERSE;
        rtm->rtm_type = RTN_UNICAST;
        mnl_attr_put(nlh, RTA_GATEWAY, gateway.size(), gateway.bytes);
        mnl_attr_put_u32(nlh, RTA_OIF, static_cast<uint32_t>(index));
      },
      "add default route via " + format_address(gateway) + " on interface", std::to_string(index));
}

}  // namespace vunify::context
