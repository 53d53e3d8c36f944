// Reads the lines of the `global` section, and `log` lines wherever they are. Process-level
// HAProxy settings that make no sense for ringproxy are accepted with a warning that says why.
import Foundation

extension ConfigParser.State {
    mutating func readGlobal(_ words: [String]) {
        let keyword = words[0]
        if keyword == "tune.bufsize" {
            // HAProxy's buffer size bounds what `req.payload` can see, so the largest CONNECT
            // its rules can inspect: ringproxy holds a CONNECT up to this size.
            guard expect(words, arguments: 1, keyword: keyword, usage: "tune.bufsize <bytes>") else { return }
            switch ConfigUnits.size(words[1]) {
            case .success(let value) where (1_024...(16 << 20)).contains(value):
                config.global.bufsize = value
            case .success(let value):
                error(keyword, "\(value) is out of range", hint: "allowed: 1024 to 16777216 bytes, the largest MQTT CONNECT held while inspecting")
            case .failure(let problem):
                error(keyword, problem)
            }
            return
        }
        if readGlobalTLS(words) { return }
        if keyword.hasPrefix("tune.") {
            warning(keyword, "ignored: HAProxy tuning has no ringproxy equivalent")
            return
        }
        if keyword == "stats" && readGlobalStats(words) { return }
        if let reason = ConfigKeywords.globalUnsupported[keyword] {
            error(keyword, reason)
            return
        }
        if let reason = ConfigKeywords.globalIgnored[keyword] {
            let shown = keyword == "stats" && words.count > 1 ? "stats \(words[1])" : keyword
            warning(shown, reason)
            return
        }
        guard ConfigKeywords.global.contains(keyword) else {
            if ConfigKeywords.proxy[keyword] != nil || ConfigKeywords.proxyIgnored[keyword] != nil {
                error(keyword, "not allowed in global section", hint: "it belongs in a defaults, frontend, backend or listen section")
            } else {
                unknownKeyword(keyword, in: .global)
            }
            return
        }
        switch keyword {
        case "log":
            if words.count >= 2, words[1] == "global" {
                error("log", "'log global' is for proxies", hint: "the global section declares the targets: 'log 127.0.0.1 local0'")
                return
            }
            if let target = logTarget(words) { config.global.logTargets.append(target) }
        case "maxconn":
            guard expect(words, arguments: 1, keyword: keyword, usage: "maxconn <number>") else { return }
            config.global.maxconn = integer(words[1], in: 1...Int(Int32.max), keyword: keyword, what: "value")
        case "maxsslrate":
            guard expect(words, arguments: 1, keyword: keyword, usage: "maxsslrate <new TLS sessions per second>") else { return }
            config.global.maxSSLRate = integer(words[1], in: 1...Int(Int32.max), keyword: keyword, what: "value")
        case "nbthread":
            guard expect(words, arguments: 1, keyword: keyword, usage: "nbthread <number>") else { return }
            config.global.nbthread = integer(words[1], in: 1...4096, keyword: keyword, what: "value")
        case "hard-stop-after":
            guard expect(words, arguments: 1, keyword: keyword, usage: "hard-stop-after <time>") else { return }
            config.global.hardStopAfterMs = milliseconds(words[1], keyword: keyword)
        case "daemon":
            guard expect(words, arguments: 0, keyword: keyword, usage: "daemon") else { return }
            config.global.daemon = true
            warning(keyword, "ignored: ringproxy runs in the foreground; use systemd")
        case "crt-base":
            guard expect(words, arguments: 1, keyword: keyword, usage: "crt-base <directory>") else { return }
            config.global.crtBase = words[1]
        case "ca-base":
            guard expect(words, arguments: 1, keyword: keyword, usage: "ca-base <directory>") else { return }
            config.global.caBase = words[1]
        case "setenv", "presetenv":
            guard expect(words, arguments: 2, keyword: keyword, usage: "\(keyword) <name> <value>") else { return }
            if keyword == "setenv" || environment[words[1]] == nil {
                environment[words[1]] = words[2]
            }
        case "unsetenv":
            for name in words.dropFirst() { environment[name] = nil }
        case "resetenv":
            let kept = Set(words.dropFirst())
            environment = environment.filter { kept.contains($0.key) }
        default:
            unknownKeyword(keyword, in: .global)
        }
    }

    /// `log <address> [len <n>] [format <f>] [sample <r>:<n>] <facility> [<level> [<minlevel>]]`
    mutating func logTarget(_ words: [String]) -> LogTarget? {
        let usage = "log <address> [len <length>] [format <format>] <facility> [<level> [<minlevel>]]"
        guard words.count >= 2 else {
            error("log", "missing address", hint: "expected '\(usage)', e.g. 'log 127.0.0.1 local0 info' or 'log stderr local0'")
            return nil
        }
        guard let destination = logDestination(words[1]) else { return nil }
        var maxLength: Int?
        var format: String?
        var index = 2
        while index < words.count, ["len", "format", "sample", "profile"].contains(words[index]) {
            let option = words[index]
            guard index + 1 < words.count else {
                error("log", "missing value after '\(option)'", hint: "expected '\(usage)'")
                return nil
            }
            let value = words[index + 1]
            switch option {
            case "len":
                guard let length = integer(value, in: 80...65535, keyword: "log", what: "len") else { return nil }
                maxLength = length
            case "format":
                let formats = ["local", "rfc3164", "rfc5424", "short", "raw", "priority", "timed", "iso"]
                guard formats.contains(value) else {
                    error("log", "unknown log format '\(value)'", hint: "known: " + formats.joined(separator: ", "))
                    return nil
                }
                format = value
            default:
                warning("log", "'\(option) \(value)' ignored: not implemented by ringproxy")
            }
            index += 2
        }
        guard index < words.count else {
            error("log", "missing facility", hint: "expected '\(usage)', e.g. local0")
            return nil
        }
        guard let facility = SyslogFacility(rawValue: words[index]) else {
            let names = SyslogFacility.allCases.map(\.rawValue)
            let hint = ConfigKeywords.suggestion(for: words[index], among: names).map { "did you mean '\($0)'?" }
                ?? "known: " + names.joined(separator: ", ")
            error("log", "unknown facility '\(words[index])'", hint: hint)
            return nil
        }
        var levels: [SyslogLevel] = []
        for word in words.dropFirst(index + 1) {
            guard levels.count < 2 else {
                error("log", "unexpected '\(word)'", hint: "expected '\(usage)'")
                return nil
            }
            guard let level = SyslogLevel(rawValue: word) else {
                let names = SyslogLevel.allCases.map(\.rawValue)
                let hint = ConfigKeywords.suggestion(for: word, among: names).map { "did you mean '\($0)'?" }
                    ?? "known: " + names.joined(separator: ", ")
                error("log", "unknown level '\(word)'", hint: hint)
                return nil
            }
            levels.append(level)
        }
        return LogTarget(
            destination: destination, facility: facility, level: levels.first,
            minimumLevel: levels.count > 1 ? levels[1] : nil, maxLengthBytes: maxLength,
            format: format, location: location)
    }

    /// `127.0.0.1`, `127.0.0.1:514`, `[::1]:514`, `udp@host:port`, `/dev/log`, `stdout`, ...
    mutating func logDestination(_ text: String) -> LogTarget.Destination? {
        switch text {
        case "stdout", "fd@1": return .stdout
        case "stderr", "fd@2": return .stderr
        default: break
        }
        if text.hasPrefix("/") { return .unixSocket(path: text) }
        if text.hasPrefix("unix@") { return .unixSocket(path: String(text.dropFirst(5))) }
        var address = text
        for prefix in ["udp@", "udp4@", "udp6@", "ipv4@", "ipv6@"] where address.hasPrefix(prefix) {
            address = String(address.dropFirst(prefix.count))
        }
        if address.contains("@") {
            error("log", "log target '\(text)' is not supported by ringproxy",
                  hint: "use a UDP address, a UNIX socket path, stdout or stderr")
            return nil
        }
        guard let (host, portText) = AddressText.split(address), !host.isEmpty else {
            error("log", "invalid log address '\(text)'", hint: "e.g. 127.0.0.1, 127.0.0.1:514 or [::1]:514")
            return nil
        }
        var port = LogTarget.defaultSyslogPort
        if let portText, !portText.isEmpty {
            guard let parsed = ConfigUnits.port(portText) else {
                error("log", "invalid port '\(portText)' in log address '\(text)'", hint: "ports are 1 to 65535")
                return nil
            }
            port = parsed
        }
        guard AddressText.isValidHost(host) else {
            let bracketHint = address.filter({ $0 == ":" }).count > 1
                ? "write IPv6 addresses in brackets, e.g. [::1]:514: without them the text after the last colon is the port"
                : nil
            error("log", "invalid host '\(host)' in log address '\(text)'", hint: bracketHint)
            return nil
        }
        return .udp(host: host, port: port)
    }
}

/// Splitting and checking `host:port` text the way HAProxy reads addresses.
enum AddressText {
    /// `host:port` -> (host, port); `[v6]:port` -> (v6, port); `host` -> (host, nil). An IPv6
    /// address without brackets takes the text after its last colon as the port, as HAProxy
    /// documents for bind lines. Nil when a bracket is not closed.
    static func split(_ text: String) -> (host: String, port: String?)? {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if rest.isEmpty { return (host, nil) }
            guard rest.hasPrefix(":") else { return nil }
            return (host, String(rest.dropFirst()))
        }
        guard let colon = text.lastIndex(of: ":") else { return (text, nil) }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }

    /// An IPv4 or IPv6 literal, or a plausible host name.
    static func isValidHost(_ host: String) -> Bool {
        guard !host.isEmpty else { return false }
        if host.contains(":") {
            var buffer = [UInt8](repeating: 0, count: 16)
            return inet_pton(AF_INET6, host, &buffer) == 1
        }
        if host.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }) {
            var buffer = [UInt8](repeating: 0, count: 4)
            return inet_pton(AF_INET, host, &buffer) == 1
        }
        return host.unicodeScalars.allSatisfy { scalar in
            switch scalar {
            case "a"..."z", "A"..."Z", "0"..."9", "-", ".", "_": return true
            default: return false
            }
        } && !host.hasPrefix("-") && !host.hasPrefix(".")
    }
}
