// ProxyCounter: what a worker counts per frontend and per server for the stats page (HAProxy's
// per-proxy columns: stot, bin, bout, dreq, ereq, econ, wretr, wredis, cli_abrt, srv_abrt,
// lbtot). Words in the worker's own table (one writer, relaxed loads and stores), bumped once
// per connection or attempt, never per packet; Engine.snapshot() sums them over workers and
// reloads.
import CUring

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
        cu_word_add(proxyCounters + f * ProxyCounter.count + counter.rawValue, n)
    }

    @inline(__always) func countServer(_ g: Int, _ counter: ProxyCounter, _ n: UInt64 = 1) {
        cu_word_add(proxyCounters + (frontendCount + g) * ProxyCounter.count + counter.rawValue, n)
    }

    /// A copy of the table (another thread; values may be a few increments old).
    func proxyCounterValues() -> [UInt64] {
        (0..<proxyCounterWords).map { cu_word_load(proxyCounters + $0) }
    }
}
