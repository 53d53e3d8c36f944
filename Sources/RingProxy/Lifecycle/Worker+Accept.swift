// Worker+Accept: the first step of a connection's life. Keeps accepts armed into free slots
// (straight into the ring's fixed-file table), applies maxconn and the per-address limits, and
// hands an accepted client to its listener's front stages, or straight to a server when the
// listener has none.
import CUring
import Glibc

extension Worker {
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
        if listenerIsTLS[l] && !tlsMayAccept(armed: acceptsArmed[l]) && !evictIdleHandshake(armed: acceptsArmed[l]) {
            // Handshakes are bounded: the client waits in the backlog (Worker+TLS).
            if !tlsAcceptsHeld { count(.tlsAcceptsHeld) }
            tlsAcceptsHeld = true
            return false
        }
        guard let slot = allocateSlot() else {
            if !listenersPaused { count(.acceptPaused) }
            listenersPaused = true
            return false
        }
        let s = Int(slot)
        conns[s].phase = .accepting
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

    /// One accept per slot of the usual depth on top of those armed (see Engine.reload): each
    /// is tried at once, so connections left in the backlog without a wake-up are taken now.
    func armExtraAccepts() {
        acceptKicksSeen = shared.acceptKicks
        for l in listeners.indices {
            for _ in 0..<config.acceptDepth {
                if !armAccept(l) { break }
            }
        }
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
            if result != -ECANCELED { count(.acceptErrors) }
            releaseSlot(slot)
            if !draining { fillAccepts(l) }
            return
        }
        conns[s].phase = .preamble
        conns[s].clientOpen = true
        conns[s].acceptedAtMs = nowMs
        conns[s].lastClientMs = nowMs
        conns[s].lastServerMs = nowMs
        let f = listeners[l].frontend
        conns[s].frontend = UInt16(f)
        if shared.addActive(1) > maxConnections || shared.addFrontendActive(f, 1) > frontendMaxConnections[f] {
            refuseAccepted(slot, listener: l, frontend: f, .refusedMaxconn, why: .maxconn)
            return
        }
        // Per-address limits after maxconn: a connection maxconn refuses is not tracked (HAProxy
        // would not have accepted it at all), so it counts in no address's rate.
        if frontendAddressLimits[f] != nil && !admitByAddress(slot) {
            refuseAccepted(slot, listener: l, frontend: f, .deniedConnections, why: .denied)
            return
        }
        conns[s].counted = true
        acceptSequence &+= 1
        conns[s].sequence = acceptSequence
        count(.accepted)
        countFrontend(f, .sessions)
        count(.active)
        conns[s].stagesLeft = frontendStages[f]
        if tlsContexts[f] != nil && !beginTLS(slot, frontend: f) {
            closeConnection(slot, reset: false, why: .rejected)
            fillAccepts(l)
            return
        }
        if let matcher = frontendExpectProxy[f],
           matcher.contains(UnsafeRawPointer(conns + s) + Worker.peerOffset) == frontendExpectWhenMatching[f] {
            // `expect-proxy layer4`: this source is a front balancer.
            conns[s].stagesLeft.insert(.proxyHeader)
        }
        armRecv(s * 2)
        if conns[s].stagesLeft.isEmpty {
            // Plain TCP: the one branch it pays for the stages.
            route(slot)
            chooseServer(slot, clientID: nil)
            startConnect(slot)
        }
        fillAccepts(l)
    }

    /// Closes a connection refused as soon as it was accepted (maxconn, a reject rule): out of
    /// the connection counts again, counted under `counter`, logged with `why`.
    private func refuseAccepted(_ slot: Int32, listener l: Int, frontend f: Int, _ counter: Counter, why: Termination) {
        _ = shared.addActive(-1)
        _ = shared.addFrontendActive(f, -1)
        count(counter)
        countFrontend(f, .denied)
        closeConnection(slot, reset: false, why: why)
        fillAccepts(l)
    }
}
