/* timeit: interleaved repetitions of several commands, medians of wall and CPU time.
   Usage: timeit REPS NAME CMD ARG... [:: NAME CMD ARG...]...
   Repetition r runs every command once, starting with command r % K (so none always runs
   first or after the same one). This process is a child subreaper: a run ends when the
   command and every process it left behind (vunify's detached supervisor, bwrap's and
   nspawn's children) have exited, and the CPU time is that of all of them (user + system,
   from RUSAGE_CHILDREN). Output, one line per command:
     NAME median_wall_us median_cpu_us min_wall_us */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { kMaxCmds = 8 };

struct Cmd {
  const char* name;
  char** argv;
  double* wall;
  double* cpu;
};

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static double cpu_us(void) {
  struct rusage r;
  getrusage(RUSAGE_CHILDREN, &r);
  return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1e6 + r.ru_utime.tv_usec + r.ru_stime.tv_usec;
}

/* Runs one command to the end of its last descendant; false if it failed. */
static int run(const struct Cmd* c, double* wall, double* cpu) {
  double c0 = cpu_us(), t0 = now_us();
  pid_t pid = fork();
  if (pid < 0) return 0;
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    execvp(c->argv[0], c->argv);
    _exit(127);
  }
  int ok = 1, status;
  for (pid_t p; (p = wait(&status)) != -1 || errno == EINTR;)
    if (p == pid && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) ok = 0;
  *wall = now_us() - t0;
  *cpu = cpu_us() - c0;
  return ok;
}

static int by_value(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

static double median(double* v, int n) {
  qsort(v, (size_t)n, sizeof *v, by_value);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: timeit REPS NAME CMD ARG... [:: NAME CMD ARG...]...\n");
    return 2;
  }
  int reps = atoi(argv[1]), k = 0;
  struct Cmd cmds[kMaxCmds];
  for (int i = 2; i < argc && k < kMaxCmds; ++i) {
    cmds[k].name = argv[i];
    cmds[k].argv = &argv[i + 1];
    int j = i + 1;
    while (j < argc && strcmp(argv[j], "::") != 0) ++j;
    argv[j < argc ? j : argc] = NULL;
    cmds[k].wall = calloc((size_t)reps, sizeof(double));
    cmds[k].cpu = calloc((size_t)reps, sizeof(double));
    ++k;
    i = j;
  }
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  for (int r = 0; r < reps; ++r)
    for (int i = 0; i < k; ++i) {
      struct Cmd* c = &cmds[(r + i) % k];
      if (!run(c, &c->wall[r], &c->cpu[r])) {
        fprintf(stderr, "timeit: %s failed (repetition %d)\n", c->name, r + 1);
        return 1;
      }
    }
  for (int i = 0; i < k; ++i) {
    double wall = median(cmds[i].wall, reps), cpu = median(cmds[i].cpu, reps);
    printf("%s %.0f %.0f %.0f\n", cmds[i].name, wall, cpu, cmds[i].wall[0]);
  }
  return 0;
}
