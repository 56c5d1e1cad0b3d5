/*
 * Raw libzmq baselines for Wharf's benchmarks: what the link costs with nothing of Wharf's around it.
 *
 *   zmqbench rtt SAMPLES PACE_US        ROUTER (CURVE + ZAP) in this process, one DEALER echoing in a
 *                                       child process; 100-byte round trips, PACE_US apart (0: back to back)
 *   zmqbench idle                       ROUTER here, one connected DEALER in a child process: the RSS
 *                                       of each once the hello has arrived (a footprint floor)
 *   zmqbench fanout PEERS PER_CHILD [ROUNDS]
 *                                       ROUTER (CURVE + ZAP) here; PEERS DEALERs in child processes of
 *                                       PER_CHILD each (one thread, epoll over ZMQ_FD); each DEALER sends a
 *                                       hello, then the ROUTER sends a 100-byte job to every peer and waits
 *                                       for every 100-byte answer; ROUNDS times (1 if not given), with the
 *                                       ROUTER's RSS after rounds 1, 2, 4, 8, … and the last ("rssAfterRounds"):
 *                                       each message takes the next 64-byte slot of its pipe's 16-KiB chunk,
 *                                       so the RSS grows with the messages a connection has carried until
 *                                       every chunk has been touched
 *
 * Prints one JSON object on stdout. All traffic on 127.0.0.1. Build: cc -O2 zmqbench.c -lzmq.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void die(const char *what) {
    fprintf(stderr, "zmqbench: %s: %s\n", what, zmq_strerror(zmq_errno()));
    exit(1);
}

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kib = strtol(line + 6, NULL, 10);
    if (f) fclose(f);
    return kib;
}

static void setopt_int(void *s, int opt, int v) {
    if (zmq_setsockopt(s, opt, &v, sizeof v) != 0) die("zmq_setsockopt");
}

static char server_public[41], server_secret[41];

/* ZAP handler: accepts every CURVE client (Wharf checks the key against its table; a lookup is cheap). */
static int zap_answer(void *zap) {
    char frames[8][256];
    int sizes[8], n = 0, more = 1;
    while (more && n < 8) {
        sizes[n] = zmq_recv(zap, frames[n], sizeof frames[n], 0);
        if (sizes[n] < 0) return -1;
        int m; size_t ms = sizeof m;
        zmq_getsockopt(zap, ZMQ_RCVMORE, &m, &ms);
        more = m;
        n++;
    }
    zmq_send(zap, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(zap, frames[1], sizes[1] > 0 ? sizes[1] : 0, ZMQ_SNDMORE);
    zmq_send(zap, "200", 3, ZMQ_SNDMORE);
    zmq_send(zap, "OK", 2, ZMQ_SNDMORE);
    zmq_send(zap, "agent", 5, ZMQ_SNDMORE);
    zmq_send(zap, "", 0, 0);
    return 0;
}

static void *make_router(void *ctx, void **zap_out, char *endpoint, size_t endpoint_size) {
    void *zap = zmq_socket(ctx, ZMQ_REP);
    if (!zap || zmq_bind(zap, "inproc://zeromq.zap.01") != 0) die("zap bind");
    void *r = zmq_socket(ctx, ZMQ_ROUTER);
    setopt_int(r, ZMQ_LINGER, 0);
    setopt_int(r, ZMQ_CURVE_SERVER, 1);
    if (zmq_setsockopt(r, ZMQ_CURVE_SECRETKEY, server_secret, 40) != 0) die("secret key");
    if (zmq_setsockopt(r, ZMQ_ZAP_DOMAIN, "bench", 5) != 0) die("zap domain");
    setopt_int(r, ZMQ_ZAP_ENFORCE_DOMAIN, 1);
    setopt_int(r, ZMQ_ROUTER_MANDATORY, 1);
    setopt_int(r, ZMQ_BACKLOG, 4096);
    setopt_int(r, ZMQ_SNDHWM, 10000);
    setopt_int(r, ZMQ_RCVHWM, 100000);
    if (zmq_bind(r, "tcp://127.0.0.1:*") != 0) die("router bind");
    size_t len = endpoint_size;
    zmq_getsockopt(r, ZMQ_LAST_ENDPOINT, endpoint, &len);
    *zap_out = zap;
    return r;
}

static void *make_dealer(void *ctx, const char *endpoint) {
    char pub[41], sec[41];
    if (zmq_curve_keypair(pub, sec) != 0) die("keypair");
    void *d = zmq_socket(ctx, ZMQ_DEALER);
    if (!d) die("zmq_socket(DEALER)");
    setopt_int(d, ZMQ_LINGER, 0);
    zmq_setsockopt(d, ZMQ_CURVE_SERVERKEY, server_public, 40);
    zmq_setsockopt(d, ZMQ_CURVE_PUBLICKEY, pub, 40);
    zmq_setsockopt(d, ZMQ_CURVE_SECRETKEY, sec, 40);
    if (zmq_connect(d, endpoint) != 0) die("connect");
    return d;
}

/* Receives one ROUTER message: routing id into rid (returns its size), payload discarded. */
static int router_recv(void *r, unsigned char *rid, int ridcap) {
    int n = zmq_recv(r, rid, ridcap, ZMQ_DONTWAIT);
    if (n < 0) return -1;
    char buf[512];
    int more = 1;
    while (more) {
        zmq_recv(r, buf, sizeof buf, 0);
        int m; size_t ms = sizeof m;
        zmq_getsockopt(r, ZMQ_RCVMORE, &m, &ms);
        more = m;
    }
    return n;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- rtt ---- */

static void rtt_child(const char *endpoint) {
    void *ctx = zmq_ctx_new();
    void *d = make_dealer(ctx, endpoint);
    zmq_send(d, "hello", 5, 0);
    char buf[512];
    for (;;) {
        int n = zmq_recv(d, buf, sizeof buf, 0);
        if (n < 0) break;
        if (n == 4 && memcmp(buf, "stop", 4) == 0) break;
        zmq_send(d, buf, n > (int)sizeof buf ? (int)sizeof buf : n, 0);
    }
    zmq_close(d);
    zmq_ctx_term(ctx);
    _exit(0);
}

static int run_rtt(int samples, int pace_us) {
    void *ctx = zmq_ctx_new();
    void *zap;
    char endpoint[256];
    void *r = make_router(ctx, &zap, endpoint, sizeof endpoint);
    pid_t child = fork();
    if (child == 0) { zmq_close(r); zmq_close(zap); rtt_child(endpoint); }
    unsigned char rid[256];
    int ridlen = -1;
    zmq_pollitem_t items[2] = {{r, 0, ZMQ_POLLIN, 0}, {zap, 0, ZMQ_POLLIN, 0}};
    double t0 = now();
    while (ridlen < 0 && now() - t0 < 10) {
        zmq_poll(items, 2, 100);
        if (items[1].revents) zap_answer(zap);
        if (items[0].revents) ridlen = router_recv(r, rid, sizeof rid);
    }
    if (ridlen < 0) { fprintf(stderr, "zmqbench: no hello\n"); kill(child, SIGKILL); return 1; }
    char payload[100];
    memset(payload, 'x', sizeof payload);
    int warm = samples / 10 + 10, total = samples + warm;
    double *rt = malloc(sizeof(double) * samples);
    for (int i = 0; i < total; i++) {
        double a = now();
        zmq_send(r, rid, ridlen, ZMQ_SNDMORE);
        zmq_send(r, payload, sizeof payload, 0);
        unsigned char got[256];
        int n;
        while ((n = router_recv(r, got, sizeof got)) < 0) {
            zmq_pollitem_t one = {r, 0, ZMQ_POLLIN, 0};
            zmq_poll(&one, 1, 1000);
        }
        double b = now();
        if (i >= warm) rt[i - warm] = (b - a) * 1e6;
        if (pace_us > 0) {
            struct timespec ts = {0, pace_us * 1000L};
            nanosleep(&ts, NULL);
        }
    }
    zmq_send(r, rid, ridlen, ZMQ_SNDMORE);
    zmq_send(r, "stop", 4, 0);
    waitpid(child, NULL, 0);
    qsort(rt, samples, sizeof(double), cmp_double);
    double sum = 0;
    for (int i = 0; i < samples; i++) sum += rt[i];
    printf("{\"mode\":\"rtt\",\"curve\":true,\"payloadBytes\":100,\"samples\":%d,\"paceMicros\":%d,"
           "\"p50Micros\":%.1f,\"p90Micros\":%.1f,\"p99Micros\":%.1f,\"maxMicros\":%.1f,\"meanMicros\":%.1f}\n",
           samples, pace_us, rt[samples / 2], rt[(int)(samples * 0.9)], rt[(int)(samples * 0.99)], rt[samples - 1], sum / samples);
    zmq_close(r);
    zmq_close(zap);
    zmq_ctx_term(ctx);
    return 0;
}

/* ---- idle ---- */

static long rss_of(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kib = strtol(line + 6, NULL, 10);
    if (f) fclose(f);
    return kib;
}

static int run_idle(void) {
    void *ctx = zmq_ctx_new();
    void *zap;
    char endpoint[256];
    void *r = make_router(ctx, &zap, endpoint, sizeof endpoint);
    pid_t child = fork();
    if (child == 0) { zmq_close(r); zmq_close(zap); rtt_child(endpoint); }
    unsigned char rid[256];
    int ridlen = -1;
    zmq_pollitem_t items[2] = {{r, 0, ZMQ_POLLIN, 0}, {zap, 0, ZMQ_POLLIN, 0}};
    double t0 = now();
    while (ridlen < 0 && now() - t0 < 10) {
        zmq_poll(items, 2, 100);
        if (items[1].revents) zap_answer(zap);
        if (items[0].revents) ridlen = router_recv(r, rid, sizeof rid);
    }
    struct timespec ts = {2, 0};
    nanosleep(&ts, NULL);
    long dealer = rss_of(child), router = rss_kib();
    if (ridlen > 0) {
        zmq_send(r, rid, ridlen, ZMQ_SNDMORE);
        zmq_send(r, "stop", 4, 0);
    }
    waitpid(child, NULL, 0);
    printf("{\"mode\":\"idle\",\"connected\":%s,\"routerRssMiB\":%.1f,\"dealerRssMiB\":%.1f}\n",
           ridlen > 0 ? "true" : "false", router / 1024.0, dealer / 1024.0);
    zmq_close(r);
    zmq_close(zap);
    zmq_ctx_term(ctx);
    return ridlen > 0 ? 0 : 1;
}

/* ---- fanout ---- */

/* Answers everything readable on a DEALER; returns 0 after "stop". Re-checks ZMQ_EVENTS after every
   operation, because ZMQ_FD only signals again once the socket has been found empty. */
static int fanout_service(void *s) {
    char buf[512];
    for (;;) {
        int ev; size_t es = sizeof ev;
        if (zmq_getsockopt(s, ZMQ_EVENTS, &ev, &es) != 0 || !(ev & ZMQ_POLLIN)) return 1;
        int m;
        while ((m = zmq_recv(s, buf, sizeof buf, ZMQ_DONTWAIT)) >= 0) {
            if (m == 4 && memcmp(buf, "stop", 4) == 0) return 0;
            zmq_send(s, buf, m > (int)sizeof buf ? (int)sizeof buf : m, ZMQ_DONTWAIT);
        }
    }
}

static void fanout_child(const char *endpoint, int count) {
    void *ctx = zmq_ctx_new();
    zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, count + 16);
    void **sockets = calloc(count, sizeof(void *));
    int ep = epoll_create1(0);
    for (int i = 0; i < count; i++) {
        sockets[i] = make_dealer(ctx, endpoint);
        zmq_send(sockets[i], "hello", 5, ZMQ_DONTWAIT);
        int fd; size_t fs = sizeof fd;
        zmq_getsockopt(sockets[i], ZMQ_FD, &fd, &fs);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    int running = 1;
    for (int i = 0; i < count && running; i++) running = fanout_service(sockets[i]);
    struct epoll_event events[256];
    while (running) {
        int n = epoll_wait(ep, events, 256, 1000);
        for (int k = 0; k < n && running; k++) running = fanout_service(sockets[events[k].data.u32]);
    }
    for (int i = 0; i < count; i++) zmq_close(sockets[i]);
    zmq_ctx_term(ctx);
    _exit(0);
}

static int run_fanout(int peers, int per_child, int rounds) {
    void *ctx = zmq_ctx_new();
    zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, peers + 64);
    void *zap;
    char endpoint[256];
    void *r = make_router(ctx, &zap, endpoint, sizeof endpoint);
    long rss_before = rss_kib();
    int children = (peers + per_child - 1) / per_child;
    pid_t *pids = calloc(children, sizeof(pid_t));
    double t0 = now();
    for (int c = 0; c < children; c++) {
        int count = c == children - 1 ? peers - per_child * c : per_child;
        pids[c] = fork();
        if (pids[c] == 0) { zmq_close(r); zmq_close(zap); fanout_child(endpoint, count); }
    }
    unsigned char (*rids)[64] = calloc(peers, 64);
    int *ridlens = calloc(peers, sizeof(int));
    int hellos = 0;
    zmq_pollitem_t items[2] = {{r, 0, ZMQ_POLLIN, 0}, {zap, 0, ZMQ_POLLIN, 0}};
    while (hellos < peers && now() - t0 < 120) {
        zmq_poll(items, 2, 100);
        while (zmq_poll(items + 1, 1, 0) > 0) zap_answer(zap);
        int n;
        while (hellos < peers && (n = router_recv(r, rids[hellos], 64)) >= 0) ridlens[hellos++] = n;
    }
    double connected = now() - t0;
    long rss_connected = rss_kib();
    char job[100];
    memset(job, 'j', sizeof job);
    double round = 0;
    int answers = 0, unsent = 0;
    char marks[4096] = "";
    size_t marks_len = 0;
    for (int rnd = 1; rnd <= rounds; rnd++) {
        double t1 = now();
        int sent = 0;
        answers = 0;
        unsent = 0;
        while (answers < hellos && now() - t1 < 60) {
            while (sent < hellos) {
                if (zmq_send(r, rids[sent], ridlens[sent], ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) { unsent++; sent++; continue; }
                zmq_send(r, job, sizeof job, 0);
                sent++;
                if (sent % 512 == 0) break;  /* let answers in while sending */
            }
            zmq_poll(items, 1, sent < hellos ? 0 : 100);
            unsigned char got[64];
            while (router_recv(r, got, sizeof got) >= 0) answers++;
            if (answers + unsent >= hellos) break;
        }
        if (rnd == 1) round = now() - t1;  /* the first round: the scale part's figure */
        if (answers < hellos) break;
        if ((rnd & (rnd - 1)) == 0 || rnd == rounds)
            marks_len += (size_t)snprintf(marks + marks_len, sizeof marks - marks_len, "%s\"%d\":%.1f",
                                          marks_len ? "," : "", rnd, rss_kib() / 1024.0);
    }
    for (int i = 0; i < hellos; i++) {
        zmq_send(r, rids[i], ridlens[i], ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send(r, "stop", 4, ZMQ_DONTWAIT);
    }
    for (int c = 0; c < children; c++) waitpid(pids[c], NULL, 0);
    printf("{\"mode\":\"fanout\",\"curve\":true,\"zap\":true,\"peers\":%d,\"connected\":%d,\"connectSeconds\":%.3f,"
           "\"routerRssMiB\":%.1f,\"routerRssIdleMiB\":%.1f,\"roundSeconds\":%.3f,\"answers\":%d,\"unsent\":%d,"
           "\"rounds\":%d,\"rssAfterRounds\":{%s}}\n",
           peers, hellos, connected, rss_connected / 1024.0, rss_before / 1024.0, round, answers, unsent, rounds, marks);
    zmq_close(r);
    zmq_close(zap);
    zmq_ctx_term(ctx);
    return answers == peers ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: zmqbench rtt SAMPLES PACE_US | zmqbench idle | zmqbench fanout PEERS PER_CHILD [ROUNDS]\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
    if (zmq_curve_keypair(server_public, server_secret) != 0) die("server keypair");
    if (strcmp(argv[1], "rtt") == 0 && argc == 4) return run_rtt(atoi(argv[2]), atoi(argv[3]));
    if (strcmp(argv[1], "idle") == 0) return run_idle();
    if (strcmp(argv[1], "fanout") == 0 && (argc == 4 || argc == 5)) {
        int rounds = argc == 5 ? atoi(argv[4]) : 1;
        if (rounds < 1) { fprintf(stderr, "zmqbench: ROUNDS must be at least 1\n"); return 2; }
        return run_fanout(atoi(argv[2]), atoi(argv[3]), rounds);
    }
    fprintf(stderr, "zmqbench: bad arguments\n");
    return 2;
}
