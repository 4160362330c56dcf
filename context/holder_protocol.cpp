#include "context/holder_protocol.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "context/state.hpp"
#include "os/error.hpp"

namespace vunify::context {

namespace {

constexpr size_t kMaxFds = 3;
constexpr size_t kMaxMessage = 256 * 1024;  // a request's command line and environment

sockaddr_un address_of(const std::string& path, socklen_t& len) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) throw os::SysError(ENAMETOOLONG, "unix socket path", path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return addr;
}

}  // namespace

std::string holder_socket_path(const std::string& pool_root, const std::string& guest) {
  return run_dir(pool_root) + "/" + guest + ".sock";
}

void send_message(int sock, char type, const std::string& data, const std::vector<int>& fds) {
  std::string packet = type + data;
  iovec iov{packet.data(), packet.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(packet.size())) os::throw_errno("send a message to", "the guest's holder");
}

std::optional<HolderMessage> recv_message(int sock) {
  // The message's size first (a peek with MSG_TRUNC returns the whole datagram's length), so
  // the buffer is as long as the message: a 256 KiB one for every message cost each side
  // 64 page faults and a memset on every start and exec.
  ssize_t size;
  do size = ::recv(sock, nullptr, 0, MSG_PEEK | MSG_TRUNC);
  while (size < 0 && errno == EINTR);
  if (size < 0) os::throw_errno("receive a message from", "the guest's holder");
  std::string buf(static_cast<size_t>(std::clamp<ssize_t>(size, 1, static_cast<ssize_t>(kMaxMessage))), '\0');
  iovec iov{buf.data(), buf.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) os::throw_errno("receive a message from", "the guest's holder");
  HolderMessage m;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      m.fds.emplace_back(fd);
    }
  }
  if (n == 0) return std::nullopt;
  if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) throw os::SysError(EMSGSIZE, "message from", "the guest's holder");
  m.type = buf[0];
  m.data = buf.substr(1, static_cast<size_t>(n) - 1);
  return m;
}

os::unique_fd listen_holder(const std::string& path) {
  os::unique_fd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd) os::throw_errno("socket for", path);
  socklen_t len;
  sockaddr_un addr = address_of(path, len);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) os::throw_errno("remove the stale socket", path);
  mode_t old = ::umask(077);
  int rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len);
  int err = errno;
  ::umask(old);
  if (rc != 0) throw os::SysError(err, "bind", path);
  if (::listen(fd.get(), 16) != 0) os::throw_errno("listen on", path);
  return fd;
}

os::unique_fd connect_holder(const std::string& path) {
  os::unique_fd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd) os::throw_errno("socket for", path);
  socklen_t len;
  sockaddr_un addr = address_of(path, len);
  int rc;
  do rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), len);
  while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    if (errno == ENOENT || errno == ECONNREFUSED) return {};
    os::throw_errno("connect to", path);
  }
  return fd;
}

std::string encode_request(const ExecOptions& o, const Limits& limits) {
  return nlohmann::json{{"tty", o.tty},         {"user", o.user},       {"workdir", o.workdir},
                        {"env", o.env},         {"command", o.command}, {"limits", limits}}
      .dump();
}

ExecOptions decode_request(const std::string& text, Limits& limits) {
  try {
    auto j = nlohmann::json::parse(text);
    ExecOptions o;
    o.tty = j.at("tty").get<bool>();
    o.user = j.at("user").get<std::string>();
    o.workdir = j.at("workdir").get<std::string>();
    o.env = j.at("env").get<std::vector<std::string>>();
    o.command = j.at("command").get<std::vector<std::string>>();
    limits = j.at("limits").get<Limits>();
    return o;
  } catch (const nlohmann::json::exception& e) {
    throw os::UserError(std::string("malformed exec request: ") + e.what());
  }
}

}  // namespace vunify::context
