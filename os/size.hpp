// Sizes with units, as the CLI and the guest configuration take them: plain bytes or a number
// with a unit (K, M, G, T, P, E and their KB/KiB forms, all powers of 1024, any case).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vunify::os {

enum class SizeError { None, NotSize, TooLarge };

// The bytes `text` stands for, or nullopt (and why in `error`): not a size, or 2^63 and more.
std::optional<uint64_t> parse_size(std::string_view text, SizeError* error = nullptr);

// The shortest exact form parse_size reads back: 67108864 -> "64M", 1536 -> "1536", 0 -> "0".
std::string format_size(uint64_t bytes);

}  // namespace vunify::os
