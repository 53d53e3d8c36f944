// `tcp-request connection|content accept|reject|track-sc0 ... [if|unless <condition>]`: one
// admission rule, kept in order with its line. Evaluating it is the engine's job.

/// `tcp-request connection|content accept|reject [if|unless <condition>]`, or
/// `tcp-request connection track-sc0 <key> [table <name>] [if|unless <condition>]`.
public struct TCPRequestRule: Sendable, Equatable {
    public enum Phase: String, Sendable, CaseIterable {
        /// Evaluated as soon as the connection is accepted, before any byte is read.
        case connection
        /// Evaluated on the request contents (within `tcp-request inspect-delay`).
        case content

        public var keyword: String { "tcp-request \(rawValue)" }
    }

    public enum Action: String, Sendable, CaseIterable {
        case accept
        case reject
        /// Start tracking stick counter 0 on the key (`tracking` says which key and table).
        case trackSC0 = "track-sc0"
        /// `expect-proxy layer4`: the connection starts with a PROXY protocol header (for the
        /// sources the condition names: the front balancers).
        case expectProxy = "expect-proxy"
    }

    /// `track-sc0 <key> [table <name>]`.
    public struct Tracking: Sendable, Equatable {
        /// The key to track, e.g. `src`.
        public var key: SampleExpression
        /// `table <name>`: another proxy's stick-table; nil uses this proxy's own.
        public var table: String?

        public init(key: SampleExpression, table: String? = nil) {
            self.key = key
            self.table = table
        }
    }

    public var phase: Phase
    public var action: Action
    /// Set for `track-sc0`, nil for the other actions.
    public var tracking: Tracking?
    public var condition: RuleCondition?
    public var location: SourceLocation

    public init(phase: Phase, action: Action, tracking: Tracking? = nil, condition: RuleCondition? = nil, location: SourceLocation) {
        self.phase = phase
        self.action = action
        self.tracking = tracking
        self.condition = condition
        self.location = location
    }
}
