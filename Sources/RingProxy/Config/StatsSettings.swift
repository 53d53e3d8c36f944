// The `stats` keywords of a proxy: the HTTP statistics page. Only values; serving the page is
// the Admin subsystem's job (EngineConfig+Stats.swift maps these to a StatsPageConfig).

/// One `stats auth user:password` line.
public struct StatsCredential: Sendable, Equatable {
    public var user: String
    public var password: String

    public init(user: String, password: String) {
        self.user = user
        self.password = password
    }
}

/// One `stats <keyword>` line of a proxy section, kept so that each can be answered at its line.
public struct StatsLine: Sendable, Equatable {
    /// The two words: `stats uri`, `stats admin`.
    public var keyword: String
    public var location: SourceLocation
    /// The words after the keyword, for the lines the parser keeps unread (`stats admin if TRUE`).
    public var arguments: [String]

    public init(keyword: String, location: SourceLocation, arguments: [String] = []) {
        self.keyword = keyword
        self.location = location
        self.arguments = arguments
    }
}

/// The statistics page settings of a proxy (fields nil when the section did not set them).
public struct StatsSettings: Sendable, Equatable {
    /// `stats enable` was written; nil when unset.
    public var enabled: Bool?
    /// `stats uri`: the path prefix the page answers on (HAProxy's default is /haproxy?stats).
    public var uri: String?
    /// `stats refresh`, in milliseconds.
    public var refreshMs: Int?
    /// `stats realm`: the HTTP basic-auth realm.
    public var realm: String?
    public var credentials: [StatsCredential] = []
    /// `stats hide-version`.
    public var hideVersion: Bool?
    /// Where the first `stats` line of the section is.
    public var location: SourceLocation?
    /// Every `stats` line, in order, inherited ones first; also the keywords whose arguments
    /// ringproxy does not read (`stats admin`, `stats scope`, `stats show-node` ...).
    public var lines: [StatsLine]

    /// HAProxy's compiled-in default URI.
    public static let defaultURI = "/haproxy?stats"

    public init(
        enabled: Bool? = nil, uri: String? = nil, refreshMs: Int? = nil, realm: String? = nil,
        credentials: [StatsCredential] = [], hideVersion: Bool? = nil, location: SourceLocation? = nil,
        lines: [StatsLine] = []
    ) {
        self.enabled = enabled
        self.uri = uri
        self.refreshMs = refreshMs
        self.realm = realm
        self.credentials = credentials
        self.hideVersion = hideVersion
        self.location = location
        self.lines = lines
    }

    /// Whether the page is on: `stats enable`, or any other `stats` line (`uri`, `realm`,
    /// `auth`, `refresh`, `hide-version`, `admin`, `scope`, `show-*`), each of which HAProxy
    /// documents as enough to enable it.
    public var isEnabled: Bool {
        enabled ?? (!lines.isEmpty || uri != nil || realm != nil || !credentials.isEmpty || refreshMs != nil || hideVersion != nil)
    }

    /// The URI the page answers on.
    public var effectiveURI: String { uri ?? Self.defaultURI }

    /// Fields set here win; credentials add to the inherited ones.
    public func merged(over base: StatsSettings) -> StatsSettings {
        StatsSettings(
            enabled: enabled ?? base.enabled,
            uri: uri ?? base.uri,
            refreshMs: refreshMs ?? base.refreshMs,
            realm: realm ?? base.realm,
            credentials: base.credentials + credentials,
            hideVersion: hideVersion ?? base.hideVersion,
            location: location ?? base.location,
            lines: base.lines + lines
        )
    }
}
