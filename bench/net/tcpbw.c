/* TCP throughput, no iperf: `tcpbw server IP PORT` accepts one connection and reads it to EOF;
 * `tcpbw client IP PORT BYTES` sends BYTES, waits for the server's close and prints Mbit/s
 * (connect to close). Built static so it runs in a busybox guest. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  if (argc < 4) return 2;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[3]))};
  if (inet_pton(AF_INET, argv[2], &a.sin_addr) != 1) return 2;
  static char buf[256 * 1024];
  int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  if (!strcmp(argv[1], "server")) {
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(s, (struct sockaddr*)&a, sizeof a) || listen(s, 1)) { perror("bind"); return 1; }
    printf("ready\n");
    fflush(stdout);
    int c = accept(s, 0, 0);
    while (read(c, buf, sizeof buf) > 0) {}
    close(c);
    return 0;
  }
  long long total = atoll(argv[4]), sent = 0;
  for (int i = 0; connect(s, (struct sockaddr*)&a, sizeof a) != 0; ++i) {
    if (i == 200) { perror("connect"); return 1; }
    usleep(10000);
    close(s);
    s = socket(AF_INET, SOCK_STREAM, 0);
  }
  double t0 = now();
  while (sent < total) {
    ssize_t n = write(s, buf, total - sent < (long long)sizeof buf ? (size_t)(total - sent) : sizeof buf);
    if (n <= 0) { perror("write"); return 1; }
    sent += n;
  }
  shutdown(s, SHUT_WR);
  while (read(s, buf, sizeof buf) > 0) {}
  printf("%.1f\n", sent * 8 / 1e6 / (now() - t0));
  return 0;
}
