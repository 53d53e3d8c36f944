// Which keywords exist, in which sections they belong (HAProxy's proxy keywords matrix,
// configuration.txt §4.1), and which ones ringproxy accepts, ignores with a warning, or refuses.
// Also the "did you mean" search. Data and lookups only; no parsing.

/// The kinds of section a line can be in.
enum SectionKind: String, CaseIterable {
    case global
    case defaults
    case frontend
    case backend
    case listen

    /// The columns of HAProxy's matrix this section has: a listen is both a frontend and a
    /// backend.
    var columns: ProxyColumns {
        switch self {
        case .global: return []
        case .defaults: return .defaults
        case .frontend: return .frontend
        case .backend: return .backend
        case .listen: return [.frontend, .backend]
        }
    }
}

/// Columns of HAProxy's proxy keywords matrix.
struct ProxyColumns: OptionSet {
    let rawValue: Int
    static let defaults = ProxyColumns(rawValue: 1)
    static let frontend = ProxyColumns(rawValue: 2)
    static let backend = ProxyColumns(rawValue: 4)
    static let all: ProxyColumns = [.defaults, .frontend, .backend]
}

/// Where a proxy keyword belongs and what happens elsewhere.
struct KeywordPlacement {
    var columns: ProxyColumns
    /// Outside its columns: true makes it an error; false a warning that it is ignored (what
    /// HAProxy does for settings that have no effect in a section, e.g. `timeout client` in a
    /// backend).
    var strict: Bool

    init(_ columns: ProxyColumns, strict: Bool = true) {
        self.columns = columns
        self.strict = strict
    }

    func allows(_ section: SectionKind) -> Bool {
        !columns.intersection(section.columns).isEmpty
    }

    /// "a backend or listen section"
    var allowedSectionsText: String {
        var names: [String] = []
        if columns.contains(.defaults) { names.append("defaults") }
        if columns.contains(.frontend) { names.append("frontend") }
        if columns.contains(.backend) { names.append("backend") }
        if !columns.intersection([.frontend, .backend]).isEmpty { names.append("listen") }
        switch names.count {
        case 0: return "no section"
        case 1: return "a \(names[0]) section"
        default: return "a " + names.dropLast().joined(separator: ", ") + " or \(names.last!) section"
        }
    }
}

enum ConfigKeywords {
    /// Keywords that start a section ringproxy reads.
    static let sections: Set<String> = ["global", "defaults", "frontend", "backend", "listen"]

    /// HAProxy sections ringproxy skips with a warning.
    static let ignoredSections: Set<String> = [
        "peers", "resolvers", "userlist", "mailers", "program", "cache", "http-errors", "ring",
        "log-forward", "fcgi-app", "crt-store", "traces",
    ]

    // MARK: global

    /// Global keywords ringproxy reads.
    static let global: Set<String> = [
        "log", "maxconn", "nbthread", "daemon", "crt-base", "ca-base", "maxsslrate", "hard-stop-after",
        "setenv", "presetenv", "unsetenv", "resetenv",
        "ssl-default-bind-ciphers", "ssl-default-bind-ciphersuites", "ssl-default-bind-curves",
        "ssl-default-bind-sigalgs", "ssl-default-bind-client-sigalgs", "ssl-default-bind-options",
        "ssl-server-verify", "ssl-default-server-ciphers", "ssl-default-server-ciphersuites",
        "ssl-default-server-options",
        "ssl-dh-param-file", "tune.ssl.cachesize", "tune.ssl.lifetime", "tune.ssl.default-dh-param",
    ]

    /// Global keywords ringproxy accepts and ignores, with the reason given in the warning.
    static let globalIgnored: [String: String] = {
        var table: [String: String] = [:]
        let runAsService = "ignored: ringproxy runs in the foreground under systemd; set this in its unit file"
        for keyword in ["user", "group", "uid", "gid", "chroot", "pidfile", "ulimit-n", "master-worker", "mworker-max-reloads", "set-dumpable"] {
            table[keyword] = runAsService
        }
        for keyword in ["nbproc", "cpu-map", "numa-cpu-mapping", "busy-polling"] {
            table[keyword] = "ignored: ringproxy runs one worker per core; use 'nbthread' to limit them"
        }
        // TLS towards servers offers the broker's defaults for these (ringproxy is the client).
        for keyword in ["ssl-default-server-curves", "ssl-default-server-sigalgs", "ssl-default-server-client-sigalgs"] {
            table[keyword] = "ignored: TLS towards servers uses OpenSSL's default groups and signature algorithms"
        }
        for keyword in [
            "node", "description", "log-tag", "log-send-hostname",
            "spread-checks", "max-spread-checks", "quiet", "zero-warning", "maxconnrate",
            "maxsessrate", "maxsslconn", "maxpipes", "maxzlibmem", "maxcomprate",
            "maxcompcpuusage", "noepoll", "nopoll", "nosplice", "noreuseport", "nogetaddrinfo",
            "noevports", "nokqueue", "server-state-base", "server-state-file", "strict-limits",
            "insecure-fork-wanted", "insecure-setuid-wanted", "expose-experimental-directives",
            "localpeer", "unix-bind", "prealloc-fd", "default-path", "fd-hard-limit", "anonkey",
            "h1-case-adjust", "h1-case-adjust-file", "pp2-never-send-local", "external-check",
            "profiling.tasks", "no-memory-trimming", "cluster-secret", "debug",
        ] {
            table[keyword] = "ignored: not implemented by ringproxy"
        }
        table["stats"] = "ignored: not implemented by ringproxy"
        table["grace"] = graceIgnored
        return table
    }()

    /// HAProxy's `grace` keeps listening for that long after a stop is requested; ringproxy
    /// closes its listeners at once and lets open connections finish within `hard-stop-after`.
    static let graceIgnored = "ignored: ringproxy stops listening as soon as a stop is requested (it has no delay before that); "
        + "'hard-stop-after' in global bounds how long open connections may then take"

    /// Global keywords whose effect ringproxy cannot reproduce: errors.
    static let globalUnsupported: [String: String] = [
        "ssl-engine": "OpenSSL engines are not supported by ringproxy: it uses OpenSSL's default provider",
        "ssl-mode-async": "asynchronous OpenSSL engines are not supported by ringproxy",
        "ssl-provider": "loading OpenSSL providers is not supported by ringproxy: it uses the default provider",
        "ssl-provider-path": "loading OpenSSL providers is not supported by ringproxy: it uses the default provider",
        "ssl-propquery": "OpenSSL property queries are not supported by ringproxy: it uses the default provider",
        "ssl-skip-self-issued-ca": "not implemented by ringproxy: the chain is sent as the 'crt' file holds it",
        "issuers-chain-path": "not implemented by ringproxy: put the chain in the 'crt' file",
        "ssl-load-extra-files": "not implemented by ringproxy: each 'crt' file holds its certificate, chain and key",
        "ssl-security-level": "not implemented by ringproxy: OpenSSL's system-wide security level applies",
        "lua-load": "Lua scripts are not supported by ringproxy",
        "lua-load-per-thread": "Lua scripts are not supported by ringproxy",
        "lua-prepend-path": "Lua scripts are not supported by ringproxy",
    ]

    // MARK: proxies

    /// Proxy keywords ringproxy reads (multi-word ones by their first word).
    static let proxy: [String: KeywordPlacement] = [
        "acl": KeywordPlacement([.frontend, .backend]),
        "balance": KeywordPlacement([.defaults, .backend]),
        "bind": KeywordPlacement(.frontend),
        "default-server": KeywordPlacement([.defaults, .backend]),
        "default_backend": KeywordPlacement([.defaults, .frontend]),
        "description": KeywordPlacement([.frontend, .backend], strict: false),
        "log": KeywordPlacement(.all),
        "maxconn": KeywordPlacement([.defaults, .frontend], strict: false),
        "mode": KeywordPlacement(.all),
        "no": KeywordPlacement(.all),
        "option": KeywordPlacement(.all),
        "retries": KeywordPlacement([.defaults, .backend], strict: false),
        "server": KeywordPlacement(.backend),
        "source": KeywordPlacement([.defaults, .backend]),
        "stats": KeywordPlacement(.all),
        "stick": KeywordPlacement(.backend),
        "stick-table": KeywordPlacement([.frontend, .backend]),
        "tcp-check": KeywordPlacement([.defaults, .backend]),
        "unique-id-format": KeywordPlacement([.defaults, .frontend]),
        "tcp-request": KeywordPlacement(.all),
        "timeout": KeywordPlacement(.all),
        "use_backend": KeywordPlacement(.frontend),
    ]

    /// Why the HTTP and external check keywords are ignored: the check types they configure
    /// are refused at their `option` line, so they have nothing to apply to.
    static let healthChecksIgnored = "ignored: ringproxy checks servers with a connect, 'option tcp-check' or 'option mqtt-check'"

    /// HAProxy proxy keywords ringproxy accepts and ignores, with the reason.
    static let proxyIgnored: [String: String] = {
        var table: [String: String] = [:]
        for keyword in [
            "backlog", "id", "log-tag", "log-format", "log-format-sd", "error-log-format",
            "unique-id-header", "errorfile", "errorfiles", "errorloc",
            "errorloc302", "errorloc303", "http-error", "email-alert", "monitor-uri", "monitor",
            "clitcpka-cnt", "clitcpka-idle", "clitcpka-intvl", "srvtcpka-cnt", "srvtcpka-idle",
            "srvtcpka-intvl", "fullconn", "hash-type", "load-server-state-from-file",
            "server-state-file-name", "max-keep-alive-queue", "http-reuse", "http-send-name-header",
            "compression", "capture", "declare", "enabled",
        ] {
            table[keyword] = "ignored: not implemented by ringproxy"
        }
        table["grace"] = graceIgnored
        for keyword in ["http-check", "external-check"] {
            table[keyword] = healthChecksIgnored
        }
        return table
    }()

    /// HAProxy proxy keywords that change routing or traffic in ways ringproxy cannot: errors.
    static let proxyUnsupported: Set<String> = [
        "http-request", "http-response", "http-after-response", "tcp-response", "redirect",
        "cookie", "use-server", "force-persist", "ignore-persist", "persist", "dispatch",
        "server-template", "filter", "retry-on", "rate-limit", "use-fcgi-app", "transparent",
        "disabled", "dynamic-cookie-key",
    ]

    /// Keywords HAProxy removed, with what replaces them.
    static let removed: [String: String] = [
        "contimeout": "timeout connect",
        "clitimeout": "timeout client",
        "srvtimeout": "timeout server",
        "redispatch": "option redispatch",
        "redisp": "option redispatch",
    ]

    // MARK: timeout, option, stats, tcp-request, stick

    static let timeoutPlacement: [Timeout: KeywordPlacement] = [
        .connect: KeywordPlacement([.defaults, .backend], strict: false),
        .server: KeywordPlacement([.defaults, .backend], strict: false),
        .serverFin: KeywordPlacement([.defaults, .backend], strict: false),
        .tunnel: KeywordPlacement([.defaults, .backend], strict: false),
        .check: KeywordPlacement([.defaults, .backend], strict: false),
        .queue: KeywordPlacement([.defaults, .backend], strict: false),
        .client: KeywordPlacement([.defaults, .frontend], strict: false),
        .clientFin: KeywordPlacement([.defaults, .frontend], strict: false),
        .httpRequest: KeywordPlacement(.all),
        .httpKeepAlive: KeywordPlacement(.all),
    ]

    static let timeoutIgnored: [String: String] = [
        "tarpit": "ignored: ringproxy has no tarpit action",
    ]

    /// `option` names ringproxy reads.
    static let options: [String: KeywordPlacement] = [
        "tcplog": KeywordPlacement(.all),
        "httplog": KeywordPlacement([.defaults, .frontend], strict: false),
        "dontlognull": KeywordPlacement([.defaults, .frontend], strict: false),
        "redispatch": KeywordPlacement([.defaults, .backend], strict: false),
        "tcp-check": KeywordPlacement([.defaults, .backend], strict: false),
        "mqtt-check": KeywordPlacement([.defaults, .backend], strict: false),
        "allbackups": KeywordPlacement([.defaults, .backend], strict: false),
        "mqtt-websocket": KeywordPlacement([.defaults, .frontend]),
        // A ringproxy extension (HAProxy refuses it): see ConnackResponse and Worker+Redispatch.
        "mqtt-connack-redispatch": KeywordPlacement([.defaults, .backend], strict: false),
        "mqtt-keepalive-timeout": KeywordPlacement([.defaults, .frontend]),
    ]

    /// `option` names ringproxy accepts and ignores, with the reason.
    static let optionsIgnored: [String: String] = {
        var table: [String: String] = [:]
        for name in [
            "tcpka", "clitcpka", "srvtcpka", "log-health-checks", "log-separate-errors", "logasap",
            "dontlog-normal", "httpslog", "splice-auto", "splice-request", "splice-response",
            "http-server-close", "httpclose", "http-keep-alive", "forwardfor", "forwarded",
            "abortonclose", "nolinger", "independent-streams", "contstats", "socket-stats",
            "tcp-smart-accept", "tcp-smart-connect", "http-buffer-request", "http-ignore-probes",
            "http-no-delay", "http-pretend-keepalive", "http-use-proxy-header",
            "http-restrict-req-hdr-names", "accept-invalid-http-request",
            "accept-invalid-http-response", "checkcache", "disable-h2-upgrade",
            "h1-case-adjust-bogus-client", "h1-case-adjust-bogus-server", "originalto",
            "idle-close-on-response", "persist", "prefer-last-server",
        ] {
            table[name] = "ignored: not implemented by ringproxy"
        }
        return table
    }()

    /// `option` names ringproxy refuses.
    static let optionsUnsupported: [String: String] = {
        var table = ["transparent": "transparent proxying is not supported by ringproxy"]
        // A check ringproxy cannot run would leave servers unchecked while the operator
        // believes otherwise.
        for name in [
            "httpchk", "mysql-check", "pgsql-check", "redis-check", "smtpchk", "ssl-hello-chk",
            "ldap-check", "spop-check", "external-check",
        ] {
            table[name] = "'option \(name)' is not supported by ringproxy: check MQTT brokers with 'option mqtt-check' (CONNECT, expect CONNACK 0) or 'option tcp-check' rules"
        }
        return table
    }()

    /// `stats` keywords ringproxy reads into StatsSettings.
    static let statsKeywords: Set<String> = ["enable", "uri", "refresh", "realm", "auth", "hide-version"]
    /// `stats` keywords kept as a line with their words: `stats admin` is mapped with the page,
    /// the others are refused at their line when the configuration is loaded.
    static let statsUnread: Set<String> = [
        "admin", "scope", "show-legends", "show-node", "show-desc", "show-modules", "show-version",
        "http-request",
    ]

    static let tcpRequestKeywords: Set<String> = ["inspect-delay", "content", "connection"]
    static let tcpRequestUnsupported: Set<String> = ["session"]
    /// Actions HAProxy has that ringproxy does not perform.
    static let tcpRequestUnsupportedActions: Set<String> = [
        "capture", "do-resolve", "expect-netscaler-cip", "lua", "sc-inc-gpc",
        "sc-inc-gpc0", "sc-inc-gpc1", "sc-set-gpt", "sc-set-gpt0", "send-spoe-group", "set-bandwidth-limit",
        "set-dst", "set-dst-port", "set-log-level", "set-mark", "set-nice", "set-priority-class",
        "set-priority-offset", "set-src", "set-src-port", "set-tos", "set-var", "set-var-fmt",
        "silent-drop", "switch-mode", "unset-var",
        "use-service", "attach-srv", "set-fc-mark", "set-fc-tos",
    ]

    /// Stick counters HAProxy tracks besides sc0, which ringproxy does not.
    static let tcpRequestUntrackedCounters: Set<String> = ["track-sc1", "track-sc2"]

    /// What a `stick-table ... store <type>` takes between parentheses.
    enum StoreArgument {
        case none
        /// `(<period>)`, a time.
        case period
        /// `(<nb>)`, a count of array elements.
        case count
        /// `(<nb>,<period>)`.
        case countAndPeriod
    }

    /// HAProxy's stick-table data types (configuration.txt, "stick-table", <data_type>).
    /// ringproxy maintains conn_cur, conn_cnt and conn_rate for `track-sc0` rules, and the
    /// server of a `stick on` rule (server_id); the others are accepted with a warning, since
    /// no fetch ringproxy evaluates can read them.
    static let stickTableDataTypes: [String: StoreArgument] = [
        "server_id": .none, "server_key": .none,
        "gpc": .count, "gpc_rate": .countAndPeriod, "gpt": .count,
        "gpc0": .none, "gpc0_rate": .period, "gpc1": .none, "gpc1_rate": .period, "gpt0": .none,
        "conn_cnt": .none, "conn_cur": .none, "conn_rate": .period,
        "sess_cnt": .none, "sess_rate": .period,
        "http_req_cnt": .none, "http_req_rate": .period, "http_err_cnt": .none, "http_err_rate": .period,
        "http_fail_cnt": .none, "http_fail_rate": .period,
        "bytes_in_cnt": .none, "bytes_in_rate": .period, "bytes_out_cnt": .none, "bytes_out_rate": .period,
    ]
    /// The data types ringproxy maintains.
    static let stickTableMaintainedData: Set<String> = ["server_id", "conn_cnt", "conn_cur", "conn_rate"]

    static let stickKeywords: Set<String> = ["on", "match", "store-request"]
    static let stickUnsupported: Set<String> = ["store-response"]

    // MARK: lookups

    /// Every keyword valid in `section`, including multi-word ones (`timeout client`,
    /// `option tcplog`), for "did you mean".
    static func keywords(validIn section: SectionKind) -> [String] {
        if section == .global {
            return Array(global) + Array(globalIgnored.keys)
        }
        var names = proxy.filter { $0.value.allows(section) }.map(\.key)
        names += proxyIgnored.keys
        names += timeoutPlacement.filter { $0.value.allows(section) }.map { $0.key.keyword }
        names += options.filter { $0.value.allows(section) }.map { "option \($0.key)" }
        names += optionsIgnored.keys.map { "option \($0)" }
        names += statsKeywords.union(statsUnread).map { "stats \($0)" }
        if section.columns.contains(.backend) {
            names += stickKeywords.map { "stick \($0)" }
        }
        names += tcpRequestKeywords.map { "tcp-request \($0)" }
        return names.sorted()
    }

    /// The closest candidate to `word`, if close enough to be a likely typo.
    static func suggestion(for word: String, among candidates: [String]) -> String? {
        let limit: Int
        switch word.count {
        case 0...3: limit = 1
        case 4...8: limit = 2
        default: limit = 3
        }
        var best: (name: String, distance: Int)?
        let length = word.unicodeScalars.count
        // The distance is at least the difference in length: a word far longer or shorter than
        // every keyword (a 1 MB token) costs nothing here.
        for candidate in candidates.sorted() where candidate != word && abs(candidate.unicodeScalars.count - length) <= limit {
            let distance = editDistance(word.lowercased(), candidate.lowercased())
            guard distance <= limit else { continue }
            if best == nil || distance < best!.distance {
                best = (candidate, distance)
            }
        }
        return best?.name
    }

    /// Optimal string alignment distance: insertions, deletions, substitutions and swaps of two
    /// neighbours each cost 1 (so `balanse` is 1 from `balance`, `tcplgo` 1 from `tcplog`).
    static func editDistance(_ lhs: String, _ rhs: String) -> Int {
        let a = Array(lhs.unicodeScalars)
        let b = Array(rhs.unicodeScalars)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var table = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { table[i][0] = i }
        for j in 0...b.count { table[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                var value = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    value = min(value, table[i - 2][j - 2] + 1)
                }
                table[i][j] = value
            }
        }
        return table[a.count][b.count]
    }
}
