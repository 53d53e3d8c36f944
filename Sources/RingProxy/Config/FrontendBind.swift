// `bind <address>[,<address>...] [options]`: where a frontend listens, and its TLS settings as
// written. Opening sockets is the engine's Listener's job.

/// One listening address of a bind line.
public struct BindAddress: Sendable, Hashable, CustomStringConvertible {
    /// nil for "all IPv4 addresses" (`*:1883`, `:1883`); otherwise as written (`0.0.0.0`, `::`,
    /// `127.0.0.1`, a host name).
    public var host: String?
    /// One port, or a range such as 1883-1890.
    public var ports: ClosedRange<Int>

    public init(host: String?, ports: ClosedRange<Int>) {
        self.host = host
        self.ports = ports
    }

    public init(host: String?, port: Int) {
        self.init(host: host, ports: port...port)
    }

    /// The first (usually the only) port.
    public var port: Int { ports.lowerBound }

    /// True for every address of a family: `*`, empty, `0.0.0.0` or `::`.
    public var isWildcard: Bool { host == nil || host == "0.0.0.0" || host == "::" }

    public var description: String {
        let portText = ports.count == 1 ? "\(ports.lowerBound)" : "\(ports.lowerBound)-\(ports.upperBound)"
        guard let host else { return "*:\(portText)" }
        return host.contains(":") ? "[\(host)]:\(portText)" : "\(host):\(portText)"
    }
}

/// One `bind` line.
public struct FrontendBind: Sendable, Equatable {
    public var addresses: [BindAddress]
    /// `ssl`: TLS is terminated on this listener.
    public var ssl: Bool = false
    /// `crt` paths as written (several allowed); see GlobalSection.crtBase for relative ones.
    public var certificates: [String] = []
    /// `ca-file`: CAs that sign acceptable client certificates.
    public var caFile: String?
    public var crlFile: String?
    /// `verify`: client certificate verification; HAProxy's default is none.
    public var verify: TLSVerify?
    /// `alpn`: protocol names, in preference order.
    public var alpn: [String] = []
    /// `accept-proxy`: clients send a PROXY protocol header first.
    public var acceptProxy: Bool = false
    public var name: String?
    public var ciphers: String?
    public var ciphersuites: String?
    /// `ssl-min-ver` / `ssl-max-ver` (`force-tlsv12` sets both, as in HAProxy).
    public var sslMinVersion: String?
    public var sslMaxVersion: String?
    /// `no-sslv3`, `no-tlsv10` ... `no-tlsv13`: the versions named ("TLSv1.3").
    public var disabledVersions: Set<String> = []
    /// `curves`, and `ecdhe` (HAProxy's older single-curve form, used when `curves` is absent).
    public var curves: String?
    public var ecdhe: String?
    /// `sigalgs` (the server's signature algorithms), `client-sigalgs` (asked of client
    /// certificates): OpenSSL's list syntax.
    public var sigalgs: String?
    public var clientSigalgs: String?
    /// `tls-tickets` (true) / `no-tls-tickets` (false); nil when the line says neither.
    public var tickets: Bool?
    /// `prefer-client-ciphers`.
    public var preferClientCiphers: Bool = false
    /// `strict-sni` (true) / `no-strict-sni` (false); nil when the line says neither.
    public var strictSNI: Bool?
    public var maxconn: Int?
    public var location: SourceLocation

    public init(addresses: [BindAddress], location: SourceLocation) {
        self.addresses = addresses
        self.location = location
    }

    /// Any TLS setting written on the line (they mean nothing without `ssl`).
    var hasTLSSettings: Bool {
        !certificates.isEmpty || caFile != nil || crlFile != nil || verify != nil || !alpn.isEmpty
            || ciphers != nil || ciphersuites != nil || sslMinVersion != nil || sslMaxVersion != nil
            || !disabledVersions.isEmpty || curves != nil || ecdhe != nil || sigalgs != nil
            || clientSigalgs != nil || tickets != nil || preferClientCiphers || strictSNI != nil
    }
}
