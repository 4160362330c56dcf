// fsck checks of templates and of per-guest records against the trees (fsck.cpp runs them):
// every template row has its tree and every template tree its row; every record in links/,
// etc/ and guests/ has its guest, and every guest its mount point.
#pragma once
#include "unify/fsck.hpp"

namespace vunify::unify {

void check_template_trees(Pool& pool, bool repair, FsckReport& r);
void check_guest_records(Pool& pool, bool repair, FsckReport& r);

}  // namespace vunify::unify
