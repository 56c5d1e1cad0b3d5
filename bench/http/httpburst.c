/*
 * The webhook sender of Wharf's benchmarks: POSTs every path of a file once, over CONNS keep-alive
 * HTTP/1.1 connections on one thread (epoll), and writes one JSON line per call (`wharfbench.py
 * round`, `dispatch` and `client-summary` read it).
 *
 *   httpburst URL PATHS_FILE CONNS OUT_JSONL [RATE]
 *
 * Without RATE (or with 0) every call is due at the start and goes as soon as a connection is free:
 * the scale round's burst. With RATE, call i is due at start + i/RATE (an open loop, the dispatch
 * part's paced client): it goes at that time on a free connection, or, if every connection is
 * waiting for an answer, as soon as one is free; its line keeps the time it was due ("scheduled"),
 * so a late start counts against the server, not for it.
 *
 * URL is http://HOST:PORT (an IPv4 address; the bench uses 127.0.0.1). A call whose connection
 * fails or closes before its answer is recorded with status 0 and the connection is opened again;
 * every path is sent once, none twice. Times are wall-clock seconds (CLOCK_REALTIME), like the
 * fleet's log, which the round is measured against.
 *
 * Why C: the Python asyncio senders spent ~75 µs of CPU per call (0.76 s in a 10,000-call round
 * on a 2-vCPU machine whose round is CPU-bound; a quarter of a vCPU at 1,000 calls/s in the paced
 * runs); this one spends a fraction of that, so the figures measure the server and the fleet
 * rather than the load generator. Build: cc -O2 httpburst.c.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define BUFSIZE 65536

struct record {
    double sent, accepted;
    int status;
    char job[64];
};

struct conn {
    int fd;
    long index;        /* the call in flight, -1 if none */
    size_t have;       /* bytes in buf */
    char buf[BUFSIZE];
};

static char **paths;
static long npaths, next_path;
static struct record *records;
static struct sockaddr_in addr;
static char host_header[128];
static int epfd;
static double start, rate;   /* rate 0: every call is due at start */
static int timer_fd = -1;    /* wakes the loop when the next paced call is due */
static struct conn **idle;   /* connections with no call in flight */
static int nidle;

static double wall(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double due(long index) {
    return rate > 0 ? start + (double)index / rate : start;
}

static void die(const char *what) {
    fprintf(stderr, "httpburst: %s: %s\n", what, strerror(errno));
    exit(2);
}

static int open_connection(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void watch(struct conn *c) {
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
}

/* Sends call `index` on c (idle); returns -1 if the connection failed. */
static int send_call(struct conn *c, long index) {
    char request[4096];
    int n = snprintf(request, sizeof request, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 0\r\n\r\n",
                     paths[index], host_header);
    if (n <= 0 || (size_t)n >= sizeof request) {
        fprintf(stderr, "httpburst: path %ld too long\n", index);
        exit(2);
    }
    c->index = index;
    records[index].sent = wall();
    /* A few hundred bytes on a fresh or idle keep-alive connection: the socket buffer takes it. */
    ssize_t off = 0;
    while (off < n) {
        ssize_t w = send(c->fd, request + off, (size_t)(n - off), MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        off += w;
    }
    return 0;
}

static void close_conn(struct conn *c) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->index = -1;
    c->have = 0;
}

static void dispatch_ready(void);

/* c has no call in flight: keep it for the next call, or close it when no call is left (so that
   epoll does not report it again if the server closes it while the others finish). */
static void release(struct conn *c) {
    c->index = -1;
    if (next_path >= npaths) {
        close_conn(c);
        return;
    }
    idle[nidle++] = c;
}

/* The call on c failed: record it, open a new connection, go on with the next call. */
static void fail_and_reconnect(struct conn *c) {
    if (c->index >= 0) {
        records[c->index].accepted = wall();
        records[c->index].status = 0;
    }
    close_conn(c);
    if (next_path >= npaths) return;
    c->fd = open_connection();
    watch(c);
    release(c);
}

/* Sends every call that is due on the idle connections, then sets the timer for the next one. */
static void dispatch_ready(void) {
    double now = wall();
    while (nidle > 0 && next_path < npaths && due(next_path) <= now) {
        struct conn *c = idle[--nidle];
        if (send_call(c, next_path++) < 0) fail_and_reconnect(c);
    }
    if (timer_fd < 0) return;
    /* Armed only while a connection is idle: then the next call is due in the future. Otherwise
       the next answer sends it, late, and an expired timer would only spin the loop. */
    struct itimerspec when = {0};
    if (nidle > 0 && next_path < npaths) {
        double at = due(next_path);
        when.it_value.tv_sec = (time_t)at;
        when.it_value.tv_nsec = (long)((at - (double)(time_t)at) * 1e9);
        if (when.it_value.tv_nsec >= 1000000000L) when.it_value.tv_nsec = 999999999L;
        if (when.it_value.tv_sec == 0 && when.it_value.tv_nsec == 0) when.it_value.tv_nsec = 1;
    }
    if (timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &when, NULL) < 0) die("timerfd_settime");
}

static int in_flight(struct conn *cs, int conns) {
    int n = 0;
    for (int i = 0; i < conns; i++)
        if (cs[i].fd >= 0 && cs[i].index >= 0) n++;
    return n;
}

/* Length of a complete response at the start of buf (head and body), or 0 if not complete yet. */
static size_t complete_response(const char *buf, size_t have, int *status, const char **body, size_t *body_len) {
    const char *end = memmem(buf, have, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t head = (size_t)(end - buf) + 4;
    size_t length = 0;
    for (const char *line = buf; line < end;) {
        const char *eol = memmem(line, (size_t)(end - line) + 2, "\r\n", 2);
        if (!eol) break;
        if (eol - line > 15 && strncasecmp(line, "content-length:", 15) == 0) length = strtoul(line + 15, NULL, 10);
        line = eol + 2;
    }
    if (have < head + length) return 0;
    *status = have >= 12 ? atoi(buf + 9) : 0;
    *body = buf + head;
    *body_len = length;
    return head + length;
}

static void job_id(const char *body, size_t len, char *out, size_t out_size) {
    static const char key[] = "\"id\":\"job_";
    out[0] = 0;
    const char *at = memmem(body, len, key, sizeof key - 1);
    if (!at) return;
    const char *id = at + 6; /* at "job_" */
    size_t n = 0;
    while (id + n < body + len && n + 1 < out_size &&
           (n < 4 || (id[n] >= '0' && id[n] <= '9') || (id[n] >= 'a' && id[n] <= 'z') || (id[n] >= 'A' && id[n] <= 'Z')))
        n++;
    memcpy(out, id, n);
    out[n] = 0;
}

/* Reads what c has: an answer frees c for the next call. */
static void readable(struct conn *c) {
    for (;;) {
        if (c->have == BUFSIZE) {
            fprintf(stderr, "httpburst: a response larger than %d bytes\n", BUFSIZE);
            exit(2);
        }
        ssize_t r = recv(c->fd, c->buf + c->have, BUFSIZE - c->have, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (r <= 0) {
            fail_and_reconnect(c);
            dispatch_ready();
            return;
        }
        c->have += (size_t)r;
        int status;
        const char *body;
        size_t body_len;
        size_t used = complete_response(c->buf, c->have, &status, &body, &body_len);
        if (!used) continue;
        if (c->index >= 0) {
            struct record *rec = &records[c->index];
            rec->accepted = wall();
            rec->status = status;
            job_id(body, body_len, rec->job, sizeof rec->job);
        }
        memmove(c->buf, c->buf + used, c->have - used);
        c->have -= used;
        release(c);
        dispatch_ready();
        return;
    }
}

/* An idle connection (waiting for its next paced call) became readable: the server closed it.
   Open a new one in its place; it stays in the idle list. Anything else it sent is dropped. */
static void idle_readable(struct conn *c) {
    char scratch[4096];
    ssize_t r = recv(c->fd, scratch, sizeof scratch, MSG_DONTWAIT);
    if (r > 0 || (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))) return;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = open_connection();
    c->have = 0;
    watch(c);
}

int main(int argc, char **argv) {
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: httpburst http://HOST:PORT PATHS_FILE CONNS OUT_JSONL [RATE]\n");
        return 2;
    }
    if (argc == 6) {
        char *end;
        rate = strtod(argv[5], &end);
        if (*end != 0 || !(rate >= 0) || rate > 1e6) {
            fprintf(stderr, "httpburst: RATE must be a number of calls per second from 0 to 1000000, not %s\n", argv[5]);
            return 2;
        }
    }
    const char *url = argv[1];
    if (strncmp(url, "http://", 7) != 0) {
        fprintf(stderr, "httpburst: only http:// URLs\n");
        return 2;
    }
    char host[100];
    int port;
    if (sscanf(url + 7, "%99[^:]:%d", host, &port) != 2) {
        fprintf(stderr, "httpburst: cannot read host and port from %s\n", url);
        return 2;
    }
    snprintf(host_header, sizeof host_header, "%s:%d", host, port);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "httpburst: %s is not an IPv4 address\n", host);
        return 2;
    }
    int conns = atoi(argv[3]);
    if (conns < 1) {
        fprintf(stderr, "httpburst: CONNS must be at least 1\n");
        return 2;
    }

    FILE *in = fopen(argv[2], "r");
    if (!in) die(argv[2]);
    long cap = 1024;
    paths = malloc(sizeof *paths * cap);
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t len;
    while ((len = getline(&line, &line_cap, in)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' ')) line[--len] = 0;
        if (len == 0) continue;
        if (npaths == cap) paths = realloc(paths, sizeof *paths * (cap *= 2));
        paths[npaths++] = strdup(line);
    }
    fclose(in);
    records = calloc((size_t)(npaths ? npaths : 1), sizeof *records);

    epfd = epoll_create1(0);
    if (epfd < 0) die("epoll_create1");
    if (rate > 0) {
        timer_fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
        if (timer_fd < 0) die("timerfd_create");
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, timer_fd, &ev) < 0) die("epoll_ctl");
    }
    struct conn *cs = calloc((size_t)conns, sizeof *cs);
    idle = calloc((size_t)conns, sizeof *idle);
    for (int i = 0; i < conns; i++) {
        cs[i].fd = open_connection();
        cs[i].index = -1;
        watch(&cs[i]);
    }
    start = wall();  /* every connection is up before the clock starts */
    for (int i = conns - 1; i >= 0; i--) release(&cs[i]);  /* the first call goes on the first connection */
    dispatch_ready();
    struct epoll_event events[256];
    while (next_path < npaths || in_flight(cs, conns) > 0) {
        int n = epoll_wait(epfd, events, 256, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (c == NULL) {  /* the timer: the next paced call is due */
                uint64_t expirations;
                if (read(timer_fd, &expirations, sizeof expirations) < 0 && errno != EAGAIN) die("read timerfd");
                dispatch_ready();
                continue;
            }
            if (c->fd < 0) continue;
            if (c->index < 0) {
                idle_readable(c);
                continue;
            }
            readable(c);
        }
    }
    for (int i = 0; i < conns; i++)
        if (cs[i].fd >= 0) close(cs[i].fd);

    FILE *out = fopen(argv[4], "w");
    if (!out) die(argv[4]);
    fprintf(out, "{\"event\": \"start\", \"at\": %.6f}\n", start);
    for (long i = 0; i < npaths; i++) {
        struct record *r = &records[i];
        fprintf(out, "{\"job\": ");
        if (r->job[0]) fprintf(out, "\"%s\"", r->job); else fprintf(out, "null");
        fprintf(out, ", \"scheduled\": %.6f, \"sent\": %.6f, \"accepted\": %.6f, \"status\": %d}\n",
                due(i), r->sent, r->accepted, r->status);
    }
    if (fclose(out) != 0) die(argv[4]);
    return 0;
}
