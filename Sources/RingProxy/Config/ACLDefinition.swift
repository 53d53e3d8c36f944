// `acl <name> <criterion> [flags] [patterns]`: a named condition a proxy's rules can refer to.
// Only the declaration; ConditionParser reads its body.

/// `acl <name> <criterion> [flags] [patterns]`. Several lines with one name are alternatives.
public struct ACLDefinition: Sendable, Equatable {
    public var name: String
    public var expression: ACLExpression
    public var location: SourceLocation

    public init(name: String, expression: ACLExpression, location: SourceLocation) {
        self.name = name
        self.expression = expression
        self.location = location
    }
}
