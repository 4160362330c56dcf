// A guest's view settings: the [view] table of POOL/etc/NAME.toml, read by `vunify mount` (and by
// `vunify start` when it mounts the view).
//
//   [view]
//   cpus = "0"    # the view daemon's threads run only on these CPUs (default: wherever the
//                 # scheduler puts them); `vunify mount --cpus LIST` overrides it
//   threads = 1   # threads serving requests at most (1..64, default 8); `--threads N` overrides it
//
// Why pin: each FUSE request and its reply wake a thread; when the daemon and the guest's
// process sit on different CPUs every wake-up is an inter-processor interrupt, which on a
// paravirtualized VM also wakes a halted vCPU through the hypervisor (bench/README.md, "The
// churn measurement made repeatable"). On the daemon's CPU the scheduler pulls a guest process
// that waits for it onto the same CPU, so a guest that creates many small files runs faster;
// the cost is that all of the guest's file requests are served on those CPUs. Threads: one
// thread reads and serves fast requests and hands the reading over only before a slow one
// (fs/serve_loop.hpp), so the number bounds how many slow requests are served at once; with 1
// a slow one (a copy-on-write break of a big file, an fsync) holds up every other process of
// the guest.
#pragma once
#include <set>
#include <string>

namespace vunify::fs {

constexpr int kDefaultViewThreads = 8;
constexpr int kMaxViewThreads = 64;

struct ViewSettings {
  std::set<int> cpus;  // empty: not pinned
  int threads = 0;     // 0: not set (kDefaultViewThreads)
};

// Reads the [view] table of `config_path` (defaults if the file or the table is missing).
// Unknown keys and bad values are an os::UserError naming the file and the key; CPUs this
// process may not run on are refused too.
ViewSettings load_view_settings(const std::string& config_path);

// `text` ("0-1,3") as the CPUs of a view, checked against what this process may run on;
// `where` prefixes the os::UserError.
std::set<int> view_cpus(const std::string& text, const std::string& where);
// `text` as a number of worker threads (1..kMaxViewThreads); `where` prefixes the os::UserError.
int view_threads(const std::string& text, const std::string& where);

}  // namespace vunify::fs
