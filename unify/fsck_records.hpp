// fsck checks of templates and of per-guest records against the trees (fsck.cpp runs them):
// every template row has its tree and every template tree its row; every record in etc/ and
// guests/ has its guest, and every guest its mount point.
#pragma once
#include <set>
#include <string>
#include "unify/fsck.hpp"

namespace vunify::unify {

void check_template_trees(Pool& pool, bool repair, FsckReport& r, const std::set<std::string>& reported = {});
// Records in etc/ and guests/ of no guest, and guests without a mount point (links/ records of no
// guest are recovery's: see unify/recovery.hpp). `reported_batches`: the guests of an
// interrupted batch, which a leftovers line already covers.
void check_guest_records(Pool& pool, bool repair, FsckReport& r, const std::set<std::string>& reported_batches = {});

}  // namespace vunify::unify
