// `use_backend <name> [if|unless <condition>]`: one backend-selection rule of a frontend, in
// order, with its line so that logs and errors can point at the rule that decided.

/// `use_backend <name> [if|unless <condition>]`.
public struct UseBackendRule: Sendable, Equatable {
    public var backend: String
    public var condition: RuleCondition?
    public var location: SourceLocation

    public init(backend: String, condition: RuleCondition? = nil, location: SourceLocation) {
        self.backend = backend
        self.condition = condition
        self.location = location
    }
}
