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
    public var sslMinVersion: String?
    public var sslMaxVersion: String?
    public var maxconn: Int?
    public var location: SourceLocation

    public init(addresses: [BindAddress], location: SourceLocation) {
        self.addresses = addresses
        self.location = location
    }
}
