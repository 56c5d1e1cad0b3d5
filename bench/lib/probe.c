/* probe.c — two costs of this machine that set how much a thread hand-off and a durable commit
 * cost Wharf here, measured in the same run as the benchmarks (bench/FINDINGS.md):
 *   - a 4-KiB pwrite + fdatasync on the given directory's file system: wall and CPU time;
 *   - a futex hand-off between two threads (wake the other, sleep until it wakes you back), with
 *     the two threads pinned to different vCPUs and to the same one: CPU time per round trip.
 * Usage: probe DIR — prints one JSON object. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static double cpu(void) {
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + r.ru_stime.tv_sec + r.ru_stime.tv_usec / 1e6;
}

static void pin(int cpu_index) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu_index, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static atomic_int turn;
static int rounds;
static int other_cpu;

static void wait_while(int value) {
    while (atomic_load(&turn) == value) syscall(SYS_futex, &turn, FUTEX_WAIT_PRIVATE, value, NULL, NULL, 0);
}

static void wake(void) { syscall(SYS_futex, &turn, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0); }

static void *partner(void *unused) {
    (void)unused;
    pin(other_cpu);
    for (int i = 0; i < rounds; i++) {
        wait_while(0);
        atomic_store(&turn, 0);
        wake();
    }
    return NULL;
}

/* CPU time of the whole process per round trip, and wall time per round trip, in µs. */
static void handoff(int cpu_a, int cpu_b, int n, double *cpu_us, double *wall_us) {
    pthread_t thread;
    rounds = n;
    other_cpu = cpu_b;
    atomic_store(&turn, 0);
    pin(cpu_a);
    double c0 = cpu(), t0 = now();
    pthread_create(&thread, NULL, partner, NULL);
    for (int i = 0; i < n; i++) {
        atomic_store(&turn, 1);
        wake();
        wait_while(1);
    }
    pthread_join(thread, NULL);
    *cpu_us = (cpu() - c0) / n * 1e6;
    *wall_us = (now() - t0) / n * 1e6;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: probe DIR\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/probe-sync.dat", argv[1]);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        perror(path);
        return 1;
    }
    static char block[4096];
    int syncs = 500;
    double c0 = cpu(), t0 = now();
    for (int i = 0; i < syncs; i++) {
        block[0] = (char)i;
        if (pwrite(fd, block, sizeof block, (off_t)(i % 64) * 4096) != sizeof block || fdatasync(fd) != 0) {
            perror("pwrite/fdatasync");
            return 1;
        }
    }
    double sync_wall = (now() - t0) / syncs * 1e6, sync_cpu = (cpu() - c0) / syncs * 1e6;
    close(fd);
    unlink(path);

    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    double cross_cpu = -1, cross_wall = -1, same_cpu, same_wall;
    if (cpus >= 2) handoff(0, 1, 20000, &cross_cpu, &cross_wall);
    handoff(0, 0, 20000, &same_cpu, &same_wall);
    printf("{\"fdatasync\": {\"wallMicros\": %.1f, \"cpuMicros\": %.1f}, "
           "\"handoff\": {\"acrossCpusCpuMicros\": %.1f, \"acrossCpusWallMicros\": %.1f, "
           "\"oneCpuCpuMicros\": %.1f, \"oneCpuWallMicros\": %.1f}}\n",
           sync_wall, sync_cpu, cross_cpu, cross_wall, same_cpu, same_wall);
    return 0;
}
