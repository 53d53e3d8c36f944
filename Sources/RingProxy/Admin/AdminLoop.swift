// AdminLoop: one turn of the admin thread: poll the listeners and the connections, accept,
// read, answer, write, expire; sample the session rates about once a second. Owned by the
// admin thread alone (AdminServer hands it the listeners each turn), so it needs no lock.
import Glibc

struct AdminLoop {
    enum Phase: Equatable {
        case reading
        /// Sending `output`; then close (after a short linger) or, for an interactive socket
        /// session, read the next line.
        case writing(thenClose: Bool)
        /// Our side is shut; reading and discarding until the peer closes, so that unread
        /// request bytes do not turn the answer into a reset.
        case lingering
    }

    enum Kind {
        case page(StatsPageConfig, peer: [UInt8])
        case socket(StatsSocketConfig, StatsCLISession)
    }

    struct Client {
        var fd: Int32
        var kind: Kind
        var input: [UInt8] = []
        var output: [UInt8] = []
        var sent = 0
        var phase = Phase.reading
        var deadlineMs: Int
        var acceptedMs: Int
        var isPage: Bool { if case .page = kind { return true } else { return false } }
    }

    static let lingerMs = 1_000
    static let sampleIntervalMs = 1_000
    static let readChunkBytes = 16 * 1024

    let control: AdminControl
    let log: Log
    var clients: [Client] = []
    var sampler = SessionRateSampler()
    var nextSampleMs = 0

    init(control: AdminControl, log: Log) {
        self.control = control
        self.log = log
    }

    mutating func turn(listeners: [AdminServer.Listener], wakeFD: Int32) {
        var now = AdminServer.nowMs()
        if now >= nextSampleMs {
            sampler.record(control.snapshot(), nowMs: now)
            nextSampleMs = now + Self.sampleIntervalMs
        }
        expire(now: now)
        trimPages(now: now)
        var fds = [pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        fds += listeners.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
        fds += clients.map { client in
            pollfd(fd: client.fd, events: Int16(client.phase == .reading || client.phase == .lingering ? POLLIN : POLLOUT), revents: 0)
        }
        var wakeAt = clients.reduce(nextSampleMs) { min($0, $1.deadlineMs) }
        if pageCount > StatsPageConfig.connectionsMax { wakeAt = min(wakeAt, now + StatsPageConfig.youngConnectionGraceMs) }
        let rc = poll(&fds, nfds_t(fds.count), Int32(max(0, min(wakeAt - now, 60_000))))
        guard rc > 0 else { return }
        if fds[0].revents != 0 {
            var drain = [UInt8](repeating: 0, count: 64)
            while read(wakeFD, &drain, drain.count) > 0 {}
        }
        now = AdminServer.nowMs()
        // Clients first (indices match fds), then new ones are appended.
        let clientBase = 1 + listeners.count
        for index in clients.indices where fds[clientBase + index].revents != 0 {
            var client = clients[index]
            serve(&client, revents: fds[clientBase + index].revents, now: now)
            clients[index] = client
        }
        clients.removeAll { $0.fd < 0 }
        for (index, listener) in listeners.enumerated() where fds[1 + index].revents & Int16(POLLIN) != 0 {
            accept(listener, now: now)
        }
    }

    // MARK: accepting

    mutating func accept(_ listener: AdminServer.Listener, now: Int) {
        var room = PageRoom(pages: pageCount)
        for _ in 0..<64 {
            var storage = sockaddr_in6()
            var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            let fd = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.accept(listener.fd, $0, &length)
                }
            }
            guard fd >= 0 else { return }
            AdminServer.makeNonBlocking(fd)
            switch listener.kind {
            case .page(let page):
                if !makeRoomForPage(now: now, &room) {
                    close(fd)
                    continue
                }
                room.pages += 1
                let peer = withUnsafeBytes(of: storage) { raw -> [UInt8] in
                    Int32(storage.sin6_family) == AF_INET ? Array(raw[4..<8]) : Array(raw[8..<24])
                }
                clients.append(Client(fd: fd, kind: .page(page, peer: peer), deadlineMs: now + page.requestTimeoutMs, acceptedMs: now))
            case .socket(let config):
                if clients.filter({ !$0.isPage }).count >= StatsSocketConfig.connectionsMax {
                    close(fd)
                    continue
                }
                clients.append(Client(fd: fd, kind: .socket(config, StatsCLISession(level: config.level)),
                                      deadlineMs: now + config.timeoutMs, acceptedMs: now))
            }
        }
    }

    var pageCount: Int { clients.reduce(0) { $0 + ($1.isPage ? 1 : 0) } }

    /// What one accept burst knows of the page's room: `now` is the same for the whole burst, so
    /// once no connection is past its grace none will be until the next turn (a burst of
    /// hundreds scans the table once, not once per connection).
    struct PageRoom {
        var pages: Int
        var nonePastGrace = false
    }

    /// Whether a new page connection may come in. At the bound one makes room for it (see
    /// evictOldestUnanswered) if one is past its grace; if every one is younger (a burst, the
    /// new client's own request maybe among them) the page holds more, up to the burst bound,
    /// where the oldest goes whatever its age. Without the grace, a well-behaved client whose
    /// request came a few milliseconds after its connect was evicted by the 64 connections a
    /// slowloris opened meanwhile (the stats-slowloris attack: 1 fetch in ~180 failed in CI).
    mutating func makeRoomForPage(now: Int, _ room: inout PageRoom) -> Bool {
        guard room.pages >= StatsPageConfig.connectionsMax else { return true }
        if !room.nonePastGrace {
            if evictOldestUnanswered(acceptedBeforeMs: now - StatsPageConfig.youngConnectionGraceMs, now: now, evenWriting: false) {
                room.pages -= 1
                return true
            }
            room.nonePastGrace = true
        }
        if room.pages < StatsPageConfig.connectionsBurstMax { return true }
        guard evictOldestUnanswered(acceptedBeforeMs: Int.max, now: now, evenWriting: true) else { return false }
        room.pages -= 1
        return true
    }

    /// Back to the bound once a burst's grace is over: the excess goes, oldest unanswered first
    /// (answers being written end by themselves, or at their deadline, or at the burst bound).
    mutating func trimPages(now: Int) {
        var excess = pageCount - StatsPageConfig.connectionsMax
        while excess > 0 && evictOldestUnanswered(acceptedBeforeMs: now - StatsPageConfig.youngConnectionGraceMs, now: now, evenWriting: false) {
            excess -= 1
        }
    }

    /// The order in which page connections give way: answered (lingering), reading, writing.
    static func evictionRank(_ phase: Phase) -> Int {
        switch phase {
        case .lingering: return 0
        case .reading: return 1
        case .writing: return 2
        }
    }

    /// A page connection is closed to make room: first the oldest already answered (lingering
    /// for its FIN), then, of those accepted before `acceptedBeforeMs`, the one that has waited longest
    /// without sending its request, then the oldest still being written to. A client that sends
    /// requests and never reads or closes, or one that dribbles, cannot hold the page from
    /// well-behaved ones. A reading one is read first: if its request is whole by now it is
    /// answered instead. One being written to goes only at the burst bound (`evenWriting`): a
    /// slow reader of a big page is most likely a well-behaved client on a busy host (seen under
    /// the stats-slowloris attack with both cores busy). False when there is none.
    mutating func evictOldestUnanswered(acceptedBeforeMs: Int, now: Int, evenWriting: Bool) -> Bool {
        for wanted in evenWriting ? [0, 1, 2] : [0, 1] {   // lingering, reading, writing
            // Clients are in the order they were accepted: the first that fits is the oldest.
            var index = 0
            while index < clients.count {
                let client = clients[index]
                // Answered ones go whatever their age; the others once their grace is over.
                if wanted != 0 && client.acceptedMs >= acceptedBeforeMs { break }
                guard client.isPage, Self.evictionRank(client.phase) == wanted else {
                    index += 1
                    continue
                }
                if wanted == 1 {
                    // A request that came in since the last poll is answered, not evicted.
                    var served = client
                    serve(&served, revents: Int16(POLLIN), now: now)
                    clients[index] = served
                    if served.fd < 0 {
                        clients.remove(at: index)   // it had closed: room made
                        return true
                    }
                    if served.phase != .reading {
                        index += 1
                        continue
                    }
                }
                close(client.fd)
                clients.remove(at: index)
                return true
            }
        }
        return false
    }

    // MARK: serving

    func serve(_ client: inout Client, revents: Int16, now: Int) {
        switch client.phase {
        case .reading, .lingering:
            var chunk = [UInt8](repeating: 0, count: Self.readChunkBytes)
            let n = recv(client.fd, &chunk, chunk.count, 0)
            if n < 0 && (errno == EAGAIN || errno == EINTR) { return }
            if client.phase == .lingering || n < 0 {
                if n <= 0 { finish(&client) }
                return
            }
            if n == 0 {
                endOfInput(&client, now: now)
                return
            }
            client.input += chunk[0..<n]
            handleInput(&client, now: now)
        case .writing(let thenClose):
            guard revents & Int16(POLLOUT) != 0 else {
                finish(&client)
                return
            }
            let n = client.output.withUnsafeBytes { raw in
                send(client.fd, raw.baseAddress! + client.sent, raw.count - client.sent, Int32(MSG_NOSIGNAL))
            }
            if n < 0 {
                if errno != EAGAIN && errno != EINTR { finish(&client) }
                return
            }
            client.sent += n
            guard client.sent == client.output.count else { return }
            client.output = []
            client.sent = 0
            if thenClose {
                shutdown(client.fd, Int32(SHUT_WR))
                client.phase = .lingering
                client.deadlineMs = now + Self.lingerMs
            } else {
                client.phase = .reading
                if case .socket(let config, _) = client.kind { client.deadlineMs = now + config.timeoutMs }
                handleInput(&client, now: now)   // lines that arrived meanwhile
            }
        }
    }

    func handleInput(_ client: inout Client, now: Int) {
        switch client.kind {
        case .page(let page, let peer):
            let verdict = client.input.withUnsafeBytes {
                HTTPRequestParser.parse($0, headBytesMax: StatsPageConfig.requestHeadBytesMax, bodyBytesMax: StatsPageHandler.bodyBytesMax)
            }
            switch verdict {
            case .needMore:
                return
            case .error(let status):
                respond(&client, HTTPResponse.error(status).serialized(), now: now, timeoutMs: page.requestTimeoutMs)
            case .complete(let request, _):
                let response = StatsPageHandler.respond(to: request, page: page, peer: peer, control: control, rates: sampler.rates)
                respond(&client, response.serialized(headOnly: request.method == "HEAD"), now: now, timeoutMs: page.requestTimeoutMs)
            }
        case .socket(let config, var session):
            var out = ""
            while !session.finished, let newline = client.input.firstIndex(of: 0x0A) {
                var line = client.input[..<newline]
                if line.last == 0x0D { line = line.dropLast() }
                client.input.removeSubrange(...newline)
                out += StatsCommands.execute(String(decoding: line, as: UTF8.self), session: &session, control: control, rates: sampler.rates)
            }
            if !session.finished && client.input.count > StatsSocketConfig.lineBytesMax {
                out += "Line too long.\n"
                session.finished = true
            }
            client.kind = .socket(config, session)
            if !out.isEmpty || session.finished {
                client.output = Array(out.utf8)
                client.sent = 0
                client.phase = .writing(thenClose: session.finished)
                client.deadlineMs = now + config.timeoutMs
            }
        }
    }

    /// The peer closed its side: a socket command without its newline still runs.
    func endOfInput(_ client: inout Client, now: Int) {
        guard case .socket(let config, var session) = client.kind, !client.input.isEmpty, !session.finished else {
            finish(&client)
            return
        }
        let out = StatsCommands.execute(String(decoding: client.input, as: UTF8.self), session: &session, control: control, rates: sampler.rates)
        client.input = []
        session.finished = true
        client.kind = .socket(config, session)
        client.output = Array(out.utf8)
        client.phase = .writing(thenClose: true)
        client.deadlineMs = now + config.timeoutMs
    }

    func respond(_ client: inout Client, _ bytes: [UInt8], now: Int, timeoutMs: Int) {
        client.input = []
        client.output = bytes
        client.sent = 0
        client.phase = .writing(thenClose: true)
        client.deadlineMs = now + timeoutMs
    }

    func finish(_ client: inout Client) {
        close(client.fd)
        client.fd = -1
    }

    /// A page client that has not sent its request in time gets 408; anything else past its
    /// deadline (a reader too slow for the answer, a linger, an idle socket session) is closed.
    mutating func expire(now: Int) {
        for index in clients.indices where clients[index].deadlineMs <= now {
            var client = clients[index]
            if client.phase == .reading, case .page(let page, _) = client.kind {
                respond(&client, HTTPResponse.error(408).serialized(), now: now, timeoutMs: page.requestTimeoutMs)
            } else {
                finish(&client)
            }
            clients[index] = client
        }
        clients.removeAll { $0.fd < 0 }
    }

    mutating func closeAll() {
        for client in clients { close(client.fd) }
        clients = []
    }
}
