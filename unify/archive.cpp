// vunify's side of the archive module (archive/api.hpp): loads it, hands it the template being
// built, and turns its errors back into exceptions.
#include "unify/archive.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <stdexcept>
#include <string_view>

#include "os/error.hpp"
#include "os/module.hpp"
#include "os/xattrs.hpp"
#include "unify/file_key.hpp"

namespace vunify::unify {

namespace {

constexpr const char* kModule = "vunify-archive.so";

const archive::Api& api() {
  auto factory = reinterpret_cast<archive::Factory>(os::load_module_symbol(kModule, archive::kFactory));
  const archive::Api* a = factory();
  if (a->version != archive::kApiVersion || std::string_view(a->compiler) != __VERSION__)
    throw std::runtime_error(fmt::format("{} does not belong to this vunify (interface {}, built by {}; vunify: interface {}, "
                                         "built by {}): install both from one build",
                                         kModule, a->version, a->compiler, archive::kApiVersion, __VERSION__));
  return *a;
}

// The module's place(): the file's real key (what the kernel kept of its metadata and xattrs),
// then the sink makes it a link to an equal object or adopts it.
bool place(void* ctx, int fd, const Hash128& content, bool has_xattrs, int dirfd, const std::string& name,
           const std::string& rel, archive::Error* error) {
  try {
    struct stat real {};
    if (::fstat(fd, &real) != 0) os::throw_errno("stat", rel);
    os::Xattrs stored = has_xattrs ? os::read_xattrs(fd, rel) : os::Xattrs{};
    static_cast<ObjectSink*>(ctx)->place(fd, file_key(content, real, stored, true), dirfd, name, rel);
    return true;
  } catch (...) {
    *error = archive::current_error();
    return false;
  }
}

// Progress lines for the module: a failure to show one is not the module's to handle.
os::Progress guarded(const os::Progress& progress) {
  if (!progress) return {};
  return [&progress](const std::string& line) {
    try {
      progress(line);
    } catch (...) {
    }
  };
}

}  // namespace

ImportStats import_archive(int in_fd, const std::string& label, TemplateBuilder& builder, const ImportLimits& limits,
                           const os::Progress& progress) {
  const archive::Api& a = api();
  archive::ImportTarget target{builder.root_fd(), &builder.links(), &builder.sink(), &place};
  archive::Error error;
  ImportStats stats = a.import_archive(in_fd, label, target, limits, guarded(progress), &error);
  if (error) archive::throw_error(error);
  return stats;
}

ExportStats export_tree(int root_fd, const LinkGroups& links, int out_fd, const std::string& compression,
                        const os::Progress& progress) {
  const archive::Api& a = api();
  archive::Error error;
  ExportStats stats = a.export_tree(root_fd, links, out_fd, compression, guarded(progress), &error);
  if (error) archive::throw_error(error);
  return stats;
}

}  // namespace vunify::unify
