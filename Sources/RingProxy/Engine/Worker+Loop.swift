// Worker+Loop: the worker thread's body: set-up on its own thread (the ring, the buffer pool,
// the probes), the loop (submit once per turn, reap completions in a batch, timers, drain), and
// the one dispatch switch every completion goes through. Nothing here allocates per completion.
import CTLS
import CUring
import Glibc

extension Worker {
    // MARK: Thread body

    func run() {
        if let cpu, config.pinThreads {
            let rc = cu_pin_thread_to_cpu(cpu)
            if rc != 0 { log.warning("worker \(index): cannot pin to CPU \(cpu): \(String(cString: strerror(rc)))") }
        }
        do {
            let entries = UInt32(4096)
            ring = try Ring(entries: entries) { [log, index] in log.warning("worker \(index): \($0)") }
            try ring.registerSparseFiles(UInt32(slotCount * 2 + checks.count))
            pool = try BufferPool(ring: ring, count: config.buffersPerWorker, ownedCount: config.ownedBuffersPerWorker,
                                  sizeBytes: config.bufferSizeBytes)
        } catch {
            startError = "worker \(index): \(error)"
            cu_atomic_store(startStateWord, -1)
            return
        }
        uringSetsockopt = Worker.probeSetsockopt(ring)
        fixedFDInstall = cu_probe_opcode(ring.ring, CU_OP_FIXED_FD_INSTALL) != 0
        if index == 0 { warnIfLocalAddressesUnknown() }
        var probeBid: UInt32 = 0
        recvLimit = cu_probe_recv_limit(ring.ring, BufferPool.group, &probeBid) == 0 && getenv("RINGPROXY_NO_RECV_CAP") == nil
        if probeBid != UInt32.max {
            pool.taken(UInt16(probeBid), bytes: 0)
            pool.give(UInt16(probeBid))
            pool.commit()
        }
        if index == 0 {
            log.info("io_uring: \(ring.setup); provided buffers: \(config.buffersPerWorker) x \(config.bufferSizeBytes) B per worker; "
                     + "fixed files: \(slotCount * 2) per worker; TCP_NODELAY on server sockets via "
                     + (uringSetsockopt ? "uring_cmd" : "nothing (kernel without SOCKET_URING_OP_SETSOCKOPT)")
                     + "; multishot recv byte cap: " + (recvLimit ? "yes" : "no (backpressure by cancel only)")
                     + "; \(MemoryLayout<Connection>.stride + 2 * MemoryLayout<Pipe>.stride) bytes per connection slot")
        }
        allocatedCounter = cu_jemalloc_thread_allocated()
        nowMs = cu_now_ms()
        timers.schedule(id: WorkerTimer.scan.rawValue, atMs: nowMs + Self.scanIntervalMs)
        scheduleFirstChecks()
        tlsRateSecond = nowMs / 1000
        serverEventsSeen = shared.serverEvents
        for b in balancers.indices { balancers[b].refreshWeights(shared: shared) }
        for l in listeners.indices { fillAccepts(l) }
        cu_atomic_store(startStateWord, 1)
        loop()
        connectionLog?.flush()
        for l in listeners where l.fd >= 0 && !(retiring && shared.isTransferred(l.fd)) { close(l.fd) }
        ring.destroy()
        publishGauges()
        releaseMemory()
        cu_atomic_store(startStateWord, 2)
    }


    static func probeSetsockopt(_ ring: Ring) -> Bool {
        // The probe uses fixed slot 0 before any connection exists.
        cu_probe_uring_setsockopt(ring.ring) == 0
    }

    func loop() {
        while true {
            count(.loopTurns)
            publishGauges()
            let waitNs = min(Self.waitMaxMs, max(0, (timers.nextDueMs ?? Int.max) - nowMs)) * 1_000_000
            if waitBatch > 1 {
                ring.submitAndWait(batch: waitBatch, minWaitUs: waitMinUs, timeoutNs: max(waitNs, 1))
            } else {
                ring.submitAndWait(timeoutNs: max(waitNs, 1))
            }
            nowMs = cu_now_ms()
            reap()
            pool.commit()
            if connectionLog != nil { flushLog() }
            if bufferWaiters.count > 0 { serveBufferWaiters() }
            poolTight = pool.available < pressureLowWater
            if poolUnderPressure { relievePoolPressure() }
            while let due = timers.popDue(nowMs: nowMs) { fireTimer(due.id) }
            if shared.acceptKicks != acceptKicksSeen { armExtraAccepts() }
            if shared.serverEvents != serverEventsSeen { onServerEvents() }
            if !draining, shared.stopping { beginDrain() }
            if draining && drainDeadlineMs == Int.max && !shared.retiring {
                // A retired generation told to stop (SIGTERM) gets the grace period after all.
                drainDeadlineMs = nowMs + config.drainGraceMs
            }
            if draining, drainStep() { return }
        }
    }

    @inline(__always)
    func reap() {
        while true {
            let n = Int(io_uring_peek_batch_cqe(ring.ring, cqes, UInt32(Self.cqeBatch)))
            if n == 0 { return }
            var i = 0
            while i < n {
                let cqe = cqes[i].unsafelyUnwrapped
                dispatch(UserData(raw: cqe.pointee.user_data), result: cqe.pointee.res, flags: cqe.pointee.flags)
                i += 1
            }
            io_uring_cq_advance(ring.ring, UInt32(n))
            count(.completions, UInt64(n))
            if n < Self.cqeBatch { return }
        }
    }

    /// The one dispatch point: every completion goes through this switch.
    @inline(__always)
    func dispatch(_ ud: UserData, result: Int32, flags: UInt32) {
        let slot = ud.slot
        guard ud.owner == .connection else {
            if ud.owner == .check {
                onCheckCompletion(ud, result: result)
            } else {
                // The worker's own operations (listener cancels) need nothing on completion.
                dropStale(ud, result: result, flags: flags)
            }
            return
        }
        guard let op = ud.operation, Int(slot) < slotCount, conns[Int(slot)].generation == ud.generation else {
            dropStale(ud, result: result, flags: flags)
            return
        }
        switch op {
        case .accept: onAccept(slot, result: result)
        case .connect: onConnect(slot, result: result)
        case .linkTimeout: onLinkTimeout(slot)
        case .recvClient: onRecv(slot, pipe: Int(slot) * 2, result: result, flags: flags)
        case .recvServer: onRecv(slot, pipe: Int(slot) * 2 + 1, result: result, flags: flags)
        case .sendServer: onSend(slot, pipe: Int(slot) * 2, bufferID: ud.bufferID, result: result)
        case .sendClient: onSend(slot, pipe: Int(slot) * 2 + 1, bufferID: ud.bufferID, result: result)
        case .watchClient: onAbortWatch(slot, pipe: Int(slot) * 2, result: result)
        case .watchServer: onAbortWatch(slot, pipe: Int(slot) * 2 + 1, result: result)
        case .installClient: onClientInstalled(slot, result: result)
        case .attachTLSULP, .setTLSTransmitKeys, .setTLSReceiveKeys: onKernelTLSStep(slot, op, result: result)
        case .close, .shutdown, .sendCloseNotify: onClose(slot)
        case .sourceBind: onSourceBind(slot, result: result)
        case .ignore: break
        }
    }

    /// A completion for a slot that has since been reused. Slots are freed only when nothing is
    /// pending, so only fire-and-forget ops (`.ignore`) can land here; a buffer it carries still
    /// goes back to the pool.
    func dropStale(_ ud: UserData, result: Int32, flags: UInt32) {
        count(.staleCompletions)
        assert(ud.operation == .ignore, "stale completion for \(String(describing: ud.operation)) slot \(ud.slot)")
        if flags & CU_CQE_F_BUFFER != 0 {
            let bid = UInt16(truncatingIfNeeded: flags >> CU_CQE_BUFFER_SHIFT)
            pool.taken(bid, bytes: 0)
            pool.give(bid)
        }
    }
}
