// Ring: one io_uring owned by one worker thread. Sets it up with the flags a per-core proxy
// wants (falling back when the kernel refuses one), hands out SQEs (submitting when the SQ is
// full), and waits. It never interprets completions: that is the Worker's single switch.
import CUring
import Glibc

public struct RingSetup: Sendable, CustomStringConvertible {
    public var singleIssuer = false
    public var deferTaskrun = false
    public var registeredRingFD = false
    public var sqEntries: UInt32 = 0
    public var cqEntries: UInt32 = 0

    public var description: String {
        "sq=\(sqEntries) cq=\(cqEntries) single_issuer=\(singleIssuer) defer_taskrun=\(deferTaskrun) registered_ring_fd=\(registeredRingFD)"
    }
}

public enum RingError: Error, CustomStringConvertible {
    case setup(Int32)
    case register(String, Int32)

    public var description: String {
        switch self {
        case .setup(let e): return "io_uring setup failed: \(String(cString: strerror(e)))"
        case .register(let what, let e): return "io_uring register \(what) failed: \(String(cString: strerror(e)))"
        }
    }
}

struct Ring {
    let ring: UnsafeMutablePointer<io_uring>
    private(set) var setup = RingSetup()

    /// Creates the ring; the calling thread must be the one that submits from now on
    /// (IORING_SETUP_SINGLE_ISSUER).
    init(entries: UInt32, log: (String) -> Void) throws(RingError) {
        ring = .allocate(capacity: 1)
        ring.initialize(to: io_uring())
        let attempts: [(UInt32, String)] = [
            (CU_SETUP_SINGLE_ISSUER | CU_SETUP_DEFER_TASKRUN, ""),
            (CU_SETUP_COOP_TASKRUN, "kernel refused SINGLE_ISSUER|DEFER_TASKRUN; using COOP_TASKRUN"),
            (0, "kernel refused COOP_TASKRUN; using a plain ring"),
        ]
        var lastError: Int32 = 0
        for (flags, note) in attempts {
            var params = io_uring_params()
            params.flags = flags | CU_SETUP_CQSIZE | CU_SETUP_SUBMIT_ALL
            params.cq_entries = entries * 4
            var rc = io_uring_queue_init_params(entries, ring, &params)
            if rc == -EINVAL {
                params = io_uring_params()
                params.flags = flags | CU_SETUP_CQSIZE
                params.cq_entries = entries * 4
                rc = io_uring_queue_init_params(entries, ring, &params)
            }
            if rc == 0 {
                if !note.isEmpty { log(note) }
                setup.singleIssuer = flags & CU_SETUP_SINGLE_ISSUER != 0
                setup.deferTaskrun = flags & CU_SETUP_DEFER_TASKRUN != 0
                setup.sqEntries = cu_sq_entries(ring)
                setup.cqEntries = cu_cq_entries(ring)
                // One fget less per io_uring_enter.
                setup.registeredRingFD = io_uring_register_ring_fd(ring) == 1
                return
            }
            lastError = -rc
        }
        ring.deallocate()
        throw .setup(lastError)
    }

    /// A fresh SQE. When the SQ is full, submits what is queued first (rare: the ring is sized
    /// for a loop turn's worth of work).
    @inline(__always)
    func sqe() -> UnsafeMutablePointer<io_uring_sqe> {
        if let sqe = io_uring_get_sqe(ring) { return sqe }
        while true {
            _ = io_uring_submit(ring)
            if let sqe = io_uring_get_sqe(ring) { return sqe }
        }
    }

    /// Submits everything queued and waits for at least one completion or the timeout.
    @inline(__always)
    func submitAndWait(timeoutNs: Int) {
        var ts = __kernel_timespec(tv_sec: Int64(timeoutNs / 1_000_000_000), tv_nsec: Int64(timeoutNs % 1_000_000_000))
        var cqe: UnsafeMutablePointer<io_uring_cqe>? = nil
        _ = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, nil)
    }

    /// Submits and waits for up to `batch` completions, returning once at least one is there
    /// after `minWaitUs` (kernel min-wait), or at the timeout.
    @inline(__always)
    func submitAndWait(batch: UInt32, minWaitUs: UInt32, timeoutNs: Int) {
        _ = cu_submit_and_wait_batch(ring, batch, timeoutNs, minWaitUs)
    }

    func registerSparseFiles(_ count: UInt32) throws(RingError) {
        let rc = io_uring_register_files_sparse(ring, count)
        if rc < 0 { throw .register("\(count) sparse files", -rc) }
    }

    func destroy() {
        io_uring_queue_exit(ring)
        ring.deallocate()
    }
}
