// Engine+Admin: the engine as the stats page and the stats socket see it. snapshot() gathers
// the workers' counters (every generation still known, plus what forgotten ones left, matched
// by frontend and server name so that counts survive reloads) and the shared server state;
// the commands change the shared state words every worker's balancer reads. Off the data path.
import CUring
import Glibc
import MQTTPeek

/// Per-proxy counts by name: "f/<frontend>" and "s/<backend>/<server>".
struct ProxyTotals {
    var values: [String: [UInt64]] = [:]

    mutating func add(_ worker: Worker) {
        let words = worker.proxyCounterValues()
        let k = ProxyCounter.allCases.count
        for (f, frontend) in worker.config.frontends.enumerated() {
            add("f/\(frontend.name)", words[(f * k)..<(f * k + k)])
        }
        var g = worker.config.frontends.count
        for backend in worker.config.backends {
            for server in backend.servers {
                add("s/\(backend.name)/\(server.name)", words[(g * k)..<(g * k + k)])
                g += 1
            }
        }
    }

    private mutating func add(_ key: String, _ row: ArraySlice<UInt64>) {
        var sum = values[key] ?? Array(repeating: 0, count: ProxyCounter.allCases.count)
        for (i, v) in row.enumerated() { sum[i] &+= v }
        values[key] = sum
    }

    subscript(_ key: String, _ counter: ProxyCounter) -> UInt64 { values[key]?[counter.rawValue] ?? 0 }
}

extension Engine: AdminControl {
    public func snapshot() -> StatsSnapshot {
        let gone = statistics()
        let (generation, older, finished) = locked { (current!, retired, finishedProxyTotals) }
        var totals = finished
        for g in older + [generation] {
            for worker in g.workers { totals.add(worker) }
        }
        let config = generation.config
        let shared = generation.shared
        let nowMs = cu_now_ms()
        var frontends: [FrontendSnapshot] = []
        for (f, frontend) in config.frontends.enumerated() {
            var snap = FrontendSnapshot(name: frontend.name)
            let key = "f/\(frontend.name)"
            snap.binds = f < generation.boundAddresses.count ? generation.boundAddresses[f].map(\.description) : frontend.binds.map(\.description)
            snap.sessionsCurrent = shared.frontendActive(f) + older.reduce(0) { sum, g in
                sum + (g.config.frontends.firstIndex { $0.name == frontend.name }.map { g.shared.frontendActive($0) } ?? 0)
            }
            snap.sessionsMax = cu_atomic_load(shared.frontendMaxWords + f)
            snap.sessionLimit = frontend.maxConnections
            snap.sessionsTotal = totals[key, .sessions]
            snap.bytesIn = totals[key, .bytesIn]
            snap.bytesOut = totals[key, .bytesOut]
            snap.deniedConnections = totals[key, .denied]
            snap.requestErrors = totals[key, .requestErrors]
            var reasons: [String: UInt64] = [:]
            for worker in generation.workers {
                for (code, n) in worker.mqttRejections(frontend: f).enumerated() where n > 0 {
                    let name = InvalidReason(rawValue: UInt8(code)).map { "\($0)" } ?? "code \(code)"
                    reasons[name, default: 0] &+= n
                }
            }
            snap.mqttRejectedByReason = reasons
            frontends.append(snap)
        }
        var servers: [ServerSnapshot] = []
        var backends: [BackendSnapshot] = []
        for (b, backend) in config.backends.enumerated() {
            var backendSnap = BackendSnapshot(name: backend.name)
            backendSnap.balance = backend.balance.rawValue
            var lastChangeMs = shared.createdAtMs
            var anyUsable = false
            for (i, server) in backend.servers.enumerated() {
                let g = shared.serverBase[b] + i
                let key = "s/\(backend.name)/\(server.name)"
                var snap = ServerSnapshot(backend: backend.name, name: server.name, address: server.address.description, id: i + 1)
                let bits = shared.serverState(g)
                let record = shared.healthRecord(g)
                snap.backup = server.backup
                snap.weight = shared.serverWeight(g)
                snap.configuredWeight = server.weight
                snap.adminState = bits & ServerStateBits.maint != 0 ? .maint : (bits & ServerStateBits.drain != 0 ? .drain : .ready)
                snap.up = bits & ServerStateBits.down == 0
                snap.checked = server.check != nil
                snap.status = Self.statusText(bits: bits, record: record, checked: server.check != nil)
                snap.lastChangeSeconds = max(0, nowMs - record.lastChangeMs) / 1000
                snap.downtimeSeconds = (record.downtimeMs + (record.downSinceMs.map { nowMs - $0 } ?? 0)) / 1000
                snap.checkStatus = server.check == nil ? nil : (record.checkStatus ?? .initial)
                snap.checkCode = record.checkCode
                snap.checkDurationMs = record.checkDurationMs
                snap.checkDescription = record.checkDescription
                snap.lastCheckSeconds = record.lastCheckMs.map { max(0, nowMs - $0) / 1000 }
                snap.checksFailed = record.checksFailed
                snap.downTransitions = record.downTransitions
                snap.rise = server.check?.rise ?? 0
                snap.fall = server.check?.fall ?? 0
                snap.sessionsCurrent = shared.serverActive(g)
                snap.sessionsMax = cu_atomic_load(shared.serverMaxWords + g)
                snap.sessionsTotal = UInt64(shared.serverTotal(g))
                snap.bytesIn = totals[key, .bytesIn]
                snap.bytesOut = totals[key, .bytesOut]
                snap.connectErrors = totals[key, .connectErrors]
                snap.retries = totals[key, .retries]
                snap.redispatches = totals[key, .redispatches]
                snap.clientAborts = totals[key, .clientAborts]
                snap.serverAborts = totals[key, .serverAborts]
                snap.selected = totals[key, .selected]
                snap.sourceExhausted = totals[key, .sourceExhausted]
                let last = cu_atomic_load(shared.serverLastSessionWords + g)
                snap.lastSessionSeconds = last < 0 ? nil : max(0, nowMs - last) / 1000
                servers.append(snap)

                backendSnap.sessionsCurrent += snap.sessionsCurrent
                backendSnap.sessionsTotal &+= snap.sessionsTotal
                backendSnap.bytesIn &+= snap.bytesIn
                backendSnap.bytesOut &+= snap.bytesOut
                backendSnap.connectErrors &+= snap.connectErrors
                backendSnap.retries &+= snap.retries
                backendSnap.redispatches &+= snap.redispatches
                if bits == 0 && snap.weight > 0 {
                    anyUsable = true
                    if server.backup { backendSnap.backupServers += 1 } else { backendSnap.activeServers += 1 }
                    if !server.backup { backendSnap.weight += snap.weight }
                }
                lastChangeMs = max(lastChangeMs, record.lastChangeMs)
            }
            backendSnap.sessionsMax = backend.servers.indices.reduce(0) { max($0, cu_atomic_load(shared.serverMaxWords + shared.serverBase[b] + $1)) }
            backendSnap.status = anyUsable ? "UP" : "DOWN"
            backendSnap.lastChangeSeconds = max(0, nowMs - lastChangeMs) / 1000
            if let table = shared.stickTables[b] {
                backendSnap.stickEntries = table.usage().entries
                backendSnap.stickSize = table.capacity
            }
            backends.append(backendSnap)
        }
        let workers = generation.workers.map { worker -> WorkerLoad in
            let s = worker.statistics()
            return WorkerLoad(index: worker.index, cpu: worker.cpu.map(Int.init), active: s[.active], accepted: s[.accepted],
                              loopTurns: s[.loopTurns], completions: s[.completions])
        }
        return StatsSnapshot(
            version: Self.version, pid: Int(getpid()), startedAtSeconds: startedAtSeconds,
            uptimeSeconds: max(0, Int(time(nil)) - startedAtSeconds), maxConnections: generation.maxConnections,
            currentConnections: shared.activeConnections + older.reduce(0) { $0 + $1.shared.activeConnections },
            generation: generation.number, workers: workers, counters: gone.total.counters,
            frontends: frontends, backends: backends, servers: servers)
    }

    /// HAProxy's status column for a server.
    static func statusText(bits: Int, record: ServerHealthRecord, checked: Bool) -> String {
        if bits & ServerStateBits.maint != 0 { return "MAINT" }
        if bits & ServerStateBits.drain != 0 { return bits & ServerStateBits.down != 0 ? "DOWN" : "DRAIN" }
        guard checked else { return bits & ServerStateBits.down != 0 ? "DOWN" : "no check" }
        let healthMax = record.rise + record.fall - 1
        // Before its first check a server is shown UP, not "going down".
        if record.checkStatus == nil { return bits & ServerStateBits.down == 0 ? "UP" : "DOWN" }
        if bits & ServerStateBits.down == 0 {
            return record.health < healthMax && record.health >= record.rise ? "UP \(record.health - record.rise + 1)/\(record.fall)" : "UP"
        }
        return record.health > 0 ? "DOWN \(record.health)/\(record.rise)" : "DOWN"
    }

    /// The global index of `backend`/`server` in the configuration serving now.
    private func serverIndex(_ backend: String, _ server: String) throws(AdminError) -> (Generation, Int) {
        let generation = locked { current! }
        guard let b = generation.config.backends.firstIndex(where: { $0.name == backend }) else {
            throw AdminError("No such backend.")
        }
        guard let s = generation.config.backends[b].servers.firstIndex(where: { $0.name == server }) else {
            throw AdminError("No such server.")
        }
        return (generation, generation.shared.serverBase[b] + s)
    }

    public func setServerState(backend: String, server: String, state: ServerAdminState) throws(AdminError) {
        let (generation, g) = try serverIndex(backend, server)
        let shared = generation.shared
        let wasMaint = shared.serverState(g) & ServerStateBits.maint != 0
        switch state {
        case .ready:
            shared.setServerBits(g, ServerStateBits.maint | ServerStateBits.drain, on: false)
        case .drain:
            shared.setServerBits(g, ServerStateBits.maint, on: false)
            shared.setServerBits(g, ServerStateBits.drain, on: true)
        case .maint:
            shared.setServerBits(g, ServerStateBits.drain, on: false)
            shared.setServerBits(g, ServerStateBits.maint, on: true)
        }
        let line: String
        switch state {
        case .maint: line = "Server \(backend)/\(server) is going DOWN for maintenance. \(shared.serverActive(g)) sessions active (set by the operator)"
        case .drain: line = "Server \(backend)/\(server) enters drain state: no new sessions, \(shared.serverActive(g)) active ones finish (set by the operator)"
        case .ready: line = wasMaint ? "Server \(backend)/\(server) is UP (leaving forced maintenance, set by the operator)" : "Server \(backend)/\(server) is ready (set by the operator)"
        }
        log.warning(line)
    }

    public func setServerWeight(backend: String, server: String, weight: Int) throws(AdminError) {
        guard (0...256).contains(weight) else { throw AdminError("Weight must be between 0 and 256.") }
        let (generation, g) = try serverIndex(backend, server)
        generation.shared.setServerWeight(g, weight)
        log.info("server \(backend)/\(server) weight set to \(weight) (set by the operator)")
    }

    public func setServerHealth(backend: String, server: String, up: Bool) throws(AdminError) {
        let (generation, g) = try serverIndex(backend, server)
        if generation.shared.setServer(g, up: up) {
            log.warning("Server \(backend)/\(server) is \(up ? "UP" : "DOWN") (set by the operator)")
        }
    }

    public func stickTableEntries(backend: String, limit: Int) throws(AdminError) -> [StickEntrySnapshot] {
        let (generation, b) = try stickTable(backend)
        let servers = generation.config.backends[b].servers
        return generation.shared.stickTables[b]!.entries(limit: limit, nowMs: cu_now_ms()).map {
            StickEntrySnapshot(keyHash: $0.hash, server: $0.server < servers.count ? servers[$0.server].name : "?", expiresInMs: $0.expiresInMs)
        }
    }

    public func clearStickTable(backend: String) throws(AdminError) -> Int {
        let (generation, b) = try stickTable(backend)
        let cleared = generation.shared.stickTables[b]!.clear()
        log.info("stick table of backend '\(backend)' cleared: \(cleared) entries (by the operator)")
        return cleared
    }

    private func stickTable(_ backend: String) throws(AdminError) -> (Generation, Int) {
        let generation = locked { current! }
        guard let b = generation.config.backends.firstIndex(where: { $0.name == backend }) else {
            throw AdminError("No such table: '\(backend)'.")
        }
        guard generation.shared.stickTables[b] != nil else { throw AdminError("Backend '\(backend)' has no stick table.") }
        return (generation, b)
    }
}
