// SessionRates: HAProxy's `rate` and `rate_max` (new sessions per second) for each frontend,
// backend and server. The admin thread samples a snapshot about once a second and keeps the
// last rate and the highest seen; the data path keeps no timer and no rate of its own.

public struct SessionRate: Sendable, Equatable {
    public var current: UInt64 = 0
    public var max: UInt64 = 0

    public init(current: UInt64 = 0, max: UInt64 = 0) {
        self.current = current
        self.max = max
    }
}

public struct SessionRates: Sendable, Equatable {
    public var frontends: [String: SessionRate] = [:]
    public var backends: [String: SessionRate] = [:]
    /// Keyed "backend/server".
    public var servers: [String: SessionRate] = [:]

    public init() {}

    public func frontend(_ name: String) -> SessionRate { frontends[name] ?? SessionRate() }
    public func backend(_ name: String) -> SessionRate { backends[name] ?? SessionRate() }
    public func server(_ backend: String, _ server: String) -> SessionRate { servers["\(backend)/\(server)"] ?? SessionRate() }
}

/// Turns session totals sampled over time into rates. Pure: the caller gives the time.
public struct SessionRateSampler: Sendable {
    public private(set) var rates = SessionRates()
    private var previousTotals: [String: UInt64] = [:]
    private var previousMs: Int?

    public init() {}

    /// Records `snapshot` taken at `nowMs`; rates are per second over the time since the last one.
    public mutating func record(_ snapshot: StatsSnapshot, nowMs: Int) {
        let elapsedMs = previousMs.map { nowMs - $0 } ?? 0
        var totals: [String: UInt64] = [:]
        func update(_ table: inout [String: SessionRate], _ key: String, _ kind: String, _ total: UInt64) {
            let tag = "\(kind):\(key)"
            totals[tag] = total
            var rate = table[key] ?? SessionRate()
            if elapsedMs > 0, let previous = previousTotals[tag] {
                rate.current = total >= previous ? (total - previous) * 1000 / UInt64(elapsedMs) : 0
                rate.max = Swift.max(rate.max, rate.current)
            }
            table[key] = rate
        }
        for f in snapshot.frontends { update(&rates.frontends, f.name, "f", f.sessionsTotal) }
        for b in snapshot.backends { update(&rates.backends, b.name, "b", b.sessionsTotal) }
        for s in snapshot.servers { update(&rates.servers, "\(s.backend)/\(s.name)", "s", s.sessionsTotal) }
        // Proxies gone after a reload go from the tables too.
        rates.frontends = rates.frontends.filter { totals["f:\($0.key)"] != nil }
        rates.backends = rates.backends.filter { totals["b:\($0.key)"] != nil }
        rates.servers = rates.servers.filter { totals["s:\($0.key)"] != nil }
        previousTotals = totals
        previousMs = nowMs
    }
}
