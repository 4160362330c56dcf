// Reading the pool's TOML files (POOL/etc/NAME.toml) with the errors every reader gives: a
// syntax error names the file and line, a section that is not a table is refused, and each key
// is handed on with the "FILE: [SECTION] KEY" prefix its own errors start with.
#pragma once

#include <optional>
#include <string>

#include <toml++/toml.h>

namespace vunify::unify {

// `text` parsed as TOML; a syntax error is an os::UserError "PATH: what (line N)".
toml::table parse_toml(const std::string& text, const std::string& path);

// The file at `path` parsed as above; nullopt when there is no such file.
std::optional<toml::table> parse_toml_file(const std::string& path);

// Calls apply(key, value, "PATH: [SECTION] KEY") for each key of [section], if there is one.
template <class Apply>
void for_each_key(const toml::table& doc, const std::string& path, const char* section, Apply apply);

void refuse_non_table(const std::string& path, const char* section);  // throws os::UserError

template <class Apply>
void for_each_key(const toml::table& doc, const std::string& path, const char* section, Apply apply) {
  const toml::node* table = doc.get(section);
  if (!table) return;
  if (!table->is_table()) refuse_non_table(path, section);
  for (const auto& [key, value] : *table->as_table()) {
    std::string k(key.str());
    apply(k, value, path + ": [" + section + "] " + k);
  }
}

}  // namespace vunify::unify
