// Provisioning: guests made from templates (or cloned from guests) without copying file data.
//
// The source tree is walked once into an in-memory plan; each guest replays it: real
// directories (mkdirat), hard links to the store objects (linkat), recreated symlinks, devices
// and fifos, copies of private files, all metadata, directory times last. Per guest, a few
// files are its own: /etc/hostname, /etc/hosts (its 127.0.1.1 line), a fresh /etc/machine-id,
// and every file under /var/log as an empty private copy. Each guest is built in a dot-named
// temp directory in backing/ and renamed into place; its config goes to POOL/etc/NAME.toml.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "os/progress.hpp"
#include "unify/pool.hpp"

namespace vunify::unify {

struct CreateOptions {
  std::string template_name;
  unsigned count = 0;    // 0: one guest called NAME; N: NAME-01 ... NAME-N
  unsigned threads = 0;  // guests built in parallel (0: all cores)
  std::function<void(size_t done, size_t total)> progress;
};

struct CreateReport {
  std::vector<std::string> names;
  uint64_t entries_per_guest = 0;
  uint64_t linked_per_guest = 0;   // files that are links to store objects
  uint64_t private_per_guest = 0;  // files copied or written for the guest
  double seconds = 0;
};

// The names `create` would use: NAME, or NAME-01..NAME-N (at least two digits).
std::vector<std::string> provision_names(const std::string& name, unsigned count);

// Creates guests from a template. Every name is checked before anything is made; a failure
// leaves no guest behind.
CreateReport create_guests(Pool& pool, const std::string& name, const CreateOptions& options);

// Makes DST a copy of guest SRC: shared files stay shared, private files are copied.
CreateReport clone_guest(Pool& pool, const std::string& src, const std::string& dst, const os::Progress& progress = {});

}  // namespace vunify::unify
