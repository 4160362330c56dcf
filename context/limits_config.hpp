// The [limits] table of POOL/etc/NAME.toml: reading it, and replacing it in the file's text
// without touching anything else in the file (other tables, comments, order).
#pragma once
#include <string>

#include "context/limit_keys.hpp"

namespace vunify::context {

std::string config_path(const std::string& pool_root, const std::string& guest);

// The guest's limits (none if the file or the table is missing). Unknown keys and bad values
// are an os::UserError naming the file and the key.
Limits load_limits(const std::string& pool_root, const std::string& guest);
// The same from a file's text; `path` is for messages.
Limits parse_limits(const std::string& text, const std::string& path);

// `[limits]` and one line per key, in registry order ("" for no limits).
std::string render_limits(const Limits& limits);
// `text` with its [limits] table (and [limits.*] subtables) replaced by `limits`: the other
// lines stay byte for byte. Throws os::UserError if the result would not read back as exactly
// `limits` with every other table unchanged (limits written some other way, e.g. inline).
std::string replace_limits(const std::string& text, const Limits& limits, const std::string& path);

}  // namespace vunify::context
