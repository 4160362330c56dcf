// The unify engine: walk guest trees, find files with equal keys, prove equal bytes,
// replace them by hard links to store objects (temp link + rename), restore directory times.
// A guest's own hard links (all links of an inode inside one guest) are one candidate: every
// path of the group becomes a link to the object, and the group is recorded in POOL/links
// (unify/link_groups.hpp) before any of them changes.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "os/progress.hpp"
#include "unify/hash.hpp"
#include "unify/pool.hpp"

namespace vunify::unify {

struct UnifyOptions {
  std::vector<std::string> guests;  // empty: all guests
  bool ignore_mtime = false;        // linked files take the object's mtime (as vhashify)
  int64_t min_size = 1;             // smaller files are left alone
  std::vector<std::string> excludes;  // globs: with '/', matched against the path from the
                                      // guest root; without, against the file name
  bool dry_run = false;
  unsigned threads = 0;  // readers (hash + compare) and walkers; 0: max(16, twice the cores)
  os::Progress progress;  // receives one-line progress updates

  // Test hooks. hash_hook maps each content hash before grouping (forces collisions);
  // step_hook is called before each change to the disk, numbered from 1.
  std::function<Hash128(const Hash128&)> hash_hook;
  std::function<void(std::string_view phase)> phase_hook;
  std::function<void(uint64_t step)> step_hook;
};

struct UnifyReport {
  uint64_t guests = 0;
  uint64_t files_scanned = 0;      // regular files seen
  uint64_t already_shared = 0;     // already links to store objects
  uint64_t skipped_hardlinks = 0;  // hard links to files outside the guest (left alone)
  uint64_t link_groups = 0;        // guest-internal hard-link groups unified as one file
  uint64_t skipped_small = 0, skipped_excluded = 0;
  uint64_t files_read = 0, bytes_read = 0;  // files hashed this run
  uint64_t cached_hashes = 0;               // hashes taken from the index
  uint64_t files_compared = 0;
  uint64_t collisions = 0;  // equal hashes, different bytes
  uint64_t files_linked = 0, objects_created = 0, bytes_saved = 0;
  uint64_t changed_during_run = 0;
  double seconds = 0;
  // phases: walk; read (hash + byte compare, one read per file); adopt new objects; link
  double scan_seconds = 0, read_seconds = 0, store_seconds = 0, link_seconds = 0;
  std::vector<std::string> warnings;
};

UnifyReport unify(Pool& pool, const UnifyOptions& options);

// True if `rel` (path from the guest root) matches one of the exclude globs.
bool excluded(const std::vector<std::string>& globs, const std::string& rel);

}  // namespace vunify::unify
