// EngineConfig+ConfigFile: turns a parsed HAProxy-dialect file into the engine's plain model.
// What the engine does not do yet (TLS and the PROXY details that need it, http mode beyond
// the stats page) is refused with the file:line of the keyword and a clear reason, never
// silently ignored. The seed's MQTT rules are recognised for what they mean; `use_backend`
// conditions are mapped in EngineConfig+Routing.swift, per-address limits (`tcp-request
// connection` rules) in EngineConfig+AddressLimit.swift.
import Glibc

public struct LoadedConfiguration: Sendable {
    public var engine: EngineConfig
    /// Operator-facing notes: parser warnings and how a rule was understood.
    public var notes: [String]
}

extension EngineConfig {
    /// The fetch + converter chains ringproxy recognises in rules.
    static func isMQTTValidity(_ sample: SampleExpression) -> Bool {
        sample.fetch.name == "req.payload" && sample.converters.map(\.name) == ["mqtt_is_valid"]
    }

    static func isClientIdentifier(_ sample: SampleExpression) -> Bool {
        sample.fetch.name == "req.payload" && sample.converters.count == 1
            && sample.converters[0].name == "mqtt_field_value"
            && sample.converters[0].arguments.map { $0.lowercased() } == ["connect", "client_identifier"]
    }

    /// Builds the engine configuration from `file`; every unsupported use is reported at once.
    public static func load(_ file: ConfigFile) throws(ConfigError) -> LoadedConfiguration {
        var errors: [ConfigDiagnostic] = []
        var notes = file.warnings.map { "warning: \($0)" }
        func refuse(_ location: SourceLocation?, _ keyword: String, _ message: String, hint: String? = nil) {
            // A defaults or listen line reaches several proxies: one error for it.
            let diagnostic = ConfigDiagnostic(file: location?.file ?? "", line: location?.line ?? 0, keyword: keyword, message: message, hint: hint)
            if !errors.contains(diagnostic) { errors.append(diagnostic) }
        }
        /// Every `stats` line sets up the page (HAProxy enables it on any of them), which is served
        /// only by a `mode http` frontend or listen (EngineConfig+Stats.swift): elsewhere each is
        /// refused at its line.
        func refuseStats(_ stats: StatsSettings?) {
            guard let stats else { return }
            let message = "the stats page is served only by a 'mode http' frontend or listen with no other job"
            if stats.lines.isEmpty { refuse(stats.location, "stats", message) }
            for line in stats.lines { refuse(line.location, line.keyword, message) }
        }
        // `bind ... maxconn` limits one listener and the engine limits a frontend as a whole:
        // the same thing when the frontend has a single listener (HAProxy then applies the
        // smaller of the two), else refused.
        func maxConnections(_ frontend: EffectiveFrontend) -> Int? {
            let limited = frontend.binds.filter { $0.maxconn != nil }
            guard let first = limited.first?.maxconn else { return frontend.maxconn }
            let listeners = frontend.binds.reduce(0) { $0 + $1.addresses.reduce(0) { $0 + $1.ports.count } }
            guard listeners == 1 else {
                for bind in limited {
                    refuse(bind.location, "maxconn", "a limit per listener is not implemented yet; frontend '\(frontend.name)' has \(listeners) listening addresses",
                           hint: "use the frontend's 'maxconn' to limit them together")
                }
                return frontend.maxconn
            }
            return min(first, frontend.maxconn ?? first)
        }
        /// The v2 TLVs about the client's TLS session and its unique id; `crc32c`, `cert-sig` and
        /// `cert-key` are refused at their line, so a broker never gets
        /// a header without a TLV the configuration promised.
        func proxyV2TLVs(_ server: EffectiveServer) -> ProxyV2TLVs {
            var tlvs: ProxyV2TLVs = []
            if server.sendProxyV2SSL { tlvs.insert(.ssl) }
            if server.sendProxyV2SSLCN { tlvs.formUnion([.ssl, .certCN]) }
            for option in server.proxyV2Options {
                switch option {
                case "ssl": tlvs.insert(.ssl)
                case "cert-cn": tlvs.formUnion([.ssl, .certCN])
                case "ssl-cipher": tlvs.formUnion([.ssl, .sslCipher])
                case "authority": tlvs.insert(.authority)
                case "unique-id": tlvs.insert(.uniqueID)
                case "crc32c":
                    refuse(server.location, "proxy-v2-options", "'crc32c' (the checksum TLV) is not implemented yet")
                default:
                    refuse(server.location, "proxy-v2-options", "'\(option)' is not implemented yet", hint: "ssl, cert-cn, ssl-cipher and authority are")
                }
            }
            return tlvs
        }

        // Backends first: frontends refer to them by index.
        var backends: [BackendConfig] = []
        var backendIndex: [String: Int] = [:]
        for backend in file.effectiveBackends {
            if isStatsPage(backend, refuse: { refuse($0, $1, $2, hint: $3) }) { continue }
            refuseStats(backend.stats)
            if backend.mode == .http {
                refuse(backend.location, "mode", "backend '\(backend.name)' is in http mode; ringproxy proxies TCP (MQTT) only")
            }
            var servers: [ServerConfig] = []
            for server in backend.servers {
                if server.maxconn != nil { refuse(server.location, "maxconn", "per-server maxconn (queueing) is not implemented yet") }
                if server.checkSendProxy && !server.check {
                    notes.append("warning: server '\(server.name)' (line \(server.location.line)): 'check-send-proxy' has no effect without 'check'")
                }
                do {
                    let address = try SocketAddress.parse("\(server.address.host.contains(":") ? "[\(server.address.host)]" : server.address.host):\(server.address.port)")
                    var config = ServerConfig(name: server.name, address: address, weight: server.weight, proxyProtocol: server.sendProxy)
                    config.check = healthCheck(server, address: address, in: backend, connectTimeoutDefaultMs: EngineConfig.connectTimeoutDefaultMs) {
                        refuse($0, $1, $2, hint: $3)
                    }
                    config.proxyV2TLVs = proxyV2TLVs(server)
                    config.backup = server.backup
                    config.startsInMaintenance = server.disabled
                    config.observe = server.observe
                    config.shutdownSessionsOnDown = server.shutdownSessionsOnDown
                    config.shutdownBackupSessionsOnUp = server.shutdownBackupSessionsOnUp
                    config.tls = server.tls
                    config.source = "\(server.location.file):\(server.location.line)"
                    if let pool = server.source, pool.first.family != address.family {
                        refuse(server.location, "source", "server '\(backend.name)/\(server.name)' is \(address.family == AF_INET6 ? "IPv6" : "IPv4") but its source \(pool) is not",
                               hint: "give IPv6 servers an IPv6 source and IPv4 servers an IPv4 one")
                    }
                    config.sourcePool = server.source
                    servers.append(config)
                } catch {
                    refuse(server.location, "server", "\(error)")
                }
            }
            var balance: BalanceAlgorithm = .roundrobin
            switch backend.balance.algorithm {
            case .roundrobin, .staticRoundRobin: balance = .roundrobin
            case .leastconn: balance = .leastconn
            case .source: balance = .source
            case .hash:
                if let sample = backend.balance.sample, isClientIdentifier(sample) {
                    balance = .clientIDHash
                    if let written = backend.balance.writtenAs {
                        // One note per line: a defaults line reaches every backend after it.
                        let line = backend.balance.location.map { "\($0.file):\($0.line)" } ?? backend.name
                        let note = "\(line): 'balance \(written)' is a ringproxy extension (HAProxy refuses it), "
                            + "read as 'balance hash \(Balance.clientIDSample)'"
                        if !notes.contains(note) { notes.append(note) }
                    }
                } else {
                    refuse(backend.balance.location ?? backend.location, "balance",
                           "'balance hash' is supported on the MQTT client id only",
                           hint: "balance hash \(Balance.clientIDSample), or its short form 'balance \(Balance.clientIDHashExtension)'")
                }
            default:
                refuse(backend.balance.location ?? backend.location, "balance", "'balance \(backend.balance.algorithm.rawValue)' is not supported",
                       hint: "roundrobin, static-rr, leastconn, source or hash on the MQTT client id")
            }
            var stickTable: StickTableConfig?
            for rule in backend.stickRules {
                guard isClientIdentifier(rule.sample), rule.condition == nil, rule.table == nil else {
                    refuse(rule.location, rule.kind.keyword, "only '\(rule.kind.keyword) req.payload(0,0),mqtt_field_value(connect,client_identifier)' is supported")
                    continue
                }
                guard let table = backend.stickTable else { continue }   // the parser reports a missing table
                guard table.type == .string else {
                    refuse(rule.location, rule.kind.keyword, "the client id needs a 'stick-table type string'")
                    continue
                }
                stickTable = StickTableConfig(keyLengthMax: table.keyLength ?? 32, entriesMax: table.sizeEntries,
                                              expireMs: table.expireMs ?? Int(Int32.max))
            }
            if !backend.tcpRequestRules.isEmpty {
                for rule in backend.tcpRequestRules {
                    refuse(rule.location, rule.phase.keyword, "tcp-request rules in a backend are not supported; put them in the frontend")
                }
            }
            backendIndex[backend.name] = backends.count
            backends.append(BackendConfig(name: backend.name, balance: balance, servers: servers, stickTable: stickTable))
            if let index = backendIndex[backend.name] {
                backends[index].connectTimeoutMs = backend.timeouts.connectMs
                backends[index].serverTimeoutMs = backend.timeouts.serverMs ?? backend.timeouts.tunnelMs
                backends[index].retries = backend.retries
                backends[index].allBackups = backend.allBackups
                backends[index].connackRedispatch = backend.connackRedispatch
                if backend.connackRedispatch, let server = backend.servers.first(where: { $0.tls != nil }) {
                    // The replay writes the held bytes as they are; TLS towards the server
                    // would need a new session per attempt (not built).
                    refuse(server.location, "ssl", "'option mqtt-connack-redispatch' towards 'ssl' servers is not supported yet",
                           hint: "use one or the other in backend '\(backend.name)'")
                }
            }
        }

        var frontends: [FrontendConfig] = []
        var statsPages: [StatsPageConfig] = []
        for frontend in file.effectiveFrontends {
            if isStatsPage(frontend) {
                if let page = statsPage(frontend, refuse: { refuse($0, $1, $2, hint: $3) }) { statsPages.append(page) }
                continue
            }
            refuseStats(frontend.stats)
            if frontend.mode == .http {
                refuse(frontend.location, "mode", "frontend '\(frontend.name)' is in http mode; ringproxy proxies TCP (MQTT) only")
                continue
            }
            guard let name = frontend.defaultBackend, let b = backendIndex[name] else {
                if frontend.defaultBackend == nil {
                    refuse(frontend.location, "default_backend", "frontend '\(frontend.name)' has no default_backend")
                }
                continue
            }
            var requireMQTT = false
            for rule in frontend.tcpRequestRules where rule.phase == .content {
                // `tcp-request content reject unless { req.payload(0,0),mqtt_is_valid }`
                let terms = rule.condition?.alternatives ?? []
                let onlyValidity = terms.count == 1 && terms[0].count == 1 && !terms[0][0].negated
                    && { if case .anonymous(let acl) = terms[0][0].kind { return isMQTTValidity(acl.sample) && acl.patterns.isEmpty } else { return false } }()
                if rule.action == .reject && rule.condition?.polarity == .unless && onlyValidity {
                    requireMQTT = true
                } else {
                    refuse(rule.location, rule.phase.keyword, "only 'tcp-request content reject unless { req.payload(0,0),mqtt_is_valid }' is supported",
                           hint: rule.action == .trackSC0 ? "track addresses with 'tcp-request connection track-sc0 src'" : nil)
                }
            }
            let routes = backendRoutes(frontend, backendIndex: backendIndex,
                                       inspectsMQTT: requireMQTT || frontend.mqttWebSocket.map { $0 != .off } == true) {
                refuse($0, $1, $2, hint: $3)
            }
            let addressLimit = addressLimit(frontend, in: file) { refuse($0, $1, $2, hint: $3) }
            // `accept-proxy` is a bind option in HAProxy and a frontend's in the engine (its front
            // stages): a frontend that mixes listeners with and without it is refused.
            let expectProxy = expectProxy(frontend) { refuse($0, $1, $2, hint: $3) }
            let acceptProxy = frontend.binds.contains { $0.acceptProxy }
            if acceptProxy, expectProxy != nil {
                for rule in frontend.tcpRequestRules where rule.action == .expectProxy {
                    refuse(rule.location, rule.phase.keyword, "frontend '\(frontend.name)' already reads a PROXY header on every connection ('accept-proxy')",
                           hint: "keep one of them")
                }
            }
            for bind in frontend.binds where acceptProxy && !bind.acceptProxy {
                refuse(bind.location, "bind", "frontend '\(frontend.name)' has 'accept-proxy' on another bind but not on this one; ringproxy applies it to a whole frontend",
                       hint: "put the listeners with and without 'accept-proxy' in separate frontends")
            }
            // HAProxy runs `tcp-request connection` rules before it reads the PROXY header, so they
            // would count the front balancer; and the engine releases by the header's address.
            if (acceptProxy || expectProxy != nil) && addressLimit != nil {
                for rule in frontend.tcpRequestRules where rule.phase == .connection && rule.action != .expectProxy {
                    refuse(rule.location, rule.phase.keyword, "per-address limits on an accept-proxy frontend are not supported yet: these rules run before the PROXY header, on the front balancer's address",
                           hint: "limit clients on the front balancer, or listen without 'accept-proxy'")
                }
            }
            var binds: [SocketAddress] = []
            // TLS is a frontend's front stage in the engine, like accept-proxy: every listener of
            // a frontend terminates TLS with the same settings, or none does.
            let tlsBinds = frontend.binds.filter(\.ssl)
            var tls: TLSBindConfig?
            func resolvedTLS(_ bind: FrontendBind) -> TLSBindConfig? {
                switch tlsBindConfig(bind, global: file.global) {
                case .success(let config): return config
                case .failure(let problem):
                    refuse(bind.location, "bind", problem.message, hint: problem.hint)
                    return nil
                }
            }
            if let first = tlsBinds.first, let firstTLS = resolvedTLS(first) {
                tls = firstTLS
                for bind in frontend.binds where !bind.ssl || resolvedTLS(bind).map({ $0 != firstTLS }) == true {
                    refuse(bind.location, "bind", "frontend '\(frontend.name)' terminates TLS with other settings on another bind (line \(first.location.line))",
                           hint: "ringproxy applies one TLS setting to a whole frontend: put these listeners in separate frontends")
                }
            }
            for bind in frontend.binds {
                for address in bind.addresses {
                    guard address.ports.count == 1 else {
                        refuse(bind.location, "bind", "port ranges are not supported")
                        continue
                    }
                    let host = address.host.map { $0.contains(":") ? "[\($0)]" : $0 } ?? "*"
                    do {
                        binds.append(try SocketAddress.parse("\(host):\(address.port)"))
                    } catch {
                        refuse(bind.location, "bind", "\(error)")
                    }
                }
            }
            var config = FrontendConfig(name: frontend.name, binds: binds, backendIndex: b, requireMQTT: requireMQTT)
            // The seed writes the MQTT rules without an inspect-delay, so HAProxy evaluates them on
            // an empty buffer and rejects every client. ringproxy waits for the CONNECT, bounded by
            // the inspect-delay if there is one, else by `timeout client`.
            config.inspectTimeoutMs = frontend.inspectDelayMs ?? frontend.timeouts.clientMs
            config.clientTimeoutMs = frontend.timeouts.clientMs
            config.mqttKeepAliveTimeout = frontend.mqttKeepAliveTimeout
            config.maxConnections = maxConnections(frontend)
            config.addressLimit = addressLimit
            if let table = addressLimit?.table, table.family == .ipv4, binds.contains(where: { $0.family == Int32(AF_INET6) }) {
                notes.append("frontend '\(frontend.name)' listens on IPv6 but counts addresses in the 'type ip' table of '\(table.name)': "
                             + "IPv6 clients are not tracked, as in HAProxy (use 'type ipv6' to track both)")
            }
            config.tls = tls
            config.uniqueIDFormat = frontend.uniqueIDFormat
            config.dontLogNull = frontend.dontlognull
            if tls != nil && (acceptProxy || expectProxy != nil) {
                refuse(tlsBinds.first?.location, "bind", "a PROXY header in front of TLS on one listener is not supported yet",
                       hint: "terminate TLS on the front balancer, or listen without 'accept-proxy'")
            }
            config.tlsSource = tlsBinds.first.map { "\($0.location.file):\($0.location.line)" }
            config.acceptProxy = acceptProxy || expectProxy.map { $0.sources.isEmpty } == true
            config.expectProxy = expectProxy.flatMap { $0.sources.isEmpty ? nil : $0 }
            if case .on(let path, let requireSubprotocol)? = frontend.mqttWebSocket {
                config.webSocket = WebSocketFrontendConfig(path: path, requireSubprotocol: requireSubprotocol)
                let reachable = [b] + routes.map(\.backendIndex)
                if reachable.contains(where: { backends[$0].servers.contains { $0.tls != nil } }) {
                    refuse(frontend.location, "option", "'option mqtt-websocket' towards 'ssl' servers is not supported yet",
                           hint: "let the brokers' plain WebSocket listeners take these connections")
                }
            }
            config.routes = routes
            // The CONNECT is read when a backend it may reach needs it (client id, CONNACK redispatch).
            let needsConnect = backends[b].needsConnect || routes.contains { backends[$0.backendIndex].needsConnect }
            if (requireMQTT || needsConnect) && frontend.inspectDelayMs == nil {
                notes.append("frontend '\(frontend.name)': MQTT rules wait for the CONNECT for up to "
                             + "\(config.inspectTimeoutMs.map { "\($0) ms (timeout client)" } ?? "the default") (no tcp-request inspect-delay given)")
            }
            frontends.append(config)
        }
        // The connection log: the first log target of the first frontend that has one (one
        // destination for the whole process for now).
        var log: LogConfig?
        for frontend in file.effectiveFrontends {
            guard let target = frontend.logTargets.first else { continue }
            switch target.destination {
            case .stderr: log = LogConfig(destination: .stderr)
            case .stdout: log = LogConfig(destination: .stdout)
            case .udp(let host, let port):
                do {
                    let address = try SocketAddress.parse("\(host.contains(":") ? "[\(host)]" : host):\(port)")
                    log = LogConfig(destination: .syslog(address), facility: target.facility.code,
                                    severity: (target.level ?? .info).severity)
                } catch {
                    refuse(target.location, "log", "\(error)")
                }
            case .unixSocket(let path):
                refuse(target.location, "log", "logging to a unix socket (\(path)) is not supported yet", hint: "log 127.0.0.1:514 local0")
            }
            break
        }
        // HAProxy: "will not start (no listener)". A stats page alone is a listener.
        if frontends.isEmpty && !file.effectiveFrontends.contains(where: { $0.stats != nil }) && errors.isEmpty {
            refuse(file.backends.first?.location ?? file.defaults.first?.location ?? file.global.location, "frontend",
                   "the configuration has no frontend or listen with a bind: ringproxy would listen on nothing",
                   hint: "add e.g. 'frontend mqtt' with 'bind *:1883' and 'default_backend <name>'")
        }
        if !errors.isEmpty { throw ConfigError(diagnostics: errors, warnings: file.warnings) }
        if let bufsize = file.global.bufsize {
            for f in frontends.indices { frontends[f].connectMaxBytes = bufsize }
        }
        var engine = EngineConfig(frontends: frontends, backends: backends)
        engine.log = log
        engine.cores = file.global.nbthread
        if let hardStopAfterMs = file.global.hardStopAfterMs {
            engine.drainGraceMs = hardStopAfterMs
            engine.drainGraceBoundsRetirement = true
        }
        engine.maxConnections = file.global.maxconn
        engine.tlsHandshakeRateMax = file.global.maxSSLRate
        engine.statsPages = statsPages
        engine.statsSocket = statsSocket(file.global)
        return LoadedConfiguration(engine: engine, notes: notes)
    }

    /// A `bind ... ssl` line's TLS settings over the global `ssl-default-bind-*` ones (the
    /// bind's own keyword wins, as in HAProxy), or why they cannot be built.
    static func tlsBindConfig(_ bind: FrontendBind, global: GlobalSection) -> Result<TLSBindConfig, ConfigValueError> {
        let defaults = global.sslDefaultBind
        var tls = TLSBindConfig(certificatePaths: bind.certificates)
        tls.caFile = bind.caFile
        tls.crlFile = bind.crlFile
        tls.verify = bind.verify ?? .none
        tls.alpn = bind.alpn
        tls.ciphers = bind.ciphers ?? defaults.ciphers
        tls.ciphersuites = bind.ciphersuites ?? defaults.ciphersuites
        tls.curves = bind.curves ?? bind.ecdhe ?? defaults.curves
        tls.sigalgs = bind.sigalgs ?? defaults.sigalgs
        tls.clientSigalgs = bind.clientSigalgs ?? defaults.clientSigalgs
        tls.tickets = bind.tickets ?? !defaults.noTLSTickets
        tls.preferClientCiphers = bind.preferClientCiphers || defaults.preferClientCiphers
        tls.strictSNI = bind.strictSNI ?? defaults.strictSNI
        if let entries = global.sslCacheEntriesMax { tls.sessionCacheEntriesMax = entries }
        if let lifetime = global.sslLifetimeS { tls.sessionLifetimeS = lifetime }
        switch tlsVersions(bind, defaults) {
        case .success(let (min, max)):
            tls.minVersion = min
            tls.maxVersion = max
        case .failure(let problem):
            return .failure(problem)
        }
        return .success(tls)
    }

    /// HAProxy's ssl_sock_prepare_ctx: `ssl-min-ver`/`ssl-max-ver` (the bind's, else the global
    /// ones), the minimum TLS 1.2 by default; `no-tlsv1x` flags (bind and global together)
    /// narrow that range, but HAProxy ignores them once a min or max is set: where that would
    /// drop a version the operator disabled, ringproxy refuses instead. The parser has refused
    /// every version below TLS 1.2 already. A nil maximum is OpenSSL's highest (TLS 1.3).
    static func tlsVersions(_ bind: FrontendBind, _ defaults: SSLDefaultBind) -> Result<(TLSProtocolVersion, TLSProtocolVersion?), ConfigValueError> {
        let supported: [TLSProtocolVersion] = [.tls12, .tls13]
        let min = (bind.sslMinVersion ?? defaults.sslMinVersion).flatMap(TLSProtocolVersion.init(rawValue:))
        let max = (bind.sslMaxVersion ?? defaults.sslMaxVersion).flatMap(TLSProtocolVersion.init(rawValue:))
        let disabled = bind.disabledVersions.union(defaults.disabledVersions)
        let inRange = supported.filter { $0.wireValue >= (min ?? .tls12).wireValue && $0.wireValue <= (max ?? .tls13).wireValue }
        if min != nil || max != nil {
            if let dropped = inRange.first(where: { disabled.contains($0.rawValue) }) {
                let name = dropped == .tls12 ? "no-tlsv12" : "no-tlsv13"
                let source = bind.sslMinVersion != nil || bind.sslMaxVersion != nil ? "on this line"
                    : "by 'ssl-default-bind-options' at line \(defaults.optionsLocation?.line ?? 0)"
                return .failure(ConfigValueError(
                    message: "'\(name)' has no effect once 'ssl-min-ver' or 'ssl-max-ver' is set (\(source)): HAProxy ignores it, ringproxy refuses it",
                    hint: "use only 'ssl-min-ver' and 'ssl-max-ver'"))
            }
            guard let lowest = inRange.first else {
                return .failure(ConfigValueError(message: "'ssl-min-ver' is above 'ssl-max-ver': all SSL/TLS versions are disabled"))
            }
            return .success((lowest, max == nil ? nil : inRange.last))
        }
        let enabled = inRange.filter { !disabled.contains($0.rawValue) }
        guard let lowest = enabled.first, let highest = enabled.last else {
            return .failure(ConfigValueError(message: "all SSL/TLS versions are disabled", hint: "ringproxy terminates TLS 1.2 and 1.3"))
        }
        return .success((lowest, highest == .tls13 ? nil : highest))
    }
}
