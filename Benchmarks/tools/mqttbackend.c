// mqttbackend: an MQTT server for benchmarks, cheap enough never to limit a run. Answers
// CONNECT with CONNACK (success), PINGREQ with PINGRESP, echoes PUBLISH back to its sender,
// closes on DISCONNECT. No sessions, no routing. THREADS epoll threads share the port with
// SO_REUSEPORT. Prints its own CPU seconds on SIGTERM/SIGINT, so a driver can show it idles.
// With --proxy-protocol every connection must start with a PROXY protocol v2 header (what a
// `send-proxy-v2` server gets), which is read and dropped; a v1 header, a bad signature or
// version, or a length too short for its family closes the connection (counted).
// Usage: mqttbackend PORT [THREADS] [--proxy-protocol]
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 65536
// need_header: a PROXY v2 header must come first (--proxy-protocol) and has not been read yet.
struct conn { int fd; int len; int need_header; unsigned char buf[BUF]; };
static int port, proxy_protocol;
static long headers_read, headers_rejected;   // --proxy-protocol; updated atomically

static int listener(void) {
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(l, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
    a.sin_addr.s_addr = htonl(0x7f000001);
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 65535)) { perror("bind"); exit(1); }
    return l;
}

// Replies for one read are gathered and written with one write(2).
static __thread unsigned char out[BUF];
static __thread int out_len;

static int flush_out(int fd) {
    int off = 0;
    while (off < out_len) {
        ssize_t w = write(fd, out + off, (size_t)(out_len - off));
        if (w > 0) { off += (int)w; continue; }
        if (w < 0 && errno == EAGAIN) {
            // The peer is slow to read: wait a little, then give up on it.
            struct pollfd p = { .fd = fd, .events = POLLOUT };
            if (poll(&p, 1, 1000) == 1) continue;
        }
        out_len = 0;
        return -1;
    }
    out_len = 0;
    return 0;
}

static int send_all(int fd, const unsigned char *p, int n) {
    if (out_len + n > BUF && flush_out(fd) < 0) return -1;
    if (n > BUF) return -1;
    memcpy(out + out_len, p, (size_t)n);
    out_len += n;
    return 0;
}

// proxy-protocol.txt §2.2: 12-byte signature, version/command, family/transport, then the
// big-endian length of what follows the 16-byte fixed part (addresses and TLVs).
static const unsigned char pp2_signature[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

// Drops the v2 header at the start of c->buf: 1 when dropped, 0 when more bytes are needed,
// -1 to close (v1 or garbage, version not 2, command not LOCAL/PROXY, a length too short for
// the family's addresses, or one that cannot fit the buffer).
static int drop_proxy_header(struct conn *c) {
    int have = c->len < 16 ? c->len : 16;
    if (memcmp(c->buf, pp2_signature, (size_t)(have < 12 ? have : 12)) != 0) return -1;
    if (have >= 13 && (c->buf[12] >> 4 != 2 || (c->buf[12] & 0x0F) > 1)) return -1;
    if (have < 16) return 0;
    int length = (c->buf[14] << 8) | c->buf[15];
    if ((c->buf[12] & 0x0F) == 1) {   // PROXY: the addresses must fit (§2.2: 12, 36, 216 bytes)
        int family = c->buf[13] >> 4;
        int least = family == 1 ? 12 : family == 2 ? 36 : family == 3 ? 216 : 0;
        if (length < least) return -1;
    }
    int total = 16 + length;
    if (total > BUF) return -1;
    if (c->len < total) return 0;
    memmove(c->buf, c->buf + total, (size_t)(c->len - total));
    c->len -= total;
    c->need_header = 0;
    __atomic_fetch_add(&headers_read, 1, __ATOMIC_RELAXED);
    return 1;
}

// Handles the complete packets at the start of c->buf; returns -1 to close.
static int handle(struct conn *c) {
    int off = 0;
    if (c->need_header) {
        int r = drop_proxy_header(c);
        if (r < 0) { __atomic_fetch_add(&headers_rejected, 1, __ATOMIC_RELAXED); return -1; }
        if (r == 0) return 0;
    }
    static const unsigned char connack[4] = { 0x20, 0x02, 0x00, 0x00 };
    static const unsigned char pingresp[2] = { 0xD0, 0x00 };
    while (off + 2 <= c->len) {
        int mult = 1, rem = 0, i = off + 1, done = 0;
        for (int k = 0; k < 4 && i < c->len; k++, i++) {
            rem += (c->buf[i] & 0x7F) * mult;
            mult *= 128;
            if (!(c->buf[i] & 0x80)) { done = 1; i++; break; }
        }
        if (!done) break;
        int total = (i - off) + rem;
        if (total > BUF) return -1;
        if (off + total > c->len) break;
        unsigned char type = c->buf[off] >> 4;
        int rc = 0;
        if (type == 1) rc = send_all(c->fd, connack, 4);
        else if (type == 12) rc = send_all(c->fd, pingresp, 2);
        else if (type == 3) rc = send_all(c->fd, c->buf + off, total);
        else if (type == 14) { flush_out(c->fd); return -1; }
        if (rc < 0) return -1;
        off += total;
    }
    if (flush_out(c->fd) < 0) return -1;
    if (off > 0) { memmove(c->buf, c->buf + off, (size_t)(c->len - off)); c->len -= off; }
    return 0;
}

static void *serve(void *arg) {
    (void)arg;
    int l = listener(), ep = epoll_create1(0), one = 1;
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
    struct epoll_event events[256];
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1);
        for (int e = 0; e < n; e++) {
            struct conn *c = events[e].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(l, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *nc = malloc(sizeof *nc);
                    nc->fd = fd; nc->len = 0; nc->need_header = proxy_protocol;
                    struct epoll_event ce = { .events = EPOLLIN, .data.ptr = nc };
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
                }
                continue;
            }
            for (;;) {
                ssize_t r = read(c->fd, c->buf + c->len, (size_t)(BUF - c->len));
                if (r > 0) {
                    c->len += (int)r;
                    if (handle(c) < 0) { close(c->fd); free(c); break; }
                    continue;
                }
                if (r == 0 || errno != EAGAIN) { close(c->fd); free(c); }
                break;
            }
        }
    }
    return NULL;
}

static void report(int sig) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    double cpu = u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
    if (proxy_protocol)
        fprintf(stderr, "{\"backend_cpu_seconds\":%.3f,\"proxy_headers_read\":%ld,\"proxy_headers_rejected\":%ld}\n",
                cpu, __atomic_load_n(&headers_read, __ATOMIC_RELAXED), __atomic_load_n(&headers_rejected, __ATOMIC_RELAXED));
    else
        fprintf(stderr, "{\"backend_cpu_seconds\":%.3f}\n", cpu);
    _exit(sig == SIGTERM || sig == SIGINT ? 0 : 1);
}

int main(int argc, char **argv) {
    int positional[2] = { 0, 1 }, n = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--proxy-protocol") == 0) proxy_protocol = 1;
        else if (n < 2) positional[n++] = atoi(argv[i]);
        else n = 3;
    }
    if (n < 1 || n > 2 || positional[0] <= 0) {
        fprintf(stderr, "usage: mqttbackend PORT [THREADS] [--proxy-protocol]\n");
        return 2;
    }
    port = positional[0];
    int threads = positional[1] > 0 ? positional[1] : 1;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    signal(SIGTERM, report);
    signal(SIGINT, report);
    pthread_t t[64];
    for (int i = 1; i < threads && i < 64; i++) pthread_create(&t[i], NULL, serve, NULL);
    serve(NULL);
}
