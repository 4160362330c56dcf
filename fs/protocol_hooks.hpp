// What libfuse 3.14 lacks, added beneath it through fuse_session_custom_io: the hooks see each
// request before libfuse parses it and each reply before the kernel gets it.
// - INIT: offers and accepts kernel passthrough (7.40, fs/passthrough.hpp), mmap of direct-I/O
//   opens, and the extended SETXATTR request (7.33);
// - OPEN/CREATE replies: the passthrough backing id;
// - SETXATTR: the extended request is made the compat one libfuse parses, its setxattr_flags
//   (FUSE_SETXATTR_ACL_KILL_SGID) kept for the handler;
// - TMPFILE (7.37, an O_TMPFILE open): handed to libfuse as the CREATE it mirrors, marked.
// Each daemon thread reads a request and then handles it, so per-request facts travel in
// thread-locals from the read hook to the handler, and from the handler to the writev hook.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "fs/fuse.hpp"

namespace vunify::fs {

struct ProtocolState {
  std::atomic<bool> setxattr_ext_offered{false};
  std::atomic<bool> setxattr_ext{false};  // the kernel sends extended SETXATTR requests
  std::atomic<bool> kernel_gone{false};   // the kernel ended the connection (unmounted)
  // Requests read from the kernel, by opcode (the last slot counts opcodes beyond the table):
  // logged when the daemon stops (bench/view reports them per created file).
  static constexpr size_t kCountedOpcodes = 53;
  std::array<std::atomic<uint64_t>, kCountedOpcodes + 1> requests{};

  void count_request(uint32_t opcode) {
    requests[opcode < kCountedOpcodes ? opcode : kCountedOpcodes].fetch_add(1, std::memory_order_relaxed);
  }
  // "requests served: GETATTR 3, LOOKUP 2, ..." (opcodes in numeric order, total last).
  std::string request_summary() const;
};

// The session's hooks; the session's userdata is the ViewState.
fuse_custom_io protocol_hooks();

// Facts about the request this thread is handling.
bool request_is_tmpfile();    // a CREATE that is an O_TMPFILE open of the directory
bool setxattr_kills_sgid();   // an access ACL set by a caller outside the file's group without CAP_FSETID

// The next OPEN/CREATE reply sent by this thread opens in passthrough mode with this backing id.
class ReplyBackingId {
 public:
  explicit ReplyBackingId(int backing_id);
  ~ReplyBackingId();
  ReplyBackingId(const ReplyBackingId&) = delete;
  ReplyBackingId& operator=(const ReplyBackingId&) = delete;
};

}  // namespace vunify::fs
