// Worker+AddressLimit: HAProxy's `tcp-request connection track-sc0 src` and the `reject` rules
// on the address's counters, run once when a connection is accepted (Worker+Accept) and undone
// once when its slot is released (Worker+Close). Each touches the shared AddressTable under one
// shard lock; nothing here runs per packet.
import Glibc

extension Worker {
    /// Tracks the new connection's address in its frontend's table, then runs the frontend's
    /// reject rules on the counters (which count this connection, as sc0_* fetches do after
    /// track-sc0 in HAProxy). False when a rule rejects it; it stays tracked until released.
    func admitByAddress(_ slot: Int32) -> Bool {
        let s = Int(slot)
        let f = Int(conns[s].frontend)
        let limit = frontendAddressLimits[f]!
        let table = shared.addressTables[f]!
        var counters: AddressCounters?
        if let key = AddressKey(sockaddr: UnsafeRawPointer(conns + s) + Worker.peerOffset, family: limit.table.family) {
            counters = table.track(key, nowMs: nowMs)
        }
        if counters == nil { count(.untrackedAddresses) } else { conns[s].tracked = true }
        guard let r = limit.rejectingRule(counters) else { return true }
        warnRateLimited(slot, "denied by \(limit.rejectRules[r].text.isEmpty ? "reject rule \(r + 1)" : limit.rejectRules[r].text): "
                        + (counters.map { "conn_cur \($0.connCur), conn_cnt \($0.connCnt)" + ($0.connRate.map { ", conn_rate \($0)" } ?? "") }
                           ?? "address not tracked"))
        return false
    }

    /// The tracked connection in `slot` leaves its address's count (once: the flag goes).
    func releaseAddress(_ slot: Int32) {
        let s = Int(slot)
        conns[s].tracked = false
        let table = shared.addressTables[Int(conns[s].frontend)]!
        guard let key = AddressKey(sockaddr: UnsafeRawPointer(conns + s) + Worker.peerOffset, family: table.config.family) else {
            assertionFailure("a tracked connection's address has no key")
            return
        }
        table.release(key, nowMs: nowMs)
    }
}
