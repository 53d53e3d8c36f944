// Worker+Connect: choosing a server (stick table, then the backend's algorithm) and connecting
// to it as one linked chain on the ring, with redispatch to the next server when an attempt
// fails or times out. Runs once per connection attempt, never per packet.
import CUring
import Glibc

extension Worker {
    static let peerOffset = MemoryLayout<Connection>.offset(of: \Connection.peer)!

    /// The first server for this connection: its stick-table entry when there is one and that
    /// server is usable, else the backend's algorithm (hashing the client id or address where
    /// the algorithm hashes), and the entry follows the new choice. -1: no server is usable.
    func chooseServer(_ slot: Int32, clientID: UnsafeRawBufferPointer?) {
        let s = Int(slot)
        let b = Int(conns[s].backend)
        let serverCount = backendServerCount[b]
        guard serverCount > 0 else { return }
        if let id = clientID, id.count > 0, let table = shared.stickTables[b] {
            let h = table.keyHash(id)
            conns[s].sticky = true
            conns[s].stickHash = h
            if let server = table.lookup(h, nowMs: nowMs), server < serverCount, balancers[b].isUsable(server, shared: shared) {
                count(.stickHits)
                conns[s].server = Int32(server)
                return
            }
            count(.stickMisses)
            let server = balancers[b].pick(shared: shared, key: balancerKey(slot, clientID: id))
            conns[s].server = Int32(server)
            if server >= 0 { table.store(h, server: server, nowMs: nowMs) }
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

    /// Opens the server socket straight into the fixed table and connects it, as one linked
    /// chain: [look up the client's local address] -> [close old] -> socket ->
    /// setsockopt(TCP_NODELAY) -> [setsockopt(IP_BIND_ADDRESS_NO_PORT) -> bind to the
    /// server's next source address, Worker+Source] -> connect -> link timeout.
    /// `preferred`: the server a refusal named (Worker+Redispatch), else -1.
    func startConnect(_ slot: Int32, preferring preferred: Int = -1) {
        let s = Int(slot)
        let b = Int(conns[s].backend)
        conns[s].phase = .connecting
        preambleHolders.remove(s)
        if backendServerCount[b] > 0 && conns[s].server < 0 && conns[s].attempts == 0 { chooseServer(slot, clientID: nil) }
        let server = preferred >= 0 ? preferred : conns[s].attempts == 0 || conns[s].server < 0
            ? Int(conns[s].server) : balancers[b].next(after: Int(conns[s].server), shared: shared)
        guard server >= 0 else {
            // No server at all, or every one down or at weight 0.
            count(.connectGiveUps)
            closeConnection(slot, reset: false, why: .connectFailed)
            return
        }
        if conns[s].attempts > 0 {
            let failed = backendServerBase[b] + Int(conns[s].server)
            countServer(failed, .retries)
            if server != Int(conns[s].server) {
                countServer(failed, .redispatches)
                conns[s].redispatched = true
            }
        }
        conns[s].server = Int32(server)
        countServer(backendServerBase[b] + server, .selected)
        let address = serverAddresses + (backendServerBase[b] + server)
        let fixed = Int32(s * 2 + 1)
        let generation = conns[s].generation
        if conns[s].attempts == 0 { conns[s].connectStartMs = nowMs }
        let ignore = UserData(.ignore, slot: slot, generation: generation).raw
        count(.connectAttempts)

        if serverProxyProtocol[backendServerBase[b] + server] != 0 { lookUpLocalAddressIfNeeded(slot) }
        if conns[s].serverOpen {
            let sqe = ring.sqe()
            io_uring_prep_close_direct(sqe, UInt32(fixed))
            cu_sqe_add_flags(sqe, CU_IOSQE_IO_HARDLINK | CU_IOSQE_CQE_SKIP_SUCCESS)
            io_uring_sqe_set_data64(sqe, ignore)
        }
        var sqe = ring.sqe()
        io_uring_prep_socket_direct(sqe, address.pointee.family, Int32(SOCK_STREAM.rawValue), 0, UInt32(fixed), 0)
        // Hard-linked: a failed socket (ENFILE, ENOMEM) lets the chain run on, so the connect
        // completes with EBADF and takes the failed-connect path. A plain link would fail the
        // chain, and with CQE_SKIP_SUCCESS the kernel drops the linked completions too.
        cu_sqe_add_flags(sqe, CU_IOSQE_IO_HARDLINK | CU_IOSQE_CQE_SKIP_SUCCESS)
        io_uring_sqe_set_data64(sqe, ignore)
        if uringSetsockopt {
            sqe = ring.sqe()
            cu_prep_setsockopt_fixed(sqe, fixed, Int32(IPPROTO_TCP), TCP_NODELAY, optionOne, Int32(MemoryLayout<Int32>.size))
            // A failed setsockopt must not stop the connect.
            cu_sqe_add_flags(sqe, CU_IOSQE_IO_HARDLINK | CU_IOSQE_CQE_SKIP_SUCCESS)
            io_uring_sqe_set_data64(sqe, ignore)
        }
        if sourcePools.count[backendServerBase[b] + server] > 0 { queueSourceBind(slot, server: backendServerBase[b] + server, fixed: fixed) }
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

    /// The server answered: the connection starts moving both ways. A server that takes PROXY
    /// headers gets one first, for this server and written only now, so a redispatched
    /// connection sends exactly one, to the server that answered.
    func establish(_ slot: Int32) {
        let s = Int(slot)
        conns[s].phase = .established
        conns[s].lastServerMs = nowMs
        let server = backendServerBase[Int(conns[s].backend)] + Int(conns[s].server)
        shared.serverConnected(server, nowMs: nowMs)
        observeConnectSuccess(server)
        conns[s].serverCounted = true
        if conns[s].sticky && conns[s].attempts > 0, let table = shared.stickTables[Int(conns[s].backend)] {
            // Redispatched: the client now belongs to the server that answered.
            table.store(conns[s].stickHash, server: Int(conns[s].server), nowMs: nowMs)
        }
        let proxyVersion = serverProxyProtocol[server]
        let tls = serverTLSContexts[server] != nil
        if tls && !beginServerTLS(slot, server: server) { return }
        if proxyVersion != 0 && !queueProxyHeader(slot, version: proxyVersion) { return }
        if tls {
            startServerHandshake(slot)
            guard conns[s].phase.isLive else { return }
        }
        armRecv(s * 2 + 1)
        issueSend(s * 2)
        maybeShutdown(s * 2)
        if conns[s].tls { beginKernelTLSSwitch(slot) }
    }

    func onConnect(_ slot: Int32, result connectResult: Int32) {
        let s = Int(slot)
        let result = sourceAdjusted(slot, result: connectResult)
        conns[s].sourceError = 0
        conns[s].pendingOps -= 1
        guard conns[s].phase == .connecting else {
            finishIfIdle(slot)
            return
        }
        if result == 0 {
            conns[s].connectedAtMs = nowMs
            if conns[s].lookupPending {
                // The PROXY header waits for the address the client reached (see onClientInstalled).
                conns[s].establishWaiting = true
                return
            }
            establish(slot)
            return
        }
        count(.connectFailures)
        if result == -ECANCELED { count(.connectTimeouts) }
        observeConnectFailure(backendServerBase[Int(conns[s].backend)] + Int(conns[s].server))
        countServer(backendServerBase[Int(conns[s].backend)] + Int(conns[s].server), .connectErrors)
        noteSourceExhausted(slot, server: backendServerBase[Int(conns[s].backend)] + Int(conns[s].server), result: result)
        logServerFailure(slot, result: result)
        conns[s].attempts &+= 1
        if Int(conns[s].attempts) <= backendRetries[Int(conns[s].backend)] {
            startConnect(slot)
        } else {
            count(.connectGiveUps)
            closeConnection(slot, reset: false, why: result == -ECANCELED ? .connectTimeout : .connectFailed)
        }
    }

}
