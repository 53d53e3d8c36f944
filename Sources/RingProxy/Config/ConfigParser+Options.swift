// ConfigParser+Options: `option ...` and `no option ...` in a proxy section: HAProxy's options
// ringproxy honours or refuses at their line, `option redispatch`, and ringproxy's MQTT
// extensions (`mqtt-websocket`, `mqtt-keepalive-timeout`, `mqtt-connack-redispatch`).

extension ConfigParser.State {
    /// `option <name>` (or `no option <name>`); `keywordWords` is how many words come before
    /// the option name.
    mutating func readOption(_ words: [String], enabled: Bool, keywordWords: Int) {
        let prefix = words.prefix(keywordWords).joined(separator: " ")
        guard words.count > keywordWords else {
            error(prefix, "missing option name", hint: "e.g. '\(prefix) tcplog'")
            return
        }
        let name = words[keywordWords]
        let keyword = "\(prefix) \(name)"
        let arguments = words.dropFirst(keywordWords + 1)
        if let reason = ConfigKeywords.optionsUnsupported[name] {
            if enabled { error(keyword, reason) }
            return
        }
        if let placement = ConfigKeywords.options[name] {
            guard allowed(keyword, placement) else { return }
            switch name {
            case "tcplog":
                draft!.settings.options.tcplog = enabled
            case "httplog":
                draft!.settings.options.httplog = enabled
            case "dontlognull":
                draft!.settings.options.dontlognull = enabled
            case "redispatch":
                readRedispatch(keyword, arguments, enabled: enabled)
                return
            case "tcp-check":
                draft!.settings.healthCheck = enabled ? .tcpCheck : .layer4
            case "mqtt-check":
                draft!.settings.healthCheck = enabled ? .mqttCheck : .layer4
            case "allbackups":
                draft!.settings.options.allBackups = enabled
            case "mqtt-connack-redispatch":
                draft!.settings.options.connackRedispatch = enabled
            case "mqtt-websocket", "mqtt-keepalive-timeout":
                guard enabled else {
                    // `no option ...` takes no argument and turns the extension off.
                    if let extra = arguments.first { error(keyword, "unexpected '\(extra)'", hint: "'\(keyword)' takes no argument") }
                    if name == "mqtt-websocket" { draft!.settings.mqttWebSocket = .off } else { draft!.settings.mqttKeepAliveTimeout = .off }
                    return
                }
                if name == "mqtt-websocket" { readMQTTWebSocket(keyword, Array(arguments)) } else { readMQTTKeepAliveTimeout(keyword, Array(arguments)) }
                return
            default:
                break
            }
            let allowedArguments = name == "httplog" ? ["clf"] : []
            if let extra = arguments.first(where: { !allowedArguments.contains($0) }) {
                error(keyword, "unexpected '\(extra)'", hint: "'\(keyword)' takes no argument")
            }
            if enabled, let reason = ConfigKeywords.optionsIgnored[name] {
                warning(keyword, reason)
            }
            return
        }
        if let reason = ConfigKeywords.optionsIgnored[name] {
            warning(keyword, reason)
            return
        }
        let candidates = ConfigKeywords.keywords(validIn: kind).filter { $0.hasPrefix("option ") }
        let guess = ConfigKeywords.suggestion(for: "option \(name)", among: candidates)
        error("", "unknown keyword '\(keyword)' in \(kind.rawValue) section",
              hint: guess.map { "did you mean '\(enabled ? $0 : "no " + $0)'?" })
    }

    /// `option redispatch [<interval>]` and `no option redispatch`. The engine retries every
    /// failed connection attempt on the next server (Worker+Connect.swift) and cannot retry the
    /// same one, so only what asks for that is accepted: `option redispatch 1` (every retry) and
    /// plain `option redispatch` (HAProxy's interval -1: every retry for a connection that is
    /// not persistent on roundrobin or leastconn, the last retry only for a hashed or sticky
    /// one, which ringproxy moves sooner). Turning it off, or an interval that keeps some
    /// retries on the same server, is refused.
    mutating func readRedispatch(_ keyword: String, _ arguments: ArraySlice<String>, enabled: Bool) {
        let alwaysOn = "ringproxy always redispatches: each retry of a failed connection goes to the next server"
        let sameServer = "\(alwaysOn); retrying the same server is not supported"
        let removeHint = "remove it; 'retries 0' gives up after the first failed attempt instead"
        guard enabled else {
            error(keyword, sameServer, hint: removeHint)
            return
        }
        guard let text = arguments.first else {
            draft!.settings.options.redispatch = true
            return
        }
        guard let interval = Int(text), arguments.count == 1 else {
            let extra = Int(text) == nil ? text : arguments[arguments.startIndex + 1]
            error(keyword, "unexpected '\(extra)'", hint: "'\(keyword)' takes at most one number, the retries between redispatches")
            return
        }
        switch interval {
        case 1:
            draft!.settings.options.redispatch = true
        case 0:
            error(keyword, "an interval of 0 turns it off; \(sameServer)", hint: removeHint)
        default:
            error(keyword, "redispatching on some retries only (interval \(interval)) is not supported; \(alwaysOn)",
                  hint: "use 'option redispatch 1' or plain 'option redispatch'")
        }
    }
}

extension ConfigParser.State {
    /// `option mqtt-websocket [path <path>] [subprotocol required|optional]`.
    mutating func readMQTTWebSocket(_ keyword: String, _ arguments: [String]) {
        let usage = "option mqtt-websocket [path /mqtt] [subprotocol required|optional]"
        var path: String?
        var requireSubprotocol = true
        var i = 0
        while i < arguments.count {
            guard i + 1 < arguments.count else {
                error(keyword, "missing value after '\(arguments[i])'", hint: usage)
                return
            }
            let value = arguments[i + 1]
            switch arguments[i] {
            case "path":
                guard value.hasPrefix("/"), !value.contains("?"), !value.contains(where: { $0 == " " || $0.asciiValue.map { $0 < 0x21 || $0 > 0x7E } ?? true }) else {
                    error(keyword, "invalid path '\(value)'", hint: "an absolute path without query, e.g. /mqtt")
                    return
                }
                path = value
            case "subprotocol":
                switch value {
                case "required": requireSubprotocol = true
                case "optional": requireSubprotocol = false
                default:
                    error(keyword, "invalid subprotocol setting '\(value)'", hint: "expected 'required' or 'optional'")
                    return
                }
            default:
                error(keyword, "unexpected '\(arguments[i])'", hint: usage)
                return
            }
            i += 2
        }
        draft!.settings.mqttWebSocket = .on(path: path, requireSubprotocol: requireSubprotocol)
    }

    /// `option mqtt-keepalive-timeout [min <time>] [max <time>]`.
    mutating func readMQTTKeepAliveTimeout(_ keyword: String, _ arguments: [String]) {
        let usage = "option mqtt-keepalive-timeout [min <time>] [max <time>]"
        var bounds = MQTTKeepAliveBounds()
        for i in stride(from: 0, to: arguments.count, by: 2) {
            let name = arguments[i]
            guard name == "min" || name == "max" else { return error(keyword, "unexpected '\(name)'", hint: usage) }
            guard i + 1 < arguments.count else { return error(keyword, "missing time after '\(name)'", hint: usage) }
            guard let ms = milliseconds(arguments[i + 1], keyword: keyword, what: name) else { return }
            guard ms > 0 else { return error(keyword, "'\(name)' must be more than 0", hint: usage) }
            if name == "min" { bounds.minMs = ms } else { bounds.maxMs = ms }
        }
        if let low = bounds.minMs, let high = bounds.maxMs, low > high {
            error(keyword, "'min' (\(arguments[arguments.firstIndex(of: "min")! + 1])) is above 'max' (\(arguments[arguments.firstIndex(of: "max")! + 1]))")
            return
        }
        draft!.settings.mqttKeepAliveTimeout = .on(bounds)
    }
}
