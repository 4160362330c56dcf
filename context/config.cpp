#include "context/config.hpp"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstring>
#include <linux/capability.h>
#include <toml++/toml.h>

#include "os/error.hpp"
#include "unify/toml_config.hpp"

namespace vunify::context {

namespace {

using os::UserError;

std::vector<std::string> string_list(const toml::node& node, const std::string& where) {
  const toml::array* arr = node.as_array();
  if (!arr) throw UserError(where + ": expected a list of strings");
  std::vector<std::string> out;
  for (const auto& item : *arr) {
    auto s = item.value<std::string>();
    if (!s) throw UserError(where + ": expected a list of strings");
    out.push_back(*s);
  }
  return out;
}

std::string string_of(const toml::node& node, const std::string& where) {
  auto s = node.value<std::string>();
  if (!s || node.type() != toml::node_type::string) throw UserError(where + ": expected a string");
  return *s;
}

bool bool_of(const toml::node& node, const std::string& where) {
  if (node.type() != toml::node_type::boolean) throw UserError(where + ": expected true or false");
  return *node.value<bool>();
}

void check_hostname(const std::string& name, const std::string& where) {
  bool ok = !name.empty() && name.size() <= 64 && name.front() != '-';
  for (char c : name) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.');
  if (!ok) throw UserError(fmt::format("{}: '{}' is not a valid hostname", where, name));
}

void apply_key(ContextConfig& c, const std::string& key, const toml::node& value, const std::string& where) {
  if (key == "init") {
    c.init = string_of(value, where);
    if (c.init.empty() || c.init.front() != '/') throw UserError(where + ": expected an absolute path");
  } else if (key == "stop_signal") {
    std::string text = value.is_integer() ? std::to_string(*value.value<int64_t>()) : string_of(value, where);
    try {
      c.stop_signal = parse_signal(text);
    } catch (const UserError& e) {
      throw UserError(fmt::format("{}: {}", where, e.what()));
    }
  } else if (key == "hostname") {
    c.hostname = string_of(value, where);
    check_hostname(c.hostname, where);
  } else if (key == "cap_add" || key == "cap_drop") {
    auto caps = string_list(value, where);
    for (const auto& cap : caps) {
      try {
        parse_capability(cap);
      } catch (const std::exception& e) {
        throw UserError(fmt::format("{}: {}", where, e.what()));
      }
    }
    (key == "cap_add" ? c.cap_add : c.cap_drop) = caps;
  } else if (key == "seccomp") {
    c.seccomp = bool_of(value, where);
  } else if (key == "no_new_privs") {
    c.no_new_privs = bool_of(value, where);
  } else if (key == "autostart") {
    c.autostart = bool_of(value, where);
  } else {
    throw UserError(fmt::format("{}: unknown key (known: init, stop_signal, hostname, cap_add, cap_drop, seccomp, no_new_privs, autostart)",
                                where));
  }
}

// `parse` of a value, its UserError prefixed with `where`.
template <typename F>
auto checked(const std::string& where, F parse) {
  try {
    return parse();
  } catch (const UserError& e) {
    throw UserError(fmt::format("{}: {}", where, e.what()));
  }
}

void apply_network_key(NetworkConfig& n, const std::string& key, const toml::node& value, const std::string& where) {
  if (key == "mode") {
    n.mode = checked(where, [&] { return parse_network_mode(string_of(value, where)); });
  } else if (key == "addresses") {
    n.addresses.clear();
    for (const auto& a : string_list(value, where)) n.addresses.push_back(checked(where, [&] { return parse_cidr(a); }));
  } else if (key == "rate_out" || key == "rate_in") {
    throw UserError(fmt::format("{}: bandwidth is a limit: [limits] net.{} = \"10mbit\" (or vunify set NAME net.{}=10mbit)",
                                where, key, key));
  } else {
    throw UserError(fmt::format("{}: unknown key (known: mode, addresses)", where));
  }
}

}  // namespace

int parse_signal(const std::string& text) {
  std::string s = text.rfind("SIG", 0) == 0 ? text.substr(3) : text;
  if (!s.empty() && std::all_of(s.begin(), s.end(), ::isdigit)) {
    int n = std::stoi(s.substr(0, 4));
    if (n >= 1 && n <= SIGRTMAX) return n;
  }
  if (s.rfind("RTMIN", 0) == 0) {
    std::string off = s.substr(5);
    int n = off.empty() ? 0 : (off[0] == '+' && off.size() > 1 && std::all_of(off.begin() + 1, off.end(), ::isdigit))
                                  ? std::stoi(off.substr(1, 3))
                                  : -1;
    if (n >= 0 && SIGRTMIN + n <= SIGRTMAX) return SIGRTMIN + n;
  }
  for (int sig = 1; sig < SIGRTMIN; ++sig)
    if (const char* abbrev = ::sigabbrev_np(sig); abbrev && s == abbrev) return sig;
  throw UserError(fmt::format("'{}' is not a signal (e.g. SIGTERM, SIGRTMIN+3, 15)", text));
}

std::string signal_name(int sig) {
  if (sig >= SIGRTMIN && sig <= SIGRTMAX) return fmt::format("SIGRTMIN+{}", sig - SIGRTMIN);
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev ? fmt::format("SIG{}", abbrev) : std::to_string(sig);
}

SecurityProfile ContextConfig::profile() const {
  SecurityProfile p{default_capabilities(), seccomp, true, no_new_privs};
  // Shared mode: raw sockets in the host's namespace would send from any address, past the
  // bind filter; NET_RAW only if cap_add asks for it.
  if (network.mode == NetworkMode::Shared) p.capabilities &= ~(1ULL << CAP_NET_RAW);
  for (const auto& c : cap_add) p.capabilities |= 1ULL << parse_capability(c);
  for (const auto& c : cap_drop) p.capabilities &= ~(1ULL << parse_capability(c));
  return p;
}

ContextConfig load_config(const std::string& pool_root, const std::string& guest) {
  ContextConfig c;
  std::string path = pool_root + "/etc/" + guest + ".toml";
  auto parsed = unify::parse_toml_file(path);
  if (!parsed) return c;
  const toml::table& doc = *parsed;
  unify::for_each_key(doc, path, "context", [&](const std::string& k, const toml::node& v, const std::string& where) {
    apply_key(c, k, v, where);
  });
  unify::for_each_key(doc, path, "network", [&](const std::string& k, const toml::node& v, const std::string& where) {
    apply_network_key(c.network, k, v, where);
  });
  check_network(c.network, path + ": [network]");
  for (const auto& cap : c.cap_add)
    if (c.network.mode == NetworkMode::Shared && parse_capability(cap) == CAP_NET_ADMIN)
      throw UserError(fmt::format("{}: [context] cap_add: NET_ADMIN with [network] mode = \"shared\" would let the guest "
                                  "reconfigure the host's network",
                                  path));
  return c;
}

}  // namespace vunify::context
