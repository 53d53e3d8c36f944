// RouteTable: a worker's compiled `use_backend` rules. Built once per worker from the plain
// BackendRoute values (at start and at each reload), flattened into preallocated tables;
// evaluated once per connection when its CONNECT is known (or at accept for rules that read
// only the addresses). Evaluation never allocates: samples are read in place from the held
// CONNECT, patterns were converted to bytes beforehand, numbers are rendered into a fixed
// scratch, and a regex gets its NUL-terminated copy in another one.
import Glibc
import MQTTPeek

/// What one connection offers the rules.
struct RouteInput {
    /// The client's sockaddr_in / sockaddr_in6.
    var peer: UnsafeRawPointer
    var destinationPort: Int64
    /// The bytes the CONNECT was parsed from, and the parse; nil before (or without) one.
    var connect: UnsafeRawBufferPointer
    var packet: ConnectPacket?
}

final class RouteTable {
    private struct Route {
        var backend: Int32
        var unless: Bool
        var termStart: Int32
        var termEnd: Int32
    }

    private struct Term {
        var negated: Bool
        /// The last term of an AND group: after it, the next alternative starts.
        var endsAlternative: Bool
        var matcherStart: Int32
        var matcherEnd: Int32
    }

    private enum Sample: UInt8 {
        case constantTrue, constantFalse, source, destinationPort
        case flags, protocolName, protocolVersion, clientIdentifier, willTopic, willPayload, username, password, keepalive
        case property
    }

    private struct Matcher {
        var sample: Sample
        var property: UInt8
        var method: RouteMatchMethod
        var ignoreCase: Bool
        /// Range in `patterns` (strings), `ranges` (integers), `regexes`, or the index of the
        /// SourceMatcher (ip), by method.
        var first: Int32
        var end: Int32
    }

    /// A sample's value: absent (not found), a number, or bytes in place.
    private enum Value {
        case absent
        case integer(Int64)
        case bytes(UnsafeRawBufferPointer)
    }

    private let routes: UnsafeMutableBufferPointer<Route>
    /// Per frontend: its routes' range in `routes`.
    private let frontendFirst: UnsafeMutableBufferPointer<Int32>
    private let frontendEnd: UnsafeMutableBufferPointer<Int32>
    private let terms: UnsafeMutableBufferPointer<Term>
    private let matchers: UnsafeMutableBufferPointer<Matcher>
    /// String patterns: (offset, length) into `patternBytes`.
    private let patternOffsets: UnsafeMutableBufferPointer<Int>
    private let patternLengths: UnsafeMutableBufferPointer<Int>
    private let patternBytes: UnsafeMutableRawBufferPointer
    private let ranges: UnsafeMutableBufferPointer<ClosedRange<Int64>>
    private let regexes: UnsafeMutableBufferPointer<regex_t>
    private let sources: UnsafeMutableBufferPointer<SourceMatcher>
    /// A number rendered in decimal (for string matching on a numeric field).
    private let numberScratch: UnsafeMutableRawBufferPointer
    /// A field's NUL-terminated copy for regexec; sized to the largest CONNECT.
    private let regexScratch: UnsafeMutableRawBufferPointer
    private static let mqttName: StaticString = "MQTT"
    private static let mqisdpName: StaticString = "MQIsdp"

    /// Compiles every frontend's routes; regexes were checked when the config was loaded.
    init(frontends: [FrontendConfig], connectMaxBytes: Int) {
        var routeList: [Route] = []
        var termList: [Term] = []
        var matcherList: [Matcher] = []
        var patternList: [[UInt8]] = []
        var rangeList: [ClosedRange<Int64>] = []
        var regexList: [(String, Bool)] = []
        var sourceList: [[AddressPrefix]] = []
        var firsts: [Int32] = []
        var ends: [Int32] = []
        for frontend in frontends {
            firsts.append(Int32(routeList.count))
            for route in frontend.routes {
                let termStart = Int32(termList.count)
                for alternative in route.alternatives {
                    for term in alternative {
                        let matcherStart = Int32(matcherList.count)
                        for m in term.matchers {
                            var matcher = Matcher(sample: .constantTrue, property: 0, method: m.method, ignoreCase: m.ignoreCase, first: 0, end: 0)
                            switch m.sample {
                            case .constant(let value): matcher.sample = value ? .constantTrue : .constantFalse
                            case .source: matcher.sample = .source
                            case .destinationPort: matcher.sample = .destinationPort
                            case .mqtt(let field): (matcher.sample, matcher.property) = Self.code(field)
                            }
                            switch m.method {
                            case .found, .bool:
                                break
                            case .ip:
                                matcher.first = Int32(sourceList.count)
                                matcher.end = matcher.first + 1
                                sourceList.append(m.networks)
                            case .integer:
                                matcher.first = Int32(rangeList.count)
                                rangeList += m.integers
                                matcher.end = Int32(rangeList.count)
                            case .exact, .prefix, .suffix, .substring:
                                matcher.first = Int32(patternList.count)
                                patternList += m.strings
                                matcher.end = Int32(patternList.count)
                            case .regex:
                                matcher.first = Int32(regexList.count)
                                regexList += m.strings.map { (String(decoding: $0, as: UTF8.self), m.ignoreCase) }
                                matcher.end = Int32(regexList.count)
                            }
                            matcherList.append(matcher)
                        }
                        termList.append(Term(negated: term.negated, endsAlternative: false, matcherStart: matcherStart,
                                             matcherEnd: Int32(matcherList.count)))
                    }
                    if alternative.isEmpty {
                        // `use_backend b` without a condition: an empty AND, which holds.
                        termList.append(Term(negated: true, endsAlternative: false, matcherStart: 0, matcherEnd: 0))
                    }
                    termList[termList.count - 1].endsAlternative = true
                }
                routeList.append(Route(backend: Int32(route.backendIndex), unless: route.unless, termStart: termStart,
                                       termEnd: Int32(termList.count)))
            }
            ends.append(Int32(routeList.count))
        }
        routes = Self.table(routeList)
        frontendFirst = Self.table(firsts)
        frontendEnd = Self.table(ends)
        terms = Self.table(termList)
        matchers = Self.table(matcherList)
        ranges = Self.table(rangeList)
        var offsets: [Int] = []
        var bytes: [UInt8] = []
        for pattern in patternList {
            offsets.append(bytes.count)
            bytes += pattern
        }
        patternOffsets = Self.table(offsets)
        patternLengths = Self.table(patternList.map(\.count))
        patternBytes = .allocate(byteCount: max(1, bytes.count), alignment: 1)
        patternBytes.copyBytes(from: bytes)
        sources = Self.table(sourceList.map { SourceMatcher($0) })
        regexes = .allocate(capacity: max(1, regexList.count))
        for (i, (pattern, ignoreCase)) in regexList.enumerated() {
            (regexes.baseAddress! + i).initialize(to: regex_t())
            let status = regcomp(regexes.baseAddress! + i, pattern, REG_EXTENDED | REG_NOSUB | (ignoreCase ? REG_ICASE : 0))
            precondition(status == 0, "regex '\(pattern)' was checked when the configuration was loaded")
        }
        regexCount = regexList.count
        numberScratch = .allocate(byteCount: 24, alignment: 8)
        regexScratch = .allocate(byteCount: regexList.isEmpty ? 1 : connectMaxBytes + 1, alignment: 8)
    }

    private let regexCount: Int

    private static func table<T>(_ values: [T]) -> UnsafeMutableBufferPointer<T> {
        let table = UnsafeMutableBufferPointer<T>.allocate(capacity: max(1, values.count))
        _ = table.initialize(from: values)
        return UnsafeMutableBufferPointer(rebasing: table[0..<values.count])
    }

    private static func code(_ field: MQTTConnectField) -> (Sample, UInt8) {
        switch field {
        case .flags: return (.flags, 0)
        case .protocolName: return (.protocolName, 0)
        case .protocolVersion: return (.protocolVersion, 0)
        case .clientIdentifier: return (.clientIdentifier, 0)
        case .willTopic: return (.willTopic, 0)
        case .willPayload: return (.willPayload, 0)
        case .username: return (.username, 0)
        case .password: return (.password, 0)
        case .keepalive: return (.keepalive, 0)
        case .property(let id): return (.property, id)
        }
    }

    func deallocate() {
        for i in 0..<regexCount { regfree(regexes.baseAddress! + i) }
        for source in sources { source.deallocate() }
        routes.baseAddress?.deallocate()
        terms.baseAddress?.deallocate()
        matchers.baseAddress?.deallocate()
        frontendFirst.baseAddress?.deallocate()
        frontendEnd.baseAddress?.deallocate()
        patternOffsets.baseAddress?.deallocate()
        patternLengths.baseAddress?.deallocate()
        patternBytes.deallocate()
        ranges.baseAddress?.deallocate()
        regexes.deallocate()
        sources.baseAddress?.deallocate()
        numberScratch.deallocate()
        regexScratch.deallocate()
    }

    /// Whether frontend `f` has rules at all (else its default backend is taken, no evaluation).
    @inline(__always)
    func hasRoutes(_ f: Int) -> Bool { frontendEnd[f] > frontendFirst[f] }

    /// The backend of the first rule of frontend `f` that applies; -1: none does.
    func backend(frontend f: Int, _ input: RouteInput) -> Int {
        var r = Int(frontendFirst[f])
        let end = Int(frontendEnd[f])
        while r < end {
            if conditionHolds(routes[r], input) != routes[r].unless { return Int(routes[r].backend) }
            r += 1
        }
        return -1
    }

    /// OR of ANDs: a group fails at its first false term; the condition holds at the first group
    /// that reaches its end.
    private func conditionHolds(_ route: Route, _ input: RouteInput) -> Bool {
        var t = Int(route.termStart)
        var groupHolds = true
        while t < Int(route.termEnd) {
            let term = terms[t]
            if groupHolds { groupHolds = termHolds(term, input) != term.negated }
            if term.endsAlternative {
                if groupHolds { return true }
                groupHolds = true
            }
            t += 1
        }
        return false
    }

    private func termHolds(_ term: Term, _ input: RouteInput) -> Bool {
        var m = Int(term.matcherStart)
        while m < Int(term.matcherEnd) {
            if matches(matchers[m], input) { return true }
            m += 1
        }
        return false
    }

    private func matches(_ matcher: Matcher, _ input: RouteInput) -> Bool {
        switch matcher.method {
        case .ip:
            return sources[Int(matcher.first)].contains(input.peer)
        case .found:
            if case .absent = value(matcher, input) { return false }
            return true
        case .bool:
            if case .integer(let v) = value(matcher, input) { return v != 0 }
            return false
        case .integer:
            let number: Int64
            switch value(matcher, input) {
            case .absent: return false
            case .integer(let v): number = v
            case .bytes(let bytes):
                guard let parsed = Self.decimal(bytes) else { return false }
                number = parsed
            }
            var i = Int(matcher.first)
            while i < Int(matcher.end) {
                if ranges[i].contains(number) { return true }
                i += 1
            }
            return false
        case .exact, .prefix, .suffix, .substring, .regex:
            let bytes: UnsafeRawBufferPointer
            switch value(matcher, input) {
            case .absent: return false
            case .integer(let v): bytes = render(v)
            case .bytes(let b): bytes = b
            }
            return matcher.method == .regex ? regexMatches(matcher, bytes) : stringMatches(matcher, bytes)
        }
    }

    private func value(_ matcher: Matcher, _ input: RouteInput) -> Value {
        switch matcher.sample {
        case .constantTrue: return .integer(1)
        case .constantFalse: return .integer(0)
        case .source: return .absent
        case .destinationPort: return .integer(input.destinationPort)
        default: break
        }
        guard let packet = input.packet else { return .absent }
        let buffer = input.connect
        // HAProxy's mqtt_field_value: an empty string is "not found"; numbers always are.
        func text(_ range: Range<Int>?) -> Value {
            guard let range, !range.isEmpty else { return .absent }
            return .bytes(UnsafeRawBufferPointer(rebasing: buffer[range]))
        }
        switch matcher.sample {
        case .flags: return .integer(Int64(packet.connectFlags))
        case .protocolVersion: return .integer(Int64(packet.protocolLevel))
        case .keepalive: return .integer(Int64(packet.keepAliveSeconds))
        case .protocolName:
            let name = packet.protocolLevel == 3 ? Self.mqisdpName : Self.mqttName
            return .bytes(UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        case .clientIdentifier: return text(packet.clientIdentifier)
        case .willTopic: return text(packet.willTopic)
        case .willPayload: return text(packet.willPayload)
        case .username: return text(packet.username)
        case .password: return text(packet.password)
        case .property:
            switch packet.property(matcher.property, in: buffer) {
            case .integer(let v): return .integer(Int64(v))
            case .bytes(let range): return text(range)
            case .absent:
                // HAProxy reads numeric properties into zeroed fields: an MQTT 5 CONNECT
                // without one reads as 0 (a will property only when there is a will).
                guard packet.protocolLevel == 5, Self.isNumericProperty(matcher.property),
                      !ConnectPacket.isWillProperty(matcher.property) || packet.hasWill else { return .absent }
                return .integer(0)
            }
        default: return .absent
        }
    }

    private static func isNumericProperty(_ id: UInt8) -> Bool {
        switch id {
        case 0x01, 0x02, 0x11, 0x17, 0x18, 0x19, 0x21, 0x22, 0x27: return true
        default: return false
        }
    }

    /// A string sample read as a number, as HAProxy casts one: optional sign, then digits.
    private static func decimal(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        var i = 0
        var negative = false
        if i < bytes.count && (bytes[i] == 0x2D || bytes[i] == 0x2B) {
            negative = bytes[i] == 0x2D
            i += 1
        }
        var value: Int64 = 0
        var digits = 0
        while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39, digits < 18 {
            value = value * 10 + Int64(bytes[i] - 0x30)
            digits += 1
            i += 1
        }
        guard digits > 0 else { return nil }
        return negative ? -value : value
    }

    private func render(_ value: Int64) -> UnsafeRawBufferPointer {
        var v = value.magnitude
        var at = numberScratch.count
        repeat {
            at -= 1
            numberScratch[at] = UInt8(truncatingIfNeeded: v % 10) + 0x30
            v /= 10
        } while v > 0
        if value < 0 {
            at -= 1
            numberScratch[at] = 0x2D
        }
        return UnsafeRawBufferPointer(rebasing: numberScratch[at...])
    }

    private func stringMatches(_ matcher: Matcher, _ sample: UnsafeRawBufferPointer) -> Bool {
        var p = Int(matcher.first)
        while p < Int(matcher.end) {
            let length = patternLengths[p]
            let pattern = patternBytes.baseAddress! + patternOffsets[p]
            if length <= sample.count {
                switch matcher.method {
                case .exact:
                    if length == sample.count && equal(sample, at: 0, pattern, length, matcher.ignoreCase) { return true }
                case .prefix:
                    if equal(sample, at: 0, pattern, length, matcher.ignoreCase) { return true }
                case .suffix:
                    if equal(sample, at: sample.count - length, pattern, length, matcher.ignoreCase) { return true }
                default:
                    var at = 0
                    while at + length <= sample.count {
                        if equal(sample, at: at, pattern, length, matcher.ignoreCase) { return true }
                        at += 1
                    }
                }
            }
            p += 1
        }
        return false
    }

    @inline(__always)
    private func equal(_ sample: UnsafeRawBufferPointer, at start: Int, _ pattern: UnsafeRawPointer, _ length: Int,
                       _ ignoreCase: Bool) -> Bool {
        var i = 0
        while i < length {
            var byte = sample[start + i]
            if ignoreCase { byte = EngineConfig.asciiLowercased(byte) }
            if byte != pattern.load(fromByteOffset: i, as: UInt8.self) { return false }
            i += 1
        }
        return true
    }

    private func regexMatches(_ matcher: Matcher, _ sample: UnsafeRawBufferPointer) -> Bool {
        let count = min(sample.count, regexScratch.count - 1)
        regexScratch.baseAddress!.copyMemory(from: sample.baseAddress!, byteCount: count)
        regexScratch[count] = 0
        let text = regexScratch.baseAddress!.assumingMemoryBound(to: CChar.self)
        var r = Int(matcher.first)
        while r < Int(matcher.end) {
            if regexec(regexes.baseAddress! + r, text, 0, nil, 0) == 0 { return true }
            r += 1
        }
        return false
    }
}
