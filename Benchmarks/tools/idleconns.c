// idleconns: opens N connections to HOST:PORT, sends each a 3.1.1 CONNECT and reads back as many
// bytes (the echo server answers with the same bytes), then holds them all idle for SECONDS and
// prints one JSON line. Usage: idleconns HOST PORT N SECONDS
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: idleconns HOST PORT N SECONDS\n"); return 2; }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2])) };
    inet_pton(AF_INET, argv[1], &a.sin_addr);
    int n = atoi(argv[3]);
    int *fds = calloc((size_t)n, sizeof(int));
    int opened = 0;
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { perror("connect"); break; }
        char id[32];
        int idlen = snprintf(id, sizeof id, "idle-%d", i);
        unsigned char p[64];
        int k = 0;
        p[k++] = 0x10; p[k++] = (unsigned char)(12 + idlen);
        p[k++] = 0; p[k++] = 4; memcpy(p + k, "MQTT", 4); k += 4;
        p[k++] = 4; p[k++] = 2; p[k++] = 0; p[k++] = 60;
        p[k++] = 0; p[k++] = (unsigned char)idlen; memcpy(p + k, id, (size_t)idlen); k += idlen;
        if (write(fd, p, (size_t)k) != k) { perror("write"); break; }
        int got = 0;
        while (got < k) { ssize_t r = read(fd, p, sizeof p); if (r <= 0) break; got += (int)r; }
        if (got < k) { fprintf(stderr, "no answer on connection %d\n", i); break; }
        fds[opened++] = fd;
    }
    printf("{\"connections\":%d}\n", opened);
    fflush(stdout);
    sleep((unsigned)atoi(argv[4]));
    return opened == n ? 0 : 1;
}
