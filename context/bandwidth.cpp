#include "context/bandwidth.hpp"

#include <libmnl/libmnl.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_mirred.h>
#include <arpa/inet.h>

#include <algorithm>
#include <functional>
#include <cerrno>

#include "os/error.hpp"

namespace vunify::context {

namespace {

constexpr uint32_t kRoot = TC_H_MAKE(1U << 16, 0);     // 1:
constexpr uint32_t kClass = TC_H_MAKE(1U << 16, 1);    // 1:1
constexpr uint32_t kIngress = TC_H_MAKE(0xffffU << 16, 0);  // ffff:

tcmsg* tc_header(nlmsghdr* nlh, int index, uint32_t parent, uint32_t handle) {
  auto* tcm = static_cast<tcmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(tcmsg)));
  tcm->tcm_family = AF_UNSPEC;
  tcm->tcm_ifindex = index;
  tcm->tcm_parent = parent;
  tcm->tcm_handle = handle;
  return tcm;
}

// An htb qdisc or class on link `index` (request flags `flags`); `options` fills TCA_OPTIONS.
// Returns 0 or -errno.
int put_htb(Netlink& nl, uint16_t type, uint16_t flags, int index, uint32_t parent, uint32_t handle,
            const std::function<void(nlmsghdr*)>& options) {
  return nl.request(type, flags, [&](nlmsghdr* nlh) {
    tc_header(nlh, index, parent, handle);
    mnl_attr_put_strz(nlh, TCA_KIND, "htb");
    nlattr* opts = mnl_attr_nest_start(nlh, TCA_OPTIONS);
    options(nlh);
    mnl_attr_nest_end(nlh, opts);
  });
}

// root htb 1: whose unclassified traffic goes to 1:1; kept if there is one (htb qdiscs cannot
// be changed in place: a replace is EINVAL, only their classes change).
void htb_qdisc(Netlink& nl, int index, const std::string& name) {
  tc_htb_glob glob{};
  glob.version = 3;  // TC_HTB_PROTOVER
  glob.rate2quantum = 10;
  glob.defcls = 1;
  int rc = put_htb(nl, RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, index, TC_H_ROOT, kRoot,
                   [&](nlmsghdr* nlh) { mnl_attr_put(nlh, TCA_HTB_INIT, sizeof glob, &glob); });
  if (rc != 0 && rc != -EEXIST) throw os::SysError(-rc, "add htb qdisc to", name);
}

// Class 1:1 at `bits` per second; the burst is 4 ms at that rate (tc's rate/HZ at HZ=250), at
// least two full frames.
void htb_class(Netlink& nl, int index, const std::string& name, uint64_t bits) {
  uint64_t bytes = bits / 8;
  uint64_t burst = std::max<uint64_t>(bytes / 250, 2 * 1514);
  tc_htb_opt opt{};
  opt.rate.rate = opt.ceil.rate = static_cast<uint32_t>(std::min<uint64_t>(bytes, UINT32_MAX));
  opt.rate.linklayer = opt.ceil.linklayer = TC_LINKLAYER_ETHERNET;
  // htb counts buffers in psched ticks of 64 ns (PSCHED_SHIFT 6).
  opt.buffer = opt.cbuffer = static_cast<uint32_t>(std::min<uint64_t>(burst * 1000000000ULL / bytes / 64, UINT32_MAX));
  opt.quantum = static_cast<uint32_t>(std::clamp<uint64_t>(bytes / 10, 1514, 200000));
  int rc = put_htb(nl, RTM_NEWTCLASS, NLM_F_CREATE | NLM_F_REPLACE, index, kRoot, kClass, [&](nlmsghdr* nlh) {
    mnl_attr_put(nlh, TCA_HTB_PARMS, sizeof opt, &opt);
    if (bytes > UINT32_MAX) {
      mnl_attr_put_u64(nlh, TCA_HTB_RATE64, bytes);
      mnl_attr_put_u64(nlh, TCA_HTB_CEIL64, bytes);
    }
  });
  if (rc != 0) throw os::SysError(-rc, "set htb class rate on", name);
}

void delete_qdisc(Netlink& nl, int index, uint32_t parent, uint32_t handle, const std::string& name) {
  int rc = nl.request(RTM_DELQDISC, 0, [&](nlmsghdr* nlh) { tc_header(nlh, index, parent, handle); });
  // ENOENT / EINVAL: there was none (the default qdisc cannot be deleted).
  if (rc != 0 && rc != -ENOENT && rc != -EINVAL) throw os::SysError(-rc, "delete qdisc of", name);
}

void limit(Netlink& nl, int index, const std::string& name, uint64_t bits) {
  htb_qdisc(nl, index, name);
  htb_class(nl, index, name, bits);
}

// ingress qdisc on `veth` + u32 match-all filter redirecting every packet to `ifb_index`.
void redirect_ingress(Netlink& nl, int index, const std::string& veth, int ifb_index) {
  int rc = nl.request(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, [&](nlmsghdr* nlh) {
    tc_header(nlh, index, TC_H_INGRESS, kIngress);
    mnl_attr_put_strz(nlh, TCA_KIND, "ingress");
  });
  if (rc == -EEXIST) return;  // set up by an earlier rate_out
  if (rc != 0) throw os::SysError(-rc, "add ingress qdisc to", veth);
  nl.must(
      RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL,
      [&](nlmsghdr* nlh) {
        tcmsg* tcm = tc_header(nlh, index, kIngress, 0);
        tcm->tcm_info = TC_H_MAKE(1U << 16, htons(ETH_P_ALL));  // prio 1, every protocol
        mnl_attr_put_strz(nlh, TCA_KIND, "u32");
        nlattr* opts = mnl_attr_nest_start(nlh, TCA_OPTIONS);
        // A selector with one key of mask 0: matches every packet.
        alignas(tc_u32_sel) unsigned char match[sizeof(tc_u32_sel) + sizeof(tc_u32_key)]{};
        auto* sel = reinterpret_cast<tc_u32_sel*>(match);
        sel->flags = TC_U32_TERMINAL;
        sel->nkeys = 1;
        mnl_attr_put(nlh, TCA_U32_SEL, sizeof match, match);
        nlattr* acts = mnl_attr_nest_start(nlh, TCA_U32_ACT);
        nlattr* act = mnl_attr_nest_start(nlh, 1);
        mnl_attr_put_strz(nlh, TCA_ACT_KIND, "mirred");
        nlattr* aopts = mnl_attr_nest_start(nlh, TCA_ACT_OPTIONS);
        tc_mirred mirred{};
        mirred.action = TC_ACT_STOLEN;
        mirred.eaction = TCA_EGRESS_REDIR;
        mirred.ifindex = static_cast<uint32_t>(ifb_index);
        mnl_attr_put(nlh, TCA_MIRRED_PARMS, sizeof mirred, &mirred);
        mnl_attr_nest_end(nlh, aopts);
        mnl_attr_nest_end(nlh, act);
        mnl_attr_nest_end(nlh, acts);
        mnl_attr_nest_end(nlh, opts);
      },
      "add redirect filter to", veth);
}

}  // namespace

void set_rate_in(Netlink& nl, const std::string& veth, uint64_t bits) {
  int index = link_index(nl, veth);
  if (bits == 0)
    delete_qdisc(nl, index, TC_H_ROOT, 0, veth);
  else
    limit(nl, index, veth, bits);
}

void set_rate_out(Netlink& nl, const std::string& veth, const std::string& ifb, uint64_t bits) {
  int index = link_index(nl, veth);
  if (bits == 0) {
    delete_qdisc(nl, index, TC_H_INGRESS, kIngress, veth);
    delete_link(nl, ifb);
    return;
  }
  create_link(nl, ifb, "ifb");
  int ifb_index = link_index(nl, ifb);
  set_link_up(nl, ifb_index);
  limit(nl, ifb_index, ifb, bits);
  redirect_ingress(nl, index, veth, ifb_index);
}

}  // namespace vunify::context
