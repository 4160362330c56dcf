#include "tests/context_guest.hpp"

#include <dirent.h>
#include <elf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

namespace vunify::test {

namespace {

// True if the ELF file has no program interpreter (statically linked).
bool is_static_elf(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  Elf64_Ehdr eh{};
  if (!in.read(reinterpret_cast<char*>(&eh), sizeof eh) || std::string(reinterpret_cast<char*>(eh.e_ident), 4) != ELFMAG)
    return false;
  for (int i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph{};
    in.seekg(static_cast<std::streamoff>(eh.e_phoff + static_cast<Elf64_Off>(i) * eh.e_phentsize));
    if (!in.read(reinterpret_cast<char*>(&ph), sizeof ph)) return false;
    if (ph.p_type == PT_INTERP) return false;
  }
  return true;
}

}  // namespace

std::string static_busybox() {
  for (const char* p : {"/usr/bin/busybox", "/bin/busybox"})
    if (::access(p, X_OK) == 0 && is_static_elf(p)) return p;
  return "";
}

void make_busybox_guest(const std::string& dir) {
  for (const char* d : {"bin", "etc", "tmp", "root", "proc", "sys", "dev"}) mkdirs(dir + "/" + d);
  ::chmod((dir + "/tmp").c_str(), 01777);
  write_file(dir + "/bin/busybox", read_file(static_busybox()), 0755);
  for (const char* applet : {"sh", "sleep", "cat", "ls", "ps", "hostname", "id", "pwd", "env", "kill", "true", "false",
                             "echo", "tty", "grep", "wc", "mount", "test", "readlink", "stat", "touch"})
    REQUIRE(::symlink("busybox", (dir + "/bin/" + applet).c_str()) == 0);
  write_file(dir + "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n");
  write_file(dir + "/etc/group", "root:x:0:\nnogroup:x:65534:\n");
}

ContextGuest::ContextGuest(const std::string& suffix, bool add) : name("vt" + std::to_string(::getpid()) + "-" + suffix) {
  if (add && !static_busybox().empty()) add_guest(name, dir / "src");
}

void ContextGuest::add_guest(const std::string& guest, const std::string& tree) {
  make_busybox_guest(tree);
  ok("guest add " + guest + " --from '" + tree + "'");
  if (guest != name) extra_guests.push_back(guest);
}

ContextGuest::~ContextGuest() {
  std::vector<std::string> all = extra_guests;
  all.push_back(name);
  for (const auto& g : all) {
    vunify(pool, "stop " + g + " --timeout 5");
    vunify(pool, "umount " + g);
  }
}

CmdResult ContextGuest::sh(const std::string& script, const std::string& exec_options) const {
  return vunify(pool, "exec " + exec_options + " " + name + " -- sh -c '" + script + "'");
}

std::optional<context::RunState> ContextGuest::state() const { return context::read_state(pool, name); }

std::vector<std::string> existing_cgroups(const context::RunState& state) {
  std::vector<std::string> out;
  for (const auto& c : state.cgroups)
    if (::access(c.dir.c_str(), F_OK) == 0) out.push_back(c.dir);
  return out;
}

std::vector<pid_t> processes_in_namespace(uint64_t context_id) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  while (dirent* e = d ? ::readdir(d) : nullptr) {
    struct stat st;
    if (std::isdigit(static_cast<unsigned char>(e->d_name[0])) &&
        ::stat((std::string("/proc/") + e->d_name + "/ns/pid").c_str(), &st) == 0 && st.st_ino == context_id)
      out.push_back(std::stoi(e->d_name));
  }
  if (d) ::closedir(d);
  return out;
}

bool mounted(const std::string& path) {
  struct stat a, b;
  return ::stat(path.c_str(), &a) == 0 && ::stat((path + "/..").c_str(), &b) == 0 && a.st_dev != b.st_dev;
}

}  // namespace vunify::test
