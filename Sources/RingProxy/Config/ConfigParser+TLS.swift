// Reads the TLS words of `bind` lines (the protocol versions, tickets, cipher preference, SNI)
// and the global `ssl-default-bind-*` and `tune.ssl.*` lines. Every TLS keyword either maps to
// TLSBindConfig (EngineConfig+ConfigFile.swift) or is refused at its line: none is ignored.

extension ConfigParser.State {
    /// HAProxy's protocol names, oldest first (`ssl-min-ver`, `ssl-max-ver`).
    static let sslVersionNames = ["SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
    /// ringproxy's record layer and kTLS hand-off speak TLS 1.2 and 1.3 only (and Debian's
    /// OpenSSL 3 refuses TLS 1.0/1.1 at its default security level anyway).
    static let sslVersionFloor = "TLSv1.2"
    static let belowFloor = "ringproxy terminates TLS 1.2 and 1.3 only"

    /// `no-tlsv12` -> ("no", "TLSv1.2"); `force-sslv3` -> ("force", "SSLv3"); nil for other words.
    static func versionOption(_ word: String) -> (action: String, version: String)? {
        let suffixes = ["sslv3": "SSLv3", "tlsv10": "TLSv1.0", "tlsv11": "TLSv1.1", "tlsv12": "TLSv1.2", "tlsv13": "TLSv1.3"]
        for action in ["no", "force"] where word.hasPrefix(action + "-") {
            if let version = suffixes[String(word.dropFirst(action.count + 1))] { return (action, version) }
        }
        return nil
    }

    static func isBelowFloor(_ version: String) -> Bool {
        sslVersionNames.firstIndex(of: version)! < sslVersionNames.firstIndex(of: sslVersionFloor)!
    }

    /// `no-*` / `force-*` (HAProxy's parse_tls_method_options): `no-` disables one version,
    /// `force-` sets the minimum and maximum to it. Forcing a version below the floor is
    /// refused; disabling one is a no-op, accepted. False after an error.
    mutating func readVersionOption(_ word: String, keyword: String, disabled: inout Set<String>, min: inout String?, max: inout String?) -> Bool {
        guard let (action, version) = Self.versionOption(word) else { return false }
        if action == "no" {
            disabled.insert(version)
            return true
        }
        guard !Self.isBelowFloor(version) else {
            error(keyword, "'\(word)' is below the TLS 1.2 floor: \(Self.belowFloor)", hint: "remove it, or use 'ssl-min-ver TLSv1.2'")
            return false
        }
        min = version
        max = version
        return true
    }

    /// `ssl-min-ver X` / `ssl-max-ver X`; nil after an error.
    mutating func sslVersion(_ option: String, _ value: String, keyword: String) -> String? {
        guard Self.sslVersionNames.contains(value) else {
            error(keyword, "invalid '\(option)' value '\(value)'", hint: "known: " + Self.sslVersionNames.joined(separator: ", "))
            return nil
        }
        guard !Self.isBelowFloor(value) else {
            error(keyword, "'\(option) \(value)' is below the TLS 1.2 floor: \(Self.belowFloor)", hint: "use '\(option) TLSv1.2' or leave it out")
            return nil
        }
        return value
    }

    // MARK: bind

    /// The TLS flags of a bind line; false when `option` is not one.
    mutating func readBindTLSFlag(_ option: String, into bind: inout FrontendBind) -> Bool {
        switch option {
        case "no-tls-tickets": bind.tickets = false
        case "tls-tickets": bind.tickets = true
        case "prefer-client-ciphers": bind.preferClientCiphers = true
        case "strict-sni": bind.strictSNI = true
        case "no-strict-sni": bind.strictSNI = false
        // HAProxy stores an empty ALPN list: no ALPN in the answer.
        case "no-alpn": bind.alpn = []
        default:
            return readVersionOption(option, keyword: "bind", disabled: &bind.disabledVersions, min: &bind.sslMinVersion, max: &bind.sslMaxVersion)
                || Self.versionOption(option) != nil   // refused above: known, already reported
        }
        return true
    }

    static let bindTLSFlags = [
        "no-tls-tickets", "tls-tickets", "prefer-client-ciphers", "strict-sni", "no-strict-sni", "no-alpn",
        "no-sslv3", "no-tlsv10", "no-tlsv11", "no-tlsv12", "no-tlsv13",
        "force-sslv3", "force-tlsv10", "force-tlsv11", "force-tlsv12", "force-tlsv13",
    ]

    /// HAProxy TLS bind options ringproxy does not build: refused at their line with the
    /// reason (true: the option takes a value).
    static let refusedBindTLSOptions: [String: (takesValue: Bool, reason: String, hint: String?)] = [
        "npn": (true, "NPN is not supported: OpenSSL's TLS 1.3 path has no NPN and clients negotiate with ALPN", "use 'alpn'"),
        "ca-ignore-err": (true, "ignoring certificate verification errors is not implemented by ringproxy", "fix the client certificates' chains, or use 'verify optional'"),
        "crt-ignore-err": (true, "ignoring certificate verification errors is not implemented by ringproxy", "fix the client certificates, or use 'verify optional'"),
        "ca-verify-file": (true, "'ca-verify-file' (CAs used for verification but not named to clients) is not implemented by ringproxy", "use 'ca-file'"),
        "ca-sign-file": (true, "generating certificates is not implemented by ringproxy", nil),
        "ca-sign-pass": (true, "generating certificates is not implemented by ringproxy", nil),
        "tls-ticket-keys": (true, "shared ticket keys are not implemented by ringproxy: each context draws its own at random, rotated at every reload", "remove it"),
        "generate-certificates": (false, "generating certificates is not implemented by ringproxy", nil),
        "allow-0rtt": (false, "TLS 1.3 early data (0-RTT) is not implemented by ringproxy", "remove it: clients then send their data after the handshake"),
        "no-ca-names": (false, "'no-ca-names' is not implemented by ringproxy: the CA names of 'ca-file' are sent to clients", "remove it"),
    ]

    // MARK: global

    /// `ssl-default-bind-*`, `ssl-dh-param-file` and `tune.ssl.*`; false for other keywords.
    mutating func readGlobalTLS(_ words: [String]) -> Bool {
        let keyword = words[0]
        switch keyword {
        case "ssl-default-bind-ciphers", "ssl-default-bind-ciphersuites", "ssl-default-bind-curves",
             "ssl-default-bind-sigalgs", "ssl-default-bind-client-sigalgs":
            guard expect(words, arguments: 1, keyword: keyword, usage: "\(keyword) <list>") else { return true }
            switch keyword {
            case "ssl-default-bind-ciphers": config.global.sslDefaultBind.ciphers = words[1]
            case "ssl-default-bind-ciphersuites": config.global.sslDefaultBind.ciphersuites = words[1]
            case "ssl-default-bind-curves": config.global.sslDefaultBind.curves = words[1]
            case "ssl-default-bind-sigalgs": config.global.sslDefaultBind.sigalgs = words[1]
            default: config.global.sslDefaultBind.clientSigalgs = words[1]
            }
        case "ssl-default-bind-options":
            readDefaultBindOptions(words)
        case "ssl-server-verify":
            guard expect(words, arguments: 1, keyword: keyword, usage: "ssl-server-verify none|required") else { return true }
            guard let verify = TLSVerify(rawValue: words[1]), verify != .optional else {
                error(keyword, "invalid value '\(words[1])'", hint: "expected 'none' or 'required'")
                return true
            }
            config.global.sslServerVerify = verify
        case "ssl-default-server-ciphers":
            guard expect(words, arguments: 1, keyword: keyword, usage: "\(keyword) <list>") else { return true }
            config.global.sslDefaultServer.ciphers = words[1]
        case "ssl-default-server-ciphersuites":
            guard expect(words, arguments: 1, keyword: keyword, usage: "\(keyword) <list>") else { return true }
            config.global.sslDefaultServer.ciphersuites = words[1]
        case "ssl-default-server-options":
            readDefaultServerOptions(words)
        case "tune.ssl.cachesize":
            guard expect(words, arguments: 1, keyword: keyword, usage: "tune.ssl.cachesize <sessions>") else { return true }
            config.global.sslCacheEntriesMax = integer(words[1], in: 0...Int(Int32.max), keyword: keyword, what: "value")
        case "tune.ssl.lifetime":
            guard expect(words, arguments: 1, keyword: keyword, usage: "tune.ssl.lifetime <time>") else { return true }
            // HAProxy reads this time in seconds when it has no unit.
            let text = words[1].allSatisfy(\.isNumber) ? words[1] + "s" : words[1]
            guard let ms = milliseconds(text, keyword: keyword, what: keyword) else { return true }
            guard ms > 0 else {
                error(keyword, "the lifetime must be at least 1s")
                return true
            }
            config.global.sslLifetimeS = (ms + 999) / 1000
        case "tune.ssl.default-dh-param":
            guard expect(words, arguments: 1, keyword: keyword, usage: "tune.ssl.default-dh-param <bits>") else { return true }
            guard integer(words[1], in: 1024...Int(Int32.max), keyword: keyword, what: "value") != nil else { return true }
            warning(keyword, "has no effect: ringproxy's key exchange is ECDHE (TLS 1.2) or a TLS 1.3 group, never finite-field DH")
        case "ssl-dh-param-file":
            guard expect(words, arguments: 1, keyword: keyword, usage: "ssl-dh-param-file <file>") else { return true }
            warning(keyword, "has no effect: ringproxy's key exchange is ECDHE (TLS 1.2) or a TLS 1.3 group, never finite-field DH")
        default:
            return false
        }
        return true
    }

    /// `ssl-default-server-options <option>...`: the options a `server` line takes that make
    /// sense for every server (HAProxy's ssl_parse_default_server_options).
    mutating func readDefaultServerOptions(_ words: [String]) {
        let keyword = words[0]
        guard words.count > 1 else {
            error(keyword, "missing argument", hint: "e.g. 'ssl-default-server-options ssl-min-ver TLSv1.2 no-tls-tickets'")
            return
        }
        var options = config.global.sslDefaultServer
        var index = 1
        while index < words.count {
            let word = words[index]
            index += 1
            switch word {
            case "no-tls-tickets": options.tlsTickets = false
            case "tls-tickets": options.tlsTickets = true
            case "no-ssl-reuse": options.sslReuse = false
            case "ssl-reuse": options.sslReuse = true
            case "ssl-min-ver", "ssl-max-ver":
                guard index < words.count else {
                    error(keyword, "missing value after '\(word)'")
                    return
                }
                let value = words[index]
                index += 1
                guard let name = sslVersion(word, value, keyword: keyword), let version = TLSProtocolVersion(rawValue: name) else { return }
                if word == "ssl-min-ver" { options.sslMinVersion = version } else { options.sslMaxVersion = version }
            default:
                let known = ["no-tls-tickets", "tls-tickets", "no-ssl-reuse", "ssl-reuse", "ssl-min-ver", "ssl-max-ver"]
                let hint = ConfigKeywords.suggestion(for: word, among: known).map { "did you mean '\($0)'?" }
                error(keyword, "unknown or unsupported option '\(word)'", hint: hint ?? "known: " + known.joined(separator: ", "))
                return
            }
        }
        config.global.sslDefaultServer = options
    }

    /// `ssl-default-bind-options <option>...` (HAProxy's ssl_parse_default_bind_options).
    mutating func readDefaultBindOptions(_ words: [String]) {
        let keyword = words[0]
        guard words.count > 1 else {
            error(keyword, "missing argument", hint: "e.g. 'ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets'")
            return
        }
        var options = config.global.sslDefaultBind
        var index = 1
        var failed = false
        while index < words.count {
            let word = words[index]
            index += 1
            switch word {
            case "no-tls-tickets": options.noTLSTickets = true
            case "tls-tickets": options.noTLSTickets = false
            case "prefer-client-ciphers": options.preferClientCiphers = true
            case "strict-sni": options.strictSNI = true
            case "no-strict-sni": options.strictSNI = false
            case "ssl-min-ver", "ssl-max-ver":
                guard index < words.count else {
                    error(keyword, "missing value after '\(word)'")
                    return
                }
                let value = words[index]
                index += 1
                guard let version = sslVersion(word, value, keyword: keyword) else {
                    failed = true
                    continue
                }
                if word == "ssl-min-ver" { options.sslMinVersion = version } else { options.sslMaxVersion = version }
            default:
                if Self.versionOption(word) != nil {
                    if !readVersionOption(word, keyword: keyword, disabled: &options.disabledVersions,
                                          min: &options.sslMinVersion, max: &options.sslMaxVersion) { failed = true }
                    continue
                }
                let known = ["no-tls-tickets", "tls-tickets", "prefer-client-ciphers", "strict-sni", "no-strict-sni", "ssl-min-ver", "ssl-max-ver"]
                    + Self.bindTLSFlags.filter { Self.versionOption($0) != nil }
                let hint = ConfigKeywords.suggestion(for: word, among: known).map { "did you mean '\($0)'?" }
                error(keyword, "unknown option '\(word)'", hint: hint ?? "known: " + known.joined(separator: ", "))
                failed = true
            }
        }
        guard !failed else { return }
        options.optionsLocation = location
        config.global.sslDefaultBind = options
    }
}
