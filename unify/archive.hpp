// Template archives through libarchive: a streaming, fd-relative import that trusts nothing in
// the archive (archive_import.cpp; its limits in archive_limits.cpp, the second thread that
// stores the files in archive_placer.cpp), and a reproducible pax export (archive_export.cpp).
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "os/progress.hpp"
#include "unify/templates.hpp"

namespace vunify::unify {

struct ImportLimits {
  uint64_t max_bytes = 64ULL << 30;     // total size of all files (logical, holes included)
  uint64_t max_entries = 2'000'000;     // entries in the archive
  double max_ratio = 200;               // file data bytes per archive byte read
  uint64_t ratio_floor = 64ULL << 20;   // the ratio is only checked past this much data
  uint64_t reserve_bytes = 256ULL << 20;  // free space to leave on the pool filesystem
  // Device nodes: by default only the standard pseudo-devices a container runtime creates
  // anyway (null zero full random urandom tty console ptmx); any other (disks, /dev/mem)
  // needs allow_devices.
  bool allow_devices = false;
};

struct ImportStats {
  uint64_t entries = 0, files = 0, dirs = 0, symlinks = 0, hardlinks = 0, nodes = 0;
  uint64_t bytes = 0;  // logical file bytes
  uint64_t archive_bytes = 0;
};

// Reads the archive on `in_fd` (tar, pax, cpio, zip, 7z, iso9660; gzip/xz/zstd/bzip2/lz4...)
// into the builder's (empty) root. `label` names the input in messages. A bad or hostile
// archive throws UserError naming the entry; the caller removes the partial tree.
ImportStats import_archive(int in_fd, const std::string& label, TemplateBuilder& builder, const ImportLimits& limits,
                           const os::Progress& progress = {});

struct ExportStats {
  uint64_t entries = 0, bytes = 0;
  uint64_t skipped_sockets = 0;  // sockets have no archive type: left out, as tar does
};

// Writes the tree at `root_fd` as a pax archive on `out_fd`: entries sorted, numeric owners,
// mtime in ns, xattrs (incl. ACLs and capabilities as raw xattrs), hard-link groups, sparse
// files; no atime/ctime (sockets are left out), so the same tree always gives the same bytes. `compression`: "",
// "gzip", "xz", "zstd" or "bzip2"; xz and zstd compress on several threads (compression_threads()),
// in a block layout that does not depend on the thread count, so the bytes stay the same.
ExportStats export_tree(int root_fd, const LinkGroups& links, int out_fd, const std::string& compression,
                        const os::Progress& progress = {});
// Compressor threads for xz and zstd exports: the cores, at least 2 (so that xz always uses its
// multi-threaded block format, whatever the machine) and at most 8 (xz needs ~100 MiB each).
unsigned compression_threads();

}  // namespace vunify::unify
