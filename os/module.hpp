// vunify's own shared modules (the archive module, archive/): looked for next to the running
// executable, then in the install layout's module directory relative to it (../lib/vunify from
// bin/; the build tree has the same layout: build/cli/ and build/lib/vunify/).
#pragma once
#include <string>

namespace vunify::os {

// Loads `file` (e.g. "vunify-archive.so") and returns the address of its `symbol`. The module
// stays loaded for the rest of the process. A module found nowhere, one that does not load
// (e.g. a library it needs is missing) or has no `symbol` throws std::runtime_error naming
// every path looked at.
void* load_module_symbol(const std::string& file, const char* symbol);

}  // namespace vunify::os
