// ServerState: a server's state as every core sees it. One word of bits per server (checks say
// down; the operator says maint or drain) read without a lock by the balancers: a server takes
// new connections only when its word is 0 and its weight above 0. Transitions go through
// fetch-or / fetch-and, so exactly one caller makes each (and reports it); the check history
// the stats show is kept beside, under a lock taken once per check.
import CUring
import Glibc

enum ServerStateBits {
    /// Health checks (or an observer of real traffic, or `set server health down`) say down.
    static let down = 1
    /// `set server state maint`, `disable server`, `disabled`: out of rotation, not checked.
    static let maint = 2
    /// `set server state drain`: keeps its sessions, takes no new ones.
    static let drain = 4
}

/// What the stats show of a server's checks and transitions.
struct ServerHealthRecord: Sendable {
    /// HAProxy's health counter: 0 ... rise + fall - 1; up servers are at rise or above.
    var health = 0
    var checkStatus: CheckStatus? = nil
    var checkCode: Int? = nil
    var checkDurationMs: Int? = nil
    var checkDescription = ""
    var lastCheckMs: Int? = nil
    var checksFailed: UInt64 = 0
    var downTransitions: UInt64 = 0
    /// When it last went UP, DOWN, into or out of maintenance (monotonic ms).
    var lastChangeMs: Int
    /// Since when it has been down (nil while up), and the downtime of earlier outages.
    var downSinceMs: Int? = nil
    var downtimeMs = 0
    var rise: Int
    var fall: Int

    init(lastChangeMs: Int, rise: Int, fall: Int) {
        self.lastChangeMs = lastChangeMs
        self.rise = rise
        self.fall = fall
        health = rise
    }
}

extension SharedState {
    @inline(__always) func serverState(_ global: Int) -> Int { cu_atomic_load(serverStateWords + global) }
    /// Whether the server may take new connections (weight aside).
    @inline(__always) func isServerUp(_ global: Int) -> Bool { cu_atomic_load(serverStateWords + global) == 0 }
    @inline(__always) func serverWeight(_ global: Int) -> Int { cu_atomic_load(serverWeightWords + global) }
    var serverEvents: Int { cu_atomic_load(serverEventsWord) }

    /// Sets or clears state bits; true when the word changed. Every change bumps the events
    /// word, so the workers re-read what they derive from it.
    @discardableResult
    func setServerBits(_ global: Int, _ bits: Int, on: Bool, nowMs: Int = cu_now_ms()) -> Bool {
        let old = on ? cu_atomic_fetch_or(serverStateWords + global, bits) : cu_atomic_fetch_and(serverStateWords + global, ~bits)
        let new = on ? old | bits : old & ~bits
        guard old != new else { return false }
        let wasDown = old & (ServerStateBits.down | ServerStateBits.maint) != 0
        let isDown = new & (ServerStateBits.down | ServerStateBits.maint) != 0
        updateHealth(global) { record in
            // Whoever set or cleared `down`, the health counter now says so (the check owner
            // resynchronises its own copy at its next result).
            if (old ^ new) & ServerStateBits.down != 0 {
                record.health = new & ServerStateBits.down != 0 ? 0 : record.rise + record.fall - 1
            }
            if wasDown != isDown || (old ^ new) & ServerStateBits.maint != 0 { record.lastChangeMs = nowMs }
            if !wasDown && isDown {
                record.downSinceMs = nowMs
                if bits & ServerStateBits.down != 0 { record.downTransitions += 1 }
            } else if wasDown && !isDown, let since = record.downSinceMs {
                record.downtimeMs += nowMs - since
                record.downSinceMs = nil
            }
        }
        _ = cu_atomic_add(serverEventsWord, 1)
        return true
    }

    /// Marks a server up or down for every worker's next choice (tests, the stats socket's
    /// `set server health`); connections already open stay. True when it changed.
    @discardableResult
    func setServer(_ global: Int, up: Bool) -> Bool { setServerBits(global, ServerStateBits.down, on: !up) }

    func setServerWeight(_ global: Int, _ weight: Int) {
        cu_atomic_store(serverWeightWords + global, weight)
        _ = cu_atomic_add(serverEventsWord, 1)
    }

    func healthRecord(_ global: Int) -> ServerHealthRecord {
        pthread_mutex_lock(&healthLock)
        defer { pthread_mutex_unlock(&healthLock) }
        return healthRecords[global]
    }

    func updateHealth(_ global: Int, _ body: (inout ServerHealthRecord) -> Void) {
        pthread_mutex_lock(&healthLock)
        body(&healthRecords[global])
        pthread_mutex_unlock(&healthLock)
    }
}
