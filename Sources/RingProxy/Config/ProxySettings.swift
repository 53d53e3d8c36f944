// The settings that defaults, frontend, backend and listen sections share and inherit. Every
// field is optional: nil means "this section did not say", so inheritance can tell "unset" from
// "set to the default". Merging lives here; choosing which defaults apply lives in
// ConfigFile+Effective.swift.

/// `mode tcp|http`. HAProxy's default is tcp.
public enum ProxyMode: String, Sendable, CaseIterable {
    case tcp
    case http
}

/// The `option` switches ringproxy acts on. `no option X` stores false.
public struct ProxyOptions: Sendable, Equatable {
    public var tcplog: Bool?
    public var httplog: Bool?
    public var dontlognull: Bool?
    public var redispatch: Bool?
    public var allBackups: Bool?
    /// `option mqtt-connack-redispatch` (a ringproxy extension): a CONNACK that says "try
    /// another server" sends the held CONNECT to the next server instead of to the client.
    public var connackRedispatch: Bool?

    public init(tcplog: Bool? = nil, httplog: Bool? = nil, dontlognull: Bool? = nil, redispatch: Bool? = nil, allBackups: Bool? = nil,
                connackRedispatch: Bool? = nil) {
        self.tcplog = tcplog
        self.httplog = httplog
        self.dontlognull = dontlognull
        self.redispatch = redispatch
        self.allBackups = allBackups
        self.connackRedispatch = connackRedispatch
    }

    /// Each option as set here, else as in `base`.
    public func merged(over base: ProxyOptions) -> ProxyOptions {
        ProxyOptions(
            tcplog: tcplog ?? base.tcplog,
            httplog: httplog ?? base.httplog,
            dontlognull: dontlognull ?? base.dontlognull,
            redispatch: redispatch ?? base.redispatch,
            allBackups: allBackups ?? base.allBackups,
            connackRedispatch: connackRedispatch ?? base.connackRedispatch
        )
    }
}

/// One `log` line of a proxy: `log global`, `log <target> ...`, or `no log`.
public enum LogDirective: Sendable, Equatable {
    /// `log global`: send to the global section's log targets.
    case global(SourceLocation)
    case target(LogTarget)
    /// `no log`: forget the log targets inherited so far.
    case disabled(SourceLocation)
}

/// Settings shared by defaults, frontend, backend and listen sections.
public struct ProxySettings: Sendable, Equatable {
    public var mode: ProxyMode?
    /// The section's own `log` lines, in order (applied on top of what it inherits).
    public var logs: [LogDirective] = []
    public var options = ProxyOptions()
    public var retries: Int?
    public var timeouts = Timeouts()
    public var maxconn: Int?
    public var balance: Balance?
    public var defaultBackend: String?
    /// `default-server` options (several lines merge, later ones win).
    public var defaultServer: ServerOptions?
    /// `tcp-request inspect-delay`, in milliseconds.
    public var inspectDelayMs: Int?
    public var stats: StatsSettings?
    /// `option tcp-check` or `option mqtt-check` (`no option ...` stores .layer4).
    public var healthCheck: HealthCheckOption?
    /// This section's own `tcp-check` lines (a proxy with none uses its defaults section's).
    public var tcpCheckRules: [TCPCheckRule] = []
    /// `option mqtt-websocket [path <p>] [subprotocol required|optional]` (a ringproxy
    /// extension); `no option mqtt-websocket` stores `.off`.
    public var mqttWebSocket: MQTTWebSocketSetting?
    /// `option mqtt-keepalive-timeout [min <t>] [max <t>]` (a ringproxy extension); `no option
    /// mqtt-keepalive-timeout` stores `.off`.
    public var mqttKeepAliveTimeout: MQTTKeepAliveTimeoutSetting?
    /// `unique-id-format`: each connection's unique id (sent in PROXY v2 headers with
    /// `proxy-v2-options unique-id`).
    public var uniqueIDFormat: UniqueIDFormat?
    /// `source <addr>[-<addr>]`: the pool of the backend's servers that name none.
    public var source: SourcePool?

    public init() {}

    /// The settings of a section whose initial values are `base` (its defaults section) and
    /// whose own lines are `self`: every field set here wins, `log` lines apply on top of the
    /// inherited ones, `default-server` and `stats` merge field by field.
    public func merged(over base: ProxySettings) -> ProxySettings {
        var result = ProxySettings()
        result.mode = mode ?? base.mode
        result.logs = base.logs + logs
        result.options = options.merged(over: base.options)
        result.retries = retries ?? base.retries
        result.timeouts = timeouts.merged(over: base.timeouts)
        result.maxconn = maxconn ?? base.maxconn
        result.balance = balance ?? base.balance
        result.defaultBackend = defaultBackend ?? base.defaultBackend
        switch (defaultServer, base.defaultServer) {
        case let (own?, inherited?): result.defaultServer = own.merged(over: inherited)
        case let (own, inherited): result.defaultServer = own ?? inherited
        }
        result.inspectDelayMs = inspectDelayMs ?? base.inspectDelayMs
        result.healthCheck = healthCheck ?? base.healthCheck
        result.tcpCheckRules = tcpCheckRules.isEmpty ? base.tcpCheckRules : tcpCheckRules
        result.mqttWebSocket = mqttWebSocket ?? base.mqttWebSocket
        result.mqttKeepAliveTimeout = mqttKeepAliveTimeout ?? base.mqttKeepAliveTimeout
        result.uniqueIDFormat = uniqueIDFormat ?? base.uniqueIDFormat
        result.source = source ?? base.source
        switch (stats, base.stats) {
        case let (own?, inherited?): result.stats = own.merged(over: inherited)
        case let (own, inherited): result.stats = own ?? inherited
        }
        return result
    }

    /// The log targets these directives lead to, given the global section's targets.
    public func resolvedLogTargets(global: [LogTarget]) -> [LogTarget] {
        var targets: [LogTarget] = []
        for directive in logs {
            switch directive {
            case .global:
                for target in global where !targets.contains(target) { targets.append(target) }
            case .target(let target):
                targets.append(target)
            case .disabled:
                targets.removeAll()
            }
        }
        return targets
    }
}

/// How a backend checks its servers beyond the connect.
public enum HealthCheckOption: String, Sendable, Equatable {
    /// `no option tcp-check` / `no option mqtt-check`: the connect is the check.
    case layer4
    /// `option tcp-check`: the `tcp-check` rules.
    case tcpCheck = "tcp-check"
    /// `option mqtt-check` (a ringproxy extension): CONNECT, expect CONNACK 0, DISCONNECT.
    case mqttCheck = "mqtt-check"
}

/// One `tcp-check` line.
public struct TCPCheckRule: Sendable, Equatable {
    public enum Action: Sendable, Equatable {
        /// `tcp-check connect [port N] [send-proxy]`.
        case connect(port: Int?, sendProxy: Bool)
        /// `tcp-check send <string>` / `send-binary <hex>`.
        case send([UInt8])
        /// `tcp-check expect string <string>` / `expect binary <hex>`.
        case expect([UInt8])
        /// `tcp-check comment <text>`.
        case comment
    }

    public var action: Action
    public var location: SourceLocation

    public init(action: Action, location: SourceLocation) {
        self.action = action
        self.location = location
    }
}

/// `option mqtt-websocket`: the listener answers the WebSocket upgrade itself, reads the MQTT
/// CONNECT from the first frames, routes on it, then replays the upgrade to the chosen server.
public enum MQTTWebSocketSetting: Sendable, Equatable {
    case off
    /// The path the upgrade must ask for (nil: any), and whether the client must offer the
    /// `mqtt` subprotocol (MQTT §6 says it must; default required).
    case on(path: String?, requireSubprotocol: Bool)
}

/// `option mqtt-keepalive-timeout`: a client whose CONNECT gives a keepalive is closed after
/// 1.5 times it without a byte (MQTT 3.1.1 and 5.0 §3.1.2.10), within the bounds; keepalive 0
/// (none) and non-MQTT connections keep `timeout client`.
public enum MQTTKeepAliveTimeoutSetting: Sendable, Equatable {
    case off
    case on(MQTTKeepAliveBounds)
}

/// `min` and `max` of `option mqtt-keepalive-timeout`, in milliseconds; nil: unbounded.
public struct MQTTKeepAliveBounds: Sendable, Equatable {
    public var minMs: Int?
    public var maxMs: Int?

    public init(minMs: Int? = nil, maxMs: Int? = nil) {
        self.minMs = minMs
        self.maxMs = maxMs
    }
}
