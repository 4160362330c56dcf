#include "context/init.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "os/error.hpp"

namespace vunify::context {

extern "C" const char vunify_init_blob[];
extern "C" const char vunify_init_blob_end[];

os::unique_fd sealed_init() {
  os::unique_fd mem(::memfd_create("vunify-init", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!mem) os::throw_errno("memfd_create", "vunify-init");
  size_t size = static_cast<size_t>(vunify_init_blob_end - vunify_init_blob);
  for (size_t off = 0; off < size;) {
    ssize_t n = ::write(mem.get(), vunify_init_blob + off, size - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) os::throw_errno("write vunify-init into", "memfd:vunify-init");
    off += static_cast<size_t>(n);
  }
  if (::fcntl(mem.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0)
    os::throw_errno("seal", "memfd:vunify-init");
  return mem;
}

}  // namespace vunify::context
