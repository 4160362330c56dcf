// Capability sets (names, a chosen set, refusals) and CAP_SYS_BOOT's pid-namespace reboot,
// applied in forked children.
#include <fcntl.h>
#include <linux/reboot.h>
#include <sched.h>
#include <signal.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>

#include "context/landlock.hpp"
#include "context/security.hpp"
#include "os/error.hpp"
#include "tests/child_report.hpp"
#include "tests/helpers.hpp"

using vunify::context::SecurityProfile;
using vunify::test::must;
using vunify::test::own_status;
using vunify::test::report_status;
using vunify::test::Reporter;

TEST_CASE("security: capability names", "[context][security]") {
  CHECK(vunify::context::parse_capability("CAP_NET_ADMIN") == 12);
  CHECK(vunify::context::parse_capability("net_admin") == 12);
  CHECK(vunify::context::parse_capability("NET_ADMIN") == 12);
  CHECK(vunify::context::parse_capability("cap_sys_admin") == 21);
  CHECK_THROWS_AS(vunify::context::parse_capability("CAP_BOGUS"), vunify::os::UserError);
  CHECK_THROWS_AS(vunify::context::parse_capability("12"), vunify::os::UserError);
  CHECK_THROWS_AS(vunify::context::parse_capability(""), vunify::os::UserError);
  CHECK_THROWS_AS(vunify::context::parse_capability("cap_chown,cap_kill"), vunify::os::UserError);
  CHECK_THROWS_AS(vunify::context::parse_capability("chown "), vunify::os::UserError);
  CHECK_THROWS_AS(vunify::context::parse_capability("all"), vunify::os::UserError);
  CHECK(vunify::context::parse_capability("Checkpoint_Restore") == 40);
  uint64_t docker = 0;
  for (const char* name : {"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
                           "NET_BIND_SERVICE", "NET_RAW", "SYS_CHROOT", "MKNOD", "AUDIT_WRITE", "SETFCAP"})
    docker |= uint64_t{1} << vunify::context::parse_capability(name);
  CHECK(docker == 0xa80425fbULL);
  CHECK(vunify::context::default_capabilities() == docker);
}

TEST_CASE("security: a chosen capability set is the bounding set, unavailable ones are refused", "[context][security]") {
  VUNIFY_REQUIRE_ROOT();
  uint64_t keep = (uint64_t{1} << vunify::context::parse_capability("CAP_CHOWN")) |
                  (uint64_t{1} << vunify::context::parse_capability("net_bind_service"));
  vunify::test::TempDir target;
  auto report = vunify::test::run_child([&](Reporter& r) {
    // A private mount namespace first: should the drop fail, the mount below stays in it.
    must(::unshare(CLONE_NEWNS), "unshare");
    must(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), "make private");
    SecurityProfile profile;
    profile.capabilities = keep;
    profile.seccomp = false;
    profile.landlock = false;
    vunify::context::apply_security(profile);
    report_status(r, "");
    r.call("mount", ::mount("none", target.path().c_str(), "tmpfs", 0, nullptr));  // CAP_SYS_ADMIN is gone
  });
  INFO("child error: " << report.error);
  REQUIRE(report.status == 0);
  CHECK(report.get("CapBnd") == "0000000000000401");
  CHECK(report.get("CapEff") == "0000000000000401");
  CHECK(report.get("CapInh") == "0000000000000000");
  CHECK(report.get("CapAmb") == "0000000000000000");
  CHECK(report.get("Seccomp") == "0");
  CHECK(report.get("mount") == "EPERM");

  // A capability unknown to the kernel (or missing from this process's bounding set): a clear
  // error, nothing dropped.
  auto refused = vunify::test::run_child([&](Reporter& r) {
    SecurityProfile profile;
    profile.capabilities = vunify::context::default_capabilities() | (uint64_t{1} << 63);
    try {
      vunify::context::apply_security(profile);
      r.put("result", "applied");
    } catch (const vunify::os::UserError& e) {
      r.put("result", "refused");
      r.put("message", e.what());
    }
    report_status(r, "");
  });
  CHECK(refused.get("result") == "refused");
  CHECK(refused.get("message").find("bounding set") != std::string::npos);
  CHECK(refused.get("CapBnd") == own_status("CapBnd"));
}

TEST_CASE("security: CAP_SYS_BOOT is refused in the host's pid namespace", "[context][security]") {
  VUNIFY_REQUIRE_ROOT();
  auto report = vunify::test::run_child([&](Reporter& r) {
    SecurityProfile profile;
    profile.capabilities |= uint64_t{1} << vunify::context::parse_capability("SYS_BOOT");
    try {
      vunify::context::apply_security(profile);
      r.put("result", "applied");
    } catch (const vunify::os::UserError& e) {
      r.put("result", "refused");
    }
    report_status(r, "");
  });
  CHECK(report.get("result") == "refused");
  CHECK(report.get("Seccomp") == "0");
}

TEST_CASE("security: with CAP_SYS_BOOT, reboot in the context's pid namespace only ends its init (SIGHUP)", "[context][security]") {
  VUNIFY_REQUIRE_ROOT();
  auto report = vunify::test::run_child([&](Reporter& r) {
    must(::unshare(CLONE_NEWPID | CLONE_NEWNS), "unshare pid+mount namespaces");
    pid_t init = ::fork();
    if (init == 0) {
      SecurityProfile profile;
      profile.capabilities |= uint64_t{1} << vunify::context::parse_capability("SYS_BOOT");
      vunify::context::apply_security(profile);
      struct stat ns {};
      // Three guards before a real reboot command: PID 1 of a new namespace, not the initial
      // pid namespace, and apply_security's own refusal above.
      if (::getpid() == 1 && ::stat("/proc/self/ns/pid", &ns) == 0 && ns.st_ino != 0xEFFFFFFCU)
        ::syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_RESTART, nullptr);
      r.call("reboot_returned", -1);
      _exit(0);
    }
    int status = 0;
    ::waitpid(init, &status, 0);
    r.put("init_end", WIFSIGNALED(status) ? "signal" + std::to_string(WTERMSIG(status)) : "exit" + std::to_string(WEXITSTATUS(status)));
  });
  INFO("child error: " << report.error);
  REQUIRE(report.status == 0);
  CHECK(report.get("reboot_returned") == "MISSING");
  CHECK(report.get("init_end") == "signal" + std::to_string(SIGHUP));
}

TEST_CASE("security: a failing step is named (Landlock without CAP_SYS_ADMIN nor no_new_privs)", "[context][security]") {
  VUNIFY_REQUIRE_ROOT();
  auto report = vunify::test::run_child([&](Reporter& r) {
    cap_t caps = cap_get_proc();
    cap_value_t admin = CAP_SYS_ADMIN;
    if (!caps || cap_set_flag(caps, CAP_EFFECTIVE, 1, &admin, CAP_CLEAR) != 0 || cap_set_proc(caps) != 0)
      vunify::os::throw_errno("drop CAP_SYS_ADMIN from the effective set", "");
    cap_free(caps);
    try {
      SecurityProfile profile;
      profile.no_new_privs = false;  // a guest that turned it off (`[context] no_new_privs = false`)
      vunify::context::apply_security(profile);
      r.put("result", "applied");
    } catch (const vunify::os::SysError& e) {
      r.put("result", vunify::test::errno_name(e.err()));
      r.put("message", e.what());
    }
    report_status(r, "");
  });
  INFO("child error: " << report.error);
  REQUIRE(report.status == 0);
  if (vunify::context::landlock_abi() == 0) {
    CHECK(report.get("message").find("seccomp") != std::string::npos);
  } else {
    CHECK(report.get("result") == "EPERM");
    CHECK(report.get("message").find("landlock: restrict self") != std::string::npos);
  }
  CHECK(report.get("CapBnd") == own_status("CapBnd"));  // nothing dropped after the failure
}
