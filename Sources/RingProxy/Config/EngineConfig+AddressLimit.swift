// EngineConfig+AddressLimit: a frontend's `tcp-request connection` rules as the engine's
// AddressLimitConfig: `track-sc0 src [table <name>]` in a `type ip|ipv6` stick-table, then
// `reject if|unless` conditions on the tracked address's conn_cur, conn_cnt and conn_rate. What
// the engine does not evaluate (another key, a condition on tracking, accept rules, conditions
// on anything else, lists and ranges of values) is refused at its line.

extension EngineConfig {
    /// Reports a refusal at a line: location, keyword, message, hint.
    typealias Refusal = (SourceLocation?, String, String, String?) -> Void

    /// The frontend's per-address limits; nil when it tracks nothing (or its rules were refused).
    static func addressLimit(_ frontend: EffectiveFrontend, in file: ConfigFile, refuse: Refusal) -> AddressLimitConfig? {
        var limit: AddressLimitConfig?
        var trackerSeen = false
        for rule in frontend.tcpRequestRules where rule.phase == .connection {
            let keyword = rule.phase.keyword
            switch rule.action {
            case .trackSC0:
                // A second track-sc0 is ignored, as in HAProxy (the parser warned at its line).
                guard !trackerSeen, let tracking = rule.tracking else { continue }
                trackerSeen = true
                limit = addressTable(tracking, rule, frontend, in: file, refuse: refuse).map { AddressLimitConfig(table: $0) }
            case .reject:
                guard let condition = rule.condition else {
                    refuse(rule.location, keyword, "'reject' without a condition refuses every connection",
                           "reject if|unless a condition on \(SampleRegistry.stickCounterFetchesText)")
                    continue
                }
                // Without a table the rule cannot run; the tracking rule's refusal says why.
                guard let table = limit?.table,
                      let reject = rejectRule(rule, condition, acls: frontend.acls, tableName: table.name, refuse: refuse) else { continue }
                limit!.rejectRules.append(reject)
            case .accept:
                refuse(rule.location, keyword, "'accept' rules are not implemented yet",
                       "ringproxy runs 'track-sc0 src', 'reject if|unless <condition on sc0 counters>' and 'expect-proxy layer4' here")
            case .expectProxy:
                break   // EngineConfig+ExpectProxy.swift
            }
        }
        return limit
    }

    /// The table `track-sc0 src [table <name>]` counts in; nil after a refusal.
    private static func addressTable(_ tracking: TCPRequestRule.Tracking, _ rule: TCPRequestRule, _ frontend: EffectiveFrontend,
                                     in file: ConfigFile, refuse: Refusal) -> AddressTableConfig? {
        let keyword = rule.phase.keyword
        let key = tracking.key
        guard key.fetch.name == "src", key.fetch.arguments.isEmpty, key.converters.isEmpty else {
            refuse(rule.location, keyword, "ringproxy tracks the client's address only: 'track-sc0 src', not '\(key.text)'", nil)
            return nil
        }
        guard rule.condition == nil else {
            refuse(rule.location, keyword, "a condition on 'track-sc0' is not supported: ringproxy tracks every connection",
                   "remove the condition; put conditions on the 'reject' rules")
            return nil
        }
        let name = tracking.table ?? frontend.name
        // The parser reported a missing table.
        guard let settings = file.frontend(named: name)?.stickTable ?? file.backend(named: name)?.stickTable else { return nil }
        let family: AddressTableConfig.Family
        switch settings.type {
        case .ip: family = .ipv4
        case .ipv6: family = .ipv6
        default:
            refuse(rule.location, keyword, "'track-sc0 src' needs a 'stick-table type ip' or 'type ipv6'; the one of '\(name)' (line \(settings.location.line)) is type \(settings.type.rawValue)", nil)
            return nil
        }
        return AddressTableConfig(name: name, family: family, entriesMax: settings.sizeEntries, expireMs: settings.expireMs,
                                  ratePeriodMs: settings.counters.connRatePeriodMs, purges: !settings.nopurge)
    }

    /// `reject if|unless <condition>` in the engine's form: each term a comparison on an sc0
    /// counter, named ACLs expanded (several lines of one name are alternatives); nil after a
    /// refusal.
    private static func rejectRule(_ rule: TCPRequestRule, _ condition: RuleCondition, acls: [ACLDefinition],
                                   tableName: String, refuse: Refusal) -> AddressRejectRule? {
        var alternatives: [[AddressComparison]] = []
        for conjunction in condition.alternatives {
            var expanded: [[AddressComparison]] = [[]]
            for term in conjunction {
                let bodies: [ACLExpression]
                switch term.kind {
                case .anonymous(let expression): bodies = [expression]
                case .named(let name): bodies = acls.filter { $0.name == name }.map(\.expression)
                }
                var comparisons: [AddressComparison] = []
                for body in bodies {
                    switch comparison(body, negated: term.negated, tableName: tableName) {
                    case .success(let parsed): comparisons.append(parsed)
                    case .failure(let problem):
                        refuse(rule.location, rule.phase.keyword, problem.message, problem.hint)
                        return nil
                    }
                }
                guard !comparisons.isEmpty else {
                    if case .named(let name) = term.kind {
                        refuse(rule.location, rule.phase.keyword, "'\(name)' is not a condition on the tracked address's counters",
                               "ringproxy reads \(SampleRegistry.stickCounterFetchesText) here")
                    }
                    return nil
                }
                if term.negated {
                    // !(a or b) is !a and !b: each negated comparison joins every conjunction.
                    expanded = expanded.map { $0 + comparisons }
                } else {
                    // a or b: one conjunction for each.
                    expanded = expanded.flatMap { prefix in comparisons.map { prefix + [$0] } }
                }
            }
            alternatives += expanded
        }
        return AddressRejectRule(unless: condition.polarity == .unless, alternatives: alternatives,
                                 text: "\(rule.location) '\(rule.phase.keyword) reject \(condition.polarity.rawValue) \(condition.text)'")
    }

    /// `sc0_conn_cur gt 10`, `sc_conn_rate(0) ge 100`, `sc0_conn_cnt 3` (a plain value is `eq`).
    private static func comparison(_ body: ACLExpression, negated: Bool, tableName: String) -> Result<AddressComparison, ConfigValueError> {
        let fetch = body.sample.fetch.name
        guard let read = SampleRegistry.stickCounterRead(body.sample) else {
            return .failure(ConfigValueError(
                message: "'\(body.sample.text)' is not supported in a 'tcp-request connection' rule",
                hint: "ringproxy reads \(SampleRegistry.stickCounterFetchesText) here"))
        }
        if let other = read.table, other != tableName {
            return .failure(ConfigValueError(
                message: "'\(body.sample.text)' reads the table of '\(other)', but sc0 tracks the address in the table of '\(tableName)'",
                hint: "read the table sc0 tracks in: '\(fetch)'"))
        }
        guard body.matchMethod == nil || body.matchMethod == "int", body.flags.isEmpty, body.patternFiles.isEmpty else {
            return .failure(ConfigValueError(
                message: "'\(fetch)' takes no flags but '-m int' here", hint: "write e.g. '{ \(fetch) gt 10 }'"))
        }
        let operators = AddressComparison.Operator.allCases.map(\.rawValue).joined(separator: ", ")
        let shape = ConfigValueError(
            message: "'\(fetch)' must be compared with one number, e.g. 'gt 10'; lists and ranges of values are not supported",
            hint: "operators: \(operators); a plain number means eq")
        switch body.patterns.count {
        case 1:
            guard let value = ConfigUnits.integer(body.patterns[0]) else { return .failure(shape) }
            return .success(AddressComparison(read.counter, .eq, value, negated: negated))
        case 2:
            guard let op = AddressComparison.Operator(rawValue: body.patterns[0]), let value = ConfigUnits.integer(body.patterns[1]) else {
                return .failure(shape)
            }
            return .success(AddressComparison(read.counter, op, value, negated: negated))
        default:
            return .failure(body.patterns.isEmpty
                ? ConfigValueError(message: "'\(fetch)' needs a value to compare with", hint: "e.g. '{ \(fetch) gt 10 }'; HAProxy never matches it without one")
                : shape)
        }
    }
}
