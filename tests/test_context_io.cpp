// Disk I/O limits: parsing, the pool's block device, and a guest reading a cold file through its
// view on a loop-device-backed pool held to io.rbps (the read done by the guest itself through
// FUSE passthrough, and done by the view daemon without it).
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "context/block_device.hpp"
#include "context/io_limits.hpp"
#include "context/limit_keys.hpp"
#include "context/usage.hpp"
#include "os/error.hpp"
#include "tests/context_guest.hpp"
#include "tests/loop_fs.hpp"

namespace vunify::test {

using context::IoLimits;

TEST_CASE("io limits: keys take rates with units, counts, max: bad ones are named", "[io]") {
  CHECK(context::check_limit("io.rbps", "4M", "t") == "4M");
  CHECK(context::check_limit("io.wbps", "524288", "t") == "512K");
  CHECK(context::check_limit("io.riops", "500", "t") == "500");
  CHECK(context::check_limit("io.wiops", "1", "t") == "1");
  for (auto [key, value] : {std::pair{"io.rbps", "fast"}, {"io.rbps", "4X"}, {"io.rbps", "-1"}, {"io.rbps", "0"},
                            {"io.rbps", "99999999P"}, {"io.riops", "1.5"}, {"io.riops", "10k"}, {"io.wiops", ""},
                            {"io.wiops", "0"}}) {
    INFO(key << "=" << value);
    try {
      context::check_limit(key, value, "t");
      FAIL("accepted");
    } catch (const os::UserError& e) {
      CHECK(std::string(e.what()).find(key) != std::string::npos);
    }
  }
  CHECK_THROWS_AS(context::check_limit("io.speed", "1", "t"), os::UserError);
  IoLimits l;
  l.rbps = 4u << 20;
  l.wbps = 512u << 10;
  l.riops = 500;
  CHECK(context::io_max_line("7:3", l) == "7:3 rbps=4194304 wbps=524288 riops=500 wiops=max");
}

TEST_CASE("io limits: the pool's block device is the whole disk: a filesystem without one is refused", "[io]") {
  std::string root = context::block_device_of("/");
  CHECK(root.find(':') != std::string::npos);
  CHECK(::access(("/sys/dev/block/" + root).c_str(), F_OK) == 0);
  CHECK(::access(("/sys/dev/block/" + root + "/partition").c_str(), F_OK) != 0);
  CHECK_THROWS_AS(context::block_device_of("/proc"), os::UserError);
  VUNIFY_REQUIRE_ROOT();
  LoopFs fs(64);
  if (!fs.ready()) {
    WARN("skipped: " << fs.why());
    return;
  }
  CHECK(context::block_device_of(fs.mountpoint()) == fs.majmin());
}

namespace {

// A busybox guest with a 12 MiB file /big on a pool on its own loop-device ext4.
struct LoopGuest {
  LoopFs fs{256};
  std::string pool = fs.mountpoint() + "/pool";
  std::string name = "vt" + std::to_string(::getpid()) + "-io";
  TempDir src;
  bool ready = false;

  LoopGuest() {
    if (!fs.ready() || static_busybox().empty()) return;
    unify::Pool::init(pool);
    make_busybox_guest(src.path());
    write_file(src / "big", std::string(12 << 20, '\0'));
    // not zeros on disk: real blocks to read
    REQUIRE(run("head -c 12M /dev/urandom > '" + src.path() + "/big'").status == 0);
    auto r = vunify(pool, "guest add " + name + " --from '" + src.path() + "'");
    INFO(r.out);
    REQUIRE(r.status == 0);
    ready = true;
  }
  ~LoopGuest() {
    if (!ready) return;
    vunify(pool, "stop " + name + " --timeout 5");
    vunify(pool, "umount " + name);
  }
  // Drops the file's pages: the backing file's and the view's own.
  void drop_cache() const {
    for (const auto& path : {pool + "/backing/" + name + "/big", pool + "/guests/" + name + "/root/big"}) {
      int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      REQUIRE(fd >= 0);
      ::fdatasync(fd);  // dirty pages are not dropped
      CHECK(::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0);
      ::close(fd);
    }
  }
  // Seconds `script` takes in the guest, timed there (busybox time: 10 ms steps), so the
  // load on the host adds nothing from starting `vunify exec`.
  double seconds(const std::string& script) const {
    auto r = vunify(pool, "exec " + name + " -- /bin/busybox time sh -c '" + script + "'");
    INFO(r.out);
    REQUIRE(r.status == 0);
    auto at = r.out.find("real");
    REQUIRE(at != std::string::npos);
    int minutes = 0;
    double secs = 0;
    REQUIRE(std::sscanf(r.out.c_str() + at, "real %dm %lfs", &minutes, &secs) == 2);
    return minutes * 60 + secs;
  }
  double cold_read_seconds() const {
    drop_cache();
    return seconds("cat /big > /dev/null");
  }
};

}  // namespace

TEST_CASE("io limits: a guest reading a cold file through its view is held to io.rbps, its fsync'd writes to io.wbps", "[io][context]") {
  VUNIFY_REQUIRE_CONTEXT();
  bool passthrough = GENERATE(true, false);
  INFO((passthrough ? "passthrough: the guest reads the backing file" : "no passthrough: the view daemon reads it"));
  LoopGuest g;
  if (!g.fs.ready()) {
    WARN("skipped: " << g.fs.why());
    return;
  }
  REQUIRE(g.ready);
  if (!passthrough) REQUIRE(vunify(g.pool, "mount " + g.name + " --no-passthrough").status == 0);
  REQUIRE(vunify(g.pool, "start " + g.name + " -- /bin/sleep 1000").status == 0);
  auto s = context::read_state(g.pool, g.name);
  REQUIRE(s);
  REQUIRE(!s->view.cgroups.empty());
  double unlimited = g.cold_read_seconds();
  auto set = [&](const std::string& assignments) {
    auto r = vunify(g.pool, "set " + g.name + " " + assignments);
    INFO(r.out);
    REQUIRE(r.status == 0);
  };
  set("io.rbps=4M");
  auto guest_before = context::cgroup_usage(s->cgroups), view_before = context::cgroup_usage(s->view.cgroups);
  double limited = g.cold_read_seconds();
  auto guest_after = context::cgroup_usage(s->cgroups), view_after = context::cgroup_usage(s->view.cgroups);
  INFO("unlimited " << unlimited << " s, limited to 4 MiB/s: " << limited << " s (expected 3 s)");
  CHECK(limited >= 3.0 * 0.85);
  CHECK(limited <= 3.0 * 1.15);
  CHECK(unlimited < 1.5);
  // charged to whoever submitted the reads: the guest (passthrough) or its view daemon
  uint64_t by_guest = guest_after.io_read - guest_before.io_read, by_view = view_after.io_read - view_before.io_read;
  CHECK((passthrough ? by_guest : by_view) >= 12u << 20);
  CHECK((passthrough ? by_view : by_guest) < 1u << 20);
  // writes the guest makes durable (fsync) are submitted in the writer's context: held to io.wbps
  set("io.rbps=max io.wbps=4M");
  double written = g.seconds("dd if=/dev/zero of=/out bs=1M count=8 conv=fsync 2>/dev/null");
  INFO("8 MiB written with fsync at 4 MiB/s: " << written << " s (expected 2 s)");
  CHECK(written >= 2.0 * 0.85);
  CHECK(written <= 2.0 * 1.15);
  // status --json: the limits and the bytes
  auto r = vunify(g.pool, "status " + g.name + " --json");
  INFO(r.out);
  auto io = nlohmann::json::parse(r.out).at(0).at("usage").at("io");
  CHECK(io.at("limits").at("io.wbps") == "4M");
  CHECK(io.at("limits").at("io.rbps").is_null());
  CHECK(io.at("read").get<uint64_t>() >= 24u << 20);
  CHECK(io.at("write").get<uint64_t>() >= 8u << 20);
  // max lifts it again
  set("io.wbps=max");
  CHECK(g.cold_read_seconds() < 1.5);
}

}  // namespace vunify::test
