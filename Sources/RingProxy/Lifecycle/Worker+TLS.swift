// Worker+TLS: TLS termination in userspace on the ring's buffers (no socket ever reaches
// OpenSSL). Client bytes: the received buffer is the input of the worker's ctls_io; the
// handshake's answers are written straight into an owned buffer and queued to the client;
// application records are decrypted into the worker's scratch and copied back into the same
// buffer (one copy), which then goes on like a plain TCP buffer (the front stages parse it, the
// relay sends it). Server bytes: received at most a buffer less the records' overhead, sealed
// into the scratch and copied back, so a record never needs a second buffer. No allocation per
// record; OpenSSL allocates per handshake. kTLS takes over once a client is established where
// the kernel has it (Worker+KernelTLS; not on this machine).
import CTLS
import CUring
import Glibc

extension Worker {
    /// Room kept in a server->client buffer for the records' headers and tags (a 64 KiB
    /// plaintext is at most 5 records of 22-29 bytes of overhead each).
    static let tlsRecordOverheadBytes = 256
    /// How long a client must have sent nothing to its handshake before, at the bound of
    /// handshakes in flight, it gives way to a new client. Longer than a loopback or LAN round
    /// trip; shorter than a backlog of waiting clients should wait for one (Worker+Timeouts's
    /// scan retries a held listener every 250 ms).
    static let idleHandshakeGraceMs = 100

    /// A connection on a TLS frontend was accepted: its SSL, bound to the worker's ctls_io.
    func beginTLS(_ slot: Int32, frontend f: Int) -> Bool {
        guard let context = tlsContexts[f], let ssl = ctls_server_new(context.handle, tlsIO) else {
            count(.tlsHandshakeFailures)
            return false
        }
        tlsSessions[Int(slot)] = ssl
        conns[Int(slot)].tls = true
        conns[Int(slot)].stagesLeft.insert(.tlsHandshake)
        conns[Int(slot)].tlsHandshaking = true
        tlsHandshakesInFlight += 1
        idleHandshakes.append(Int(slot), nowMs: nowMs)
        if tlsRatePerWorker != nil { tlsRateLeft -= 1 }
        return true
    }

    /// Whether a TLS listener may arm another accept: handshakes in flight (with the accepts
    /// already armed) under the bound, and the second's share of maxsslrate not spent.
    @inline(__always)
    func tlsMayAccept(armed: Int) -> Bool {
        tlsHandshakesInFlight + armed < config.tlsHandshakesInFlightMax && tlsRateLeft - armed > 0
    }

    /// A handshake ended (done, failed, or its connection closed): the gate may open again.
    func tlsHandshakeEnded(_ s: Int) {
        guard conns[s].tlsHandshaking else { return }
        conns[s].tlsHandshaking = false
        tlsHandshakesInFlight -= 1
        idleHandshakes.remove(s)
        if tlsAcceptsHeld { releaseTLSAccepts() }
    }

    /// At the bound of handshakes in flight (not maxsslrate's: a new session would not be
    /// allowed anyway), the handshake whose client has been silent longest gives way when it has
    /// been silent for the grace: closed with a reset, counted, logged `RR`. Without this, clients
    /// that connect and stall (send nothing, half a ClientHello, never the Finished) would hold
    /// every handshake place for the inspect delay while the well-behaved queue in the backlog
    /// behind them. A client progressing at round-trip speed is never the most idle of hundreds.
    func evictIdleHandshake(armed: Int) -> Bool {
        guard tlsRateLeft - armed > 0, let s = idleHandshakes.first,
              nowMs - idleHandshakes.since(s) >= Self.idleHandshakeGraceMs else { return false }
        count(.tlsHandshakesEvicted)
        warnRateLimited(Int32(s), "TLS handshakes at their bound: closing the one idle longest (\(nowMs - idleHandshakes.since(s)) ms)")
        // Out of the count now (its slot is released later), without waking held listeners:
        // the caller is arming an accept already.
        let held = tlsAcceptsHeld
        tlsAcceptsHeld = false
        tlsHandshakeEnded(s)
        tlsAcceptsHeld = held
        closeConnection(Int32(s), reset: true, why: .evictedPreamble)
        return true
    }

    /// Called by the periodic scan: a new second refills maxsslrate's share.
    func refreshTLSRate() {
        guard let perSecond = tlsRatePerWorker else { return }
        let second = nowMs / 1000
        guard second != tlsRateSecond else { return }
        tlsRateSecond = second
        tlsRateLeft = perSecond
        if tlsAcceptsHeld { releaseTLSAccepts() }
    }

    /// Called by the periodic scan while TLS listeners are held: a handshake idle past the grace
    /// since then may give way to a client waiting in the backlog.
    func retryHeldTLSAccepts() {
        guard let s = idleHandshakes.first, nowMs - idleHandshakes.since(s) >= Self.idleHandshakeGraceMs else { return }
        releaseTLSAccepts()
    }

    private func releaseTLSAccepts() {
        tlsAcceptsHeld = false
        for l in listeners.indices where listenerIsTLS[l] { fillAccepts(l) }
    }

    /// Frees the connection's SSL (its slot is being released).
    func endTLS(_ slot: Int32) {
        let s = Int(slot)
        tlsHandshakeEnded(s)
        if let ssl = tlsSessions[s] {
            ctls_free(ssl)
            tlsSessions[s] = nil
        }
        conns[s].tls = false
    }

    /// A buffer of ciphertext from the client: runs the handshake while it is not done, then
    /// decrypts what follows into the same buffer. Returns the plaintext length now in the
    /// buffer (0: nothing yet; the caller gives the buffer back), or -1 when the connection was
    /// closed (handshake failure, a fatal alert) or ended in order (close_notify: `eof` set).
    func tlsReceive(_ slot: Int32, bid: UInt16, length: Int) -> Int {
        let s = Int(slot)
        guard let ssl = tlsSessions[s] else { return -1 }
        TLSRecordIO.setInput(tlsIO, pool.address(bid), count: length)
        tlsIO.pointee.in_eof = 0
        if conns[s].stagesLeft.contains(.tlsHandshake) {
            // The client spoke: its handshake goes to the back of the idle order.
            idleHandshakes.remove(s)
            idleHandshakes.append(s, nowMs: nowMs)
            let result = withTLSOutput(slot, to: s * 2 + 1) { ctls_handshake(ssl) }
            switch result {
            case Int32(CTLS_OK):
                conns[s].stagesLeft.remove(.tlsHandshake)
                tlsHandshakeEnded(s)
                count(.tlsHandshakes)
                if ctls_session_reused(ssl) != 0 { count(.tlsResumedHandshakes) }
            case Int32(CTLS_WANT_READ):
                return 0
            default:
                failTLS(slot, during: "handshake")
                return -1
            }
        }
        return openRecords(slot, ssl, bid: bid, fromServer: false)
    }

    /// Application records in the ctls_io's input: decrypted into the scratch, then back into
    /// the buffer (and, rarely, the rest into `tlsOverflow`). Answers OpenSSL writes (a
    /// KeyUpdate's, an alert) go back to the sender. The sender's close_notify sets its pipe's
    /// `eof`. Returns the plaintext now in the buffer, or -1 when the connection was closed.
    func openRecords(_ slot: Int32, _ ssl: OpaquePointer, bid: UInt16, fromServer: Bool) -> Int {
        let s = Int(slot)
        let source = s * 2 + (fromServer ? 1 : 0)
        var plain = 0
        while true {
            var n = 0
            let result = withTLSOutput(slot, to: source ^ 1) {   // the pipe that sends to the sender
                ctls_read(ssl, tlsScratch.baseAddress!.assumingMemoryBound(to: UInt8.self) + plain, tlsScratch.count - plain, &n)
            }
            plain += n
            if result == Int32(CTLS_OK) {
                if plain < tlsScratch.count { continue }
                break
            }
            if result == Int32(CTLS_WANT_READ) { break }
            if result == Int32(CTLS_CLOSED) {
                // close_notify: the sender's FIN in TLS's words.
                pipes[source].eof = true
                break
            }
            if fromServer { failServerTLS(slot, during: "read") } else { failTLS(slot, during: "read") }
            return -1
        }
        let base = pool.address(bid)
        let fits = min(plain, pool.sizeBytes)
        base.copyMemory(from: tlsScratch.baseAddress!, byteCount: fits)
        if plain > fits {
            // Rare: records buffered from an earlier segment completed here. The rest goes in
            // an owned buffer right behind this one.
            guard let extra = pool.takeOwned() else {
                if fromServer { failServerTLS(slot, during: "read (no buffer for the plaintext)") } else { failTLS(slot, during: "read (no buffer for the plaintext)") }
                return -1
            }
            pool.address(extra).copyMemory(from: tlsScratch.baseAddress! + fits, byteCount: plain - fits)
            pool.length[Int(extra)] = UInt32(plain - fits)
            tlsOverflow = extra
        }
        return fits
    }

    /// A buffer of plaintext for the client (an answer the proxy wrote): sealed into records in
    /// place. Returns the record bytes now in the buffer, or -1 when the connection was closed.
    func tlsSeal(_ slot: Int32, bid: UInt16, length: Int) -> Int {
        guard let ssl = tlsSessions[Int(slot)] else { return -1 }
        var spill = BufferPool.none
        let sealed = sealRecords(ssl, bid: bid, length: length, spill: &spill)
        guard sealed > 0, spill == BufferPool.none else {
            if spill != BufferPool.none { pool.give(spill) }
            failTLS(slot, during: sealed > 0 ? "write (records larger than a buffer)" : "write")
            return -1
        }
        return sealed
    }

    /// Plaintext at the buffer sealed into records, copied back into it; records past its end
    /// go into `spill` (an owned buffer; plaintext a buffer long grows by its records'
    /// overhead). Returns the record bytes in total, or -1 (OpenSSL's reason kept for the caller).
    func sealRecords(_ ssl: OpaquePointer, bid: UInt16, length: Int, spill: inout UInt16) -> Int {
        TLSRecordIO.clearInput(tlsIO)
        TLSRecordIO.setOutput(tlsIO, tlsScratch.baseAddress!, capacity: tlsScratch.count)
        var taken = 0
        let source = pool.address(bid).assumingMemoryBound(to: UInt8.self)
        while taken < length {
            var n = 0
            let result = ctls_write(ssl, source + taken, length - taken, &n)
            taken += n
            if result != Int32(CTLS_OK) { return -1 }
        }
        let sealed = tlsIO.pointee.out_len
        let fits = min(sealed, pool.sizeBytes)
        pool.address(bid).copyMemory(from: tlsScratch.baseAddress!, byteCount: fits)
        pool.length[Int(bid)] = UInt32(fits)
        if sealed > fits {
            guard let extra = pool.takeOwned() else { return -1 }
            pool.address(extra).copyMemory(from: tlsScratch.baseAddress! + fits, byteCount: sealed - fits)
            pool.length[Int(extra)] = UInt32(sealed - fits)
            spill = extra
        }
        return sealed
    }

    /// A received buffer on a connection with TLS on either side: records from a TLS source
    /// are opened in place, plaintext for a TLS destination is sealed in place, and the result
    /// is queued on pipe p. Returns the bytes queued; 0: nothing to queue (the buffer went
    /// back); -1: the connection was closed; -2: the buffer was set aside (the server's
    /// handshake is running) and the recv looked after.
    func relayTLS(_ slot: Int32, pipe p: Int, bid: UInt16, length received: Int, more: Bool) -> Int {
        let s = Int(slot)
        let fromClient = p & 1 == 0
        var length = received
        if fromClient ? conns[s].tls : conns[s].serverTLS {
            length = fromClient ? tlsReceive(slot, bid: bid, length: length) : serverTLSReceive(slot, bid: bid, length: length)
            if length <= 0 {
                pool.give(bid)
                return length
            }
            pool.length[Int(bid)] = UInt32(length)
        }
        let extra = tlsOverflow
        tlsOverflow = BufferPool.none
        if fromClient && conns[s].serverHandshaking {
            holdForServerHandshake(slot, bid, extra: extra, more: more)
            return -2
        }
        // A server's answer still awaited (Worker+Redispatch) stays plain for its verdict; it is
        // sealed once accepted.
        let ssl = fromClient ? (conns[s].serverTLS ? serverTLSSessions[s] : nil)
            : (conns[s].tls && !conns[s].transform.awaitsServerAnswer ? tlsSessions[s] : nil)
        guard let ssl else {
            enqueue(p, bid)
            guard extra != BufferPool.none else { return length }
            enqueue(p, extra)
            return length + Int(pool.length[Int(extra)])
        }
        // No array of the two buffers: this runs per packet.
        let first = sealOnto(slot, ssl, pipe: p, bid: bid, toServer: fromClient)
        guard first >= 0 else {
            if extra != BufferPool.none { pool.give(extra) }
            return -1
        }
        guard extra != BufferPool.none else { return first }
        let second = sealOnto(slot, ssl, pipe: p, bid: extra, toServer: fromClient)
        return second < 0 ? -1 : first + second
    }

    /// Seals one plaintext buffer for pipe p's destination and queues the records (the buffer,
    /// and a spill buffer behind it if they outgrew it). -1: failed, the buffer went back and
    /// the connection is closed.
    func sealOnto(_ slot: Int32, _ ssl: OpaquePointer, pipe p: Int, bid: UInt16, toServer: Bool) -> Int {
        var spill = BufferPool.none
        let sealed = sealRecords(ssl, bid: bid, length: Int(pool.length[Int(bid)]), spill: &spill)
        guard sealed > 0 else {
            pool.give(bid)
            if toServer { failServerTLS(slot, during: "write") } else { failTLS(slot, during: "write") }
            return -1
        }
        enqueue(p, bid)
        if spill != BufferPool.none { enqueue(p, spill) }
        return sealed
    }

    /// Runs `body` with the ctls_io's output pointed at a fresh owned buffer, and queues what it
    /// wrote (handshake flights, alerts, session tickets, a KeyUpdate answer) on pipe p.
    @inline(__always)
    func withTLSOutput(_ slot: Int32, to p: Int, _ body: () -> Int32) -> Int32 {
        guard let out = pool.takeOwned() else {
            count(.tlsNoBuffer)
            tlsIO.pointee.out = nil
            tlsIO.pointee.out_cap = 0
            tlsIO.pointee.out_len = 0
            return body()
        }
        TLSRecordIO.setOutput(tlsIO, pool.address(out), capacity: pool.sizeBytes)
        let result = body()
        let written = tlsIO.pointee.out_len
        tlsIO.pointee.out = nil
        tlsIO.pointee.out_cap = 0
        guard written > 0 else {
            pool.give(out)
            return result
        }
        pool.length[Int(out)] = UInt32(written)
        enqueue(p, out)
        issueSend(p)
        return result
    }

    /// After a received buffer on a connection with TLS on either side: a close_notify that
    /// arrived is passed on before the FIN; the switch to kTLS may find both sides quiet now.
    func afterTLSRecv(_ slot: Int32, pipe p: Int) {
        if pipes[p].eof {
            queueCloseNotify(slot, pipe: p)
            maybeShutdown(p)
        }
        continueKernelTLSSwitch(slot)
    }

    /// Whichever side of the connection is TLS gets a close_notify before pipe p's FIN: the
    /// client (p odd) or the server (p even, once its handshake is done).
    func queueCloseNotify(_ slot: Int32, pipe p: Int) {
        let s = Int(slot)
        guard !pipes[p].shutdownSent else { return }   // the FIN is out: nothing may follow it
        if p & 1 == 1 {
            if conns[s].tls { tlsCloseNotify(slot) }
        } else if conns[s].serverTLS && !conns[s].serverHandshaking, let ssl = serverTLSSessions[s] {
            TLSRecordIO.clearInput(tlsIO)
            _ = withTLSOutput(slot, to: p) { ctls_shutdown(ssl) }
        }
    }

    /// The server closed in order: a close_notify for the client goes out before its FIN.
    func tlsCloseNotify(_ slot: Int32) {
        guard let ssl = tlsSessions[Int(slot)] else { return }
        TLSRecordIO.clearInput(tlsIO)
        _ = withTLSOutput(slot, to: Int(slot) * 2 + 1) { ctls_shutdown(ssl) }
    }

    /// A fatal TLS error: counted, logged (OpenSSL's reason), the alert OpenSSL wrote already
    /// queued to the client, then closed.
    func failTLS(_ slot: Int32, during step: String) {
        let s = Int(slot)
        var reason = [CChar](repeating: 0, count: 256)
        ctls_error_reason(&reason, reason.count)
        let handshaking = conns[s].stagesLeft.contains(.tlsHandshake)
        count(handshaking ? .tlsHandshakeFailures : .tlsRecordErrors)
        tlsHandshakeEnded(s)
        warnRateLimited(slot, "TLS \(step) failed: \(String(cString: reason))")
        if handshaking && pipes[s * 2 + 1].head != BufferPool.none {
            // Let the alert reach the client (a browser or mosquitto_pub shows its reason).
            conns[s].stagesLeft = []
            conns[s].closeAfterAnswer = true
            if conns[s].termination == 0 { conns[s].termination = Termination.rejected.rawValue }
            return
        }
        closeConnection(slot, reset: false, why: handshaking ? .rejected : .clientAbort)
    }
}
