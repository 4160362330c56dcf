// Network mode "shared" (Linux-VServer's network context): the guest stays in the host's
// network namespace, but its sockets may use only its own addresses. Six cgroup BPF programs
// (BPF_PROG_TYPE_CGROUP_SOCK_ADDR, assembled in bind_filter.cpp) on the guest's cgroup2
// directory enforce it for every process of the guest, `vunify exec`'d ones included:
//
//   bind4 / bind6        bind() to another address fails with EADDRNOTAVAIL; INADDR_ANY /
//                        in6addr_any is rewritten to the guest's first IPv4 / IPv6 address
//                        (:: to ::ffff:<first IPv4> for a guest without IPv6); a v4-mapped
//                        address counts as its IPv4 address.
//   connect4 / connect6  the implicit bind of connect() on an unbound socket picks the
//                        guest's first address of the family (bpf_bind), not the host's route
//                        source.
//   sendmsg4 / sendmsg6  an unconnected UDP datagram's source is the guest's address; an
//                        explicit source (IP_PKTINFO) outside it fails with EADDRNOTAVAIL.
//
// The programs live as long as the cgroup (removed at stop).
#pragma once
#include <string>
#include <vector>

#include "context/net_config.hpp"

namespace vunify::context {

// Loads the programs for `addresses` and attaches them to the cgroup2 directory `dir`.
void restrict_binds(const std::string& dir, const std::vector<Cidr>& addresses);

}  // namespace vunify::context
