// EngineConfig+Stats: maps the stats page (a `mode http` frontend or listen whose only job is
// `stats ...`) and the global stats socket. HAProxy's `stats` keywords are read here; what the
// page does not do (scope, show-node, other admin conditions, TLS binds, proxying HTTP) is refused
// at its line, as everywhere else in the loader.

extension EngineConfig {
    typealias StatsRefusal = (_ location: SourceLocation?, _ keyword: String, _ message: String, _ hint: String?) -> Void

    /// Whether `frontend` is a stats page: in http mode with the page enabled. Its TCP keywords
    /// (default_backend ...) are then refused by `statsPage`, not asked for.
    static func isStatsPage(_ frontend: EffectiveFrontend) -> Bool {
        frontend.mode == .http && frontend.stats != nil
    }

    /// The back half of a stats `listen`: it has nothing to proxy (servers in it are refused).
    static func isStatsPage(_ backend: EffectiveBackend, refuse: StatsRefusal) -> Bool {
        guard backend.isListen, backend.mode == .http, backend.stats != nil else { return false }
        for server in backend.servers {
            refuse(server.location, "server", "listen '\(backend.name)' serves the stats page in http mode; ringproxy proxies TCP (MQTT) only",
                   "put the servers in a 'mode tcp' backend")
        }
        return true
    }

    /// The page `frontend` declares; nil (with refusals) when something in it cannot be served.
    static func statsPage(_ frontend: EffectiveFrontend, refuse: StatsRefusal) -> StatsPageConfig? {
        guard let stats = frontend.stats else { return nil }
        var failed = false
        func fail(_ location: SourceLocation?, _ keyword: String, _ message: String, _ hint: String? = nil) {
            refuse(location, keyword, message, hint)
            failed = true
        }
        let onlyThePage = "frontend '\(frontend.name)' serves the stats page; ringproxy proxies TCP (MQTT) only, never HTTP"
        // A listen's front half goes to its own back half, which isStatsPage(_ backend:) empties.
        if let backend = frontend.defaultBackend, !(frontend.isListen && backend == frontend.name) {
            fail(frontend.location, "default_backend", "\(onlyThePage): it cannot also send requests to '\(backend)'", "route MQTT from a 'mode tcp' frontend")
        }
        for rule in frontend.useBackendRules { fail(rule.location, "use_backend", onlyThePage) }
        for rule in frontend.tcpRequestRules { fail(rule.location, rule.phase.keyword, "\(onlyThePage): tcp-request rules do not apply to it") }
        var admin = StatsAdminRule.never
        for line in stats.lines {
            switch line.keyword {
            case "stats admin":
                switch adminRule(line.arguments) {
                case .success(let rule): admin = rule
                case .failure(let problem): fail(line.location, line.keyword, problem.message, problem.hint)
                }
            case "stats enable", "stats uri", "stats refresh", "stats realm", "stats auth", "stats hide-version":
                break
            default:
                fail(line.location, line.keyword, "not implemented by ringproxy's stats page", "the page shows every proxy, with the version unless 'stats hide-version'")
            }
        }
        var binds: [SocketAddress] = []
        for bind in frontend.binds {
            if bind.ssl || !bind.certificates.isEmpty { fail(bind.location, "ssl", "TLS on the stats page is not implemented yet") }
            if bind.acceptProxy { fail(bind.location, "accept-proxy", "the stats page does not read PROXY headers") }
            for address in bind.addresses {
                guard address.ports.count == 1 else {
                    fail(bind.location, "bind", "port ranges are not supported")
                    continue
                }
                let host = address.host.map { $0.contains(":") ? "[\($0)]" : $0 } ?? "*"
                do { binds.append(try SocketAddress.parse("\(host):\(address.port)")) } catch { fail(bind.location, "bind", "\(error)") }
            }
        }
        if frontend.binds.isEmpty { fail(frontend.location, "bind", "frontend '\(frontend.name)' serves the stats page but has no 'bind' line") }
        guard !failed else { return nil }
        return StatsPageConfig(
            name: frontend.name, binds: binds, uri: stats.effectiveURI, refreshMs: stats.refreshMs,
            realm: stats.realm ?? StatsPageConfig.defaultRealm, credentials: stats.credentials,
            hideVersion: stats.hideVersion ?? false, admin: admin,
            requestTimeoutMs: frontend.timeouts.httpRequestMs ?? StatsPageConfig.requestTimeoutMsDefault)
    }

    struct StatsProblem: Error {
        var message: String
        var hint: String?
    }

    /// `stats admin if TRUE`, `if LOCALHOST`, `if { src <addr>[/<len>] ... }`.
    static func adminRule(_ words: [String]) -> Result<StatsAdminRule, StatsProblem> {
        let hint = "stats admin if TRUE | if LOCALHOST | if { src 10.0.0.0/8 192.168.1.5 }"
        guard words.first == "if", words.count >= 2 else {
            return .failure(StatsProblem(message: words.first == "unless" ? "'unless' is not supported" : "expects 'if <condition>'", hint: hint))
        }
        let condition = Array(words.dropFirst())
        if condition == ["TRUE"] { return .success(.always) }
        if condition == ["LOCALHOST"] { return .success(StatsAdminRule.localhost) }
        guard condition.count >= 4, condition.first == "{", condition[1] == "src", condition.last == "}" else {
            return .failure(StatsProblem(message: "condition '\(condition.joined(separator: " "))' is not supported", hint: hint))
        }
        var prefixes: [AddressPrefix] = []
        for word in condition[2..<(condition.count - 1)] {
            guard let prefix = AddressPrefix.parse(word) else {
                return .failure(StatsProblem(message: "'\(word)' is not an IPv4 or IPv6 address or network", hint: hint))
            }
            prefixes.append(prefix)
        }
        return .success(.sources(prefixes))
    }

    /// The global `stats socket` with `stats timeout` applied.
    static func statsSocket(_ global: GlobalSection) -> StatsSocketConfig? {
        guard var socket = global.statsSocket else { return nil }
        if let timeout = global.statsTimeoutMs { socket.timeoutMs = timeout }
        return socket
    }
}
