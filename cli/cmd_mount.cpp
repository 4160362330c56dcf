#include "cli/commands.hpp"

namespace vunify::cli {

// The FUSE view commands (mount, umount) are not built yet.
void add_mount_commands(CLI::App&, Globals&) {}

}  // namespace vunify::cli
