#define _GNU_SOURCE
// wsbench: an MQTT-over-WebSocket load generator (epoll, one thread) for the side-by-side
// driver's --ws workloads; ringbench speaks no WebSocket. Every connection is nonblocking and
// driven by one state machine: connect, HTTP/1.1 Upgrade (RFC 6455 §4.1: GET PATH, a random
// Sec-WebSocket-Key, subprotocol `mqtt`), the 101 checked (status and Sec-WebSocket-Accept),
// then MQTT packets, one per masked binary frame (§5.3: a fresh mask per frame); the server's
// frames are unmasked and may carry packets split or joined anyhow (the stream is reassembled).
// Prints one JSON line at the end (and, in idle mode, a {"phase":"ready"} line once all
// connections are open), including the client's own CPU, so the driver can tell when the load
// generator, not the proxy, was the limit.
//
// Usage: wsbench MODE HOST PORT [--connections N] [--seconds S] [--size B] [--window W]
//                [--path /mqtt] [--ids N] [--id-base N] [--sources N]
//   session   each connection: connect, upgrade, CONNECT/CONNACK, DISCONNECT, close; again.
//             Client ids cycle over --ids (a stick table sees returning clients), from ws-ID_BASE.
//   pingpong  upgrade and CONNECT once, then WINDOW PUBLISH packets of SIZE bytes (whole MQTT
//             packet) in flight per connection, echoed by the backend.
//   idle      open N connections (upgrade + CONNECT/CONNACK each), say ready, hold them SECONDS.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum mode { M_SESSION, M_PINGPONG, M_IDLE };
enum state { S_FREE, S_CONNECT, S_UPGRADE, S_CONNACK, S_RUN, S_IDLE };

#define RBUF 65536
#define WBUF 8192
struct conn {
    int fd, state;
    char accept[32];         // the Sec-WebSocket-Accept the server must send
    int rlen;                // bytes held in r (head, then frames)
    int mlen;                // MQTT bytes held in m (unframed)
    int wlen, woff;          // pending writes (the socket was full)
    long owed, done;         // pingpong: packets still to write, echoes received
    unsigned events;
    double t0;
    unsigned char r[RBUF], m[RBUF], w[WBUF];
};

static int mode, conns_n = 32, size = 64, window = 16, ids = 10000, sources = 20;
static double seconds = 4;
static const char *path = "/mqtt", *host = "127.0.0.1";
static struct sockaddr_in target;
static int ep;
static struct conn *conns;
static long ops, failed, opened_total, ready_n, opening, id_next, id_base;
static double *lat;
static long lat_n, lat_cap = 1 << 20;
static char last_error[200];
static unsigned rng = 0x9e3779b9u;

static unsigned rnd(void) { rng ^= rng << 13; rng ^= rng >> 17; rng ^= rng << 5; return rng; }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

static double cpu_self(void) {
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + r.ru_stime.tv_sec + r.ru_stime.tv_usec / 1e6;
}

static void interest(struct conn *c, unsigned ev) {
    if (c->events == ev) return;
    struct epoll_event e = { .events = ev, .data.u32 = (unsigned)(c - conns) };
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
    c->events = ev;
}

static void fail(struct conn *c, const char *what) {
    if (what == last_error)
        ;                                       // already says why
    else if (errno)
        snprintf(last_error, sizeof last_error, "%s: %s", what, strerror(errno));
    else
        snprintf(last_error, sizeof last_error, "%s", what);
    if (mode == M_IDLE && c->state != S_IDLE) opening--;
    close(c->fd);
    c->fd = -1;
    c->state = S_FREE;
    failed++;
}

// Queues bytes and writes what the socket takes; -1 on error.
static int put(struct conn *c, const void *p, int n) {
    if (c->wlen + n > WBUF) { errno = ENOBUFS; return -1; }
    memcpy(c->w + c->wlen, p, (size_t)n);
    c->wlen += n;
    return 0;
}

static int flush(struct conn *c) {
    while (c->woff < c->wlen) {
        ssize_t w = write(c->fd, c->w + c->woff, (size_t)(c->wlen - c->woff));
        if (w > 0) { c->woff += (int)w; continue; }
        if (w < 0 && errno == EAGAIN) { interest(c, EPOLLIN | EPOLLOUT); return 0; }
        return -1;
    }
    c->woff = c->wlen = 0;
    interest(c, EPOLLIN);
    return 0;
}

// RFC 6455 §5.2: one masked binary frame (FIN) carrying one MQTT packet.
static int put_frame(struct conn *c, const unsigned char *p, int n) {
    unsigned char h[8] = { 0x82 };
    int hl = 2;
    if (n < 126) h[1] = (unsigned char)(0x80 | n);
    else { h[1] = 0x80 | 126; h[2] = (unsigned char)(n >> 8); h[3] = (unsigned char)n; hl = 4; }
    unsigned m = rnd();
    memcpy(h + hl, &m, 4);
    if (c->wlen + hl + 4 + n > WBUF) { errno = ENOBUFS; return -1; }
    memcpy(c->w + c->wlen, h, (size_t)hl + 4);
    unsigned char *d = c->w + c->wlen + hl + 4, *k = h + hl;
    for (int i = 0; i < n; i++) d[i] = p[i] ^ k[i & 3];
    c->wlen += hl + 4 + n;
    return 0;
}

static int put_connect(struct conn *c) {
    char id[32];
    int il = snprintf(id, sizeof id, "ws-%ld", id_base + id_next++ % ids);
    unsigned char p[64] = { 0x10, (unsigned char)(12 + il), 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60,
                            (unsigned char)(il >> 8), (unsigned char)il };
    memcpy(p + 14, id, (size_t)il);
    return put_frame(c, p, 14 + il);
}

static unsigned char publish[65536];   // one PUBLISH (QoS 0, topic "t") of SIZE bytes in all

static int start_conn(struct conn *c) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) { snprintf(last_error, sizeof last_error, "socket: %s", strerror(errno)); failed++; return -1; }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // Source addresses spread over 127.0.0.1..N so TIME_WAIT never runs out of ports.
    struct sockaddr_in src = { .sin_family = AF_INET };
    src.sin_addr.s_addr = htonl(0x7f000001 + (unsigned)((c - conns) * 7919 + opened_total) % (unsigned)sources);
    bind(fd, (struct sockaddr *)&src, sizeof src);
    opened_total++;
    c->fd = fd; c->state = S_CONNECT; c->rlen = c->mlen = c->wlen = c->woff = 0;
    c->owed = c->done = 0; c->t0 = now();
    if (mode == M_IDLE) opening++;
    // The upgrade request, queued now, written once connected.
    unsigned char keyraw[16], key[32], digest[SHA_DIGEST_LENGTH];
    for (int i = 0; i < 16; i += 4) { unsigned v = rnd(); memcpy(keyraw + i, &v, 4); }
    EVP_EncodeBlock(key, keyraw, 16);
    char cat[80];
    int kl = snprintf(cat, sizeof cat, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    SHA1((unsigned char *)cat, (size_t)kl, digest);
    EVP_EncodeBlock((unsigned char *)c->accept, digest, SHA_DIGEST_LENGTH);
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n",
                     path, host, ntohs(target.sin_port), key);
    put(c, req, n);
    struct epoll_event e = { .events = EPOLLOUT, .data.u32 = (unsigned)(c - conns) };
    c->events = EPOLLOUT;
    if (connect(fd, (struct sockaddr *)&target, sizeof target) != 0 && errno != EINPROGRESS) {
        fail(c, "connect");
        return -1;
    }
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
    return 0;
}

// Checks the 101 once the head is complete; returns bytes consumed, 0 for more, -1 bad.
static int check_101(struct conn *c) {
    unsigned char *end = memmem(c->r, (size_t)c->rlen, "\r\n\r\n", 4);
    if (!end) { snprintf(last_error, sizeof last_error, "101 head over 8 KiB"); return c->rlen >= 8192 ? -1 : 0; }
    *end = 0;
    if (strncmp((char *)c->r, "HTTP/1.1 101", 12) != 0) { errno = 0; snprintf(last_error, sizeof last_error, "no 101: %.60s", c->r); return -1; }
    const char *h = strcasestr((char *)c->r, "\r\nSec-WebSocket-Accept:");
    if (h) { h += 23; while (*h == ' ') h++; }
    size_t al = strlen(c->accept);
    *end = '\r';
    if (!h || strncmp(h, c->accept, al) != 0 || (h[al] != '\r' && h[al] != ' ')) {
        snprintf(last_error, sizeof last_error, "wrong Sec-WebSocket-Accept");
        return -1;
    }
    return (int)(end + 4 - c->r);
}

// Unframes the complete server frames at the start of r into m; bytes consumed, -1 bad.
static int unframe(struct conn *c) {
    int off = 0;
    while (off + 2 <= c->rlen) {
        unsigned char *f = c->r + off;
        int op = f[0] & 0x0F, hl = 2;
        long n = f[1] & 0x7F;
        if (f[1] & 0x80) return -1;                 // §5.1: a server's frames are unmasked
        if (n == 126) { if (off + 4 > c->rlen) break; n = (f[2] << 8) | f[3]; hl = 4; }
        else if (n == 127) return -1;
        if (off + hl + n > c->rlen) break;
        if (op == 0x8) { snprintf(last_error, sizeof last_error, "close frame"); return -1; }
        if (op == 0x0 || op == 0x2) {
            if (c->mlen + n > RBUF) return -1;
            memcpy(c->m + c->mlen, f + hl, (size_t)n);
            c->mlen += (int)n;
        }
        off += hl + (int)n;
    }
    return off;
}

static void record(double t0) {
    if (lat_n < lat_cap) lat[lat_n++] = (now() - t0) * 1e6;
}

// Handles the whole MQTT packets in m; returns -1 to close (failed), 1 when the session is done.
static int packets(struct conn *c) {
    int off = 0, rc = 0;
    while (off + 2 <= c->mlen) {
        int mult = 1, rem = 0, i = off + 1, ok = 0;
        for (int k = 0; k < 4 && i < c->mlen; k++, i++) {
            rem += (c->m[i] & 0x7F) * mult;
            mult *= 128;
            if (!(c->m[i] & 0x80)) { ok = 1; i++; break; }
        }
        if (!ok) break;
        int total = (i - off) + rem;
        if (off + total > c->mlen) break;
        int type = c->m[off] >> 4;
        if (type == 2 && c->state == S_CONNACK) {
            if (c->m[off + 3] != 0) { snprintf(last_error, sizeof last_error, "CONNACK refused"); return -1; }
            if (mode == M_SESSION) {
                static const unsigned char disconnect[2] = { 0xE0, 0 };
                if (put_frame(c, disconnect, 2) < 0 || flush(c) < 0) return -1;
                ops++;
                record(c->t0);
                rc = 1;
            } else if (mode == M_IDLE) {
                c->state = S_IDLE; opening--; ready_n++;
            } else {
                c->state = S_RUN;
                c->owed = window;
            }
        } else if (type == 3 && c->state == S_RUN) {
            c->done++; ops++; c->owed++;
        } else {
            snprintf(last_error, sizeof last_error, "unexpected packet type %d", type);
            return -1;
        }
        off += total;
    }
    if (off) { memmove(c->m, c->m + off, (size_t)(c->mlen - off)); c->mlen -= off; }
    return rc;
}

// The connection may make progress; returns -1 when it was closed.
static int drive(struct conn *c, unsigned ev) {
    if (c->state == S_CONNECT) {
        if (ev & (EPOLLERR | EPOLLHUP)) { errno = ECONNREFUSED; fail(c, "connect"); return -1; }
        c->state = S_UPGRADE;
    }
    if (c->wlen && flush(c) < 0) { fail(c, "write"); return -1; }
    if (ev & EPOLLIN) {
        for (;;) {
            ssize_t r = read(c->fd, c->r + c->rlen, (size_t)(RBUF - c->rlen));
            if (r < 0 && errno == EAGAIN) break;
            if (r <= 0) { if (r == 0) errno = 0; fail(c, r == 0 ? (c->state == S_UPGRADE ? "closed before 101" : "closed by peer") : "read"); return -1; }
            c->rlen += (int)r;
            int used = 0;
            if (c->state == S_UPGRADE) {
                used = check_101(c);
                if (used < 0) { errno = 0; fail(c, last_error); return -1; }
                if (used == 0) continue;
                c->state = S_CONNACK;
                if (put_connect(c) < 0 || flush(c) < 0) { fail(c, "write"); return -1; }
            }
            memmove(c->r, c->r + used, (size_t)(c->rlen - used));
            c->rlen -= used;
            int u = unframe(c);
            if (u < 0) { errno = 0; fail(c, "bad frame"); return -1; }
            memmove(c->r, c->r + u, (size_t)(c->rlen - u));
            c->rlen -= u;
            int p = packets(c);
            if (p < 0) { errno = 0; fail(c, last_error); return -1; }
            if (p == 1) {                           // session done: close, start the next
                close(c->fd); c->fd = -1; c->state = S_FREE;
                return -1;
            }
        }
    }
    if (c->state == S_RUN) {
        while (c->owed > 0 && c->wlen + size + 8 <= WBUF) {
            if (put_frame(c, publish, size) < 0) break;
            c->owed--;
        }
        if (c->wlen && flush(c) < 0) { fail(c, "write"); return -1; }
    }
    return 0;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static const char *arg(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) { fprintf(stderr, "%s needs a value\n", argv[*i]); exit(2); }
    return argv[++*i];
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: wsbench session|pingpong|idle HOST PORT [options]\n"); return 2; }
    if (!strcmp(argv[1], "session")) mode = M_SESSION;
    else if (!strcmp(argv[1], "pingpong")) { mode = M_PINGPONG; conns_n = 100; }
    else if (!strcmp(argv[1], "idle")) { mode = M_IDLE; conns_n = 1000; }
    else { fprintf(stderr, "unknown mode %s\n", argv[1]); return 2; }
    host = argv[2];
    target.sin_family = AF_INET;
    target.sin_port = htons((unsigned short)atoi(argv[3]));
    inet_pton(AF_INET, host, &target.sin_addr);
    for (int i = 4; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--connections")) conns_n = atoi(arg(argc, argv, &i));
        else if (!strcmp(a, "--seconds")) seconds = atof(arg(argc, argv, &i));
        else if (!strcmp(a, "--size")) size = atoi(arg(argc, argv, &i));
        else if (!strcmp(a, "--window")) window = atoi(arg(argc, argv, &i));
        else if (!strcmp(a, "--path")) path = arg(argc, argv, &i);
        else if (!strcmp(a, "--ids")) ids = atoi(arg(argc, argv, &i));
        else if (!strcmp(a, "--id-base")) id_base = atol(arg(argc, argv, &i));
        else if (!strcmp(a, "--sources")) sources = atoi(arg(argc, argv, &i));
        else { fprintf(stderr, "unknown option %s\n", a); return 2; }
    }
    // One length byte in the fixed header keeps the packet builder trivial.
    if (size < 5 || size > 129) { fprintf(stderr, "--size must be 5..129 (whole PUBLISH packet)\n"); return 2; }
    // PUBLISH, QoS 0: fixed header (2), topic length (2), topic "t" (1), payload.
    publish[0] = 0x30; publish[1] = (unsigned char)(size - 2); publish[2] = 0; publish[3] = 1; publish[4] = 't';
    memset(publish + 5, 'x', (size_t)(size - 5));
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    rng ^= (unsigned)getpid() * 2654435761u;
    ep = epoll_create1(0);
    conns = calloc((size_t)conns_n, sizeof *conns);
    lat = malloc(sizeof(double) * (size_t)lat_cap);
    for (int i = 0; i < conns_n; i++) conns[i].fd = -1;
    double cpu0 = cpu_self(), t0 = now(), open_t0 = t0, end = t0 + seconds;
    int ready_said = mode != M_IDLE;
    long next_open = 0;
    // Idle: open at most 200 at a time so the proxy's backlog never overflows.
    if (mode == M_IDLE) {
        end = 1e18;
    } else {
        for (int i = 0; i < conns_n; i++) start_conn(&conns[i]);
    }
    struct epoll_event evs[512];
    for (;;) {
        double t = now();
        if (mode == M_IDLE) {
            while (next_open < conns_n && opening < 200) start_conn(&conns[next_open++]);
            if (!ready_said && opening == 0 && next_open == conns_n) {
                printf("{\"phase\":\"ready\",\"connections\":%ld,\"failed\":%ld,\"open_seconds\":%.3f,\"client_cpu_s\":%.3f}\n",
                       ready_n, failed, t - open_t0, cpu_self() - cpu0);
                fflush(stdout);
                ready_said = 1;
                end = t + seconds;
            }
        }
        if (t >= end) break;
        int n = epoll_wait(ep, evs, 512, 50);
        for (int e = 0; e < n; e++) {
            struct conn *c = &conns[evs[e].data.u32];
            if (c->fd < 0) continue;
            if (drive(c, evs[e].events) < 0 && mode == M_SESSION && now() < end) start_conn(c);
        }
        if (mode == M_SESSION)
            for (int i = 0; i < conns_n && now() < end; i++)
                if (conns[i].state == S_FREE) start_conn(&conns[i]);
    }
    double el = now() - t0, cpu = cpu_self() - cpu0;
    long held = 0;
    for (int i = 0; i < conns_n; i++) if (conns[i].state == S_IDLE) held++;
    for (char *q = last_error; *q; q++) if (*q == '"' || *q == '\\' || (unsigned char)*q < 32) *q = ' ';
    qsort(lat, (size_t)lat_n, sizeof *lat, cmp);
    double p50 = lat_n ? lat[lat_n / 2] : 0, p99 = lat_n ? lat[(long)(lat_n * 0.99)] : 0;
    printf("{\"mode\":\"%s\",\"connections\":%d,\"seconds\":%.3f,\"operations\":%ld,\"per_second\":%.1f,"
           "\"failed\":%ld,\"held\":%ld,\"p50_us\":%.1f,\"p99_us\":%.1f,\"client_cpu_s\":%.3f,\"client_busy\":%.3f,"
           "\"last_error\":\"%s\"}\n",
           argv[1], conns_n, el, ops, ops / el, failed, held, p50, p99, cpu, cpu / el, last_error);
    return 0;
}
