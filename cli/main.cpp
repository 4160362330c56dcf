// vunify: unify Linux guest trees into a shared store and present them safely.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <exception>
#include <filesystem>

#include "cli/commands.hpp"
#include "os/error.hpp"
#include "unify/pool.hpp"

int main(int argc, char** argv) {
  using namespace vunify;
  cli::Globals globals;
  globals.pool = unify::Pool::default_root();
  CLI::App app{"vunify: many Linux guests, one copy of their files.\n"
               "Unifies identical files of guest trees into a hash-deduplicated store of immutable objects."};
  app.set_version_flag("--version", "vunify 0.1.0");
  app.option_defaults()->always_capture_default();
  // Absolute from here on: the supervisor, the view's daemon and the holder run with "/" as
  // their working directory, so a relative pool would name another place for them.
  app.add_option("--pool", globals.pool, "Pool directory (env VUNIFY_POOL)")
      ->envname("VUNIFY_POOL")
      ->transform(CLI::Validator(
          [](std::string& value) {
            if (value.empty()) return std::string("the pool's path is empty");
            std::error_code ec;
            auto absolute = std::filesystem::absolute(value, ec);
            if (ec) return fmt::format("cannot make {} an absolute path: {}", value, ec.message());
            // "." parts go; ".." parts stay (after a symlink, dropping one would name another place)
            bool dotdot = false;
            for (const auto& part : absolute) dotdot |= part == "..";
            value = (dotdot ? absolute : absolute.lexically_normal()).string();
            if (value.size() > 1 && value.back() == '/') value.pop_back();
            return std::string();
          },
          ""))
      ->type_name("DIR");
  app.require_subcommand(1);
  app.fallthrough();
  std::string word = cli::subcommand_word(argc, argv);
  if (!word.empty() && !cli::is_command(word)) {
    fmt::print(stderr, "vunify: unknown command '{}' (vunify --help lists them)\n", word);
    return 2;
  }
  cli::add_commands(app, globals, word);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every parse error is bad input (2), as the README says.
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const cli::ExitStatus& e) {
    return e.code;
  } catch (const os::UserError& e) {
    fmt::print(stderr, "vunify: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "vunify: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
