// Whole small files (read one, replace one atomically and durably) and replacing a name by a
// hard link to an open file.
#pragma once
#include <sys/types.h>

#include <optional>
#include <string>

namespace vunify::os {

// Contents of `name` in `dirfd` (not following a final symlink); nullopt if it does not exist.
// Throws SysError on other errors.
std::optional<std::string> read_whole_file(int dirfd, const std::string& name);

// How a replacement ends. Durable: the file and its directory are synced, a crash leaves the
// old file or the new one, never a mix. Volatile: no sync, the rename is atomic for readers
// while the machine runs, but a crash may leave an empty or garbled file; for runtime state
// that a reboot makes meaningless anyway (two journal commits saved per write).
enum class Durability { Durable, Volatile };

// Replaces `name` in `dirfd` with `data`: a temp file in the same directory, rename over.
void write_file_atomic(int dirfd, const std::string& name, const std::string& data, mode_t mode,
                       Durability durability = Durability::Durable);

// Removes `name` in `dirfd` if it exists and makes the removal durable.
void remove_file_durable(int dirfd, const std::string& name);

// Makes `name` in `dirfd` a hard link to the open file `file_fd`: a link under a temp name
// (`temp_prefix` + pid + counter) in the same directory, renamed over `name`. A crash leaves
// `name` old or new (and at worst a temp entry that recovery removes).
void replace_by_link(int file_fd, int dirfd, const std::string& name, const std::string& temp_prefix,
                     const std::string& path_for_errors);

// The same, keeping the directory's mtime (the entry changed inode, not name: a guest must not
// see its directory change). `dirfd` may be O_PATH. Returns false if the mtime could not be put
// back (the replacement itself is done).
bool replace_by_link_keep_mtime(int file_fd, int dirfd, const std::string& name, const std::string& temp_prefix,
                                const std::string& path_for_errors);

// The path of an open file or directory as the kernel names it (/proc/self/fd/N).
std::string fd_path(int fd);
// "/proc/self/fd/N": opens (and linkat with AT_SYMLINK_FOLLOW) through it reach the inode of
// `fd` itself, even an O_PATH one, whatever its name is now.
std::string proc_fd_path(int fd);

}  // namespace vunify::os
