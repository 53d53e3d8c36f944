// mqttbackend: an MQTT server for benchmarks, cheap enough never to limit a run. Answers
// CONNECT with CONNACK (success), PINGREQ with PINGRESP, echoes PUBLISH back to its sender,
// closes on DISCONNECT. No sessions, no routing. THREADS epoll threads share the port with
// SO_REUSEPORT. Prints its own CPU seconds on SIGTERM/SIGINT, so a driver can show it idles.
// --websocket: MQTT over WebSocket (RFC 6455) instead, like a broker's `protocol websockets`
// listener: answers the HTTP/1.1 Upgrade with 101 (Sec-WebSocket-Accept per §4.2.2, the `mqtt`
// subprotocol echoed when offered), reads masked client frames (binary and continuation frames
// are unmasked into one MQTT byte stream, so fragments and packets split across frames are fine;
// pings get pongs, a close gets a close), and sends each reply packet as one unmasked binary frame.
// With --proxy-protocol every connection must start with a PROXY protocol v2 header (what a
// `send-proxy-v2` server gets), which is read and dropped; a v1 header, a bad signature or
// version, or a length too short for its family closes the connection (counted).
// Usage: mqttbackend PORT [THREADS] [--websocket] [--proxy-protocol]
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
#include <openssl/evp.h>
#include <openssl/sha.h>

#define BUF 65536
// buf: the MQTT byte stream; raw (--websocket): bytes as received, HTTP head then frames.
// need_header: a PROXY v2 header must come first (--proxy-protocol) and has not been read yet.
// Plain MQTT: a connection holds no buffer between reads. Bytes are read into the thread's `in`
// and handled there; only a packet's incomplete tail is kept, in a heap copy of its size (a
// million held connections then cost the backends ~60 B each instead of a touched 64 KiB buffer's
// first page, ~4 KiB: 3.4 GB at a million, memory the proxy under test then lacked).
// --websocket: buf and raw are BUF each, for the connection's life.
struct conn { int fd; int len; int upgraded; int rlen; int need_header; unsigned char *buf; unsigned char *raw; };
static __thread unsigned char in[BUF];
static int port, websocket, proxy_protocol;
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

static int send_raw(int fd, const unsigned char *p, int n) {
    if (out_len + n > BUF && flush_out(fd) < 0) return -1;
    if (n > BUF) return -1;
    memcpy(out + out_len, p, (size_t)n);
    out_len += n;
    return 0;
}

// RFC 6455 §5.2: a server's frame is unmasked; FIN set, one packet per binary message.
static int send_frame(int fd, unsigned char opcode, const unsigned char *p, int n) {
    unsigned char h[4] = { (unsigned char)(0x80 | opcode) };
    int hl = 2;
    if (n < 126) h[1] = (unsigned char)n;
    else { h[1] = 126; h[2] = (unsigned char)(n >> 8); h[3] = (unsigned char)n; hl = 4; }
    if (n > 65535 || send_raw(fd, h, hl) < 0) return -1;
    return send_raw(fd, p, n);
}

static int send_all(int fd, const unsigned char *p, int n) {
    return websocket ? send_frame(fd, 0x2, p, n) : send_raw(fd, p, n);
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

// The value of header `name` (case-insensitive) in the head [h, end), or NULL; *len its length.
static const char *header(const char *h, const char *end, const char *name, int *len) {
    size_t nl = strlen(name);
    for (const char *l = h; l < end; ) {
        const char *eol = memmem(l, (size_t)(end - l), "\r\n", 2);
        if (!eol) eol = end;
        if ((size_t)(eol - l) > nl && strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            const char *v = l + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t')) v++;
            const char *e = eol;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t')) e--;
            *len = (int)(e - v);
            return v;
        }
        l = eol + 2;
    }
    return NULL;
}

// Answers the upgrade once its head is complete; returns bytes consumed, 0 for more, -1 to close.
static int upgrade(struct conn *c) {
    const char *h = (const char *)c->raw;
    const char *end = memmem(h, (size_t)c->rlen, "\r\n\r\n", 4);
    if (!end) return c->rlen >= 8192 ? -1 : 0;
    int kl = 0, pl = 0;
    const char *key = header(h, end, "Sec-WebSocket-Key", &kl);
    const char *proto = header(h, end, "Sec-WebSocket-Protocol", &pl);
    if (!key || kl > 64 || strncmp(h, "GET ", 4) != 0) return -1;
    // RFC 6455 §4.2.2: base64(SHA-1(key + GUID)).
    char cat[128];
    memcpy(cat, key, (size_t)kl);
    memcpy(cat + kl, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
    unsigned char digest[SHA_DIGEST_LENGTH], accept[32];
    SHA1((const unsigned char *)cat, (size_t)kl + 36, digest);
    EVP_EncodeBlock(accept, digest, SHA_DIGEST_LENGTH);
    char resp[256];
    int n = snprintf(resp, sizeof resp, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n", accept,
                     proto && memmem(proto, (size_t)pl, "mqtt", 4) ? "Sec-WebSocket-Protocol: mqtt\r\n" : "");
    if (send_raw(c->fd, (const unsigned char *)resp, n) < 0 || flush_out(c->fd) < 0) return -1;
    c->upgraded = 1;
    return (int)(end + 4 - h);
}

// Unmasks the complete frames at the start of c->raw into c->buf; returns bytes consumed or -1.
static int frames(struct conn *c) {
    int off = 0;
    while (off + 2 <= c->rlen) {
        unsigned char *f = c->raw + off;
        int op = f[0] & 0x0F, masked = f[1] & 0x80, hl = 2;
        long n = f[1] & 0x7F;
        if (n == 126) { if (off + 4 > c->rlen) break; n = (f[2] << 8) | f[3]; hl = 4; }
        else if (n == 127) return -1;               // 64-bit lengths: never sent by the load generator
        if (!masked) return -1;                     // §5.1: a client's frames are masked
        if (off + hl + 4 + n > c->rlen) break;
        if (n > BUF) return -1;
        unsigned char *mask = f + hl, *p = f + hl + 4;
        for (long i = 0; i < n; i++) p[i] ^= mask[i & 3];
        if (op == 0x0 || op == 0x2) {               // binary or its continuation: MQTT bytes
            if (c->len + n > BUF) return -1;
            memcpy(c->buf + c->len, p, (size_t)n);
            c->len += (int)n;
        } else if (op == 0x9) {                     // ping: pong with the same payload
            if (send_frame(c->fd, 0xA, p, (int)n) < 0) return -1;
        } else if (op == 0x8) {                     // close: answer it, then close
            send_frame(c->fd, 0x8, p, n >= 2 ? 2 : 0);
            flush_out(c->fd);
            return -1;
        } else if (op != 0xA) {
            return -1;                              // text or unknown: not MQTT
        }
        off += hl + 4 + (int)n;
    }
    return off;
}

// New bytes in c->raw (--websocket); returns -1 to close.
static int handle_ws(struct conn *c) {
    int used = 0;
    if (!c->upgraded) {
        used = upgrade(c);
        if (used <= 0) return used;
    }
    for (;;) {
        memmove(c->raw, c->raw + used, (size_t)(c->rlen - used));
        c->rlen -= used;
        used = frames(c);
        if (used < 0) return -1;
        if (used == 0) break;
    }
    return handle(c);
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
                    nc->fd = fd; nc->len = 0; nc->upgraded = 0; nc->rlen = 0; nc->need_header = proxy_protocol;
                    nc->buf = websocket ? malloc(BUF) : NULL;
                    nc->raw = websocket ? malloc(BUF) : NULL;
                    struct epoll_event ce = { .events = EPOLLIN, .data.ptr = nc };
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
                }
                continue;
            }
            if (!websocket && c->buf) {   // the tail kept since the last read goes first
                memcpy(in, c->buf, (size_t)c->len);
                free(c->buf);
            }
            if (!websocket) c->buf = in;
            int gone = 0;
            for (;;) {
                ssize_t r = websocket ? read(c->fd, c->raw + c->rlen, (size_t)(BUF - c->rlen))
                                      : read(c->fd, c->buf + c->len, (size_t)(BUF - c->len));
                if (r > 0) {
                    if (websocket) c->rlen += (int)r; else c->len += (int)r;
                    if ((websocket ? handle_ws(c) : handle(c)) < 0) { gone = 1; break; }
                    continue;
                }
                if (r == 0 || errno != EAGAIN) gone = 1;
                break;
            }
            if (gone) {
                close(c->fd);
                if (websocket) { free(c->buf); free(c->raw); }
                free(c);
            } else if (!websocket) {
                c->buf = NULL;
                if (c->len > 0) {
                    c->buf = malloc((size_t)c->len);
                    memcpy(c->buf, in, (size_t)c->len);
                }
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
        else if (strcmp(argv[i], "--websocket") == 0) websocket = 1;
        else if (n < 2) positional[n++] = atoi(argv[i]);
        else n = 3;
    }
    if (n < 1 || n > 2 || positional[0] <= 0 || (websocket && proxy_protocol)) {
        fprintf(stderr, "usage: mqttbackend PORT [THREADS] [--websocket | --proxy-protocol]\n");
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
