// connbench: MQTT connection set-up rate through a proxy. Each thread loops: TCP connect,
// CONNECT (3.1.1, client id from a fixed pool so sticky tables see reconnects), wait for
// CONNACK, DISCONNECT, close. Bounded by time. Prints one JSON line.
// Usage: connbench HOST PORT THREADS SECONDS IDS
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in target;
static double deadline;
static int ids;
static long done[256], failed[256];

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int build_connect(unsigned char *p, const char *id) {
    int idlen = (int)strlen(id);
    int rem = 10 + 2 + idlen;
    int n = 0;
    p[n++] = 0x10; p[n++] = (unsigned char)rem;
    p[n++] = 0; p[n++] = 4; memcpy(p + n, "MQTT", 4); n += 4;
    p[n++] = 4; p[n++] = 0x02; p[n++] = 0; p[n++] = 60;
    p[n++] = (unsigned char)(idlen >> 8); p[n++] = (unsigned char)idlen;
    memcpy(p + n, id, idlen); n += idlen;
    return n;
}

static void *run(void *arg) {
    long t = (long)arg;
    unsigned char pkt[128], ack[4];
    char id[64];
    long i = 0;
    while (now() < deadline) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct timeval tv = { 5, 0 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (connect(fd, (struct sockaddr *)&target, sizeof target) != 0) { failed[t]++; close(fd); continue; }
        snprintf(id, sizeof id, "bench-%ld", (t * 1000003 + i) % ids);
        int n = build_connect(pkt, id);
        if (write(fd, pkt, n) != n) { failed[t]++; close(fd); continue; }
        int got = 0;
        while (got < 4) { int r = (int)read(fd, ack + got, 4 - got); if (r <= 0) break; got += r; }
        if (got == 4 && ack[0] == 0x20 && ack[3] == 0) {
            unsigned char d[2] = { 0xE0, 0 };
            (void)!write(fd, d, 2);
            done[t]++;
        } else {
            failed[t]++;
        }
        close(fd);
        i++;
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 6) { fprintf(stderr, "usage: connbench HOST PORT THREADS SECONDS IDS\n"); return 2; }
    target.sin_family = AF_INET;
    target.sin_port = htons((unsigned short)atoi(argv[2]));
    inet_pton(AF_INET, argv[1], &target.sin_addr);
    int threads = atoi(argv[3]);
    double seconds = atof(argv[4]);
    ids = atoi(argv[5]);
    if (threads > 256) threads = 256;
    pthread_t th[256];
    double start = now();
    deadline = start + seconds;
    for (long t = 0; t < threads; t++) pthread_create(&th[t], NULL, run, (void *)t);
    long total = 0, fails = 0;
    for (int t = 0; t < threads; t++) { pthread_join(th[t], NULL); total += done[t]; fails += failed[t]; }
    double elapsed = now() - start;
    printf("{\"connections\":%ld,\"failed\":%ld,\"seconds\":%.3f,\"per_second\":%.0f}\n", total, fails, elapsed, total / elapsed);
    return 0;
}
