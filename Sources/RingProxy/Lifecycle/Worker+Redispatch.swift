// Worker+Redispatch: a server that refuses what the proxy replayed to it is handled like a
// failed connect. While the server's first answer is awaited (its 101 to a replayed WebSocket
// upgrade; with `option mqtt-connack-redispatch`, its CONNACK), the held bytes are sent from a
// cursor and stay held: a PROXY header, the upgrade, the CONNECT and whatever came with them.
// An answer that accepts retires them and the relay is plain again (transform `.none`). A
// refusal, or a server that closes first, retires that server's socket once none of its
// operations is pending and sends the same bytes to the next server, within `retries`. Runs
// once per attempt, never per packet; client bytes that arrive meanwhile queue behind the
// replay (the pipe's bound pauses the client's recv), in order.
import CUring
import Glibc

/// Per slot, while a server's first answer is awaited (Worker.replayStates).
struct ReplayState {
    /// Bytes at the front of pipe 0 (from its head's sent offset) that the next server must
    /// get if this one refuses: a PROXY header, then the client's held bytes.
    var heldBytes: UInt32 = 0
    /// Of those, the PROXY header written for the current server (the next gets its own).
    var proxyHeaderBytes: UInt32 = 0
    /// Sent to the current server so far, and how far sends may go before its answer (the
    /// header and the upgrade only while a WebSocket server's 101 is awaited).
    var sentBytes: UInt32 = 0
    var sendLimitBytes: UInt32 = 0
    /// The CONNECT's protocol level: the CONNACK's layout follows it.
    var protocolLevel: UInt8 = 4
    /// Await the CONNACK too (`option mqtt-connack-redispatch` on the backend).
    var awaitsConnack = false
    /// MQTT over WebSocket: the upgrade is replayed first, the CONNACK comes in a frame.
    var framed = false
    /// The answer was accepted while a send to the server was in flight: finish after it.
    var acceptPending = false
    /// The refusing server's socket is being retired: its pending operations end first.
    var retiring = false
    /// The server a Server Reference named (-1: the next one, as for a failed connect).
    var referredServer: Int32 = -1
}

extension Worker {
    /// The held bytes become the replay for the first server (the front stages are done,
    /// the connect is next). `webSocket`: the upgrade head is replayed first and its 101 awaited.
    func beginReplay(_ slot: Int32, protocolLevel: UInt8, webSocket: Bool) {
        let s = Int(slot)
        let held = UInt32(heldByteCount(s * 2))
        replayStates[s] = ReplayState()
        replayStates[s].heldBytes = held
        replayStates[s].protocolLevel = protocolLevel
        replayStates[s].awaitsConnack = backendConnackRedispatch[Int(conns[s].backend)]
        replayStates[s].framed = webSocket
        if webSocket {
            conns[s].transform = .webSocketUpgradeResponse
            replayStates[s].sendLimitBytes = webSocketStates[s].headLength
        } else {
            conns[s].transform = .connackResponse
            replayStates[s].sendLimitBytes = held
        }
    }

    /// A PROXY header for this server was queued ahead of the replay.
    func replayProxyHeaderQueued(_ slot: Int32, bytes: Int) {
        let s = Int(slot)
        replayStates[s].proxyHeaderBytes = UInt32(bytes)
        replayStates[s].heldBytes += UInt32(bytes)
        replayStates[s].sendLimitBytes += UInt32(bytes)
    }

    /// Sends the next piece of the replay (one buffer's worth, never past the send limit); it
    /// stays held. The user_data carries the head, as every send of pipe 0 does.
    func issueReplaySend(_ p: Int) {
        let s = p >> 1
        let sent = Int(replayStates[s].sentBytes)
        let limit = Int(replayStates[s].sendLimitBytes)
        guard sent < limit else { return }
        var bid = pipes[p].head
        var offset = Int(pipes[p].sentOffset) + sent
        while bid != BufferPool.none && offset >= Int(pool.length[Int(bid)]) {
            offset -= Int(pool.length[Int(bid)])
            bid = pool.next[Int(bid)]
        }
        guard bid != BufferPool.none else {
            assertionFailure("replay of \(limit) bytes but fewer are held")
            return
        }
        let length = min(Int(pool.length[Int(bid)]) - offset, limit - sent)
        let sqe = ring.sqe()
        io_uring_prep_send(sqe, Int32(p ^ 1), pool.address(bid) + offset, length, Int32(MSG_WAITALL) | Int32(MSG_NOSIGNAL))
        cu_sqe_add_flags(sqe, CU_IOSQE_FIXED_FILE)
        io_uring_sqe_set_data64(sqe, sendUserData(p))
        pipes[p].sendInFlight = true
        conns[s].pendingOps += 1
    }

    /// A replay send completed (onSend, pipe 0, `result` >= 0).
    func onReplaySent(_ slot: Int32, result: Int32) {
        let s = Int(slot)
        replayStates[s].sentBytes += UInt32(result)
        if replayStates[s].retiring {
            retireRefusingServerIfIdle(slot)
        } else if replayStates[s].acceptPending {
            finishAcceptance(slot)
        } else {
            issueReplaySend(s * 2)
        }
    }

    /// A replay send failed (the server reset or closed): a refusal. True when handled here;
    /// false leaves the connection to the usual abort.
    func onReplaySendFailed(_ slot: Int32, result: Int32) -> Bool {
        let s = Int(slot)
        if replayStates[s].retiring {
            retireRefusingServerIfIdle(slot)
            return true
        }
        return redispatchIfRetriesLeft(slot, .redispatchServerClosed,
                                       why: "failed while the replay was sent (\(String(cString: strerror(-result))))")
    }

    // MARK: The server's answer

    /// Bytes from the server while its answer is awaited (they sit on pipe 1, not yet sealed
    /// for a TLS client): a 101 moves on to the CONNACK (or ends the wait), a CONNACK that says
    /// "try another server" redispatches, anything else ends the wait and goes to the client.
    func onServerAnswer(_ slot: Int32) {
        let s = Int(slot)
        let p = s * 2 + 1
        if replayStates[s].retiring {
            dropServerBytes(p)
            retireRefusingServerIfIdle(slot)
            return
        }
        if conns[s].closeAfterAnswer {
            dropServerBytes(p)   // the client is getting its close frame: nothing after it
            return
        }
        if replayStates[s].acceptPending { return }   // finishAcceptance sends them on
        if conns[s].transform == .webSocketUpgradeResponse {
            let verdict = withUnsafeBytes(of: &webSocketStates[s].accept) {
                WebSocketUpgradeResponse.parse(heldBytes(p), expectedAccept: $0.baseAddress)
            }
            switch verdict {
            case .needMore:
                return
            case .accepted(let headLength):
                retireHeld(p, bytes: headLength)
                guard replayStates[s].awaitsConnack else {
                    acceptServerAnswer(slot)
                    return
                }
                // The CONNECT frames follow the upgrade now; the CONNACK in the server's first
                // frame decides.
                conns[s].transform = .connackResponse
                replayStates[s].sendLimitBytes = replayStates[s].heldBytes
                issueSend(s * 2)
                guard pipes[p].head != BufferPool.none else { return }
            case .refused(let status):
                refuseWebSocketUpgrade(slot, "answered the replayed WebSocket upgrade with HTTP \(status)")
                return
            case .invalid(let problem):
                refuseWebSocketUpgrade(slot, "answered the replayed WebSocket upgrade with a \(problem)")
                return
            }
        }
        let bytes = heldBytes(p)
        let level = replayStates[s].protocolLevel
        let verdict = replayStates[s].framed
            ? ConnackResponse.readFramed(bytes, protocolLevel: level, packetMaxBytes: pool.sizeBytes)
            : ConnackResponse.read(bytes, protocolLevel: level, packetMaxBytes: pool.sizeBytes)
        switch verdict {
        case .needMore:
            return
        case .pass:
            acceptServerAnswer(slot)
        case .tryElsewhere(let why, let code, let reference):
            let referred = reference.map { referredServer(slot, UnsafeRawBufferPointer(rebasing: bytes[$0])) } ?? -1
            let hex = String(code, radix: 16, uppercase: true)
            if redispatchIfRetriesLeft(slot, Self.counter(why), why: "refused the CONNECT (CONNACK 0x\(hex) \(why))", referred: referred) {
                if referred >= 0 { count(.redispatchReferences) }
                return
            }
            // The last attempt's refusal is the client's to see, as it would be without the option.
            count(.connackRefusalsPassed)
            acceptServerAnswer(slot)
        }
    }

    /// Pipe 1's recv ended without bytes (a FIN, an error, a cancel) while the answer was
    /// awaited. True when handled here; false leaves it to the usual path.
    func onServerRecvEndedBeforeAnswer(_ slot: Int32, result: Int32) -> Bool {
        let s = Int(slot)
        if replayStates[s].retiring {
            retireRefusingServerIfIdle(slot)
            return true
        }
        if replayStates[s].acceptPending && result == 0 {
            // The server's FIN follows its answer, once that is on its way (finishAcceptance):
            // a TLS client's close_notify must come after the answer's records.
            pipes[s * 2 + 1].eof = true
            return true
        }
        guard !replayStates[s].acceptPending, !conns[s].closeAfterAnswer, result != -ENOBUFS, result != -ECANCELED else { return false }
        let what = result == 0 ? "closed the connection before answering"
            : "reset the connection before answering (\(String(cString: strerror(-result))))"
        if redispatchIfRetriesLeft(slot, .redispatchServerClosed, why: what) { return true }
        if replayStates[s].framed {
            giveUpWebSocket(slot, what)
            return true
        }
        // The last attempt: the client sees the server's close, as without the option.
        acceptServerAnswer(slot)
        guard replayStates[s].acceptPending && result == 0 else { return false }
        pipes[s * 2 + 1].eof = true   // after the answer, as above
        return true
    }

    /// The answer accepts (or is the client's to judge): the replay is retired once no send of
    /// it is in flight, and the relay is plain from then on.
    func acceptServerAnswer(_ slot: Int32) {
        let s = Int(slot)
        if pipes[s * 2].sendInFlight {
            replayStates[s].acceptPending = true
            return
        }
        finishAcceptance(slot)
    }

    private func finishAcceptance(_ slot: Int32) {
        let s = Int(slot)
        let p0 = s * 2
        let p1 = s * 2 + 1
        replayStates[s].acceptPending = false
        retireHeld(p0, bytes: Int(replayStates[s].sentBytes))
        replayStates[s].sentBytes = 0
        conns[s].transform = .none
        // A TLS client's server bytes were left plain for the verdict: sealed now, in order.
        if conns[s].tls && !sealHeld(slot, pipe: p1) { return }
        issueSend(p1)
        issueSend(p0)
        if pipes[p0].head == BufferPool.none { stalledPipes.remove(p0) }
        resumeRecvIfDrained(p0)
        maybeShutdown(p0)
        if pipes[p1].eof {
            if conns[s].tls { tlsCloseNotify(slot) }
            maybeShutdown(p1)
        }
        // The relay is plain again: a TLS client's records may go to the kernel now.
        if conns[s].tls && conns[s].phase == .established { beginKernelTLSSwitch(slot) }
    }

    /// Seals every buffer queued on pipe 1 into TLS records in place (each has room for the
    /// overhead: a TLS client's server recv leaves it). False when the connection was closed.
    private func sealHeld(_ slot: Int32, pipe p: Int) -> Bool {
        guard !pipes[p].sendInFlight else { return true }   // only the proxy's own answers were sent
        compactHead(p)
        var bid = pipes[p].head
        while bid != BufferPool.none {
            let sealed = tlsSeal(slot, bid: bid, length: Int(pool.length[Int(bid)]))
            guard sealed > 0, conns[Int(slot)].phase.isLive else { return false }
            pool.length[Int(bid)] = UInt32(sealed)
            bid = pool.next[Int(bid)]
        }
        return true
    }

    // MARK: Refusals

    /// The redispatch counter of a CONNACK refusal's reason.
    static func counter(_ why: ConnackRefusal) -> Counter {
        switch why {
        case .serverUnavailable: return .redispatchServerUnavailable
        case .serverBusy: return .redispatchServerBusy
        case .connectionRateExceeded: return .redispatchConnectionRate
        case .useAnotherServer: return .redispatchUseAnotherServer
        }
    }

    /// The server refused what was replayed to it: when an attempt is left (`retries`, counted
    /// with failed connects), its socket is retired and the replay goes to the next server (or
    /// the one `referred`). True then; false when the attempts are spent.
    func redispatchIfRetriesLeft(_ slot: Int32, _ counter: Counter, why: String, referred: Int32 = -1) -> Bool {
        let s = Int(slot)
        let b = Int(conns[s].backend)
        guard Int(conns[s].attempts) < backendRetries[b] else { return false }
        count(counter)
        let server = Int(conns[s].server)
        if server >= 0 && server < config.backends[b].servers.count {
            warnRateLimited(slot, "server \(config.backends[b].name)/\(config.backends[b].servers[server].name) \(why); trying "
                            + (referred >= 0 ? "\(config.backends[b].servers[Int(referred)].name), its Server Reference" : "the next server"))
        }
        retireRefusingServer(slot, referred: referred)
        return true
    }

    /// A WebSocket server refused the upgrade (no valid 101).
    private func refuseWebSocketUpgrade(_ slot: Int32, _ what: String) {
        if redispatchIfRetriesLeft(slot, .redispatchUpgradeRefused, why: what) { return }
        giveUpWebSocket(slot, what)
    }

    /// No server took the WebSocket client within the retries: a close frame (1011, the
    /// server could not fulfil the request) and the connection ends.
    private func giveUpWebSocket(_ slot: Int32, _ what: String) {
        count(.webSocketServerRefused)
        warnRateLimited(slot, "server \(what); retries spent, closing the client with 1011")
        dropServerBytes(Int(slot) * 2 + 1)
        answerAndClose(slot) { WebSocketFrames.writeClose(code: 1011, to: $0, capacity: $1) }
    }

    /// Stops everything that still uses the refusing server's socket (its recv, an abort
    /// watch, a send to it); the socket is closed by the next attempt's connect chain once none
    /// of them is pending (their completions would otherwise be taken for the next server's).
    private func retireRefusingServer(_ slot: Int32, referred: Int32) {
        let s = Int(slot)
        let p0 = s * 2
        let p1 = s * 2 + 1
        replayStates[s].retiring = true
        replayStates[s].acceptPending = false
        replayStates[s].referredServer = referred
        // Nothing more is sent to it, nothing of it relayed: the connection is between servers.
        conns[s].phase = .connecting
        if conns[s].serverCounted {
            shared.serverDisconnected(backendServerBase[Int(conns[s].backend)] + Int(conns[s].server))
            conns[s].serverCounted = false
        }
        if pipes[p1].recvArmed && !pipes[p1].cancelRequested {
            pipes[p1].cancelRequested = true
            cancelOperation(recvUserData(p1), slot: slot)
        }
        if pipes[p1].abortWatched { cancelOperation(abortWatchUserData(p1), slot: slot) }
        if pipes[p0].sendInFlight { cancelOperation(sendUserData(p0), slot: slot) }
        bufferWaiters.remove(p1)
        stalledPipes.remove(p1)
        stalledPipes.remove(p0)
        dropServerBytes(p1)
        retireRefusingServerIfIdle(slot)
    }

    private func cancelOperation(_ target: UInt64, slot: Int32) {
        let sqe = ring.sqe()
        io_uring_prep_cancel64(sqe, target, 0)
        cu_sqe_add_flags(sqe, CU_IOSQE_CQE_SKIP_SUCCESS)
        io_uring_sqe_set_data64(sqe, UserData(.ignore, slot: slot, generation: conns[Int(slot)].generation).raw)
    }

    /// Once nothing of the refusing server's is pending: a fresh server side, the replay from
    /// its start (the next server gets a PROXY header of its own at its establish), and the
    /// next attempt.
    func retireRefusingServerIfIdle(_ slot: Int32) {
        let s = Int(slot)
        let p0 = s * 2
        let p1 = s * 2 + 1
        guard replayStates[s].retiring, conns[s].phase == .connecting, !pipes[p1].recvArmed, !pipes[p1].abortWatched,
              !pipes[p0].sendInFlight else { return }
        replayStates[s].retiring = false
        dropServerBytes(p1)
        pipes[p1].eof = false
        pipes[p1].shutdownSent = false
        pipes[p1].hangupSeen = false
        pipes[p1].cancelRequested = false
        pipes[p1].bytes = 0
        let header = Int(replayStates[s].proxyHeaderBytes)
        if header > 0 {
            retireHeld(p0, bytes: header)
            replayStates[s].heldBytes -= UInt32(header)
            replayStates[s].proxyHeaderBytes = 0
        }
        replayStates[s].sentBytes = 0
        if replayStates[s].framed {
            conns[s].transform = .webSocketUpgradeResponse
            replayStates[s].sendLimitBytes = webSocketStates[s].headLength
        } else {
            replayStates[s].sendLimitBytes = replayStates[s].heldBytes
        }
        conns[s].attempts &+= 1
        startConnect(slot, preferring: Int(replayStates[s].referredServer))
    }

    /// Gives back what a server sent on pipe 1, keeping only a send of the proxy's own to the
    /// client that is in flight (the head).
    func dropServerBytes(_ p: Int) {
        guard pipes[p].sendInFlight else {
            dropQueued(p)
            return
        }
        let head = pipes[p].head
        var bid = pool.next[Int(head)]
        while bid != BufferPool.none {
            let next = pool.next[Int(bid)]
            pool.give(bid)
            bid = next
        }
        pool.next[Int(head)] = BufferPool.none
        pipes[p].tail = head
        pipes[p].count = 1
    }

    /// The configured server of the connection's backend that a Server Reference names (MQTT
    /// 5.0 §4.11: references separated by spaces), by its name or its address as `addr:port`,
    /// when it is usable and not the refusing one; -1 otherwise (then the next server). Cold:
    /// only for a 0x9C/0x9D refusal.
    func referredServer(_ slot: Int32, _ reference: UnsafeRawBufferPointer) -> Int32 {
        let s = Int(slot)
        let b = Int(conns[s].backend)
        let text = String(decoding: reference, as: UTF8.self)
        for word in text.split(separator: " ") {
            for (i, server) in config.backends[b].servers.enumerated() where i != Int(conns[s].server) {
                if (word == server.name || word == server.address.description) && balancers[b].isUsable(i, shared: shared) {
                    return Int32(i)
                }
            }
        }
        return -1
    }
}
