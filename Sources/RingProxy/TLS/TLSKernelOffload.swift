// kTLS behind a start-up probe: whether the kernel takes TCP_ULP "tls", whether the relay
// switches established TLS clients to it (RINGPROXY_KTLS), and the crypto info a connection
// hands it for TX and RX once its handshake is done. The kernel here lacks CONFIG_TLS, so the
// hand-off is proven by tests that decrypt real records with these keys, and the switch runs
// up to the kernel's ENOENT only when forced.
import CTLS
import Glibc

/// Whether established TLS clients switch to kernel TLS.
public enum KernelTLSMode: Equatable, Sendable {
    /// When the start-up probe found TCP_ULP "tls" (the default).
    case auto
    /// Whatever the probe said: diagnostic only, so that a kernel without CONFIG_TLS runs the
    /// switch up to the setsockopt it refuses, then falls back to userspace.
    case force
    /// Never: records stay in userspace even where the kernel has kTLS.
    case off

    /// `RINGPROXY_KTLS=force|off` (anything else, or unset: auto).
    public static func fromEnvironment() -> KernelTLSMode {
        guard let value = getenv("RINGPROXY_KTLS").map({ String(cString: $0) }) else { return .auto }
        switch value {
        case "force": return .force
        case "off": return .off
        default: return .auto
        }
    }

    /// Whether connections attempt the switch, given the probe's answer.
    public func attempts(kernelSupports: Bool) -> Bool {
        self == .force || (self == .auto && kernelSupports)
    }
}

public enum TLSKernelOffload {
    /// A direction of a server connection: `transmit` is what the server sends.
    public enum Direction { case transmit, receive }

    /// The probe's answer, made once per process.
    public static var probe: (supported: Bool, reason: String) {
        var buffer = [CChar](repeating: 0, count: 160)
        let supported = ctls_ktls_supported(&buffer, buffer.count) != 0
        return (supported, String(cString: buffer))
    }

    /// What setsockopt(SOL_TLS, TLS_TX or TLS_RX) takes, as of now: call after the handshake
    /// with every record of `out` sent and every received byte given to OpenSSL.
    public struct CryptoInfo {
        public var raw = ctls_crypto_info()
        /// The setsockopt length (the cipher's struct).
        public var length = 0

        public var tlsVersion: UInt16 { raw.info.version }
        public var cipherType: UInt16 { raw.info.cipher_type }

        public var key: [UInt8] { field(\.aes_gcm_128.key, \.aes_gcm_256.key, \.chacha20_poly1305.key) }
        public var salt: [UInt8] { field(\.aes_gcm_128.salt, \.aes_gcm_256.salt, \.chacha20_poly1305.salt) }
        public var iv: [UInt8] { field(\.aes_gcm_128.iv, \.aes_gcm_256.iv, \.chacha20_poly1305.iv) }
        public var recordSequence: UInt64 {
            field(\.aes_gcm_128.rec_seq, \.aes_gcm_256.rec_seq, \.chacha20_poly1305.rec_seq)
                .reduce(0) { $0 << 8 | UInt64($1) }
        }

        private func field<A, B, C>(_ a: KeyPath<ctls_crypto_info, A>, _ b: KeyPath<ctls_crypto_info, B>,
                                    _ c: KeyPath<ctls_crypto_info, C>) -> [UInt8] {
            switch Int32(cipherType) {
            case TLS_CIPHER_AES_GCM_128: return withUnsafeBytes(of: raw[keyPath: a]) { Array($0) }
            case TLS_CIPHER_AES_GCM_256: return withUnsafeBytes(of: raw[keyPath: b]) { Array($0) }
            default: return withUnsafeBytes(of: raw[keyPath: c]) { Array($0) }
            }
        }
    }

    /// The key, IV/salt and next record sequence for one direction, or why there are none.
    public static func cryptoInfo(_ session: TLSSession,
                                  _ direction: Direction) -> Result<CryptoInfo, TLSError> {
        var info = CryptoInfo()
        info.length = ctls_ktls_crypto_info(session.ssl, direction == .transmit ? 1 : 0, &info.raw)
        guard info.length > 0 else { return .failure(TLSError(TLSSession.lastErrorReason())) }
        return .success(info)
    }
}
