#include "cli/top.hpp"

#include <dirent.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/format.hpp"
#include "context/state.hpp"
#include "context/usage.hpp"
#include "os/error.hpp"
#include "os/unique_fd.hpp"
#include "unify/pool.hpp"

namespace vunify::cli {

namespace {

struct Sample {
  pid_t pid1 = 0;
  int64_t at_ns = 0;
  context::Usage guest, view;
  context::NetBytes net;
};

struct Row {
  std::string name;
  Sample now;
  double cpu = 0, view_cpu = 0;                              // % of one core over the interval
  double read_rate = 0, write_rate = 0, rx_rate = 0, tx_rate = 0;  // bytes/s over the interval
};

int64_t monotonic_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Names with a state file in POOL/run (the running guests and any whose cleanup is due); the
// memory watchdog's NAME.events.json files are not.
std::vector<std::string> recorded_guests(const std::string& pool_root) {
  std::vector<std::string> out;
  DIR* d = ::opendir(context::run_dir(pool_root).c_str());
  while (dirent* e = d ? ::readdir(d) : nullptr) {
    std::string n = e->d_name;
    auto ends = [&](std::string_view suffix) { return n.size() > suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0; };
    if (ends(".json") && !ends(".events.json")) out.push_back(n.substr(0, n.size() - 5));
  }
  if (d) ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<Sample> sample(const std::string& pool_root, const std::string& guest) {
  auto s = context::read_state(pool_root, guest);
  if (!s || !context::open_live(s->pid1, s->pid1_start)) return std::nullopt;
  Sample out;
  out.pid1 = s->pid1;
  out.at_ns = monotonic_ns();
  out.guest = context::cgroup_usage(s->cgroups);
  out.view = context::cgroup_usage(s->view.cgroups);
  out.net = context::net_bytes(s->pid1);
  return out;
}

double rate(uint64_t now, uint64_t before, double seconds) {
  return now >= before && seconds > 0 ? static_cast<double>(now - before) / seconds : 0;
}

class Sampler {
 public:
  Sampler(std::string pool_root, std::vector<std::string> guests) : pool_(std::move(pool_root)), guests_(std::move(guests)) {}

  // Rows for the guests running now, rates against the previous call (0 on a guest's first).
  std::vector<Row> rows() {
    std::map<std::string, Sample> next;
    std::vector<Row> out;
    for (const auto& g : guests_.empty() ? recorded_guests(pool_) : guests_) {
      auto s = sample(pool_, g);
      if (!s) continue;
      Row r{g, *s};
      auto before = last_.find(g);
      if (before != last_.end() && before->second.pid1 == s->pid1) {
        const Sample& b = before->second;
        double secs = static_cast<double>(s->at_ns - b.at_ns) / 1e9;
        r.cpu = rate(s->guest.cpu_ns, b.guest.cpu_ns, secs) / 1e7;
        r.view_cpu = rate(s->view.cpu_ns, b.view.cpu_ns, secs) / 1e7;
        r.read_rate = rate(s->guest.io_read + s->view.io_read, b.guest.io_read + b.view.io_read, secs);
        r.write_rate = rate(s->guest.io_write + s->view.io_write, b.guest.io_write + b.view.io_write, secs);
        r.rx_rate = rate(s->net.rx, b.net.rx, secs);
        r.tx_rate = rate(s->net.tx, b.net.tx, secs);
      }
      next[g] = *s;
      out.push_back(r);
    }
    last_ = std::move(next);
    return out;
  }

 private:
  std::string pool_;
  std::vector<std::string> guests_;
  std::map<std::string, Sample> last_;
};

std::string table(const std::vector<Row>& rows) {
  std::string out = fmt::format("{:<20} {:>6} {:>10} {:>5} {:>10} {:>10} {:>10} {:>10} {:>9} {:>10} {:>10}\n", "GUEST", "CPU%",
                                "MEM", "PIDS", "IO-READ", "IO-WRITE", "NET-RX", "NET-TX", "VIEW-CPU%", "VIEW-MEM", "VIEW-IO");
  for (const Row& r : rows) {
    const Sample& s = r.now;
    out += fmt::format("{:<20} {:>6.1f} {:>10} {:>5} {:>10} {:>10} {:>10} {:>10} {:>9.1f} {:>10} {:>10}\n", r.name, r.cpu,
                       human_bytes(s.guest.memory), s.guest.pids, human_bytes(s.guest.io_read + s.view.io_read),
                       human_bytes(s.guest.io_write + s.view.io_write), human_bytes(s.net.rx), human_bytes(s.net.tx),
                       r.view_cpu, human_bytes(s.view.memory), human_bytes(s.view.io_read + s.view.io_write));
  }
  if (rows.empty()) out += "(no guest is running)\n";
  return out;
}

nlohmann::json usage_json(const context::Usage& u) {
  return {{"cpu_ns", u.cpu_ns}, {"memory", u.memory}, {"pids", u.pids}, {"io_read", u.io_read}, {"io_write", u.io_write}};
}

std::string json_line(const std::vector<Row>& rows) {
  nlohmann::json guests = nlohmann::json::array();
  auto round1 = [](double v) { return std::round(v * 10) / 10; };
  for (const Row& r : rows)
    guests.push_back({{"name", r.name},
                      {"pid1", r.now.pid1},
                      {"cpu_percent", round1(r.cpu)},
                      {"guest", usage_json(r.now.guest)},
                      {"view", usage_json(r.now.view)},
                      {"view_cpu_percent", round1(r.view_cpu)},
                      {"net_rx", r.now.net.rx},
                      {"net_tx", r.now.net.tx},
                      {"rates", {{"io_read", r.read_rate}, {"io_write", r.write_rate}, {"net_rx", r.rx_rate}, {"net_tx", r.tx_rate}}}});
  return nlohmann::json({{"time", std::time(nullptr)}, {"guests", guests}}).dump() + "\n";
}

// SIGINT, SIGTERM and SIGHUP are read from a signalfd while top runs (restored after), so every
// way out goes through the destructors that restore the terminal.
class SignalGuard {
 public:
  SignalGuard() {
    sigemptyset(&set_);
    for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set_, s);
    ::sigprocmask(SIG_BLOCK, &set_, &old_);
    fd_.reset(::signalfd(-1, &set_, SFD_CLOEXEC));
    if (!fd_) os::throw_errno("signalfd", "");
  }
  ~SignalGuard() { ::sigprocmask(SIG_SETMASK, &old_, nullptr); }
  int fd() const { return fd_.get(); }

 private:
  sigset_t set_{}, old_{};
  os::unique_fd fd_;
};

// The terminal in non-canonical mode without echo (a key is read at once), the cursor hidden;
// all restored on destruction.
class TerminalMode {
 public:
  TerminalMode() {
    active_ = ::isatty(STDIN_FILENO) && ::tcgetattr(STDIN_FILENO, &saved_) == 0;
    if (active_) {
      termios raw = saved_;
      raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
      raw.c_cc[VMIN] = 0;
      raw.c_cc[VTIME] = 0;
      ::tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    }
    fmt::print("\033[?25l");
  }
  ~TerminalMode() {
    if (active_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
    fmt::print("\033[?25h");
    std::fflush(stdout);
  }
  bool reads_keys() const { return active_; }

 private:
  termios saved_{};
  bool active_ = false;
};

// Waits until `deadline_ns` (monotonic); false if a signal or the q key asked to quit.
bool wait_until(int64_t deadline_ns, int signal_fd, bool keys) {
  for (;;) {
    int64_t left = deadline_ns - monotonic_ns();
    if (left <= 0) return true;
    pollfd fds[2] = {{signal_fd, POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
    int rc = ::poll(fds, keys ? 2 : 1, static_cast<int>((left + 999999) / 1000000));
    if (rc < 0 && errno != EINTR) os::throw_errno("poll", "");
    if (rc <= 0) continue;
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo info;  // consumed, or unblocking it at the end would deliver it
      ssize_t ignored = ::read(signal_fd, &info, sizeof info);
      (void)ignored;
      return false;
    }
    if (keys && (fds[1].revents & (POLLIN | POLLHUP))) {
      char c = 0;
      ssize_t n = ::read(STDIN_FILENO, &c, 1);
      if (n <= 0 || c == 'q' || c == 'Q') return false;
    }
  }
}

}  // namespace

void run_top(const std::string& pool_root, const TopOptions& o) {
  if (!(o.interval >= 0.1 && o.interval <= 3600)) throw os::UserError("top: --interval must be 0.1 to 3600 seconds");
  for (const auto& g : o.guests) unify::Pool::check_name(g, "guest");
  {
    unify::Pool pool(pool_root, unify::Access::Read);
    for (const auto& g : o.guests)
      if (!pool.has_guest(g)) throw os::UserError(fmt::format("no guest named '{}' in pool {}", g, pool_root));
  }
  Sampler sampler(pool_root, o.guests);
  SignalGuard signals;
  bool screen = ::isatty(STDOUT_FILENO) && !o.json;
  std::optional<TerminalMode> terminal;
  if (screen) terminal.emplace();
  sampler.rows();  // the first sample: rates need two
  auto step = static_cast<int64_t>(o.interval * 1e9);
  int64_t next = monotonic_ns() + step;
  for (int shown = 0; o.count == 0 || shown < o.count; ++shown, next += step) {
    if (!wait_until(next, signals.fd(), terminal && terminal->reads_keys())) break;
    auto rows = sampler.rows();
    if (o.json) {
      fmt::print("{}", json_line(rows));
    } else if (screen) {
      char clock[16];
      time_t now = std::time(nullptr);
      struct tm tm {};
      std::strftime(clock, sizeof clock, "%H:%M:%S", ::localtime_r(&now, &tm));
      fmt::print("\033[H\033[2Jvunify top - {} - {} running - q quits\n\n{}", clock, rows.size(), table(rows));
    } else {
      fmt::print("{}{}", shown ? "\n" : "", table(rows));
    }
    std::fflush(stdout);
  }
}

}  // namespace vunify::cli
