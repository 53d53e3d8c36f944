// Reads `tcp-check` lines: the steps of a check in `option tcp-check` backends. What a check
// of an MQTT broker needs is read (connect with port/send-proxy, send, send-binary, expect
// string/binary, comment); every other form is refused at its line, since a check that
// silently skipped a step would call a broken server healthy.

extension ConfigParser.State {
    mutating func readTCPCheck(_ words: [String]) {
        guard words.count >= 2 else {
            error("tcp-check", "missing action", hint: "e.g. 'tcp-check send-binary 101000...' or 'tcp-check expect binary 20020000'")
            return
        }
        let keyword = "tcp-check \(words[1])"
        let rest = Array(words.dropFirst(2))
        let action: TCPCheckRule.Action
        switch words[1] {
        case "connect":
            guard let connect = readCheckConnect(rest, keyword: keyword) else { return }
            if draft!.settings.tcpCheckRules.contains(where: { if case .connect = $0.action { return true } else { return false } }) {
                error(keyword, "a second 'tcp-check connect' is not supported: ringproxy checks over one connection")
                return
            }
            if draft!.settings.tcpCheckRules.contains(where: { $0.action != .comment }) {
                error(keyword, "'tcp-check connect' must come before the other tcp-check rules",
                      hint: "without it the check connects first anyway")
                return
            }
            action = connect
        case "send", "send-binary":
            guard let data = rest.first else {
                error(keyword, "missing data", hint: words[1] == "send" ? "e.g. 'tcp-check send PING\\r\\n'" : "e.g. 'tcp-check send-binary e000'")
                return
            }
            guard readCheckTail(rest.dropFirst(), keyword: keyword) else { return }
            if words[1] == "send" {
                action = .send(Array(data.utf8))
            } else {
                guard let bytes = Self.hexBytes(data) else {
                    error(keyword, "invalid hexadecimal string '\(data.prefix(40))'", hint: "an even number of hex digits, e.g. 101000044d515454")
                    return
                }
                action = .send(bytes)
            }
        case "expect":
            guard let expect = readCheckExpect(rest, keyword: keyword) else { return }
            action = expect
        case "comment":
            guard rest.count == 1 else {
                error(keyword, rest.isEmpty ? "missing text" : "unexpected '\(rest[1])'", hint: "quote a comment with spaces")
                return
            }
            action = .comment
        case "send-lf", "expect-lf", "set-var", "set-var-fmt", "unset-var", "send-binary-lf":
            error(keyword, "not supported by ringproxy", hint: "ringproxy reads connect, send, send-binary, expect string|binary and comment")
            return
        default:
            let actions = ["connect", "send", "send-binary", "expect", "comment"]
            let hint = ConfigKeywords.suggestion(for: words[1], among: actions).map { "did you mean 'tcp-check \($0)'?" }
            error("tcp-check", "unknown action '\(words[1])'", hint: hint ?? "expected one of " + actions.joined(separator: ", "))
            return
        }
        draft!.settings.tcpCheckRules.append(TCPCheckRule(action: action, location: location))
    }

    /// `connect [port N] [send-proxy] [comment X] [default]`.
    private mutating func readCheckConnect(_ words: [String], keyword: String) -> TCPCheckRule.Action? {
        var port: Int?
        var sendProxy = false
        var i = 0
        while i < words.count {
            switch words[i] {
            case "port":
                guard i + 1 < words.count, let value = ConfigUnits.port(words[i + 1]) else {
                    error(keyword, "'port' needs a port from 1 to 65535")
                    return nil
                }
                port = value
                i += 2
            case "send-proxy":
                sendProxy = true
                i += 1
            case "default":
                i += 1
            case "comment":
                guard i + 1 < words.count else {
                    error(keyword, "missing text after 'comment'")
                    return nil
                }
                i += 2
            default:
                error(keyword, "'\(words[i])' is not supported by ringproxy", hint: "ringproxy reads 'port', 'send-proxy', 'comment' and 'default'")
                return nil
            }
        }
        return .connect(port: port, sendProxy: sendProxy)
    }

    /// `expect [min-recv N] string|binary <pattern> [comment X]`; negation and the regex,
    /// log-format and status-code forms are refused.
    private mutating func readCheckExpect(_ words: [String], keyword: String) -> TCPCheckRule.Action? {
        guard let kind = words.first else {
            error(keyword, "missing pattern", hint: "e.g. 'tcp-check expect binary 20020000'")
            return nil
        }
        switch kind {
        case "string", "binary":
            guard words.count >= 2 else {
                error(keyword, "missing pattern after '\(kind)'")
                return nil
            }
            guard readCheckTail(words.dropFirst(2), keyword: keyword) else { return nil }
            if kind == "string" { return .expect(Array(words[1].utf8)) }
            guard let bytes = Self.hexBytes(words[1]), !bytes.isEmpty else {
                error(keyword, "invalid hexadecimal string '\(words[1].prefix(40))'", hint: "an even number of hex digits, e.g. 20020000")
                return nil
            }
            return .expect(bytes)
        case "!":
            error(keyword, "negated expects ('!') are not supported by ringproxy", hint: "expect what a healthy server sends")
        case "min-recv":
            error(keyword, "'min-recv' is not supported by ringproxy", hint: "'expect binary' waits until the pattern has arrived")
        default:
            error(keyword, "'expect \(kind)' is not supported by ringproxy", hint: "use 'expect string <text>' or 'expect binary <hex>'")
        }
        return nil
    }

    /// What may follow a rule's data: `comment <text>`.
    private mutating func readCheckTail(_ words: ArraySlice<String>, keyword: String) -> Bool {
        guard let first = words.first else { return true }
        if first == "comment" && words.count == 2 { return true }
        error(keyword, "unexpected '\(first)'", hint: "only 'comment <text>' may follow")
        return false
    }

    /// "20020000" -> [0x20, 0x02, 0x00, 0x00]; nil when not an even run of hex digits.
    static func hexBytes(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var i = 0
        while i < digits.count {
            guard let high = hexValue(digits[i]), let low = hexValue(digits[i + 1]) else { return nil }
            bytes.append(high << 4 | low)
            i += 2
        }
        return bytes
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
