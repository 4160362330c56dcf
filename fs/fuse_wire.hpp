// The pieces of the FUSE wire protocol (linux/fuse.h) that the daemon reads or patches beneath
// libfuse 3.14, including protocol 7.33-7.40 fields that Debian 12's headers lack.
#pragma once
#include <sys/ioctl.h>

#include <cstddef>
#include <cstdint>

namespace vunify::fs::wire {

enum Opcode : uint32_t {
  kOpLookup = 1, kOpForget = 2, kOpGetattr = 3, kOpSetattr = 4, kOpReadlink = 5, kOpSymlink = 6,
  kOpMknod = 8, kOpMkdir = 9, kOpUnlink = 10, kOpRmdir = 11, kOpRename = 12, kOpLink = 13, kOpOpen = 14,
  kOpRead = 15, kOpWrite = 16, kOpStatfs = 17, kOpRelease = 18, kOpFsync = 20, kOpSetxattr = 21,
  kOpGetxattr = 22, kOpListxattr = 23, kOpRemovexattr = 24, kOpFlush = 25, kOpInit = 26, kOpOpendir = 27,
  kOpReaddir = 28, kOpReleasedir = 29, kOpFsyncdir = 30, kOpGetlk = 31, kOpSetlk = 32, kOpSetlkw = 33,
  kOpAccess = 34, kOpCreate = 35, kOpInterrupt = 36, kOpBmap = 37, kOpDestroy = 38, kOpIoctl = 39,
  kOpPoll = 40, kOpNotifyReply = 41, kOpBatchForget = 42, kOpFallocate = 43, kOpReaddirplus = 44,
  kOpRename2 = 45, kOpLseek = 46, kOpCopyFileRange = 47, kOpSyncfs = 50,
  kOpTmpfile = 51,  // 7.37: same request and reply layout as CREATE
  kOpStatx = 52,
};

constexpr uint32_t kInitSetxattrExt = 1u << 29;         // FUSE_SETXATTR_EXT (7.33)
constexpr uint32_t kInitExt = 1u << 30;                 // flags2 is valid
constexpr uint32_t kFlags2DirectIoAllowMmap = 1u << 4;  // FUSE_DIRECT_IO_ALLOW_MMAP = 1ULL << 36
constexpr uint32_t kFlags2Passthrough = 1u << 5;        // FUSE_PASSTHROUGH = 1ULL << 37 (7.40)
constexpr uint32_t kFopenPassthrough = 1u << 7;
constexpr uint32_t kSetxattrAclKillSgid = 1u << 0;

struct InHeader {
  uint32_t len, opcode;
  uint64_t unique, nodeid;
  uint32_t uid, gid, pid;
  uint16_t total_extlen, padding;
};
// The start of some requests' arguments (what follows the InHeader).
struct SetattrIn {
  uint32_t valid, padding;
  uint64_t fh, size;
};
constexpr uint32_t kFattrSize = 1u << 3;
struct OpenIn {
  uint32_t flags, open_flags;
};
struct LinkIn {
  uint64_t old_nodeid;  // then the new name
};
struct RenameIn {
  uint64_t new_dir;  // then the old and the new name
};
struct Rename2In {
  uint64_t new_dir;
  uint32_t flags, padding;  // then the old and the new name
};
struct ReadIn {  // READ, READDIR, READDIRPLUS
  uint64_t fh, offset;
  uint32_t size;
};
struct OutHeader {
  uint32_t len;
  int32_t error;
  uint64_t unique;
};
struct InitIn {
  uint32_t major, minor, max_readahead, flags, flags2;
};
struct InitOut {
  uint32_t major, minor, max_readahead, flags;
  uint16_t max_background, congestion_threshold;
  uint32_t max_write, time_gran;
  uint16_t max_pages, map_alignment;
  uint32_t flags2, max_stack_depth;
};
struct OpenOut {
  uint64_t fh;
  uint32_t open_flags;
  int32_t backing_id;
};
struct SetxattrInExt {
  uint32_t size, flags, setxattr_flags, padding;
};
constexpr size_t kSetxattrInCompat = 8;  // size, flags: what the kernel sends without SETXATTR_EXT

struct BackingMap {
  int32_t fd;
  uint32_t flags;
  uint64_t padding;
};
constexpr unsigned long kIocBackingOpen = _IOW(229, 1, BackingMap);
constexpr unsigned long kIocBackingClose = _IOW(229, 2, uint32_t);

}  // namespace vunify::fs::wire
