// A static helper copied into test guests (which hold only busybox): an abstract unix socket
// server and client, to check Landlock's scoping of abstract sockets between processes.
//   abstract_socket listen NAME    serve @NAME: answer "ok\n" to every connection, forever
//   abstract_socket connect NAME   connect to @NAME, print what it answers; on failure print
//                                  the errno name and exit 1
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>

namespace {

socklen_t address(const char* name, sockaddr_un& addr) {
  addr = {};
  addr.sun_family = AF_UNIX;
  size_t len = std::strlen(name);
  if (len + 1 >= sizeof addr.sun_path) len = sizeof addr.sun_path - 2;
  std::memcpy(addr.sun_path + 1, name, len);
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + len);
}

int fail(const char* what) {
  std::printf("%s %s\n", what, strerrorname_np(errno));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: abstract_socket listen|connect NAME\n");
    return 2;
  }
  sockaddr_un addr;
  socklen_t len = address(argv[2], addr);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail("socket");
  if (std::strcmp(argv[1], "listen") == 0) {
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd, 8) != 0) return fail("bind");
    for (;;) {
      int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      ssize_t ignored = ::write(c, "ok\n", 3);
      (void)ignored;
      ::close(c);
    }
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) return fail("connect");
  char buf[16];
  ssize_t n = ::read(fd, buf, sizeof buf);
  if (n > 0) std::fwrite(buf, 1, static_cast<size_t>(n), stdout);
  return n > 0 ? 0 : 1;
}
