// EngineConfig+Routing: a frontend's `use_backend` rules and the `acl` lines they name -> the
// BackendRoute values the engine runs. Patterns are converted here, once (bytes, integer
// ranges, networks; `-f` files read, regexes test-compiled), so that a bad file or regex is an
// error at its line at `-c`, and the engine never parses a word per connection. What the engine
// cannot evaluate is refused at the line that wrote it.
import Glibc

extension EngineConfig {
    static let routableSamplesText = "src, dst_port and req.payload(0,0),mqtt_field_value(connect,<field>)"

    /// The routes of `frontend`, in order. `inspectsMQTT`: the frontend reads every CONNECT
    /// before choosing a server (mqtt_is_valid rule, or MQTT over WebSocket).
    static func backendRoutes(_ frontend: EffectiveFrontend, backendIndex: [String: Int], inspectsMQTT: Bool,
                              refuse: Refusal) -> [BackendRoute] {
        var routes: [BackendRoute] = []
        for rule in frontend.useBackendRules {
            guard let backend = backendIndex[rule.backend] else {
                // The parser reports a backend that does not exist; this one is a stats page.
                refuse(rule.location, "use_backend", "backend '\(rule.backend)' does not proxy connections", nil)
                continue
            }
            let source = "\(rule.location.file):\(rule.location.line)"
            guard let condition = rule.condition else {
                routes.append(BackendRoute(backendIndex: backend, alternatives: [[]], source: source))
                continue
            }
            var alternatives: [[RouteTerm]] = []
            var understood = true
            for alternative in condition.alternatives {
                var terms: [RouteTerm] = []
                for term in alternative {
                    guard let matchers = routeMatchers(term.kind, frontend: frontend, rule: rule, refuse: refuse) else {
                        understood = false
                        continue
                    }
                    terms.append(RouteTerm(negated: term.negated, matchers: matchers))
                }
                alternatives.append(terms)
            }
            guard understood else { continue }
            let route = BackendRoute(backendIndex: backend, unless: condition.polarity == .unless,
                                     alternatives: alternatives, source: source)
            if route.needsConnect && !inspectsMQTT {
                refuse(rule.location, "use_backend",
                       "this condition reads the MQTT CONNECT, but frontend '\(frontend.name)' does not inspect it",
                       "add 'tcp-request inspect-delay 5s' and 'tcp-request content reject unless { req.payload(0,0),mqtt_is_valid }' (HAProxy needs them too)")
                continue
            }
            routes.append(route)
        }
        return routes
    }

    /// The matchers of one term: an anonymous ACL's, each `acl` line of a named one, or a
    /// predefined ACL's. Nil after a refusal.
    private static func routeMatchers(_ kind: ConditionTerm.Kind, frontend: EffectiveFrontend, rule: UseBackendRule,
                                      refuse: Refusal) -> [RouteMatcher]? {
        switch kind {
        case .anonymous(let expression):
            return routeMatcher(expression, at: rule.location, keyword: "use_backend", refuse: refuse).map { [$0] }
        case .named(let name):
            let definitions = frontend.acls.filter { $0.name == name }
            if definitions.isEmpty {
                switch name {
                case "TRUE": return [RouteMatcher(sample: .constant(true), method: .bool)]
                case "FALSE": return [RouteMatcher(sample: .constant(false), method: .bool)]
                case "LOCALHOST":
                    return [RouteMatcher(sample: .source, method: .ip, networks: ["127.0.0.1/8", "::1"].compactMap(AddressPrefix.parse))]
                default:
                    refuse(rule.location, "use_backend", "the predefined ACL '\(name)' cannot choose a backend", "TRUE, FALSE and LOCALHOST can")
                    return nil
                }
            }
            var matchers: [RouteMatcher] = []
            for definition in definitions {
                guard let matcher = routeMatcher(definition.expression, at: definition.location, keyword: "acl", refuse: refuse) else { return nil }
                matchers.append(matcher)
            }
            return matchers
        }
    }

    /// One ACL body as the engine evaluates it; nil after refusing it at `location`.
    static func routeMatcher(_ expression: ACLExpression, at location: SourceLocation, keyword: String,
                             refuse: Refusal) -> RouteMatcher? {
        func fail(_ message: String, _ hint: String? = nil) -> RouteMatcher? {
            refuse(location, keyword, message, hint)
            return nil
        }
        let sample: RouteSample
        switch routeSample(expression.sample) {
        case .success(let parsed): sample = parsed
        case .failure(let problem): return fail(problem.message, problem.hint)
        }
        let methodName = expression.matchMethod ?? (sample == .source ? "ip" : sample == .destinationPort ? "int" : "str")
        let methods: [String: RouteMatchMethod] = [
            "found": .found, "bool": .bool, "int": .integer, "ip": .ip, "str": .exact, "beg": .prefix, "end": .suffix,
            "sub": .substring, "reg": .regex,
        ]
        guard let method = methods[methodName] else {
            return fail("'-m \(methodName)' is not supported in routing conditions", "ringproxy matches with -m found, int, str, beg, end, sub, reg (and ip on src)")
        }
        switch (sample, method) {
        case (.source, .ip), (.source, .found), (.destinationPort, .integer), (.destinationPort, .found),
             (.mqtt, .found), (.mqtt, .integer), (.mqtt, .exact), (.mqtt, .prefix), (.mqtt, .suffix), (.mqtt, .substring), (.mqtt, .regex):
            break
        default:
            return fail("'-m \(methodName)' cannot match '\(expression.sample.text)'",
                        sample == .source ? "match src with IP addresses or networks" : sample == .destinationPort ? "match dst_port with numbers or ranges" : nil)
        }
        var words = expression.patterns
        for path in expression.patternFiles {
            switch readPatternFile(path) {
            case .success(let lines): words += lines
            case .failure(let problem): return fail(problem.message, problem.hint)
            }
        }
        var matcher = RouteMatcher(sample: sample, method: method, ignoreCase: expression.flags.contains("-i"))
        switch method {
        case .found, .bool:
            guard words.isEmpty else { return fail("'-m \(methodName)' takes no pattern, found '\(words[0])'") }
        case .ip:
            for word in words {
                guard let prefix = AddressPrefix.parse(word) else { return fail("'\(word)' is not an IPv4 or IPv6 address or network") }
                matcher.networks.append(prefix)
            }
        case .integer:
            switch integerRanges(words) {
            case .success(let ranges): matcher.integers = ranges
            case .failure(let problem): return fail(problem.message, problem.hint)
            }
        case .exact, .prefix, .suffix, .substring:
            matcher.strings = words.map { word in
                let bytes = Array(word.utf8)
                return matcher.ignoreCase ? bytes.map(asciiLowercased) : bytes
            }
        case .regex:
            for word in words {
                if let problem = regexProblem(word, ignoreCase: matcher.ignoreCase) {
                    return fail("regex '\(word)' does not compile: \(problem)")
                }
                matcher.strings.append(Array(word.utf8))
            }
        }
        return matcher
    }

    static func asciiLowercased(_ byte: UInt8) -> UInt8 {
        byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
    }

    private static func routeSample(_ sample: SampleExpression) -> Result<RouteSample, ConfigValueError> {
        let name = sample.fetch.name
        if sample.converters.isEmpty && name == "src" { return .success(.source) }
        if sample.converters.isEmpty && name == "dst_port" { return .success(.destinationPort) }
        let refusal = ConfigValueError(message: "'\(sample.text)' cannot choose a backend", hint: "ringproxy routes on \(routableSamplesText)")
        guard name == "req.payload", sample.converters.count == 1, sample.converters[0].name == "mqtt_field_value" else {
            return .failure(refusal)
        }
        guard sample.fetch.arguments == ["0", "0"] else {
            return .failure(ConfigValueError(message: "'\(sample.text)' reads part of the request; ringproxy reads the whole CONNECT",
                                             hint: "write req.payload(0,0),mqtt_field_value(connect,<field>)"))
        }
        let arguments = sample.converters[0].arguments.map { $0.lowercased() }
        guard arguments[0] == "connect" || arguments[0] == "1" else {
            return .failure(ConfigValueError(message: "'\(sample.text)' reads a packet other than the CONNECT",
                                             hint: "a backend is chosen once the CONNECT is known: mqtt_field_value(connect,<field>)"))
        }
        let fields: [String: MQTTConnectField] = [
            "flags": .flags, "protocol_name": .protocolName, "protocol_version": .protocolVersion,
            "client_identifier": .clientIdentifier, "will_topic": .willTopic, "will_payload": .willPayload,
            "username": .username, "password": .password, "keepalive": .keepalive,
        ]
        if let field = fields[arguments[1]] { return .success(.mqtt(field)) }
        // SampleRegistry has checked the property identifiers a CONNECT may carry.
        guard let property = UInt8(arguments[1]) else { return .failure(refusal) }
        return .success(.mqtt(.property(property)))
    }

    /// HAProxy's integer patterns: `5`, `eq 5`, `ge 5`, `gt 5`, `le 5`, `lt 5` (an operator
    /// applies to the values after it), `3:5`, `3:`, `:5`.
    static func integerRanges(_ words: [String]) -> Result<[ClosedRange<Int64>], ConfigValueError> {
        var ranges: [ClosedRange<Int64>] = []
        var op = "eq"
        for word in words {
            if ["eq", "ge", "gt", "le", "lt"].contains(word) {
                op = word
                continue
            }
            let bad = ConfigValueError(message: "'\(word)' is not an integer pattern", hint: "e.g. 5, ge 5, 3:5")
            if let colon = word.firstIndex(of: ":") {
                let low = word[..<colon].isEmpty ? Int64.min : Int64(word[..<colon])
                let high = word[word.index(after: colon)...].isEmpty ? Int64.max : Int64(word[word.index(after: colon)...])
                guard let low, let high, low <= high else { return .failure(bad) }
                ranges.append(low...high)
                continue
            }
            guard let value = Int64(word) else { return .failure(bad) }
            switch op {
            case "ge": ranges.append(value...Int64.max)
            case "gt": if value < Int64.max { ranges.append(value + 1...Int64.max) }
            case "le": ranges.append(Int64.min...value)
            case "lt": if value > Int64.min { ranges.append(Int64.min...value - 1) }
            default: ranges.append(value...value)
            }
        }
        return .success(ranges)
    }

    /// A pattern file as HAProxy reads one: a pattern per line, leading spaces and tabs
    /// stripped, empty lines and lines starting with '#' skipped. A relative path is taken from
    /// the working directory.
    static func readPatternFile(_ path: String) -> Result<[String], ConfigValueError> {
        guard let file = fopen(path, "r") else {
            return .failure(ConfigValueError(message: "cannot open pattern file '\(path)': \(String(cString: strerror(errno)))",
                                             hint: path.hasPrefix("/") ? nil : "a relative path is taken from the working directory, as in HAProxy"))
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            if n > 0 { bytes += chunk[0..<n] }
            if n < chunk.count { break }
        }
        if ferror(file) != 0 { return .failure(ConfigValueError(message: "cannot read pattern file '\(path)'", hint: nil)) }
        var patterns: [String] = []
        for line in bytes.split(separator: 0x0A, omittingEmptySubsequences: true) {
            var body = line.drop { $0 == 0x20 || $0 == 0x09 }
            while body.last == 0x0D { body = body.dropLast() }
            if body.isEmpty || body.first == 0x23 { continue }
            patterns.append(String(decoding: body, as: UTF8.self))
        }
        return .success(patterns)
    }

    /// Why `pattern` does not compile as a POSIX extended regex (what the engine runs), or nil.
    static func regexProblem(_ pattern: String, ignoreCase: Bool) -> String? {
        var regex = regex_t()
        let flags = REG_EXTENDED | REG_NOSUB | (ignoreCase ? REG_ICASE : 0)
        let status = regcomp(&regex, pattern, flags)
        guard status != 0 else {
            regfree(&regex)
            return nil
        }
        var message = [CChar](repeating: 0, count: 256)
        regerror(status, &regex, &message, message.count)
        return String(cString: message)
    }
}
