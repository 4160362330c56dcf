#include "context/net_config.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>

#include "os/error.hpp"

namespace vunify::context {

namespace {

using os::UserError;

struct Unit {
  const char* suffix;
  double factor;  // to bits per second
};

// Longest suffixes first, so "mbps" is not read as "ps".
constexpr Unit kUnits[] = {{"tbit", 1e12}, {"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"tbps", 8e12},
                           {"gbps", 8e9},  {"mbps", 8e6}, {"kbps", 8e3}, {"bit", 1},    {"bps", 8}};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

size_t Cidr::size() const { return family == AF_INET ? 4 : 16; }

bool Cidr::operator==(const Cidr& o) const {
  return family == o.family && prefix == o.prefix && std::memcmp(bytes, o.bytes, size()) == 0;
}

Cidr Cidr::gateway() const {
  Cidr g = *this;
  for (size_t i = 0; i < size(); ++i) {
    int bits = std::clamp(prefix - static_cast<int>(i) * 8, 0, 8);
    g.bytes[i] &= static_cast<uint8_t>(0xff00 >> bits);
  }
  g.bytes[size() - 1] |= 1;
  return g;
}

Cidr parse_cidr(const std::string& text) {
  Cidr c;
  auto slash = text.find('/');
  std::string addr = text.substr(0, slash);
  c.family = addr.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  if (::inet_pton(c.family, addr.c_str(), c.bytes) != 1)
    throw UserError(fmt::format("'{}' is not an IPv4 or IPv6 address (e.g. 10.88.0.2/24, fd00:88::2/64)", text));
  int max = static_cast<int>(c.size()) * 8;
  c.prefix = max;
  if (slash != std::string::npos) {
    std::string p = text.substr(slash + 1);
    bool digits = !p.empty() && p.size() <= 3 && std::all_of(p.begin(), p.end(), ::isdigit);
    if (!digits || std::stoi(p) > max || std::stoi(p) < 1)
      throw UserError(fmt::format("'{}': the prefix length must be 1-{}", text, max));
    c.prefix = std::stoi(p);
  }
  return c;
}

std::string format_address(const Cidr& c) {
  char buf[INET6_ADDRSTRLEN];
  ::inet_ntop(c.family, c.bytes, buf, sizeof buf);
  return buf;
}

std::string format_cidr(const Cidr& c) { return format_address(c) + "/" + std::to_string(c.prefix); }

uint64_t parse_rate(const std::string& text) {
  std::string s;
  for (char ch : text) s += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (s == "0" || s == "none" || s == "unlimited") return 0;
  double factor = 1;
  for (const Unit& u : kUnits)
    if (ends_with(s, u.suffix)) {
      factor = u.factor;
      s.resize(s.size() - std::strlen(u.suffix));
      break;
    }
  size_t used = 0;
  double value = -1;
  bool number = !s.empty() && (std::isdigit(static_cast<unsigned char>(s[0])) != 0);
  try {
    if (number) value = std::stod(s, &used);
  } catch (const std::exception&) {
    number = false;
  }
  double bits = value * factor;
  if (!number || used != s.size() || !(bits >= 8000) || bits > 1e13)
    throw UserError(fmt::format("'{}' is not a rate between 8kbit and 10tbit (e.g. 10mbit, 1gbit, 500kbit, 2mbps; "
                                "\"unlimited\" for none)",
                                text));
  return static_cast<uint64_t>(std::llround(bits));
}

std::string format_rate(uint64_t bits) {
  if (bits == 0) return "unlimited";
  for (const char* unit : {"gbit", "mbit", "kbit"}) {
    double f = unit[0] == 'g' ? 1e9 : unit[0] == 'm' ? 1e6 : 1e3;
    if (bits >= f && std::fmod(static_cast<double>(bits), f) == 0) return fmt::format("{}{}", bits / static_cast<uint64_t>(f), unit);
  }
  return fmt::format("{}bit", bits);
}

NetworkMode parse_network_mode(const std::string& text) {
  if (text == "none") return NetworkMode::None;
  if (text == "isolated") return NetworkMode::Isolated;
  if (text == "shared") return NetworkMode::Shared;
  throw UserError(fmt::format("'{}' is not a network mode (none, isolated, shared)", text));
}

std::string network_mode_name(NetworkMode mode) {
  return mode == NetworkMode::Isolated ? "isolated" : mode == NetworkMode::Shared ? "shared" : "none";
}

void check_network(const NetworkConfig& c, const std::string& where) {
  std::string mode = network_mode_name(c.mode);
  if (c.mode != NetworkMode::None && c.addresses.empty())
    throw UserError(fmt::format("{}: mode \"{}\" needs at least one address (addresses = [\"10.88.0.2/24\"])", where, mode));
  if (c.mode == NetworkMode::None && !c.addresses.empty())
    throw UserError(fmt::format("{}: addresses need mode = \"isolated\" or \"shared\"", where));
  if (c.mode != NetworkMode::Isolated && (c.rate_in || c.rate_out))
    throw UserError(fmt::format("{}: [limits] net.rate_out / net.rate_in need [network] mode = \"isolated\" (the guest's veth carries the limits)", where));
  for (const Cidr& a : c.addresses)
    if (c.mode == NetworkMode::Isolated && (a.gateway() == a || a.prefix > static_cast<int>(a.size()) * 8 - 2))
      throw UserError(fmt::format("{}: {} is its subnet's host-side address (or the subnet is too small); the host side "
                                  "takes the first address of the subnet, {}",
                                  where, format_cidr(a), format_address(a.gateway())));
}

}  // namespace vunify::context
