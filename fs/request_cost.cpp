#include "fs/request_cost.hpp"

#include <fcntl.h>

#include <cstring>
#include <string_view>

#include "fs/fuse_wire.hpp"
#include "fs/node_table.hpp"

namespace vunify::fs {

namespace {

using namespace wire;

// The start of the request's arguments as a T; false when the request is too short.
template <class T>
bool args_of(const void* request, size_t len, T& out) {
  if (len < sizeof(InHeader) + sizeof(T)) return false;
  std::memcpy(&out, static_cast<const char*>(request) + sizeof(InHeader), sizeof out);
  return true;
}

// Whether the node the kernel names by `nodeid` is a store object. The kernel holds a reference
// to every node a request names, so the node lives at least until this request is answered.
bool shared(uint64_t nodeid) {
  if (nodeid == 0 || nodeid == FUSE_ROOT_ID) return false;  // the barrier: never shared
  return reinterpret_cast<const Node*>(nodeid)->shared.load(std::memory_order_relaxed);
}

// The NUL-terminated name at `offset` of the arguments, "" when there is none.
std::string_view name_at(const void* request, size_t len, size_t offset) {
  size_t start = sizeof(InHeader) + offset;
  if (len <= start) return {};
  const char* p = static_cast<const char*>(request) + start;
  return std::string_view(p, ::strnlen(p, len - start));
}

// UNLINK or RENAME of names that may belong to a link group (their break copies the file).
bool names_group_member(const ViewState& vs, const void* request, size_t len, size_t offset, bool two) {
  std::string_view from = name_at(request, len, offset);
  if (vs.groups.may_be_member(from)) return true;
  return two && vs.groups.may_be_member(name_at(request, len, offset + from.size() + 1));
}

}  // namespace

bool request_may_be_slow(const ViewState& vs, const void* request, size_t len) {
  if (len < sizeof(InHeader)) return false;  // libfuse rejects it
  const auto& h = *static_cast<const InHeader*>(request);
  switch (h.opcode) {
    case kOpLookup: case kOpForget: case kOpBatchForget: case kOpGetattr: case kOpStatx: case kOpReadlink:
    case kOpSymlink: case kOpMknod: case kOpMkdir: case kOpRmdir: case kOpCreate: case kOpTmpfile:
    case kOpRelease: case kOpReleasedir: case kOpOpendir: case kOpStatfs: case kOpGetxattr:
    case kOpListxattr: case kOpAccess: case kOpIoctl: case kOpPoll: case kOpLseek: case kOpBmap: case kOpInit:
    case kOpDestroy: case kOpInterrupt: case kOpFlush: case kOpGetlk: case kOpSetlk: case kOpSetlkw:
      return false;
    case kOpOpen: {
      OpenIn in;
      if (!args_of(request, len, in)) return false;
      bool for_change = (in.flags & O_ACCMODE) != O_RDONLY || (in.flags & O_TRUNC);
      return for_change && shared(h.nodeid);
    }
    case kOpSetattr: {
      SetattrIn in;
      if (!args_of(request, len, in)) return false;
      return (in.valid & kFattrSize) || shared(h.nodeid);
    }
    case kOpSetxattr: case kOpRemovexattr:
      return shared(h.nodeid);
    case kOpLink: {
      LinkIn in;
      return args_of(request, len, in) && shared(in.old_nodeid);
    }
    case kOpUnlink:
      return names_group_member(vs, request, len, 0, false);
    case kOpRename:
      return names_group_member(vs, request, len, sizeof(RenameIn), true);
    case kOpRename2:
      return names_group_member(vs, request, len, sizeof(Rename2In), true);
    case kOpReaddir: case kOpReaddirplus: {
      ReadIn in;
      return !args_of(request, len, in) || in.offset != 0;
    }
    default:  // READ, WRITE, FSYNC, FSYNCDIR, SYNCFS, FALLOCATE, COPY_FILE_RANGE, and the unknown
      return true;
  }
}

}  // namespace vunify::fs
