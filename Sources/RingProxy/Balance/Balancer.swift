// Balancer: picks a server for a new connection. Per worker (shared-nothing) for round robin,
// engine-wide counts for leastconn. Called once per connection attempt, never per packet.

struct Balancer {
    let algorithm: BalanceAlgorithm
    let serverCount: Int
    let globalBase: Int
    private var rrNext: Int

    init(backend: BackendConfig, globalBase: Int, workerIndex: Int) {
        algorithm = backend.balance
        serverCount = backend.servers.count
        self.globalBase = globalBase
        // Workers start at different servers so that N cores do not all send their first
        // connections to server 0.
        rrNext = serverCount == 0 ? 0 : workerIndex % serverCount
    }

    /// The server for a first attempt.
    mutating func pick(shared: SharedState) -> Int {
        precondition(serverCount > 0)
        switch algorithm {
        case .roundrobin:
            let s = rrNext
            rrNext = rrNext + 1 == serverCount ? 0 : rrNext + 1
            return s
        case .leastconn:
            // Ties go round robin, so equal loads still spread.
            var best = rrNext
            var bestLoad = shared.serverActive(globalBase + best)
            var i = 1
            while i < serverCount {
                let s = (rrNext + i) % serverCount
                let load = shared.serverActive(globalBase + s)
                if load < bestLoad { best = s; bestLoad = load }
                i += 1
            }
            rrNext = rrNext + 1 == serverCount ? 0 : rrNext + 1
            return best
        }
    }

    /// The server for a retry after `failed` could not be reached (redispatch).
    func next(after failed: Int) -> Int { failed + 1 == serverCount ? 0 : failed + 1 }
}
