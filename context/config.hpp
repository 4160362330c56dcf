// A guest's context settings: the [context] table of POOL/etc/NAME.toml.
//
//   [context]
//   init = "/sbin/init"          # what PID 1 runs when `start` gets no command
//   stop_signal = "SIGRTMIN+3"   # default: SIGRTMIN+3 for a systemd init, else SIGTERM
//   hostname = "web1"            # default: the guest's name
//   cap_add = ["NET_ADMIN"]      # capabilities added to / dropped from Docker's default 14
//   cap_drop = ["NET_RAW"]
//   seccomp = true
//   no_new_privs = true          # false: setuid binaries (sudo, su, ping) gain privileges again
//   autostart = false            # started by `vunify start --all`
//
//   [network]                    # see net_config.hpp
//   mode = "isolated"
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "context/net_config.hpp"
#include "context/security.hpp"

namespace vunify::context {

struct ContextConfig {
  std::string init;                  // empty: /sbin/init if the guest has one, else vunify's init
  std::optional<int> stop_signal;    // unset: by init kind
  std::string hostname;              // empty: the guest's name
  std::vector<std::string> cap_add, cap_drop;
  bool seccomp = true;
  bool no_new_privs = true;
  bool autostart = false;
  NetworkConfig network;             // [network]

  SecurityProfile profile() const;
};

// Reads POOL/etc/NAME.toml (defaults if it or its [context] / [network] table is missing). Unknown keys and
// bad values are an os::UserError naming the file and the key.
ContextConfig load_config(const std::string& pool_root, const std::string& guest);

// "SIGTERM", "TERM", "RTMIN+3", "SIGRTMIN+3" or a number -> the signal; throws UserError.
int parse_signal(const std::string& text);
std::string signal_name(int sig);

}  // namespace vunify::context
