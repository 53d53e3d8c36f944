// sockmapproxy: a standalone TCP relay whose bytes never reach userspace (issue 17, phase 1:
// measure before building). Each accepted client and its server connection go into a BPF
// sockhash, each keyed by its peer's socket cookie; an sk_skb program redirects every skb a
// socket receives to the egress of the socket stored under its own cookie, and adds its length
// to a per-socket counter. Userspace only accepts, connects, watches for FIN/RST (EPOLLRDHUP,
// EPOLLERR) and propagates them once the bytes already redirected have been queued on the peer.
// It is a benchmark tool: blocking connect, one thread, no MQTT inspection. It must never write
// a byte of its own into a spliced stream, nor send a FIN ahead of redirected data.
//
// Build: cc -O2 -Wall -o sockmapproxy Benchmarks/tools/sockmapproxy.c   (root or CAP_BPF+CAP_NET_ADMIN to run)
// Run:   sockmapproxy --listen 127.0.0.1:PORT --backend 127.0.0.1:P [--backend ...]
//                     [--mode verdict|strp] [--timeout-s N] [--maxconn N] [--log]
//   verdict: BPF_SK_SKB_VERDICT (no stream parser, Linux 5.13+): skbs handed over as TCP queues them
//   strp:    BPF_SK_SKB_STREAM_PARSER + BPF_SK_SKB_STREAM_VERDICT (strparser; the parser returns skb->len)
// SIGTERM/SIGINT: one JSON line on stdout (totals, byte-count checks) and exit; SIGUSR1: the same, no exit.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <linux/tcp.h>   // the kernel's tcp_info (bytes_acked, bytes_received): glibc's is older
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

// ---------------------------------------------------------------- BPF instructions, by hand

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define MOV64_REG(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV64_IMM(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define ADD64_IMM(d, i) INSN(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, i)
#define LDX_W(d, s, o) INSN(BPF_LDX | BPF_MEM | BPF_W, d, s, o, 0)
#define STX_DW(d, s, o) INSN(BPF_STX | BPF_MEM | BPF_DW, d, s, o, 0)
#define ATOMIC_ADD_DW(d, s, o) INSN(BPF_STX | BPF_ATOMIC | BPF_DW, d, s, o, BPF_ADD)
#define JEQ_IMM(d, i, o) INSN(BPF_JMP | BPF_JEQ | BPF_K, d, 0, o, i)
#define CALL(f) INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
// 64-bit immediate holding a map fd: two instruction slots.
#define LD_MAP_FD(d, fd) INSN(BPF_LD | BPF_DW | BPF_IMM, d, BPF_PSEUDO_MAP_FD, 0, fd), INSN(0, 0, 0, 0, 0)

static int sys_bpf(int cmd, union bpf_attr *attr) { return (int)syscall(__NR_bpf, cmd, attr, sizeof(*attr)); }

static int map_create(uint32_t type, uint32_t key_size, uint32_t value_size, uint32_t entries) {
    union bpf_attr a = {0};
    a.map_type = type, a.key_size = key_size, a.value_size = value_size, a.max_entries = entries;
    return sys_bpf(BPF_MAP_CREATE, &a);
}

static int map_update(int fd, const void *key, const void *value, uint64_t flags) {
    union bpf_attr a = {0};
    a.map_fd = fd, a.key = (uintptr_t)key, a.value = (uintptr_t)value, a.flags = flags;
    return sys_bpf(BPF_MAP_UPDATE_ELEM, &a);
}

static int map_lookup(int fd, const void *key, void *value) {
    union bpf_attr a = {0};
    a.map_fd = fd, a.key = (uintptr_t)key, a.value = (uintptr_t)value;
    return sys_bpf(BPF_MAP_LOOKUP_ELEM, &a);
}

static int map_delete(int fd, const void *key) {
    union bpf_attr a = {0};
    a.map_fd = fd, a.key = (uintptr_t)key;
    return sys_bpf(BPF_MAP_DELETE_ELEM, &a);
}

static char verifier_log[65536];

static int prog_load(const struct bpf_insn *insns, size_t n) {
    union bpf_attr a = {0};
    a.prog_type = BPF_PROG_TYPE_SK_SKB, a.insns = (uintptr_t)insns, a.insn_cnt = (uint32_t)n;
    a.license = (uintptr_t)"GPL", a.log_buf = (uintptr_t)verifier_log, a.log_size = sizeof verifier_log, a.log_level = 1;
    int fd = sys_bpf(BPF_PROG_LOAD, &a);
    if (fd < 0) fprintf(stderr, "sockmapproxy: BPF_PROG_LOAD: %s\n%s\n", strerror(errno), verifier_log);
    return fd;
}

static int prog_attach(int prog_fd, int map_fd, uint32_t type) {
    union bpf_attr a = {0};
    a.target_fd = map_fd, a.attach_bpf_fd = prog_fd, a.attach_type = type;
    return sys_bpf(BPF_PROG_ATTACH, &a);
}

// Per-socket counters (map value), keyed by the receiving socket's cookie.
struct counts { uint64_t bytes, skbs, unredirected; };

// The verdict: cookie = own socket's cookie; counts[cookie] += len; redirect to peers[cookie]'s
// egress. A socket with no peer in the map (its peer just closed) keeps the skb (SK_PASS): userspace
// sees it as readable and counts it, rather than the kernel dropping it silently.
static int load_verdict(int peers_fd, int counts_fd) {
    struct bpf_insn p[] = {
        MOV64_REG(BPF_REG_6, BPF_REG_1),                                   // r6 = skb
        LDX_W(BPF_REG_7, BPF_REG_6, offsetof(struct __sk_buff, len)),      // r7 = skb->len
        // An empty skb (a bare FIN): redirected, the peer's backlog sends 0 bytes, which skmsg.c
        // takes for a hard error (EPIPE on the peer, TX stopped). The FIN is already recorded by
        // TCP; userspace forwards it. Drop the empty skb.
        JEQ_IMM(BPF_REG_7, 0, 25),
        CALL(BPF_FUNC_get_socket_cookie),                                  // r0 = cookie(skb->sk)
        STX_DW(BPF_REG_10, BPF_REG_0, -8),                                 // key on the stack
        LD_MAP_FD(BPF_REG_1, counts_fd),
        MOV64_REG(BPF_REG_2, BPF_REG_10), ADD64_IMM(BPF_REG_2, -8),
        CALL(BPF_FUNC_map_lookup_elem),
        MOV64_REG(BPF_REG_8, BPF_REG_0),                                   // r8 = &counts or NULL
        JEQ_IMM(BPF_REG_8, 0, 3),
        ATOMIC_ADD_DW(BPF_REG_8, BPF_REG_7, offsetof(struct counts, bytes)),
        MOV64_IMM(BPF_REG_1, 1),
        ATOMIC_ADD_DW(BPF_REG_8, BPF_REG_1, offsetof(struct counts, skbs)),
        MOV64_REG(BPF_REG_1, BPF_REG_6),                                   // redirect(skb, peers, &cookie, egress)
        LD_MAP_FD(BPF_REG_2, peers_fd),
        MOV64_REG(BPF_REG_3, BPF_REG_10), ADD64_IMM(BPF_REG_3, -8),
        MOV64_IMM(BPF_REG_4, 0),
        CALL(BPF_FUNC_sk_redirect_hash),
        JEQ_IMM(BPF_REG_0, SK_PASS, 4),                                    // redirected: SK_PASS
        JEQ_IMM(BPF_REG_8, 0, 2),                                          // no peer: keep it, count it
        MOV64_IMM(BPF_REG_1, 1),
        ATOMIC_ADD_DW(BPF_REG_8, BPF_REG_1, offsetof(struct counts, unredirected)),
        MOV64_IMM(BPF_REG_0, SK_PASS),
        EXIT(),
        MOV64_IMM(BPF_REG_0, SK_DROP),                                     // the empty skb
        EXIT(),
    };
    return prog_load(p, sizeof p / sizeof p[0]);
}

// The stream parser of the strp mode: every skb is one whole "message".
static int load_parser(void) {
    struct bpf_insn p[] = {
        LDX_W(BPF_REG_0, BPF_REG_1, offsetof(struct __sk_buff, len)),
        EXIT(),
    };
    return prog_load(p, sizeof p / sizeof p[0]);
}

// ---------------------------------------------------------------- connections

enum { CLIENT = 0, SERVER = 1 };

struct conn {
    int fd[2];
    uint64_t cookie[2];
    uint64_t written_base[2];   // bytes_acked + outq of fd[i] when it entered the map
    int fin_seen[2];            // FIN received on fd[i]
    int fin_sent[2];            // shutdown(SHUT_WR) done on fd[i]
    uint64_t last_bytes;        // counters' sum at the last idle scan
    double last_active;
    int used;
};

static struct conn *conns;
static int *free_slots, free_count;        // slots not in use (a stack)
static uint32_t *pending, pending_count;   // (slot << 1 | side): FINs waiting for redirected bytes to drain
static int maxconn = 10000, peers_fd, counts_fd, epfd, logging;
static double timeout_s;
static volatile sig_atomic_t want_report, want_exit;
static struct {
    uint64_t accepted, refused, closed_fin, closed_reset, closed_idle, bytes_c2s, bytes_s2c, skbs, unredirected,
        fallback_bytes, count_mismatches, fin_waits, insert_ns, unspliced, setup_ns, sockhash_ns, kick_ns;
} totals;

static uint64_t ns_since(struct timespec *t0) {   // and moves t0 to now
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    uint64_t d = (uint64_t)((t.tv_sec - t0->tv_sec) * 1000000000L + (t.tv_nsec - t0->tv_nsec));
    *t0 = t;
    return d;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static uint64_t cookie_of(int fd) {
    uint64_t c = 0;
    socklen_t l = sizeof c;
    if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &l) < 0) return 0;
    return c;
}

static int tcpinfo(int fd, struct tcp_info *ti) {
    socklen_t l = sizeof *ti;
    memset(ti, 0, sizeof *ti);
    return getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &l);
}

// Bytes the application side of fd has queued for sending so far (acked + still in the send queue).
static uint64_t written(int fd) {
    struct tcp_info ti;
    int outq = 0;
    tcpinfo(fd, &ti);
    ioctl(fd, SIOCOUTQ, &outq);
    return ti.tcpi_bytes_acked + (uint64_t)outq;
}

// Data bytes received in order on fd so far. tcpi_bytes_received counts sequence space, so a
// received FIN adds 1 (measured: 200,100 bytes then FIN read 200,101).
static uint64_t received(int fd, int fin_seen) {
    struct tcp_info ti;
    tcpinfo(fd, &ti);
    return ti.tcpi_bytes_received - (fin_seen ? 1 : 0);
}

static void counts_of(uint64_t cookie, struct counts *c) {
    memset(c, 0, sizeof *c);
    map_lookup(counts_fd, &cookie, c);
}

static void report(FILE *f) {
    fprintf(f, "{\"accepted\":%lu,\"refused\":%lu,\"closed_fin\":%lu,\"closed_reset\":%lu,\"closed_idle\":%lu,"
               "\"bytes_c2s\":%lu,\"bytes_s2c\":%lu,\"skbs\":%lu,\"unredirected_skbs\":%lu,\"fallback_bytes\":%lu,"
               "\"count_mismatches\":%lu,\"fin_waits\":%lu,\"unspliced\":%lu,\"insert_us_mean\":%.2f,"
               "\"insert_us_mean_cookies_counters\":%.2f,\"insert_us_mean_sockhash\":%.2f,\"insert_us_mean_kick\":%.2f}\n",
            totals.accepted, totals.refused, totals.closed_fin, totals.closed_reset, totals.closed_idle,
            totals.bytes_c2s, totals.bytes_s2c, totals.skbs, totals.unredirected, totals.fallback_bytes,
            totals.count_mismatches, totals.fin_waits, __atomic_load_n(&totals.unspliced, __ATOMIC_RELAXED),
            totals.accepted ? totals.insert_ns / 1e3 / totals.accepted : 0.0,
            totals.accepted ? totals.setup_ns / 1e3 / totals.accepted : 0.0,
            totals.accepted ? totals.sockhash_ns / 1e3 / totals.accepted : 0.0,
            totals.accepted ? totals.kick_ns / 1e3 / totals.accepted : 0.0);
    fflush(f);
}

static void conn_close(struct conn *c, int how) {   // how: 0 FIN (both done), 1 reset, 2 idle
    struct counts k[2];
    for (int i = 0; i < 2; i++) counts_of(c->cookie[i], &k[i]);
    // Both directions ended with a FIN: every byte received on one side went through the verdict.
    if (how == 0) {
        for (int i = 0; i < 2; i++) {
            uint64_t r = received(c->fd[i], 1);
            if (k[i].bytes != r) {
                totals.count_mismatches++;
                if (logging) fprintf(stderr, "count mismatch side %d: bpf %lu received %lu\n", i, k[i].bytes, r);
            }
        }
    }
    totals.bytes_c2s += k[CLIENT].bytes, totals.bytes_s2c += k[SERVER].bytes;
    totals.skbs += k[0].skbs + k[1].skbs, totals.unredirected += k[0].unredirected + k[1].unredirected;
    if (logging)
        fprintf(stderr, "close %s c2s=%lu s2c=%lu\n", how == 0 ? "fin" : how == 1 ? "reset" : "idle",
                k[CLIENT].bytes, k[SERVER].bytes);
    if (how == 0) totals.closed_fin++;
    else if (how == 1) totals.closed_reset++;
    else totals.closed_idle++;
    for (int i = 0; i < 2; i++) {
        if (how != 0) {   // reset both (HAProxy closes an idle session with a reset too? it sends FIN; a reset is our choice for both)
            struct linger l = {1, 0};
            setsockopt(c->fd[i], SOL_SOCKET, SO_LINGER, &l, sizeof l);
        }
        close(c->fd[i]);   // also takes the socket out of the sockhash
        map_delete(counts_fd, &c->cookie[i]);
    }
    memset(c, 0, sizeof *c);
    free_slots[free_count++] = (int)(c - conns);
}

// FIN seen on side i: once everything it received is queued on the peer, pass the FIN on.
// Returns 1 when done.
static int try_forward_fin(struct conn *c, int i) {
    int o = 1 - i;
    if (c->fin_sent[o]) return 1;
    uint64_t in = received(c->fd[i], 1);
    uint64_t out = written(c->fd[o]) - c->written_base[o];
    if (out < in) return 0;
    shutdown(c->fd[o], SHUT_WR);
    c->fin_sent[o] = 1;
    return 1;
}

static void handle(struct conn *c, int i, uint32_t ev) {
    int err = 0;
    socklen_t l = sizeof err;
    if (ev & EPOLLERR) getsockopt(c->fd[i], SOL_SOCKET, SO_ERROR, &err, &l);
    if (err || ((ev & EPOLLHUP) && !c->fin_seen[i] && !(ev & EPOLLRDHUP))) {
        if (logging) fprintf(stderr, "side %d events %#x error %d: reset\n", i, ev, err);
        conn_close(c, 1);
        return;
    }
    if (ev & (EPOLLIN | EPOLLRDHUP)) {
        // Only what the verdict kept (no peer) or what came before the kick; relay it by hand
        // and count it (expected: 0).
        char buf[65536];
        ssize_t n;
        while ((n = recv(c->fd[i], buf, sizeof buf, MSG_DONTWAIT)) > 0) {
            totals.fallback_bytes += (uint64_t)n;
            if (send(c->fd[1 - i], buf, (size_t)n, MSG_NOSIGNAL) != n) { conn_close(c, 1); return; }
            c->written_base[1 - i] += (uint64_t)n;   // ours, not the verdict's
        }
        if (n == 0 && !c->fin_seen[i]) ev |= EPOLLRDHUP;
    }
    if ((ev & EPOLLRDHUP) && !c->fin_seen[i]) {
        c->fin_seen[i] = 1;
        struct epoll_event e = {.events = 0, .data.u64 = (uint64_t)(c - conns) * 2 + (uint64_t)i};
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd[i], &e);   // ERR/HUP only from now on
        if (!try_forward_fin(c, i)) totals.fin_waits++, pending[pending_count++] = (uint32_t)(c - conns) << 1 | (uint32_t)i;
    }
    if (c->fin_sent[0] && c->fin_sent[1]) conn_close(c, 0);
}

// A connection the sockhash refuses (only ESTABLISHED sockets go in: a client that sent its FIN
// before the splice is in CLOSE_WAIT) is relayed by a thread of its own through userspace, with
// the same half-close and reset rules. Its bytes are counted in fallback_bytes.
struct pair { int fd[2]; };

static void *relay_thread(void *arg) {
    struct pair p = *(struct pair *)arg;
    free(arg);
    int eof[2] = {0, 0};
    char buf[65536];
    while (!eof[0] || !eof[1]) {
        struct pollfd pf[2] = {{p.fd[0], eof[0] ? 0 : POLLIN, 0}, {p.fd[1], eof[1] ? 0 : POLLIN, 0}};
        if (poll(pf, 2, 250) < 0) break;
        int reset = 0;
        for (int i = 0; i < 2 && !reset; i++) {
            if (!(pf[i].revents & (POLLIN | POLLERR | POLLHUP))) continue;
            ssize_t n = recv(p.fd[i], buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0) {
                __atomic_add_fetch(&totals.fallback_bytes, (uint64_t)n, __ATOMIC_RELAXED);
                if (send(p.fd[1 - i], buf, (size_t)n, MSG_NOSIGNAL) != n) reset = 1;
            } else if (n == 0) {
                eof[i] = 1;
                shutdown(p.fd[1 - i], SHUT_WR);
            } else if (errno != EAGAIN) reset = 1;
        }
        if (reset) {
            struct linger l = {1, 0};
            for (int i = 0; i < 2; i++) setsockopt(p.fd[i], SOL_SOCKET, SO_LINGER, &l, sizeof l);
            break;
        }
    }
    close(p.fd[0]), close(p.fd[1]);
    return NULL;
}

static void relay_unspliced(int cfd, int sfd) {
    struct pair *p = malloc(sizeof *p);
    pthread_t t;
    p->fd[0] = cfd, p->fd[1] = sfd;
    __atomic_add_fetch(&totals.unspliced, 1, __ATOMIC_RELAXED);
    if (pthread_create(&t, NULL, relay_thread, p) != 0) { close(cfd), close(sfd), free(p); return; }
    pthread_detach(t);
}

static int connect_to(const struct sockaddr_in *a) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)a, sizeof *a) < 0) { close(fd); return -1; }
    return fd;
}

static void on_accept(int lfd, struct sockaddr_in *backends, int nbackends, int *rr) {
    for (int burst = 0; burst < 64; burst++) {
        int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (cfd < 0) return;
        int slot = free_count ? free_slots[free_count - 1] : -1;
        int sfd = slot < 0 ? -1 : connect_to(&backends[(*rr)++ % nbackends]);
        if (sfd < 0) {
            struct linger l = {1, 0};
            setsockopt(cfd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
            close(cfd);
            totals.refused++;
            continue;
        }
        struct timespec t0, ts;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        ts = t0;
        free_count--;
        struct conn *c = &conns[slot];
        memset(c, 0, sizeof *c);
        c->used = 1, c->fd[CLIENT] = cfd, c->fd[SERVER] = sfd, c->last_active = now_s();
        int ok = 1;
        for (int i = 0; i < 2; i++) {
            c->cookie[i] = cookie_of(c->fd[i]);
            c->written_base[i] = written(c->fd[i]);
            struct counts zero = {0};
            ok &= map_update(counts_fd, &c->cookie[i], &zero, BPF_ANY) == 0;
        }
        uint64_t setup = ns_since(&ts);
        // Each socket is stored under its peer's cookie: the verdict looks up its own. The server
        // goes in first: nothing it receives is verdicted before the client's socket is in too.
        // (Its bytes that arrive before are kept on it, SK_PASS, and lost if the client's insert
        // fails: a benchmark tool's window, a few microseconds after connect.)
        ok &= map_update(peers_fd, &c->cookie[CLIENT], &c->fd[SERVER], BPF_NOEXIST) == 0;
        if (ok) ok &= map_update(peers_fd, &c->cookie[SERVER], &c->fd[CLIENT], BPF_NOEXIST) == 0;
        uint64_t sockhash = ns_since(&ts);
        if (!ok) {
            if (logging) fprintf(stderr, "sockmapproxy: not spliced (%s): relayed in userspace\n", strerror(errno));
            map_delete(peers_fd, &c->cookie[CLIENT]);
            map_delete(peers_fd, &c->cookie[SERVER]);
            for (int i = 0; i < 2; i++) map_delete(counts_fd, &c->cookie[i]);
            relay_unspliced(cfd, sfd);
            memset(c, 0, sizeof *c);
            free_slots[free_count++] = slot;
            continue;
        }
        // Bytes the client sent before its socket entered the map wait in its receive queue and
        // no data_ready will come for them: setting SO_RCVLOWAT calls tcp_data_ready(), which now
        // runs the verdict over what is queued.
        int one = 1;
        for (int i = 0; i < 2; i++) setsockopt(c->fd[i], SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
        totals.kick_ns += ns_since(&ts);
        totals.setup_ns += setup, totals.sockhash_ns += sockhash;
        totals.insert_ns += ns_since(&t0);
        for (int i = 0; i < 2; i++) {
            // Not EPOLLIN: the psock wakes the socket's waiters for every skb it redirects, and
            // only FIN (state change, no key) and errors should wake this process.
            struct epoll_event e = {.events = EPOLLRDHUP, .data.u64 = (uint64_t)slot * 2 + (uint64_t)i};
            epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd[i], &e);
        }
        totals.accepted++;
    }
}

// FINs waiting for their direction's redirected bytes: forward those now drained.
static void drain_pending(void) {
    uint32_t kept = 0;
    for (uint32_t k = 0; k < pending_count; k++) {
        struct conn *c = &conns[pending[k] >> 1];
        int i = (int)(pending[k] & 1);
        if (!c->used) continue;
        if (!try_forward_fin(c, i)) { pending[kept++] = pending[k]; continue; }
        if (c->fin_sent[0] && c->fin_sent[1]) conn_close(c, 0);
    }
    pending_count = kept;
}

// Idle timeout: a connection whose two counters have not moved for timeout_s is closed.
static void idle_scan(void) {
    double t = now_s();
    for (int s = 0; s < maxconn; s++) {
        struct conn *c = &conns[s];
        if (!c->used) continue;
        struct counts a, b;
        counts_of(c->cookie[0], &a), counts_of(c->cookie[1], &b);
        if (a.bytes + b.bytes != c->last_bytes) c->last_bytes = a.bytes + b.bytes, c->last_active = t;
        else if (t - c->last_active > timeout_s) conn_close(c, 2);
    }
}

static int parse_addr(const char *s, struct sockaddr_in *a) {
    char host[64];
    const char *colon = strrchr(s, ':');
    if (!colon || colon - s >= (long)sizeof host) return -1;
    memcpy(host, s, (size_t)(colon - s)), host[colon - s] = 0;
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET, a->sin_port = htons((uint16_t)atoi(colon + 1));
    return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

static void on_signal(int s) {
    if (s == SIGUSR1) want_report = 1;
    else want_exit = 1;
}

int main(int argc, char **argv) {
    struct sockaddr_in listen_addr, backends[16];
    int nbackends = 0, have_listen = 0, strp = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--listen") && i + 1 < argc) have_listen = parse_addr(argv[++i], &listen_addr) == 0;
        else if (!strcmp(argv[i], "--backend") && i + 1 < argc && nbackends < 16) {
            if (parse_addr(argv[++i], &backends[nbackends++]) < 0) { fprintf(stderr, "bad backend\n"); return 2; }
        } else if (!strcmp(argv[i], "--mode") && i + 1 < argc) strp = !strcmp(argv[++i], "strp");
        else if (!strcmp(argv[i], "--timeout-s") && i + 1 < argc) timeout_s = atof(argv[++i]);
        else if (!strcmp(argv[i], "--maxconn") && i + 1 < argc) maxconn = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--log")) logging = 1;
        else { fprintf(stderr, "usage: %s --listen A:P --backend A:P [--mode verdict|strp] [--timeout-s N] [--maxconn N] [--log]\n", argv[0]); return 2; }
    }
    if (!have_listen || nbackends == 0) { fprintf(stderr, "need --listen and --backend\n"); return 2; }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl), rl.rlim_cur = rl.rlim_max, setrlimit(RLIMIT_NOFILE, &rl);
    conns = calloc((size_t)maxconn, sizeof *conns);
    free_slots = calloc((size_t)maxconn, sizeof *free_slots);
    pending = calloc((size_t)maxconn * 2, sizeof *pending);
    for (int s = maxconn - 1; s >= 0; s--) free_slots[free_count++] = s;

    peers_fd = map_create(BPF_MAP_TYPE_SOCKHASH, sizeof(uint64_t), sizeof(int), (uint32_t)maxconn * 2);
    counts_fd = map_create(BPF_MAP_TYPE_HASH, sizeof(uint64_t), sizeof(struct counts), (uint32_t)maxconn * 2);
    if (peers_fd < 0 || counts_fd < 0) { fprintf(stderr, "sockmapproxy: map create: %s\n", strerror(errno)); return 1; }
    int verdict = load_verdict(peers_fd, counts_fd);
    if (verdict < 0) return 1;
    if (strp) {
        int parser = load_parser();
        if (parser < 0 || prog_attach(parser, peers_fd, BPF_SK_SKB_STREAM_PARSER) < 0 ||
            prog_attach(verdict, peers_fd, BPF_SK_SKB_STREAM_VERDICT) < 0) {
            fprintf(stderr, "sockmapproxy: attach strp: %s\n", strerror(errno));
            return 1;
        }
    } else if (prog_attach(verdict, peers_fd, BPF_SK_SKB_VERDICT) < 0) {
        fprintf(stderr, "sockmapproxy: attach verdict: %s\n", strerror(errno));
        return 1;
    }

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);   // inherited by accepted sockets
    if (bind(lfd, (struct sockaddr *)&listen_addr, sizeof listen_addr) < 0 || listen(lfd, 4096) < 0) {
        fprintf(stderr, "sockmapproxy: listen: %s\n", strerror(errno));
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL), sigaction(SIGINT, &sa, NULL), sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    epfd = epoll_create1(0);
    struct epoll_event le = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &le);
    fprintf(stderr, "sockmapproxy: mode %s, maxconn %d, listening\n", strp ? "strp" : "verdict", maxconn);
    int rr = 0;
    double next_scan = now_s();
    while (!want_exit) {
        struct epoll_event ev[256];
        // FINs waiting for redirected bytes to drain are rechecked every millisecond.
        int n = epoll_wait(epfd, ev, 256, pending_count ? 1 : 250);
        for (int k = 0; k < n; k++) {
            if (ev[k].data.u64 == UINT64_MAX) { on_accept(lfd, backends, nbackends, &rr); continue; }
            struct conn *c = &conns[ev[k].data.u64 / 2];
            if (c->used) handle(c, (int)(ev[k].data.u64 % 2), ev[k].events);
        }
        if (pending_count) drain_pending();
        double t = now_s();
        if (timeout_s > 0 && t >= next_scan) idle_scan(), next_scan = t + 0.25;
        if (want_report) want_report = 0, report(stdout);
    }
    report(stdout);
    return 0;
}
