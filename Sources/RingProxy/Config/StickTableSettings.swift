// `stick-table` and `stick on|match|store-request`: how a backend remembers which server a key
// (an MQTT client identifier, a source address) went to, and the per-address counters a
// `track-sc0` rule keeps (`store conn_cur,conn_rate(10s)`). Values only; the tables themselves
// are the engine's (Balance/StickTable, Engine/AddressTable).

/// One `stick-table` line.
public struct StickTableSettings: Sendable, Equatable {
    public enum KeyType: String, Sendable, CaseIterable {
        case ip
        case ipv6
        case integer
        case string
        case binary
    }

    /// HAProxy's key length for string and binary tables when `len` is not given.
    public static let defaultKeyLength = 32

    public var type: KeyType
    /// Key length in bytes for string and binary tables (`len`, else 32); nil for the others.
    public var keyLength: Int?
    /// `size`: the maximum number of entries. The k/m/g suffixes are powers of 1024, as HAProxy
    /// documents for stick-table sizes ("100k" is 102400 entries).
    public var sizeEntries: Int
    /// `expire`: how long an unused entry lives, in milliseconds; nil keeps entries until the
    /// table is full.
    public var expireMs: Int?
    public var nopurge: Bool = false
    /// `peers`: the peers section that replicates the table (ringproxy does not replicate).
    public var peers: String?
    /// `store` data types as written, every `store` clause in order.
    public var store: [String] = []
    /// The counters among them that ringproxy maintains for `track-sc0` rules.
    public var counters = StickTableCounters()
    public var location: SourceLocation

    public init(type: KeyType, keyLength: Int?, sizeEntries: Int, expireMs: Int?, location: SourceLocation) {
        self.type = type
        self.keyLength = keyLength
        self.sizeEntries = sizeEntries
        self.expireMs = expireMs
        self.location = location
    }
}

/// The per-key counters a table stores and ringproxy maintains (HAProxy's `store` data types of
/// the same names). A rule may only read what its table stores.
public struct StickTableCounters: Sendable, Equatable {
    /// `conn_cur`: connections tracking the entry now.
    public var connCur = false
    /// `conn_cnt`: connections that ever tracked the entry.
    public var connCnt = false
    /// `conn_rate(<period>)`: the period in milliseconds; nil when not stored.
    public var connRatePeriodMs: Int?

    public init(connCur: Bool = false, connCnt: Bool = false, connRatePeriodMs: Int? = nil) {
        self.connCur = connCur
        self.connCnt = connCnt
        self.connRatePeriodMs = connRatePeriodMs
    }

    public func stores(_ counter: StickCounter) -> Bool {
        switch counter {
        case .connCur: return connCur
        case .connCnt: return connCnt
        case .connRate: return connRatePeriodMs != nil
        }
    }
}

/// A counter a tracked entry keeps, named as in `store` and in the fetches that read it.
public enum StickCounter: String, Sendable, CaseIterable {
    case connCur = "conn_cur"
    case connCnt = "conn_cnt"
    case connRate = "conn_rate"
}

/// One `stick on|match|store-request <sample> [table <name>] [if|unless <condition>]` line.
public struct StickRule: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        /// `stick on`: match, and store when no entry matched.
        case on
        case match
        case storeRequest = "store-request"

        public var keyword: String { "stick \(rawValue)" }
    }

    public var kind: Kind
    public var sample: SampleExpression
    /// `table <name>`: another backend's table; nil uses this backend's.
    public var table: String?
    public var condition: RuleCondition?
    public var location: SourceLocation

    public init(kind: Kind, sample: SampleExpression, table: String? = nil, condition: RuleCondition? = nil, location: SourceLocation) {
        self.kind = kind
        self.sample = sample
        self.table = table
        self.condition = condition
        self.location = location
    }
}
