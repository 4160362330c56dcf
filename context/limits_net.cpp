// net.rate_out / net.rate_in: an isolated guest's bandwidth (bandwidth.hpp), htb on the host
// side of its veth. At start the network does not exist yet when the registry applies limits:
// setup_network() puts them in place with the veth (runtime.cpp passes them in NetworkConfig);
// `vunify set` on a running guest changes them live here.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "context/config.hpp"
#include "context/limit_keys.hpp"
#include "context/limit_target.hpp"
#include "context/network.hpp"
#include "context/state.hpp"
#include "os/error.hpp"

namespace vunify::context {

namespace {

std::string canonical_rate(const std::string& text) {
  uint64_t bits = parse_rate(text);
  if (bits == 0) throw os::UserError("0 is no rate (max or none removes the limit)");
  return format_rate(bits);
}

}  // namespace

uint64_t rate_of(const Limits& limits, const char* key) {
  auto it = limits.find(key);
  return it == limits.end() ? 0 : parse_rate(it->second);
}

LimitModule net_limit_module() {
  LimitModule m;
  m.name = "net";
  const std::string syntax = "a rate in tc's units, e.g. 10mbit, 1.5gbit, 2mbps (bytes/s)";
  m.keys = {{"net.rate_out", syntax, canonical_rate, true}, {"net.rate_in", syntax, canonical_rate, true}};
  m.apply = [](const LimitTarget& t, const Limits& limits) {
    auto state = read_state(t.pool, t.guest);
    bool rated = limits.count("net.rate_out") || limits.count("net.rate_in");
    if (!state) return;  // start: setup_network applies them with the veth
    if (state->network.mode != NetworkMode::Isolated) {
      if (rated) throw os::UserError("net.rate_out / net.rate_in need [network] mode = \"isolated\"");
      return;
    }
    apply_rates(state->network, rate_of(limits, "net.rate_out"), rate_of(limits, "net.rate_in"));
  };
  return m;
}

}  // namespace vunify::context
