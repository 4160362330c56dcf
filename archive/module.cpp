// The module's entry point: vunify_archive_api(), the one symbol it exports (everything else is
// hidden), with each call wrapped so that no exception leaves the module (api.hpp).
#include "archive/api.hpp"
#include "archive/archive.hpp"

namespace vunify::archive {
namespace {

ImportStats import_call(int in_fd, const std::string& label, const ImportTarget& target, const ImportLimits& limits,
                        const os::Progress& progress, Error* error) {
  try {
    return import_archive(in_fd, label, target, limits, progress);
  } catch (...) {
    *error = current_error();
    return {};
  }
}

ExportStats export_call(int root_fd, const LinkGroups& links, int out_fd, const std::string& compression,
                        const os::Progress& progress, Error* error) {
  try {
    return export_tree(root_fd, links, out_fd, compression, progress);
  } catch (...) {
    *error = current_error();
    return {};
  }
}

constexpr Api kApi{kApiVersion, __VERSION__, &import_call, &export_call};

}  // namespace
}  // namespace vunify::archive

extern "C" __attribute__((visibility("default"))) const vunify::archive::Api* vunify_archive_api() {
  return &vunify::archive::kApi;
}
