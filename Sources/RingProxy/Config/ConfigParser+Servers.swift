// Reads `server`, `default-server` and `bind` lines: addresses, ports and their options, with
// HAProxy's limits (weight 0-256, ports 1-65535, TLS that needs a certificate). Options HAProxy
// has but ringproxy does not act on are accepted with a warning, except TLS ones, which are
// refused (ConfigParser+TLS.swift); unknown ones are errors.

extension ConfigParser.State {
    // MARK: server

    mutating func readServer(_ words: [String]) {
        let usage = "server <name> <address>:<port> [options]"
        guard words.count >= 3 else {
            error("server", words.count == 1 ? "missing name and address" : "missing address", hint: "expected '\(usage)'")
            return
        }
        let name = words[1]
        if let existing = draft!.servers.first(where: { $0.name == name }) {
            error("server", "server name '\(name)' is already used at line \(existing.location.line)")
            return
        }
        guard let address = serverAddress(words[2]) else { return }
        guard let options = serverOptions(words.dropFirst(3), keyword: "server") else { return }
        draft!.servers.append(BackendServer(
            name: name, address: address, options: options,
            precedingDefaultServer: draft!.settings.defaultServer ?? ServerOptions(), location: location))
    }

    mutating func readDefaultServer(_ words: [String]) {
        if let first = words.dropFirst().first, first.contains(":") || first.contains(".") {
            error("default-server", "takes options only, not an address", hint: "e.g. 'default-server inter 2s rise 2 fall 3'")
            return
        }
        guard let options = serverOptions(words.dropFirst(), keyword: "default-server") else { return }
        let base = draft!.settings.defaultServer ?? ServerOptions()
        draft!.settings.defaultServer = options.merged(over: base)
    }

    /// `host:port`, `[v6]:port`, `ipv4@host:port`. The port is required.
    mutating func serverAddress(_ text: String) -> ServerAddress? {
        var address = text
        for prefix in ["ipv4@", "ipv6@", "tcp@", "tcp4@", "tcp6@"] where address.hasPrefix(prefix) {
            address = String(address.dropFirst(prefix.count))
        }
        if address.contains("@") || address.hasPrefix("/") {
            error("server", "address '\(text)' is not supported by ringproxy", hint: "servers are reached over TCP: '<host>:<port>'")
            return nil
        }
        guard let (host, portText) = AddressText.split(address) else {
            error("server", "invalid address '\(text)'", hint: "e.g. 127.0.0.1:1883 or [::1]:1883")
            return nil
        }
        guard !host.isEmpty else {
            error("server", "missing host in address '\(text)'", hint: "e.g. 127.0.0.1:1883")
            return nil
        }
        guard let portText, !portText.isEmpty else {
            error("server", "missing port in address '\(text)'", hint: "ringproxy needs an explicit port: '\(host):1883'")
            return nil
        }
        if portText.hasPrefix("+") || portText.hasPrefix("-") {
            error("server", "port offsets such as '\(portText)' are not supported by ringproxy", hint: "write the port itself")
            return nil
        }
        guard let port = ConfigUnits.port(portText) else {
            error("server", "invalid port '\(portText)' in address '\(text)'", hint: "ports are 1 to 65535")
            return nil
        }
        guard AddressText.isValidHost(host) else {
            error("server", "invalid host '\(host)' in address '\(text)'",
                  hint: host.contains(":") ? "write IPv6 addresses in brackets: [::1]:1883" : nil)
            return nil
        }
        return ServerAddress(host: host, port: port)
    }

    /// Server options shared by `server` and `default-server`. Nil after an error.
    mutating func serverOptions(_ words: ArraySlice<String>, keyword: String) -> ServerOptions? {
        var options = ServerOptions()
        var index = words.startIndex
        var failed = false
        while index < words.endIndex {
            let option = words[index]
            index += 1
            if let flag = Self.serverFlags[option] {
                flag(&options)
                continue
            }
            if Self.ignoredServerFlags.contains(option) {
                warning(keyword, "'\(option)' ignored: not implemented by ringproxy")
                continue
            }
            if option.hasPrefix("set-proxy-v2-tlv-fmt(") {
                // Not ignored with a warning: a broker would get headers without the TLV it expects.
                error(keyword, "'set-proxy-v2-tlv-fmt' (custom TLVs in PROXY v2 headers) is not implemented yet")
                index += 1   // its format
                failed = true
                continue
            }
            let takesValue = Self.serverValueOptions.contains(option) || Self.ignoredServerValueOptions.contains(option)
            guard takesValue else {
                let candidates = Array(Self.serverFlags.keys) + Self.serverValueOptions + Self.ignoredServerFlags + Self.ignoredServerValueOptions
                let hint = ConfigKeywords.suggestion(for: option, among: candidates).map { "did you mean '\($0)'?" }
                error(keyword, "unknown option '\(option)'", hint: hint)
                failed = true
                continue
            }
            guard index < words.endIndex else {
                error(keyword, "missing value after '\(option)'")
                failed = true
                break
            }
            let value = words[index]
            index += 1
            if Self.ignoredServerValueOptions.contains(option) {
                warning(keyword, "'\(option) \(value)' ignored: not implemented by ringproxy")
                continue
            }
            if !readServerValue(option, value, into: &options, keyword: keyword) { failed = true }
        }
        return failed ? nil : options
    }

    /// Reads one valued server option; false after reporting an error.
    mutating func readServerValue(_ option: String, _ value: String, into options: inout ServerOptions, keyword: String) -> Bool {
        let count = 0...Int(Int32.max)
        switch option {
        case "inter", "fastinter", "downinter", "slowstart":
            guard let time = milliseconds(value, keyword: keyword, what: option) else { return false }
            switch option {
            case "inter": options.interMs = time
            case "fastinter": options.fastinterMs = time
            case "downinter": options.downinterMs = time
            default: options.slowstartMs = time
            }
        case "rise", "fall":
            guard let number = integer(value, in: 1...Int(Int32.max), keyword: keyword, what: option) else { return false }
            if option == "rise" { options.rise = number } else { options.fall = number }
        case "weight":
            // HAProxy: "The default weight is 1, and the maximal value is 256"; 0 takes the server
            // out of load balancing.
            guard let number = integer(value, in: 0...256, keyword: keyword, what: "weight") else { return false }
            options.weight = number
        case "maxconn", "maxqueue":
            guard let number = integer(value, in: count, keyword: keyword, what: option) else { return false }
            if option == "maxconn" { options.maxconn = number } else { options.maxqueue = number }
        case "port":
            guard let port = ConfigUnits.port(value) else {
                error(keyword, "invalid check port '\(value)'", hint: "ports are 1 to 65535")
                return false
            }
            options.checkPort = port
        case "id":
            guard let number = integer(value, in: 1...Int(Int32.max), keyword: keyword, what: "id") else { return false }
            options.id = number
        case "verify":
            guard let verify = TLSVerify(rawValue: value), verify != .optional else {
                error(keyword, "invalid verify '\(value)'", hint: "expected 'verify none' or 'verify required'")
                return false
            }
            options.verify = verify
        case "addr":
            guard AddressText.isValidHost(value) else {
                error(keyword, "invalid check address '\(value)'", hint: "an IPv4 or IPv6 address, without a port (use 'port' for that)")
                return false
            }
            options.checkAddress = value
        case "observe":
            switch value {
            case "layer4": options.observeLayer4 = true
            case "layer7":
                error(keyword, "'observe layer7' watches HTTP responses; ringproxy proxies TCP", hint: "use 'observe layer4'")
                return false
            default:
                error(keyword, "invalid observe mode '\(value)'", hint: "expected 'observe layer4'")
                return false
            }
        case "error-limit":
            guard let number = integer(value, in: 1...Int(Int32.max), keyword: keyword, what: option) else { return false }
            options.errorLimit = number
        case "on-error":
            guard let action = OnErrorAction(rawValue: value) else {
                error(keyword, "invalid on-error action '\(value)'", hint: "expected " + OnErrorAction.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", "))
                return false
            }
            options.onError = action
        case "on-marked-down":
            guard value == "shutdown-sessions" else {
                error(keyword, "invalid on-marked-down action '\(value)'", hint: "expected 'on-marked-down shutdown-sessions'")
                return false
            }
            options.shutdownSessionsOnDown = true
        case "on-marked-up":
            guard value == "shutdown-backup-sessions" else {
                error(keyword, "invalid on-marked-up action '\(value)'", hint: "expected 'on-marked-up shutdown-backup-sessions'")
                return false
            }
            options.shutdownBackupSessionsOnUp = true
        case "sni":
            guard ServerSNI(expression: value) != nil else {
                error(keyword, "unsupported sni expression '\(value)'",
                      hint: "use 'sni str(<name>)' for a fixed name, or 'sni ssl_fc_sni' to pass on the TLS client's")
                return false
            }
            options.sni = value
        case "ssl-min-ver", "ssl-max-ver":
            guard let name = sslVersion(option, value, keyword: keyword), let version = TLSProtocolVersion(rawValue: name) else { return false }
            if option == "ssl-min-ver" { options.sslMinVersion = version } else { options.sslMaxVersion = version }
        case "ciphers": options.ciphers = value
        case "ciphersuites": options.ciphersuites = value
        case "crl-file": options.crlFile = value
        case "verifyhost": options.verifyHost = value
        case "ca-file": options.caFile = value
        case "crt": options.crt = value
        case "alpn": options.alpn = value.split(separator: ",").map(String.init)
        case "source":
            guard let pool = sourcePool(value, keyword: keyword) else { return false }
            options.source = pool
        case "usesrc", "interface":
            refuseSourceOption(option, keyword: keyword)
            return false
        case "proxy-v2-options":
            let names = value.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            for name in names where !Self.proxyV2OptionNames.contains(name) {
                let hint = ConfigKeywords.suggestion(for: name, among: Self.proxyV2OptionNames).map { "did you mean '\($0)'?" }
                error(keyword, "unknown proxy-v2-options value '\(name)'", hint: hint ?? "known: " + Self.proxyV2OptionNames.joined(separator: ", "))
                return false
            }
            options.proxyV2Options = names
        default:
            error(keyword, "unknown option '\(option)'")
            return false
        }
        return true
    }

    static let serverFlags: [String: @Sendable (inout ServerOptions) -> Void] = [
        "check": { $0.check = true },
        "no-check": { $0.check = false },
        "backup": { $0.backup = true },
        "no-backup": { $0.backup = false },
        "send-proxy": { $0.sendProxy = true },
        "no-send-proxy": { $0.sendProxy = false },
        "send-proxy-v2": { $0.sendProxyV2 = true },
        "no-send-proxy-v2": { $0.sendProxyV2 = false },
        "check-send-proxy": { $0.checkSendProxy = true },
        "send-proxy-v2-ssl": { $0.sendProxyV2SSL = true },
        "send-proxy-v2-ssl-cn": { $0.sendProxyV2SSLCN = true },
        "disabled": { $0.disabled = true },
        "enabled": { $0.disabled = false },
        "ssl": { $0.ssl = true },
        "no-ssl": { $0.ssl = false },
        "no-ssl-reuse": { $0.sslReuse = false },
        "ssl-reuse": { $0.sslReuse = true },
        "no-tls-tickets": { $0.tlsTickets = false },
        "tls-tickets": { $0.tlsTickets = true },
    ]

    static let serverValueOptions = [
        "inter", "fastinter", "downinter", "slowstart", "rise", "fall", "weight", "maxconn",
        "maxqueue", "port", "id", "verify", "sni", "ca-file", "crt", "alpn", "proxy-v2-options",
        "addr", "observe", "error-limit", "on-error", "on-marked-down", "on-marked-up",
        "ssl-min-ver", "ssl-max-ver", "ciphers", "ciphersuites", "crl-file", "verifyhost",
        "source", "usesrc", "interface",
    ]

    /// HAProxy's `proxy-v2-options` values: one TLV each in the v2 header.
    static let proxyV2OptionNames = ["ssl", "cert-cn", "ssl-cipher", "cert-sig", "cert-key", "authority", "crc32c", "unique-id"]

    static let ignoredServerFlags = [
        "agent-check", "no-agent-check", "check-ssl", "no-check-ssl", "tfo", "no-tfo",
        "force-tlsv12", "force-tlsv13", "no-sslv3", "no-tlsv10", "no-tlsv11", "no-tlsv12",
        "no-tlsv13", "allow-0rtt", "non-stick", "stick", "check-reuse-pool", "no-verifyhost",
    ]

    static let ignoredServerValueOptions = [
        "resolvers", "init-addr", "resolve-prefer", "resolve-net", "resolve-opts", "agent-port",
        "agent-inter", "agent-send", "agent-addr", "cookie", "check-alpn", "check-sni", "check-proto",
        "proto", "namespace", "pool-max-conn", "pool-purge-delay", "pool-low-conn",
        "max-reuse", "redir", "log-proto", "shard", "tcp-ut", "socks4",
        "curves", "sigalgs", "client-sigalgs",
        "npn", "track", "hash-key", "ws", "guid",
    ]

    // MARK: source

    /// `source <addr>[-<addr>] [usesrc ...] [interface ...]` in a defaults, backend or listen
    /// section: the pool of the servers that set none themselves.
    mutating func readSource(_ words: [String]) {
        guard words.count >= 2 else {
            error("source", "missing address", hint: "expected 'source <address>[-<address>]', e.g. 'source 10.0.0.1-10.0.0.8'")
            return
        }
        guard let pool = sourcePool(words[1], keyword: "source") else { return }
        if let option = words.dropFirst(2).first {
            if option == "usesrc" || option == "interface" {
                refuseSourceOption(option, keyword: "source")
            } else {
                error("source", "unexpected '\(option)'", hint: "expected 'source <address>[-<address>]'")
            }
            return
        }
        draft!.settings.source = pool
    }

    mutating func sourcePool(_ text: String, keyword: String) -> SourcePool? {
        switch SourcePool.parse(text) {
        case .success(let pool): return pool
        case .failure(let problem):
            error(keyword, problem.message, hint: problem.hint)
            return nil
        }
    }

    /// `usesrc` (transparent proxying: the client's address as the source) and `interface`
    /// (SO_BINDTODEVICE) change where traffic leaves from; refused rather than ignored.
    mutating func refuseSourceOption(_ option: String, keyword: String) {
        if option == "usesrc" {
            error(keyword, "'usesrc' (transparent proxying with the client's address) is not supported by ringproxy",
                  hint: "use 'send-proxy-v2' to pass the client's address to the broker")
        } else {
            error(keyword, "'interface' on 'source' is not supported by ringproxy", hint: "choose the interface by the source address")
        }
    }

    // MARK: bind

    mutating func readBind(_ words: [String]) {
        draft!.hasBindLine = true
        guard words.count >= 2 else {
            error("bind", "missing address", hint: "expected 'bind <address>:<port>[,...] [options]', e.g. 'bind *:1883'")
            return
        }
        var addresses: [BindAddress] = []
        for piece in words[1].split(separator: ",", omittingEmptySubsequences: false) {
            guard let address = bindAddress(String(piece), line: words[1]) else { return }
            addresses.append(address)
        }
        var bind = FrontendBind(addresses: addresses, location: location)
        guard readBindOptions(words.dropFirst(2), into: &bind) else { return }
        if bind.ssl, bind.certificates.isEmpty {
            error("bind", "'ssl' needs a certificate", hint: "add 'crt <path to PEM file>'")
            return
        }
        if bind.ssl, let verify = bind.verify, verify != .none, bind.caFile == nil {
            error("bind", "'verify \(verify.rawValue)' needs 'ca-file'", hint: "name the CAs that sign client certificates: 'ca-file <path>'")
            return
        }
        if !bind.ssl, bind.hasTLSSettings {
            warning("bind", "TLS settings without 'ssl': this listener accepts plain TCP", hint: "add 'ssl' to terminate TLS")
        }
        draft!.binds.append(bind)
    }

    /// `*:1883`, `:1883`, `0.0.0.0:1883`, `[::]:1883`, `:::1883`, `host:1883-1890`.
    mutating func bindAddress(_ text: String, line: String) -> BindAddress? {
        var address = text
        for prefix in ["ipv4@", "ipv6@", "tcp@", "tcp4@", "tcp6@"] where address.hasPrefix(prefix) {
            address = String(address.dropFirst(prefix.count))
        }
        if address.contains("@") || address.hasPrefix("/") {
            error("bind", "address '\(text)' is not supported by ringproxy", hint: "ringproxy listens on TCP addresses: '*:1883'")
            return nil
        }
        guard !address.isEmpty, let (hostText, portText) = AddressText.split(address) else {
            error("bind", "invalid address '\(text)' in '\(line)'", hint: "e.g. *:1883, 0.0.0.0:1883 or [::]:1883")
            return nil
        }
        guard let portText, !portText.isEmpty else {
            error("bind", "missing port in address '\(text)'", hint: "e.g. '*:1883'")
            return nil
        }
        let bounds = portText.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let low = ConfigUnits.port(bounds[0]), let high = bounds.count == 2 ? ConfigUnits.port(bounds[1]) : low, low <= high else {
            error("bind", "invalid port '\(portText)' in address '\(text)'", hint: "ports are 1 to 65535; a range is written 1883-1890")
            return nil
        }
        let host: String? = hostText.isEmpty || hostText == "*" ? nil : hostText
        if let host, !AddressText.isValidHost(host) {
            error("bind", "invalid host '\(host)' in address '\(text)'",
                  hint: host.contains(":") ? "write IPv6 addresses in brackets: [::]:1883" : nil)
            return nil
        }
        return BindAddress(host: host, ports: low...high)
    }

    /// Reads bind options into `bind`; false after an error.
    mutating func readBindOptions(_ words: ArraySlice<String>, into bind: inout FrontendBind) -> Bool {
        var index = words.startIndex
        var failed = false
        while index < words.endIndex {
            let option = words[index]
            index += 1
            switch option {
            case "ssl": bind.ssl = true
            case "accept-proxy": bind.acceptProxy = true
            default:
                if readBindTLSFlag(option, into: &bind) { continue }
                if let refused = Self.refusedBindTLSOptions[option] {
                    error("bind", refused.reason, hint: refused.hint)
                    if refused.takesValue { index += 1 }
                    failed = true
                    continue
                }
                if Self.ignoredBindFlags.contains(option) {
                    warning("bind", "'\(option)' ignored: not implemented by ringproxy")
                    continue
                }
                let known = Self.bindValueOptions.contains(option) || Self.ignoredBindValueOptions.contains(option)
                guard known else {
                    if option == "crt-list" {
                        error("bind", "'crt-list' is not supported by ringproxy", hint: "list certificates with several 'crt <path>'")
                        index += 1  // its file name
                    } else {
                        let candidates = ["ssl", "accept-proxy"] + Self.bindValueOptions + Self.ignoredBindFlags + Self.ignoredBindValueOptions
                            + Self.bindTLSFlags + Array(Self.refusedBindTLSOptions.keys)
                        let hint = ConfigKeywords.suggestion(for: option, among: candidates).map { "did you mean '\($0)'?" }
                        error("bind", "unknown option '\(option)'", hint: hint)
                    }
                    failed = true
                    continue
                }
                guard index < words.endIndex else {
                    error("bind", "missing value after '\(option)'")
                    return false
                }
                let value = words[index]
                index += 1
                if Self.ignoredBindValueOptions.contains(option) {
                    warning("bind", "'\(option) \(value)' ignored: not implemented by ringproxy")
                    continue
                }
                switch option {
                case "crt": bind.certificates.append(value)
                case "ca-file": bind.caFile = value
                case "crl-file": bind.crlFile = value
                case "verify":
                    guard let verify = TLSVerify(rawValue: value) else {
                        error("bind", "invalid verify '\(value)'", hint: "expected none, optional or required")
                        failed = true
                        continue
                    }
                    bind.verify = verify
                case "alpn": bind.alpn = value.split(separator: ",").map(String.init)
                case "name": bind.name = value
                case "ciphers": bind.ciphers = value
                case "ciphersuites": bind.ciphersuites = value
                case "ssl-min-ver", "ssl-max-ver":
                    guard let version = sslVersion(option, value, keyword: "bind") else {
                        failed = true
                        continue
                    }
                    if option == "ssl-min-ver" { bind.sslMinVersion = version } else { bind.sslMaxVersion = version }
                case "curves": bind.curves = value
                case "ecdhe": bind.ecdhe = value
                case "sigalgs": bind.sigalgs = value
                case "client-sigalgs": bind.clientSigalgs = value
                case "maxconn":
                    guard let number = integer(value, in: 1...Int(Int32.max), keyword: "bind", what: "maxconn") else {
                        failed = true
                        continue
                    }
                    bind.maxconn = number
                default:
                    break
                }
            }
        }
        return !failed
    }

    static let bindValueOptions = [
        "crt", "ca-file", "crl-file", "verify", "alpn", "name", "ciphers", "ciphersuites",
        "ssl-min-ver", "ssl-max-ver", "maxconn", "curves", "ecdhe", "sigalgs", "client-sigalgs",
    ]

    /// Socket and process options with no TLS meaning (TLS ones: ConfigParser+TLS.swift).
    static let ignoredBindFlags = [
        "v4v6", "v6only", "transparent", "tfo", "defer-accept", "quic-force-retry",
    ]

    static let ignoredBindValueOptions = [
        "backlog", "id", "interface", "mss", "nice", "process", "thread", "tcp-ut", "user",
        "group", "uid", "gid", "mode", "namespace", "level",
        "severity-output", "expose-fd", "shards", "label", "quic-cc-algo", "proto",
        "idle-ping", "guid-prefix",
    ]
}
