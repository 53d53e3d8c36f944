// Worker+Timeouts: the worker's deadlines. A timer queue holds them (the periodic scan now;
// health checks and finer timers as they come); the scan closes connections idle past
// `timeout client` (or, with `option mqtt-keepalive-timeout`, 1.5 times the CONNECT's
// keepalive) / `timeout server` and preambles past their inspect delay.
import CUring
import Glibc

/// The worker's own timers (TimerQueue entry ids).
enum WorkerTimer: UInt32 {
    /// The periodic scan of the connection table (every Worker.scanIntervalMs).
    case scan = 0
}

extension Worker {
    /// A deadline came due.
    func fireTimer(_ id: UInt32) {
        count(.timersFired)
        switch WorkerTimer(rawValue: id) {
        case .scan:
            timers.schedule(id: WorkerTimer.scan.rawValue, atMs: nowMs + Self.scanIntervalMs)
            scanTimeouts()
            refreshTLSRate()
            if tlsAcceptsHeld { retryHeldTLSAccepts() }
            if listenersPaused { resumeListeners() }
        case nil:
            if id >= Self.checkTimerBase && Int(id - Self.checkTimerBase) < checks.count {
                startCheck(Int(id - Self.checkTimerBase))
            } else {
                assertionFailure("unknown timer \(id)")
            }
        }
    }

    /// Closes connections idle longer than `timeout client` / `timeout server`. A scan of the
    /// table every 250 ms, off the packet path: the whole table, or 1/scanSlices of it from
    /// where the last tick stopped when there are more rings than CPUs (see RingPlan).
    func scanTimeouts() {
        let chunk = (slotCount + config.scanSlices - 1) / config.scanSlices
        var s = scanCursor
        let end = min(slotCount, s + chunk)
        scanCursor = end == slotCount ? 0 : end
        while s < end {
            let phase = conns[s].phase
            guard phase.isLive else {
                s += 1
                continue
            }
            let clientMs = clientTimeoutMs(s)
            let serverMs = backendServerTimeoutMs[Int(conns[s].backend)]
            if phase == .preamble {
                if nowMs - conns[s].acceptedAtMs > frontendInspectTimeoutMs[Int(conns[s].frontend)] {
                    count(.inspectTimeouts)
                    if conns[s].stagesLeft.contains(.proxyHeader) {
                        if pipes[s * 2].head != BufferPool.none { count(.proxyRejectedTruncated) }
                        warnRateLimited(Int32(s), "no complete PROXY header within the inspect delay")
                    } else {
                        warnRateLimited(Int32(s), "no complete MQTT CONNECT within the inspect delay")
                    }
                    closeConnection(Int32(s), reset: false, why: .inspectTimeout)
                }
            } else if clientMs > 0 && nowMs - conns[s].lastClientMs > clientMs {
                count(.clientTimeouts)
                if conns[s].keepAliveS > 0 { count(.keepAliveTimeouts) }
                closeConnection(Int32(s), reset: false, why: .clientTimeout)
            } else if serverMs > 0 && phase == .established && nowMs - conns[s].lastServerMs > serverMs {
                count(.serverTimeouts)
                closeConnection(Int32(s), reset: false, why: .serverTimeout)
            }
            s += 1
        }
    }

    /// A CONNECT was read on a frontend with `option mqtt-keepalive-timeout`: its keepalive
    /// sets the client's inactivity limit from now on (0, no keepalive: `timeout client`).
    @inline(__always)
    func adoptKeepAlive(_ slot: Int32, _ keepAliveS: UInt16) {
        let s = Int(slot)
        if frontendKeepAliveBounds[Int(conns[s].frontend)] != nil { conns[s].keepAliveS = keepAliveS }
    }

    /// How long connection `s` may stay silent: MQTT 3.1.1 and 5.0 §3.1.2.10, the server
    /// disconnects a client that sends nothing for one and a half times its Keep Alive (within
    /// the option's min/max); `timeout client` where no keepalive was adopted.
    @inline(__always)
    func clientTimeoutMs(_ s: Int) -> Int {
        let f = Int(conns[s].frontend)
        let keepAliveS = Int(conns[s].keepAliveS)
        guard keepAliveS > 0, let bounds = frontendKeepAliveBounds[f] else { return frontendClientTimeoutMs[f] }
        return min(max(keepAliveS * 1500, bounds.minMs), bounds.maxMs)
    }
}
