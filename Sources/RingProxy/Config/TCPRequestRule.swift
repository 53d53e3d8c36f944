// `tcp-request connection|content accept|reject [if|unless <condition>]`: one admission rule,
// kept in order with its line. Evaluating it is the engine's job.

/// `tcp-request connection|content accept|reject [if|unless <condition>]`.
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
    }

    public var phase: Phase
    public var action: Action
    public var condition: RuleCondition?
    public var location: SourceLocation

    public init(phase: Phase, action: Action, condition: RuleCondition? = nil, location: SourceLocation) {
        self.phase = phase
        self.action = action
        self.condition = condition
        self.location = location
    }
}
