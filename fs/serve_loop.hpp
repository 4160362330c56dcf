// The view daemon's request loop: leader/followers over one /dev/fuse session, in place of
// libfuse's fuse_session_loop_mt.
//
// With libfuse's loop every idle worker blocks in read(/dev/fuse), and the kernel hands each
// request to the reader that has waited longest: successive requests land on different, cold
// threads, each a wake-up (on this paravirtualized VM about as costly as the request itself,
// bench/README.md "Round trips on this VM"). Here one thread at a time, the leader, reads the
// device. After reading a request it asks `may_be_slow`:
// - no: it serves the request itself and reads again (no other thread is woken);
// - yes: it first makes another thread the leader (an idle follower, woken through a condition
//   variable, or a new thread while fewer than `max_threads` exist), then serves the request
//   and afterwards becomes a follower (or the leader again if there is none). So a slow request
//   (a copy-on-write break, an fsync) holds up nobody else. With all `max_threads` busy nobody
//   reads until one is done, as with libfuse's loop. Threads are started on demand and kept.
// With max_threads 1 it is a plain single-threaded loop (every request served in turn).
//
// Each request is read and served by the same thread (fs/protocol_hooks.hpp passes facts from
// the read hook to the handler in thread-locals). The loop ends when the kernel ends the
// connection (unmount: read fails with ENODEV) or fuse_session_exit is called (the exit
// signals of fuse_set_signal_handlers): every thread finishes the request it serves, wakes and
// exits, and the calling thread returns after joining them. Only the leader may take SIGHUP,
// SIGINT and SIGTERM (the others block them), so such a signal interrupts the leader's read.
#pragma once
#include <cstddef>
#include <functional>

#include "fs/fuse.hpp"

namespace vunify::fs {

using RequestFilter = std::function<bool(const void* request, size_t len)>;

// Serves `se` on the calling thread and up to max_threads - 1 more. Returns 0 when the session
// ended (unmount, exit signal) or a negative errno when reading the device failed.
int serve_requests(fuse_session* se, int max_threads, const RequestFilter& may_be_slow);

}  // namespace vunify::fs
