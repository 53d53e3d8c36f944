// Conditions and sample expressions as structured values: `if|unless` followed by ACL names and
// anonymous ACLs (`{ req.payload(0,0),mqtt_is_valid }`), and samples made of one fetch and a
// chain of converters. Evaluating them is the engine's job; knowing which fetches exist is
// SampleRegistry's.

/// A fetch or converter call: `req.payload(0,0)`, `mqtt_is_valid`,
/// `mqtt_field_value(connect,client_identifier)`.
public struct SampleCall: Sendable, Equatable, CustomStringConvertible {
    public var name: String
    /// Arguments as written between the parentheses, split on commas, second-level quotes removed.
    public var arguments: [String]

    public init(name: String, arguments: [String] = []) {
        self.name = name
        self.arguments = arguments
    }

    public var description: String {
        arguments.isEmpty ? name : "\(name)(\(arguments.joined(separator: ",")))"
    }
}

/// A sample expression: one fetch followed by converters, e.g.
/// `req.payload(0,0),mqtt_field_value(connect,client_identifier)`.
public struct SampleExpression: Sendable, Equatable, CustomStringConvertible {
    public var fetch: SampleCall
    public var converters: [SampleCall]
    /// The expression as written.
    public var text: String

    public init(fetch: SampleCall, converters: [SampleCall] = [], text: String) {
        self.fetch = fetch
        self.converters = converters
        self.text = text
    }

    public var description: String { text }
}

/// The body of an ACL (named or anonymous): a sample, matching flags, and the patterns it is
/// compared with. A boolean sample with no pattern matches when true.
public struct ACLExpression: Sendable, Equatable {
    public var sample: SampleExpression
    /// `-m <method>` (str, beg, sub, found, int, ...); nil for the sample's default.
    public var matchMethod: String?
    /// The other flags as written (`-i`, `-n`, ...).
    public var flags: [String]
    /// The remaining words: values, possibly led by an operator such as `gt` or `eq`.
    public var patterns: [String]
    /// `-f <file>` pattern files as written (read when the configuration is loaded, relative
    /// paths from the working directory, as HAProxy does without `default-path`).
    public var patternFiles: [String]

    public init(sample: SampleExpression, matchMethod: String? = nil, flags: [String] = [], patterns: [String] = [],
                patternFiles: [String] = []) {
        self.sample = sample
        self.matchMethod = matchMethod
        self.flags = flags
        self.patterns = patterns
        self.patternFiles = patternFiles
    }
}

/// One term of a condition: a named ACL or an anonymous one, possibly negated with `!`.
public struct ConditionTerm: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// An ACL declared with `acl <name>` in the same proxy, or a predefined one (TRUE, ...).
        case named(String)
        /// `{ <sample> [flags] [patterns] }`
        case anonymous(ACLExpression)
    }

    public var negated: Bool
    public var kind: Kind

    public init(negated: Bool = false, kind: Kind) {
        self.negated = negated
        self.kind = kind
    }
}

/// `if|unless <condition>`: alternatives separated by `or`/`||`, each a list of terms that must
/// all hold (HAProxy's disjunctive form).
public struct RuleCondition: Sendable, Equatable {
    public enum Polarity: String, Sendable {
        /// The rule applies when the condition holds.
        case `if`
        /// The rule applies when the condition does not hold.
        case unless
    }

    public var polarity: Polarity
    /// OR of ANDs.
    public var alternatives: [[ConditionTerm]]
    /// The condition as written after `if`/`unless`, words separated by one space.
    public var text: String

    public init(polarity: Polarity, alternatives: [[ConditionTerm]], text: String) {
        self.polarity = polarity
        self.alternatives = alternatives
        self.text = text
    }

    /// Every anonymous ACL in the condition, in order.
    public var anonymousACLs: [ACLExpression] {
        alternatives.flatMap { $0 }.compactMap {
            if case .anonymous(let expression) = $0.kind { return expression }
            return nil
        }
    }

    /// Every sample the condition reads, in order: its anonymous ACLs' and those of the named
    /// ACLs it refers to (each `acl` line of that name in `acls`).
    public func samples(acls: [ACLDefinition]) -> [SampleExpression] {
        alternatives.joined().flatMap { term -> [SampleExpression] in
            switch term.kind {
            case .anonymous(let expression): return [expression.sample]
            case .named(let name): return acls.filter { $0.name == name }.map(\.expression.sample)
            }
        }
    }
}
