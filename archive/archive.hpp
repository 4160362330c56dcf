// Inside the archive module: the import (import.cpp, its limits in limits.cpp, the second
// thread that finishes the files in placer.cpp) and the export (export.cpp). module.cpp hands
// them to vunify through api.hpp.
#pragma once
#include <string>

#include "archive/api.hpp"

namespace vunify::archive {

ImportStats import_archive(int in_fd, const std::string& label, const ImportTarget& target, const ImportLimits& limits,
                           const os::Progress& progress);
ExportStats export_tree(int root_fd, const LinkGroups& links, int out_fd, const std::string& compression,
                        const os::Progress& progress);
// Compressor threads for xz and zstd exports: the cores, at least 2 (so that xz always uses its
// multi-threaded block format, whatever the machine) and at most 8 (xz needs ~100 MiB each).
unsigned compression_threads();

}  // namespace vunify::archive
