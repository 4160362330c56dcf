#include "context/console.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "context/mounts.hpp"
#include "os/error.hpp"

namespace vunify::context {

Pty open_pty(const char* ptmx_path) {
  Pty p;
  p.master.reset(::open(ptmx_path, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!p.master) os::throw_errno("open", ptmx_path);
  int unlock = 0;
  if (::ioctl(p.master.get(), TIOCSPTLCK, &unlock) != 0) os::throw_errno("unlock pty of", ptmx_path);
  p.slave.reset(::ioctl(p.master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!p.slave) os::throw_errno("open the peer of", ptmx_path);
  return p;
}

Pty make_console(int root_fd) {
  os::unique_fd ptmx = open_target(root_fd, "dev/pts/ptmx", false);
  Pty p = open_pty(fd_link(ptmx.get()).c_str());
  termios t;
  if (::tcgetattr(p.slave.get(), &t) == 0) {
    t.c_oflag &= ~static_cast<tcflag_t>(ONLCR);  // the log gets \n, not \r\n
    ::tcsetattr(p.slave.get(), TCSANOW, &t);
  }
  os::unique_fd console = open_target(root_fd, "dev/console", true, true);
  if (::mount(fd_link(p.slave.get()).c_str(), fd_link(console.get()).c_str(), nullptr, MS_BIND, nullptr) != 0)
    os::throw_errno("bind the console pty on", "/dev/console");
  return p;
}

namespace {

// One byte with room for one fd beside it: the message send_fd and recv_fd exchange.
struct FdMessage {
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  FdMessage() {
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
  }
  FdMessage(const FdMessage&) = delete;
  FdMessage& operator=(const FdMessage&) = delete;
};

}  // namespace

void send_fd(int sock, int fd) {
  FdMessage m;
  cmsghdr* c = CMSG_FIRSTHDR(&m.msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  if (::sendmsg(sock, &m.msg, MSG_NOSIGNAL) != 1) os::throw_errno("pass a file descriptor", "");
}

os::unique_fd recv_fd(int sock) {
  FdMessage m;
  ssize_t n;
  do n = ::recvmsg(sock, &m.msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  cmsghdr* c = n > 0 ? CMSG_FIRSTHDR(&m.msg) : nullptr;
  if (!c || c->cmsg_type != SCM_RIGHTS) return {};
  int fd;
  std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return os::unique_fd(fd);
}

bool pump(int from, int to) {
  char buf[16384];
  ssize_t n = ::read(from, buf, sizeof buf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
  if (n <= 0) return false;
  for (ssize_t off = 0; off < n;) {
    ssize_t w = ::write(to, buf + off, static_cast<size_t>(n - off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return true;  // the reader went away: drop the output, keep the source drained
    off += w;
  }
  return true;
}

RawTerminal::RawTerminal(int fd) : fd_(fd) {
  termios t;
  if (::tcgetattr(fd, &t) != 0) return;
  saved_ = t;
  ::cfmakeraw(&t);
  ::tcsetattr(fd, TCSANOW, &t);
}

RawTerminal::~RawTerminal() {
  if (saved_) ::tcsetattr(fd_, TCSANOW, &*saved_);
}

void copy_window_size(int from, int to) {
  winsize ws;
  if (::ioctl(from, TIOCGWINSZ, &ws) == 0) ::ioctl(to, TIOCSWINSZ, &ws);
}

}  // namespace vunify::context
