// Guest networking ([network] in POOL/etc/NAME.toml): isolated guests on veth pairs bridged by
// vunify0, bandwidth limits, shared mode's bind filter, and the config's errors.
//
// The isolated tests run vunify in a network namespace of their own (TestNetns), which plays
// the host: the bridge, the veths and the IFBs are made there, never in the machine's
// namespace, and go with it. Shared mode stays in the machine's namespace but uses only
// 127.0.0.x addresses, which lo has already.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <thread>

#include "context/config.hpp"
#include "context/netlink.hpp"
#include "context/network.hpp"
#include "os/error.hpp"
#include "tests/child_report.hpp"
#include "tests/context_guest.hpp"

namespace vunify::test {

namespace {

using os::unique_fd;

// This thread (and every process it starts) in a fresh network namespace with lo up; back to
// the original one at the end. Whatever vunify leaves in it goes when its last process does.
class TestNetns {
 public:
  TestNetns() : home_(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) {
    REQUIRE(home_);
    REQUIRE(::unshare(CLONE_NEWNET) == 0);
    context::Netlink nl;
    context::set_link_up(nl, context::link_index(nl, "lo"));
  }
  ~TestNetns() { ::setns(home_.get(), CLONE_NEWNET); }
  TestNetns(const TestNetns&) = delete;
  TestNetns& operator=(const TestNetns&) = delete;

 private:
  unique_fd home_;
};

// Adds `guest` (busybox with the network applets) with `network` as its [network] table.
void add_net_guest(ContextGuest& g, const std::string& guest, const std::string& network) {
  std::string tree = g.dir / ("src-" + guest);
  make_busybox_guest(tree);
  for (const char* applet : {"ip", "ping", "ping6", "nc", "netstat"})
    REQUIRE(::symlink("busybox", (tree + "/bin/" + applet).c_str()) == 0);
  g.ok("guest add " + guest + " --from '" + tree + "'");
  if (guest != g.name) g.extra_guests.push_back(guest);
  write_file(g.pool + "/etc/" + guest + ".toml", "[network]\n" + network);  // may end with a [limits] table
}

std::string exec_in(const ContextGuest& g, const std::string& guest, const std::string& command) {
  auto r = vunify(g.pool, "exec " + guest + " -- " + command);
  return std::to_string(r.status) + " " + r.out;
}

unique_fd netns_of(const ContextGuest& g, const std::string& guest) {
  auto s = context::read_state(g.pool, guest);
  REQUIRE(s);
  unique_fd fd(::open(("/proc/" + std::to_string(s->pid1) + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC));
  REQUIRE(fd);
  return fd;
}

// A TCP socket of the network namespace `netns` (-1: this one): a socket stays in the
// namespace it was made in, so the test's own code can talk from inside a guest's.
unique_fd tcp_socket_in(int netns) {
  unique_fd home(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (netns >= 0) REQUIRE(::setns(netns, CLONE_NEWNET) == 0);
  unique_fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(::setns(home.get(), CLONE_NEWNET) == 0);
  REQUIRE(s);
  return s;
}

sockaddr_in inet_address(const std::string& ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  REQUIRE(::inet_pton(AF_INET, ip.c_str(), &a.sin_addr) == 1);
  return a;
}

// Sends `bytes` over TCP from namespace `from` to `to_ip` in namespace `to`; returns the
// receiver's rate in Mbit/s, from its first byte to the last.
double transfer_mbit(int from, int to, const std::string& to_ip, size_t bytes) {
  unique_fd listener = tcp_socket_in(to);
  sockaddr_in addr = inet_address(to_ip, 0);
  socklen_t len = sizeof addr;
  REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(listener.get(), 1) == 0);
  REQUIRE(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  unique_fd sender = tcp_socket_in(from);
  timeval timeout{10, 0};
  ::setsockopt(sender.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  REQUIRE(::connect(sender.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  unique_fd receiver(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  REQUIRE(receiver);
  ::setsockopt(receiver.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::thread send([&] {
    std::vector<char> chunk(64 * 1024, 'x');
    for (size_t sent = 0; sent < bytes;) {
      ssize_t n = ::send(sender.get(), chunk.data(), std::min(chunk.size(), bytes - sent), MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    ::shutdown(sender.get(), SHUT_WR);
  });
  std::vector<char> buf(256 * 1024);
  size_t got = 0;
  auto first = std::chrono::steady_clock::now(), last = first;
  for (ssize_t n; (n = ::recv(receiver.get(), buf.data(), buf.size(), 0)) > 0;) {
    if (got == 0) first = std::chrono::steady_clock::now();
    got += static_cast<size_t>(n);
    last = std::chrono::steady_clock::now();
  }
  send.join();
  REQUIRE(got == bytes);
  double seconds = std::chrono::duration<double>(last - first).count();
  return static_cast<double>(got) * 8 / 1e6 / std::max(seconds, 1e-6);
}

// Two isolated guests, `g.name` and `g.name` + "b", with these [network] tables, started.
std::pair<std::string, std::string> start_pair(ContextGuest& g, const std::string& net_a, const std::string& net_b) {
  std::string a = g.name, b = g.name + "b";
  add_net_guest(g, a, "mode = \"isolated\"\n" + net_a);
  add_net_guest(g, b, "mode = \"isolated\"\n" + net_b);
  g.ok("start " + a + " -- /bin/sleep 1000");
  g.ok("start " + b + " -- /bin/sleep 1000");
  return {a, b};
}

std::vector<std::string> link_names() {
  context::Netlink nl;
  std::vector<std::string> out;
  for (const auto& l : context::list_links(nl)) out.push_back(l.name);
  return out;
}

}  // namespace

TEST_CASE("network: isolated guests talk to each other and to the host through vunify0", "[context][network]") {
  VUNIFY_REQUIRE_CONTEXT();
  TestNetns netns;
  ContextGuest g("nia", false);
  auto [a, b] = start_pair(g, "addresses = [\"10.77.0.2/24\", \"fd00:77::2/64\"]\n", "addresses = [\"10.77.0.3/24\"]\n");
  std::string veth_a = context::interface_name("vu-", a), veth_b = context::interface_name("vu-", b);
  auto links = link_names();
  CHECK(std::count(links.begin(), links.end(), "vunify0") == 1);
  CHECK(std::count(links.begin(), links.end(), veth_a) == 1);

  std::string out = exec_in(g, a, "ip -o addr show dev eth0");
  CHECK(out.rfind("0 ", 0) == 0);
  CHECK(out.find("10.77.0.2/24") != std::string::npos);
  CHECK(out.find("fd00:77::2/64") != std::string::npos);
  CHECK(exec_in(g, a, "ping -c1 -W2 10.77.0.3").rfind("0 ", 0) == 0);  // guest -> guest
  CHECK(exec_in(g, a, "ping -c1 -W2 10.77.0.1").rfind("0 ", 0) == 0);  // guest -> host side
  CHECK(exec_in(g, a, "ping6 -c1 -W2 fd00:77::1").rfind("0 ", 0) == 0);
  CHECK(exec_in(g, b, "ping -c1 -W2 10.77.0.2").rfind("0 ", 0) == 0);

  unique_fd ns_a = netns_of(g, a), ns_b = netns_of(g, b);
  CHECK(transfer_mbit(ns_a.get(), ns_b.get(), "10.77.0.3", 1 << 20) > 0);  // TCP guest -> guest
  CHECK(transfer_mbit(-1, ns_a.get(), "10.77.0.2", 1 << 20) > 0);          // host -> guest
  CHECK(transfer_mbit(ns_b.get(), -1, "10.77.0.1", 1 << 20) > 0);          // guest -> host

  auto status = vunify(g.pool, "status " + a + " --json");
  CHECK(status.out.find("\"mode\": \"isolated\"") != std::string::npos);
  CHECK(status.out.find("\"bytes_out\"") != std::string::npos);
  auto usage = context::network_usage(context::read_state(g.pool, a)->network);
  REQUIRE(usage);
  CHECK(usage->bytes_out >= (1 << 20));  // the transfer to b
  CHECK(usage->bytes_in >= (1 << 20));   // the one from the host
  g.ok("stop " + a);
  links = link_names();
  CHECK(std::count(links.begin(), links.end(), veth_a) == 0);
  CHECK(std::count(links.begin(), links.end(), "vunify0") == 1);  // b still uses it
  g.ok("stop " + b);
  CHECK(link_names() == std::vector<std::string>{"lo"});

  // An interface of the guest's veth name that is not vunify's: start refuses, leaves it alone
  // and leaves no bridge.
  {
    context::Netlink nl;
    REQUIRE(context::create_link(nl, veth_a, "ifb"));
  }
  auto r = vunify(g.pool, "start " + a + " -- /bin/sleep 1000");
  INFO(r.out);
  CHECK(r.status != 0);
  CHECK(r.out.find("network interface " + veth_a + " exists already") != std::string::npos);
  CHECK(link_names() == std::vector<std::string>{"lo", veth_a});
  CHECK(!context::read_state(g.pool, a));
}

TEST_CASE("network: rate_out / rate_in hold an isolated guest's TCP throughput, also when changed live",
          "[context][network][bandwidth]") {
  VUNIFY_REQUIRE_CONTEXT();
  TestNetns netns;
  ContextGuest g("nbw", false);
  auto [a, b] = start_pair(g, "addresses = [\"10.78.0.2/24\"]\n[limits]\nnet.rate_out = \"10mbit\"\n", "addresses = [\"10.78.0.3/24\"]\n");
  unique_fd ns_a = netns_of(g, a), ns_b = netns_of(g, b);

  double limited = transfer_mbit(ns_a.get(), ns_b.get(), "10.78.0.3", 2500000);  // ~2 s at 10 Mbit/s
  double free = transfer_mbit(ns_b.get(), ns_a.get(), "10.78.0.2", 20000000);
  INFO("a -> b limited to 10mbit: " << limited << " Mbit/s; b -> a unlimited: " << free << " Mbit/s");
  CHECK(limited <= 11);
  CHECK(limited >= 5);  // the limit, not a stall (loose: the machine is shared)
  CHECK(free > 5 * limited);

  // Live: a's limit moves from out to in.
  g.ok("set " + a + " net.rate_out=max net.rate_in=10mbit");
  std::string toml = read_file(g.pool + "/etc/" + a + ".toml");
  INFO(toml);
  CHECK(toml.find("net.rate_in = \"10mbit\"") != std::string::npos);
  CHECK(toml.find("mode = \"isolated\"") != std::string::npos);  // [network] kept
  g.ok("set " + a + " net.rate_in=10mbit");  // again: the same htb, its class changed in place
  double out_free = transfer_mbit(ns_a.get(), ns_b.get(), "10.78.0.3", 20000000);
  double in_limited = transfer_mbit(ns_b.get(), ns_a.get(), "10.78.0.2", 2500000);
  INFO("after the change: a -> b " << out_free << " Mbit/s, b -> a " << in_limited << " Mbit/s");
  CHECK(in_limited <= 11);
  CHECK(out_free > 5 * in_limited);

  g.ok("set " + a + " net.rate_out=10mbit");  // the IFB again, gone at stop too
  auto bad = vunify(g.pool, "set " + a + " net.rate_out=fast");
  CHECK(bad.status != 0);
  CHECK(bad.out.find("net.rate_out='fast'") != std::string::npos);
  g.ok("stop " + a);
  g.ok("stop " + b);
  CHECK(link_names() == std::vector<std::string>{"lo"});
}

TEST_CASE("network: shared mode narrows binds to the guest's addresses", "[context][network][shared]") {
  VUNIFY_REQUIRE_CONTEXT();
  ContextGuest g("nsh", false);
  add_net_guest(g, g.name, "mode = \"shared\"\naddresses = [\"127.0.0.5\"]\n");
  g.ok("start " + g.name + " -- /bin/sleep 1000");
  auto s = g.state();
  REQUIRE(s);
  std::string cgroup2;
  for (const auto& c : s->cgroups)
    if (c.v2) cgroup2 = c.dir;
  REQUIRE(!cgroup2.empty());

  // A process of the guest (its cgroup2 directory is what the programs are attached to).
  auto report = run_child([&](Reporter& r) {
    unique_fd udp_in(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));  // made outside: on 127.0.0.1
    sockaddr_in in_addr = inet_address("127.0.0.1", 0);
    socklen_t len = sizeof in_addr;
    must(::bind(udp_in.get(), reinterpret_cast<sockaddr*>(&in_addr), sizeof in_addr), "bind udp");
    must(::getsockname(udp_in.get(), reinterpret_cast<sockaddr*>(&in_addr), &len), "getsockname");
    unique_fd tcp_in(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in tcp_addr = inet_address("127.0.0.1", 0);
    must(::bind(tcp_in.get(), reinterpret_cast<sockaddr*>(&tcp_addr), sizeof tcp_addr), "bind tcp");
    must(::listen(tcp_in.get(), 1), "listen");
    must(::getsockname(tcp_in.get(), reinterpret_cast<sockaddr*>(&tcp_addr), &len), "getsockname");
    unique_fd procs(::open((cgroup2 + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC));
    std::string pid = std::to_string(::getpid());
    must(::write(procs.get(), pid.data(), pid.size()), "join the guest's cgroup2 directory");

    auto bound = [&](int family, const std::string& ip) {
      unique_fd sock(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
      sockaddr_storage ss{};
      socklen_t size = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
      ss.ss_family = static_cast<sa_family_t>(family);
      void* where = family == AF_INET ? static_cast<void*>(&reinterpret_cast<sockaddr_in*>(&ss)->sin_addr)
                                      : static_cast<void*>(&reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr);
      ::inet_pton(family, ip.c_str(), where);
      if (::bind(sock.get(), reinterpret_cast<sockaddr*>(&ss), size) != 0) return errno_name(errno);
      ::getsockname(sock.get(), reinterpret_cast<sockaddr*>(&ss), &size);
      char text[INET6_ADDRSTRLEN];
      return std::string(::inet_ntop(family, where, text, sizeof text));
    };
    r.put("bind_other", bound(AF_INET, "127.0.0.6"));
    r.put("bind_loopback", bound(AF_INET, "127.0.0.1"));
    r.put("bind_own", bound(AF_INET, "127.0.0.5"));
    r.put("bind_any", bound(AF_INET, "0.0.0.0"));
    r.put("bind6_any", bound(AF_INET6, "::"));
    r.put("bind6_other", bound(AF_INET6, "::1"));

    unique_fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    must(::connect(client.get(), reinterpret_cast<sockaddr*>(&tcp_addr), sizeof tcp_addr), "connect");
    sockaddr_in local{};
    len = sizeof local;
    ::getsockname(client.get(), reinterpret_cast<sockaddr*>(&local), &len);
    char text[INET_ADDRSTRLEN];
    r.put("connect_source", ::inet_ntop(AF_INET, &local.sin_addr, text, sizeof text));

    unique_fd udp_out(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    must(::sendto(udp_out.get(), "x", 1, 0, reinterpret_cast<sockaddr*>(&in_addr), sizeof in_addr), "sendto");
    char byte;
    len = sizeof local;
    must(::recvfrom(udp_in.get(), &byte, 1, 0, reinterpret_cast<sockaddr*>(&local), &len), "recvfrom");
    r.put("udp_source", ::inet_ntop(AF_INET, &local.sin_addr, text, sizeof text));
  });
  INFO(report.error);
  CHECK(report.get("bind_other") == "EADDRNOTAVAIL");
  CHECK(report.get("bind_loopback") == "EADDRNOTAVAIL");
  CHECK(report.get("bind_own") == "127.0.0.5");
  CHECK(report.get("bind_any") == "127.0.0.5");
  CHECK(report.get("bind6_any") == "::ffff:127.0.0.5");
  CHECK(report.get("bind6_other") == "EADDRNOTAVAIL");
  CHECK(report.get("connect_source") == "127.0.0.5");
  CHECK(report.get("udp_source") == "127.0.0.5");

  // The guest's own processes: busybox nc listens on the wildcard, which becomes 127.0.0.5.
  std::string port = std::to_string(20000 + ::getpid() % 20000);
  auto r = g.sh("nc -l -p " + port + " & sleep 0.3; netstat -ltn; kill %1");
  INFO(r.out);
  CHECK(r.out.find("127.0.0.5:" + port) != std::string::npos);
  g.ok("stop " + g.name);
  CHECK(existing_cgroups(*s).empty());  // and the programs with them
}

TEST_CASE("network: [network] config errors name the file and the key", "[context][network][config]") {
  TempDir dir;
  mkdirs(dir / "etc");
  auto error_of = [&](const std::string& table) {
    write_file(dir / "etc/g.toml", "[network]\n" + table);
    try {
      context::load_config(dir.path(), "g");
    } catch (const os::UserError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  std::string file = dir / "etc/g.toml";
  CHECK(error_of("mode = \"bridge\"\n") == file + ": [network] mode: 'bridge' is not a network mode (none, isolated, shared)");
  CHECK(error_of("speed = 1\n").find(file + ": [network] speed: unknown key") == 0);
  CHECK(error_of("mode = \"isolated\"\naddresses = [\"10.0.0.300/24\"]\n").find(file + ": [network] addresses: '10.0.0.300/24'") == 0);
  CHECK(error_of("mode = \"isolated\"\naddresses = [\"10.0.0.2/33\"]\n").find("prefix length must be 1-32") != std::string::npos);
  CHECK(error_of("mode = \"isolated\"\naddresses = [\"10.0.0.2/24\"]\nrate_in = \"1mbit\"\n").find(file + ": [network] rate_in: bandwidth is a limit: [limits] net.rate_in") == 0);
  CHECK(error_of("mode = \"isolated\"\n").find("needs at least one address") != std::string::npos);
  CHECK(error_of("mode = \"isolated\"\naddresses = [\"10.0.0.1/24\"]\n").find("host-side address") != std::string::npos);
  CHECK(error_of("mode = \"none\"\n") == "no error");
  write_file(dir / "etc/g.toml", "[context]\ncap_add = [\"NET_ADMIN\"]\n[network]\nmode = \"shared\"\naddresses = [\"127.0.0.5\"]\n");
  CHECK_THROWS_WITH(context::load_config(dir.path(), "g"), Catch::Contains("would let the guest reconfigure the host's network"));

  auto ok = [&](const std::string& table) {
    write_file(dir / "etc/g.toml", "[network]\n" + table);
    return context::load_config(dir.path(), "g").network;
  };
  auto n = ok("mode = \"isolated\"\naddresses = [\"10.0.0.2/24\", \"fd00::2/64\"]\n");
  CHECK(n.mode == context::NetworkMode::Isolated);
  REQUIRE(n.addresses.size() == 2);
  CHECK(context::format_cidr(n.addresses[1].gateway()) == "fd00::1/64");
  CHECK(context::parse_rate("1.5mbit") == 1500000);
  CHECK(context::parse_rate("2mbps") == 16000000);
  CHECK(context::format_rate(10000000) == "10mbit");
  CHECK(context::format_rate(0) == "unlimited");
  CHECK(context::parse_rate("unlimited") == 0);
  CHECK(context::load_config(dir.path(), "absent").network.mode == context::NetworkMode::None);
  auto shared = ok("mode = \"shared\"\naddresses = [\"127.0.0.5\"]\n");
  context::ContextConfig cfg;
  cfg.network = shared;
  CHECK((cfg.profile().capabilities & (1ULL << 13)) == 0);  // CAP_NET_RAW: not in shared mode
  cfg.cap_add = {"NET_RAW"};
  CHECK((cfg.profile().capabilities & (1ULL << 13)) != 0);

  CHECK(context::interface_name("vu-", "web1") == "vu-web1");
  std::string long_name = context::interface_name("vu-", "webserver-production");
  CHECK(long_name.size() == 15);
  CHECK(long_name.rfind("vu-webse-", 0) == 0);
  CHECK(long_name != context::interface_name("vu-", "webserver-productioN"));
}

}  // namespace vunify::test
