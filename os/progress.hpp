// Progress of a long operation, as one-line reports ("reading: 1200/5000 files") handed to
// whoever shows them; empty when nobody asked. The receiver rate-limits (cli/progress.hpp),
// so a caller only avoids formatting a line for every item (report every so many items).
#pragma once
#include <functional>
#include <string>

namespace vunify::os {

using Progress = std::function<void(const std::string& line)>;

}  // namespace vunify::os
