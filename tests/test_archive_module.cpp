// The archive module (archive/, vunify-archive.so): the vunify binary maps neither libarchive nor
// a shared C++ runtime; import and export load the module from next to the binary or from
// ../lib/vunify/, and a vunify without it says where it looked and changes nothing.
#include <unistd.h>

#include <catch2/catch.hpp>

#include "tests/helpers.hpp"
#include "tests/scratch_pool.hpp"

using namespace vunify;

namespace {
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
}  // namespace

TEST_CASE("the binary maps no libarchive: a copy without the module runs, and names the module for archives", "[template][module]") {
  VUNIFY_REQUIRE_ROOT();
  test::ScratchPool f;
  test::CmdResult ldd = test::run(std::string("ldd ") + VUNIFY_BIN);
  INFO(ldd.out);
  REQUIRE(ldd.status == 0);
  CHECK(!contains(ldd.out, "libarchive"));
  CHECK(!contains(ldd.out, "libxml2"));
#ifndef __SANITIZE_ADDRESS__
  CHECK(!contains(ldd.out, "libstdc++"));
#endif

  test::write_file(f.dir / "src/etc/hostname", "tpl\n");
  REQUIRE(test::run("tar -C '" + (f.dir / "src") + "' -cf '" + (f.dir / "t.tar") + "' .").status == 0);
  f.ok("template import real '" + (f.dir / "t.tar") + "'");

  std::string bin = f.dir / "bin/vunify";
  test::mkdirs(f.dir / "bin");
  REQUIRE(test::run(std::string("cp ") + VUNIFY_BIN + " '" + bin + "'").status == 0);
  auto lonely = [&](const std::string& args) { return test::run(bin + " --pool '" + f.pool + "' " + args); };
  test::CmdResult list = lonely("template list");
  INFO(list.out);
  CHECK(list.status == 0);
  CHECK(contains(list.out, "real"));

  for (const std::string& args : {"template import other '" + (f.dir / "t.tar") + "'", "template export real '" + (f.dir / "out.tar") + "'"}) {
    test::CmdResult r = lonely(args);
    INFO(args << "\n" << r.out);
    CHECK(r.status == 1);
    CHECK(contains(r.out, "vunify-archive.so is missing"));
    CHECK(contains(r.out, f.dir / "bin/vunify-archive.so: not found"));
    CHECK(contains(r.out, f.dir / "bin/../lib/vunify/vunify-archive.so: not found"));
  }
  CHECK(::access((f.dir / "out.tar").c_str(), F_OK) != 0);
  // Nothing left of the failed import: the one template, no temp directory.
  CHECK(test::run("ls -A '" + f.pool + "/templates'").out == "real\n");
  // Where the build put it, the module loads.
  f.ok("template export real '" + (f.dir / "out.tar") + "'");
}
