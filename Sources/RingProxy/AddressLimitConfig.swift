// AddressLimitConfig: a frontend's per-address admission rules as plain values, HAProxy's
// `tcp-request connection track-sc0 src` and `reject if|unless { sc0_conn_cur gt N } ...`.
// Judging a connection from its address's counters is a pure function here; the counters
// themselves live in the shared AddressTable (Engine/AddressTable.swift).

/// A frontend's `track-sc0 src` table and the `reject` rules that read it, in file order.
public struct AddressLimitConfig: Sendable, Equatable {
    public var table: AddressTableConfig
    public var rejectRules: [AddressRejectRule]

    public init(table: AddressTableConfig, rejectRules: [AddressRejectRule] = []) {
        self.table = table
        self.rejectRules = rejectRules
    }

    /// The first rule that rejects a connection whose address has `counters` (nil: the address
    /// could not be tracked, so every sc0 fetch fails), or nil when none does.
    func rejectingRule(_ counters: AddressCounters?) -> Int? {
        var r = 0
        while r < rejectRules.count {
            if rejectRules[r].rejects(counters) { return r }
            r += 1
        }
        return nil
    }
}

/// `tcp-request connection reject if|unless <condition>`, the condition in HAProxy's form: an OR
/// of ANDs of comparisons on the tracked address's counters.
public struct AddressRejectRule: Sendable, Equatable {
    /// `unless`: the rule rejects when the condition does not hold.
    public var unless: Bool
    public var alternatives: [[AddressComparison]]
    /// The rule as an operator reads it, for the log: "haproxy.cfg:12 'reject if { ... }'".
    public var text: String

    public init(unless: Bool = false, alternatives: [[AddressComparison]], text: String = "") {
        self.unless = unless
        self.alternatives = alternatives
        self.text = text
    }

    func rejects(_ counters: AddressCounters?) -> Bool {
        var holds = false
        var a = 0
        while a < alternatives.count && !holds {
            holds = true
            var t = 0
            while t < alternatives[a].count && holds {
                holds = alternatives[a][t].holds(counters)
                t += 1
            }
            a += 1
        }
        return holds != unless
    }
}

/// One term: `{ sc0_conn_cur gt 10 }`, possibly negated (`!{ ... }`).
public struct AddressComparison: Sendable, Equatable {
    public enum Operator: String, Sendable, CaseIterable {
        case eq, ge, gt, le, lt
    }

    public var counter: StickCounter
    public var op: Operator
    public var value: Int
    public var negated: Bool

    public init(_ counter: StickCounter, _ op: Operator, _ value: Int, negated: Bool = false) {
        self.counter = counter
        self.op = op
        self.value = value
        self.negated = negated
    }

    /// As in HAProxy, a fetch that finds nothing (the address is not tracked, or the table does
    /// not measure the rate) makes the term false, and `!` makes it true.
    func holds(_ counters: AddressCounters?) -> Bool {
        guard let sample = counters?[counter] else { return negated }
        let matches: Bool
        switch op {
        case .eq: matches = sample == value
        case .ge: matches = sample >= value
        case .gt: matches = sample > value
        case .le: matches = sample <= value
        case .lt: matches = sample < value
        }
        return matches != negated
    }
}

/// An address's counters right after its connection started tracking it (so they count it).
struct AddressCounters: Equatable {
    var connCur: Int
    var connCnt: Int
    /// nil when the table does not measure the rate (no `conn_rate(<period>)` stored).
    var connRate: Int?

    subscript(_ counter: StickCounter) -> Int? {
        switch counter {
        case .connCur: return connCur
        case .connCnt: return connCnt
        case .connRate: return connRate
        }
    }
}
