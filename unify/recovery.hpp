// Recovery of interrupted runs: what a command killed at any point (kill -9, power loss, a full
// disk) leaves in a pool, and how the next command that changes the pool puts it right before
// doing anything else (Pool opened for Write calls recover_pool; so does fsck --repair).
//
// An operation that leaves index and store disagreeing while it runs marks itself in the index
// (meta key "running:OP", committed before its first change to the trees); recovery then
// reconciles store and index both ways. Temp trees (dot names in backing/ and templates/,
// store/tmp/) belong to dead processes, since recovery runs under the exclusive pool lock.
#pragma once
#include <string>
#include <vector>

#include "unify/pool.hpp"

namespace vunify::unify {

// meta key of a running operation ("running:gc", ...). Set it inside the transaction that
// starts the operation's changes; clear it when they are all on disk.
std::string running_key(const std::string& op);
void clear_running(Index& index, const std::string& op);

// The batch of a `guest create`/`clone` between its journal and its index commit: the guests
// it places, their temp trees (see unify/provision.cpp).
struct PendingBatch {
  std::string tmp_suffix;          // temp tree of NAME is ".create-NAME-" + tmp_suffix
  std::vector<std::string> names;  // guests of the batch
};
constexpr const char* kBatchOp = "create";
void write_batch_journal(Index& index, const PendingBatch& batch);
std::vector<PendingBatch> pending_batches(Index& index);

// A tree move whose index change is already committed, written in the same transaction as that
// change and dropped once the move is on disk. Every command that places a tree into the pool or
// takes one out commits first and renames after, so the index never names a tree that a crash
// can still lose, and recovery finishes the rename: POOL/DIR/FROM becomes POOL/DIR/TO, then a
// dot-named TO (a tree being removed) is removed. FROM empty: the tree came from outside the
// pool (guest add --move), which recovery cannot finish. An added tree that is not in place
// after that (a --move that never happened) is dropped from the index again.
struct PendingMove {
  enum class Kind { TemplateAdd, TemplateRm, GuestAdd, GuestRm };
  Kind kind;
  std::string name;      // the template or guest
  std::string from, to;  // entries of DIR (templates/ or backing/)
};
void write_move_journal(Index& index, const PendingMove& move);  // in the caller's transaction
void clear_move_journal(Index& index, const PendingMove& move);
std::vector<PendingMove> pending_moves(Index& index);
// Finishes one pending move on disk and drops its journal (also used by the command itself).
void finish_move(Pool& pool, const PendingMove& move);

// What an interrupted run left, read without changing anything (for plain fsck).
struct Leftovers {
  std::vector<std::string> running;        // operations marked running ("gc", "unify", ...)
  std::vector<PendingBatch> batches;       // guest batches to roll back
  std::vector<PendingMove> moves;          // tree moves to finish
  std::vector<std::string> temp_trees;     // "templates/.new-T-1234", "backing/.add-g-99", "store/tmp/x"
  size_t orphan_objects = 0;               // store entries not in the index
  std::vector<std::string> orphan_examples;  // the first few of them
  std::vector<std::string> orphan_links;   // links/NAME records of no guest
};
Leftovers find_leftovers(Pool& pool);
// One line per leftover (orphan store entries summed up with a few examples), each saying
// what puts it right.
std::vector<std::string> describe(const Leftovers& l);

// Puts the pool right after an interrupted run; returns how many things it fixed.
size_t recover_pool(Pool& pool);

// Store and index both ways: drops rows whose object is gone (or is another inode), then
// records or drops store entries missing from the index (Store::reconcile_orphans).
size_t reconcile_store(Pool& pool);

}  // namespace vunify::unify
