// A test-only crash hook: makes the process die of SIGKILL at a named point of a command, so
// that tests can hit crash windows that random kills rarely reach.
//
//   VUNIFY_TEST_CRASH_AT=POINT[:N]   die the N-th time (default 1st) POINT is reached
//
// Unset (always, outside tests) the hook costs one getenv at the first call. The points are
// named where they are called (grep crash_point); each is a place where a crash leaves the
// pool between two on-disk states that recovery must handle:
//   gc.unlink              before each store object gc removes
//   import.object          after each object a template import adds to the store
//   create.rename          before each guest of a `guest create` batch is renamed into place
//   create.config          before each etc/NAME.toml of a batch is written
//   create.links           after the batch's links records are written
//   create.commit          after every guest of a batch is renamed into place, before the commit
//   template.place         between a new template's index commit and its rename into place
//   template.rm            between a template's removal from the index and from templates/
//   guest.add              between a guest add's index commit and its rename into place
//   guest.rm               between a guest's removal from the index and from backing/
#pragma once
#include <string_view>

namespace vunify::os {

// Dies of SIGKILL (no unwinding, no atexit, as kill -9) if VUNIFY_TEST_CRASH_AT names `point`
// and this is its N-th call in this process. Thread-safe.
void crash_point(std::string_view point);

}  // namespace vunify::os
