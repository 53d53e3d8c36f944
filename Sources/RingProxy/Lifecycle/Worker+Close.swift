// Worker+Close: every way a connection ends goes through closeConnection, which runs once
// (the phase leaves the live ones): pending operations on both sockets are cancelled, the
// sockets closed (with RST where an abort must be seen as one), and the slot released when the
// last pending completion has arrived, its buffers back in the pool and its counts dropped.
import CUring
import Glibc

extension Worker {
    /// Cancels what is pending on both sockets and closes them; `reset` sends RST (SO_LINGER 0)
    /// so that an abort on one side is seen as an abort on the other. The slot is released when
    /// the last pending completion arrives.
    func closeConnection(_ slot: Int32, reset: Bool, why: Termination = .normal) {
        let s = Int(slot)
        let phase = conns[s].phase
        guard phase.isLive else { return }
        conns[s].phase = .closing
        if conns[s].termination == 0 { conns[s].termination = why.rawValue }
        let generation = conns[s].generation
        let ignore = UserData(.ignore, slot: slot, generation: generation).raw
        for side in 0..<2 {
            let open = side == 0 ? conns[s].clientOpen : conns[s].serverOpen
            guard open else { continue }
            let fixed = Int32(s * 2 + side)
            if reset && uringSetsockopt {
                let sqe = ring.sqe()
                cu_prep_setsockopt_fixed(sqe, fixed, SOL_SOCKET, SO_LINGER, lingerZero, Int32(MemoryLayout<linger>.size))
                cu_sqe_add_flags(sqe, CU_IOSQE_IO_HARDLINK | CU_IOSQE_CQE_SKIP_SUCCESS)
                io_uring_sqe_set_data64(sqe, ignore)
            }
            if phase == .connecting || cancelByFileOnly {
                // The connect chain is pending: cancel whatever uses the socket.
                if conns[s].pendingOps > 0 {
                    let sqe = ring.sqe()
                    io_uring_prep_cancel_fd(sqe, fixed, CU_CANCEL_ALL_FIXED_FD)
                    cu_sqe_add_flags(sqe, CU_IOSQE_IO_HARDLINK | CU_IOSQE_CQE_SKIP_SUCCESS)
                    io_uring_sqe_set_data64(sqe, ignore)
                    count(.cancelsByFile)
                }
            } else {
                // Cancel by user_data what could wait forever on this socket: the recv reading it
                // and the send writing to it. One hash bucket each, where a cancel by file walks
                // every poll request of the ring (measured: with 8,000 idle connections held,
                // ~600 µs of CPU per new session instead of ~80). A shutdown in flight ends by itself.
                let reader = s * 2 + side
                let writer = reader ^ 1
                if pipes[reader].recvArmed { cancelLinked(recvUserData(reader), ignore) }
                if pipes[reader].abortWatched { cancelLinked(abortWatchUserData(reader), ignore) }
                if pipes[writer].sendInFlight { cancelLinked(sendUserData(writer), ignore) }
            }
            let sqe = ring.sqe()
            io_uring_prep_close_direct(sqe, UInt32(fixed))
            io_uring_sqe_set_data64(sqe, UserData(.close, slot: slot, generation: generation).raw)
            conns[s].pendingOps += 1
        }
        conns[s].clientOpen = false
        conns[s].serverOpen = false
        for p in (s * 2)...(s * 2 + 1) {
            bufferWaiters.remove(p)
            stalledPipes.remove(p)
        }
        preambleHolders.remove(s)
        finishIfIdle(slot)
    }

    /// A cancel by user_data, hard-linked to what follows (the close of the socket).
    @inline(__always)
    func cancelLinked(_ target: UInt64, _ ignore: UInt64) {
        let sqe = ring.sqe()
        io_uring_prep_cancel64(sqe, target, 0)
        cu_sqe_add_flags(sqe, CU_IOSQE_IO_HARDLINK | CU_IOSQE_CQE_SKIP_SUCCESS)
        io_uring_sqe_set_data64(sqe, ignore)
        count(.cancelsByUserData)
    }

    func onClose(_ slot: Int32) {
        conns[Int(slot)].pendingOps -= 1
        finishIfIdle(slot)
    }

    /// Releases a closing slot once no completion is pending: queued buffers go back to the
    /// pool, counts drop, the generation moves on.
    @inline(__always)
    func finishIfIdle(_ slot: Int32) {
        let s = Int(slot)
        guard conns[s].phase == .closing, conns[s].pendingOps == 0 else { return }
        for p in (s * 2)...(s * 2 + 1) {
            var bid = pipes[p].head
            while bid != BufferPool.none {
                let next = pool.next[Int(bid)]
                pool.give(bid)
                bid = next
            }
            pipes[p].head = BufferPool.none
            pipes[p].tail = BufferPool.none
            pipes[p].count = 0
        }
        countClosed(s)
        // `option dontlognull`: HAProxy logs a null connection (nothing received from the client)
        // only without it. Bytes are counted as they arrive, the PROXY header included.
        if connectionLog != nil && (pipes[s * 2].bytes > 0 || !frontendDontLogNull[Int(conns[s].frontend)]) { logConnection(slot) }
        if conns[s].tls || conns[s].transform == .kernelTLS { endTLS(slot) }
        if conns[s].serverTLS { endServerTLS(slot) }
        if conns[s].tracked { releaseAddress(slot) }
        if conns[s].counted {
            _ = shared.addActive(-1)
            _ = shared.addFrontendActive(Int(conns[s].frontend), -1)
            uncount(.active)
            count(.closed)
            if conns[s].serverCounted {
                shared.serverDisconnected(backendServerBase[Int(conns[s].backend)] + Int(conns[s].server))
            }
        }
        releaseSlot(slot)
        if listenersPaused && !draining { resumeListeners() }
    }

    /// The per-proxy counts a connection leaves at its end (bytes, errors, aborts).
    @inline(__always)
    private func countClosed(_ s: Int) {
        guard conns[s].counted else { return }
        let f = Int(conns[s].frontend)
        let bytesIn = pipes[s * 2].bytes
        let bytesOut = pipes[s * 2 + 1].bytes
        countFrontend(f, .bytesIn, bytesIn)
        countFrontend(f, .bytesOut, bytesOut)
        let why = Termination(rawValue: conns[s].termination) ?? .normal
        switch why {
        case .rejected, .inspectTimeout, .inspectAbort: countFrontend(f, .requestErrors)
        case .denied: countFrontend(f, .denied)
        default: break
        }
        guard conns[s].serverCounted else { return }
        let g = backendServerBase[Int(conns[s].backend)] + Int(conns[s].server)
        countServer(g, .bytesIn, bytesIn)
        countServer(g, .bytesOut, bytesOut)
        if why == .clientAbort || why == .clientTimeout { countServer(g, .clientAborts) }
        if why == .serverAbort || why == .serverTimeout { countServer(g, .serverAborts) }
    }
}
