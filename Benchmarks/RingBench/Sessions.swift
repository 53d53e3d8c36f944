// Sessions: MQTT connections opened through the ring, many at once. Each one starts as a plain
// socket bound to a source address (liburing 2.3 has no bind op), which moves into fixed slot i
// at once (its fd is closed); then connect -> CONNECT -> CONNACK run as one linked chain, of
// which only failures and the CONNACK post completions. The first completion is the chain's
// last: when a CQE_SKIP_SUCCESS request fails, the kernel posts its completion and none for the
// requests linked after it. Per-slot state is preallocated; a generation in each request's
// user data keeps a late completion of an earlier attempt on the slot from being taken for the
// current one. Like the workloads' buffers, the state is never
// freed: the kernel may write into it until the ring is torn down.
import CUring
import Glibc

/// What a completion meant for the session it belongs to.
enum SessionEvent {
    case none
    case opened(Int)
    case failed(Int)
}

final class Sessions {
    static let slotBytes = 64          // CONNECT at 0, CONNACK at 48, a receive buffer at 52
    static let ackOffset = 48
    static let recvOffset = 52
    static let recvBytes = 12
    /// A session not open this long after its start is given up (its requests cancelled).
    static let giveUpNs: UInt64 = 5_000_000_000

    // Slot states.
    static let closed: UInt8 = 0, opening: UInt8 = 1, open: UInt8 = 2, closing: UInt8 = 3, dead: UInt8 = 4

    // Operations in the low 4 bits of the user data: i << 12 | generation << 4 | op.
    static let opConnect: UInt64 = 1, opSend: UInt64 = 2, opAck: UInt64 = 3, opClose: UInt64 = 4,
               opIgnored: UInt64 = 5, opPing: UInt64 = 6, opPingRecv: UInt64 = 7, opProbe: UInt64 = 8

    unowned(unsafe) let thread: ClientThread
    let n: Int
    let area: UnsafeMutablePointer<UInt8>
    let packetLength: UnsafeMutablePointer<Int>
    let startedAt: UnsafeMutablePointer<UInt64>
    let state: UnsafeMutablePointer<UInt8>
    let generation: UnsafeMutablePointer<UInt8>
    let target: UnsafeMutablePointer<sockaddr_in>
    var opening = 0   // chains in flight
    var closing = 0   // close_direct requests in flight
    var oldest = 0    // no slot below it is opening and not yet cancelled (slots start in index order)
    /// Why sessions failed to open ("connect:ECONNREFUSED", "connack:eof", "gave up", ...):
    /// tallied on failures only, reported by the run's last line.
    var causes: [String: Int] = [:]

    /// Sessions for slots 0..<n of `thread`'s ring, with client ids "<prefix>-<thread>-<i>".
    init(_ thread: ClientThread, prefix: String) {
        self.thread = thread
        n = thread.job.count
        area = .allocate(capacity: n * Sessions.slotBytes)
        area.initialize(repeating: 0, count: n * Sessions.slotBytes)
        packetLength = .allocate(capacity: n)
        startedAt = .allocate(capacity: n)
        startedAt.initialize(repeating: 0, count: n)
        state = .allocate(capacity: n)
        state.initialize(repeating: Sessions.closed, count: n)
        generation = .allocate(capacity: n)
        generation.initialize(repeating: 0, count: n)
        target = .allocate(capacity: 1)
        target.initialize(to: thread.s.target.sockaddr())
        for i in 0..<n {
            let packet = connectPacket("\(prefix)-\(thread.job.index)-\(i)")
            precondition(packet.count <= Sessions.ackOffset, "client id too long")
            (area + i * Sessions.slotBytes).update(from: packet, count: packet.count)
            packetLength[i] = packet.count
        }
    }

    @inline(__always) func tag(_ i: Int, _ op: UInt64) -> UInt64 {
        UInt64(i) << 12 | UInt64(generation[i]) << 4 | op
    }

    @inline(__always) func buffer(_ i: Int) -> UnsafeMutablePointer<UInt8> {
        area + i * Sessions.slotBytes + Sessions.recvOffset
    }

    /// Starts session `i` (its slot must be empty): a bound socket into the slot, then the
    /// linked connect -> CONNECT -> CONNACK. `since` is when it counts as started. False when
    /// the socket could not be made (nothing is in flight then).
    func start(_ i: Int, since: UInt64) -> Bool {
        generation[i] &+= 1
        let fd = thread.boundSocket(i)
        guard fd >= 0 else { return false }
        var descriptor = fd
        let registered = io_uring_register_files_update(thread.ring, UInt32(i), &descriptor, 1)
        close(fd)
        guard registered == 1 else { return false }
        let base = area + i * Sessions.slotBytes
        (base + Sessions.ackOffset).initialize(repeating: 0, count: 4)
        startedAt[i] = since
        state[i] = Sessions.opening
        opening += 1
        let skip = CU_IOSQE_IO_LINK | CU_IOSQE_CQE_SKIP_SUCCESS
        let e = thread.sqe()
        target.withMemoryRebound(to: sockaddr.self, capacity: 1) { io_uring_prep_connect(e, Int32(i), $0, 16) }
        cu_sqe_add_flags(e, CU_IOSQE_FIXED_FILE | skip)
        io_uring_sqe_set_data64(e, tag(i, Sessions.opConnect))
        thread.queueSend(i, base, packetLength[i], tag(i, Sessions.opSend), flags: skip)
        thread.queueRecv(i, base + Sessions.ackOffset, 4, tag(i, Sessions.opAck), msgFlags: Int32(MSG_WAITALL))
        return true
    }

    /// Closes slot `i` (close_direct); its completion is counted in `closing`.
    func closeSlot(_ i: Int) {
        let e = thread.sqe()
        io_uring_prep_close_direct(e, UInt32(i))
        io_uring_sqe_set_data64(e, tag(i, Sessions.opClose))
        state[i] = Sessions.closing
        closing += 1
    }

    /// Cancels whatever slot `i` has in flight; the chain then ends with that request's failure.
    func cancel(_ i: Int) {
        let e = thread.sqe()
        io_uring_prep_cancel_fd(e, Int32(i), CU_CANCEL_ALL_FIXED_FD)
        cu_sqe_add_flags(e, CU_IOSQE_CQE_SKIP_SUCCESS)
        io_uring_sqe_set_data64(e, tag(i, Sessions.opIgnored))
    }

    /// Handles a completion of the opening machinery (ops 1-5); others are the caller's.
    func complete(_ data: UInt64, _ res: Int32) -> SessionEvent {
        let i = Int(data >> 12)
        let op = data & 15
        guard op != Sessions.opIgnored, UInt8(truncatingIfNeeded: data >> 4) == generation[i] else { return .none }
        switch op {
        case Sessions.opConnect, Sessions.opSend, Sessions.opAck:
            // Connect and CONNECT post only when they fail, and then end the chain.
            opening -= 1
            let ack = area + i * Sessions.slotBytes + Sessions.ackOffset
            if op == Sessions.opAck && res == 4 && ack[0] == 0x20 && ack[3] == 0 {
                state[i] = Sessions.open
                return .opened(i)
            }
            generation[i] &+= 1   // anything else the chain may post is stale
            closeSlot(i)
            causes[Sessions.cause(op: op, res: res, ack: ack), default: 0] += 1
            return .failed(i)
        case Sessions.opClose:
            closing -= 1
            state[i] = Sessions.closed
            return .none
        default:
            return .none
        }
    }

    /// A failed open's cause: the step whose completion ended the chain and what it returned
    /// (a cancelled step is one given up after `giveUpNs`).
    static func cause(op: UInt64, res: Int32, ack: UnsafeMutablePointer<UInt8>) -> String {
        let step = op == Sessions.opConnect ? "connect" : op == Sessions.opSend ? "CONNECT send" : "CONNACK"
        if res == -ECANCELED { return "\(step): given up after \(giveUpNs / 1_000_000_000) s" }
        if res < 0 { return "\(step): \(String(cString: strerror(-res)))" }
        if res == 0 { return "\(step): closed by the proxy" }
        if op == Sessions.opAck && res == 4 { return "CONNACK: refused, code \(ack[3])" }
        return "\(step): short (\(res) bytes)"
    }

    /// Cancels the sessions among 0..<started that have been opening for `giveUpNs`.
    func expire(now: UInt64, started: Int) {
        while oldest < started {
            if state[oldest] == Sessions.opening {
                if startedAt[oldest] + Sessions.giveUpNs > now { return }
                cancel(oldest)
            }
            oldest += 1
        }
    }

    /// Opens every slot: at most `cap` in flight, one every `intervalNs` (0: as fast as the cap
    /// allows); `since` (0: each one's own start) is when they count as started, and with
    /// `record` each successful open's time from then goes into the thread's latency histogram.
    /// Returns once each is open or
    /// failed and the failed ones' slots are closed; anything still in flight at `giveUpAt` is
    /// abandoned and fails. Returns the counts of opened and failed sessions.
    func openAll(cap: Int, intervalNs: UInt64, since: UInt64, giveUpAt: UInt64,
                 record: Bool = false) -> (opened: Int, failed: Int) {
        var opened = 0, failed = 0, next = 0
        let begin = nowNs()
        var now = begin
        oldest = 0
        while next < n || opening > 0 || closing > 0 {
            if now >= giveUpAt {
                let abandoned = abandon(started: next) + (n - next)
                failed += abandoned
                causes["opening time over", default: 0] += abandoned
                break
            }
            while next < n && opening < cap && (intervalNs == 0 || now >= begin + UInt64(next) * intervalNs) {
                if !start(next, since: since == 0 ? now : since) { failed += 1; causes["socket/bind", default: 0] += 1 }
                next += 1
                if next & 63 == 0 { io_uring_submit(thread.ring) }   // get connects going
            }
            expire(now: now, started: next)
            var wait: UInt64 = 100_000_000
            if next < n && intervalNs > 0 && opening < cap {
                let due = begin + UInt64(next) * intervalNs
                wait = due > now ? min(wait, due - now) : 0
            }
            now = thread.reap(waitingAtMost: min(wait, giveUpAt > now ? giveUpAt - now : 0)) { data, res, t in
                switch complete(data, res) {
                case .opened(let i):
                    opened += 1
                    if record { _ = thread.result.latency.record(t - startedAt[i]) }
                case .failed: failed += 1
                case .none: break
                }
            }
        }
        return (opened, failed)
    }

    /// Gives up on every session still opening: later completions of its requests are ignored
    /// (new generation), its requests cancelled and its slot closed. Returns how many.
    func abandon(started: Int) -> Int {
        var count = 0
        for i in 0..<started where state[i] == Sessions.opening {
            cancel(i)
            generation[i] &+= 1
            let e = thread.sqe()
            io_uring_prep_close_direct(e, UInt32(i))
            io_uring_sqe_set_data64(e, tag(i, Sessions.opIgnored))
            state[i] = Sessions.closed
            count += 1
        }
        opening = 0
        io_uring_submit(thread.ring)
        return count
    }

    /// Drops every open session at once (close_direct) and waits (at most a second) for the closes.
    func closeAll() {
        for i in 0..<n where state[i] == Sessions.open { closeSlot(i) }
        var turns = 0
        while closing > 0 && turns < 10 {
            _ = thread.reap(waitingAtMost: 100_000_000) { data, res, _ in _ = complete(data, res) }
            turns += 1
        }
    }
}
