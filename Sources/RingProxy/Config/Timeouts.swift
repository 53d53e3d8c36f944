// `timeout <kind> <time>`: the kinds ringproxy knows and the values a section set, in
// milliseconds. Parsing the time text is ConfigUnits' job; which kinds belong in which section is
// ConfigKeywords'.

/// A `timeout` kind, spelled as in HAProxy.
public enum Timeout: String, Sendable, CaseIterable {
    case connect
    case client
    case server
    case check
    case tunnel
    case clientFin = "client-fin"
    case serverFin = "server-fin"
    case queue
    case httpRequest = "http-request"
    case httpKeepAlive = "http-keep-alive"

    /// The keyword as written in a configuration: `timeout client-fin`.
    public var keyword: String { "timeout \(rawValue)" }
}

/// Timeouts in milliseconds; nil when unset.
public struct Timeouts: Sendable, Equatable {
    public var connectMs: Int?
    public var clientMs: Int?
    public var serverMs: Int?
    public var checkMs: Int?
    public var tunnelMs: Int?
    public var clientFinMs: Int?
    public var serverFinMs: Int?
    public var queueMs: Int?
    public var httpRequestMs: Int?
    public var httpKeepAliveMs: Int?

    public init(
        connectMs: Int? = nil, clientMs: Int? = nil, serverMs: Int? = nil, checkMs: Int? = nil,
        tunnelMs: Int? = nil, clientFinMs: Int? = nil, serverFinMs: Int? = nil, queueMs: Int? = nil,
        httpRequestMs: Int? = nil, httpKeepAliveMs: Int? = nil
    ) {
        self.connectMs = connectMs
        self.clientMs = clientMs
        self.serverMs = serverMs
        self.checkMs = checkMs
        self.tunnelMs = tunnelMs
        self.clientFinMs = clientFinMs
        self.serverFinMs = serverFinMs
        self.queueMs = queueMs
        self.httpRequestMs = httpRequestMs
        self.httpKeepAliveMs = httpKeepAliveMs
    }

    /// The value of one kind, in milliseconds.
    public subscript(kind: Timeout) -> Int? {
        get {
            switch kind {
            case .connect: return connectMs
            case .client: return clientMs
            case .server: return serverMs
            case .check: return checkMs
            case .tunnel: return tunnelMs
            case .clientFin: return clientFinMs
            case .serverFin: return serverFinMs
            case .queue: return queueMs
            case .httpRequest: return httpRequestMs
            case .httpKeepAlive: return httpKeepAliveMs
            }
        }
        set {
            switch kind {
            case .connect: connectMs = newValue
            case .client: clientMs = newValue
            case .server: serverMs = newValue
            case .check: checkMs = newValue
            case .tunnel: tunnelMs = newValue
            case .clientFin: clientFinMs = newValue
            case .serverFin: serverFinMs = newValue
            case .queue: queueMs = newValue
            case .httpRequest: httpRequestMs = newValue
            case .httpKeepAlive: httpKeepAliveMs = newValue
            }
        }
    }

    /// Each timeout as set here, else as in `base`.
    public func merged(over base: Timeouts) -> Timeouts {
        var result = Timeouts()
        for kind in Timeout.allCases {
            result[kind] = self[kind] ?? base[kind]
        }
        return result
    }
}
