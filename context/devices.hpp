// The guest's /dev: a fresh tmpfs with the nodes of Docker's allowlist (null zero full tty random
// urandom), its own devpts instance with ptmx, shm, and the fd/stdin/stdout/stderr links. The
// console (console.hpp) is bound onto /dev/console afterwards.
#pragma once

namespace vunify::context {

// Builds ROOT/dev (`root_fd` is the new root). Throws SysError.
void make_dev(int root_fd);

}  // namespace vunify::context
