// SharedState: the little the workers share: the engine-wide connection count (for maxconn),
// per-server connection counts (for leastconn and stats), per-server state (health and the
// operator's state bits, runtime weight: the balancers skip servers that may not take new
// connections; Health/ServerState.swift), the stop flag, and the stick and address tables.
// Plain words updated with relaxed atomics, tables under their shard locks, once per
// connection; nothing here is touched per packet.
import CUring
import Glibc

final class SharedState: @unchecked Sendable {
    /// Word layout: [0] active connections, [1] stopping flag, then per server:
    /// active at 2 + 2*s, total at 3 + 2*s (s counted across all backends).
    let words: UnsafeMutablePointer<Int>
    /// Per server (global index): ServerStateBits (0: takes new connections). Written by whoever
    /// decides (health checks, observers of real traffic, the operator), read by every worker's
    /// balancer without a lock.
    let serverStateWords: UnsafeMutablePointer<Int>
    /// Per server: the weight in force (configured, or `set server ... weight`).
    let serverWeightWords: UnsafeMutablePointer<Int>
    /// Per server: most sessions at once, and when its last session started (ms, monotonic).
    let serverMaxWords: UnsafeMutablePointer<Int>
    let serverLastSessionWords: UnsafeMutablePointer<Int>
    /// Per server: consecutive failed connections of real traffic (`observe layer4`).
    let serverObservedErrorWords: UnsafeMutablePointer<Int>
    /// Per server: an `on-error` action waiting for the server's check owner (OnErrorAction raw
    /// value + 1; 0: none).
    let serverObserveActionWords: UnsafeMutablePointer<Int>
    /// Per frontend: most sessions at once.
    let frontendMaxWords: UnsafeMutablePointer<Int>
    /// Bumped on every server state or weight change: workers re-read weights and close the
    /// sessions `on-marked-down shutdown-sessions` / `on-marked-up shutdown-backup-sessions` ask for.
    let serverEventsWord: UnsafeMutablePointer<Int>
    /// What the checks found, per server, for the stats (under healthLock; once per check).
    var healthRecords: [ServerHealthRecord]
    var healthLock = pthread_mutex_t()
    /// Monotonic ms when this state was made (lastchg of servers never changed).
    let createdAtMs: Int
    let serverBase: [Int]   // first global server index of each backend
    /// Per backend: its stick table, shared by every worker (nil without `stick-table`).
    let stickTables: [StickTable?]
    /// Per frontend: the table its `track-sc0` counts addresses in (nil without address
    /// limits). Frontends tracking in the same table share one.
    let addressTables: [AddressTable?]

    /// Connections per frontend (for frontend maxconn).
    let frontendWords: UnsafeMutablePointer<Int>
    /// Bumped when the workers must arm extra accepts (after a reload, see Engine.reload).
    let acceptKickWord: UnsafeMutablePointer<Int>

    init(backends: [BackendConfig], frontendCount: Int = 64, addressLimits: [AddressLimitConfig?] = [],
         inheriting previous: SharedState? = nil, previousBackends: [BackendConfig] = []) {
        frontendWords = .allocate(capacity: max(1, frontendCount))
        frontendWords.initialize(repeating: 0, count: max(1, frontendCount))
        acceptKickWord = .allocate(capacity: 1)
        acceptKickWord.initialize(to: 0)
        // A reload keeps a backend's stick table when the backend, its servers (by name, in
        // order) and the table's settings are unchanged, so clients stay where they were.
        stickTables = backends.map { backend in
            guard let settings = backend.stickTable else { return nil }
            if let previous, let old = previousBackends.firstIndex(where: { $0.name == backend.name }),
               previousBackends[old].servers.map(\.name) == backend.servers.map(\.name),
               let table = previous.stickTables[old], table.config == settings {
                return table
            }
            return StickTable(config: settings)
        }
        // Address tables are kept across a reload when their settings are unchanged, so the
        // addresses with connections open stay counted (those connections release into them).
        var tables: [AddressTable] = []
        addressTables = addressLimits.map { limit in
            guard let settings = limit?.table else { return nil }
            if let table = tables.first(where: { $0.config == settings })
                ?? previous?.addressTables.lazy.compactMap({ $0 }).first(where: { $0.config == settings }) {
                if !tables.contains(where: { $0 === table }) { tables.append(table) }
                return table
            }
            let table = AddressTable(config: settings)
            tables.append(table)
            return table
        }
        var base: [Int] = []
        var n = 0
        for b in backends {
            base.append(n)
            n += b.servers.count
        }
        serverBase = base
        words = .allocate(capacity: 2 + 2 * n)
        words.initialize(repeating: 0, count: 2 + 2 * n)
        let servers = backends.flatMap(\.servers)
        serverStateWords = .allocate(capacity: max(1, n))
        serverStateWords.initialize(repeating: 0, count: max(1, n))
        serverWeightWords = .allocate(capacity: max(1, n))
        serverWeightWords.initialize(repeating: 0, count: max(1, n))
        for (g, server) in servers.enumerated() {
            serverWeightWords[g] = server.weight
            if server.startsInMaintenance { serverStateWords[g] = ServerStateBits.maint }
        }
        serverMaxWords = .allocate(capacity: max(1, n))
        serverMaxWords.initialize(repeating: 0, count: max(1, n))
        serverLastSessionWords = .allocate(capacity: max(1, n))
        serverLastSessionWords.initialize(repeating: -1, count: max(1, n))
        serverObservedErrorWords = .allocate(capacity: max(1, n))
        serverObservedErrorWords.initialize(repeating: 0, count: max(1, n))
        serverObserveActionWords = .allocate(capacity: max(1, n))
        serverObserveActionWords.initialize(repeating: 0, count: max(1, n))
        frontendMaxWords = .allocate(capacity: max(1, frontendCount))
        frontendMaxWords.initialize(repeating: 0, count: max(1, frontendCount))
        serverEventsWord = .allocate(capacity: 1)
        serverEventsWord.initialize(to: 0)
        createdAtMs = cu_now_ms()
        healthRecords = servers.map { ServerHealthRecord(lastChangeMs: cu_now_ms(), rise: $0.check?.rise ?? 0, fall: $0.check?.fall ?? 0) }
        // A server's state (down, drained, in maintenance) and its check history stay across a
        // reload (same backend and server name), unless the new file disables it.
        if let previous {
            for (b, backend) in backends.enumerated() {
                guard let old = previousBackends.firstIndex(where: { $0.name == backend.name }) else { continue }
                for (i, server) in backend.servers.enumerated() {
                    guard let oldIndex = previousBackends[old].servers.firstIndex(where: { $0.name == server.name }) else { continue }
                    let from = previous.serverBase[old] + oldIndex
                    let to = base[b] + i
                    var bits = cu_atomic_load(previous.serverStateWords + from)
                    if server.check == nil { bits &= ~ServerStateBits.down }
                    if server.startsInMaintenance { bits |= ServerStateBits.maint }
                    serverStateWords[to] = bits
                    var record = previous.healthRecord(from)
                    record.rise = server.check?.rise ?? 0
                    record.fall = server.check?.fall ?? 0
                    healthRecords[to] = record
                    serverMaxWords[to] = cu_atomic_load(previous.serverMaxWords + from)
                }
            }
        }
        pthread_mutex_init(&coldLock, nil)
        pthread_mutex_init(&healthLock, nil)
    }

    deinit {
        words.deallocate()
        frontendWords.deallocate()
        serverStateWords.deallocate()
        serverWeightWords.deallocate()
        serverMaxWords.deallocate()
        serverLastSessionWords.deallocate()
        serverObservedErrorWords.deallocate()
        serverObserveActionWords.deallocate()
        frontendMaxWords.deallocate()
        serverEventsWord.deallocate()
        acceptKickWord.deallocate()
    }

    @inline(__always) var acceptKicks: Int { cu_atomic_load(acceptKickWord) }
    /// Asks every worker to arm a round of extra accepts on its listeners.
    func kickAccepts() { _ = cu_atomic_add(acceptKickWord, 1) }

    @inline(__always) func addFrontendActive(_ f: Int, _ v: Int) -> Int {
        let now = cu_atomic_add(frontendWords + f, v)
        if v > 0 { cu_atomic_max(frontendMaxWords + f, now) }
        return now
    }
    func frontendActive(_ f: Int) -> Int { cu_atomic_load(frontendWords + f) }

    @inline(__always) var activeConnections: Int { cu_atomic_load(words) }
    @inline(__always) func addActive(_ v: Int) -> Int { cu_atomic_add(words, v) }

    @inline(__always) var stopping: Bool { cu_atomic_load(words + 1) != 0 }
    /// Stop accepting and drain within the grace period (SIGTERM).
    func requestStop() { cu_atomic_store(words + 1, 1) }
    /// A reload replaced this generation: stop accepting, hand the listening sockets in
    /// `transferredFDs` to the new one (never close them: their backlog would be reset), and
    /// let every open connection finish, however long it takes.
    func requestRetire(transferring fds: Set<Int32>) {
        pthread_mutex_lock(&coldLock)
        transferred = fds
        pthread_mutex_unlock(&coldLock)
        cu_atomic_store(words + 1, 2)
    }
    var retiring: Bool { cu_atomic_load(words + 1) == 2 }
    func isTransferred(_ fd: Int32) -> Bool {
        pthread_mutex_lock(&coldLock)
        defer { pthread_mutex_unlock(&coldLock) }
        return transferred.contains(fd)
    }
    private var coldLock = pthread_mutex_t()
    private var transferred: Set<Int32> = []

    @inline(__always) func serverActive(_ global: Int) -> Int { cu_atomic_load(words + 2 + 2 * global) }
    @inline(__always) func serverConnected(_ global: Int, nowMs: Int = cu_now_ms()) {
        let active = cu_atomic_add(words + 2 + 2 * global, 1)
        _ = cu_atomic_add(words + 3 + 2 * global, 1)
        cu_atomic_max(serverMaxWords + global, active)
        if cu_atomic_load(serverLastSessionWords + global) != nowMs { cu_atomic_store(serverLastSessionWords + global, nowMs) }
    }
    @inline(__always) func serverDisconnected(_ global: Int) { _ = cu_atomic_add(words + 2 + 2 * global, -1) }
    func serverTotal(_ global: Int) -> Int { cu_atomic_load(words + 3 + 2 * global) }

}
