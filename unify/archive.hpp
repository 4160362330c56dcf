// Template archives: a streaming, fd-relative import that trusts nothing in the archive, and a
// reproducible pax export. The code and libarchive live in the archive module (archive/,
// vunify-archive.so), loaded by these two functions on first use (archive.cpp): a module that
// is missing or does not load is an error naming the paths looked at.
#pragma once
#include <cstdint>
#include <string>

#include "archive/api.hpp"
#include "os/progress.hpp"
#include "unify/templates.hpp"

namespace vunify::unify {

using archive::ExportStats;
using archive::ImportLimits;
using archive::ImportStats;

// Reads the archive on `in_fd` (tar, pax, cpio, zip, 7z, iso9660; gzip/xz/zstd/bzip2/lz4...)
// into the builder's (empty) root. `label` names the input in messages. A bad or hostile
// archive throws UserError naming the entry; the caller removes the partial tree.
ImportStats import_archive(int in_fd, const std::string& label, TemplateBuilder& builder, const ImportLimits& limits,
                           const os::Progress& progress = {});

// Writes the tree at `root_fd` as a pax archive on `out_fd`: entries sorted, numeric owners,
// mtime in ns, xattrs (incl. ACLs and capabilities as raw xattrs), hard-link groups, sparse
// files; no atime/ctime (sockets are left out), so the same tree always gives the same bytes. `compression`: "",
// "gzip", "xz", "zstd" or "bzip2"; xz and zstd compress on several threads (the cores, at least
// 2 and at most 8), in a block layout that does not depend on the thread count, so the bytes
// stay the same.
ExportStats export_tree(int root_fd, const LinkGroups& links, int out_fd, const std::string& compression,
                        const os::Progress& progress = {});

}  // namespace vunify::unify
