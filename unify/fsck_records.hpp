// fsck checks of templates and of per-guest records against the trees (fsck.cpp runs them):
// every template row has its tree and every template tree its row; every record in links/,
// etc/ and guests/ has its guest, and every guest its mount point.
#pragma once
#include <set>
#include <string>
#include "unify/fsck.hpp"

namespace vunify::unify {

void check_template_trees(Pool& pool, bool repair, FsckReport& r);
// Names whose records a leftovers line already covers, skipped so each problem is reported once:
// `reported_batches` the guests of an interrupted batch, `reported_links` orphan links/ records.
void check_guest_records(Pool& pool, bool repair, FsckReport& r, const std::set<std::string>& reported_batches = {},
                         const std::set<std::string>& reported_links = {});

}  // namespace vunify::unify
