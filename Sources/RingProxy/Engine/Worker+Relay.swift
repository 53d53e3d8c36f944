// The relay state machine: accept -> connect (with redispatch) -> two pipes moving received
// buffers to the peer as they are -> half-close -> close. Each handler is one step taken on a
// completion; it queues SQEs and returns. This is the per-packet path: no allocation, no
// retain/release, no locks; state is reached through raw table pointers by slot.
import CUring
import Glibc
import MQTTPeek

extension Worker {
    // MARK: Accept

    func fillAccepts(_ l: Int) {
        while acceptsArmed[l] < config.acceptDepth {
            if !armAccept(l) { return }
        }
    }

    /// Arms one accept into a fresh slot; false when the table is full (the listener pauses and
    /// connections wait in the kernel backlog).
    @discardableResult
    func armAccept(_ l: Int) -> Bool {
        let fd = listeners[l].fd
        guard fd >= 0, !draining else { return false }
        guard let slot = allocateSlot() else {
            if !listenersPaused { stats.acceptPaused &+= 1 }
            listenersPaused = true
            return false
        }
        let s = Int(slot)
        conns[s].state = .accepting
        conns[s].listener = UInt16(l)
        conns[s].backend = UInt16(listeners[l].backend)
        conns[s].peerLength = UInt32(MemoryLayout<sockaddrStorage>.size)
        let sqe = ring.sqe()
        withUnsafeMutablePointer(to: &conns[s].peer) { peer in
            withUnsafeMutablePointer(to: &conns[s].peerLength) { len in
                peer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    io_uring_prep_accept_direct(sqe, fd, $0, len, 0, UInt32(s * 2))
                }
            }
        }
        io_uring_sqe_set_data64(sqe, UserData(.accept, slot: slot, generation: conns[s].generation).raw)
        conns[s].pendingOps += 1
        acceptsArmed[l] += 1
        return true
    }

    func resumeListeners() {
        listenersPaused = false
        for l in listeners.indices { fillAccepts(l) }
    }

    func onAccept(_ slot: Int32, result: Int32) {
        let s = Int(slot)
        let l = Int(conns[s].listener)
        acceptsArmed[l] -= 1
        conns[s].pendingOps -= 1
        if result < 0 {
            if result != -ECANCELED { stats.acceptErrors &+= 1 }
            releaseSlot(slot)
            if !draining { fillAccepts(l) }
            return
        }
        conns[s].clientOpen = true
        conns[s].acceptedAtMs = nowMs
        conns[s].lastClientMs = nowMs
        conns[s].lastServerMs = nowMs
        let f = listeners[l].frontend
        if shared.addActive(1) > maxConnections || shared.addFrontendActive(f, 1) > frontendMaxConnections[f] {
            _ = shared.addActive(-1)
            _ = shared.addFrontendActive(f, -1)
            stats.refusedMaxconn &+= 1
            conns[s].state = .connecting
            closeConnection(slot, reset: false, why: .maxconn)
            fillAccepts(l)
            return
        }
        conns[s].counted = true
        stats.accepted &+= 1
        stats.active += 1
        conns[s].frontend = UInt16(f)
        if frontendInspects[f] {
            // Hold the client until its CONNECT is known; no server yet.
            conns[s].state = .inspecting
            armRecv(s * 2)
        } else {
            conns[s].state = .connecting
            armRecv(s * 2)
            chooseServer(slot, clientID: nil)
            startConnect(slot)
        }
        fillAccepts(l)
    }

    // MARK: MQTT inspection

    static let peerOffset = MemoryLayout<Connection>.offset(of: \Connection.peer)!

    /// Looks at what the client sent so far: not yet a whole CONNECT -> wait; not MQTT -> close
    /// (the server never sees a byte); a CONNECT -> choose the server from its client id and
    /// connect, then the held bytes go out exactly as received.
    func inspect(_ slot: Int32) {
        let s = Int(slot)
        let p = s * 2
        let f = Int(conns[s].frontend)
        let connectMax = frontendConnectMaxBytes[f]
        var bytes: UnsafeRawBufferPointer
        let head = pipes[p].head
        if pipes[p].count == 1 {
            bytes = UnsafeRawBufferPointer(start: pool.address(head), count: Int(pool.length[Int(head)]))
        } else {
            // A CONNECT split over segments: gather the held buffers (bounded by the scratch size).
            var copied = 0
            var bid = head
            while bid != BufferPool.none && copied < scratch.count {
                let n = min(Int(pool.length[Int(bid)]), scratch.count - copied)
                (scratch.baseAddress! + copied).copyMemory(from: pool.address(bid), byteCount: n)
                copied += n
                bid = pool.next[Int(bid)]
            }
            bytes = UnsafeRawBufferPointer(start: scratch.baseAddress, count: copied)
        }
        switch MQTTPeek.parseConnect(bytes, connectMaxBytes: connectMax) {
        case .needMore:
            return
        case .invalid(let reason):
            if frontendRequiresMQTT[f] {
                stats.mqttRejected &+= 1
                rejectCounts[Int(reason.rawValue) & 31] &+= 1
                warnRateLimited(slot, "rejected: \(reason)")
                closeConnection(slot, reset: false, why: .rejected)
            } else {
                // Not MQTT but MQTT is not required: balance without a client id.
                chooseServer(slot, clientID: nil)
                conns[s].state = .connecting
                startConnect(slot)
            }
        case .connect(let packet):
            stats.mqttConnects &+= 1
            if connectionLog != nil { keepClientID(slot, UnsafeRawBufferPointer(rebasing: bytes[packet.clientIdentifier])) }
            chooseServer(slot, clientID: UnsafeRawBufferPointer(rebasing: bytes[packet.clientIdentifier]))
            conns[s].state = .connecting
            startConnect(slot)
        }
    }

    /// Keeps a CONNECT that trickles in a few bytes per segment from taking a buffer per
    /// segment: the newest buffer is appended to the one before it when it fits, and given back.
    func packTail(_ p: Int) {
        guard pipes[p].count >= 2 else { return }
        let tail = pipes[p].tail
        var previous = pipes[p].head
        while pool.next[Int(previous)] != tail { previous = pool.next[Int(previous)] }
        let previousLength = Int(pool.length[Int(previous)])
        let tailLength = Int(pool.length[Int(tail)])
        guard previousLength + tailLength <= pool.sizeBytes else { return }
        (pool.address(previous) + previousLength).copyMemory(from: pool.address(tail), byteCount: tailLength)
        pool.length[Int(previous)] = UInt32(previousLength + tailLength)
        pool.next[Int(previous)] = BufferPool.none
        pipes[p].tail = previous
        pipes[p].count -= 1
        pool.give(tail)
    }

    /// The first server for this connection: its stick-table entry when there is one, else the
    /// backend's algorithm (hashing the client id or address where the algorithm hashes).
    func chooseServer(_ slot: Int32, clientID: UnsafeRawBufferPointer?) {
        let s = Int(slot)
        let b = Int(conns[s].backend)
        let count = backendServerCount[b]
        guard count > 0 else { return }
        if let id = clientID, id.count > 0, let table = shared.stickTables[b] {
            let h = table.keyHash(id)
            conns[s].sticky = true
            conns[s].stickHash = h
            if let server = table.lookup(h, nowMs: nowMs), server < count {
                stats.stickHits &+= 1
                conns[s].server = Int32(server)
                return
            }
            stats.stickMisses &+= 1
            let server = balancers[b].pick(shared: shared, key: balancerKey(slot, clientID: id))
            conns[s].server = Int32(server)
            table.store(h, server: server, nowMs: nowMs)
            return
        }
        conns[s].server = Int32(balancers[b].pick(shared: shared, key: balancerKey(slot, clientID: clientID)))
    }

    /// What a hashing algorithm hashes: the client id (clientid-hash, when there is one) or
    /// the client's address bytes (source; and the fallback for an empty client id).
    private func balancerKey(_ slot: Int32, clientID: UnsafeRawBufferPointer?) -> UnsafeRawBufferPointer {
        let s = Int(slot)
        if balancers[Int(conns[s].backend)].algorithm == .clientIDHash, let id = clientID, id.count > 0 { return id }
        // sockaddr_in: the address at 4..<8; sockaddr_in6: at 8..<24. The table is
        // preallocated, so the bytes stay where they are.
        let base = UnsafeRawPointer(conns + s) + Worker.peerOffset
        let family = Int32(base.load(as: UInt16.self))
        return family == AF_INET6 ? UnsafeRawBufferPointer(start: base + 8, count: 16)
                                  : UnsafeRawBufferPointer(start: base + 4, count: 4)
    }

    /// Per-connection warnings (rejections) at most 20 a second per worker, so a flood of junk
    /// cannot turn into a flood of log lines.
    func warnRateLimited(_ slot: Int32, _ what: @autoclosure () -> String) {
        let second = nowMs / 1000
        if second != warningsSecond {
            if warningsSuppressed > 0 { log.warning("worker \(index): \(warningsSuppressed) similar message(s) suppressed") }
            warningsSecond = second
            warningsLeft = 20
            warningsSuppressed = 0
        }
        guard warningsLeft > 0 else { warningsSuppressed += 1; return }
        warningsLeft -= 1
        let s = Int(slot)
        let peer = SocketAddress(raw: UnsafeRawPointer(conns + s) + Worker.peerOffset, length: conns[s].peerLength)
        let frontend = config.frontends[Int(conns[s].frontend)].name
        log.warning("frontend \(frontend): client \(peer.map(\.description) ?? "?"): \(what())")
    }

    // MARK: Connect

    /// Opens the server socket straight into the fixed table and connects it, as one linked
    /// chain: [close old] -> socket -> setsockopt(TCP_NODELAY) -> connect -> link timeout.
    func startConnect(_ slot: Int32) {
        let s = Int(slot)
        let b = Int(conns[s].backend)
        let count = backendServerCount[b]
        if count == 0 {
            stats.connectGiveUps &+= 1
            closeConnection(slot, reset: false, why: .connectFailed)
            return
        }
        if conns[s].server < 0 { chooseServer(slot, clientID: nil) }
        let server = conns[s].attempts == 0 ? Int(conns[s].server) : balancers[b].next(after: Int(conns[s].server))
        conns[s].server = Int32(server)
        let address = serverAddresses + (backendServerBase[b] + server)
        let fixed = Int32(s * 2 + 1)
        let generation = conns[s].generation
        if conns[s].attempts == 0 { conns[s].connectStartMs = nowMs }
        let ignore = UserData(.ignore, slot: slot, generation: generation).raw
        stats.connectAttempts &+= 1

        if conns[s].serverOpen {
            let sqe = ring.sqe()
            io_uring_prep_close_direct(sqe, UInt32(fixed))
            cu_sqe_add_flags(sqe, CU_IOSQE_IO_HARDLINK | CU_IOSQE_CQE_SKIP_SUCCESS)
            io_uring_sqe_set_data64(sqe, ignore)
        }
        var sqe = ring.sqe()
        io_uring_prep_socket_direct(sqe, address.pointee.family, Int32(SOCK_STREAM.rawValue), 0, UInt32(fixed), 0)
        cu_sqe_add_flags(sqe, CU_IOSQE_IO_LINK | CU_IOSQE_CQE_SKIP_SUCCESS)
        io_uring_sqe_set_data64(sqe, ignore)
        if uringSetsockopt {
            sqe = ring.sqe()
            cu_prep_setsockopt_fixed(sqe, fixed, Int32(IPPROTO_TCP), TCP_NODELAY, optionOne, Int32(MemoryLayout<Int32>.size))
            // A failed setsockopt must not stop the connect.
            cu_sqe_add_flags(sqe, CU_IOSQE_IO_HARDLINK | CU_IOSQE_CQE_SKIP_SUCCESS)
            io_uring_sqe_set_data64(sqe, ignore)
        }
        sqe = ring.sqe()
        withUnsafePointer(to: &address.pointee.storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                io_uring_prep_connect(sqe, fixed, $0, address.pointee.length)
            }
        }
        cu_sqe_add_flags(sqe, CU_IOSQE_FIXED_FILE | CU_IOSQE_IO_LINK)
        io_uring_sqe_set_data64(sqe, UserData(.connect, slot: slot, generation: generation).raw)
        sqe = ring.sqe()
        io_uring_prep_link_timeout(sqe, connectTimeouts + b, 0)
        io_uring_sqe_set_data64(sqe, UserData(.linkTimeout, slot: slot, generation: generation).raw)
        conns[s].pendingOps += 2
        conns[s].serverOpen = true
    }

    func onLinkTimeout(_ slot: Int32) {
        conns[Int(slot)].pendingOps -= 1
        finishIfIdle(slot)
    }

    func onConnect(_ slot: Int32, result: Int32) {
        let s = Int(slot)
        conns[s].pendingOps -= 1
        guard conns[s].state == .connecting else {
            finishIfIdle(slot)
            return
        }
        if result == 0 {
            conns[s].state = .established
            conns[s].lastServerMs = nowMs
            conns[s].connectedAtMs = nowMs
            shared.serverConnected(backendServerBase[Int(conns[s].backend)] + Int(conns[s].server))
            conns[s].serverCounted = true
            if conns[s].sticky && conns[s].attempts > 0, let table = shared.stickTables[Int(conns[s].backend)] {
                // Redispatched: the client now belongs to the server that answered.
                table.store(conns[s].stickHash, server: Int(conns[s].server), nowMs: nowMs)
            }
            armRecv(s * 2 + 1)
            issueSend(s * 2)
            maybeShutdown(s * 2)
            return
        }
        stats.connectFailures &+= 1
        if result == -ECANCELED { stats.connectTimeouts &+= 1 }
        logServerFailure(slot, result: result)
        conns[s].attempts &+= 1
        if Int(conns[s].attempts) <= backendRetries[Int(conns[s].backend)] {
            startConnect(slot)
        } else {
            stats.connectGiveUps &+= 1
            closeConnection(slot, reset: false, why: result == -ECANCELED ? .connectTimeout : .connectFailed)
        }
    }

    // MARK: Pipes

    @inline(__always)
    func armRecv(_ p: Int) {
        let sqe = ring.sqe()
        io_uring_prep_recv_multishot(sqe, Int32(p), nil, 0, 0)
        cu_sqe_add_flags(sqe, CU_IOSQE_FIXED_FILE | CU_IOSQE_BUFFER_SELECT)
        cu_sqe_set_buf_group(sqe, BufferPool.group)
        if recvLimit {
            // End this multishot once it has filled the buffers the pipe may still queue, so a
            // burst never overshoots the bound: full buffers reach the cap exactly at the limit.
            let room = max(1, pipeLimit(p >> 1) - Int(pipes[p].count))
            cu_sqe_set_recv_limit(sqe, UInt32((room - 1) * config.bufferSizeBytes + 1))
        }
        io_uring_sqe_set_data64(sqe, recvUserData(p))
        pipes[p].recvArmed = true
        pipes[p].cancelRequested = false
        conns[p >> 1].pendingOps += 1
    }

    @inline(__always)
    func recvUserData(_ p: Int) -> UInt64 {
        UserData(p & 1 == 0 ? .recvClient : .recvServer, slot: Int32(p >> 1), generation: conns[p >> 1].generation).raw
    }

    @inline(__always)
    func onRecv(_ slot: Int32, pipe p: Int, result: Int32, flags: UInt32) {
        let s = Int(slot)
        let more = flags & CU_CQE_F_MORE != 0
        if !more {
            pipes[p].recvArmed = false
            conns[s].pendingOps -= 1
        }
        stats.recvCompletions &+= 1
        if result > 0 {
            let bid = UInt16(truncatingIfNeeded: flags >> CU_CQE_BUFFER_SHIFT)
            pool.taken(bid, bytes: result)
            let state = conns[s].state
            guard state == .connecting || state == .established || state == .inspecting else {
                pool.give(bid)
                finishIfIdle(slot)
                return
            }
            enqueue(p, bid)
            pipes[p].bytes &+= UInt64(result)
            if p & 1 == 0 {
                stats.bytesFromClients &+= UInt64(result)
                conns[s].lastClientMs = nowMs
            } else {
                stats.bytesFromServers &+= UInt64(result)
                conns[s].lastServerMs = nowMs
            }
            if state == .inspecting {
                packTail(p)
                inspect(slot)
                guard conns[s].state != .closing else { return }
            } else {
                issueSend(p)
            }
            if Int(pipes[p].count) >= pipeLimit(s) {
                // Backpressure: the peer is not keeping up. Stop reading this side until the
                // queue drains; data waits in the kernel's socket buffer, not in ours.
                if !more {
                    stats.recvPauses &+= 1   // the byte cap ended the recv right at the bound
                } else if !pipes[p].cancelRequested {
                    pipes[p].cancelRequested = true
                    stats.recvPauses &+= 1
                    let sqe = ring.sqe()
                    io_uring_prep_cancel64(sqe, recvUserData(p), 0)
                    cu_sqe_add_flags(sqe, CU_IOSQE_CQE_SKIP_SUCCESS)
                    io_uring_sqe_set_data64(sqe, UserData(.ignore, slot: slot, generation: conns[s].generation).raw)
                }
            } else if !more {
                armRecv(p)
            }
            return
        }
        if result == 0 {
            pipes[p].eof = true
            if conns[s].state == .inspecting {
                // The client left before completing its CONNECT.
                stats.inspectAborts &+= 1
                closeConnection(slot, reset: false, why: .inspectAbort)
                return
            }
            maybeShutdown(p)
            return
        }
        if result == -ENOBUFS {
            // The pool is empty: wait for buffers to come back, never fail the connection.
            stats.noBuffers &+= 1
            if conns[s].state == .connecting || conns[s].state == .established || conns[s].state == .inspecting { addBufferWaiter(p) }
            return
        }
        if result == -ECANCELED {
            // Paused by backpressure, or closing. The sends may have drained the queue before
            // this completion arrived (they saw the recv still armed and left it): then re-arm
            // here, or the direction would stall.
            if !more && conns[s].state == .established && resumeRecvIfDrained(p) {
                stats.recvResumesAfterCancel &+= 1
                return
            }
            finishIfIdle(slot)
            return
        }
        // ECONNRESET and friends: the peer aborted; abort the other side too.
        stats.resets &+= 1
        closeConnection(slot, reset: true, why: p & 1 == 0 ? .clientAbort : .serverAbort)
    }

    /// Buffers a direction may queue before its recv pauses: more while a CONNECT is being
    /// gathered, so that a large one fits.
    @inline(__always)
    func pipeLimit(_ s: Int) -> Int {
        conns[s].state == .inspecting ? inspectBuffersMax : config.pipeBuffersMax
    }

    @inline(__always)
    func enqueue(_ p: Int, _ bid: UInt16) {
        if pipes[p].tail == BufferPool.none {
            pipes[p].head = bid
        } else {
            pool.next[Int(pipes[p].tail)] = bid
        }
        pipes[p].tail = bid
        pipes[p].count += 1
        if pipes[p].count > pipes[p].countMax {
            pipes[p].countMax = pipes[p].count
            if Int(pipes[p].count) > stats.pipeBuffersMax { stats.pipeBuffersMax = Int(pipes[p].count) }
        }
    }

    /// Sends pipe p's queued buffers (from the head's sent offset) to the peer: one send in
    /// flight per direction keeps the byte order. A single buffer goes as a plain send; when
    /// several are queued (the peer was slower than the source) they go together in one
    /// sendmsg, so the kernel builds fewer, larger segments and wakes the reader once.
    @inline(__always)
    func issueSend(_ p: Int) {
        let s = p >> 1
        guard !pipes[p].sendInFlight, pipes[p].head != BufferPool.none,
              conns[s].state == .established else { return }
        let bid = pipes[p].head
        let offset = Int(pipes[p].sentOffset)
        let sqe = ring.sqe()
        if pipes[p].count > 1 && gatherSends {
            let vectors = gatherVectors + p * Self.gatherMax
            var n = 0
            var b = bid
            var skip = offset
            while b != BufferPool.none && n < Self.gatherMax {
                vectors[n] = iovec(iov_base: pool.address(b) + skip, iov_len: Int(pool.length[Int(b)]) - skip)
                skip = 0
                n += 1
                b = pool.next[Int(b)]
            }
            let header = gatherHeaders + p
            header.pointee = msghdr()
            header.pointee.msg_iov = vectors
            header.pointee.msg_iovlen = n
            io_uring_prep_sendmsg(sqe, Int32(p ^ 1), header, UInt32(Int32(MSG_WAITALL) | Int32(MSG_NOSIGNAL)))
            stats.gatheredSends &+= 1
        } else {
            let length = Int(pool.length[Int(bid)]) - offset
            io_uring_prep_send(sqe, Int32(p ^ 1), pool.address(bid) + offset, length, Int32(MSG_WAITALL) | Int32(MSG_NOSIGNAL))
        }
        cu_sqe_add_flags(sqe, CU_IOSQE_FIXED_FILE)
        io_uring_sqe_set_data64(sqe, sendUserData(p))
        pipes[p].sendInFlight = true
        conns[s].pendingOps += 1
    }

    /// The user_data of pipe p's send: it carries the head buffer, which stays the head while
    /// the send is in flight.
    @inline(__always)
    func sendUserData(_ p: Int) -> UInt64 {
        UserData(p & 1 == 0 ? .sendServer : .sendClient, slot: Int32(p >> 1), generation: conns[p >> 1].generation,
                 bufferID: pipes[p].head).raw
    }

    @inline(__always)
    func onSend(_ slot: Int32, pipe p: Int, bufferID bid: UInt16, result: Int32) {
        let s = Int(slot)
        conns[s].pendingOps -= 1
        pipes[p].sendInFlight = false
        stats.sendCompletions &+= 1
        assert(pipes[p].head == bid)
        guard conns[s].state == .established else {
            finishIfIdle(slot)
            return
        }
        if result < 0 {
            stats.resets &+= 1
            closeConnection(slot, reset: true, why: p & 1 == 0 ? .serverAbort : .clientAbort)
            return
        }
        if p & 1 == 0 { conns[s].lastServerMs = nowMs } else { conns[s].lastClientMs = nowMs }
        // Retire every buffer the send covered (one, or several for a gathered send); a short
        // send leaves the rest of the head buffer for the next one.
        var remaining = Int(result)
        while remaining > 0 && pipes[p].head != BufferPool.none {
            let head = pipes[p].head
            let left = Int(pool.length[Int(head)]) - Int(pipes[p].sentOffset)
            if remaining < left {
                pipes[p].sentOffset += UInt32(remaining)
                stats.shortSends &+= 1
                break
            }
            remaining -= left
            pipes[p].sentOffset = 0
            pipes[p].head = pool.next[Int(head)]
            pipes[p].count -= 1
            pool.give(head)
        }
        if pipes[p].head == BufferPool.none { pipes[p].tail = BufferPool.none }
        if pipes[p].head != BufferPool.none {
            issueSend(p)
        } else if pipes[p].eof {
            maybeShutdown(p)
            return
        }
        resumeRecvIfDrained(p)
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

    /// After the source's FIN and once everything before it was sent: FIN the destination.
    /// When both directions are done, the connection closes.
    func maybeShutdown(_ p: Int) {
        let s = p >> 1
        guard pipes[p].eof, pipes[p].head == BufferPool.none, !pipes[p].shutdownSent,
              conns[s].state == .established else { return }
        pipes[p].shutdownSent = true
        if pipes[p ^ 1].shutdownSent {
            // Both directions done: close(2) sends the last FIN itself.
            closeConnection(Int32(s), reset: false)
            return
        }
        let sqe = ring.sqe()
        io_uring_prep_shutdown(sqe, Int32(p ^ 1), Int32(SHUT_WR))
        cu_sqe_add_flags(sqe, CU_IOSQE_FIXED_FILE)
        io_uring_sqe_set_data64(sqe, UserData(.shutdown, slot: Int32(s), generation: conns[s].generation).raw)
        conns[s].pendingOps += 1
    }

    // MARK: Close

    /// Cancels what is pending on both sockets and closes them; `reset` sends RST (SO_LINGER 0)
    /// so that an abort on one side is seen as an abort on the other. The slot is released when
    /// the last pending completion arrives.
    func closeConnection(_ slot: Int32, reset: Bool, why: Termination = .normal) {
        let s = Int(slot)
        let state = conns[s].state
        guard state == .connecting || state == .established || state == .inspecting else { return }
        conns[s].state = .closing
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
            if state == .connecting || cancelByFileOnly {
                // The connect chain is pending: cancel whatever uses the socket.
                if conns[s].pendingOps > 0 {
                    let sqe = ring.sqe()
                    io_uring_prep_cancel_fd(sqe, fixed, CU_CANCEL_ALL_FIXED_FD)
                    cu_sqe_add_flags(sqe, CU_IOSQE_IO_HARDLINK | CU_IOSQE_CQE_SKIP_SUCCESS)
                    io_uring_sqe_set_data64(sqe, ignore)
                    stats.cancelsByFile &+= 1
                }
            } else {
                // Cancel by user_data what could wait forever on this socket: the recv reading it
                // and the send writing to it. One hash bucket each, where a cancel by file walks
                // every poll request of the ring (measured: with 8,000 idle connections held,
                // ~600 µs of CPU per new session instead of ~80). A shutdown in flight ends by itself.
                let reader = s * 2 + side
                let writer = reader ^ 1
                if pipes[reader].recvArmed { cancelLinked(recvUserData(reader), ignore) }
                if pipes[writer].sendInFlight { cancelLinked(sendUserData(writer), ignore) }
            }
            let sqe = ring.sqe()
            io_uring_prep_close_direct(sqe, UInt32(fixed))
            io_uring_sqe_set_data64(sqe, UserData(.close, slot: slot, generation: generation).raw)
            conns[s].pendingOps += 1
        }
        conns[s].clientOpen = false
        conns[s].serverOpen = false
        for p in (s * 2)...(s * 2 + 1) where pipes[p].waitingBuffers { removeBufferWaiter(p) }
        finishIfIdle(slot)
    }

    /// A cancel by user_data, hard-linked to what follows (the close of the socket).
    @inline(__always)
    func cancelLinked(_ target: UInt64, _ ignore: UInt64) {
        let sqe = ring.sqe()
        io_uring_prep_cancel64(sqe, target, 0)
        cu_sqe_add_flags(sqe, CU_IOSQE_IO_HARDLINK | CU_IOSQE_CQE_SKIP_SUCCESS)
        io_uring_sqe_set_data64(sqe, ignore)
        stats.cancelsByUserData &+= 1
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
        guard conns[s].state == .closing, conns[s].pendingOps == 0 else { return }
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
        if connectionLog != nil { logConnection(slot) }
        if conns[s].counted {
            _ = shared.addActive(-1)
            _ = shared.addFrontendActive(Int(conns[s].frontend), -1)
            stats.active -= 1
            stats.closed &+= 1
            if conns[s].serverCounted {
                shared.serverDisconnected(backendServerBase[Int(conns[s].backend)] + Int(conns[s].server))
            }
        }
        releaseSlot(slot)
        if listenersPaused && !draining { resumeListeners() }
    }

    // MARK: Buffer waiters

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
            let state = conns[s].state
            if (state == .connecting || state == .established || state == .inspecting)
                && !pipes[p].recvArmed && !pipes[p].eof && Int(pipes[p].count) < pipeLimit(s) {
                armRecv(p)
            }
        }
    }

    // MARK: Timeouts

    /// Closes connections idle longer than `timeout client` / `timeout server`. A scan of the
    /// table every 250 ms: at 10,000 slots that is tens of microseconds, off the packet path.
    func scanTimeouts() {
        var s = 0
        while s < slotCount {
            let state = conns[s].state
            let clientMs = state == .free ? 0 : frontendClientTimeoutMs[Int(conns[s].frontend)]
            let serverMs = state == .free ? 0 : backendServerTimeoutMs[Int(conns[s].backend)]
            if state == .inspecting {
                if nowMs - conns[s].acceptedAtMs > frontendInspectTimeoutMs[Int(conns[s].frontend)] {
                    stats.inspectTimeouts &+= 1
                    warnRateLimited(Int32(s), "no complete MQTT CONNECT within the inspect delay")
                    closeConnection(Int32(s), reset: false, why: .inspectTimeout)
                }
            } else if state == .established || state == .connecting {
                if clientMs > 0 && nowMs - conns[s].lastClientMs > clientMs {
                    stats.clientTimeouts &+= 1
                    closeConnection(Int32(s), reset: false, why: .clientTimeout)
                } else if serverMs > 0 && state == .established && nowMs - conns[s].lastServerMs > serverMs {
                    stats.serverTimeouts &+= 1
                    closeConnection(Int32(s), reset: false, why: .serverTimeout)
                }
            }
            s += 1
        }
    }
}

