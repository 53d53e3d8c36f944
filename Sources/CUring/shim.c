// The few C functions ringproxy needs because Swift cannot expand the macros or the kernel
// interface is newer than the liburing on the build machines. Nothing here is on a hot path
// except cu_prep_setsockopt_fixed, once per outgoing connection.
#define _GNU_SOURCE
#include "CUring.h"
#include <sched.h>
#include <string.h>
#include <unistd.h>
#include <dlfcn.h>
#include <stdint.h>

int cu_pin_thread_to_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int cu_allowed_cpus(int *cpus, int cpus_max) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
    int n = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && n < cpus_max; cpu++)
        if (CPU_ISSET(cpu, &set)) cpus[n++] = cpu;
    return n;
}

#ifndef SOCKET_URING_OP_SETSOCKOPT
#define SOCKET_URING_OP_SETSOCKOPT 3
#endif

// The 6.7+ SQE layout for socket commands, written over liburing 2.3's struct:
// cmd_op aliases off (low 32 bits), level/optname alias addr, optlen aliases
// splice_fd_in/file_index, optval aliases addr3.
void cu_prep_setsockopt_fixed(struct io_uring_sqe *sqe, int fixed_index, int level,
                              int optname, void *optval, int optlen) {
    io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fixed_index, NULL, 0, 0);
    sqe->cmd_op = SOCKET_URING_OP_SETSOCKOPT;
    sqe->addr = (__u64)(__u32)level | ((__u64)(__u32)optname << 32);
    sqe->file_index = (__u32)optlen;
    sqe->addr3 = (__u64)(uintptr_t)optval;
    sqe->flags |= IOSQE_FIXED_FILE;
}

int cu_probe_uring_setsockopt(struct io_uring *ring) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -errno;
    int rc = io_uring_register_files_update(ring, 0, &fd, 1);
    close(fd);
    if (rc < 0) return rc;
    static int one = 1;
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    cu_prep_setsockopt_fixed(sqe, 0, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sqe->user_data = 0;
    io_uring_submit(ring);
    struct io_uring_cqe *cqe;
    rc = io_uring_wait_cqe(ring, &cqe);
    if (rc == 0) { rc = cqe->res; io_uring_cqe_seen(ring, cqe); }
    int minus_one = -1;
    io_uring_register_files_update(ring, 0, &minus_one, 1);
    return rc;
}

void cu_block_control_signals(int block) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int cu_wait_control_signal(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    int sig = 0;
    if (sigwait(&set, &sig) != 0) return -1;
    return sig;
}

int cu_probe_recv_limit(struct io_uring *ring, unsigned short group, unsigned *returned_bid) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return -errno;
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    io_uring_prep_recv_multishot(sqe, sv[0], NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = group;
    cu_sqe_set_recv_limit(sqe, 100);
    sqe->user_data = 0;
    io_uring_submit(ring);
    char data[200];
    memset(data, 'p', sizeof(data));
    int rc = -1;
    *returned_bid = 0xFFFFFFFFu;
    if (write(sv[1], data, sizeof(data)) == (ssize_t)sizeof(data)) {
        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts = { .tv_sec = 1, .tv_nsec = 0 };
        if (io_uring_wait_cqe_timeout(ring, &cqe, &ts) == 0) {
            if (cqe->flags & IORING_CQE_F_BUFFER) *returned_bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
            rc = (cqe->res > 0 && !(cqe->flags & IORING_CQE_F_MORE)) ? 0 : (cqe->res < 0 ? cqe->res : -1);
            int more = cqe->flags & IORING_CQE_F_MORE;
            io_uring_cqe_seen(ring, cqe);
            if (more) {
                // Not honoured: cancel the still-armed recv and reap its end.
                struct io_uring_sqe *c = io_uring_get_sqe(ring);
                io_uring_prep_cancel64(c, 0, IORING_ASYNC_CANCEL_ANY);
                c->user_data = 1;
                io_uring_submit(ring);
                for (int i = 0; i < 2; i++) {
                    if (io_uring_wait_cqe_timeout(ring, &cqe, &ts) != 0) break;
                    io_uring_cqe_seen(ring, cqe);
                }
            }
        }
    }
    close(sv[0]);
    close(sv[1]);
    return rc;
}

unsigned long long *cu_jemalloc_thread_allocated(void) {
    typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);
    mallctl_fn mallctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mallctl");
    if (!mallctl) return NULL;
    uint64_t *counter = NULL;
    size_t size = sizeof(counter);
    if (mallctl("thread.allocatedp", &counter, &size, NULL, 0) != 0) return NULL;
    return (unsigned long long *)counter;
}

int cu_send_datagrams(int fd, const void *addr, unsigned addrlen, unsigned char *base, const long *starts, int lines) {
    enum { batch = 64 };
    struct iovec iov[batch];
    struct mmsghdr msgs[batch];
    int sent_total = 0;
    for (int first = 0; first < lines; first += batch) {
        int n = lines - first < batch ? lines - first : batch;
        for (int i = 0; i < n; i++) {
            iov[i].iov_base = base + starts[first + i];
            iov[i].iov_len = (size_t)(starts[first + i + 1] - starts[first + i]);
            memset(&msgs[i], 0, sizeof(msgs[i]));
            msgs[i].msg_hdr.msg_name = (void *)addr;
            msgs[i].msg_hdr.msg_namelen = addrlen;
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int sent = sendmmsg(fd, msgs, (unsigned)n, MSG_DONTWAIT);
        if (sent <= 0) break;
        sent_total += sent;
        if (sent < n) break;
    }
    return sent_total;
}

int cu_submit_and_wait_batch(struct io_uring *ring, unsigned wait_nr, long timeout_ns, unsigned min_wait_usec) {
    // Publish the SQ tail as liburing's flush does (no SQPOLL here).
    struct io_uring_sq *sq = &ring->sq;
    unsigned tail = sq->sqe_tail;
    if (sq->sqe_head != tail) {
        sq->sqe_head = tail;
        io_uring_smp_store_release(sq->ktail, tail);
    }
    unsigned to_submit = tail - *sq->khead;
    struct __kernel_timespec ts = { .tv_sec = timeout_ns / 1000000000L, .tv_nsec = timeout_ns % 1000000000L };
    struct io_uring_getevents_arg arg = {
        .sigmask = 0, .sigmask_sz = _NSIG / 8, .pad = min_wait_usec, .ts = (unsigned long)(uintptr_t)&ts,
    };
    unsigned flags = IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG;
    if (ring->int_flags & 1 /* INT_FLAG_REG_RING */) flags |= IORING_ENTER_REGISTERED_RING;
    return io_uring_enter2(ring->enter_ring_fd, to_submit, wait_nr, flags, &arg, sizeof(arg));
}

int cu_probe_opcode(struct io_uring *ring, int op) {
    struct io_uring_probe *probe = io_uring_get_probe_ring(ring);
    if (probe == NULL) return 0;
    int supported = io_uring_opcode_supported(probe, op);
    io_uring_free_probe(probe);
    return supported;
}

int cu_probe_bind_fixed(const void *addr, unsigned addrlen, int *step) {
    struct io_uring ring;
    *step = 1;
    int rc = io_uring_queue_init(4, &ring, 0);
    if (rc < 0) return rc;
    int family = ((const struct sockaddr *)addr)->sa_family;
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) { rc = -errno; goto out; }
    rc = io_uring_register_files(&ring, &fd, 1);
    close(fd);
    if (rc < 0) goto out;
    static int one = 1;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    cu_prep_setsockopt_fixed(sqe, 0, IPPROTO_IP, CU_IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    sqe->user_data = 2;
    sqe = io_uring_get_sqe(&ring);
    cu_prep_bind_fixed(sqe, 0, addr, addrlen);
    sqe->user_data = 3;
    io_uring_submit(&ring);
    rc = 0;
    for (int i = 0; i < 2; i++) {
        struct io_uring_cqe *cqe;
        if (io_uring_wait_cqe(&ring, &cqe) != 0) break;
        if (cqe->res < 0 && rc == 0) { rc = cqe->res; *step = (int)cqe->user_data; }
        io_uring_cqe_seen(&ring, cqe);
    }
out:
    io_uring_queue_exit(&ring);
    return rc;
}
