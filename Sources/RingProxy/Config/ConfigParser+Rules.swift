// Reads `tcp-request inspect-delay|content|connection` (accept, reject, track-sc0),
// `stick-table` (with its `store` data types) and `stick on|match|store-request` lines.
// Conditions and samples are read by ConditionParser; whether a referenced table exists, and
// stores what a rule reads, is checked once the whole file is read (ConfigParser+Checks).

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
        let supported = "supported: " + TCPRequestRule.Action.allCases.map(\.rawValue).joined(separator: ", ")
        guard let action = TCPRequestRule.Action(rawValue: words[2]) else {
            let actionName = String(words[2].prefix { $0 != "(" })
            if ConfigKeywords.tcpRequestUntrackedCounters.contains(actionName) {
                error(keyword, "action '\(words[2])' is not supported by ringproxy: it tracks one stick counter, sc0",
                      hint: "use 'track-sc0' and the sc0_* fetches")
            } else if ConfigKeywords.tcpRequestUnsupportedActions.contains(actionName) {
                error(keyword, "action '\(words[2])' is not supported by ringproxy", hint: supported)
            } else {
                let guess = ConfigKeywords.suggestion(for: words[2], among: TCPRequestRule.Action.allCases.map(\.rawValue))
                error(keyword, "unknown action '\(words[2])'", hint: guess.map { "did you mean '\($0)'?" } ?? supported)
            }
            return
        }
        var rest = words.dropFirst(3)
        if action == .expectProxy {
            guard phase == .connection else {
                error(keyword, "'expect-proxy' is a 'tcp-request connection' action", hint: "tcp-request connection expect-proxy layer4 if { src <front balancers> }")
                return
            }
            guard rest.first == "layer4" else {
                error(keyword, "'expect-proxy' needs 'layer4'", hint: "tcp-request connection expect-proxy layer4 if { src <front balancers> }")
                return
            }
            rest = rest.dropFirst()
        }
        var tracking: TCPRequestRule.Tracking?
        if action == .trackSC0 {
            guard let parsed = readTracking(&rest, keyword: keyword) else { return }
            tracking = parsed
        }
        guard let condition = optionalCondition(rest, keyword: keyword, after: action == .trackSC0 ? "the tracked key" : "the action") else { return }
        if phase == .connection, let condition = condition.value, let fetch = contentFetch(in: condition) {
            error(keyword, "'\(fetch)' reads request contents, which do not exist yet when a 'tcp-request connection' rule runs",
                  hint: "use 'tcp-request content' instead")
            return
        }
        let tracker = draft!.tcpRequestRules.first { $0.phase == .connection && $0.action == .trackSC0 }
        if phase == .connection, tracker == nil, let condition = condition.value,
           let fetch = condition.samples(acls: draft!.acls).first(where: { SampleRegistry.stickCounterRead($0) != nil }) {
            // HAProxy runs the rules in order: sc0 has no value yet, so the condition never holds.
            error(keyword, "'\(fetch.fetch.name)' reads sc0, which no 'tcp-request connection track-sc0' above this line tracks",
                  hint: "rules run in order: put 'tcp-request connection track-sc0 src' above this one")
            return
        }
        if phase == .connection, action == .trackSC0, let tracker {
            warning(keyword, "'track-sc0' ignored: sc0 is already tracked by the rule at line \(tracker.location.line)",
                    hint: "HAProxy ignores it too; remove one of them")
        }
        draft!.tcpRequestRules.append(TCPRequestRule(
            phase: phase, action: action, tracking: tracking, condition: condition.value, location: location))
    }

    /// `<key> [table <name>]` after `track-sc0`; nil after reporting an error.
    mutating func readTracking(_ rest: inout ArraySlice<String>, keyword: String) -> TCPRequestRule.Tracking? {
        guard let keyText = rest.first, RuleCondition.Polarity(rawValue: keyText) == nil, keyText != "table" else {
            error(keyword, "'track-sc0' needs the key to track", hint: "e.g. '\(keyword) track-sc0 src'")
            return nil
        }
        let key: SampleExpression
        switch ConditionParser.sample(keyText) {
        case .success(let (parsed, _)): key = parsed
        case .failure(let problem):
            error(keyword, problem)
            return nil
        }
        rest = rest.dropFirst()
        var table: String?
        guard readTableName(&rest, into: &table, keyword: keyword, holder: "proxy",
                            hint: "e.g. 'table per_ip', a backend holding a 'stick-table'") else { return nil }
        return TCPRequestRule.Tracking(key: key, table: table)
    }

    /// An optional `table <name>` at the start of `rest`, consumed into `table`; false after
    /// reporting an error. `holder` names what the name refers to in the message.
    mutating func readTableName(_ rest: inout ArraySlice<String>, into table: inout String?, keyword: String,
                                holder: String, hint: String? = nil) -> Bool {
        guard rest.first == "table" else { return true }
        guard rest.count >= 2 else {
            error(keyword, "missing \(holder) name after 'table'", hint: hint)
            return false
        }
        table = rest[rest.startIndex + 1]
        rest = rest.dropFirst(2)
        return true
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
        var counters = StickTableCounters()
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
                guard readStore(value, into: &counters) else { return }
                store += Self.storeItems(value)
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
        table.counters = counters
        draft!.stickTable = table
    }

    /// One `store` clause (`conn_cur,conn_rate(10s)`): the counters ringproxy maintains go into
    /// `counters`, HAProxy's other data types get a warning (nothing ringproxy evaluates reads
    /// them); false after reporting an error, as HAProxy does, for an unknown type or a wrong
    /// argument.
    mutating func readStore(_ value: String, into counters: inout StickTableCounters) -> Bool {
        var unmaintained: [String] = []
        for item in Self.storeItems(value) {
            let name = String(item.prefix { $0 != "(" })
            var argument: String?
            if name.count < item.count {
                guard item.hasSuffix(")") else {
                    error("stick-table", "missing ')' in store option '\(item)'")
                    return false
                }
                argument = String(item.dropFirst(name.count + 1).dropLast())
            }
            guard let kind = ConfigKeywords.stickTableDataTypes[name] else {
                let guess = ConfigKeywords.suggestion(for: name, among: Array(ConfigKeywords.stickTableDataTypes.keys))
                error("stick-table", "unknown store option '\(name)'",
                      hint: guess.map { "did you mean '\($0)'?" } ?? "e.g. 'store conn_cur,conn_rate(10s)'")
                return false
            }
            switch (kind, argument) {
            case (.none, nil):
                break
            case (.none, .some):
                error("stick-table", "store option '\(name)' takes no argument", hint: "write '\(name)'")
                return false
            case (_, nil), (_, .some("")):
                let form = kind == .period ? "\(name)(10s), the period the rate is measured over" : (kind == .count ? "\(name)(2)" : "\(name)(2,10s)")
                error("stick-table", "missing argument to store option '\(name)'", hint: "e.g. '\(form)'")
                return false
            case (.period, let text?):
                guard let period = milliseconds(text, keyword: "stick-table", what: name) else { return false }
                guard period > 0 else {
                    error("stick-table", "store option '\(name)' needs a period above 0", hint: "e.g. '\(name)(10s)'")
                    return false
                }
                if name == "conn_rate" { counters.connRatePeriodMs = period }
            case (.count, _), (.countAndPeriod, _):
                break
            }
            switch name {
            case "conn_cur": counters.connCur = true
            case "conn_cnt": counters.connCnt = true
            case _ where ConfigKeywords.stickTableMaintainedData.contains(name): break
            default: unmaintained.append(name)
            }
        }
        if !unmaintained.isEmpty {
            warning("stick-table", "'store \(unmaintained.joined(separator: ","))' ignored: ringproxy maintains conn_cur, conn_cnt and conn_rate (and the server a 'stick' rule stores)",
                    hint: "no rule ringproxy evaluates can read the others")
        }
        return true
    }

    /// `conn_cur,gpc_rate(2,10s)` -> ["conn_cur", "gpc_rate(2,10s)"]: a comma between
    /// parentheses belongs to its item.
    static func storeItems(_ value: String) -> [String] {
        var items: [String] = []
        var current = ""
        var depth = 0
        for character in value {
            switch character {
            case "(": depth += 1
            case ")": depth = max(0, depth - 1)
            case "," where depth == 0:
                items.append(current)
                current = ""
                continue
            default: break
            }
            current.append(character)
        }
        items.append(current)
        return items.filter { !$0.isEmpty }
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
        guard readTableName(&rest, into: &table, keyword: keyword, holder: "backend") else { return }
        if let table {
            stickTableReferences.append(ConfigParser.BackendReference(
                backend: table, keyword: keyword, location: location, frontend: nil))
        }
        guard let condition = optionalCondition(rest, keyword: keyword, after: "the sample expression") else { return }
        draft!.stickRules.append(StickRule(kind: ruleKind, sample: sample, table: table, condition: condition.value, location: location))
    }
}
