// Worker+WebSocket: the MQTT-aware WebSocket mode (`option mqtt-websocket`, a ringproxy
// extension). A client sends no frame before its 101, so the worker answers the upgrade itself
// (Stages/WebSocketUpgrade), reads the CONNECT from the first frames (Stages/WebSocketFrames,
// unmasked into a per-worker scratch for MQTTPeek), routes on it like 1883, then sends the held
// bytes (the upgrade request and the frames, exactly as received, a Sec-WebSocket-Extensions
// header neutralised) to the server and swallows the server's own 101 (the `.webSocketUpgrade
// Response` transform, once; a refusal redispatches: Worker+Redispatch). After that the relay
// is plain TCP: no per-frame work.
import CUring
import Glibc
import MQTTPeek

/// Per slot, for connections of WebSocket frontends.
struct WebSocketConnectionState {
    /// Length of the client's upgrade head (the frames start there).
    var headLength: UInt32 = 0
    /// Offset in the held bytes of a Sec-WebSocket-Extensions field name (-1: none): renamed
    /// before the replay so that the server accepts no extension the client was not given.
    var extensionNameOffset: Int32 = -1
    /// The Sec-WebSocket-Accept the server's 101 must carry (28 bytes).
    var accept: (UInt64, UInt64, UInt64, UInt32) = (0, 0, 0, 0)
}

extension Worker {
    /// The field name that replaces `Sec-WebSocket-Extensions` (same length) in the replay.
    static let neutralExtensionName: StaticString = "X-Sec-WebSocket-Ext-Void"

    /// Runs the upgrade stage over the held bytes: true when it is done (the 101 is queued to
    /// the client), false when it needs more bytes or refused the connection.
    func runWebSocketUpgrade(_ slot: Int32) -> Bool {
        let s = Int(slot)
        let f = Int(conns[s].frontend)
        let bytes = heldBytes(s * 2)
        switch WebSocketUpgrade.parse(bytes, policy: webSocketPolicies[f]) {
        case .needMore(let atLeast):
            conns[s].preambleBytesNeeded = UInt32(clamping: atLeast)
            return false
        case .reject(let rejection):
            let reason = WebSocketRejection(rawValue: rejection.code)
            count(.webSocketRejectedRequests)
            warnRateLimited(slot, "rejected: \(reason.map { "\($0)" } ?? "code \(rejection.code)") (HTTP \(reason?.httpStatus ?? 400))")
            answerAndClose(slot) { WebSocketUpgrade.writeError(status: reason?.httpStatus ?? 400, to: $0, capacity: $1) }
            return false
        case .complete(let headLength, let request):
            conns[s].preambleBytesNeeded = 0
            conns[s].stagesLeft.remove(.webSocketUpgrade)
            count(.webSocketUpgrades)
            let base = bytes.baseAddress!
            webSocketStates[s] = WebSocketConnectionState()
            webSocketStates[s].headLength = UInt32(headLength)
            withUnsafeMutableBytes(of: &webSocketStates[s].accept) {
                WebSocketUpgrade.acceptValue(key: base + request.keyOffset, to: $0.baseAddress!)
            }
            if request.offersExtensions {
                webSocketStates[s].extensionNameOffset = Int32(Self.extensionsFieldOffset(UnsafeRawBufferPointer(start: base, count: headLength)))
            }
            guard let bid = pool.takeOwned() else {
                count(.proxyHeaderNoBuffer)
                closeConnection(slot, reset: false, why: .resourceAtConnect)
                return false
            }
            let n = WebSocketUpgrade.write101(key: base + request.keyOffset, subprotocol: request.subprotocol,
                                              to: pool.address(bid), capacity: pool.sizeBytes)
            pool.length[Int(bid)] = UInt32(n)
            queueToClient(slot, bid)
            return conns[s].phase.isLive
        }
    }

    /// The MQTT CONNECT stage of a WebSocket connection: the payload of the frames after the
    /// head, unmasked, must start with a valid CONNECT (it may span frames and messages).
    /// Chooses the server and connects once it has; refuses with a close frame otherwise.
    func runWebSocketConnect(_ slot: Int32) {
        let s = Int(slot)
        let f = Int(conns[s].frontend)
        let bytes = heldBytes(s * 2)
        let capacity = min(frontendConnectMaxBytes[f], webSocketPayload.count)
        var cursor = WebSocketFrameCursor(start: Int(webSocketStates[s].headLength))
        while true {
            switch WebSocketFrames.read(bytes, cursor: &cursor, into: webSocketPayload.baseAddress!, capacity: capacity) {
            case .needMore(let atLeast):
                conns[s].preambleBytesNeeded = UInt32(clamping: atLeast)
                return
            case .reject(let rejection):
                count(.webSocketRejectedFrames)
                warnRateLimited(slot, "rejected: WebSocket \(rejection) (close \(rejection.closeCode))")
                answerAndClose(slot) { WebSocketFrames.writeClose(code: rejection.closeCode, to: $0, capacity: $1) }
                return
            case .payload(let length, _, let complete):
                let payload = UnsafeRawBufferPointer(start: webSocketPayload.baseAddress, count: length)
                switch MQTTConnectStage.evaluate(payload, connectMaxBytes: capacity) {
                case .needMore:
                    // The CONNECT goes on in the next frame or message.
                    if complete { continue }
                    conns[s].preambleBytesNeeded = 0
                    return
                case .reject(let rejection):
                    count(.mqttRejected)
                    countRejection(frontend: f, code: Int(rejection.code))
                    let reason = InvalidReason(rawValue: rejection.code)
                    warnRateLimited(slot, "rejected: \(reason.map { "\($0)" } ?? "code \(rejection.code)") (WebSocket close 1002)")
                    answerAndClose(slot) { WebSocketFrames.writeClose(code: 1002, to: $0, capacity: $1) }
                    return
                case .complete(_, let packet):
                    conns[s].stagesLeft.remove(.mqttConnect)
                    conns[s].preambleBytesNeeded = 0
                    count(.mqttConnects)
                    adoptKeepAlive(slot, packet.keepAliveSeconds)
                    route(slot, connect: UnsafeRawBufferPointer(payload), packet: packet)
                    let id = UnsafeRawBufferPointer(rebasing: payload[packet.clientIdentifier])
                    if connectionLog != nil { keepClientID(slot, id) }
                    if webSocketStates[s].extensionNameOffset >= 0 {
                        overwriteHeld(s * 2, at: Int(webSocketStates[s].extensionNameOffset), with: Self.neutralExtensionName)
                    }
                    // The server's 101 is read and dropped before the client sees a byte of it;
                    // until then only the upgrade request goes to the server: the frames wait
                    // for the 101 (mosquitto 2.0.11 misreads a frame that arrives in the same
                    // read as some upgrade heads: Chromium's, 513 bytes, gets close 1002 "frag
                    // ctl"). All of it stays held until the server accepted (Worker+Redispatch).
                    beginReplay(slot, protocolLevel: packet.protocolLevel, webSocket: true)
                    chooseServer(slot, clientID: id)
                    startConnect(slot)
                    return
                }
            }
        }
    }

    /// Sends the client a last answer (an HTTP error, a close frame) and closes once it is
    /// sent; nothing more is read from the client or sent to a server.
    func answerAndClose(_ slot: Int32, _ write: (UnsafeMutableRawPointer, Int) -> Int) {
        let s = Int(slot)
        conns[s].stagesLeft = []
        conns[s].closeAfterAnswer = true
        if conns[s].termination == 0 { conns[s].termination = Termination.rejected.rawValue }
        guard let bid = pool.takeOwned() else {
            closeConnection(slot, reset: false, why: .rejected)
            return
        }
        pool.length[Int(bid)] = UInt32(write(pool.address(bid), pool.sizeBytes))
        queueToClient(slot, bid)
    }

    /// Queues an answer the proxy wrote (a 101, an HTTP error, a close frame) to the client,
    /// sealed into TLS records first on a TLS connection.
    func queueToClient(_ slot: Int32, _ bid: UInt16) {
        let s = Int(slot)
        if conns[s].tls {
            let sealed = tlsSeal(slot, bid: bid, length: Int(pool.length[Int(bid)]))
            guard sealed > 0 else {
                pool.give(bid)
                return
            }
            pool.length[Int(bid)] = UInt32(sealed)
        }
        enqueue(s * 2 + 1, bid)
        issueSend(s * 2 + 1)
    }

    /// Gives back everything queued on pipe p (a server's answer nobody will see).
    func dropQueued(_ p: Int) {
        guard !pipes[p].sendInFlight else { return }
        var bid = pipes[p].head
        while bid != BufferPool.none {
            let next = pool.next[Int(bid)]
            pool.give(bid)
            bid = next
        }
        pipes[p].head = BufferPool.none
        pipes[p].tail = BufferPool.none
        pipes[p].count = 0
        pipes[p].sentOffset = 0
    }

    /// Writes `text` over the held bytes of pipe p at `offset` (from the head's sent offset),
    /// across buffers if it must.
    func overwriteHeld(_ p: Int, at offset: Int, with text: StaticString) {
        var skip = offset + Int(pipes[p].sentOffset)
        var bid = pipes[p].head
        var written = 0
        let source = text.utf8Start
        while bid != BufferPool.none && written < text.utf8CodeUnitCount {
            let length = Int(pool.length[Int(bid)])
            if skip >= length {
                skip -= length
            } else {
                let n = min(length - skip, text.utf8CodeUnitCount - written)
                (pool.address(bid) + skip).copyMemory(from: source + written, byteCount: n)
                written += n
                skip = 0
            }
            bid = pool.next[Int(bid)]
        }
    }

    /// Where the Sec-WebSocket-Extensions field name starts in an upgrade head (-1: absent).
    static func extensionsFieldOffset(_ head: UnsafeRawBufferPointer) -> Int {
        let name = "\r\nsec-websocket-extensions:".utf8
        let n = name.count
        guard head.count > n else { return -1 }
        var i = 0
        while i + n <= head.count {
            var j = 0
            for c in name {
                var b = head[i + j]
                if b >= 0x41 && b <= 0x5A { b |= 0x20 }
                if b != c { break }
                j += 1
            }
            if j == n { return i + 2 }
            i += 1
        }
        return -1
    }
}
