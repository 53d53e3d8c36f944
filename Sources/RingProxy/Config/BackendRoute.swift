// BackendRoute: a frontend's `use_backend <name> if|unless <condition>` as the engine runs it, a
// plain value with every pattern already converted (bytes, lowercased for -i; integer ranges;
// networks; regex sources). The engine compiles it per worker (Routing/RouteTable.swift) and
// never sees a name, a word or a file.

/// One conditional `use_backend` rule, in the order written; the first that applies wins.
public struct BackendRoute: Sendable, Equatable {
    public var backendIndex: Int
    /// `unless`: the rule applies when the condition does not hold.
    public var unless: Bool
    /// OR of ANDs, as HAProxy evaluates conditions (no parentheses; `!` binds to one term).
    public var alternatives: [[RouteTerm]]
    /// Where it was written ("file:line").
    public var source: String

    public init(backendIndex: Int, unless: Bool = false, alternatives: [[RouteTerm]], source: String = "") {
        self.backendIndex = backendIndex
        self.unless = unless
        self.alternatives = alternatives
        self.source = source
    }

    /// Whether evaluating it needs the MQTT CONNECT.
    public var needsConnect: Bool {
        alternatives.joined().contains { $0.matchers.contains { $0.sample.needsConnect } }
    }
}

/// One ACL reference in a condition, possibly negated: the ACL holds when any of its matchers
/// does (a named ACL declared on several lines, as in HAProxy).
public struct RouteTerm: Sendable, Equatable {
    public var negated: Bool
    public var matchers: [RouteMatcher]

    public init(negated: Bool = false, matchers: [RouteMatcher]) {
        self.negated = negated
        self.matchers = matchers
    }
}

/// What a route reads.
public enum RouteSample: Sendable, Equatable {
    /// TRUE / FALSE.
    case constant(Bool)
    /// `src`: the client's address (the PROXY header's on accept-proxy frontends).
    case source
    /// `dst_port`: the port the client connected to.
    case destinationPort
    /// `req.payload(0,0),mqtt_field_value(connect,<field>)`.
    case mqtt(MQTTConnectField)

    public var needsConnect: Bool {
        if case .mqtt = self { return true }
        return false
    }
}

/// The CONNECT fields HAProxy's mqtt_field_value reads (configuration.txt, mqtt_field_value).
public enum MQTTConnectField: Sendable, Equatable {
    case flags
    case protocolName
    case protocolVersion
    case clientIdentifier
    case willTopic
    case willPayload
    case username
    case password
    case keepalive
    /// An MQTT 5.0 property by identifier (§2.2.2.2).
    case property(UInt8)
}

/// `-m <method>`, the subset ringproxy evaluates.
public enum RouteMatchMethod: UInt8, Sendable, Equatable {
    case found
    case bool
    case integer
    case ip
    case exact
    case prefix
    case suffix
    case substring
    case regex
}

/// One ACL body: a sample, how it is compared, and its patterns (any one matching is enough).
public struct RouteMatcher: Sendable, Equatable {
    public var sample: RouteSample
    public var method: RouteMatchMethod
    /// `-i`: `strings` are lowercased and samples compared ASCII-case-insensitively.
    public var ignoreCase: Bool
    /// Patterns for exact/prefix/suffix/substring, and the sources of regexes.
    public var strings: [[UInt8]]
    /// Patterns for integer matching (`5`, `eq 5`, `ge 5`, `3:5`, ...).
    public var integers: [ClosedRange<Int64>]
    /// Patterns for ip matching.
    public var networks: [AddressPrefix]

    public init(sample: RouteSample, method: RouteMatchMethod, ignoreCase: Bool = false, strings: [[UInt8]] = [],
                integers: [ClosedRange<Int64>] = [], networks: [AddressPrefix] = []) {
        self.sample = sample
        self.method = method
        self.ignoreCase = ignoreCase
        self.strings = strings
        self.integers = integers
        self.networks = networks
    }
}
