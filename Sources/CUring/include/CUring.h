// CUring: the C side of ringproxy. liburing's static inline helpers are called from Swift
// directly; this header only adds what Swift cannot reach: CPU-affinity macros, the
// uring_cmd socket-option SQE layout (newer than Debian's liburing 2.3), and errno.
#ifndef CURING_H
#define CURING_H

// System headers first, as Swift's Glibc module sees them; liburing.h defines _GNU_SOURCE,
// which must not change how they are read here.
#include <errno.h>
#include <signal.h>
#include <time.h>
#include <pthread.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <liburing.h>

// Pins the calling thread to one CPU. Returns 0 or an errno value.
int cu_pin_thread_to_cpu(int cpu);
// CPUs this process may run on, written to cpus (at most cpus_max). Returns the count.
int cu_allowed_cpus(int *cpus, int cpus_max);

// SOCKET_URING_OP_SETSOCKOPT over IORING_OP_URING_CMD (Linux 6.7+), on a fixed file.
void cu_prep_setsockopt_fixed(struct io_uring_sqe *sqe, int fixed_index, int level,
                              int optname, void *optval, int optlen);

// Whether the kernel accepts a uring_cmd setsockopt (probed once at start-up).
int cu_probe_uring_setsockopt(struct io_uring *ring);

// The sq/cq entry counts a ring ended up with.
static inline unsigned cu_sq_entries(const struct io_uring *ring) { return ring->sq.ring_entries; }
static inline unsigned cu_cq_entries(const struct io_uring *ring) { return ring->cq.ring_entries; }

// Blocks (or unblocks) SIGINT, SIGTERM, SIGHUP, SIGUSR1 in the calling thread; ignores SIGPIPE.
void cu_block_control_signals(int block);
// Waits for one of the control signals; returns its number.
int cu_wait_control_signal(void);

// Flag values re-exported as plain constants: several are macros over enum bits, which the
// Swift importer does not expand.
static const unsigned char CU_IOSQE_FIXED_FILE = IOSQE_FIXED_FILE;
static const unsigned char CU_IOSQE_IO_LINK = IOSQE_IO_LINK;
static const unsigned char CU_IOSQE_IO_HARDLINK = IOSQE_IO_HARDLINK;
static const unsigned char CU_IOSQE_BUFFER_SELECT = IOSQE_BUFFER_SELECT;
static const unsigned char CU_IOSQE_CQE_SKIP_SUCCESS = IOSQE_CQE_SKIP_SUCCESS;
static const unsigned CU_CQE_F_BUFFER = IORING_CQE_F_BUFFER;
static const unsigned CU_CQE_F_MORE = IORING_CQE_F_MORE;
static const unsigned CU_CQE_BUFFER_SHIFT = IORING_CQE_BUFFER_SHIFT;
static const unsigned CU_SETUP_SINGLE_ISSUER = IORING_SETUP_SINGLE_ISSUER;
static const unsigned CU_SETUP_DEFER_TASKRUN = IORING_SETUP_DEFER_TASKRUN;
static const unsigned CU_SETUP_COOP_TASKRUN = IORING_SETUP_COOP_TASKRUN;
static const unsigned CU_SETUP_SUBMIT_ALL = IORING_SETUP_SUBMIT_ALL;
static const unsigned CU_SETUP_CQSIZE = IORING_SETUP_CQSIZE;
static const unsigned CU_CANCEL_ALL_FIXED_FD = IORING_ASYNC_CANCEL_ALL | IORING_ASYNC_CANCEL_FD_FIXED;
static const unsigned CU_CANCEL_ALL_FD = IORING_ASYNC_CANCEL_ALL;

static inline void cu_sqe_set_buf_group(struct io_uring_sqe *sqe, unsigned short group) {
    sqe->buf_group = group;
}
static inline void cu_sqe_add_flags(struct io_uring_sqe *sqe, unsigned char flags) {
    sqe->flags |= flags;
}

// Counters shared between workers (connection counts, server load, the stop flag): relaxed
// atomics, touched once per connection, never per packet.
static inline long cu_atomic_add(long *p, long v) { return __atomic_add_fetch(p, v, __ATOMIC_RELAXED); }
static inline long cu_atomic_load(const long *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void cu_atomic_store(long *p, long v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
// Server state bits (health checks, the operator, observers on any core): the old value tells
// the caller whether it made the transition and so must report it.
static inline long cu_atomic_fetch_or(long *p, long v) { return __atomic_fetch_or(p, v, __ATOMIC_RELAXED); }
static inline long cu_atomic_fetch_and(long *p, long v) { return __atomic_fetch_and(p, v, __ATOMIC_RELAXED); }
static inline long cu_atomic_exchange(long *p, long v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }
// A high-water mark (most sessions at once): raised, never lowered.
static inline void cu_atomic_max(long *p, long v) {
    long seen = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (v > seen && !__atomic_compare_exchange_n(p, &seen, v, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
}

// A worker's own statistics words: one writer (the loop's thread), readers on any thread.
// Relaxed loads and stores, not read-modify-write atomics: the same plain movs on x86, but
// a defined race (no torn words, no compiler caching) that ThreadSanitizer accepts.
static inline unsigned long long cu_word_load(const unsigned long long *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void cu_word_store(unsigned long long *p, unsigned long long v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline void cu_word_add(unsigned long long *p, unsigned long long n) {
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

// CLOCK_MONOTONIC_COARSE in milliseconds: read once per loop turn.
static inline long cu_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

// Caps a multishot recv: it terminates once it has received at least `bytes` in total
// (sqe->optlen for recv, Linux 6.16+). 0 means no cap.
static inline void cu_sqe_set_recv_limit(struct io_uring_sqe *sqe, unsigned bytes) {
    sqe->file_index = bytes;
}
// Whether the kernel honours that cap: a multishot recv on a socketpair with a 100-byte
// cap must end after its first completion. Uses buffer group `group` (one buffer of it).
int cu_probe_recv_limit(struct io_uring *ring, unsigned short group, unsigned *returned_bid);

// IORING_OP_FIXED_FD_INSTALL (Linux 6.8+, newer than Debian's liburing 2.3): installs a fixed
// file into the process fd table (O_CLOEXEC) and completes with the new fd. Used once per
// connection where a PROXY header needs the address a client reached on a wildcard bind
// (getsockname needs an fd; direct descriptors have none).
#define CU_OP_FIXED_FD_INSTALL 54
static inline void cu_prep_fixed_fd_install(struct io_uring_sqe *sqe, int fixed_index) {
    io_uring_prep_rw(CU_OP_FIXED_FD_INSTALL, sqe, fixed_index, NULL, 0, 0);
    sqe->flags |= IOSQE_FIXED_FILE;
}
// IORING_OP_BIND (Linux 6.11+, newer than Debian's liburing 2.3, whose io_uring_prep_bind
// does not exist yet): binds a fixed file to `addr`. The SQE is filled as liburing 2.7's
// io_uring_prep_bind does: the address in addr, its length in off (the kernel reads it as
// addr2); len, buf_index, rw_flags and splice_fd_in must be 0 (io_bind_prep). The kernel
// copies the address when the SQE is submitted, so it must live until then.
#define CU_OP_BIND 56
static inline void cu_prep_bind_fixed(struct io_uring_sqe *sqe, int fixed_index, const void *addr, unsigned addrlen) {
    io_uring_prep_rw(CU_OP_BIND, sqe, fixed_index, addr, 0, addrlen);
    sqe->flags |= IOSQE_FIXED_FILE;
}
// IP_BIND_ADDRESS_NO_PORT (Linux 4.2+): a bind to port 0 leaves the port to connect, which
// picks one unique for the 4-tuple rather than reserving it for the address alone.
static const int CU_IP_BIND_ADDRESS_NO_PORT = 24;
// Whether a source address can be bound as the connect chain does it: a fresh ring, a socket
// in fixed slot 0, setsockopt(IP_BIND_ADDRESS_NO_PORT) as uring_cmd, IORING_OP_BIND. Returns 0,
// or -errno of the first step that failed, with *step naming it (1: ring or socket,
// 2: setsockopt, 3: bind).
int cu_probe_bind_fixed(const void *addr, unsigned addrlen, int *step);

// Whether the kernel supports opcode `op` (IORING_REGISTER_PROBE), probed once at start-up.
int cu_probe_opcode(struct io_uring *ring, int op);

// jemalloc's counter of bytes allocated by the calling thread ("thread.allocatedp"), found
// at run time so the library does not depend on jemalloc; NULL under another allocator.
unsigned long long *cu_jemalloc_thread_allocated(void);

// CLOCK_REALTIME_COARSE in milliseconds (log timestamps).
static inline long cu_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

// Sends `lines` datagrams in one sendmmsg(2): datagram i is base[starts[i] .. starts[i+1]).
// Returns how many were sent (nonblocking; a full socket buffer drops the rest).
int cu_send_datagrams(int fd, const void *addr, unsigned addrlen, unsigned char *base, const long *starts, int lines);

// Submits what is queued and waits for `wait_nr` completions, but returns as soon as at least
// one is there once `min_wait_usec` has passed (Linux 6.12+ min-wait; older kernels ignore the
// field and wait for wait_nr or the timeout), or at `timeout_ns`. Batches completions per
// io_uring_enter under load without adding more than min_wait_usec of latency.
int cu_submit_and_wait_batch(struct io_uring *ring, unsigned wait_nr, long timeout_ns, unsigned min_wait_usec);

#endif
