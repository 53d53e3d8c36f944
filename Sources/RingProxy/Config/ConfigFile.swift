// The parsed configuration as plain values: sections exactly as written (each keeps only what its
// own lines say, plus where it inherits from). Inherited, ready-to-use values come from
// ConfigFile+Effective.swift. Nothing here reads files or talks to the engine.

/// A whole HAProxy-dialect configuration file.
public struct ConfigFile: Sendable, Equatable {
    public var global: GlobalSection
    /// Every `defaults` section, in file order. Proxies refer to them by index.
    public var defaults: [DefaultsSection]
    /// Every `frontend`, plus the front half of every `listen`, in file order.
    public var frontends: [Frontend]
    /// Every `backend`, plus the back half of every `listen`, in file order.
    public var backends: [Backend]
    /// Things that parsed but that an operator should know about (ignored keywords, missing
    /// timeouts, ...).
    public var warnings: [ConfigDiagnostic]

    public init(
        global: GlobalSection = GlobalSection(),
        defaults: [DefaultsSection] = [],
        frontends: [Frontend] = [],
        backends: [Backend] = [],
        warnings: [ConfigDiagnostic] = []
    ) {
        self.global = global
        self.defaults = defaults
        self.frontends = frontends
        self.backends = backends
        self.warnings = warnings
    }

    public func frontend(named name: String) -> Frontend? {
        frontends.first { $0.name == name }
    }

    public func backend(named name: String) -> Backend? {
        backends.first { $0.name == name }
    }
}

/// The `global` section (several `global` sections are merged, as HAProxy does).
public struct GlobalSection: Sendable, Equatable {
    /// Where the first `global` line is; nil when the file has none.
    public var location: SourceLocation?
    public var logTargets: [LogTarget] = []
    public var maxconn: Int?
    /// `maxsslrate`: new TLS sessions per second for the whole process.
    public var maxSSLRate: Int?
    public var nbthread: Int?
    /// `hard-stop-after`: the longest a stopping or reload-retired configuration lets its
    /// connections finish before aborting them; nil when not set.
    public var hardStopAfterMs: Int?
    /// `tune.bufsize`: the largest first packet (MQTT CONNECT) held while inspecting.
    public var bufsize: Int?
    /// `daemon` was written. ringproxy ignores it (it runs in the foreground), with a warning.
    public var daemon: Bool = false
    /// `crt-base`: the directory relative certificate paths (`crt`) are taken from.
    public var crtBase: String?
    /// `ca-base`: the directory relative CA paths (`ca-file`, `crl-file`) are taken from.
    public var caBase: String?
    /// `stats socket` (one), with `stats timeout` applied; where its line is.
    public var statsSocket: StatsSocketConfig?
    public var statsSocketLocation: SourceLocation?
    /// `stats timeout`: how long an idle stats socket session lasts.
    public var statsTimeoutMs: Int?
    /// `ssl-default-bind-*`: what every `bind ... ssl` line gets unless it says otherwise.
    public var sslDefaultBind = SSLDefaultBind()
    /// `ssl-server-verify`: whether `server ... ssl` lines verify by default (required).
    public var sslServerVerify: TLSVerify?
    /// `ssl-default-server-ciphers`, `-ciphersuites`, `-options` (ssl-min-ver, ssl-max-ver,
    /// no-tls-tickets, no-ssl-reuse): what every `server ... ssl` gets unless it says otherwise.
    public var sslDefaultServer = ServerOptions()
    /// `tune.ssl.cachesize`: sessions each TLS context's cache keeps (0: no cache).
    public var sslCacheEntriesMax: Int?
    /// `tune.ssl.lifetime`: how long a session or ticket can be resumed.
    public var sslLifetimeS: Int?

    public init() {}
}

/// The global `ssl-default-bind-ciphers`, `-ciphersuites`, `-curves`, `-sigalgs`,
/// `-client-sigalgs` and `-options` lines, in a bind line's words.
public struct SSLDefaultBind: Sendable, Equatable {
    public var ciphers: String?
    public var ciphersuites: String?
    public var curves: String?
    public var sigalgs: String?
    public var clientSigalgs: String?
    /// `ssl-default-bind-options` values.
    public var sslMinVersion: String?
    public var sslMaxVersion: String?
    public var disabledVersions: Set<String> = []
    public var noTLSTickets: Bool = false
    public var preferClientCiphers: Bool = false
    public var strictSNI: Bool = false
    /// Where `ssl-default-bind-options` was (for messages about a bind it applies to).
    public var optionsLocation: SourceLocation?

    public init() {}
}

/// A `defaults` section: settings presets for the proxies declared after it.
public struct DefaultsSection: Sendable, Equatable {
    public var name: String?
    public var location: SourceLocation
    /// `defaults NAME from OTHER`: the index (in ConfigFile.defaults) of OTHER. A defaults section
    /// without `from` starts from HAProxy's documented defaults, not from the previous one.
    public var parentIndex: Int?
    public var settings: ProxySettings

    public init(name: String?, location: SourceLocation, parentIndex: Int? = nil, settings: ProxySettings = ProxySettings()) {
        self.name = name
        self.location = location
        self.parentIndex = parentIndex
        self.settings = settings
    }
}

/// A `frontend` (or the front half of a `listen`): where clients connect and how a backend is
/// chosen.
public struct Frontend: Sendable, Equatable {
    public var name: String
    public var location: SourceLocation
    /// True when this came from a `listen` section (a Backend of the same name exists too).
    public var isListen: Bool
    /// The defaults section (index in ConfigFile.defaults) this proxy takes its initial settings
    /// from: the one named by `from`, else the last one above it; nil when there is none.
    public var defaultsIndex: Int?
    /// Only what this section's own lines set.
    public var settings: ProxySettings
    public var binds: [FrontendBind]
    public var useBackendRules: [UseBackendRule]
    public var tcpRequestRules: [TCPRequestRule]
    public var acls: [ACLDefinition]
    /// The section's own `stick-table` (a listen's is its backend half's too), which its
    /// `track-sc0` rules use when they name no other.
    public var stickTable: StickTableSettings?

    public init(
        name: String, location: SourceLocation, isListen: Bool = false, defaultsIndex: Int? = nil,
        settings: ProxySettings = ProxySettings(), binds: [FrontendBind] = [],
        useBackendRules: [UseBackendRule] = [], tcpRequestRules: [TCPRequestRule] = [],
        acls: [ACLDefinition] = [], stickTable: StickTableSettings? = nil
    ) {
        self.name = name
        self.location = location
        self.isListen = isListen
        self.defaultsIndex = defaultsIndex
        self.settings = settings
        self.binds = binds
        self.useBackendRules = useBackendRules
        self.tcpRequestRules = tcpRequestRules
        self.acls = acls
        self.stickTable = stickTable
    }

    /// `default_backend` as written in this section (a `listen` names itself). The inherited
    /// value is `ConfigFile.effectiveFrontend(named:)?.defaultBackend`.
    public var defaultBackend: String? {
        get { settings.defaultBackend }
        set { settings.defaultBackend = newValue }
    }
}

/// A `backend` (or the back half of a `listen`): the servers and how one is chosen.
public struct Backend: Sendable, Equatable {
    public var name: String
    public var location: SourceLocation
    public var isListen: Bool
    public var defaultsIndex: Int?
    /// Only what this section's own lines set.
    public var settings: ProxySettings
    public var servers: [BackendServer]
    public var stickTable: StickTableSettings?
    public var stickRules: [StickRule]
    public var tcpRequestRules: [TCPRequestRule]
    public var acls: [ACLDefinition]

    public init(
        name: String, location: SourceLocation, isListen: Bool = false, defaultsIndex: Int? = nil,
        settings: ProxySettings = ProxySettings(), servers: [BackendServer] = [],
        stickTable: StickTableSettings? = nil, stickRules: [StickRule] = [],
        tcpRequestRules: [TCPRequestRule] = [], acls: [ACLDefinition] = []
    ) {
        self.name = name
        self.location = location
        self.isListen = isListen
        self.defaultsIndex = defaultsIndex
        self.settings = settings
        self.servers = servers
        self.stickTable = stickTable
        self.stickRules = stickRules
        self.tcpRequestRules = tcpRequestRules
        self.acls = acls
    }

    public func server(named name: String) -> BackendServer? {
        servers.first { $0.name == name }
    }
}
