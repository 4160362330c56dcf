// Per-guest bandwidth of an isolated guest, with tc objects on the host side of its veth only
// (the guest never sees or controls them, even with CAP_NET_ADMIN):
//
//   rate_in  (host -> guest): the host end's egress is the guest's ingress:
//            root htb 1: (default class 1:1) + class 1:1 rate R on vu-NAME.
//   rate_out (guest -> host): what the guest sends arrives at the host end's ingress, where
//            nothing can queue; an ingress qdisc with a u32 match-all filter and a mirred
//            action redirects it to the IFB vi-NAME, whose egress carries root htb 1: + class
//            1:1 rate R, as for rate_in.
//
// A rate of 0 removes the limit (the qdiscs, and the IFB).
#pragma once
#include <cstdint>
#include <string>

#include "context/netlink.hpp"

namespace vunify::context {

// Sets (or, with 0, removes) the limit. `veth` is the host end; `ifb` the name for the IFB.
void set_rate_in(Netlink& nl, const std::string& veth, uint64_t bits_per_second);
void set_rate_out(Netlink& nl, const std::string& veth, const std::string& ifb, uint64_t bits_per_second);

}  // namespace vunify::context
