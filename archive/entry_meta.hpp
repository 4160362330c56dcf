// Internal to the template archive code: what import and export share about libarchive entries
// and their metadata.
#pragma once
#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <cstddef>
#include <memory>
#include <string>

#include "os/xattrs.hpp"

namespace vunify::archive {

using ArchivePtr = std::unique_ptr<struct archive, int (*)(struct archive*)>;

// kZeroChunk zero bytes: for holes (sparse files) that are hashed or written out.
constexpr size_t kZeroChunk = 1 << 16;
const char* zeros();

// The entry's mode, owner, times (atime = mtime when the archive has none), rdev and size.
struct stat entry_stat(archive_entry* e);

// The entry's xattrs, sorted by name, with its ACLs as system.posix_acl_* in the kernel's
// encoding; vunify's own markers are dropped.
os::Xattrs entry_xattrs(archive_entry* e);

// "archive LABEL: entry 'ENTRY': WHY; nothing was imported".
[[noreturn]] void reject(const std::string& label, const std::string& entry, const std::string& why);

}  // namespace vunify::archive
