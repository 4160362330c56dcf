// The pool: on-disk layout, init, lock, and recovery of interrupted runs.
//
//   POOL/vunify.db          SQLite index (WAL)
//   POOL/vunify.lock        flock: exclusive for changes, shared for reads
//   POOL/store/objects/ab/  shared immutable objects (hard-link targets)
//   POOL/store/tmp/         objects being created
//   POOL/backing/NAME/      each guest's real tree (0700)
//   POOL/guests/NAME/       FUSE mount point of guest NAME (barrier); guests/NAME/root = guest root
//   POOL/templates/NAME/    template trees
//   POOL/links/NAME         link groups of guest NAME (unify/link_groups.hpp)
//   POOL/etc/NAME.toml      guest configuration
//   POOL/log/               daemon logs
#pragma once
#include <sys/types.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "os/unique_fd.hpp"
#include "os/view_probe.hpp"
#include "unify/index.hpp"

namespace vunify::unify {

// Name of the temp entries vunify creates inside guest trees (removed by recovery).
constexpr std::string_view kTempPrefix = ".vunify-tmp.";
// Store objects carry NO marker xattr: it would change the guest's backing tree (every
// getfattr of a guest would show it). Store membership is the object's inode, recorded in
// the index: use unify::ObjectSet (unify/object_set.hpp) to ask "is this file shared?".

// Read: shared lock. Write: exclusive lock, recovery of an interrupted run first. Repair
// (fsck --repair): as Write, and a missing or damaged index is set aside and replaced by an
// empty one for fsck to rebuild from the trees (index_rebuild.hpp).
// The current UTC time as it goes into names of files set aside ("20261130T081500Z").
std::string name_stamp();

enum class Access { Read, Write, Repair };

class Pool {
 public:
  // $VUNIFY_POOL, else /var/lib/vunify.
  static std::string default_root();
  // Creates the layout and the index. Refuses a foreign non-empty directory and a layout
  // that would span filesystems. Idempotent on an existing pool.
  static void init(const std::string& root);

  // Opens an existing pool and takes its lock (shared for Read, exclusive for Write).
  // A Write open first finishes the recovery of an interrupted run.
  Pool(const std::string& root, Access access);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  const std::string& root() const { return root_; }
  std::string path(std::string_view sub) const;
  dev_t dev() const { return dev_; }
  int fd() const { return root_fd_.get(); }
  int objects_fd() const { return objects_fd_.get(); }
  int store_tmp_fd() const { return store_tmp_fd_.get(); }
  int backing_fd() const { return backing_fd_.get(); }
  Index& index() { return *index_; }

  std::vector<std::string> guest_names();
  bool has_guest(std::string_view name);
  // O_RDONLY|O_DIRECTORY fd of backing/NAME; throws UserError if there is no such guest.
  os::unique_fd open_guest_root(const std::string& name);
  // The view at guests/NAME, decided without a system call into it (os/view_probe.hpp): a
  // stopped daemon never makes a command hang.
  os::ViewStatus view(const std::string& name) const;
  // True if guests/NAME is a view whose daemon runs or is stopped. The mount of a dead daemon
  // (ENOTCONN) is not mounted: see mount_stale().
  bool guest_mounted(const std::string& name) const;
  // True if guests/NAME is the mount of a view daemon that died (it answers ENOTCONN).
  bool mount_stale(const std::string& name) const;
  // Throws UserError if guest NAME is mounted (saying what to do, also when its daemon is
  // stopped); `why` ends the message (e.g. ": unify does not swap files under a running guest").
  void refuse_if_mounted(const std::string& name, std::string_view why = "") const;
  // Detaches the stale mounts of dead view daemons; returns how many. Called by Write opens.
  size_t detach_stale_mounts();

  // Throws UserError unless `name` matches [A-Za-z0-9][A-Za-z0-9._-]* (at most 64 chars).
  static void check_name(std::string_view name, std::string_view what);

  // Puts right what an interrupted run left (unify/recovery.hpp); returns how many things it
  // fixed. Called by Write opens.
  size_t recover();
  // Restores the times of the directories an interrupted unify was changing and removes its
  // temp entries in them; returns how many.
  size_t restore_pending_dirs();
  // Repairs every guest's hard-link groups left halfway (unify/link_groups.hpp).
  void resolve_all_links();
  // What the Write open recovered (0 if the last run ended cleanly).
  size_t recovered() const { return recovered_; }
  // Repair opens only: why the index was replaced by an empty one ("" if it was fine), and
  // where the damaged file went ("" if it was missing).
  const std::string& index_replaced() const { return index_replaced_; }
  const std::string& index_set_aside() const { return index_set_aside_; }

 private:
  std::string root_;
  dev_t dev_ = 0;
  os::unique_fd lock_fd_;
  os::unique_fd root_fd_, objects_fd_, store_tmp_fd_, backing_fd_;
  std::unique_ptr<Index> index_;
  size_t recovered_ = 0;
  std::string index_replaced_, index_set_aside_;
  void open_index(Access access);
};

int64_t to_ns(const struct timespec& ts);
struct timespec from_ns(int64_t ns);
int64_t now_ns();

}  // namespace vunify::unify
