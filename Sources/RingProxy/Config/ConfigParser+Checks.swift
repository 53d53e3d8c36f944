// Checks that need the whole file: names that refer to other sections (default_backend,
// use_backend, stick ... table, track-sc0 ... table), tables that do not store what a rule
// reads, frontend/backend modes that cannot work together, server TLS without a way to verify,
// and the warnings HAProxy gives for settings that are missing (timeouts, inspect-delay). Runs
// once after parsing; reads the model, never changes it.

extension ConfigParser.State {
    mutating func runChecks() {
        checkBackendReferences()
        checkStickTableReferences()
        checkTrackedTables()
        checkServerTLS()
        warnAboutMissingTimeouts()
        warnAboutContentRulesWithoutInspectDelay()
        warnAboutFrontendsWithoutBackend()
    }

    private mutating func checkBackendReferences() {
        let names = config.backends.map(\.name)
        for reference in backendReferences {
            guard let backend = config.backend(named: reference.backend) else {
                let hint = ConfigKeywords.suggestion(for: reference.backend, among: names).map { "did you mean '\($0)'?" }
                    ?? "declare it with 'backend \(reference.backend)'"
                error(reference.keyword, "no backend named '\(reference.backend)'", hint: hint, line: reference.location.line)
                continue
            }
            guard let frontendName = reference.frontend, let frontend = config.frontend(named: frontendName) else { continue }
            let frontendMode = config.effective(frontend).mode
            let backendMode = config.effective(backend).mode
            // HAProxy refuses an http frontend in front of a tcp backend (the reverse upgrades).
            if frontendMode == .http, backendMode == .tcp {
                error(reference.keyword, "frontend '\(frontendName)' is in http mode but backend '\(backend.name)' is in tcp mode",
                      hint: "HAProxy refuses this too; use the same mode on both", line: reference.location.line)
            }
        }
    }

    private mutating func checkStickTableReferences() {
        for reference in stickTableReferences {
            guard let backend = config.backend(named: reference.backend) else {
                let names = config.backends.map(\.name)
                let hint = ConfigKeywords.suggestion(for: reference.backend, among: names).map { "did you mean '\($0)'?" }
                error(reference.keyword, "no backend named '\(reference.backend)' for 'table'", hint: hint, line: reference.location.line)
                continue
            }
            if backend.stickTable == nil {
                error(reference.keyword, "backend '\(backend.name)' has no 'stick-table'",
                      hint: "declare the table in that backend", line: reference.location.line)
            }
        }
    }

    /// `track-sc0` counts in its proxy's own stick-table, or in the one `table <name>` names (any
    /// proxy's; a backend that only holds a table is the usual place). A rule reading a counter
    /// of sc0 needs that table to store it: HAProxy accepts such a rule and it never matches,
    /// ringproxy refuses it.
    private mutating func checkTrackedTables() {
        for frontend in config.frontends {
            var tracked: (name: String, table: StickTableSettings)?
            for rule in frontend.tcpRequestRules where rule.phase == .connection {
                let keyword = rule.phase.keyword
                if let tracking = rule.tracking {
                    // A second track-sc0 is ignored (warned about at its line).
                    guard tracked == nil else { continue }
                    let name = tracking.table ?? frontend.name
                    if let table = stickTable(named: name, keyword: keyword, line: rule.location.line, own: tracking.table == nil ? frontend : nil) {
                        tracked = (name, table)
                    }
                    continue
                }
                guard let tracked, let condition = rule.condition else { continue }
                for sample in condition.samples(acls: frontend.acls) {
                    guard let read = SampleRegistry.stickCounterRead(sample) else { continue }
                    let name = read.table ?? tracked.name
                    guard let table = read.table == nil ? tracked.table : stickTable(named: name, keyword: keyword, line: rule.location.line, own: nil) else { continue }
                    guard !table.counters.stores(read.counter) else { continue }
                    let example = read.counter == .connRate ? "conn_rate(10s)" : read.counter.rawValue
                    error(keyword, "'\(sample.fetch.name)' reads \(read.counter.rawValue), which the stick-table of '\(name)' does not store",
                          hint: "add '\(example)' to its 'store' at line \(table.location.line); HAProxy accepts this and the rule never matches",
                          line: rule.location.line)
                }
            }
        }
    }

    /// The stick-table of the proxy named `name`, or nil after reporting why there is none.
    /// `own` is the frontend whose own table is meant (no `table <name>` was written).
    private mutating func stickTable(named name: String, keyword: String, line: Int, own: Frontend?) -> StickTableSettings? {
        if let table = config.frontend(named: name)?.stickTable ?? config.backend(named: name)?.stickTable { return table }
        let example = "stick-table type ip size 100k expire 30s store conn_cur,conn_rate(10s)"
        if let own {
            error(keyword, "\(own.isListen ? "listen" : "frontend") '\(own.name)' has no 'stick-table' for 'track-sc0'",
                  hint: "add '\(example)', or name another proxy's with 'table <name>'", line: line)
        } else if config.frontend(named: name) == nil && config.backend(named: name) == nil {
            let names = config.frontends.filter { $0.stickTable != nil }.map(\.name) + config.backends.filter { $0.stickTable != nil }.map(\.name)
            let hint = ConfigKeywords.suggestion(for: name, among: names).map { "did you mean '\($0)'?" }
                ?? "declare it, e.g. 'backend \(name)' with '\(example)'"
            error(keyword, "no proxy named '\(name)' holds a stick-table", hint: hint, line: line)
        } else {
            error(keyword, "'\(name)' has no 'stick-table'", hint: "declare one there, e.g. '\(example)'", line: line)
        }
        return nil
    }

    /// HAProxy verifies server certificates by default and refuses a server with `ssl` but no
    /// CA to verify against, unless told `verify none` (or global `ssl-server-verify none`).
    private mutating func checkServerTLS() {
        for backend in config.backends {
            for server in config.effective(backend).servers where server.ssl && server.verify == .required && server.caFile == nil {
                error("server", "server '\(server.name)' verifies its certificate (the default with 'ssl') but has no 'ca-file'",
                      hint: "add 'ca-file <path>', or 'verify none' (global 'ssl-server-verify none') if the network is trusted", line: server.location.line)
            }
        }
    }

    /// HAProxy warns when a proxy lacks the timeouts that bound idle connections: a frontend
    /// needs `timeout client`; a backend with servers `timeout connect` and `timeout server`
    /// (in tcp mode `timeout tunnel` stands in for the latter). A listen gets one warning.
    private mutating func warnAboutMissingTimeouts() {
        struct Proxy {
            var keyword: String
            var name: String
            var location: SourceLocation
            var missing: [Timeout]
        }
        var proxies: [Proxy] = []
        for frontend in config.frontends {
            let missing: [Timeout] = config.effective(frontend).timeouts.clientMs == nil ? [.client] : []
            proxies.append(Proxy(keyword: frontend.isListen ? "listen" : "frontend", name: frontend.name, location: frontend.location, missing: missing))
        }
        for backend in config.backends where !backend.servers.isEmpty {
            let effective = config.effective(backend)
            var missing: [Timeout] = []
            if effective.timeouts.connectMs == nil { missing.append(.connect) }
            if effective.timeouts.serverMs == nil, effective.mode == .http || effective.timeouts.tunnelMs == nil {
                missing.append(.server)
            }
            if backend.isListen, let index = proxies.firstIndex(where: { $0.keyword == "listen" && $0.name == backend.name }) {
                proxies[index].missing += missing
            } else {
                proxies.append(Proxy(keyword: "backend", name: backend.name, location: backend.location, missing: missing))
            }
        }
        for proxy in proxies where !proxy.missing.isEmpty {
            let list = proxy.missing.map { "'\($0.keyword)'" }.joined(separator: ", ")
            warning(proxy.keyword, "missing timeouts for \(proxy.keyword) '\(proxy.name)': \(list) \(proxy.missing.count == 1 ? "is" : "are") not set",
                    hint: "HAProxy warns too: idle connections would never expire; set them here or in its defaults section",
                    line: proxy.location.line)
        }
    }

    /// HAProxy warns when content rules run without `tcp-request inspect-delay`: they then see
    /// only whatever bytes arrived with the first packet.
    private mutating func warnAboutContentRulesWithoutInspectDelay() {
        for frontend in config.frontends {
            let effective = config.effective(frontend)
            guard effective.inspectDelayMs == nil else { continue }
            for rule in frontend.tcpRequestRules where rule.phase == .content {
                guard let condition = rule.condition, let fetch = contentFetch(in: condition, acls: frontend.acls) else { continue }
                warning(rule.phase.keyword, "reads request contents ('\(fetch)') but \(frontend.isListen ? "listen" : "frontend") '\(frontend.name)' sets no 'tcp-request inspect-delay'",
                        hint: "HAProxy then evaluates it on whatever bytes have arrived; add e.g. 'tcp-request inspect-delay 5s'",
                        line: rule.location.line)
            }
        }
        for backend in config.backends {
            let effective = config.effective(backend)
            guard effective.inspectDelayMs == nil else { continue }
            // `option mqtt-websocket` frontends wait for the CONNECT whatever the delay says.
            let fedByWebSocket = config.frontends.contains { frontend in
                let f = config.effective(frontend)
                if case .on? = f.mqttWebSocket { return f.defaultBackend == backend.name }
                return false
            }
            if fedByWebSocket { continue }
            for rule in backend.stickRules where Self.readsContents(rule.sample) {
                warning(rule.kind.keyword, "reads request contents ('\(rule.sample.fetch.name)') but \(backend.isListen ? "listen" : "backend") '\(backend.name)' sets no 'tcp-request inspect-delay'",
                        hint: "HAProxy then evaluates it on whatever bytes have arrived; add e.g. 'tcp-request inspect-delay 5s'",
                        line: rule.location.line)
            }
        }
    }

    private func contentFetch(in condition: RuleCondition, acls: [ACLDefinition]) -> String? {
        for term in condition.alternatives.joined() {
            switch term.kind {
            case .anonymous(let expression):
                if Self.readsContents(expression.sample) { return expression.sample.fetch.name }
            case .named(let name):
                if name == "REQ_CONTENT" { return "req.len" }
                if let acl = acls.first(where: { $0.name == name && Self.readsContents($0.expression.sample) }) {
                    return acl.expression.sample.fetch.name
                }
            }
        }
        return nil
    }

    private mutating func warnAboutFrontendsWithoutBackend() {
        for frontend in config.frontends where !frontend.isListen {
            let effective = config.effective(frontend)
            guard effective.defaultBackend == nil, effective.useBackendRules.isEmpty, effective.stats == nil else { continue }
            warning("frontend", "frontend '\(frontend.name)' has no 'default_backend' and no 'use_backend'",
                    hint: "connections it accepts have nowhere to go and are closed", line: frontend.location.line)
        }
    }
}
