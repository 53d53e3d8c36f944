// ProxyCounter: what a worker counts per frontend and per server for the stats page (HAProxy's
// per-proxy columns: stot, bin, bout, dreq, ereq, econ, wretr, wredis, cli_abrt, srv_abrt,
// lbtot). Plain words in the worker's own table, bumped once per connection or attempt, never
// per packet; Engine.snapshot() sums them over workers and reloads.

enum ProxyCounter: Int, CaseIterable {
    case sessions
    case bytesIn
    case bytesOut
    case denied
    case requestErrors
    case connectErrors
    case retries
    case redispatches
    case clientAborts
    case serverAborts
    case selected
    /// Attempts that found no free address and port in the server's source pool.
    case sourceExhausted

    /// How many there are (allCases builds an array each time: not on the data path).
    static let count = 12
}

extension Worker {
    /// Row of frontend `f` / server `g` in `proxyCounters`: frontends first, then servers.
    @inline(__always) func countFrontend(_ f: Int, _ counter: ProxyCounter, _ n: UInt64 = 1) {
        proxyCounters[f * ProxyCounter.count + counter.rawValue] &+= n
    }

    @inline(__always) func countServer(_ g: Int, _ counter: ProxyCounter, _ n: UInt64 = 1) {
        proxyCounters[(frontendCount + g) * ProxyCounter.count + counter.rawValue] &+= n
    }

    /// A copy of the table (another thread; values may be a few increments old).
    func proxyCounterValues() -> [UInt64] {
        Array(UnsafeBufferPointer(start: proxyCounters, count: proxyCounterWords))
    }
}
