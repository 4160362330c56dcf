// Terminals: the context's console (a pty of the guest's own devpts bound onto /dev/console;
// the supervisor copies its output to POOL/log/NAME.console) and the pty of `exec -t`.
#pragma once
#include <termios.h>

#include <optional>

#include "os/unique_fd.hpp"

namespace vunify::context {

struct Pty {
  os::unique_fd master, slave;
};

// A new pty from the devpts mounted at `devpts_dir_fd`'s ptmx (`ptmx_path` opened as is).
Pty open_pty(const char* ptmx_path);
// In the guest's mount tree (before pivot_root): a pty of its devpts bound onto dev/console.
Pty make_console(int root_fd);

// SCM_RIGHTS over a unix socket.
void send_fd(int sock, int fd);
os::unique_fd recv_fd(int sock);

// Copies what `from` has to `to` without blocking on `from`; false at EOF/EIO (hang-up).
bool pump(int from, int to);

// Puts the terminal on `fd` in raw mode for its lifetime (nothing if `fd` is not a terminal).
class RawTerminal {
 public:
  explicit RawTerminal(int fd);
  ~RawTerminal();
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  int fd_;
  std::optional<termios> saved_;
};

// Copies the window size of terminal `from` to `to` (no-op if `from` is not a terminal).
void copy_window_size(int from, int to);

}  // namespace vunify::context
