// failoverclients: MQTT clients that connect and reconnect through a proxy while a broker dies
// and returns (Benchmarks/failover/failover.py). One thread, epoll, CLIENTS sessions in flight;
// each client loops: TCP connect, CONNECT (3.1.1, clean session, a client id used once),
// CONNACK within TIMEOUT_MS of the session's start, DISCONNECT, wait for the server's FIN (so
// the client is never the side holding TIME_WAIT), close, pause 0..PAUSE_MS, again, for SECONDS.
// Every session is written to OUTFILE as "start end result errno" (CLOCK_REALTIME seconds, the
// clock tcpdump -tt uses); one JSON line of totals on stdout.
// Usage: failoverclients HOST PORT CLIENTS SECONDS PAUSE_MS TIMEOUT_MS OUTFILE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { CLIENTS_MAX = 4096, SESSIONS_MAX = 4000000, FIN_WAIT_MS = 1000 };
// Results: what a client saw. Only OK is a success; the rest say how the session failed.
enum result { OK = 0, CONNECT_FAILED = 1, CLOSED = 2, TIMEOUT = 3, BAD_CONNACK = 4, SEND_FAILED = 5 };
static const char *result_names[] = { "ok", "connect_failed", "closed_before_connack", "timeout",
                                      "bad_connack", "send_failed" };
enum state { PAUSED, CONNECTING, WAIT_CONNACK, WAIT_FIN };

struct client {
    int fd;
    enum state state;
    double started, due;   // session start; when the pause ends / the current wait expires
    int got;               // CONNACK bytes received
    unsigned char ack[4];
};
struct session { double start, end; int result, err; };

static struct client clients[CLIENTS_MAX];
static struct session *sessions;
static long session_count, dropped;
static struct sockaddr_in target;
static int epfd, pause_ms, timeout_ms;
static unsigned long seq;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void record(struct client *c, int result, int err) {
    if (session_count < SESSIONS_MAX)
        sessions[session_count++] = (struct session){ c->started, now(), result, err };
    else
        dropped++;
}

static void finish(struct client *c, double t) {
    if (c->fd >= 0) { epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL); close(c->fd); c->fd = -1; }
    c->state = PAUSED;
    c->due = t + (pause_ms > 0 ? (rand() % (pause_ms + 1)) / 1000.0 : 0);
}

static void fail(struct client *c, int result, int err) {
    record(c, result, err);
    finish(c, now());
}

static void begin(struct client *c, int index) {
    c->started = now();
    c->got = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) { fail(c, CONNECT_FAILED, errno); return; }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev = { .events = EPOLLOUT, .data.u32 = (unsigned)index };
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    c->state = CONNECTING;
    c->due = c->started + timeout_ms / 1000.0;
    if (connect(c->fd, (struct sockaddr *)&target, sizeof target) != 0 && errno != EINPROGRESS)
        fail(c, CONNECT_FAILED, errno);
}

static void send_connect(struct client *c, int index) {
    unsigned char p[64];
    char id[40];
    int idlen = snprintf(id, sizeof id, "fo-%d-%lu", index, seq++);
    int n = 0;
    p[n++] = 0x10; p[n++] = (unsigned char)(12 + idlen);
    p[n++] = 0; p[n++] = 4; memcpy(p + n, "MQTT", 4); n += 4;
    p[n++] = 4; p[n++] = 0x02; p[n++] = 0; p[n++] = 60;   // 3.1.1, clean session, keepalive 60 s
    p[n++] = 0; p[n++] = (unsigned char)idlen;
    memcpy(p + n, id, idlen); n += idlen;
    if (send(c->fd, p, n, MSG_NOSIGNAL) != n) { fail(c, SEND_FAILED, errno); return; }
    struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.u32 = (unsigned)index };
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->state = WAIT_CONNACK;
}

static void on_event(struct client *c, int index) {
    if (c->state == CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) { fail(c, CONNECT_FAILED, err); return; }
        send_connect(c, index);
    } else if (c->state == WAIT_CONNACK) {
        ssize_t r = recv(c->fd, c->ack + c->got, 4 - c->got, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
        if (r <= 0) { fail(c, CLOSED, r < 0 ? errno : 0); return; }
        c->got += (int)r;
        if (c->got < 4) return;
        if (c->ack[0] != 0x20 || c->ack[1] != 2 || c->ack[3] != 0) { fail(c, BAD_CONNACK, c->ack[3]); return; }
        record(c, OK, 0);
        unsigned char d[2] = { 0xE0, 0 };
        (void)!send(c->fd, d, 2, MSG_NOSIGNAL);
        c->state = WAIT_FIN;
        c->due = now() + FIN_WAIT_MS / 1000.0;
    } else if (c->state == WAIT_FIN) {
        unsigned char b[64];
        ssize_t r = recv(c->fd, b, sizeof b, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
        if (r <= 0) finish(c, now());   // the server's FIN (or a reset): the session is over
    }
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: %s HOST PORT CLIENTS SECONDS PAUSE_MS TIMEOUT_MS OUTFILE\n", argv[0]);
        return 2;
    }
    target.sin_family = AF_INET;
    target.sin_port = htons((unsigned short)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &target.sin_addr) != 1) { fprintf(stderr, "bad host\n"); return 2; }
    int n = atoi(argv[3]);
    double seconds = atof(argv[4]);
    pause_ms = atoi(argv[5]);
    timeout_ms = atoi(argv[6]);
    if (n < 1 || n > CLIENTS_MAX || seconds <= 0 || seconds > 600 || timeout_ms < 1) {
        fprintf(stderr, "clients 1..%d, seconds 0..600, timeout >= 1 ms\n", CLIENTS_MAX);
        return 2;
    }
    sessions = malloc(sizeof *sessions * SESSIONS_MAX);
    epfd = epoll_create1(0);
    srand((unsigned)getpid());
    double t0 = now(), stop_at = t0 + seconds;
    // Clients start spread over the first pause so they do not all connect in one burst.
    for (int i = 0; i < n; i++) {
        clients[i].fd = -1;
        clients[i].state = PAUSED;
        clients[i].due = t0 + (pause_ms > 0 ? (rand() % (pause_ms + 1)) / 1000.0 : 0);
    }
    // Bounded: new sessions until stop_at, then at most timeout + FIN wait for the last ones.
    double hard_stop = stop_at + (timeout_ms + FIN_WAIT_MS) / 1000.0 + 1;
    struct epoll_event evs[256];
    for (;;) {
        double t = now();
        int busy = 0;
        for (int i = 0; i < n; i++) {
            struct client *c = &clients[i];
            if (c->state == PAUSED) {
                if (t < stop_at && t >= c->due) begin(c, i);
            } else if (t >= c->due) {
                if (c->state == WAIT_FIN) finish(c, t);
                else fail(c, TIMEOUT, 0);
            }
            if (clients[i].state != PAUSED) busy++;
        }
        if ((t >= stop_at && busy == 0) || t >= hard_stop) break;
        int k = epoll_wait(epfd, evs, 256, 1);
        for (int j = 0; j < k; j++) {
            int i = (int)evs[j].data.u32;
            if (clients[i].fd >= 0) on_event(&clients[i], i);
        }
    }
    double t1 = now();
    FILE *f = fopen(argv[7], "w");
    if (!f) { perror(argv[7]); return 1; }
    long counts[6] = { 0 };
    for (long i = 0; i < session_count; i++) {
        fprintf(f, "%.6f %.6f %d %d\n", sessions[i].start, sessions[i].end, sessions[i].result, sessions[i].err);
        counts[sessions[i].result]++;
    }
    fclose(f);
    printf("{\"clients\": %d, \"seconds\": %.3f, \"start\": %.6f, \"sessions\": %ld, \"dropped_records\": %ld", n,
           t1 - t0, t0, session_count, dropped);
    for (int r = 0; r < 6; r++) printf(", \"%s\": %ld", result_names[r], counts[r]);
    printf("}\n");
    return 0;
}
