// A hand-made engine for the admin tests: a fixed snapshot (names that need escaping, a server
// in each state, a stick table) and a record of the commands it was given.
import Foundation
@testable import RingProxy

final class FakeAdminControl: AdminControl, @unchecked Sendable {
    let commands = Locked<[String]>([])
    let current: Locked<StatsSnapshot>

    init(_ snapshot: StatsSnapshot = FakeAdminControl.sample()) {
        current = Locked(snapshot)
    }

    func snapshot() -> StatsSnapshot { current.withLock { $0 } }

    private func find(_ backend: String, _ server: String) throws(AdminError) -> Int {
        let snapshot = snapshot()
        guard snapshot.backends.contains(where: { $0.name == backend }) else { throw AdminError("No such backend.") }
        guard let index = snapshot.servers.firstIndex(where: { $0.backend == backend && $0.name == server }) else { throw AdminError("No such server.") }
        return index
    }

    func setServerState(backend: String, server: String, state: ServerAdminState) throws(AdminError) {
        let index = try find(backend, server)
        current.withLock { $0.servers[index].adminState = state }
        commands.withLock { $0.append("state \(backend)/\(server) \(state.rawValue)") }
    }

    func setServerWeight(backend: String, server: String, weight: Int) throws(AdminError) {
        let index = try find(backend, server)
        current.withLock { $0.servers[index].weight = weight }
        commands.withLock { $0.append("weight \(backend)/\(server) \(weight)") }
    }

    func setServerHealth(backend: String, server: String, up: Bool) throws(AdminError) {
        _ = try find(backend, server)
        commands.withLock { $0.append("health \(backend)/\(server) \(up ? "up" : "down")") }
    }

    func stickTableEntries(backend: String, limit: Int) throws(AdminError) -> [StickEntrySnapshot] {
        guard backend == "brokers" else { throw AdminError("No such table: \(backend)") }
        return [StickEntrySnapshot(keyHash: 0xabc, server: "b1", expiresInMs: 1_500)]
    }

    func clearStickTable(backend: String) throws(AdminError) -> Int {
        guard backend == "brokers" else { throw AdminError("No such table: \(backend)") }
        commands.withLock { $0.append("clear \(backend)") }
        return 1
    }

    static func sample() -> StatsSnapshot {
        var counters = CounterValues()
        counters[.accepted] = 42
        counters[.bytesFromClients] = 1234
        counters[.active] = 3
        var frontend = FrontendSnapshot(name: "mqtt<in>")
        frontend.binds = ["127.0.0.1:1883"]
        frontend.sessionsCurrent = 3
        frontend.sessionsMax = 7
        frontend.sessionsTotal = 42
        frontend.bytesIn = 1234
        frontend.bytesOut = 4321
        frontend.deniedConnections = 2
        frontend.requestErrors = 5
        frontend.mqttRejectedByReason = ["notConnect": 4, "badProtocolName": 1]
        var backend = BackendSnapshot(name: "brokers")
        backend.sessionsCurrent = 3
        backend.sessionsTotal = 40
        backend.weight = 3
        backend.activeServers = 2
        backend.stickEntries = 1
        backend.stickSize = 1000
        var b1 = ServerSnapshot(backend: "brokers", name: "b1", address: "127.0.0.1:18831", id: 1)
        b1.sessionsCurrent = 3
        b1.sessionsTotal = 30
        b1.status = "UP"
        b1.checked = true
        b1.checkStatus = .layer4OK
        b1.checkDurationMs = 1
        var b2 = ServerSnapshot(backend: "brokers", name: "b2", address: "127.0.0.1:18832", id: 2)
        b2.weight = 2
        b2.configuredWeight = 2
        b2.up = false
        b2.checked = true
        b2.status = "DOWN"
        b2.checkStatus = .layer4ConnectionProblem
        b2.checkDescription = "Connection refused"
        b2.checksFailed = 3
        b2.downTransitions = 1
        var b3 = ServerSnapshot(backend: "brokers", name: "b3", address: "[::1]:18833", id: 3)
        b3.adminState = .maint
        b3.status = "MAINT"
        return StatsSnapshot(version: "9.9-test", pid: 4242, startedAtSeconds: 1_700_000_000, uptimeSeconds: 3723,
                             maxConnections: 1000, currentConnections: 3, generation: 2,
                             workers: [WorkerLoad(index: 0, cpu: 0, active: 2, accepted: 30, loopTurns: 100, completions: 300),
                                       WorkerLoad(index: 1, cpu: 1, active: 1, accepted: 12, loopTurns: 90, completions: 200)],
                             counters: counters, frontends: [frontend], backends: [backend], servers: [b1, b2, b3])
    }
}

/// Runs a shell pipeline (curl, socat, python3) bounded in time; (status, stdout+stderr).
func shell(_ script: String, within seconds: Double = 20) throws -> (Int32, String) {
    try ChildProcess("/bin/bash", ["-c", script]).finish(within: seconds)
}

func requireTool(_ name: String) throws -> String {
    guard let path = Tools.which(name) else { throw XCTSkipError("\(name) is not installed (scripts/install-deps.sh)") }
    return path
}
