// The block device a path's filesystem lives on, as the I/O throttles name it: "MAJ:MIN" of the
// whole disk (blkio.throttle.* and io.max take whole disks, not partitions).
#pragma once
#include <string>

namespace vunify::context {

// For a filesystem on a partition, the disk it is on; on a dm or loop device, that device (the
// throttle acts where bios are submitted to it). A filesystem without a block device of its own
// (st_dev with major 0: btrfs, a multi-device fs) is looked up by its mount source in
// /proc/self/mountinfo. Throws os::UserError naming `path` if there is none (tmpfs, FUSE, NFS).
std::string block_device_of(const std::string& path);

// "MAJ:MIN" of the whole disk a device number belongs to (itself unless it is a partition), from
// /sys/dev/block; empty if sysfs does not know the device.
std::string whole_disk(unsigned major, unsigned minor);

}  // namespace vunify::context
