// Reads `tcp-request inspect-delay|content|connection`, `stick-table` and
// `stick on|match|store-request` lines. Conditions and samples are read by ConditionParser;
// whether a referenced table exists is checked once the whole file is read.

extension ConfigParser.State {
    // MARK: tcp-request

    mutating func readTCPRequest(_ words: [String]) {
        guard words.count >= 2 else {
            error("tcp-request", "missing 'inspect-delay', 'content' or 'connection'",
                  hint: "e.g. 'tcp-request content reject unless { req.payload(0,0),mqtt_is_valid }'")
            return
        }
        let keyword = "tcp-request \(words[1])"
        if ConfigKeywords.tcpRequestUnsupported.contains(words[1]) {
            error(keyword, "not supported by ringproxy", hint: "use 'tcp-request connection' or 'tcp-request content'")
            return
        }
        guard ConfigKeywords.tcpRequestKeywords.contains(words[1]) else {
            let candidates = ConfigKeywords.tcpRequestKeywords.map { "tcp-request \($0)" }
            let guess = ConfigKeywords.suggestion(for: keyword, among: candidates)
            error("", "unknown keyword '\(keyword)' in \(kind.rawValue) section", hint: guess.map { "did you mean '\($0)'?" })
            return
        }
        if words[1] == "inspect-delay" {
            guard expect(words, arguments: 1, keyword: keyword, usage: "tcp-request inspect-delay <time>") else { return }
            if let value = milliseconds(words[2], keyword: keyword) {
                draft!.settings.inspectDelayMs = value
            }
            return
        }
        let phase: TCPRequestRule.Phase = words[1] == "content" ? .content : .connection
        let placement = KeywordPlacement(phase == .content ? [.frontend, .backend] : .frontend)
        guard allowed(keyword, placement) else { return }
        guard words.count >= 3 else {
            error(keyword, "missing action", hint: "expected '\(keyword) accept|reject [if|unless <condition>]'")
            return
        }
        guard let action = TCPRequestRule.Action(rawValue: words[2]) else {
            let actionName = String(words[2].prefix { $0 != "(" })
            if ConfigKeywords.tcpRequestUnsupportedActions.contains(actionName) {
                error(keyword, "action '\(words[2])' is not supported by ringproxy", hint: "supported: accept, reject")
            } else {
                let guess = ConfigKeywords.suggestion(for: words[2], among: TCPRequestRule.Action.allCases.map(\.rawValue))
                error(keyword, "unknown action '\(words[2])'", hint: guess.map { "did you mean '\($0)'?" } ?? "supported: accept, reject")
            }
            return
        }
        guard let condition = optionalCondition(words.dropFirst(3), keyword: keyword, after: "the action") else { return }
        if phase == .connection, let condition = condition.value, let fetch = contentFetch(in: condition) {
            error(keyword, "'\(fetch)' reads request contents, which do not exist yet when a 'tcp-request connection' rule runs",
                  hint: "use 'tcp-request content' instead")
            return
        }
        draft!.tcpRequestRules.append(TCPRequestRule(phase: phase, action: action, condition: condition.value, location: location))
    }

    /// The first fetch in `condition` (directly, or through a named ACL) that reads request
    /// contents.
    func contentFetch(in condition: RuleCondition) -> String? {
        for term in condition.alternatives.joined() {
            switch term.kind {
            case .anonymous(let expression):
                if Self.readsContents(expression.sample) { return expression.sample.fetch.name }
            case .named(let name):
                if name == "REQ_CONTENT" { return name }
                for acl in draft?.acls ?? [] where acl.name == name && Self.readsContents(acl.expression.sample) {
                    return acl.expression.sample.fetch.name
                }
            }
        }
        return nil
    }

    static func readsContents(_ sample: SampleExpression) -> Bool {
        sample.fetch.name == "req.payload" || sample.fetch.name == "req.len"
    }

    // MARK: stick-table

    mutating func readStickTable(_ words: [String]) {
        let usage = "stick-table type <type> [len <length>] size <size> [expire <time>] [nopurge] [peers <name>] [store <data>]"
        let example = "e.g. 'stick-table type string len 32 size 100k expire 30m'"
        if let existing = draft!.stickTable {
            error("stick-table", "a proxy has only one stick-table; the first is at line \(existing.location.line)")
            return
        }
        var type: StickTableSettings.KeyType?
        var length: Int?
        var size: Int?
        var expire: Int?
        var nopurge = false
        var peers: String?
        var store: [String] = []
        var index = 1
        let parameters = ["type", "len", "size", "expire", "nopurge", "peers", "store", "srvkey"]
        while index < words.count {
            let parameter = words[index]
            if parameter == "nopurge" {
                nopurge = true
                index += 1
                continue
            }
            guard parameters.contains(parameter) else {
                let hint = ConfigKeywords.suggestion(for: parameter, among: parameters).map { "did you mean '\($0)'?" }
                    ?? "expected '\(usage)'"
                error("stick-table", "unknown parameter '\(parameter)'", hint: hint)
                return
            }
            guard index + 1 < words.count else {
                error("stick-table", "missing value after '\(parameter)'", hint: example)
                return
            }
            let value = words[index + 1]
            switch parameter {
            case "type":
                guard let parsed = StickTableSettings.KeyType(rawValue: value) else {
                    error("stick-table", "unknown type '\(value)'",
                          hint: "known: " + StickTableSettings.KeyType.allCases.map(\.rawValue).joined(separator: ", "))
                    return
                }
                type = parsed
            case "len":
                guard let parsed = integer(value, in: 1...65535, keyword: "stick-table", what: "len") else { return }
                length = parsed
            case "size":
                switch ConfigUnits.size(value) {
                case .success(let entries) where entries > 0:
                    size = entries
                case .success:
                    error("stick-table", "size 0 makes an empty table", hint: example)
                    return
                case .failure(let problem):
                    error("stick-table", problem)
                    return
                }
            case "expire":
                guard let parsed = milliseconds(value, keyword: "stick-table", what: "expire") else { return }
                expire = parsed
            case "peers":
                peers = value
                warning("stick-table", "'peers \(value)' ignored: ringproxy does not replicate stick tables")
            case "store":
                store += value.split(separator: ",").map(String.init)
                warning("stick-table", "'store \(value)' ignored: ringproxy keeps only the server of each key")
            default:
                warning("stick-table", "'\(parameter) \(value)' ignored: not implemented by ringproxy")
            }
            index += 2
        }
        guard let type else {
            error("stick-table", "missing 'type'", hint: example)
            return
        }
        guard let size else {
            error("stick-table", "missing 'size'", hint: example)
            return
        }
        let hasLength = type == .string || type == .binary
        if length != nil, !hasLength {
            warning("stick-table", "'len' ignored: only string and binary tables have a key length")
        }
        var table = StickTableSettings(
            type: type, keyLength: hasLength ? (length ?? StickTableSettings.defaultKeyLength) : nil,
            sizeEntries: size, expireMs: expire, location: location)
        table.nopurge = nopurge
        table.peers = peers
        table.store = store
        draft!.stickTable = table
    }

    // MARK: stick on|match|store-request

    mutating func readStick(_ words: [String]) {
        guard words.count >= 2 else {
            error("stick", "missing 'on', 'match' or 'store-request'", hint: "e.g. 'stick on src'")
            return
        }
        let keyword = "stick \(words[1])"
        if ConfigKeywords.stickUnsupported.contains(words[1]) {
            error(keyword, "not supported by ringproxy", hint: "keys come from the request: use 'stick on' or 'stick store-request'")
            return
        }
        guard let ruleKind = StickRule.Kind(rawValue: words[1]) else {
            let candidates = StickRule.Kind.allCases.map(\.keyword)
            let guess = ConfigKeywords.suggestion(for: keyword, among: candidates)
            error("", "unknown keyword '\(keyword)' in \(kind.rawValue) section", hint: guess.map { "did you mean '\($0)'?" })
            return
        }
        guard words.count >= 3 else {
            error(keyword, "missing sample expression", hint: "e.g. '\(keyword) req.payload(0,0),mqtt_field_value(connect,client_identifier)'")
            return
        }
        let sample: SampleExpression
        switch ConditionParser.sample(words[2]) {
        case .success(let (parsed, _)): sample = parsed
        case .failure(let problem):
            error(keyword, problem)
            return
        }
        var rest = words.dropFirst(3)
        var table: String?
        if rest.first == "table" {
            guard rest.count >= 2 else {
                error(keyword, "missing backend name after 'table'")
                return
            }
            table = rest[rest.startIndex + 1]
            rest = rest.dropFirst(2)
            stickTableReferences.append(ConfigParser.BackendReference(
                backend: table!, keyword: keyword, location: location, frontend: nil))
        }
        guard let condition = optionalCondition(rest, keyword: keyword, after: "the sample expression") else { return }
        draft!.stickRules.append(StickRule(kind: ruleKind, sample: sample, table: table, condition: condition.value, location: location))
    }
}
