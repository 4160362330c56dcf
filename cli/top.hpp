// `vunify top`: a live table of the running guests (CPU %, memory, tasks, block I/O, network
// bytes, and what each guest's view daemon costs), refreshed every interval.
#pragma once
#include <string>
#include <vector>

namespace vunify::cli {

struct TopOptions {
  std::vector<std::string> guests;  // empty: every running guest
  int count = 0;                    // tables to print, then exit (0: until q, Ctrl-C or a signal)
  double interval = 1.0;            // seconds between refreshes
  bool json = false;                // one JSON object per refresh, a line each
};

// On a terminal, redraws the screen and exits on q (the terminal's mode is restored); else
// prints one plain table (or JSON line) per refresh.
void run_top(const std::string& pool_root, const TopOptions& options);

}  // namespace vunify::cli
