// pingpong: N connections, each keeping W small messages (an MQTT QoS 0 PUBLISH of SIZE bytes)
// in flight to an echo server through the proxy, for SECONDS. Single-threaded epoll. Prints
// round trips per second as one JSON line. With a 7th argument `mqtt`, each connection first
// sends a CONNECT and waits for the CONNACK (for an MQTT backend behind an MQTT-checking proxy).
// Usage: pingpong HOST PORT CONNECTIONS WINDOW SIZE SECONDS [mqtt]
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

int main(int argc, char **argv) {
    if (argc < 7) { fprintf(stderr, "usage: pingpong HOST PORT CONNECTIONS WINDOW SIZE SECONDS\n"); return 2; }
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2])) };
    inet_pton(AF_INET, argv[1], &a.sin_addr);
    int conns = atoi(argv[3]), window = atoi(argv[4]), size = atoi(argv[5]);
    double seconds = atof(argv[6]);
    if (size < 8) size = 8;
    unsigned char *msg = malloc((size_t)size * window);
    // PUBLISH QoS 0: 0x30, remaining length (size-2 < 128), topic "t/x", payload.
    for (int w = 0; w < window; w++) {
        unsigned char *m = msg + (size_t)w * size;
        memset(m, 'p', (size_t)size);
        m[0] = 0x30; m[1] = (unsigned char)(size - 2); m[2] = 0; m[3] = 3; m[4] = 't'; m[5] = '/'; m[6] = 'x';
    }
    int ep = epoll_create1(0);
    long *pending = calloc((size_t)conns, sizeof(long));   // bytes still expected back
    int *fds = calloc((size_t)conns, sizeof(int));
    for (int i = 0; i < conns; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, (struct sockaddr *)&a, sizeof a)) { perror("connect"); return 1; }
        if (argc > 7 && strcmp(argv[7], "mqtt") == 0) {
            unsigned char c[32] = { 0x10, 0, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 0 };
            int idlen = snprintf((char *)c + 14, 16, "pp-%d", i);
            c[1] = (unsigned char)(12 + idlen); c[13] = (unsigned char)idlen;
            unsigned char ack[4];
            if (write(fd, c, (size_t)(14 + idlen)) != 14 + idlen) { perror("write"); return 1; }
            int got = 0;
            while (got < 4) { ssize_t r = read(fd, ack + got, (size_t)(4 - got)); if (r <= 0) { fprintf(stderr, "no CONNACK\n"); return 1; } got += (int)r; }
        }
        fds[i] = fd;
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (unsigned)i };
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        if (write(fd, msg, (size_t)size * window) != (ssize_t)size * window) { perror("write"); return 1; }
        pending[i] = (long)size * window;
    }
    static unsigned char buf[1 << 16];
    long roundtrips = 0;
    double start = now(), end = start + seconds;
    struct epoll_event events[512];
    while (now() < end) {
        int n = epoll_wait(ep, events, 512, 100);
        for (int e = 0; e < n; e++) {
            int i = (int)events[e].data.u32;
            ssize_t r = read(fds[i], buf, sizeof buf);
            if (r <= 0) { fprintf(stderr, "connection %d closed\n", i); return 1; }
            // Each complete echoed message is a round trip; send the next one at once.
            long got = r, before = pending[i];
            pending[i] -= got;
            long completed = (before / size) - (pending[i] > 0 ? (pending[i] + size - 1) / size : 0);
            (void)completed;
            long done_msgs = 0;
            static long partial[1 << 16];
            partial[i % (1 << 16)] += got;
            done_msgs = partial[i % (1 << 16)] / size;
            partial[i % (1 << 16)] -= done_msgs * size;
            if (done_msgs > 0) {
                roundtrips += done_msgs;
                if (write(fds[i], msg, (size_t)(size * done_msgs)) != (ssize_t)(size * done_msgs)) { perror("write"); return 1; }
                pending[i] += size * done_msgs;
            }
        }
    }
    double elapsed = now() - start;
    printf("{\"connections\":%d,\"window\":%d,\"size\":%d,\"roundtrips\":%ld,\"per_second\":%.0f}\n",
           conns, window, size, roundtrips, roundtrips / elapsed);
    return 0;
}
