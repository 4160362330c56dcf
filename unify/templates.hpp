// Templates: trees whose regular files are all links to store objects.
//
//   POOL/templates/NAME/root    the template tree (guests are made from it)
//   POOL/templates/NAME/links   hard-link groups of the original tree (NUL-separated paths, one
//                               empty string ends a group): deduplicated files share an inode
//                               too, so the tree alone cannot tell a hard link from equal files
//   POOL/templates/.new-*       a template being made (removed if the run dies)
#pragma once
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "os/progress.hpp"
#include "os/unique_fd.hpp"
#include "unify/file_key.hpp"
#include "unify/pool.hpp"
#include "unify/store.hpp"

namespace vunify::archive {
struct ImportLimits;
}  // namespace vunify::archive

namespace vunify::unify {

struct TemplateInfo {
  std::string name;
  int64_t created_ns = 0;
  std::string source;
};

// Paths (relative to the template root) that are one file in the original tree.
using LinkGroups = std::vector<std::vector<std::string>>;

// Turns regular files into store links: a file equal (key and bytes) to an existing object
// becomes a link to it, any other file is adopted as a new object.
class ObjectSink {
 public:
  explicit ObjectSink(Pool& pool);
  // `fd`: the open regular file `name` in `dirfd`, with its final content and metadata; `key`
  // its key. Afterwards `name` is a link to a store object: an equal one, or `fd` adopted.
  void place(int fd, const FileKey& key, int dirfd, const std::string& name, const std::string& path);
  // The object equal to the open regular file `fd` (key and bytes), or `fd` adopted as one.
  const ObjectRow& object_for(int fd, const FileKey& key, const std::string& path);
  // Removes the objects this sink created (after the index transaction was rolled back).
  void discard_created();
  uint64_t adopted() const { return created_.size(); }
  uint64_t deduplicated() const { return deduplicated_; }

 private:
  const ObjectRow* find_equal(int fd, const FileKey& key, const std::string& path);
  Pool& pool_;
  Store store_;
  std::unordered_map<FileKey, std::vector<ObjectRow>, FileKeyHasher> by_key_;
  std::vector<std::string> created_;
  uint64_t deduplicated_ = 0;
};

// Makes one template in a temp directory and installs it with commit(); destroyed without
// commit, it removes everything it made (tree, new objects, index rows).
class TemplateBuilder {
 public:
  TemplateBuilder(Pool& pool, const std::string& name, const std::string& source);
  ~TemplateBuilder();
  TemplateBuilder(const TemplateBuilder&) = delete;
  TemplateBuilder& operator=(const TemplateBuilder&) = delete;

  int root_fd() const { return root_.get(); }
  ObjectSink& sink() { return sink_; }
  LinkGroups& links() { return links_; }
  void commit();

 private:
  Pool& pool_;
  std::string name_, source_, tmp_;
  os::unique_fd tmp_fd_, root_;
  Transaction tx_;
  ObjectSink sink_;
  LinkGroups links_;
  bool committed_ = false, done_ = false;
};

std::vector<TemplateInfo> list_templates(Pool& pool);
bool has_template(Pool& pool, const std::string& name);
// O_RDONLY|O_DIRECTORY fd of templates/NAME/root; UserError if there is no such template.
os::unique_fd open_template_root(Pool& pool, const std::string& name);
LinkGroups read_link_groups(Pool& pool, const std::string& name);
// Removes dot-named leftovers of interrupted runs in templates/ (Write access only).
void recover_templates(Pool& pool);
// Replaces the regular file `name` in template directory `dirfd`, which is not a store object
// (an inode a guest may still write: e.g. linked in by an older `template from-guest` racing
// the guest's view), by a link to a store object with its current bytes and metadata; keeps
// the directory's times. Used by `fsck --repair`.
void relink_template_file(Pool& pool, ObjectSink& sink, int dirfd, const std::string& name, const std::string& path);
// Unmounts whatever a failed debootstrap left mounted beneath `dir` (proc, sys, ...), so that
// removing the directory never walks into a mounted filesystem.
void unmount_beneath(const std::string& dir);

// Copies a directory tree (a guest, a debootstrap result) into the builder's root: regular
// files that are already store objects are linked, others copied and put into the store.
struct IngestStats {
  uint64_t entries = 0, files = 0, bytes = 0;
};
IngestStats ingest_tree(Pool& pool, int src_root_fd, TemplateBuilder& builder, const os::Progress& progress = {});

using archive::ImportLimits;  // archive/api.hpp
struct ImportResult {
  uint64_t entries = 0, files = 0, bytes = 0, archive_bytes = 0;
  uint64_t new_objects = 0, shared_files = 0;  // files adopted / linked to existing objects
  double seconds = 0;
};

// `template import NAME FILE` ("-": stdin).
ImportResult import_template(Pool& pool, const std::string& name, const std::string& file, const ImportLimits& limits,
                             const os::Progress& progress = {});
// `template from-guest NAME GUEST`.
ImportResult template_from_guest(Pool& pool, const std::string& name, const std::string& guest,
                                 const os::Progress& progress = {});

struct DebootstrapOptions {
  std::string suite, variant = "minbase", mirror;
  std::vector<std::string> include;
};
// `template build NAME --debootstrap SUITE`: debootstrap into a temp dir of the pool, then
// ingest that tree. debootstrap's own output goes to stderr.
ImportResult build_template(Pool& pool, const std::string& name, const DebootstrapOptions& options,
                            const os::Progress& progress = {});

// `template export NAME FILE` ("-": stdout); compression from the suffix (.gz .xz .zst .bz2).
uint64_t export_template(Pool& pool, const std::string& name, const std::string& file, const os::Progress& progress = {});

// Removes a template; refuses while guests were made from it unless `force`.
// Its objects stay while guests use them (vunify gc removes unused ones).
void remove_template(Pool& pool, const std::string& name, bool force);

}  // namespace vunify::unify
