// EngineConfig+ExpectProxy: `tcp-request connection expect-proxy layer4 [if|unless <condition>]`
// -> which connections of a frontend start with a PROXY header: those from the front
// balancers' addresses (`{ src ... }` or named ACLs on `src`, joined with `or`/`||`), or all of
// them without a condition. Any other condition is refused at its line.

/// Which sources of a frontend send a PROXY header first.
public struct ExpectProxyConfig: Sendable, Equatable {
    /// The networks the condition names (empty with no condition: every source).
    public var sources: [AddressPrefix]
    /// `if`: connections from `sources` expect a header; `unless`: the others do.
    public var whenMatching: Bool

    public init(sources: [AddressPrefix], whenMatching: Bool) {
        self.sources = sources
        self.whenMatching = whenMatching
    }
}

extension EngineConfig {
    static func expectProxy(_ frontend: EffectiveFrontend, refuse: Refusal) -> ExpectProxyConfig? {
        var result: ExpectProxyConfig?
        for rule in frontend.tcpRequestRules where rule.phase == .connection && rule.action == .expectProxy {
            let keyword = rule.phase.keyword
            guard result == nil else {
                refuse(rule.location, keyword, "a second 'expect-proxy' rule is not supported", "name every front balancer in one rule: if { src a b c }")
                continue
            }
            guard let condition = rule.condition else {
                result = ExpectProxyConfig(sources: [], whenMatching: false)
                continue
            }
            let hint = "expect-proxy layer4 if { src 10.0.0.1 10.0.0.2/31 } (or named ACLs on src, joined with 'or')"
            var sources: [AddressPrefix] = []
            var understood = true
            for alternative in condition.alternatives {
                guard alternative.count == 1, let term = alternative.first, !term.negated else {
                    understood = false
                    break
                }
                let expression: ACLExpression?
                switch term.kind {
                case .anonymous(let e): expression = e
                case .named(let name): expression = frontend.acls.first { $0.name == name }?.expression
                }
                guard let expression, expression.sample.fetch.name == "src", expression.sample.converters.isEmpty,
                      expression.matchMethod == nil || expression.matchMethod == "ip", !expression.patterns.isEmpty,
                      expression.patternFiles.isEmpty else {
                    understood = false
                    break
                }
                for pattern in expression.patterns {
                    guard let prefix = AddressPrefix.parse(pattern) else {
                        refuse(rule.location, keyword, "'\(pattern)' is not an IPv4 or IPv6 address or network", hint)
                        understood = false
                        break
                    }
                    sources.append(prefix)
                }
            }
            guard understood else {
                refuse(rule.location, keyword, "ringproxy reads 'expect-proxy layer4' conditions on the source address only", hint)
                continue
            }
            result = ExpectProxyConfig(sources: sources, whenMatching: condition.polarity == .if)
        }
        return result
    }
}
