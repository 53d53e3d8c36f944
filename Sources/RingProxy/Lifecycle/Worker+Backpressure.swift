// Worker+Backpressure: what a connection may hold, and who gives way when the pool runs low.
// A direction whose destination is slower than its source stops reading at a fixed bound (the
// multishot recv's byte cap, or a cancel) and resumes once its queue has drained; a recv that
// found the pool empty waits in line until buffers return. The data meanwhile waits in the
// kernel's socket buffer, not in ours. A socket that is not being read is watched for an abort
// (RST), so a client that gives up frees what it held at once. When free buffers fall below
// the low-water mark, connections still in their preamble give way first (oldest holder
// first: a well-behaved client finishes its preamble within a round trip), then directions
// stalled longest behind a destination that does not drain.
import CUring
import Glibc

extension Worker {
    /// Buffers a direction may queue before its recv pauses: more during the preamble, so that
    /// the largest CONNECT (or other front-stage message) fits; one while free buffers are below
    /// the low-water mark, so that directions whose destination is slow take their share, not
    /// the pool. (Measured: at half the pool, 100 bulk streams lost a fifth of their CPU
    /// efficiency to the smaller queues; at the low-water mark they do not.)
    @inline(__always)
    func pipeLimit(_ s: Int) -> Int {
        conns[s].phase == .preamble ? inspectBuffersMax : (poolTight ? 1 : config.pipeBuffersMax)
    }

    /// Pipe p reached its bound: stop reading it until its queue drains. A recv the byte cap
    /// already ended (`more` false) needs nothing; a multishot one is cancelled.
    @inline(__always)
    func pauseRecv(_ p: Int, more: Bool) {
        if conns[p >> 1].phase == .established { stalledPipes.append(p, nowMs: nowMs) }
        watchAbort(p)
        guard more else {
            count(.recvPauses)   // the byte cap ended the recv right at the bound
            return
        }
        guard !pipes[p].cancelRequested else { return }
        count(.recvPauses)
        cancelRecv(p)
    }

    /// Cancels pipe p's armed recv (once); its last completion comes with -ECANCELED, or
    /// with data that raced the cancel.
    func cancelRecv(_ p: Int) {
        guard pipes[p].recvArmed, !pipes[p].cancelRequested else { return }
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
        guard !pipes[p].recvArmed, !pipes[p].eof, !bufferWaiters.contains(p),
              Int(pipes[p].count) * 2 <= config.pipeBuffersMax else { return false }
        armRecv(p)
        return true
    }

    // MARK: Aborts while not reading

    /// Watches pipe p's source socket for an abort while nothing reads it (paused, or waiting
    /// for buffers): a poll for errors and hang-ups, armed once per connection side.
    func watchAbort(_ p: Int) {
        guard !pipes[p].abortWatched, !pipes[p].hangupSeen else { return }
        let sqe = ring.sqe()
        io_uring_prep_poll_add(sqe, Int32(p), UInt32(POLLERR | POLLHUP))
        cu_sqe_add_flags(sqe, CU_IOSQE_FIXED_FILE)
        io_uring_sqe_set_data64(sqe, abortWatchUserData(p))
        pipes[p].abortWatched = true
        conns[p >> 1].pendingOps += 1
    }

    @inline(__always)
    func abortWatchUserData(_ p: Int) -> UInt64 {
        UserData(p & 1 == 0 ? .watchClient : .watchServer, slot: Int32(p >> 1), generation: conns[p >> 1].generation).raw
    }

    /// The watched socket reported an error or a hang-up. An error is an abort (RST): the
    /// connection is aborted on both sides now, whatever it held goes back. A hang-up without
    /// an error is an orderly close of both directions: data before it is still owed to the
    /// peer and is read when the pipe resumes, so nothing is done (and the poll, level-
    /// triggered, is not armed again).
    func onAbortWatch(_ slot: Int32, pipe p: Int, result: Int32) {
        let s = Int(slot)
        conns[s].pendingOps -= 1
        pipes[p].abortWatched = false
        if p & 1 == 1 && conns[s].transform.awaitsServerAnswer && replayStates[s].retiring {
            retireRefusingServerIfIdle(slot)
            return
        }
        guard conns[s].phase.isLive, result > 0 else {
            finishIfIdle(slot)
            return
        }
        if result & Int32(POLLERR) != 0 {
            count(.abortsWhileWaiting)
            count(.resets)
            closeConnection(slot, reset: true, why: p & 1 == 0 ? .clientAbort : .serverAbort)
        } else {
            pipes[p].hangupSeen = true
        }
    }

    // MARK: Buffer waiters

    func addBufferWaiter(_ p: Int) {
        bufferWaiters.append(p, nowMs: nowMs)
        // Holding data it cannot pass on yet: a candidate to give way, like a paused direction.
        if pipes[p].count > 0 && conns[p >> 1].phase == .established { stalledPipes.append(p, nowMs: nowMs) }
        watchAbort(p)
    }

    /// Re-arms receives that stopped on an empty pool, while buffers are there to fill (a few
    /// are kept back, so a waiter is not armed only to find the pool empty again).
    func serveBufferWaiters() {
        while let p = bufferWaiters.first, pool.available > bufferReserve {
            bufferWaiters.remove(p)
            let s = p >> 1
            if conns[s].phase.isLive && !pipes[p].recvArmed && !pipes[p].eof && Int(pipes[p].count) < pipeLimit(s) {
                armRecv(p)
            }
        }
    }

    // MARK: Pool pressure

    /// Whether the pool is short: below the low-water mark, or someone waits for a buffer.
    @inline(__always)
    var poolUnderPressure: Bool {
        pool.available < pressureLowWater || (bufferWaiters.count > 0 && pool.available <= bufferReserve)
    }

    /// Below the low-water mark of free buffers, connections give way until enough is on its
    /// way back: preamble holders first (oldest first), then directions stalled for at least
    /// `stallGraceMs` behind a destination that does not drain (longest first; after only
    /// `stallGraceWaitingMs` when a recv already waits for a buffer). Each is closed
    /// with a reset and counted; its buffers return when its last completion has arrived.
    func relievePoolPressure() {
        var freeing = 0
        while pool.available + freeing < pressureLowWater, let s = preambleHolders.first {
            freeing += Int(pipes[s * 2].count)
            count(.evictions)
            warnRateLimited(Int32(s), "buffer pool under pressure: closing a connection still in its preamble after \(nowMs - conns[s].acceptedAtMs) ms")
            closeConnection(Int32(s), reset: true, why: .evictedPreamble)
        }
        // A recv already waiting for a buffer waits only the short grace: long enough that a
        // direction queued in this very turn has had its send submitted and completed (a burst
        // of small answers, CONNACKs after a reconnect storm, is not a stall), far shorter than
        // any real stall, which is evicted at once (longest first).
        let graceMs = bufferWaiters.count > 0 ? Self.stallGraceWaitingMs : Self.stallGraceMs
        while pool.available + freeing < pressureLowWater, let p = stalledPipes.first,
              nowMs - stalledPipes.since(p) >= graceMs {
            let s = p >> 1
            freeing += Int(pipes[p].count) + Int(pipes[p ^ 1].count)
            count(.evictions)
            warnRateLimited(Int32(s), "buffer pool under pressure: closing a connection whose \(p & 1 == 0 ? "server" : "client") has not read for \(nowMs - stalledPipes.since(p)) ms")
            closeConnection(Int32(s), reset: true, why: .evictedStalled)
        }
    }
}
