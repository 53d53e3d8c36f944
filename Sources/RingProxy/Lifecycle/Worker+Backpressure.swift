// Worker+Backpressure: a direction whose destination is slower than its source stops reading
// at a fixed bound (the multishot recv's byte cap, or a cancel), and resumes once its queue has
// drained; a recv that found the pool empty waits on the worker's list until buffers return.
// The data meanwhile waits in the kernel's socket buffer, not in ours.
import CUring
import Glibc

extension Worker {
    /// Buffers a direction may queue before its recv pauses: more during the preamble, so that
    /// the largest CONNECT (or other front-stage message) fits.
    @inline(__always)
    func pipeLimit(_ s: Int) -> Int {
        conns[s].phase == .preamble ? inspectBuffersMax : config.pipeBuffersMax
    }

    /// Pipe p reached its bound: stop reading it until its queue drains. A recv the byte cap
    /// already ended (`more` false) needs nothing; a multishot one is cancelled.
    @inline(__always)
    func pauseRecv(_ p: Int, more: Bool) {
        guard more else {
            count(.recvPauses)   // the byte cap ended the recv right at the bound
            return
        }
        guard !pipes[p].cancelRequested else { return }
        count(.recvPauses)
        pipes[p].cancelRequested = true
        let sqe = ring.sqe()
        io_uring_prep_cancel64(sqe, recvUserData(p), 0)
        cu_sqe_add_flags(sqe, CU_IOSQE_CQE_SKIP_SUCCESS)
        io_uring_sqe_set_data64(sqe, UserData(.ignore, slot: Int32(p >> 1), generation: conns[p >> 1].generation).raw)
    }

    /// Re-arms pipe p's paused recv once its queue has drained to half the bound, unless the
    /// source ended or the recv waits for free buffers.
    @inline(__always) @discardableResult
    func resumeRecvIfDrained(_ p: Int) -> Bool {
        guard !pipes[p].recvArmed, !pipes[p].eof, !pipes[p].waitingBuffers,
              Int(pipes[p].count) * 2 <= config.pipeBuffersMax else { return false }
        armRecv(p)
        return true
    }

    func addBufferWaiter(_ p: Int) {
        guard !pipes[p].waitingBuffers else { return }
        pipes[p].waitingBuffers = true
        pipes[p].waitNext = -1
        pipes[p].waitPrev = waitTail
        if waitTail >= 0 { pipes[Int(waitTail)].waitNext = Int32(p) } else { waitHead = Int32(p) }
        waitTail = Int32(p)
    }

    func removeBufferWaiter(_ p: Int) {
        let prev = pipes[p].waitPrev
        let next = pipes[p].waitNext
        if prev >= 0 { pipes[Int(prev)].waitNext = next } else { waitHead = next }
        if next >= 0 { pipes[Int(next)].waitPrev = prev } else { waitTail = prev }
        pipes[p].waitingBuffers = false
        pipes[p].waitPrev = -1
        pipes[p].waitNext = -1
    }

    /// Re-arms receives that stopped on an empty pool, while buffers are there to fill.
    func serveBufferWaiters() {
        let reserve = 8
        while waitHead >= 0 && pool.available > reserve {
            let p = Int(waitHead)
            removeBufferWaiter(p)
            let s = p >> 1
            if conns[s].phase.isLive && !pipes[p].recvArmed && !pipes[p].eof && Int(pipes[p].count) < pipeLimit(s) {
                armRecv(p)
            }
        }
    }

}
