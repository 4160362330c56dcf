/* Touches N MiB of fresh anonymous memory, one write per 4 KiB page, R times; prints the
   median time of one pass in microseconds. Static, so it runs in a guest as natively.
   Usage: touchmem N R */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

int main(int argc, char** argv) {
  size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 1024;
  int rounds = argc > 2 ? atoi(argv[2]) : 3;
  if (rounds < 1 || rounds > 64) rounds = 3;
  double t[64];
  for (int r = 0; r < rounds; ++r) {
    size_t len = mib << 20;
    double t0 = now();
    char* p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      perror("mmap");
      return 1;
    }
    for (size_t off = 0; off < len; off += 4096) p[off] = 1;
    munmap(p, len);
    t[r] = now() - t0;
  }
  qsort(t, (size_t)rounds, sizeof t[0], cmp);
  printf("%.0f\n", t[rounds / 2]);
  return 0;
}
