// Worker+ServerEvents: what a worker does about server state beyond choosing: `observe layer4`
// (failed connections of real traffic count against a server, and past `error-limit` its
// `on-error` action runs), and, when any server's state or weight changed (one shared word,
// looked at once per loop turn), re-reading the weights and closing the sessions that
// `on-marked-down shutdown-sessions` and `on-marked-up shutdown-backup-sessions` condemn.
import CUring
import Glibc

extension Worker {
    /// A connection to server `g` failed (refused, reset, timed out).
    func observeConnectFailure(_ g: Int) {
        guard let observe = serverObserve[g] else { return }
        let errors = cu_atomic_add(shared.serverObservedErrorWords + g, 1)
        // Exactly at the limit: one action per streak of failures, whoever sees it.
        guard errors == observe.errorLimit else { return }
        count(.observedErrorLimits)
        switch observe.onError {
        case .markDown:
            if shared.setServerBits(g, ServerStateBits.down, on: true, nowMs: nowMs) {
                reportServerChange(g, up: false, reason: "Health analyze",
                                   info: "Detected \(errors) consecutive errors, last one was: L4 unsuccessful connection", durationMs: nil)
            }
        case .fastinter, .failCheck, .suddenDeath:
            // For the worker that checks the server, at its next result.
            let code = OnErrorAction.allCases.firstIndex(of: observe.onError)! + 1
            cu_atomic_store(shared.serverObserveActionWords + g, code)
        }
    }

    /// A connection to server `g` succeeded: the streak of failures ends.
    @inline(__always)
    func observeConnectSuccess(_ g: Int) {
        guard serverObserve[g] != nil, cu_atomic_load(shared.serverObservedErrorWords + g) != 0 else { return }
        cu_atomic_store(shared.serverObservedErrorWords + g, 0)
    }

    /// Some server's state or weight changed since the last look.
    func onServerEvents() {
        serverEventsSeen = shared.serverEvents
        for b in balancers.indices { balancers[b].refreshWeights(shared: shared) }
        guard shutdownRulesExist else { return }
        // Which servers' sessions must go: down ones with shutdown-sessions; backups of a
        // backend where a server with shutdown-backup-sessions is up again.
        var condemned = [Bool](repeating: false, count: serverIsBackup.count)
        var any = false
        for (b, base) in backendServerBase.enumerated() {
            let count = backendServerCount[b]
            var activeBack = false
            for i in 0..<count where serverShutdownBackupsOnUp[base + i] && shared.serverState(base + i) == 0 { activeBack = true }
            for i in 0..<count {
                let g = base + i
                let down = shared.serverState(g) & ServerStateBits.down != 0
                if (serverShutdownOnDown[g] && down) || (activeBack && serverIsBackup[g]) {
                    condemned[g] = true
                    any = true
                }
            }
        }
        guard any else { return }
        var s = 0
        while s < slotCount {
            let phase = conns[s].phase
            if (phase == .established || phase == .connecting) && conns[s].server >= 0 {
                let g = backendServerBase[Int(conns[s].backend)] + Int(conns[s].server)
                if condemned[g] {
                    count(.serverShutdownSessions)
                    closeConnection(Int32(s), reset: false, why: .serverDown)
                }
            }
            s += 1
        }
    }
}
