#define _GNU_SOURCE
// tlsbench: a TLS load generator (OpenSSL 3 + epoll, one thread) for the side-by-side driver's
// TLS workloads; ringbench has no TLS. Every connection is nonblocking and driven by one state
// machine; records leave through a buffering BIO so the messages written in one turn go in one
// send(2). Prints one JSON line at the end (and, in idle mode, a {"phase":"ready"} line once all
// connections are open), including the client's own CPU (getrusage) so the driver can tell when
// the load generator, not the proxy, was the limit.
//
// Usage: tlsbench MODE HOST PORT [--connections N] [--seconds S] [--resume] [--size B]
//                 [--window W] [--chunk B] [--inflight B] [--plain] [--ciphersuites LIST]
//                 [--groups LIST] [--sources N] [--open-max N]
//   handshake  each connection: connect, handshake, one SIZE-byte message echoed, close_notify,
//              close; again. --resume offers the last TLS 1.3 ticket the slot received.
//   pingpong   WINDOW messages of SIZE bytes in flight per connection, one record each, echoed.
//   bulk       CHUNK-byte writes, at most INFLIGHT bytes unechoed per connection.
//   idle       open N connections (handshake + one echo each), say ready, hold them SECONDS.
// --plain runs the same without TLS (a reference for what TCP alone costs).
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum mode { M_HANDSHAKE, M_PINGPONG, M_BULK, M_IDLE };
enum state { S_FREE, S_CONNECT, S_HANDSHAKE, S_RUN, S_IDLE };

struct conn {
    int fd, state;
    SSL *ssl;
    SSL_SESSION *sess;       // last ticket received (--resume)
    long sent, recvd;        // application bytes this connection
    long owed;               // pingpong: messages still to write
    long done;               // pingpong: messages echoed back so far
    int blocked_write;       // a write or flush is waiting for EPOLLOUT
    unsigned events;         // epoll interest now
    double t0;               // connect started
};

static int mode, conns_n = 100, size = 64, window = 16, chunk = 16384, resume, plain, sources = 20;
static long inflight = 262144;
static int open_max = 200;
static double seconds = 4;
static const char *suites = "TLS_AES_128_GCM_SHA256", *groups = "X25519";
static struct sockaddr_in target;
static SSL_CTX *ctx;
static int ep;
static struct conn *conns;
static unsigned char *msg, *rbuf;
static long ops, failed, handshakes, resumed, tickets, bytes_in, opened_total, ready_n, opening;
static double *lat;
static long lat_n, lat_cap = 1 << 20;
static char last_error[200];

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

static int new_ticket(SSL *ssl, SSL_SESSION *s) {
    struct conn *c = SSL_get_app_data(ssl);
    tickets++;
    if (!resume) return 0;                      // not kept: OpenSSL frees it
    if (c->sess) SSL_SESSION_free(c->sess);
    c->sess = s;
    return 1;
}

static void note_error(const char *what) {
    unsigned long e = ERR_peek_last_error();
    snprintf(last_error, sizeof last_error, "%s: %s", what, e ? ERR_reason_error_string(e) : strerror(errno));
    ERR_clear_error();
}

static void open_conn(struct conn *c);

static void close_conn(struct conn *c, int ok) {
    if (mode == M_IDLE && !ok && c->state != S_IDLE) opening--;
    if (c->ssl) {
        if (ok) SSL_shutdown(c->ssl);           // close_notify (buffered BIO: flushed by OpenSSL)
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->state = S_FREE;
    if (!ok) failed++;
}

static void open_conn(struct conn *c) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) { note_error("socket"); failed++; return; }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // Source addresses spread over 127.0.0.1..N so TIME_WAIT never runs out of ports.
    struct sockaddr_in src = { .sin_family = AF_INET };
    src.sin_addr.s_addr = htonl(0x7f000001 + (unsigned)((c - conns) * 7919 + opened_total) % (unsigned)sources);
    bind(fd, (struct sockaddr *)&src, sizeof src);
    opened_total++;
    c->fd = fd;
    c->state = S_CONNECT;
    c->sent = c->recvd = c->owed = c->done = 0;
    c->blocked_write = 0;
    c->t0 = now();
    struct epoll_event e = { .events = EPOLLOUT, .data.u32 = (unsigned)(c - conns) };
    c->events = EPOLLOUT;
    if (connect(fd, (struct sockaddr *)&target, sizeof target) != 0 && errno != EINPROGRESS) {
        note_error("connect");
        close(fd); c->fd = -1; c->state = S_FREE; failed++;
        return;
    }
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
}

// Application I/O over TLS or plain TCP: >0 bytes, 0 would block (want_write set when a write
// must wait), -1 closed or failed.
static int io_read(struct conn *c, void *buf, int len) {
    if (plain) {
        ssize_t r = read(c->fd, buf, (size_t)len);
        if (r > 0) return (int)r;
        if (r < 0 && errno == EAGAIN) return 0;
        if (r < 0) note_error("read"); else snprintf(last_error, sizeof last_error, "read: closed by peer");
        return -1;
    }
    int r = SSL_read(c->ssl, buf, len);
    if (r > 0) return r;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) return 0;
    if (e == SSL_ERROR_WANT_WRITE) { c->blocked_write = 1; return 0; }
    note_error(e == SSL_ERROR_ZERO_RETURN ? "read: close_notify" : "SSL_read");
    return -1;
}

static int io_write(struct conn *c, const void *buf, int len) {
    if (plain) {
        ssize_t r = write(c->fd, buf, (size_t)len);
        if (r > 0) return (int)r;
        if (r < 0 && errno == EAGAIN) { c->blocked_write = 1; return 0; }
        note_error("write");
        return -1;
    }
    int r = SSL_write(c->ssl, buf, len);
    if (r > 0) return r;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) { c->blocked_write = 1; return 0; }
    note_error("SSL_write");
    return -1;
}

// Pushes what the buffering BIO holds; 0 when it could not all go (EPOLLOUT then).
static int io_flush(struct conn *c) {
    if (plain) return 1;
    if (BIO_flush(SSL_get_wbio(c->ssl)) > 0) return 1;
    if (BIO_should_retry(SSL_get_wbio(c->ssl))) { c->blocked_write = 1; return 0; }
    note_error("flush");
    return -1;
}

static void started(struct conn *c);

// Called whenever the connection may make progress; returns -1 when it was closed.
static int drive(struct conn *c) {
    c->blocked_write = 0;
    if (c->state == S_HANDSHAKE) {
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ) { interest(c, EPOLLIN); return 0; }
            if (e == SSL_ERROR_WANT_WRITE) { interest(c, EPOLLIN | EPOLLOUT); return 0; }
            note_error("handshake");
            close_conn(c, 0);
            return -1;
        }
        handshakes++;
        if (SSL_session_reused(c->ssl)) resumed++;
        c->state = S_RUN;
        started(c);
    }
    // Read everything there is (OpenSSL may hold several records of one segment).
    for (;;) {
        int want = mode == M_BULK ? 65536 : (mode == M_PINGPONG ? 65536 : size);
        int r = io_read(c, rbuf, want);
        if (r < 0) { close_conn(c, 0); return -1; }
        if (r == 0) break;
        c->recvd += r;
        bytes_in += r;
        if (mode == M_HANDSHAKE || mode == M_IDLE) {
            if (c->recvd < size) continue;
            if (mode == M_HANDSHAKE) {
                if (lat_n < lat_cap) lat[lat_n++] = (now() - c->t0) * 1e6;
                ops++;
                close_conn(c, 1);
                open_conn(c);
                return 0;
            }
            if (c->state == S_RUN) { c->state = S_IDLE; ready_n++; opening--; }
        } else if (mode == M_PINGPONG) {
            long done = c->recvd / size - c->done;   // each echoed message frees a place in the window
            c->done += done;
            ops += done;
            c->owed += done;
        }
    }
    // Write what the workload owes.
    if (mode == M_PINGPONG) {
        while (c->owed > 0) {
            int r = io_write(c, msg, size);
            if (r < 0) { close_conn(c, 0); return -1; }
            if (r == 0) break;
            c->sent += size;
            c->owed--;
        }
    } else if (mode == M_BULK) {
        while (c->sent - c->recvd < inflight) {
            int r = io_write(c, msg, chunk);
            if (r < 0) { close_conn(c, 0); return -1; }
            if (r == 0) break;
            c->sent += r;
        }
    }
    if (io_flush(c) < 0) { close_conn(c, 0); return -1; }
    interest(c, c->blocked_write ? EPOLLIN | EPOLLOUT : EPOLLIN);
    return 0;
}

// The handshake is done (or there is none): the workload's first writes.
static void started(struct conn *c) {
    if (mode == M_HANDSHAKE || mode == M_IDLE) {
        if (io_write(c, msg, size) == size) c->sent = size;
    } else if (mode == M_PINGPONG) {
        c->owed = window;
    }
}

static void connected(struct conn *c) {
    int err = 0;
    socklen_t l = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
    if (err) { errno = err; note_error("connect"); close_conn(c, 0); return; }
    if (plain) {
        c->state = S_RUN;
        handshakes++;
        started(c);
        drive(c);
        return;
    }
    c->ssl = SSL_new(ctx);
    SSL_set_app_data(c->ssl, c);
    BIO *sock = BIO_new_socket(c->fd, BIO_NOCLOSE);
    BIO *buf = BIO_new(BIO_f_buffer());
    BIO_set_write_buffer_size(buf, 65536);
    BIO_push(buf, sock);
    BIO_up_ref(sock);
    SSL_set_bio(c->ssl, sock, buf);             // reads straight from the socket, writes buffered
    SSL_set_connect_state(c->ssl);
    if (resume && c->sess) SSL_set_session(c->ssl, c->sess);
    c->state = S_HANDSHAKE;
    drive(c);
}

static int percentile_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static const char *next_arg(int *i, int argc, char **argv) {
    if (*i + 1 >= argc) { fprintf(stderr, "%s needs a value\n", argv[*i]); exit(2); }
    return argv[++*i];
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: tlsbench handshake|pingpong|bulk|idle HOST PORT [options]\n"); return 2; }
    if (!strcmp(argv[1], "handshake")) mode = M_HANDSHAKE;
    else if (!strcmp(argv[1], "pingpong")) mode = M_PINGPONG;
    else if (!strcmp(argv[1], "bulk")) mode = M_BULK;
    else if (!strcmp(argv[1], "idle")) mode = M_IDLE;
    else { fprintf(stderr, "unknown mode %s\n", argv[1]); return 2; }
    target.sin_family = AF_INET;
    target.sin_port = htons((unsigned short)atoi(argv[3]));
    inet_pton(AF_INET, argv[2], &target.sin_addr);
    for (int i = 4; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--connections")) conns_n = atoi(next_arg(&i, argc, argv));
        else if (!strcmp(a, "--seconds")) seconds = atof(next_arg(&i, argc, argv));
        else if (!strcmp(a, "--size")) size = atoi(next_arg(&i, argc, argv));
        else if (!strcmp(a, "--window")) window = atoi(next_arg(&i, argc, argv));
        else if (!strcmp(a, "--chunk")) chunk = atoi(next_arg(&i, argc, argv));
        else if (!strcmp(a, "--inflight")) inflight = atol(next_arg(&i, argc, argv));
        else if (!strcmp(a, "--ciphersuites")) suites = next_arg(&i, argc, argv);
        else if (!strcmp(a, "--groups")) groups = next_arg(&i, argc, argv);
        else if (!strcmp(a, "--sources")) sources = atoi(next_arg(&i, argc, argv));
        else if (!strcmp(a, "--open-max")) open_max = atoi(next_arg(&i, argc, argv));
        else if (!strcmp(a, "--resume")) resume = 1;
        else if (!strcmp(a, "--plain")) plain = 1;
        else { fprintf(stderr, "unknown option %s\n", a); return 2; }
    }
    if (size < 8) size = 8;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    if (!SSL_CTX_set_ciphersuites(ctx, suites) || !SSL_CTX_set1_groups_list(ctx, groups)) {
        fprintf(stderr, "bad --ciphersuites or --groups\n");
        return 2;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);   // the CertificateVerify signature is still checked
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, new_ticket);
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

    int msg_len = mode == M_BULK ? chunk : size;
    msg = malloc((size_t)msg_len);
    memset(msg, 'p', (size_t)msg_len);
    if (mode != M_BULK && size >= 8) {
        // An MQTT 3.1.1 QoS 0 PUBLISH of SIZE bytes (topic "t/x"), as the plain pingpong sends.
        msg[0] = 0x30; msg[1] = (unsigned char)(size - 2); msg[2] = 0; msg[3] = 3; msg[4] = 't'; msg[5] = '/'; msg[6] = 'x';
    }
    rbuf = malloc(65536);
    lat = malloc(sizeof(double) * (size_t)lat_cap);
    conns = calloc((size_t)conns_n, sizeof *conns);
    ep = epoll_create1(0);
    for (int i = 0; i < conns_n; i++) conns[i].fd = -1;

    double cpu0 = cpu_self(), t0 = now(), end = t0 + seconds, ready_at = 0;
    int next_open = 0;
    if (mode != M_IDLE) for (int i = 0; i < conns_n; i++) open_conn(&conns[i]);
    struct epoll_event ev[512];
    long ops_ready = 0;
    for (;;) {
        double t = now();
        if (mode == M_IDLE) {
            // Open at most open_max at a time; the hold starts once all are ready.
            while (next_open < conns_n && opening < open_max) { open_conn(&conns[next_open++]); opening++; }
            if (!ready_at && ready_n + failed >= conns_n) {
                ready_at = t;
                end = t + seconds;
                printf("{\"phase\":\"ready\",\"connections\":%ld,\"failed\":%ld,\"open_seconds\":%.3f,\"client_cpu_s\":%.3f}\n",
                       ready_n, failed, t - t0, cpu_self() - cpu0);
                fflush(stdout);
            }
            if (ready_at && t >= end) break;
            if (!ready_at && t - t0 > 300) break;
        } else if (t >= end) break;
        int n = epoll_wait(ep, ev, 512, 20);
        for (int i = 0; i < n; i++) {
            struct conn *c = &conns[ev[i].data.u32];
            if (c->state == S_FREE) continue;
            if (c->state == S_CONNECT) {
                connected(c);
            } else if (c->state == S_IDLE) {
                char b[256];
                if (io_read(c, b, sizeof b) < 0) { close_conn(c, 0); ready_n--; }
            } else {
                drive(c);
            }
            if (c->state == S_FREE && mode != M_IDLE && now() < end) open_conn(c);  // failed: again
        }
    }
    double elapsed = now() - (mode == M_IDLE && ready_at ? ready_at : t0), cpu = cpu_self() - cpu0;
    (void)ops_ready;
    double p50 = 0, p99 = 0;
    if (lat_n) {
        qsort(lat, (size_t)lat_n, sizeof(double), percentile_cmp);
        p50 = lat[lat_n / 2];
        p99 = lat[(long)(lat_n * 0.99)];
    }
    if (mode == M_IDLE) ops = ready_n;
    printf("{\"mode\":\"%s\",\"tls\":%s,\"connections\":%d,\"seconds\":%.3f,\"operations\":%ld,\"per_second\":%.1f,"
           "\"handshakes\":%ld,\"resumed\":%ld,\"tickets\":%ld,\"bytes\":%ld,\"failed\":%ld,\"p50_us\":%.1f,\"p99_us\":%.1f,"
           "\"client_cpu_s\":%.3f,\"client_busy\":%.3f,\"last_error\":\"%s\"}\n",
           argv[1], plain ? "false" : "true", conns_n, elapsed, ops, ops / elapsed, handshakes, resumed, tickets,
           bytes_in, failed, p50, p99, cpu, cpu / (now() - t0), last_error);
    return 0;
}
