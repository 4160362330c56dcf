// What `vunify exec` and a guest's holder (holder.hpp) say to each other over POOL/run/NAME.sock
// (a SOCK_SEQPACKET unix socket, mode 0600, outside every guest's root): one message per packet,
// a type byte, a payload, and up to three fds (SCM_RIGHTS).
//   exec -> holder  'R' the request (ExecOptions and [limits] as JSON) + the caller's stdin, stdout, stderr
//                       (none with -t)
//   holder -> exec  'P' the command's pidfd (signals are forwarded through it)
//   command -> exec 'T' the master of its pty (-t), 'E' why it could not run
//   holder -> exec  'X' its exit status (decimal text: 128+N if killed by signal N), last
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "context/limit_keys.hpp"
#include "context/runtime.hpp"
#include "os/unique_fd.hpp"

namespace vunify::context {

struct HolderMessage {
  char type = 0;
  std::string data;
  std::vector<os::unique_fd> fds;
};

// POOL/run/NAME.sock
std::string holder_socket_path(const std::string& pool_root, const std::string& guest);

// Sends one message (fds are duplicated by the kernel, not closed). Throws SysError.
void send_message(int sock, char type, const std::string& data, const std::vector<int>& fds = {});
// The next message; nullopt at EOF (the peer closed). Throws SysError.
std::optional<HolderMessage> recv_message(int sock);

// A listening socket at `path` (a stale one is replaced), only root may connect.
os::unique_fd listen_holder(const std::string& path);
// Connects to the holder at `path`; empty if nobody listens there.
os::unique_fd connect_holder(const std::string& path);

// The command's options and the guest's current [limits] (the holder cannot read the pool).
std::string encode_request(const ExecOptions& options, const Limits& limits);
// Throws os::UserError on a malformed request.
ExecOptions decode_request(const std::string& text, Limits& limits);

}  // namespace vunify::context
