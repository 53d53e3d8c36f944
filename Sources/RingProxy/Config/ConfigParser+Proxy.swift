// Reads the lines of defaults/frontend/backend/listen sections: decides whether a keyword is
// known and allowed here, then reads the shared settings (mode, log, retries, timeout,
// maxconn, balance, default_backend, use_backend, stats, acl). Binds and servers are in
// ConfigParser+Servers.swift; options in ConfigParser+Options.swift; rules in ConfigParser+Rules.swift.

extension ConfigParser.State {
    var kind: SectionKind { draft?.kind ?? .defaults }

    mutating func readProxy(_ words: [String]) {
        guard draft != nil else { return }
        let keyword = words[0]
        if let replacement = ConfigKeywords.removed[keyword] {
            error(keyword, "was removed from HAProxy", hint: "use '\(replacement)'")
            return
        }
        if ConfigKeywords.proxyUnsupported.contains(keyword) {
            error(keyword, "not supported by ringproxy")
            return
        }
        if let reason = ConfigKeywords.proxyIgnored[keyword] {
            warning(keyword, reason)
            return
        }
        guard let placement = ConfigKeywords.proxy[keyword] else {
            if ConfigKeywords.global.contains(keyword) || ConfigKeywords.globalIgnored[keyword] != nil
                || ConfigKeywords.globalUnsupported[keyword] != nil || keyword.hasPrefix("tune.") {
                error(keyword, "not allowed in \(kind.rawValue) section", hint: "it belongs in the global section")
            } else {
                unknownKeyword(keyword, in: kind)
            }
            return
        }
        guard allowed(keyword, placement) else { return }
        switch keyword {
        case "mode": readMode(words)
        case "log": readLog(words)
        case "no": readNo(words)
        case "option": readOption(words, enabled: true, keywordWords: 1)
        case "retries":
            guard expect(words, arguments: 1, keyword: keyword, usage: "retries <number>") else { return }
            if let value = integer(words[1], in: 0...Int(Int32.max), keyword: keyword, what: "value") {
                draft!.settings.retries = value
            }
        case "timeout": readTimeout(words)
        case "maxconn":
            guard expect(words, arguments: 1, keyword: keyword, usage: "maxconn <number>") else { return }
            if let value = integer(words[1], in: 1...Int(Int32.max), keyword: keyword, what: "value") {
                draft!.settings.maxconn = value
            }
        case "balance": readBalance(words)
        case "default_backend": readDefaultBackend(words)
        case "use_backend": readUseBackend(words)
        case "stats": readStats(words)
        case "acl": readACL(words)
        case "bind": readBind(words)
        case "server": readServer(words)
        case "default-server": readDefaultServer(words)
        case "source": readSource(words)
        case "tcp-request": readTCPRequest(words)
        case "tcp-check": readTCPCheck(words)
        case "unique-id-format":
            guard expect(words, arguments: 1, keyword: keyword, usage: "unique-id-format <format>") else { return }
            switch UniqueIDFormat.parse(words[1]) {
            case .success(let format): draft!.settings.uniqueIDFormat = format
            case .failure(let problem): error(keyword, problem)
            }
        case "stick": readStick(words)
        case "stick-table": readStickTable(words)
        case "description": break
        default: unknownKeyword(keyword, in: kind)
        }
    }

    /// Reports a keyword used outside its sections (error, or warning when HAProxy just ignores
    /// it); returns true when it is allowed here.
    mutating func allowed(_ keyword: String, _ placement: KeywordPlacement) -> Bool {
        if placement.allows(kind) { return true }
        if placement.strict {
            error(keyword, "not allowed in \(kind.rawValue) section", hint: "use it in \(placement.allowedSectionsText)")
        } else {
            warning(keyword, "ignored in \(kind.rawValue) section", hint: "it only applies in \(placement.allowedSectionsText)")
        }
        return false
    }

    // MARK: mode, log, option

    mutating func readMode(_ words: [String]) {
        guard expect(words, arguments: 1, keyword: "mode", usage: "mode tcp|http") else { return }
        if let mode = ProxyMode(rawValue: words[1]) {
            draft!.settings.mode = mode
        } else if words[1] == "health" {
            error("mode", "'mode health' is not supported by ringproxy", hint: "HAProxy 2.x removed it too; use 'mode tcp'")
        } else {
            let guess = ConfigKeywords.suggestion(for: words[1], among: ["tcp", "http"])
            error("mode", "unknown mode '\(words[1])'", hint: guess.map { "did you mean '\($0)'?" } ?? "expected tcp or http")
        }
    }

    mutating func readLog(_ words: [String]) {
        if words.count >= 2, words[1] == "global" {
            guard expect(words, arguments: 1, keyword: "log", usage: "log global") else { return }
            draft!.settings.logs.append(.global(location))
            return
        }
        if let target = logTarget(words) {
            draft!.settings.logs.append(.target(target))
        }
    }

    /// `no option <name>` and `no log`.
    mutating func readNo(_ words: [String]) {
        guard words.count >= 2 else {
            error("no", "missing keyword after 'no'", hint: "e.g. 'no option tcplog' or 'no log'")
            return
        }
        switch words[1] {
        case "option":
            readOption(words, enabled: false, keywordWords: 2)
        case "log":
            guard expect(words, arguments: 0, keyword: "no log", usage: "no log") else { return }
            draft!.settings.logs.append(.disabled(location))
        default:
            error("no", "'no \(words[1])' is not supported", hint: "ringproxy knows 'no option <name>' and 'no log'")
        }
    }

    // MARK: timeout

    mutating func readTimeout(_ words: [String]) {
        guard words.count >= 2 else {
            error("timeout", "missing timeout kind", hint: "e.g. 'timeout client 30s'")
            return
        }
        let keyword = "timeout \(words[1])"
        if let reason = ConfigKeywords.timeoutIgnored[words[1]] {
            warning(keyword, reason)
            return
        }
        guard let timeout = Timeout(rawValue: words[1]) else {
            let candidates = ConfigKeywords.keywords(validIn: kind).filter { $0.hasPrefix("timeout ") }
            let guess = ConfigKeywords.suggestion(for: keyword, among: candidates)
            error("", "unknown keyword '\(keyword)' in \(kind.rawValue) section", hint: guess.map { "did you mean '\($0)'?" })
            return
        }
        guard let placement = ConfigKeywords.timeoutPlacement[timeout], allowed(keyword, placement) else { return }
        guard expect(words, arguments: 1, keyword: keyword, usage: "\(keyword) <time>") else { return }
        if let value = milliseconds(words[2], keyword: keyword) {
            draft!.settings.timeouts[timeout] = value
        }
    }

    // MARK: balance

    mutating func readBalance(_ words: [String]) {
        guard words.count >= 2 else {
            error("balance", "missing algorithm", hint: "e.g. 'balance roundrobin'")
            return
        }
        var name = words[1]
        var arguments: [String] = []
        if let open = name.firstIndex(of: "(") {
            guard name.hasSuffix(")") else {
                error("balance", "missing ')' in '\(words[1])'")
                return
            }
            arguments.append(String(name[name.index(after: open)..<name.index(before: name.endIndex)]))
            name = String(name[..<open])
        }
        arguments += words.dropFirst(2)
        // A ringproxy extension: `balance clientid-hash` is read as the `balance hash` form it
        // stands for, so both take the same path from here on.
        var writtenAs: String?
        if name == Balance.clientIDHashExtension {
            if let extra = arguments.first {
                error("balance", "unexpected '\(extra)'", hint: "'balance \(name)' takes no argument")
                return
            }
            writtenAs = name
            name = Balance.Algorithm.hash.rawValue
            arguments = [Balance.clientIDSample]
        }
        guard let algorithm = Balance.Algorithm(rawValue: name) else {
            let names = Balance.Algorithm.allCases.map(\.rawValue) + [Balance.clientIDHashExtension]
            let hint = ConfigKeywords.suggestion(for: name, among: names).map { "did you mean '\($0)'?" }
                ?? "known: " + names.joined(separator: ", ")
            error("balance", "unknown algorithm '\(name)'", hint: hint)
            return
        }
        var balance = Balance(algorithm: algorithm, arguments: arguments, location: location)
        balance.writtenAs = writtenAs
        switch algorithm {
        case .roundrobin, .staticRoundRobin, .leastconn, .first, .source:
            if let extra = arguments.first {
                error("balance", "unexpected '\(extra)'", hint: "'balance \(name)' takes no argument")
                return
            }
        case .random:
            if arguments.count > 1 || (arguments.first.map { ConfigUnits.integer($0) == nil } ?? false) {
                error("balance", "'random' takes at most one number, the count of draws", hint: "e.g. 'balance random(2)'")
                return
            }
        case .hash:
            guard arguments.count == 1 else {
                error("balance", arguments.isEmpty ? "'hash' needs a sample expression" : "unexpected '\(arguments[1])'",
                      hint: "e.g. 'balance hash req.payload(0,0),mqtt_field_value(connect,client_identifier)'")
                return
            }
            switch ConditionParser.sample(arguments[0]) {
            case .success(let (sample, _)): balance.sample = sample
            case .failure(let problem):
                error("balance", problem)
                return
            }
        case .header, .urlParam:
            guard !arguments.isEmpty, !arguments[0].isEmpty else {
                let form = algorithm == .header ? "hdr(<name>)" : "url_param <name>"
                error("balance", "'\(name)' needs a name", hint: "e.g. 'balance \(form)'")
                return
            }
        case .uri, .rdpCookie:
            break
        }
        draft!.settings.balance = balance
    }

    // MARK: backend selection

    mutating func readDefaultBackend(_ words: [String]) {
        guard expect(words, arguments: 1, keyword: "default_backend", usage: "default_backend <backend>") else { return }
        guard isStaticBackendName(words[1], keyword: "default_backend") else { return }
        draft!.settings.defaultBackend = words[1]
        backendReferences.append(ConfigParser.BackendReference(
            backend: words[1], keyword: "default_backend", location: location,
            frontend: kind == .defaults ? nil : draft!.name))
    }

    mutating func readUseBackend(_ words: [String]) {
        guard words.count >= 2 else {
            error("use_backend", "missing backend name", hint: "expected 'use_backend <backend> [if|unless <condition>]'")
            return
        }
        guard isStaticBackendName(words[1], keyword: "use_backend") else { return }
        guard let condition = optionalCondition(words.dropFirst(2), keyword: "use_backend", after: "the backend name") else { return }
        draft!.useBackendRules.append(UseBackendRule(backend: words[1], condition: condition.value, location: location))
        backendReferences.append(ConfigParser.BackendReference(
            backend: words[1], keyword: "use_backend", location: location, frontend: draft!.name))
    }

    mutating func isStaticBackendName(_ name: String, keyword: String) -> Bool {
        if name.contains("%[") {
            error(keyword, "backend names computed from samples are not supported by ringproxy",
                  hint: "name the backend, and choose it with 'use_backend <name> if <condition>'")
            return false
        }
        return true
    }

    /// An optional `if|unless <condition>` tail; nil after reporting an error.
    mutating func optionalCondition(_ words: ArraySlice<String>, keyword: String, after: String) -> ConditionTail? {
        guard let first = words.first else { return ConditionTail(value: nil) }
        guard let polarity = RuleCondition.Polarity(rawValue: first) else {
            error(keyword, "unexpected '\(first)' after \(after)", hint: "a condition starts with 'if' or 'unless'")
            return nil
        }
        switch ConditionParser.condition(words.dropFirst(), polarity: polarity, knownACLs: draft!.acls.map(\.name)) {
        case .success(let condition):
            return ConditionTail(value: condition)
        case .failure(let problem):
            error(keyword, problem)
            return nil
        }
    }

    // MARK: stats

    mutating func readStats(_ words: [String]) {
        guard words.count >= 2 else {
            error("stats", "missing stats keyword", hint: "e.g. 'stats enable' or 'stats uri /stats'")
            return
        }
        let keyword = "stats \(words[1])"
        if ["socket", "timeout", "maxconn", "bind-process"].contains(words[1]) {
            error(keyword, "only allowed in the global section", hint: "the stats socket is declared once, in global")
            return
        }
        var stats = draft!.settings.stats ?? StatsSettings(location: location)
        if ConfigKeywords.statsUnread.contains(words[1]) {
            // Read when the page is mapped (EngineConfig+Stats.swift): `stats admin` is, the rest
            // are refused at their line.
            stats.lines.append(StatsLine(keyword: keyword, location: location, arguments: Array(words.dropFirst(2))))
            draft!.settings.stats = stats
            return
        }
        guard ConfigKeywords.statsKeywords.contains(words[1]) else {
            let candidates = ConfigKeywords.keywords(validIn: kind).filter { $0.hasPrefix("stats ") }
            let guess = ConfigKeywords.suggestion(for: keyword, among: candidates)
            error("", "unknown keyword '\(keyword)' in \(kind.rawValue) section", hint: guess.map { "did you mean '\($0)'?" })
            return
        }
        switch words[1] {
        case "enable":
            guard expect(words, arguments: 0, keyword: keyword, usage: keyword) else { return }
            stats.enabled = true
        case "hide-version":
            guard expect(words, arguments: 0, keyword: keyword, usage: keyword) else { return }
            stats.hideVersion = true
        case "uri":
            guard expect(words, arguments: 1, keyword: keyword, usage: "stats uri <prefix>") else { return }
            stats.uri = words[2]
        case "refresh":
            guard expect(words, arguments: 1, keyword: keyword, usage: "stats refresh <time>") else { return }
            guard let value = milliseconds(words[2], keyword: keyword) else { return }
            stats.refreshMs = value
        case "realm":
            guard words.count == 3 else {
                error(keyword, words.count < 3 ? "missing realm" : "unexpected '\(words[3])'",
                      hint: "quote the realm or escape its spaces: stats realm HAProxy\\ Statistics")
                return
            }
            stats.realm = words[2]
        case "auth":
            guard expect(words, arguments: 1, keyword: keyword, usage: "stats auth <user>:<password>") else { return }
            guard let colon = words[2].firstIndex(of: ":"), colon != words[2].startIndex else {
                error(keyword, "expected '<user>:<password>', found '\(words[2])'")
                return
            }
            stats.credentials.append(StatsCredential(
                user: String(words[2][..<colon]), password: String(words[2][words[2].index(after: colon)...])))
        default:
            return
        }
        stats.lines.append(StatsLine(keyword: keyword, location: location))
        draft!.settings.stats = stats
    }

    // MARK: acl

    mutating func readACL(_ words: [String]) {
        let usage = "acl <name> <criterion> [flags] [patterns]"
        guard words.count >= 3 else {
            error("acl", words.count == 1 ? "missing ACL name" : "missing criterion", hint: "expected '\(usage)'")
            return
        }
        let name = words[1]
        if let bad = name.unicodeScalars.first(where: { !ConfigParser.State.isProxyNameScalar($0) }) {
            error("acl", "invalid character '\(bad)' in ACL name '\(name)'",
                  hint: "names may contain letters, digits, '-', '_', '.' and ':'")
            return
        }
        switch ConditionParser.aclExpression(words.dropFirst(2)) {
        case .success(let expression):
            draft!.acls.append(ACLDefinition(name: name, expression: expression, location: location))
        case .failure(let problem):
            error("acl", problem)
        }
    }
}

/// The `if|unless` part of a rule once read: `value` is nil when the rule has none (a rule
/// whose condition failed to parse gets no ConditionTail at all).
struct ConditionTail {
    var value: RuleCondition?
}
