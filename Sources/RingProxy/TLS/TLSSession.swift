// One TLS connection in userspace: the handshake, records in and out through the worker's
// ctls_io, and the facts the log and PROXY v2 TLVs need. The per-record calls are one C call
// each, no allocation and no retain; the facts build Strings and are for cold paths only.
import CTLS

/// How a TLS call ended (CTLS_* in CTLS.h).
public enum TLSResult: Int32 {
    /// Handshake done, or bytes moved.
    case ok = 0
    /// `in` is used up: receive more, then call again.
    case wantRead = 1
    /// `out` is full: send what it holds, reset its length, call again.
    case wantWrite = 2
    /// The peer's close_notify arrived.
    case closed = 3
    /// Fatal: `TLSSession.lastErrorReason()` says why; send `out` (it may hold an alert) and
    /// free the session.
    case error = 4
}

/// The worker's buffer binding for all its sessions: before each call, where the received
/// ciphertext is and where records to send go.
public enum TLSRecordIO {
    /// Received bytes at `base[0..<count]`, none used yet.
    @inline(__always)
    public static func setInput(_ io: UnsafeMutablePointer<ctls_io>, _ base: UnsafeRawPointer,
                                count: Int) {
        io.pointee.in = base.assumingMemoryBound(to: UInt8.self)
        io.pointee.in_len = count
        io.pointee.in_used = 0
    }

    /// Nothing received for this call (a write, or a handshake step after a send).
    @inline(__always)
    public static func clearInput(_ io: UnsafeMutablePointer<ctls_io>) {
        io.pointee.in = nil
        io.pointee.in_len = 0
        io.pointee.in_used = 0
    }

    /// Room for records at `base[0..<capacity]`, empty.
    @inline(__always)
    public static func setOutput(_ io: UnsafeMutablePointer<ctls_io>,
                                 _ base: UnsafeMutableRawPointer, capacity: Int) {
        io.pointee.out = base.assumingMemoryBound(to: UInt8.self)
        io.pointee.out_cap = capacity
        io.pointee.out_len = 0
    }
}

/// A server SSL over the worker's ctls_io. A plain value: the worker keeps it in the
/// connection's slot and calls `free()` exactly once.
public struct TLSSession {
    /// The SSL.
    public let ssl: OpaquePointer

    @inline(__always)
    public func handshake() -> TLSResult {
        TLSResult(rawValue: ctls_handshake(ssl)) ?? .error
    }

    /// Plaintext into `destination`. It may be the received buffer itself, at or before the
    /// first unused ciphertext byte (decrypting in place). `count` is set on every result.
    @inline(__always)
    public func read(into destination: UnsafeMutableRawPointer, capacity: Int,
                     count: inout Int) -> TLSResult {
        var n = 0
        let r = ctls_read(ssl, destination.assumingMemoryBound(to: UInt8.self), capacity, &n)
        count = n
        return TLSResult(rawValue: r) ?? .error
    }

    /// Plaintext from `source` into records in `out`. `written` is set on every result; on
    /// `.wantWrite` send `out` and call again with the bytes from `source + written`.
    @inline(__always)
    public func write(from source: UnsafeRawPointer, count: Int,
                      written: inout Int) -> TLSResult {
        var n = 0
        let r = ctls_write(ssl, source.assumingMemoryBound(to: UInt8.self), count, &n)
        written = n
        return TLSResult(rawValue: r) ?? .error
    }

    /// close_notify into `out`.
    public func shutdown() -> TLSResult {
        TLSResult(rawValue: ctls_shutdown(ssl)) ?? .error
    }

    public func free() { ctls_free(ssl) }

    /// OpenSSL's reason for this thread's last `.error`: "wrong version number",
    /// "certificate verify failed: certificate has expired".
    public static func lastErrorReason() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        ctls_error_reason(&buffer, buffer.count)
        return String(cString: buffer)
    }
}

// MARK: - Connection facts (log fields as HAProxy names them)
extension TLSSession {
    /// `ssl_fc_protocol`: "TLSv1.3".
    public var version: String { String(cString: ctls_version(ssl)) }
    /// `ssl_fc_cipher`: "TLS_AES_128_GCM_SHA256".
    public var cipher: String { ctls_cipher(ssl).map { String(cString: $0) } ?? "" }
    /// `ssl_fc_alpn`, nil when none was agreed.
    public var alpn: String? { text { ctls_alpn(ssl, $0, $1) } }
    /// `ssl_fc_sni`.
    public var serverName: String? { ctls_sni(ssl).map { String(cString: $0) } }
    /// `ssl_c_used`.
    public var clientCertificatePresented: Bool { ctls_client_cert_presented(ssl) != 0 }
    /// `ssl_c_s_dn`: "/C=FR/O=Org/CN=device-1".
    public var clientSubject: String? { text { ctls_client_subject(ssl, $0, $1) } }
    /// The client certificate's CN.
    public var clientCommonName: String? { text { ctls_client_cn(ssl, $0, $1) } }
    /// `ssl_c_verify`: 0 when the client certificate (if any) verified.
    public var verifyResult: Int { ctls_verify_result(ssl) }
    public var verifyReason: String { String(cString: ctls_verify_reason(ctls_verify_result(ssl))) }
    /// `ssl_fc_is_resumed`.
    public var isResumed: Bool { ctls_session_reused(ssl) != 0 }

    private func text(_ fill: (UnsafeMutablePointer<CChar>, Int) -> Int) -> String? {
        var buffer = [CChar](repeating: 0, count: 512)
        let n = buffer.withUnsafeMutableBufferPointer { fill($0.baseAddress!, $0.count) }
        return n == 0 ? nil : String(cString: buffer)
    }
}
