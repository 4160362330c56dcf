// Which groups of subcommands a command line needs (commands.hpp).
#include <algorithm>
#include <array>
#include <cstring>
#include <string_view>

#include "cli/commands.hpp"

namespace vunify::cli {

namespace {

struct Group {
  std::array<std::string_view, 8> words;  // the top-level subcommands it adds or extends ("" pads)
  void (*add)(CLI::App&, Globals&);
};

// In the order of `vunify --help`. `guest` and `template` are in two groups each:
// cmd_template.cpp adds `guest create` and `guest clone` to the `guest` of cmd_guest.cpp, so
// it needs that group registered first.
const std::array<Group, 8> kGroups{{
    {{"init"}, add_init_command},
    {{"guest", "template"}, add_guest_commands},
    {{"unify"}, add_unify_command},
    {{"stat", "gc", "verify", "fsck"}, add_store_commands},
    {{"mount", "umount"}, add_mount_commands},
    {{"template", "guest"}, add_template_commands},
    {{"start", "stop", "restart", "exec", "enter", "ps", "status", "top"}, add_context_commands},
    {{"set"}, add_limits_command},
}};

bool names(const Group& group, const std::string& word) {
  return !word.empty() && std::find(group.words.begin(), group.words.end(), word) != group.words.end();
}

}  // namespace

std::string subcommand_word(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const char* arg = argv[i];
    if (std::strcmp(arg, "--pool") == 0) {
      ++i;
      continue;
    }
    if (std::strncmp(arg, "--pool=", 7) == 0) continue;
    return arg[0] == '-' ? "" : arg;
  }
  return "";
}

bool is_command(const std::string& word) {
  return std::any_of(kGroups.begin(), kGroups.end(), [&](const Group& group) { return names(group, word); });
}

void add_commands(CLI::App& app, Globals& g, const std::string& word) {
  bool known = is_command(word);
  for (const auto& group : kGroups)
    if (!known || names(group, word)) group.add(app, g);
}

}  // namespace vunify::cli
