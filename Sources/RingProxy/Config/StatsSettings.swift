// The `stats` keywords of a proxy: the HTTP statistics page. Only values; serving the page is
// the Stats subsystem's job.

/// One `stats auth user:password` line.
public struct StatsCredential: Sendable, Equatable {
    public var user: String
    public var password: String

    public init(user: String, password: String) {
        self.user = user
        self.password = password
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

    /// HAProxy's compiled-in default URI.
    public static let defaultURI = "/haproxy?stats"

    public init(
        enabled: Bool? = nil, uri: String? = nil, refreshMs: Int? = nil, realm: String? = nil,
        credentials: [StatsCredential] = [], hideVersion: Bool? = nil, location: SourceLocation? = nil
    ) {
        self.enabled = enabled
        self.uri = uri
        self.refreshMs = refreshMs
        self.realm = realm
        self.credentials = credentials
        self.hideVersion = hideVersion
        self.location = location
    }

    /// Whether the page is on: `stats enable`, or any of `stats uri|realm|auth|refresh`, which
    /// HAProxy documents as enough to enable it.
    public var isEnabled: Bool {
        enabled ?? (uri != nil || realm != nil || !credentials.isEmpty || refreshMs != nil)
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
            location: location ?? base.location
        )
    }
}
