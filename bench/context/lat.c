/* LMbench-style process latencies: fork+exit, fork+exec, fork+sh -c, in microseconds per op.
   Static, so the same binary runs in a guest and natively. Usage: lat N SHELL TRUE
   Prints six numbers: wall time per op of the three loops, then CPU time per op (user +
   system of this process and its children), which a loaded machine disturbs less. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static double cpu(void) {
  double us = 0;
  struct rusage r;
  for (int who = 0; who < 2; ++who) {
    getrusage(who ? RUSAGE_CHILDREN : RUSAGE_SELF, &r);
    us += (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1e6 + r.ru_utime.tv_usec + r.ru_stime.tv_usec;
  }
  return us;
}

int main(int argc, char** argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1000;
  const char* sh = argc > 2 ? argv[2] : "/bin/sh";
  const char* tru = argc > 3 ? argv[3] : "/bin/true";
  double t[4], c[4];
  t[0] = now(), c[0] = cpu();
  for (int i = 0; i < n; ++i) {
    pid_t p = fork();
    if (p == 0) _exit(0);
    waitpid(p, NULL, 0);
  }
  t[1] = now(), c[1] = cpu();
  for (int i = 0; i < n; ++i) {
    pid_t p = fork();
    if (p == 0) {
      execl(tru, tru, (char*)NULL);
      _exit(127);
    }
    waitpid(p, NULL, 0);
  }
  t[2] = now(), c[2] = cpu();
  for (int i = 0; i < n / 4; ++i) {
    pid_t p = fork();
    if (p == 0) {
      execl(sh, sh, "-c", tru, (char*)NULL);
      _exit(127);
    }
    waitpid(p, NULL, 0);
  }
  t[3] = now(), c[3] = cpu();
  printf("%.1f %.1f %.1f %.1f %.1f %.1f\n", (t[1] - t[0]) / n, (t[2] - t[1]) / n, (t[3] - t[2]) / (n / 4),
         (c[1] - c[0]) / n, (c[2] - c[1]) / n, (c[3] - c[2]) / (n / 4));
  return 0;
}
