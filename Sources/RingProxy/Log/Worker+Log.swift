// Worker+Log: formats a closed connection's tcplog line into the worker's log buffer. Runs
// once per connection at close, never per packet, and allocates nothing.
import CTLS
import CUring
import Glibc

extension Worker {
    func keepClientID(_ slot: Int32, _ id: UnsafeRawBufferPointer) {
        let s = Int(slot)
        let n = min(id.count, MemoryLayout<clientIDStorage>.size)
        withUnsafeMutableBytes(of: &conns[s].clientID) { $0.baseAddress!.copyMemory(from: id.baseAddress!, byteCount: n) }
        conns[s].clientIDLength = UInt8(n)
    }

    /// Writes buffered lines when there are many or the oldest has waited 50 ms: one syscall
    /// for dozens of connections under load, a short delay when idle.
    func flushLog() {
        let pending = connectionLog!.lines
        guard pending > 0 else { return }
        if pending >= ConnectionLog.linesMax / 2 || nowMs - logFirstPendingMs >= 50 || draining {
            connectionLog!.flush()
        }
    }

    /// `%ci:%cp [%tr] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq {client id}`
    func logConnection(_ slot: Int32) {
        let s = Int(slot)
        let acceptedWallMs = cu_wall_ms() - (nowMs - conns[s].acceptedAtMs)
        if !connectionLog!.beginLine(wallSeconds: acceptedWallMs / 1000) {
            connectionLog!.flush()
            guard connectionLog!.beginLine(wallSeconds: acceptedWallMs / 1000) else { return }
        }
        if connectionLog!.lines == 0 { logFirstPendingMs = nowMs }
        var line = connectionLog!.buffer
        defer { connectionLog!.buffer = line; connectionLog!.endLine() }

        // Client address and port.
        let peer = UnsafeRawPointer(conns + s) + Worker.peerOffset
        let family = Int32(peer.load(as: UInt16.self))
        let port = UInt16(bigEndian: peer.load(fromByteOffset: 2, as: UInt16.self))
        if line.remaining > 64 {
            let out = UnsafeMutableRawPointer(line.base + line.count).assumingMemoryBound(to: CChar.self)
            if inet_ntop(family, peer + (family == AF_INET6 ? 8 : 4), out, 64) != nil {
                line.count += strlen(out)
            }
        }
        line.byte(0x3A)
        line.decimal(Int(port))
        // [dd/Mon/yyyy:HH:MM:SS.mmm] accept date, local time as HAProxy writes it.
        var t = acceptedWallMs / 1000
        var tmv = tm()
        localtime_r(&t, &tmv)
        line.byte(0x20); line.byte(0x5B)
        line.decimal(Int(tmv.tm_mday), width: 2); line.byte(0x2F)
        ConnectionLog.month(Int(tmv.tm_mon), &line); line.byte(0x2F)
        line.decimal(Int(tmv.tm_year) + 1900); line.byte(0x3A)
        line.decimal(Int(tmv.tm_hour), width: 2); line.byte(0x3A)
        line.decimal(Int(tmv.tm_min), width: 2); line.byte(0x3A)
        line.decimal(Int(tmv.tm_sec), width: 2); line.byte(0x2E)
        line.decimal(acceptedWallMs % 1000, width: 3)
        line.byte(0x5D); line.byte(0x20)
        // frontend backend/server
        let f = Int(conns[s].frontend)
        let b = Int(conns[s].backend)
        frontendNames.append(f, to: &line)
        line.byte(0x20)
        backendNames.append(b, to: &line)
        line.byte(0x2F)
        let connected = conns[s].serverCounted
        if conns[s].server >= 0 && (connected || conns[s].attempts > 0) {
            serverNames.append(backendServerBase[b] + Int(conns[s].server), to: &line)
        } else {
            for c in "<NOSRV>".utf8 { line.byte(c) }
        }
        // Tw/Tc/Tt
        line.byte(0x20)
        let attempted = conns[s].connectStartMs > 0
        line.decimal(attempted ? 0 : -1); line.byte(0x2F)
        line.decimal(connected ? conns[s].connectedAtMs - conns[s].connectStartMs : -1); line.byte(0x2F)
        line.decimal(nowMs - conns[s].acceptedAtMs)
        // bytes sent to the client
        line.byte(0x20)
        line.decimal(Int(pipes[s * 2 + 1].bytes))
        // termination state
        let code = (Termination(rawValue: conns[s].termination) ?? .normal).code
        line.byte(0x20); line.byte(code.0); line.byte(code.1)
        // actconn/feconn/beconn/srv_conn/retries
        line.byte(0x20)
        line.decimal(shared.activeConnections); line.byte(0x2F)
        line.decimal(cu_atomic_load(shared.frontendWords + f)); line.byte(0x2F)
        var backendActive = 0
        var i = 0
        while i < backendServerCount[b] { backendActive += shared.serverActive(backendServerBase[b] + i); i += 1 }
        line.decimal(backendActive); line.byte(0x2F)
        line.decimal(conns[s].server >= 0 ? shared.serverActive(backendServerBase[b] + Int(conns[s].server)) : 0); line.byte(0x2F)
        if conns[s].redispatched { line.byte(0x2B) }   // '+': HAProxy's mark of a redispatched session
        line.decimal(Int(conns[s].attempts))
        // srv_queue/backend_queue: ringproxy does not queue
        for c in " 0/0".utf8 { line.byte(c) }
        if conns[s].clientIDLength > 0 {
            line.byte(0x20); line.byte(0x7B)
            withUnsafeBytes(of: &conns[s].clientID) { line.sanitized($0.baseAddress!, Int(conns[s].clientIDLength)) }
            line.byte(0x7D)
        }
        // TLS: {version,cipher[,client certificate subject]}, HAProxy's %[ssl_fc_protocol],
        // %[ssl_fc_cipher] and %[ssl_c_s_dn].
        if conns[s].tls || conns[s].transform == .kernelTLS, let ssl = tlsSessions[s], line.remaining > 600, let version = ctls_version(ssl) {
            line.byte(0x20); line.byte(0x7B)
            line.sanitized(UnsafeRawPointer(version), strlen(version))
            if let cipher = ctls_cipher(ssl) {
                line.byte(0x2C)
                line.sanitized(UnsafeRawPointer(cipher), strlen(cipher))
            }
            if ctls_client_cert_presented(ssl) != 0 {
                line.byte(0x2C)
                let out = UnsafeMutableRawPointer(line.base + line.count).assumingMemoryBound(to: CChar.self)
                let n = ctls_client_subject(ssl, out, 512)
                line.count += min(n, 511)
            }
            line.byte(0x7D)
        }
    }

    /// A server that did not answer: logged (rate-limited with the other per-connection
    /// warnings) so an operator sees which server fails and why before health checks exist.
    func logServerFailure(_ slot: Int32, result: Int32) {
        let s = Int(slot)
        let b = Int(conns[s].backend)
        let server = Int(conns[s].server)
        let backend = config.backends[b]
        guard server >= 0 && server < backend.servers.count else { return }
        let why = result == -ECANCELED ? "timeout connect" : String(cString: strerror(-result))
        warnRateLimited(slot, "server \(backend.name)/\(backend.servers[server].name) \(backend.servers[server].address) "
                        + "did not answer (\(why)); \(Int(conns[s].attempts) < backendRetries[b] ? "trying the next server" : "retries exhausted")")
    }
}
