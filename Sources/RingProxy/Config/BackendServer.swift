// `server <name> <address>:<port> [options]` and `default-server [options]`: the values as
// written. Options are optional so that `default-server` lines and servers can be layered;
// EffectiveServer (ConfigFile+Effective.swift) applies HAProxy's defaults.

/// A host (IPv4, IPv6 or DNS name) and a TCP port.
public struct ServerAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `host:port`, with brackets around an IPv6 host.
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// TLS peer verification: `verify none|optional|required`.
public enum TLSVerify: String, Sendable, CaseIterable {
    case none
    case optional
    case required
}

/// Which PROXY protocol header ringproxy sends to a server.
public enum ProxyProtocolVersion: Int, Sendable {
    case v1 = 1
    case v2 = 2
}

/// Server options; nil means "not said here". `no-<option>` stores false.
public struct ServerOptions: Sendable, Equatable {
    public var check: Bool?
    public var interMs: Int?
    public var fastinterMs: Int?
    public var downinterMs: Int?
    public var rise: Int?
    public var fall: Int?
    public var weight: Int?
    public var backup: Bool?
    /// `send-proxy`: PROXY protocol v1 header on connections to the server.
    public var sendProxy: Bool?
    /// `send-proxy-v2`: PROXY protocol v2 header.
    public var sendProxyV2: Bool?
    /// `check-send-proxy`: health checks send the PROXY header too.
    public var checkSendProxy: Bool?
    /// `send-proxy-v2-ssl` / `send-proxy-v2-ssl-cn`: a v2 header with the client's TLS details.
    public var sendProxyV2SSL: Bool?
    public var sendProxyV2SSLCN: Bool?
    /// `proxy-v2-options`: the TLVs to add to a v2 header, as written (names checked).
    public var proxyV2Options: [String]?
    public var maxconn: Int?
    public var maxqueue: Int?
    public var disabled: Bool?
    public var ssl: Bool?
    public var verify: TLSVerify?
    public var sni: String?
    public var caFile: String?
    public var crt: String?
    public var alpn: [String]?
    /// TLS towards the server: `ssl-min-ver`, `ssl-max-ver`, `ciphers`, `ciphersuites`,
    /// `crl-file`, `verifyhost`, `no-ssl-reuse`, `no-tls-tickets`.
    public var sslMinVersion: TLSProtocolVersion?
    public var sslMaxVersion: TLSProtocolVersion?
    public var ciphers: String?
    public var ciphersuites: String?
    public var crlFile: String?
    public var verifyHost: String?
    public var sslReuse: Bool?
    public var tlsTickets: Bool?
    /// `port`: the port health checks connect to, when not the service port.
    public var checkPort: Int?
    public var slowstartMs: Int?
    /// `id`: the server's numeric identifier (stick tables shared between backends match on it).
    public var id: Int?
    /// `addr`: the address health checks connect to, when not the server's.
    public var checkAddress: String?
    /// `observe layer4`, `error-limit`, `on-error`.
    public var observeLayer4: Bool?
    public var errorLimit: Int?
    public var onError: OnErrorAction?
    /// `on-marked-down shutdown-sessions`, `on-marked-up shutdown-backup-sessions`.
    public var shutdownSessionsOnDown: Bool?
    public var shutdownBackupSessionsOnUp: Bool?
    /// `source <addr>[-<addr>]`: the local addresses its connections leave from.
    public var source: SourcePool?

    public init() {}

    /// Each option as set here, else as in `base` (a server over its default-server).
    public func merged(over base: ServerOptions) -> ServerOptions {
        var result = ServerOptions()
        result.check = check ?? base.check
        result.interMs = interMs ?? base.interMs
        result.fastinterMs = fastinterMs ?? base.fastinterMs
        result.downinterMs = downinterMs ?? base.downinterMs
        result.rise = rise ?? base.rise
        result.fall = fall ?? base.fall
        result.weight = weight ?? base.weight
        result.backup = backup ?? base.backup
        result.sendProxy = sendProxy ?? base.sendProxy
        result.sendProxyV2 = sendProxyV2 ?? base.sendProxyV2
        result.checkSendProxy = checkSendProxy ?? base.checkSendProxy
        result.sendProxyV2SSL = sendProxyV2SSL ?? base.sendProxyV2SSL
        result.sendProxyV2SSLCN = sendProxyV2SSLCN ?? base.sendProxyV2SSLCN
        result.proxyV2Options = proxyV2Options ?? base.proxyV2Options
        result.maxconn = maxconn ?? base.maxconn
        result.maxqueue = maxqueue ?? base.maxqueue
        result.disabled = disabled ?? base.disabled
        result.ssl = ssl ?? base.ssl
        result.verify = verify ?? base.verify
        result.sni = sni ?? base.sni
        result.caFile = caFile ?? base.caFile
        result.crt = crt ?? base.crt
        result.alpn = alpn ?? base.alpn
        result.sslMinVersion = sslMinVersion ?? base.sslMinVersion
        result.sslMaxVersion = sslMaxVersion ?? base.sslMaxVersion
        result.ciphers = ciphers ?? base.ciphers
        result.ciphersuites = ciphersuites ?? base.ciphersuites
        result.crlFile = crlFile ?? base.crlFile
        result.verifyHost = verifyHost ?? base.verifyHost
        result.sslReuse = sslReuse ?? base.sslReuse
        result.tlsTickets = tlsTickets ?? base.tlsTickets
        result.checkPort = checkPort ?? base.checkPort
        result.slowstartMs = slowstartMs ?? base.slowstartMs
        result.id = id ?? base.id
        result.checkAddress = checkAddress ?? base.checkAddress
        result.observeLayer4 = observeLayer4 ?? base.observeLayer4
        result.errorLimit = errorLimit ?? base.errorLimit
        result.onError = onError ?? base.onError
        result.shutdownSessionsOnDown = shutdownSessionsOnDown ?? base.shutdownSessionsOnDown
        result.shutdownBackupSessionsOnUp = shutdownBackupSessionsOnUp ?? base.shutdownBackupSessionsOnUp
        result.source = source ?? base.source
        return result
    }
}

/// One `server` line.
public struct BackendServer: Sendable, Equatable {
    public var name: String
    public var address: ServerAddress
    /// Only the options written on this line (see EffectiveServer for the inherited ones).
    public var options: ServerOptions
    /// The `default-server` lines of the same section that come before this server, merged. As
    /// in HAProxy, a `default-server` line only applies to the servers declared after it.
    public var precedingDefaultServer: ServerOptions
    public var location: SourceLocation

    public init(
        name: String, address: ServerAddress, options: ServerOptions = ServerOptions(),
        precedingDefaultServer: ServerOptions = ServerOptions(), location: SourceLocation
    ) {
        self.name = name
        self.address = address
        self.options = options
        self.precedingDefaultServer = precedingDefaultServer
        self.location = location
    }
}
