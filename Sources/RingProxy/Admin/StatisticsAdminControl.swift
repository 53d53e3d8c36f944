// StatisticsAdminControl: an AdminControl over what Engine offers today (statistics(),
// setServer(up:), its config), so the executable serves a real page before Engine conforms to
// AdminControl itself. The executable uses Engine directly once it conforms; delete this then.
// Per-proxy counters, admin states, weights and the stick table need the Engine side.
import Glibc

public final class StatisticsAdminControl: AdminControl, @unchecked Sendable {
    private let engine: Engine
    private let startedAtSeconds: Int
    public static let version = "0.1-dev"

    public init(engine: Engine) {
        self.engine = engine
        startedAtSeconds = time(nil)
    }

    public func snapshot() -> StatsSnapshot {
        let statistics = engine.statistics()
        let config = engine.config
        let cpus = engine.cpus
        let workers = statistics.workers.enumerated().map { index, w in
            WorkerLoad(index: index, cpu: index < cpus.count ? Int(cpus[index]) : nil, active: w.counters[.active],
                       accepted: w.counters[.accepted], loopTurns: w.counters[.loopTurns], completions: w.counters[.completions])
        }
        let frontends = config.frontends.map { f in
            var snapshot = FrontendSnapshot(name: f.name)
            snapshot.binds = f.binds.map(\.description)
            snapshot.sessionLimit = f.maxConnections
            return snapshot
        }
        var servers: [ServerSnapshot] = []
        var backends: [BackendSnapshot] = []
        for backend in config.backends {
            var b = BackendSnapshot(name: backend.name)
            b.balance = backend.balance.rawValue
            for (index, server) in backend.servers.enumerated() {
                var s = ServerSnapshot(backend: backend.name, name: server.name, address: server.address.description, id: index + 1)
                s.weight = server.weight
                s.configuredWeight = server.weight
                if let counts = statistics.servers.first(where: { $0.backend == backend.name && $0.server == server.name }) {
                    s.sessionsCurrent = counts.active
                    s.sessionsTotal = UInt64(counts.total)
                }
                b.sessionsCurrent += s.sessionsCurrent
                b.sessionsTotal += s.sessionsTotal
                b.weight += s.weight
                b.activeServers += 1
                servers.append(s)
            }
            backends.append(b)
        }
        let now = time(nil)
        let total = statistics.total.counters
        return StatsSnapshot(version: Self.version, pid: Int(getpid()), startedAtSeconds: startedAtSeconds,
                             uptimeSeconds: now - startedAtSeconds, maxConnections: engine.maxConnections,
                             currentConnections: engine.activeConnections, generation: engine.generation, workers: workers,
                             counters: total, frontends: frontends, backends: backends, servers: servers)
    }

    static let notYet = AdminError("not supported by this engine yet (it needs Engine's AdminControl)")

    public func setServerState(backend: String, server: String, state: ServerAdminState) throws(AdminError) {
        guard state != .drain else { throw Self.notYet }
        try setServerHealth(backend: backend, server: server, up: state == .ready)
    }

    public func setServerWeight(backend: String, server: String, weight: Int) throws(AdminError) { throw Self.notYet }

    public func setServerHealth(backend: String, server: String, up: Bool) throws(AdminError) {
        guard engine.setServer(backend: backend, server: server, up: up) else { throw AdminError("No such server.") }
    }

    public func stickTableEntries(backend: String, limit: Int) throws(AdminError) -> [StickEntrySnapshot] { throw Self.notYet }

    public func clearStickTable(backend: String) throws(AdminError) -> Int { throw Self.notYet }
}
