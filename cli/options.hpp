// Option helpers shared by the subcommands: sizes with units, "names or --all".
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace vunify::cli {

// Transform for size options: plain bytes or a number with a unit (K, M, G, T, P, E and their
// KB/KiB forms, all powers of 1024, any case). A bad value fails with a one-line message.
CLI::Validator size_value();

// Throws UserError unless exactly one of `names` and `all` is given.
void check_names_or_all(const std::vector<std::string>& names, bool all, std::string_view what);

}  // namespace vunify::cli
