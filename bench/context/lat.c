/* LMbench-style process latencies: fork+exit, fork+exec, fork+sh -c, in microseconds per op.
   Static, so the same binary runs in a guest and natively. Usage: lat N SHELL TRUE */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main(int argc, char** argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1000;
  const char* sh = argc > 2 ? argv[2] : "/bin/sh";
  const char* tru = argc > 3 ? argv[3] : "/bin/true";
  double t0 = now();
  for (int i = 0; i < n; ++i) {
    pid_t p = fork();
    if (p == 0) _exit(0);
    waitpid(p, NULL, 0);
  }
  double t1 = now();
  for (int i = 0; i < n; ++i) {
    pid_t p = fork();
    if (p == 0) {
      execl(tru, tru, (char*)NULL);
      _exit(127);
    }
    waitpid(p, NULL, 0);
  }
  double t2 = now();
  for (int i = 0; i < n / 4; ++i) {
    pid_t p = fork();
    if (p == 0) {
      execl(sh, sh, "-c", tru, (char*)NULL);
      _exit(127);
    }
    waitpid(p, NULL, 0);
  }
  double t3 = now();
  printf("%.1f %.1f %.1f\n", (t1 - t0) / n, (t2 - t1) / n, (t3 - t2) / (n / 4));
  return 0;
}
