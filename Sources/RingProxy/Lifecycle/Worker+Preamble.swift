// Worker+Preamble: runs a new connection's front stages, in order, over the bytes the client
// has sent so far (held on pipe 0, nothing forwarded yet). Each stage answers need more,
// reject, or complete (consuming the prefix that was its own); when none is left, a server is
// chosen and connected. Runs once per received segment while the preamble lasts, never on
// established traffic.
import CUring
import Glibc
import MQTTPeek

extension Worker {
    /// Runs the stages still to run for `slot` over its held bytes.
    func runPreamble(_ slot: Int32) {
        let s = Int(slot)
        let f = Int(conns[s].frontend)
        // The stage said how much it needs: until then, no copy and no parse per segment (a
        // CONNECT dribbled in small segments would otherwise cost the square of its size).
        if conns[s].preambleBytesNeeded > 0 && heldByteCount(s * 2) < Int(conns[s].preambleBytesNeeded) { return }
        // A last answer is on its way to the client: nothing more is read.
        if conns[s].closeAfterAnswer { return }
        // The TLS handshake runs on receipt (Worker+TLS): the stages after it see plaintext.
        if conns[s].stagesLeft.contains(.tlsHandshake) { return }
        if conns[s].stagesLeft.contains(.proxyHeader) {
            switch ProxyHeader.parse(heldBytes(s * 2)) {
            case .needMore:
                return
            case .reject(let rejection):
                rejectPreamble(slot, rejection)
                return
            case .complete(let consumed, let info):
                // The header is the front balancer's, not the client's: never forwarded.
                retireHeld(s * 2, bytes: consumed)
                conns[s].stagesLeft.remove(.proxyHeader)
                adoptProxyHeader(slot, info)
                if pipes[s * 2].head == BufferPool.none { preambleHolders.remove(s) }
            }
        }
        if conns[s].stagesLeft.contains(.webSocketUpgrade) {
            guard runWebSocketUpgrade(slot) else { return }
        }
        if frontendIsWebSocket[f] {
            // The CONNECT is inside frames: Worker+WebSocket reads, routes and connects.
            if conns[s].stagesLeft.contains(.mqttConnect) { runWebSocketConnect(slot) }
            return
        }
        var protocolLevel: UInt8 = 0
        while conns[s].stagesLeft.contains(.mqttConnect) {
            let bytes = heldBytes(s * 2)
            switch MQTTConnectStage.evaluate(bytes, connectMaxBytes: frontendConnectMaxBytes[f]) {
            case .needMore(let atLeast):
                conns[s].preambleBytesNeeded = UInt32(clamping: atLeast)
                return
            case .reject(let rejection):
                conns[s].stagesLeft.remove(.mqttConnect)
                if frontendRequiresMQTT[f] {
                    rejectPreamble(slot, rejection)
                    return
                }
                // Not MQTT, and MQTT is not required: balanced without a client id.
            case .complete(let consumed, let packet):
                // Before the held bytes are retired: the rules read the CONNECT in place.
                route(slot, connect: bytes, packet: packet)
                retireHeld(s * 2, bytes: consumed)
                conns[s].stagesLeft.remove(.mqttConnect)
                conns[s].preambleBytesNeeded = 0
                count(.mqttConnects)
                adoptKeepAlive(slot, packet.keepAliveSeconds)
                let id = UnsafeRawBufferPointer(rebasing: bytes[packet.clientIdentifier])
                if connectionLog != nil { keepClientID(slot, id) }
                protocolLevel = packet.protocolLevel
                chooseServer(slot, clientID: id)
            }
        }
        assert(conns[s].stagesLeft.isEmpty)
        route(slot)
        if conns[s].server < 0 { chooseServer(slot, clientID: nil) }
        // `option mqtt-connack-redispatch`: the CONNECT stays held until its CONNACK.
        if protocolLevel != 0 && backendConnackRedispatch[Int(conns[s].backend)] {
            beginReplay(slot, protocolLevel: protocolLevel, webSocket: false)
        }
        startConnect(slot)
    }

    /// How many bytes pipe p holds (from its head's sent offset on), without touching them.
    func heldByteCount(_ p: Int) -> Int {
        var total = -Int(pipes[p].sentOffset)
        var bid = pipes[p].head
        while bid != BufferPool.none {
            total += Int(pool.length[Int(bid)])
            bid = pool.next[Int(bid)]
        }
        return max(0, total)
    }

    /// The bytes held on pipe p from its head's sent offset on: the head buffer itself when it
    /// holds them all, else a copy gathered into the worker's scratch (bounded by its size,
    /// which fits the largest preamble; parsing is synchronous, so one scratch suffices).
    func heldBytes(_ p: Int) -> UnsafeRawBufferPointer {
        let head = pipes[p].head
        let offset = Int(pipes[p].sentOffset)
        if pipes[p].count == 1 {
            return UnsafeRawBufferPointer(start: pool.address(head) + offset, count: Int(pool.length[Int(head)]) - offset)
        }
        var copied = 0
        var bid = head
        var skip = offset
        while bid != BufferPool.none && copied < scratch.count {
            let n = min(Int(pool.length[Int(bid)]) - skip, scratch.count - copied)
            (scratch.baseAddress! + copied).copyMemory(from: pool.address(bid) + skip, byteCount: n)
            copied += n
            skip = 0
            bid = pool.next[Int(bid)]
        }
        return UnsafeRawBufferPointer(start: scratch.baseAddress, count: copied)
    }

    /// A stage refused the connection: counted by stage and reason, logged (rate-limited),
    /// closed; no server ever saw a byte.
    func rejectPreamble(_ slot: Int32, _ rejection: StageRejection) {
        if rejection.stage == .mqttConnect {
            count(.mqttRejected)
            countRejection(frontend: Int(conns[Int(slot)].frontend), code: Int(rejection.code))
            let reason = InvalidReason(rawValue: rejection.code)
            warnRateLimited(slot, "rejected: \(reason.map { "\($0)" } ?? "code \(rejection.code)")")
        } else if rejection.stage == .proxyHeader, let reason = ProxyHeaderRejection(rawValue: rejection.code) {
            count(.proxyRejected(reason))
            warnRateLimited(slot, "rejected: \(reason)")
        }
        closeConnection(slot, reset: false, why: .rejected)
    }

    /// Keeps a preamble that trickles in a few bytes per segment from taking a buffer per
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
}
