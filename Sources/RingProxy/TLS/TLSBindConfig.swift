// What a `bind ... ssl` line (and the global `ssl-default-bind-*` keywords) ask of TLS, as plain
// values in HAProxy's words. Nothing here touches OpenSSL or a file: TLSContext does, at
// start-up and reload.

/// A TLS protocol version as HAProxy spells it in `ssl-min-ver` / `ssl-max-ver`.
public enum TLSProtocolVersion: String, CaseIterable, Sendable {
    case tls10 = "TLSv1.0"
    case tls11 = "TLSv1.1"
    case tls12 = "TLSv1.2"
    case tls13 = "TLSv1.3"

    /// The version's number on the wire (RFC 8446 §4.1.2 legacy_version values).
    var wireValue: Int32 {
        switch self {
        case .tls10: return 0x0301
        case .tls11: return 0x0302
        case .tls12: return 0x0303
        case .tls13: return 0x0304
        }
    }
}

/// The TLS settings of one `bind` line.
public struct TLSBindConfig: Equatable, Sendable {
    /// `crt`: PEM files holding certificate, chain and private key, or directories of such
    /// files (read in name order). The first certificate is the default; with several, SNI
    /// chooses by CN or SAN.
    public var certificatePaths: [String]
    /// `ca-file`: the CAs client certificates must chain to.
    public var caFile: String?
    /// `crl-file`: revoked client certificates (checked for the leaf).
    public var crlFile: String?
    /// `verify` (TLSVerify is the config model's: optional asks for a certificate and checks
    /// the one that comes; required refuses a connection without a valid one).
    public var verify: TLSVerify = .none
    /// `ssl-min-ver` / `ssl-max-ver`; nil leaves OpenSSL's bound (TLS 1.2 floor here, as
    /// HAProxy's default).
    public var minVersion: TLSProtocolVersion? = .tls12
    public var maxVersion: TLSProtocolVersion?
    /// `ciphers` (TLS 1.2 and below) and `ciphersuites` (TLS 1.3), OpenSSL's list syntax.
    public var ciphers: String?
    public var ciphersuites: String?
    /// `curves` (or `ecdhe`): key exchange groups, "X25519:P-256".
    public var curves: String?
    /// `sigalgs`: the signature algorithms the server signs with; `client-sigalgs`: those it
    /// accepts from client certificates. OpenSSL's list syntax ("ECDSA+SHA256:RSA-PSS+SHA256").
    public var sigalgs: String?
    public var clientSigalgs: String?
    /// `prefer-client-ciphers`: the client's order of ciphers wins (default: the server's).
    public var preferClientCiphers: Bool = false
    /// `strict-sni`: a handshake without SNI, or whose SNI matches no certificate, is refused
    /// (unrecognized_name) instead of getting the default certificate.
    public var strictSNI: Bool = false
    /// `alpn`: protocols in the server's order of preference.
    public var alpn: [String] = []
    /// Session tickets (`no-tls-tickets` turns them off).
    public var tickets: Bool = true
    /// `tune.ssl.cachesize`: sessions the context's cache keeps; 0 = no cache.
    public var sessionCacheEntriesMax: Int = 20_000
    /// `tune.ssl.lifetime`: how long a session or ticket can be resumed.
    public var sessionLifetimeS: Int = 300
    /// `SSL_MODE_RELEASE_BUFFERS`: an idle connection gives its record buffers back (see the
    /// README for the bytes it saves and the allocation per record it costs).
    public var releasesBuffers: Bool = true
    /// Keep the TLS 1.3 traffic secrets for the kTLS hand-off (only when the probe found kTLS).
    public var keepsTrafficSecrets: Bool = false

    public init(certificatePaths: [String]) {
        self.certificatePaths = certificatePaths
    }
}
