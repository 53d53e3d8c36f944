// SharedState: the little the workers share: the engine-wide connection count (for maxconn),
// per-server connection counts (for leastconn and stats) and the stop flag. Plain words
// updated with relaxed atomics, once per connection; nothing here is touched per packet.
import CUring

final class SharedState: @unchecked Sendable {
    /// Word layout: [0] active connections, [1] stopping flag, then per server:
    /// active at 2 + 2*s, total at 3 + 2*s (s counted across all backends).
    let words: UnsafeMutablePointer<Int>
    let serverBase: [Int]   // first global server index of each backend
    let serverCount: Int
    /// Per backend: its stick table, shared by every worker (nil without `stick-table`).
    let stickTables: [StickTable?]

    /// Connections per frontend (for frontend maxconn).
    let frontendWords: UnsafeMutablePointer<Int>

    init(backends: [BackendConfig], frontendCount: Int = 64) {
        frontendWords = .allocate(capacity: max(1, frontendCount))
        frontendWords.initialize(repeating: 0, count: max(1, frontendCount))
        stickTables = backends.map { $0.stickTable.map(StickTable.init(config:)) }
        var base: [Int] = []
        var n = 0
        for b in backends {
            base.append(n)
            n += b.servers.count
        }
        serverBase = base
        serverCount = n
        words = .allocate(capacity: 2 + 2 * n)
        words.initialize(repeating: 0, count: 2 + 2 * n)
    }

    deinit {
        words.deallocate()
        frontendWords.deallocate()
    }

    @inline(__always) func addFrontendActive(_ f: Int, _ v: Int) -> Int { cu_atomic_add(frontendWords + f, v) }

    @inline(__always) var activeConnections: Int { cu_atomic_load(words) }
    @inline(__always) func addActive(_ v: Int) -> Int { cu_atomic_add(words, v) }

    @inline(__always) var stopping: Bool { cu_atomic_load(words + 1) != 0 }
    func requestStop() { cu_atomic_store(words + 1, 1) }

    @inline(__always) func serverActive(_ global: Int) -> Int { cu_atomic_load(words + 2 + 2 * global) }
    @inline(__always) func serverConnected(_ global: Int) {
        _ = cu_atomic_add(words + 2 + 2 * global, 1)
        _ = cu_atomic_add(words + 3 + 2 * global, 1)
    }
    @inline(__always) func serverDisconnected(_ global: Int) { _ = cu_atomic_add(words + 2 + 2 * global, -1) }
    func serverTotal(_ global: Int) -> Int { cu_atomic_load(words + 3 + 2 * global) }
}
