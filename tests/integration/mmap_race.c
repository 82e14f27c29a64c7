// For full_mount.sh: a write(2) acknowledged on a near-full mount (direct I/O chosen by the
// daemon) must survive a shared mapping of the same page written at the same time.
// Per trial, a thread writes bytes [0, 100) of page 0 through a MAP_SHARED mapping over and
// over (dropping its page table entry each time, so that each write faults), while the main
// thread pwrite(2)s bytes [1000, 1100) once; after fsync and close, a fresh open reads them.
// Prints the number of trials whose acknowledged pwrite was lost; exits 2 on an I/O error.
// Usage: mmap_race PATH TRIALS
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static char* map;
static volatile int started;

static void* Toucher(void* arg) {
  (void)arg;
  for (int i = 0; i < 3000; i++) {
    memset(map, 'a' + i % 26, 100);
    madvise(map, 4096, MADV_DONTNEED);
    if (i == 20) started = 1;
  }
  return NULL;
}

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  int lost = 0;
  for (int t = 0; t < atoi(argv[2]); t++) {
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, 4096) != 0) return 2;
    map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) return 2;
    started = 0;
    pthread_t th;
    pthread_create(&th, NULL, Toucher, NULL);
    while (!started) usleep(10);
    usleep(rand() % 500);
    char want[100], got[100];
    memset(want, 'A' + t % 26, sizeof(want));
    if (pwrite(fd, want, sizeof(want), 1000) != (ssize_t)sizeof(want)) return 2;
    pthread_join(th, NULL);
    munmap(map, 4096);
    if (fsync(fd) != 0 || close(fd) != 0) return 2;
    fd = open(argv[1], O_RDONLY);
    if (fd < 0 || pread(fd, got, sizeof(got), 1000) != (ssize_t)sizeof(got)) return 2;
    close(fd);
    lost += memcmp(want, got, sizeof(want)) != 0;
  }
  printf("%d\n", lost);
  return 0;
}
