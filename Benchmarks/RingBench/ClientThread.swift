// ClientThread: one thread's io_uring client. Connections live in the ring's fixed-file table
// (registered, then their fds closed), so a thread holds up to RLIMIT_NOFILE of them outside
// the process fd table; set-up binds each to one of the source addresses. The MQTT sessions of
// idle and reconnect are opened through the ring (Sessions.swift), the others with plain calls.
import CUring
import Glibc
import Histogram

final class ClientThread {
    let job: Job
    let s: Settings
    let ring: UnsafeMutablePointer<io_uring>
    var result = ThreadResult()
    var met = false   // took part in a rendezvous (else it leaves with its connections failed)
    let cqes = UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>.allocate(capacity: 512)

    init(_ job: Job) {
        self.job = job
        s = job.settings
        ring = .allocate(capacity: 1)
        ring.initialize(to: io_uring())
    }

    func run() -> ThreadResult {
        defer { job.rendezvous.leave(failed: met ? 0 : result.failed) }
        var params = io_uring_params()
        params.flags = CU_SETUP_SINGLE_ISSUER | CU_SETUP_DEFER_TASKRUN | CU_SETUP_CQSIZE
        params.cq_entries = 32768
        if io_uring_queue_init_params(4096, ring, &params) != 0 {
            var plain = io_uring_params()
            guard io_uring_queue_init_params(4096, ring, &plain) == 0 else {
                fputs("ringbench: io_uring setup failed\n", stderr)
                result.failed = job.count
                return result
            }
        }
        defer { io_uring_queue_exit(ring) }
        guard job.count > 0 else { return result }
        guard job.count <= s.fileLimit - 64 else {
            fputs("ringbench: \(job.count) connections on one thread exceed RLIMIT_NOFILE=\(s.fileLimit); use more --threads\n", stderr)
            result.failed = job.count
            return result
        }
        guard io_uring_register_files_sparse(ring, UInt32(job.count)) == 0 else {
            fputs("ringbench: cannot register \(job.count) fixed files\n", stderr)
            result.failed = job.count
            return result
        }
        switch s.workload {
        case "pingpong": pingpong()
        case "conn": connectionSetups()
        case "bulk": bulk()
        case "reconnect": reconnect()
        default: idle()
        }
        return result
    }

    @inline(__always) func sqe() -> UnsafeMutablePointer<io_uring_sqe> {
        while true {
            if let e = io_uring_get_sqe(ring) { return e }
            io_uring_submit(ring)
        }
    }

    /// Queues a send of `count` bytes on fixed slot `slot`, with `flags` besides FIXED_FILE.
    @inline(__always) func queueSend(_ slot: Int, _ bytes: UnsafeRawPointer, _ count: Int, _ data: UInt64, flags: UInt8 = 0) {
        let e = sqe()
        io_uring_prep_send(e, Int32(slot), bytes, count, 0)
        cu_sqe_add_flags(e, CU_IOSQE_FIXED_FILE | flags)
        io_uring_sqe_set_data64(e, data)
    }

    /// Queues a recv of up to `count` bytes on fixed slot `slot`, with `flags` besides FIXED_FILE.
    @inline(__always) func queueRecv(_ slot: Int, _ buffer: UnsafeMutableRawPointer, _ count: Int, _ data: UInt64,
                                     msgFlags: Int32 = 0, flags: UInt8 = 0) {
        let e = sqe()
        io_uring_prep_recv(e, Int32(slot), buffer, count, msgFlags)
        cu_sqe_add_flags(e, CU_IOSQE_FIXED_FILE | flags)
        io_uring_sqe_set_data64(e, data)
    }

    /// Submits what is queued, waits at most `timeoutNs` for a completion, and hands each one
    /// there is to `body` (user data, result, the time after the wait). Returns that time.
    @inline(__always) func reap(waitingAtMost timeoutNs: UInt64, _ body: (UInt64, Int32, UInt64) -> Void) -> UInt64 {
        var ts = __kernel_timespec(tv_sec: Int64(timeoutNs / 1_000_000_000), tv_nsec: Int64(timeoutNs % 1_000_000_000))
        var cqe: UnsafeMutablePointer<io_uring_cqe>? = nil
        _ = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, nil)
        let now = nowNs()
        while true {
            let got = Int(io_uring_peek_batch_cqe(ring, cqes, 512))
            for c in 0..<got { body(cqes[c]!.pointee.user_data, cqes[c]!.pointee.res, now) }
            io_uring_cq_advance(ring, UInt32(got))
            if got < 512 { return now }
        }
    }

    /// A TCP socket (blocking, TCP_NODELAY) for connection `i`, bound to its source address with
    /// the port left to connect(). -1 on failure.
    func boundSocket(_ i: Int) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, 4)
        setsockopt(fd, Int32(IPPROTO_IP), 24 /* IP_BIND_ADDRESS_NO_PORT */, &one, 4)
        var source = sockaddr_in()
        source.sin_family = sa_family_t(AF_INET)
        source.sin_addr.s_addr = (s.sources.first + UInt32((job.index * 7919 + i) % s.sources.count)).bigEndian
        let bound = withUnsafePointer(to: &source) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, 16) } }
        guard bound == 0 else { close(fd); return -1 }
        return fd
    }

    /// Opens connection `i` with plain syscalls (set-up is not measured), bound to a source
    /// address, optionally doing the MQTT CONNECT/CONNACK exchange, and moves it into fixed
    /// slot `i`.
    func open(_ i: Int) -> Bool {
        let fd = boundSocket(i)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var target = s.target.sockaddr()
        let connected = withUnsafePointer(to: &target) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, 16) } }
        guard connected == 0 else { return false }
        if s.mqtt {
            var tv = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            let packet = connectPacket("rb-\(job.index)-\(i)")
            guard packet.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == packet.count else { return false }
            var ack = [UInt8](repeating: 0, count: 4)
            guard ack.withUnsafeMutableBytes({ recv(fd, $0.baseAddress, 4, Int32(MSG_WAITALL)) }) == 4, ack[0] == 0x20 else { return false }
        }
        var descriptor = fd
        return io_uring_register_files_update(ring, UInt32(i), &descriptor, 1) == 1
    }

    func openAll() -> [Bool] {
        (0..<job.count).map { i in
            let ok = open(i)
            if ok { result.connections += 1 } else { result.failed += 1 }
            return ok
        }
    }

    // MARK: idle

    /// Opens the connections through the ring, meets the other threads (the last prints the
    /// "ready" line), then holds them: a recv armed on each (a close or error fails it) and,
    /// with --keepalive K, a PINGREQ on each every K seconds, connection i of n at offset
    /// K * i / n of each interval. A PINGREQ whose PINGRESP is not back by its next turn is
    /// not repeated. After --seconds, the PINGRESPs still due are waited for (at most 5 s).
    func idle() {
        let n = job.count
        let sessions = Sessions(self, prefix: "rb")
        let interval = s.rate > 0 ? UInt64(Double(s.threads) * 1e9 / s.rate) : 0
        let (opened, failed) = sessions.openAll(cap: s.opening, intervalNs: interval, since: 0,
                                                giveUpAt: nowNs() + UInt64(n) * interval + UInt64(s.openSeconds * 1e9))
        result.connections = opened
        result.failed = failed
        met = true
        _ = job.rendezvous.meet(opened: opened, failed: failed)

        let ping = UnsafeMutablePointer<UInt8>.allocate(capacity: 2)
        ping[0] = 0xC0; ping[1] = 0
        let sentAt = UnsafeMutablePointer<UInt64>.allocate(capacity: n)   // 0: no PINGREQ outstanding
        sentAt.initialize(repeating: 0, count: n)
        let pending = UnsafeMutablePointer<Int>.allocate(capacity: n)     // bytes of a PINGRESP begun
        pending.initialize(repeating: 0, count: n)
        func armRecv(_ i: Int) { queueRecv(i, sessions.buffer(i), Sessions.recvBytes, sessions.tag(i, Sessions.opPingRecv)) }
        var outstanding = 0   // PINGREQs sent and not answered
        func lose(_ i: Int, _ cause: String) {
            guard sessions.state[i] == Sessions.open else { return }
            sessions.state[i] = Sessions.dead
            result.failed += 1
            sessions.causes[cause, default: 0] += 1
            if sentAt[i] != 0 { sentAt[i] = 0; outstanding -= 1 }
        }
        for i in 0..<n where sessions.state[i] == Sessions.open { armRecv(i) }

        let start = nowNs()
        let deadline = start + UInt64(s.seconds * 1e9)
        let period = UInt64(s.keepalive * 1e9)
        var turn: UInt64 = 0, cursor = 0
        @inline(__always) func due() -> UInt64 { start + turn * period + period * UInt64(cursor) / UInt64(n) }
        var now = start
        while now < deadline || outstanding > 0 && now < deadline + UInt64(s.answerGrace * 1e9) {
            if period > 0 && now < deadline {
                while due() <= now {
                    if sessions.state[cursor] == Sessions.open && sentAt[cursor] == 0 {
                        queueSend(cursor, ping, 2, sessions.tag(cursor, Sessions.opPing), flags: CU_IOSQE_CQE_SKIP_SUCCESS)
                        sentAt[cursor] = now
                        result.pings += 1
                        outstanding += 1
                    }
                    cursor += 1
                    if cursor == n { cursor = 0; turn += 1 }
                }
            }
            var wait: UInt64 = 100_000_000
            if now < deadline {
                wait = min(wait, deadline - now)
                if period > 0 { wait = min(wait, max(due() - now, 1_000_000)) }
            }
            now = reap(waitingAtMost: wait) { data, res, t in
                let i = Int(data >> 12)
                switch data & 15 {
                case Sessions.opPing:
                    lose(i, "held: PINGREQ send failed")   // only a failed send posts
                case Sessions.opPingRecv:
                    guard sessions.state[i] == Sessions.open else { return }
                    // Only PINGRESPs (0xD0 0x00) are expected; anything else fails the connection.
                    guard res > 0 else { lose(i, res == 0 ? "held: closed by the proxy" : "held: \(String(cString: strerror(-res)))"); return }
                    guard pending[i] != 0 || sessions.buffer(i)[0] == 0xD0 else { lose(i, "held: not a PINGRESP"); return }
                    pending[i] += Int(res)
                    while pending[i] >= 2 {
                        pending[i] -= 2
                        if sentAt[i] != 0 {
                            _ = result.latency.record(t - sentAt[i])
                            sentAt[i] = 0
                            outstanding -= 1
                            result.operations += 1
                        }
                    }
                    armRecv(i)
                default:
                    _ = sessions.complete(data, res)   // a failed open's close
                }
            }
        }
        result.elapsed = Double(min(now, deadline) - start) / 1e9
        result.unanswered = outstanding
        result.causes = sessions.causes
        if outstanding > 0 { probeUnanswered(sessions, sentAt, n: n) }
    }

    /// For each PINGREQ still unanswered: is its PINGRESP already in this client's socket (a
    /// peek that does not wait), so that the armed recv has missed it, or not there at all
    /// (held by a hop before the client)? Counted as causes "unanswered: ...".
    private func probeUnanswered(_ sessions: Sessions, _ sentAt: UnsafeMutablePointer<UInt64>, n: Int) {
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: 16, alignment: 8)
        defer { scratch.deallocate() }
        var probes = 0
        for i in 0..<n where sessions.state[i] == Sessions.open && sentAt[i] != 0 {
            queueRecv(i, scratch, 16, sessions.tag(i, Sessions.opProbe), msgFlags: Int32(MSG_PEEK | MSG_DONTWAIT))
            probes += 1
        }
        let giveUp = nowNs() + 2_000_000_000
        var now = nowNs()
        while probes > 0 && now < giveUp {
            now = reap(waitingAtMost: 100_000_000) { data, res, _ in
                let i = Int(data >> 12)
                switch data & 15 {
                case Sessions.opProbe:
                    probes -= 1
                    let cause = res > 0 ? "unanswered: the answer is in the client's socket, its armed recv did not complete"
                        : res == -EAGAIN ? "unanswered: nothing in the client's socket"
                        : "unanswered: probe \(String(cString: strerror(-res)))"
                    sessions.causes[cause, default: 0] += 1
                case Sessions.opPingRecv where res > 0 && sentAt[i] != 0:
                    sessions.causes["unanswered: the armed recv completed during the probe", default: 0] += 1
                default:
                    break
                }
            }
        }
        result.causes = sessions.causes
    }

    // MARK: reconnect

    /// The reconnect storm: opens the sessions, then, round after round on all threads at once,
    /// drops them all (close_direct) and reopens them all with the same client ids, every
    /// reopening in flight together; each one's time from the round's start is recorded. A
    /// round ends when every session is back or given up (5 s); rounds start until --seconds.
    func reconnect() {
        let n = job.count
        let sessions = Sessions(self, prefix: "storm")
        let first = sessions.openAll(cap: s.opening, intervalNs: 0, since: 0, giveUpAt: nowNs() + 60_000_000_000)
        result.connections = n
        result.failed = first.failed
        met = true
        var start: UInt64 = 0
        while job.rendezvous.meet() {
            let roundStart = nowNs()
            if start == 0 { start = roundStart }
            sessions.closeAll()
            let round = sessions.openAll(cap: n, intervalNs: 0, since: roundStart,
                                         giveUpAt: roundStart + Sessions.giveUpNs + 1_000_000_000, record: true)
            result.operations += round.opened
            result.failed += round.failed
            result.rounds.append(nowNs() - roundStart)
        }
        result.elapsed = start == 0 ? 0 : Double(nowNs() - start) / 1e9
        result.causes = sessions.causes
    }

    // MARK: bulk

    /// Raw bytes both ways through an echo server: per connection one send of --chunk bytes
    /// always in flight (from one shared buffer; a short send is followed by a whole chunk all
    /// the same) and one recv of up to --chunk bytes always armed. Counts bytes received back
    /// until --seconds; then stops sending and drains (at most 2 s) until every byte sent has
    /// come back, so that no connection closes with echoed bytes unread (a reset would hit the
    /// echo server mid-write).
    func bulk() {
        let n = job.count
        let chunk = s.chunk
        let outgoing = UnsafeMutablePointer<UInt8>.allocate(capacity: chunk)
        for k in 0..<chunk { outgoing[k] = UInt8(truncatingIfNeeded: k &* 31 &+ 7) }
        let buffers = UnsafeMutablePointer<UInt8>.allocate(capacity: n * chunk)
        var alive = openAll()
        var sent = [Int](repeating: 0, count: n)
        var received = [Int](repeating: 0, count: n)
        var sending = [Bool](repeating: false, count: n)
        var draining = false
        var busy = 0   // while draining: connections alive with bytes still to come back

        func submitSend(_ i: Int) {
            queueSend(i, outgoing, chunk, UInt64(i) << 2 | 1)
            sending[i] = true
        }
        func submitRecv(_ i: Int) { queueRecv(i, buffers + i * chunk, chunk, UInt64(i) << 2 | 2) }
        func settled(_ i: Int) -> Bool { !sending[i] && received[i] >= sent[i] }
        for i in 0..<n where alive[i] {
            submitSend(i)
            submitRecv(i)
        }
        let start = nowNs()
        let deadline = start + UInt64(s.seconds * 1e9)
        var now = start
        while !draining || (busy > 0 && now < deadline + 2_000_000_000) {
            now = reap(waitingAtMost: draining ? 100_000_000 : min(deadline - now, 100_000_000)) { data, res, t in
                let i = Int(data >> 2)
                guard alive[i] else { return }
                let wasSettled = draining && settled(i)
                if res < 0 || res == 0 && data & 3 == 2 {
                    alive[i] = false
                    result.failed += 1
                    if draining && !wasSettled { busy -= 1 }
                    return
                }
                if data & 3 == 1 {
                    sending[i] = false
                    sent[i] += Int(res)
                    if !draining { submitSend(i) }
                } else {
                    received[i] += Int(res)
                    if t < deadline {
                        result.bytes += Int(res)
                        result.operations += 1
                    }
                    submitRecv(i)
                }
                if draining && !wasSettled && settled(i) { busy -= 1 }
            }
            if !draining && now >= deadline {
                draining = true
                result.elapsed = Double(now - start) / 1e9
                for i in 0..<n where alive[i] && !settled(i) { busy += 1 }
            }
        }
    }

    // MARK: pingpong

    func pingpong() {
        let n = job.count
        let w = s.window
        let size = s.size
        // W copies of a QoS 0 PUBLISH of `size` bytes on topic "t/x".
        let messages = UnsafeMutablePointer<UInt8>.allocate(capacity: size * w)
        for m in 0..<w {
            let p = messages + m * size
            p.initialize(repeating: 0x70, count: size)
            p[0] = 0x30; p[1] = UInt8(size - 2); p[2] = 0; p[3] = 3; p[4] = 0x74; p[5] = 0x2F; p[6] = 0x78
        }
        let opened = openAll()
        let recvBytes = 4096
        let buffers = UnsafeMutablePointer<UInt8>.allocate(capacity: n * recvBytes)
        let sentAt = UnsafeMutablePointer<UInt64>.allocate(capacity: n * w)
        var head = [Int](repeating: 0, count: n)
        var partial = [Int](repeating: 0, count: n)
        var sending = [Bool](repeating: false, count: n)
        var owed = [Int](repeating: 0, count: n)
        var alive = opened

        func submitSend(_ i: Int, _ count: Int) {
            queueSend(i, messages, count * size, UInt64(i) << 2 | 1)
            sending[i] = true
        }
        func submitRecv(_ i: Int) { queueRecv(i, buffers + i * recvBytes, recvBytes, UInt64(i) << 2 | 2) }

        let start = nowNs()
        for i in 0..<n where alive[i] {
            for k in 0..<w { sentAt[i * w + k] = start }
            submitSend(i, w)
            submitRecv(i)
        }
        let deadline = start + UInt64(s.seconds * 1e9)
        let cqes = UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>.allocate(capacity: 512)
        while true {
            var ts = __kernel_timespec(tv_sec: 0, tv_nsec: 100_000_000)
            var cqe: UnsafeMutablePointer<io_uring_cqe>? = nil
            _ = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, nil)
            let now = nowNs()
            if now >= deadline { break }
            let got = Int(io_uring_peek_batch_cqe(ring, cqes, 512))
            for c in 0..<got {
                let data = cqes[c]!.pointee.user_data
                let res = Int(cqes[c]!.pointee.res)
                let i = Int(data >> 2)
                guard alive[i] else { continue }
                if data & 3 == 1 {
                    sending[i] = false
                    if res < 0 { alive[i] = false; result.failed += 1; continue }
                    if owed[i] > 0 { submitSend(i, owed[i]); owed[i] = 0 }
                    continue
                }
                if res <= 0 { alive[i] = false; result.failed += 1; continue }
                partial[i] += res
                let done = partial[i] / size
                partial[i] -= done * size
                for _ in 0..<done {
                    let slot = i * w + head[i]
                    _ = result.latency.record(now - sentAt[slot])
                    sentAt[slot] = now
                    head[i] = head[i] + 1 == w ? 0 : head[i] + 1
                }
                result.operations += done
                if done > 0 {
                    if sending[i] { owed[i] += done } else { submitSend(i, done) }
                }
                submitRecv(i)
            }
            io_uring_cq_advance(ring, UInt32(got))
        }
        result.elapsed = Double(nowNs() - start) / 1e9
    }

    // MARK: conn

    /// Sessions as one linked chain each: socket (direct) -> connect -> CONNECT -> CONNACK ->
    /// DISCONNECT -> close. Only the close (and failures) post completions.
    func connectionSetups() {
        let n = job.count
        let slotBytes = 128
        let area = UnsafeMutablePointer<UInt8>.allocate(capacity: n * slotBytes)
        area.initialize(repeating: 0, count: n * slotBytes)
        let targetPointer = UnsafeMutablePointer<sockaddr_in>.allocate(capacity: 1)
        targetPointer.initialize(to: s.target.sockaddr())
        var startedAt = [UInt64](repeating: 0, count: n)
        var failedAttempt = [Bool](repeating: false, count: n)
        var counter = job.index * 1_000_003
        let skip = CU_IOSQE_IO_LINK | CU_IOSQE_CQE_SKIP_SUCCESS

        func start(_ j: Int, now: UInt64) {
            let base = area + j * slotBytes
            counter += 1
            let packet = connectPacket("bench-\(counter % max(1, s.ids))")
            base.update(from: packet, count: packet.count)
            base[96] = 0; base[97] = 0; base[98] = 0; base[99] = 0      // CONNACK lands here
            base[100] = 0xE0; base[101] = 0                               // DISCONNECT
            startedAt[j] = now
            failedAttempt[j] = false
            var e = sqe()
            io_uring_prep_socket_direct(e, AF_INET, Int32(SOCK_STREAM.rawValue), 0, UInt32(j), 0)
            cu_sqe_add_flags(e, skip)
            io_uring_sqe_set_data64(e, UInt64(j) << 3 | 1)
            e = sqe()
            targetPointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { io_uring_prep_connect(e, Int32(j), $0, 16) }
            cu_sqe_add_flags(e, CU_IOSQE_FIXED_FILE | skip)
            io_uring_sqe_set_data64(e, UInt64(j) << 3 | 2)
            e = sqe()
            io_uring_prep_send(e, Int32(j), base, packet.count, 0)
            cu_sqe_add_flags(e, CU_IOSQE_FIXED_FILE | skip)
            io_uring_sqe_set_data64(e, UInt64(j) << 3 | 3)
            e = sqe()
            io_uring_prep_recv(e, Int32(j), base + 96, 4, Int32(MSG_WAITALL))
            cu_sqe_add_flags(e, CU_IOSQE_FIXED_FILE | skip)
            io_uring_sqe_set_data64(e, UInt64(j) << 3 | 4)
            e = sqe()
            io_uring_prep_send(e, Int32(j), base + 100, 2, 0)
            cu_sqe_add_flags(e, CU_IOSQE_FIXED_FILE | skip)
            io_uring_sqe_set_data64(e, UInt64(j) << 3 | 5)
            e = sqe()
            io_uring_prep_close_direct(e, UInt32(j))
            io_uring_sqe_set_data64(e, UInt64(j) << 3 | 6)
        }

        let begin = nowNs()
        for j in 0..<n { start(j, now: begin) }
        let deadline = begin + UInt64(s.seconds * 1e9)
        let cqes = UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>.allocate(capacity: 512)
        var stopping = false
        var open = n
        while open > 0 {
            var ts = __kernel_timespec(tv_sec: 0, tv_nsec: 100_000_000)
            var cqe: UnsafeMutablePointer<io_uring_cqe>? = nil
            _ = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, nil)
            let now = nowNs()
            if now >= deadline { stopping = true }
            if now >= deadline + 5_000_000_000 { break }   // sessions that never end
            let got = Int(io_uring_peek_batch_cqe(ring, cqes, 512))
            for c in 0..<got {
                let data = cqes[c]!.pointee.user_data
                let res = cqes[c]!.pointee.res
                if data == UInt64.max { continue }   // a standalone close after a failed chain
                let j = Int(data >> 3)
                let op = data & 7
                if op != 6 {
                    // A step failed. Its completion is the only one the session posts: the
                    // kernel drops the cancelled followers' completions (close included)
                    // because the failed step carried CQE_SKIP_SUCCESS. The next session's
                    // socket_direct into slot j replaces the socket.
                    failedAttempt[j] = true
                    result.failed += 1
                    if stopping { open -= 1 } else { start(j, now: now) }
                    continue
                }
                let ack = area + j * slotBytes + 96
                if res < 0 && res != -ECANCELED || failedAttempt[j] || ack[0] != 0x20 || ack[3] != 0 {
                    result.failed += 1
                    if res == -ECANCELED {
                        // The close was cancelled with the chain: close the slot on its own.
                        let e = sqe()
                        io_uring_prep_close_direct(e, UInt32(j))
                        io_uring_sqe_set_data64(e, UInt64.max)
                    }
                } else {
                    result.operations += 1
                    _ = result.latency.record(now - startedAt[j])
                }
                if stopping { open -= 1 } else { start(j, now: now) }
            }
            io_uring_cq_advance(ring, UInt32(got))
        }
        result.connections = n
        result.elapsed = Double(nowNs() - begin) / 1e9
    }
}
