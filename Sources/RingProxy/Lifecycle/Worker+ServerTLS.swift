// Worker+ServerTLS: TLS towards the brokers (`server ... ssl`), ringproxy the client, over the
// same buffers and ctls_io as TLS termination. Once connected (and after a PROXY header, which
// goes in clear before the ClientHello, as HAProxy sends it), the client's bytes held so far
// are set aside; the handshake's flights go out alone; when it is done the held bytes are
// sealed in order and sent, and from then on each buffer is sealed in place on its way to the
// server and opened in place on its way back. Each worker resumes its last session with each
// server. A handshake that fails closes the connection (SC) before any client byte left.
import CTLS
import CUring
import Glibc

extension Worker {
    /// Connected to a TLS server: its SSL (SNI and the name to verify as configured, or the
    /// TLS client's own SNI with `sni ssl_fc_sni`), and the client's held bytes set aside.
    /// False when the connection was closed.
    func beginServerTLS(_ slot: Int32, server g: Int) -> Bool {
        let s = Int(slot)
        guard let context = serverTLSContexts[g] else { return true }
        endServerTLS(slot)   // a connection replayed to another server starts over
        var sni = UnsafePointer(serverTLSNames[g].sni)
        var verifyHost = UnsafePointer(serverTLSNames[g].verifyHost)
        if serverTLSForwardsSNI[g], conns[s].tls, let client = tlsSessions[s], let name = ctls_sni(client) {
            sni = name
            if verifyHost == nil && context.config.verify == .required { verifyHost = name }
        }
        guard let ssl = ctls_client_new(context.handle, tlsIO, sni, verifyHost, Int32(index)) else {
            count(.serverTLSHandshakeFailures)
            warnRateLimited(slot, "TLS towards server '\(serverName(slot))' could not start (out of memory)")
            closeConnection(slot, reset: false, why: .connectFailed)
            return false
        }
        serverTLSSessions[s] = ssl
        conns[s].serverTLS = true
        conns[s].serverHandshaking = true
        let p = s * 2
        // An accept-proxy header retired from the head leaves an offset: the held bytes start
        // at the buffer's first byte before they are set aside (sealed from byte 0 later).
        compactHead(p)
        assert(pipes[p].sentOffset == 0 && !pipes[p].sendInFlight)
        serverTLSHeld[s] = HeldChain(head: pipes[p].head, tail: pipes[p].tail, count: pipes[p].count)
        pipes[p].head = BufferPool.none
        pipes[p].tail = BufferPool.none
        pipes[p].count = 0
        return true
    }

    /// Writes the ClientHello (after the PROXY header, if one is queued) and sends it.
    func startServerHandshake(_ slot: Int32) {
        guard let ssl = serverTLSSessions[Int(slot)] else { return }
        TLSRecordIO.clearInput(tlsIO)
        tlsIO.pointee.in_eof = 0
        let result = withTLSOutput(slot, to: Int(slot) * 2) { ctls_handshake(ssl) }
        if result != Int32(CTLS_WANT_READ) && result != Int32(CTLS_OK) { failServerTLS(slot, during: "handshake") }
    }

    /// Bytes from a TLS server: the handshake while it runs (done: the held client bytes
    /// leave), then its records opened in place. Returns the plaintext now in the buffer, 0 for
    /// none yet, -1 when the connection was closed.
    func serverTLSReceive(_ slot: Int32, bid: UInt16, length: Int) -> Int {
        let s = Int(slot)
        guard let ssl = serverTLSSessions[s] else { return -1 }
        TLSRecordIO.setInput(tlsIO, pool.address(bid), count: length)
        tlsIO.pointee.in_eof = 0
        if conns[s].serverHandshaking {
            let result = withTLSOutput(slot, to: s * 2) { ctls_handshake(ssl) }
            switch result {
            case Int32(CTLS_OK):
                finishServerHandshake(slot, ssl)
                guard conns[s].phase.isLive else { return -1 }
            case Int32(CTLS_WANT_READ):
                return 0
            default:
                failServerTLS(slot, during: "handshake")
                return -1
            }
            // finishServerHandshake used the ctls_io for the held bytes: point it back at the rest.
            TLSRecordIO.setInput(tlsIO, pool.address(bid), count: length)
            tlsIO.pointee.in_used = serverHandshakeInputUsed
        }
        return openRecords(slot, ssl, bid: bid, fromServer: true)
    }

    /// The handshake is done: the held client bytes are sealed in order and sent, then a
    /// close_notify if the client already finished.
    private func finishServerHandshake(_ slot: Int32, _ ssl: OpaquePointer) {
        let s = Int(slot)
        serverHandshakeInputUsed = tlsIO.pointee.in_used
        conns[s].serverHandshaking = false
        count(.serverTLSHandshakes)
        if ctls_session_reused(ssl) != 0 { count(.serverTLSResumedHandshakes) }
        let p = s * 2
        var bid = serverTLSHeld[s].head
        serverTLSHeld[s] = HeldChain()
        while bid != BufferPool.none {
            let next = pool.next[Int(bid)]
            if sealOnto(slot, ssl, pipe: p, bid: bid, toServer: true) < 0 {
                giveChain(next)
                return
            }
            bid = next
        }
        if pipes[p].eof { queueCloseNotify(slot, pipe: p) }
        issueSend(p)
        maybeShutdown(p)
        if conns[s].tls { beginKernelTLSSwitch(slot) }
    }

    /// A client buffer (and the plaintext overflow behind it) while the server's handshake
    /// runs: kept in order; the client's recv pauses at the pipe's bound.
    func holdForServerHandshake(_ slot: Int32, _ bid: UInt16, extra: UInt16, more: Bool) {
        let s = Int(slot)
        let p = s * 2
        hold(s, bid)
        if extra != BufferPool.none { hold(s, extra) }
        if Int(serverTLSHeld[s].count) >= pipeLimit(s) {
            pauseRecv(p, more: more)
        } else if !more && !pipes[p].recvArmed && !pipes[p].eof {
            armRecv(p)
        }
    }

    private func hold(_ s: Int, _ bid: UInt16) {
        let length = UInt64(pool.length[Int(bid)])
        pipes[s * 2].bytes &+= length
        count(.bytesFromClients, length)
        pool.next[Int(bid)] = BufferPool.none
        if serverTLSHeld[s].tail == BufferPool.none {
            serverTLSHeld[s].head = bid
        } else {
            pool.next[Int(serverTLSHeld[s].tail)] = bid
        }
        serverTLSHeld[s].tail = bid
        serverTLSHeld[s].count += 1
    }

    /// Frees the SSL towards the server and whatever was held for it.
    func endServerTLS(_ slot: Int32) {
        let s = Int(slot)
        if let ssl = serverTLSSessions[s] {
            ctls_free(ssl)
            serverTLSSessions[s] = nil
        }
        giveChain(serverTLSHeld[s].head)
        serverTLSHeld[s] = HeldChain()
        conns[s].serverTLS = false
        conns[s].serverHandshaking = false
    }

    private func giveChain(_ head: UInt16) {
        var bid = head
        while bid != BufferPool.none {
            let next = pool.next[Int(bid)]
            pool.give(bid)
            bid = next
        }
    }

    /// A fatal TLS error with the server: counted, logged with OpenSSL's reason, closed (SC
    /// during the handshake: nothing of the client's reached the server).
    func failServerTLS(_ slot: Int32, during step: String) {
        let s = Int(slot)
        var reason = [CChar](repeating: 0, count: 256)
        ctls_error_reason(&reason, reason.count)
        let handshaking = conns[s].serverHandshaking
        count(handshaking ? .serverTLSHandshakeFailures : .serverTLSRecordErrors)
        if handshaking, let context = serverTLSContexts[serverIndex(slot)] {
            // A session the server no longer takes must not fail the next handshake too.
            ctls_client_forget_session(context.handle, Int32(index))
        }
        warnRateLimited(slot, "TLS \(step) with server '\(serverName(slot))' failed: \(String(cString: reason))")
        closeConnection(slot, reset: false, why: handshaking ? .connectFailed : .serverAbort)
    }

    /// "backend/server", for messages (cold path).
    func serverName(_ slot: Int32) -> String {
        let s = Int(slot)
        let backend = config.backends[Int(conns[s].backend)]
        let server = Int(conns[s].server)
        return server >= 0 && server < backend.servers.count ? "\(backend.name)/\(backend.servers[server].name)" : backend.name
    }

    /// The flat index of the connection's server.
    @inline(__always)
    func serverIndex(_ slot: Int32) -> Int {
        backendServerBase[Int(conns[Int(slot)].backend)] + Int(conns[Int(slot)].server)
    }
}
