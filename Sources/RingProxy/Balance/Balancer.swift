// Balancer: picks a server for a new connection, once per connection attempt (never per
// packet). Round robin is per worker (shared-nothing) and smooth: weights 5/2/3 interleave as
// a,c,a,b,a,c,a,b,c,a rather than in bursts. leastconn reads engine-wide counts. `source` and
// `clientid-hash` are rendezvous hashes: consistent, weighted, and the same on every instance.
// A server that may not take new connections (down, drain, maint: SharedState) or has weight 0
// is never chosen. Backup servers are chosen only when no active one is usable: the first
// usable backup in order, or all of them balanced with `option allbackups` (as in HAProxy).
// When no server is usable the answer is -1 and the connection is refused.

struct Balancer {
    let algorithm: BalanceAlgorithm
    let serverCount: Int
    let globalBase: Int
    let weights: UnsafeMutablePointer<Int32>
    let seeds: UnsafeMutablePointer<UInt64>
    /// Smooth weighted round robin state (nginx's algorithm): current weight per server.
    let current: UnsafeMutablePointer<Int>
    let totalWeight: Int
    /// Per server: a `backup` server; whether there is one; `option allbackups`.
    let backup: UnsafeMutablePointer<Bool>
    let hasBackups: Bool
    let allBackups: Bool

    init(backend: BackendConfig, globalBase: Int, workerIndex: Int) {
        algorithm = backend.balance
        serverCount = backend.servers.count
        self.globalBase = globalBase
        let n = max(1, serverCount)
        weights = .allocate(capacity: n)
        seeds = .allocate(capacity: n)
        current = .allocate(capacity: n)
        current.initialize(repeating: 0, count: n)
        backup = .allocate(capacity: n)
        backup.initialize(repeating: false, count: n)
        hasBackups = backend.servers.contains { $0.backup }
        allBackups = backend.allBackups
        var total = 0
        for (i, server) in backend.servers.enumerated() {
            backup[i] = server.backup
            weights[i] = Int32(server.weight)
            seeds[i] = Hashing.hash(server.name)
            total += server.weight
        }
        totalWeight = total
        // Workers start at different points of the sequence, so N cores do not all send their
        // first connections to the same server.
        for _ in 0..<(serverCount == 0 ? 0 : workerIndex % max(1, total)) { advanceRoundRobin() }
    }

    func deallocate() {
        weights.deallocate()
        seeds.deallocate()
        current.deallocate()
        backup.deallocate()
    }

    /// Takes the weights in force from the shared state (after `set server ... weight`).
    func refreshWeights(shared: SharedState) {
        for i in 0..<serverCount { weights[i] = Int32(clamping: shared.serverWeight(globalBase + i)) }
    }

    /// The server for a first attempt, or -1 when none is usable. `key` is what the hash
    /// algorithms hash: the client id for clientid-hash, the client address for source.
    mutating func pick(shared: SharedState, key: UnsafeRawBufferPointer) -> Int {
        precondition(serverCount > 0)
        let chosen = pick(shared: shared, key: key, backups: false)
        guard chosen < 0, hasBackups else { return chosen }
        return allBackups ? pick(shared: shared, key: key, backups: true) : firstUsableBackup(shared: shared)
    }

    private func pick(shared: SharedState, key: UnsafeRawBufferPointer, backups: Bool) -> Int {
        switch algorithm {
        case .roundrobin:
            return nextRoundRobin(shared: shared, backups: backups)
        case .leastconn:
            return leastLoaded(shared: shared, backups: backups)
        case .source, .clientIDHash:
            let base = globalBase
            let backup = self.backup
            return Hashing.rendezvous(Hashing.hash(key), seeds: seeds, weights: weights, count: serverCount) {
                backup[$0] == backups && shared.isServerUp(base + $0)
            }
        }
    }

    private func firstUsableBackup(shared: SharedState) -> Int {
        var i = 0
        while i < serverCount {
            if isUsable(i, shared: shared, backups: true) { return i }
            i += 1
        }
        return -1
    }

    /// One step of the round robin over every server of weight above 0 (start-up only).
    private func advanceRoundRobin() {
        var best = -1
        for i in 0..<serverCount where weights[i] > 0 {
            current[i] += Int(weights[i])
            if best < 0 || current[i] > current[best] { best = i }
        }
        if best >= 0 { current[best] -= totalWeight }
    }

    /// Whether server i may take new connections: weight above 0, not down, drained or in
    /// maintenance (a backup only when no active server is usable).
    @inline(__always)
    func isUsable(_ i: Int, shared: SharedState) -> Bool {
        weights[i] > 0 && shared.isServerUp(globalBase + i)
    }

    @inline(__always)
    func isUsable(_ i: Int, shared: SharedState, backups: Bool) -> Bool {
        backup[i] == backups && weights[i] > 0 && shared.isServerUp(globalBase + i)
    }

    /// nginx's smooth weighted round robin over the usable servers: add each weight to its
    /// current value, take the largest, subtract the usable total from it.
    @inline(__always)
    func nextRoundRobin(shared: SharedState, backups: Bool = false) -> Int {
        var best = -1
        var total = 0
        var i = 0
        while i < serverCount {
            if isUsable(i, shared: shared, backups: backups) {
                current[i] += Int(weights[i])
                total += Int(weights[i])
                if best < 0 || current[i] > current[best] { best = i }
            }
            i += 1
        }
        if best >= 0 { current[best] -= total }
        return best
    }

    /// The server with the fewest connections per unit of weight, engine-wide; ties go round
    /// robin so that equal loads still spread.
    private func leastLoaded(shared: SharedState, backups: Bool) -> Int {
        let start = nextRoundRobin(shared: shared, backups: backups)
        guard start >= 0 else { return -1 }
        var best = start
        var bestLoad = shared.serverActive(globalBase + best)
        var i = 1
        while i < serverCount {
            let s = (start + i) % serverCount
            let load = shared.serverActive(globalBase + s)
            // load_s / w_s < best / w_best, without division.
            if isUsable(s, shared: shared, backups: backups) && load * Int(weights[best]) < bestLoad * Int(weights[s]) {
                best = s
                bestLoad = load
            }
            i += 1
        }
        return best
    }

    /// The server for a retry after `failed` could not be reached (redispatch): the next usable
    /// one in order, `failed` itself when it is the only one left, -1 when none is usable.
    func next(after failed: Int, shared: SharedState) -> Int {
        let active = nextInOrder(after: failed, shared: shared, backups: false)
        if active >= 0 || !hasBackups { return active }
        return allBackups ? nextInOrder(after: failed, shared: shared, backups: true) : firstUsableBackup(shared: shared)
    }

    private func nextInOrder(after failed: Int, shared: SharedState, backups: Bool) -> Int {
        var i = 1
        while i <= serverCount {
            let s = (failed + i) % serverCount
            if isUsable(s, shared: shared, backups: backups) { return s }
            i += 1
        }
        return -1
    }
}
