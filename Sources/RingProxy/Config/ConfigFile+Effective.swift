// The values a frontend, backend or server actually runs with: a section's own lines over the
// defaults section it inherits from (itself possibly `from` another), `log global` resolved to
// the global targets, `default-server` under each server, HAProxy's documented defaults for what
// nobody set, and certificate paths under crt-base/ca-base. Consumers read these and never need
// to know about defaults sections.

/// A frontend with everything inherited applied.
public struct EffectiveFrontend: Sendable, Equatable {
    public var name: String
    public var location: SourceLocation
    public var isListen: Bool
    /// `mode`, tcp when nobody set it.
    public var mode: ProxyMode
    /// nil when neither the frontend nor its defaults set one (the global maxconn then limits).
    public var maxconn: Int?
    public var timeouts: Timeouts
    public var logTargets: [LogTarget]
    public var tcplog: Bool
    public var httplog: Bool
    public var dontlognull: Bool
    /// Certificate and CA paths resolved against crt-base and ca-base.
    public var binds: [FrontendBind]
    public var defaultBackend: String?
    public var useBackendRules: [UseBackendRule]
    public var tcpRequestRules: [TCPRequestRule]
    /// `tcp-request inspect-delay`, milliseconds; nil when not set.
    public var inspectDelayMs: Int?
    /// `option mqtt-websocket` (ringproxy extension); nil or `.off` when not set.
    public var mqttWebSocket: MQTTWebSocketSetting?
    /// `option mqtt-keepalive-timeout` (ringproxy extension); nil when off.
    public var mqttKeepAliveTimeout: MQTTKeepAliveBounds?
    public var uniqueIDFormat: UniqueIDFormat?
    /// The statistics page, when enabled.
    public var stats: StatsSettings?
    public var acls: [ACLDefinition]
    /// The section's own `stick-table`.
    public var stickTable: StickTableSettings?
}

/// A backend with everything inherited applied.
public struct EffectiveBackend: Sendable, Equatable {
    public var name: String
    public var location: SourceLocation
    public var isListen: Bool
    public var mode: ProxyMode
    /// `balance`, roundrobin when nobody set it.
    public var balance: Balance
    /// `retries`, 3 when nobody set it.
    public var retries: Int
    public var redispatch: Bool
    /// `option allbackups`.
    public var allBackups: Bool
    /// `option mqtt-connack-redispatch` (a ringproxy extension).
    public var connackRedispatch: Bool = false
    /// `option tcp-check` / `option mqtt-check`; nil: layer 4 checks.
    public var healthCheck: HealthCheckOption?
    /// The `tcp-check` rules in force: the backend's own, else its defaults section's.
    public var tcpCheckRules: [TCPCheckRule]
    public var timeouts: Timeouts
    public var logTargets: [LogTarget]
    public var servers: [EffectiveServer]
    public var stickTable: StickTableSettings?
    public var stickRules: [StickRule]
    public var tcpRequestRules: [TCPRequestRule]
    public var inspectDelayMs: Int?
    /// The statistics page, when enabled (HAProxy serves it from a backend too).
    public var stats: StatsSettings?
    public var acls: [ACLDefinition]
}

/// A server with the `default-server` lines above it (its backend's, then its defaults
/// section's) and HAProxy's defaults applied.
public struct EffectiveServer: Sendable, Equatable {
    /// HAProxy's defaults for what no line sets.
    public static let defaultInterMs = 2000
    public static let defaultRise = 2
    public static let defaultFall = 3
    public static let defaultWeight = 1

    public var name: String
    public var address: ServerAddress
    public var location: SourceLocation
    public var check: Bool
    public var interMs: Int
    /// Interval while a server is going up or down; `inter` when not set.
    public var fastinterMs: Int
    /// Interval while a server is down; `inter` when not set.
    public var downinterMs: Int
    public var rise: Int
    public var fall: Int
    public var weight: Int
    public var backup: Bool
    /// The PROXY protocol header to send: v2 wins when both `send-proxy` and `send-proxy-v2`
    /// (`send-proxy-v2-ssl` and `send-proxy-v2-ssl-cn` imply v2, as in HAProxy).
    public var sendProxy: ProxyProtocolVersion?
    public var checkSendProxy: Bool
    public var sendProxyV2SSL: Bool
    public var sendProxyV2SSLCN: Bool
    public var proxyV2Options: [String]
    public var maxconn: Int?
    public var maxqueue: Int?
    public var disabled: Bool
    public var ssl: Bool
    /// HAProxy verifies server certificates unless told `verify none`.
    public var verify: TLSVerify
    public var sni: String?
    public var caFile: String?
    public var crt: String?
    public var alpn: [String]
    /// `ssl` and its settings; nil for a plain server.
    public var tls: ServerTLSConfig?
    public var checkPort: Int?
    public var slowstartMs: Int?
    public var id: Int?
    public var checkAddress: String?
    /// `observe layer4` with its `error-limit` (10) and `on-error` (fastinter) defaults.
    public var observe: ObserveConfig?
    public var shutdownSessionsOnDown: Bool
    public var shutdownBackupSessionsOnUp: Bool
    /// `source`: its own or a `default-server`'s, else its backend's (or defaults section's).
    public var source: SourcePool?

    /// `inherited` is the `default-server` of the defaults section the backend inherits from;
    /// `proxySource` the backend's `source`.
    public init(_ server: BackendServer, inherited: ServerOptions?, proxySource: SourcePool? = nil, global: GlobalSection) {
        let defaults = inherited.map { server.precedingDefaultServer.merged(over: $0) } ?? server.precedingDefaultServer
        let options = server.options.merged(over: defaults)
        name = server.name
        address = server.address
        location = server.location
        check = options.check ?? false
        interMs = options.interMs ?? Self.defaultInterMs
        fastinterMs = options.fastinterMs ?? interMs
        downinterMs = options.downinterMs ?? interMs
        rise = options.rise ?? Self.defaultRise
        fall = options.fall ?? Self.defaultFall
        weight = options.weight ?? Self.defaultWeight
        backup = options.backup ?? false
        sendProxyV2SSL = options.sendProxyV2SSL ?? false
        sendProxyV2SSLCN = options.sendProxyV2SSLCN ?? false
        proxyV2Options = options.proxyV2Options ?? []
        if options.sendProxyV2 == true || sendProxyV2SSL || sendProxyV2SSLCN {
            sendProxy = .v2
        } else if options.sendProxy == true {
            sendProxy = .v1
        } else {
            sendProxy = nil
        }
        checkSendProxy = options.checkSendProxy ?? false
        maxconn = options.maxconn
        maxqueue = options.maxqueue
        disabled = options.disabled ?? false
        ssl = options.ssl ?? false
        verify = options.verify ?? global.sslServerVerify ?? .required
        sni = options.sni
        caFile = options.caFile.map(global.resolvedCAPath)
        crt = options.crt.map(global.resolvedCertificatePath)
        alpn = options.alpn ?? []
        tls = ssl ? Self.tls(options.merged(over: global.sslDefaultServer), global: global) : nil
        checkPort = options.checkPort
        slowstartMs = options.slowstartMs
        id = options.id
        checkAddress = options.checkAddress
        observe = options.observeLayer4 == true
            ? ObserveConfig(errorLimit: options.errorLimit ?? 10, onError: options.onError ?? .fastinter) : nil
        shutdownSessionsOnDown = options.shutdownSessionsOnDown ?? false
        shutdownBackupSessionsOnUp = options.shutdownBackupSessionsOnUp ?? false
        source = options.source ?? proxySource
    }
}

extension EffectiveServer {
    /// A `server ... ssl` line's TLS settings: its options (over default-server), then the
    /// global `ssl-default-server-*`, then `ssl-server-verify` (HAProxy verifies by default).
    static func tls(_ options: ServerOptions, global: GlobalSection) -> ServerTLSConfig {
        var tls = ServerTLSConfig()
        tls.verify = options.verify ?? global.sslServerVerify ?? .required
        tls.caFile = options.caFile.map(global.resolvedCAPath)
        tls.crlFile = options.crlFile.map(global.resolvedCAPath)
        tls.certificate = options.crt.map(global.resolvedCertificatePath)
        tls.sni = options.sni.flatMap(ServerSNI.init(expression:))
        tls.verifyHost = options.verifyHost
        tls.alpn = options.alpn ?? []
        tls.minVersion = options.sslMinVersion ?? .tls12
        tls.maxVersion = options.sslMaxVersion
        tls.ciphers = options.ciphers
        tls.ciphersuites = options.ciphersuites
        tls.reusesSessions = options.sslReuse ?? true
        tls.tickets = options.tlsTickets ?? true
        return tls
    }
}

extension GlobalSection {
    /// `path` under crt-base when it is relative and crt-base is set.
    public func resolvedCertificatePath(_ path: String) -> String {
        Self.resolve(path, base: crtBase)
    }

    /// `path` under ca-base when it is relative and ca-base is set.
    public func resolvedCAPath(_ path: String) -> String {
        Self.resolve(path, base: caBase)
    }

    private static func resolve(_ path: String, base: String?) -> String {
        guard let base, !base.isEmpty, !path.hasPrefix("/") else { return path }
        return base.hasSuffix("/") ? base + path : base + "/" + path
    }
}

extension ConfigFile {
    /// The settings a defaults section hands on: its own over the one it is `from`, if any.
    public func effectiveDefaults(at index: Int) -> ProxySettings {
        var chain: [Int] = []
        var current: Int? = index
        while let position = current, defaults.indices.contains(position), !chain.contains(position) {
            chain.append(position)
            current = defaults[position].parentIndex
        }
        return chain.reversed().reduce(ProxySettings()) { inherited, position in
            defaults[position].settings.merged(over: inherited)
        }
    }

    /// The initial settings of a proxy that inherits from defaults section `index` (none: nil).
    public func inheritedSettings(defaultsIndex index: Int?) -> ProxySettings {
        index.map(effectiveDefaults(at:)) ?? ProxySettings()
    }

    public var effectiveFrontends: [EffectiveFrontend] { frontends.map(effective) }
    public var effectiveBackends: [EffectiveBackend] { backends.map(effective) }

    public func effectiveFrontend(named name: String) -> EffectiveFrontend? {
        frontend(named: name).map(effective)
    }

    public func effectiveBackend(named name: String) -> EffectiveBackend? {
        backend(named: name).map(effective)
    }

    public func effective(_ frontend: Frontend) -> EffectiveFrontend {
        let settings = frontend.settings.merged(over: inheritedSettings(defaultsIndex: frontend.defaultsIndex))
        let binds = frontend.binds.map { bind -> FrontendBind in
            var resolved = bind
            resolved.certificates = bind.certificates.map(global.resolvedCertificatePath)
            resolved.caFile = bind.caFile.map(global.resolvedCAPath)
            resolved.crlFile = bind.crlFile.map(global.resolvedCAPath)
            return resolved
        }
        return EffectiveFrontend(
            name: frontend.name,
            location: frontend.location,
            isListen: frontend.isListen,
            mode: settings.mode ?? .tcp,
            maxconn: settings.maxconn,
            timeouts: settings.timeouts,
            logTargets: settings.resolvedLogTargets(global: global.logTargets),
            tcplog: settings.options.tcplog ?? false,
            httplog: settings.options.httplog ?? false,
            dontlognull: settings.options.dontlognull ?? false,
            binds: binds,
            defaultBackend: settings.defaultBackend,
            useBackendRules: frontend.useBackendRules,
            tcpRequestRules: frontend.tcpRequestRules,
            inspectDelayMs: settings.inspectDelayMs,
            mqttWebSocket: settings.mqttWebSocket,
            mqttKeepAliveTimeout: { if case .on(let bounds)? = settings.mqttKeepAliveTimeout { return bounds } else { return nil } }(),
            uniqueIDFormat: settings.uniqueIDFormat,
            stats: settings.stats.flatMap { $0.isEnabled ? $0 : nil },
            acls: frontend.acls,
            stickTable: frontend.stickTable)
    }

    public func effective(_ backend: Backend) -> EffectiveBackend {
        let inherited = inheritedSettings(defaultsIndex: backend.defaultsIndex)
        let settings = backend.settings.merged(over: inherited)
        return EffectiveBackend(
            name: backend.name,
            location: backend.location,
            isListen: backend.isListen,
            mode: settings.mode ?? .tcp,
            balance: settings.balance ?? .default,
            retries: settings.retries ?? 3,
            redispatch: settings.options.redispatch ?? false,
            allBackups: settings.options.allBackups ?? false,
            connackRedispatch: settings.options.connackRedispatch ?? false,
            healthCheck: settings.healthCheck,
            tcpCheckRules: backend.settings.tcpCheckRules.isEmpty ? inherited.tcpCheckRules : backend.settings.tcpCheckRules,
            timeouts: settings.timeouts,
            logTargets: settings.resolvedLogTargets(global: global.logTargets),
            servers: backend.servers.map { EffectiveServer($0, inherited: inherited.defaultServer, proxySource: settings.source, global: global) },
            stickTable: backend.stickTable,
            stickRules: backend.stickRules,
            tcpRequestRules: backend.tcpRequestRules,
            inspectDelayMs: settings.inspectDelayMs,
            stats: settings.stats.flatMap { $0.isEnabled ? $0 : nil },
            acls: backend.acls)
    }
}
