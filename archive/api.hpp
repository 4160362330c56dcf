// The interface between vunify and its archive module, vunify-archive.so (this folder): the
// template archive code and libarchive, with everything libarchive brings (xml2, ICU, nettle,
// five compressors), are loaded only by `template import` and `template export`, not by every
// vunify process (bench/README.md, bench/context). The CLI finds the module with
// os::load_module and calls vunify_archive_api(); unify/archive.cpp is its side of this.
//
// Both sides are built from one tree by one compiler (Api::compiler is checked), so C++ types
// pass by reference. No exception crosses: the CLI has its own C++ runtime (libstdc++ linked
// statically), the module another, so each side catches everything at its edge and hands an
// Error over, which the other side throws again (same type, message, errno and path).
#pragma once
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "os/error.hpp"
#include "os/progress.hpp"
#include "unify/hash.hpp"

namespace vunify::archive {

// Changes whenever anything in this file does.
inline constexpr uint32_t kApiVersion = 1;
inline constexpr const char* kFactory = "vunify_archive_api";

// Paths (relative to the template root) that are one file in the original tree.
using LinkGroups = std::vector<std::vector<std::string>>;

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

struct ExportStats {
  uint64_t entries = 0, bytes = 0;
  uint64_t skipped_sockets = 0;  // sockets have no archive type: left out, as tar does
};

// An exception on its way across the interface.
struct Error {
  enum class Kind { none, user, sys, other };
  Kind kind = Kind::none;
  int err = 0;          // Kind::sys: errno
  std::string message;  // what()
  std::string path;     // Kind::sys: the path
  explicit operator bool() const { return kind != Kind::none; }
};

// Where an import puts what it extracts: the template being built (TemplateBuilder).
struct ImportTarget {
  int root_fd = -1;   // the (empty) template root
  LinkGroups* links;  // hard-link groups found are appended here
  void* ctx;
  // Makes the regular file `fd` (its final content, metadata and xattrs set; `content` its
  // XXH3-128; `has_xattrs` whether it was given any) a link to a store object, as `name` in
  // `dirfd`; `rel` its path in the template. Called on the import's second thread, one call at
  // a time. False with *error set if it failed.
  bool (*place)(void* ctx, int fd, const unify::Hash128& content, bool has_xattrs, int dirfd, const std::string& name,
                const std::string& rel, Error* error);
};

struct Api {
  uint32_t version;      // kApiVersion of the module's build
  const char* compiler;  // __VERSION__ of the module's build
  // Reads the archive on `in_fd` (tar, pax, cpio, zip, 7z, iso9660, xar; gzip/xz/zstd/bzip2/
  // lz4...) into the target's root; `label` names the input in messages. A bad or hostile
  // archive is a Kind::user error naming the entry; the caller removes the partial tree.
  ImportStats (*import_archive)(int in_fd, const std::string& label, const ImportTarget& target, const ImportLimits& limits,
                                const os::Progress& progress, Error* error);
  // Writes the tree at `root_fd` as a reproducible pax archive on `out_fd` (see unify/archive.hpp).
  ExportStats (*export_tree)(int root_fd, const LinkGroups& links, int out_fd, const std::string& compression,
                             const os::Progress& progress, Error* error);
};

// The module's one exported symbol (kFactory).
using Factory = const Api* (*)();

// The exception being handled, as an Error (call inside a catch block).
inline Error current_error() {
  Error e;
  try {
    throw;
  } catch (const os::UserError& x) {
    e.kind = Error::Kind::user;
    e.message = x.what();
  } catch (const os::SysError& x) {
    e.kind = Error::Kind::sys;
    e.err = x.err();
    e.path = x.path();
    e.message = x.what();
  } catch (const std::exception& x) {
    e.kind = Error::Kind::other;
    e.message = x.what();
  } catch (...) {
    e.kind = Error::Kind::other;
    e.message = "unknown error in the archive module";
  }
  return e;
}

// Throws the exception an Error stands for.
[[noreturn]] inline void throw_error(const Error& e) {
  switch (e.kind) {
    case Error::Kind::user: throw os::UserError(e.message);
    case Error::Kind::sys: throw os::SysError::with_message(e.err, e.path, e.message);
    default: throw std::runtime_error(e.message);
  }
}

}  // namespace vunify::archive
