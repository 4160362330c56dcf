// A scratch directory with a fresh pool in it: the base of the tests' pool fixtures.
#pragma once
#include <catch2/catch.hpp>
#include <string>

#include "tests/helpers.hpp"
#include "unify/pool.hpp"

namespace vunify::test {

struct ScratchPool {
  TempDir dir;
  std::string pool = dir / "pool";
  ScratchPool() { unify::Pool::init(pool); }

  std::string backing(const std::string& guest, const std::string& rel = "") const {
    return pool + "/backing/" + guest + (rel.empty() ? "" : "/" + rel);
  }
  // Runs the CLI on the pool; the test stops (showing the output) unless it succeeds.
  void ok(const std::string& args) const {
    auto r = vunify(pool, args);
    INFO(args << "\n" << r.out);
    REQUIRE(r.status == 0);
  }
};

}  // namespace vunify::test
