#include "cli/commands.hpp"

namespace vunify::cli {

// Template and provisioning commands are not built yet.
void add_template_commands(CLI::App&, Globals&) {}

}  // namespace vunify::cli
