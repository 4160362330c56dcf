#include "os/module.hpp"

#include <dlfcn.h>
#include <fmt/format.h>
#include <limits.h>
#include <unistd.h>

#include <stdexcept>
#include <vector>

#ifndef VUNIFY_MODULE_DIR_FROM_BIN
#error "VUNIFY_MODULE_DIR_FROM_BIN (the module directory relative to the executable's) must be defined"
#endif

namespace vunify::os {

namespace {

// The directory of the running executable ("" if unknown).
std::string exe_dir() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  std::string path(buf, static_cast<size_t>(n));
  return path.substr(0, path.rfind('/'));
}

}  // namespace

void* load_module_symbol(const std::string& file, const char* symbol) {
  std::string dir = exe_dir();
  if (dir.empty()) throw std::runtime_error(fmt::format("cannot load {}: /proc/self/exe is unreadable", file));
  std::vector<std::string> paths = {dir + "/" + file, dir + "/" VUNIFY_MODULE_DIR_FROM_BIN "/" + file};
  std::string failures;
  for (const auto& path : paths) {
    if (::access(path.c_str(), F_OK) != 0) {
      failures += fmt::format("{}{}: not found", failures.empty() ? "" : "; ", path);
      continue;
    }
    // RTLD_NODELETE: threads and thread-local data of the module may outlive any handle.
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!handle) {
      const char* why = ::dlerror();
      failures += fmt::format("{}{}", failures.empty() ? "" : "; ", why ? why : path + ": cannot be loaded");
      continue;
    }
    if (void* sym = ::dlsym(handle, symbol)) return sym;
    failures += fmt::format("{}{}: has no {}", failures.empty() ? "" : "; ", path, symbol);
  }
  throw std::runtime_error(fmt::format("{} is missing or broken (it is built and installed with vunify): {}", file, failures));
}

}  // namespace vunify::os
