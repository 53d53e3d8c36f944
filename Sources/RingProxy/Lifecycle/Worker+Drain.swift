// Worker+Drain: the end of a worker's life. On stop (SIGTERM) or retirement (a reload
// replaced its configuration) it stops accepting, hands listening sockets that the next
// configuration took over to it untouched (closing them would reset their backlog), and lets
// its connections finish: within the grace period when stopping, and when retired either within
// it too (`hard-stop-after`) or however long they take.
import CUring
import Glibc

extension Worker {
    func beginDrain() {
        draining = true
        retiring = shared.retiring
        // A retired generation (reload) lets its connections finish however long they take,
        // unless `hard-stop-after` bounds it.
        drainDeadlineMs = retiring && !config.drainGraceBoundsRetirement ? Int.max : nowMs + config.drainGraceMs
        for (l, listener) in listeners.enumerated() where listener.fd >= 0 {
            if acceptsArmed[l] > 0 {
                let sqe = ring.sqe()
                io_uring_prep_cancel_fd(sqe, listener.fd, CU_CANCEL_ALL_FD)
                io_uring_sqe_set_data64(sqe, UserData(.ignore, owner: .worker, slot: 0, generation: 0).raw)
            }
        }
        if retiring {
            let bound = config.drainGraceBoundsRetirement ? " within \(config.drainGraceMs) ms (hard-stop-after)" : ""
            log.info("worker \(index) (previous configuration): \(counted(.active)) connection(s) left to finish\(bound)")
        } else {
            log.info("worker \(index): stopping; \(counted(.active)) connection(s) draining for up to \(config.drainGraceMs) ms")
        }
    }

    /// One turn of draining; true when the worker may exit.
    func drainStep() -> Bool {
        for (l, listener) in listeners.enumerated() where listener.fd >= 0 && acceptsArmed[l] == 0 {
            // A listening socket handed to the next generation stays open: closing it would
            // reset the connections waiting in its backlog.
            if !(retiring && shared.isTransferred(listener.fd)) { close(listener.fd) }
            listeners[l].fd = -1
        }
        if listeners.allSatisfy({ $0.fd < 0 }) { cu_atomic_store(acceptsStoppedWord, 1) }
        if slotsInUse == 0 { return true }
        if !abortedAll && nowMs >= drainDeadlineMs {
            abortedAll = true
            exitDeadlineMs = nowMs + 2_000
            var s = 0
            while s < slotCount {
                if conns[s].phase.isLive { closeConnection(Int32(s), reset: true, why: .stopping) }
                s += 1
            }
        }
        if abortedAll && nowMs >= exitDeadlineMs {
            log.warning("worker \(index): \(slotsInUse) slot(s) still busy at exit")
            return true
        }
        return false
    }
}
