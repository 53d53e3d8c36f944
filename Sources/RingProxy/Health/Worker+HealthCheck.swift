// Worker+HealthCheck: runs the checks this worker owns on its ring, like a connection but
// shorter: socket (direct, into the fixed table past the connections' files) -> connect with a
// linked timeout -> each send / expect step with the read timeout -> close; the result moves
// the server's health counter, and a counter crossing rise or fall flips the shared state bit
// every core's balancer reads. Cold path: once per server per interval.
import CUring
import Glibc

extension Worker {
    /// Timer ids past the worker's own are checks: id = checkTimerBase + check index.
    static let checkTimerBase: UInt32 = 1

    /// The fixed file of check `c` (after the connections' two per slot).
    @inline(__always) func checkFile(_ c: Int) -> Int32 { Int32(slotCount * 2 + c) }

    /// First runs spread over the first interval (at most one second), so N servers are not
    /// checked in one burst and a dead server is found soon after start.
    func scheduleFirstChecks() {
        for c in checks.indices {
            let spreadMs = min(checks[c].config.interMs, 1_000) * c / max(1, checks.count)
            timers.schedule(id: Self.checkTimerBase + UInt32(c), atMs: nowMs + spreadMs)
        }
    }

    func startCheck(_ c: Int) {
        guard !draining else { return }   // a retired or stopping worker checks no more
        let g = checks[c].server
        if shared.serverState(g) & ServerStateBits.maint != 0 {
            // Not checked in maintenance (as in HAProxy); looked at again one interval later.
            timers.schedule(id: Self.checkTimerBase + UInt32(c), atMs: nowMs + checks[c].config.interMs)
            return
        }
        checks[c].generation &+= 1
        checks[c].running = true
        checks[c].socketFailed = false
        checks[c].startedAtMs = nowMs
        checks[c].step = 0
        checks[c].sentBytes = 0
        checks[c].receivedBytes = 0
        checks[c].searchFrom = 0
        checks[c].outcome = nil
        count(.checksStarted)
        let fixed = checkFile(c)
        let slot = Int32(c)
        let generation = checks[c].generation
        var sqe = ring.sqe()
        io_uring_prep_socket_direct(sqe, checks[c].config.address.family, Int32(SOCK_STREAM.rawValue), 0, UInt32(fixed), 0)
        cu_sqe_add_flags(sqe, CU_IOSQE_IO_LINK | CU_IOSQE_CQE_SKIP_SUCCESS)
        io_uring_sqe_set_data64(sqe, UserData(.ignore, owner: .check, slot: slot, generation: generation).raw)
        sqe = ring.sqe()
        withUnsafePointer(to: &checkAddresses[c].storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                io_uring_prep_connect(sqe, fixed, $0, checkAddresses[c].length)
            }
        }
        cu_sqe_add_flags(sqe, CU_IOSQE_FIXED_FILE | CU_IOSQE_IO_LINK)
        io_uring_sqe_set_data64(sqe, UserData(.connect, owner: .check, slot: slot, generation: generation).raw)
        sqe = ring.sqe()
        io_uring_prep_link_timeout(sqe, checks[c].timeouts, 0)
        io_uring_sqe_set_data64(sqe, UserData(.linkTimeout, owner: .check, slot: slot, generation: generation).raw)
        checks[c].pendingOps += 2
    }

    /// Every completion of a check comes here (dispatch sends owner .check).
    func onCheckCompletion(_ ud: UserData, result: Int32) {
        let c = Int(ud.slot)
        guard c < checks.count else { return }
        let current = ud.generation == checks[c].generation
        switch ud.operation {
        case .ignore?:
            // The socket op reports only a failure.
            if current && result < 0 { checks[c].socketFailed = true }
            return
        case .linkTimeout?:
            checks[c].pendingOps -= 1
        case .connect?:
            checks[c].pendingOps -= 1
            if current && checks[c].running { onCheckConnected(c, result: result) }
        case .sendServer?:
            checks[c].pendingOps -= 1
            if current && checks[c].running { onCheckSent(c, result: result) }
        case .recvServer?:
            checks[c].pendingOps -= 1
            if current && checks[c].running { onCheckReceived(c, result: result) }
        case .close?:
            checks[c].pendingOps -= 1
        default:
            assertionFailure("unexpected check completion \(String(describing: ud.operation))")
        }
        if !checks[c].running && checks[c].pendingOps == 0 && checks[c].outcome != nil { checkDone(c) }
    }

    private func onCheckConnected(_ c: Int, result: Int32) {
        guard result == 0 else {
            if result == -ECANCELED {
                finishCheck(c, checks[c].socketFailed
                    ? CheckOutcome(status: .socketError, code: nil, description: "could not create a socket")
                    : CheckOutcome(status: .layer4Timeout, code: nil, description: "timeout after \(checks[c].config.connectTimeoutMs) ms"))
            } else {
                finishCheck(c, CheckOutcome(status: .layer4ConnectionProblem, code: nil, description: String(cString: strerror(-result))))
            }
            return
        }
        runCheckSteps(c)
    }

    /// Runs steps until one has to wait for the kernel; the last one passing passes the check.
    private func runCheckSteps(_ c: Int) {
        while checks[c].step < checks[c].steps.count {
            switch checks[c].steps[checks[c].step] {
            case .send(let offset, let length):
                submitCheckSend(c, from: checks[c].payload + offset + checks[c].sentBytes, length: length - checks[c].sentBytes)
                return
            case .expect, .expectConnack:
                switch checks[c].matchExpect() {
                case .matched:
                    checks[c].step += 1
                case .needMore:
                    submitCheckRecv(c)
                    return
                case .failed(let outcome):
                    finishCheck(c, outcome)
                    return
                }
            }
        }
        let layer7 = checks[c].steps.contains { if case .send = $0 { return false } else { return true } }
        finishCheck(c, layer7
            ? CheckOutcome(status: .layer7OK, code: checks[c].config.kind == "mqtt" ? 0 : nil, description: "\(checks[c].config.kind) check passed")
            : CheckOutcome(status: .layer4OK, code: nil, description: "Layer4 check passed"))
    }

    private func submitCheckSend(_ c: Int, from: UnsafeMutableRawPointer, length: Int) {
        let generation = checks[c].generation
        var sqe = ring.sqe()
        io_uring_prep_send(sqe, checkFile(c), from, length, Int32(MSG_NOSIGNAL))
        cu_sqe_add_flags(sqe, CU_IOSQE_FIXED_FILE | CU_IOSQE_IO_LINK)
        io_uring_sqe_set_data64(sqe, UserData(.sendServer, owner: .check, slot: Int32(c), generation: generation).raw)
        sqe = ring.sqe()
        io_uring_prep_link_timeout(sqe, checks[c].timeouts + 1, 0)
        io_uring_sqe_set_data64(sqe, UserData(.linkTimeout, owner: .check, slot: Int32(c), generation: generation).raw)
        checks[c].pendingOps += 2
    }

    private func submitCheckRecv(_ c: Int) {
        let generation = checks[c].generation
        let received = checks[c].receivedBytes
        var sqe = ring.sqe()
        io_uring_prep_recv(sqe, checkFile(c), checks[c].response + received, HealthCheckConfig.responseBytesMax - received, 0)
        cu_sqe_add_flags(sqe, CU_IOSQE_FIXED_FILE | CU_IOSQE_IO_LINK)
        io_uring_sqe_set_data64(sqe, UserData(.recvServer, owner: .check, slot: Int32(c), generation: generation).raw)
        sqe = ring.sqe()
        io_uring_prep_link_timeout(sqe, checks[c].timeouts + 1, 0)
        io_uring_sqe_set_data64(sqe, UserData(.linkTimeout, owner: .check, slot: Int32(c), generation: generation).raw)
        checks[c].pendingOps += 2
    }

    private func onCheckSent(_ c: Int, result: Int32) {
        guard result > 0 else {
            finishCheck(c, result == -ECANCELED
                ? CheckOutcome(status: .layer7Timeout, code: nil, description: "timeout while sending the check")
                : CheckOutcome(status: .layer7Response, code: nil, description: "send failed: \(String(cString: strerror(-result)))"))
            return
        }
        guard case .send(_, let length) = checks[c].steps[checks[c].step] else { return }
        checks[c].sentBytes += Int(result)
        if checks[c].sentBytes >= length {
            checks[c].sentBytes = 0
            checks[c].step += 1
        }
        runCheckSteps(c)
    }

    private func onCheckReceived(_ c: Int, result: Int32) {
        guard result > 0 else {
            let outcome: CheckOutcome
            if result == 0 {
                outcome = CheckOutcome(status: .layer7Response, code: nil, description: "connection closed by the server before the expected response")
            } else if result == -ECANCELED {
                outcome = CheckOutcome(status: .layer7Timeout, code: nil, description: "no response within \(checks[c].config.readTimeoutMs) ms")
            } else {
                outcome = CheckOutcome(status: .layer7Response, code: nil, description: "recv failed: \(String(cString: strerror(-result)))")
            }
            finishCheck(c, outcome)
            return
        }
        checks[c].receivedBytes += Int(result)
        runCheckSteps(c)
    }

    /// Ends the run: the socket closes, the result counts at once; the next run is scheduled
    /// when the last completion of this one is in (checkDone).
    private func finishCheck(_ c: Int, _ outcome: CheckOutcome) {
        checks[c].running = false
        checks[c].outcome = outcome
        let sqe = ring.sqe()
        io_uring_prep_close_direct(sqe, UInt32(checkFile(c)))
        io_uring_sqe_set_data64(sqe, UserData(.close, owner: .check, slot: Int32(c), generation: checks[c].generation).raw)
        checks[c].pendingOps += 1
        applyCheckOutcome(c, outcome, durationMs: nowMs - checks[c].startedAtMs)
    }

    private func checkDone(_ c: Int) {
        checks[c].outcome = nil
        let interval = checks[c].nextIntervalMs()
        checks[c].hurry = false
        timers.schedule(id: Self.checkTimerBase + UInt32(c), atMs: nowMs + interval)
    }

    /// Moves the health counter as HAProxy does: up servers start at rise and sit at
    /// rise + fall - 1 once confirmed; a failure below rise marks DOWN, `rise` successes in a
    /// row from 0 mark UP.
    private func applyCheckOutcome(_ c: Int, _ outcome: CheckOutcome, durationMs: Int) {
        let g = checks[c].server
        let success = outcome.status.isSuccess
        count(success ? .checksPassed : .checksFailed)
        // What observers of real traffic asked meanwhile (on-error).
        let action = cu_atomic_exchange(shared.serverObserveActionWords + g, 0)
        // Someone else (the operator, an observer) changed the state: start from there.
        let sharedUp = shared.serverState(g) & ServerStateBits.down == 0
        if sharedUp != checks[c].knownUp {
            checks[c].knownUp = sharedUp
            checks[c].health = sharedUp ? checks[c].healthMax : 0
        }
        var markedDown = false
        if action > 0, let onError = OnErrorAction.allCases.dropFirst(action - 1).first {
            switch onError {
            case .fastinter: checks[c].hurry = true
            case .failCheck: markedDown = degradeHealth(c)
            case .suddenDeath: if checks[c].knownUp { checks[c].health = min(checks[c].health, checks[c].config.rise) }
            case .markDown: break   // done by the observer at once
            }
        }
        var failedChecks: UInt64 = 0
        if success {
            if checks[c].knownUp {
                checks[c].health = min(checks[c].health + 1, checks[c].healthMax)
            } else {
                checks[c].health += 1
                if checks[c].health >= checks[c].config.rise {
                    checks[c].health = checks[c].healthMax
                    checks[c].knownUp = true
                    if shared.setServerBits(g, ServerStateBits.down, on: false, nowMs: nowMs) {
                        reportServerChange(g, up: true, reason: outcome.status.reason, info: nil, durationMs: durationMs)
                    }
                }
            }
        } else {
            failedChecks = 1
            if degradeHealth(c) { markedDown = true }
        }
        let health = checks[c].health
        let now = nowMs
        shared.updateHealth(g) { record in
            record.health = health
            record.checkStatus = outcome.status
            record.checkCode = outcome.code
            record.checkDurationMs = durationMs
            record.checkDescription = outcome.description
            record.lastCheckMs = now
            record.checksFailed += failedChecks
        }
        if markedDown {
            reportServerChange(g, up: false, reason: outcome.status.reason, info: outcome.description, durationMs: durationMs)
        }
    }

    /// One failed check: the counter drops; below rise the server goes DOWN. True when this
    /// call marked it down (and so must report it).
    private func degradeHealth(_ c: Int) -> Bool {
        let g = checks[c].server
        guard checks[c].knownUp else {
            checks[c].health = 0
            return false
        }
        checks[c].health -= 1
        guard checks[c].health < checks[c].config.rise else { return false }
        checks[c].health = 0
        checks[c].knownUp = false
        return shared.setServerBits(g, ServerStateBits.down, on: true, nowMs: nowMs)
    }

    /// HAProxy's state change line, to stderr and to the syslog target of the connection log.
    func reportServerChange(_ g: Int, up: Bool, reason: String, info: String?, durationMs: Int?) {
        let (b, s) = serverPosition(g)
        let backend = config.backends[b]
        var active = 0
        var backups = 0
        for (i, server) in backend.servers.enumerated() where shared.isServerUp(backendServerBase[b] + i) {
            if server.backup { backups += 1 } else { active += 1 }
        }
        var line = "Server \(backend.name)/\(backend.servers[s].name) is \(up ? "UP" : "DOWN"), reason: \(reason)"
        if let info, !info.isEmpty { line += ", info: \"\(info)\"" }
        if let durationMs { line += ", check duration: \(durationMs)ms" }
        line += up ? ". \(active) active and \(backups) backup servers online."
                   : ". \(active) active and \(backups) backup servers left. \(shared.serverActive(g)) sessions active, 0 requeued, 0 remaining in queue."
        if up { log.info(line) } else { log.warning(line) }
        logEvent(line)
        if !up && active == 0 && backups == 0 {
            let alert = "backend '\(backend.name)' has no server available!"
            log.error(alert)
            logEvent(alert)
        }
    }

    /// A line for the syslog target (stderr already has it from Log).
    func logEvent(_ text: String) {
        guard connectionLog?.isSyslog == true else { return }
        var wall = timespec()
        clock_gettime(CLOCK_REALTIME, &wall)
        guard connectionLog!.beginLine(wallSeconds: wall.tv_sec) || { connectionLog!.flush(); return connectionLog!.beginLine(wallSeconds: wall.tv_sec) }() else { return }
        for byte in text.utf8 { connectionLog!.buffer.byte(byte) }
        connectionLog!.endLine()
        connectionLog!.flush()
    }

    /// (backend, server position in it) of a global server index.
    func serverPosition(_ g: Int) -> (Int, Int) {
        var b = backendServerBase.count - 1
        while b > 0 && backendServerBase[b] > g { b -= 1 }
        return (b, g - backendServerBase[b])
    }
}
