// Engine: runs one generation of workers (one per core, each with its own listeners, ring and
// tables) and replaces it on reload: the new generation takes over the listening sockets it
// shares with the old one (no backlog is dropped), the old one stops accepting and lets its
// connections finish. It owns no data path of its own.
import CUring
import Glibc

public enum EngineError: Error, CustomStringConvertible {
    case noFrontends
    case invalid(String)
    case listener(ListenerError)
    case worker(String)

    public var description: String {
        switch self {
        case .noFrontends: return "nothing to listen on: give at least one frontend (--listen)"
        case .invalid(let why): return why
        case .listener(let e): return e.description
        case .worker(let why): return why
        }
    }
}

/// One configuration's workers and listening sockets.
final class Generation: @unchecked Sendable {
    let number: Int
    let config: EngineConfig
    let shared: SharedState
    var workers: [Worker] = []
    var threads: [pthread_t] = []
    /// Per worker, its listening sockets (config order of frontends and binds).
    var listeners: [[ListenerSocket]] = []
    var boundAddresses: [[SocketAddress]] = []
    var slotsPerWorker = 0
    var maxConnections = 0
    var capacity = 0
    var plan = RingPlan(cpus: 1, fileLimit: 1024, acceptSlots: 0, maxConnections: nil)

    /// Per frontend: its TLS context (nil without TLS); SSL objects keep theirs alive.
    var tlsContexts: [TLSContext?] = []
    var serverTLSContexts: [ServerTLSContext?] = []
    init(number: Int, config: EngineConfig, shared: SharedState) {
        self.number = number
        self.config = config
        self.shared = shared
    }

    func join() {
        for thread in threads { pthread_join(thread, nil) }
        threads.removeAll()
    }
}

public final class Engine: @unchecked Sendable {
    public private(set) var config: EngineConfig
    public let log: Log
    var current: Generation!
    var retired: [Generation] = []
    private var lock = pthread_mutex_t()
    private var generationCount = 0
    /// What the workers of forgotten generations counted.
    private var finishedTotals = WorkerStatistics()
    /// What forgotten generations counted per frontend and server, by name (see snapshot()).
    var finishedProxyTotals = ProxyTotals()
    /// When the engine was made (wall clock seconds).
    let startedAtSeconds = Int(time(nil))
    public static let version = "0.13.0"

    public var boundAddresses: [[SocketAddress]] { locked { current.boundAddresses } }
    public var cpus: [Int32] { locked { current.workers.compactMap(\.cpu) } }
    public var slotsPerWorker: Int { locked { current.slotsPerWorker } }
    /// The maxconn in force: the configured one, capped by capacity.
    public var maxConnections: Int { locked { current.maxConnections } }
    public var generation: Int { locked { current.number } }
    var shared: SharedState { locked { current.shared } }

    public init(config: EngineConfig, log: Log = Log()) {
        self.config = config
        self.log = log
        pthread_mutex_init(&lock, nil)
    }

    func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return body()
    }

    /// CPUs this process may run on.
    public static func allowedCPUs() -> [Int32] {
        var cpus = [Int32](repeating: 0, count: 1024)
        let n = Int(cu_allowed_cpus(&cpus, Int32(cpus.count)))
        return Array(cpus.prefix(max(n, 0)))
    }

    /// The open-files limit, raised to its hard value: it caps each ring's fixed-file table.
    public static func raiseFileLimit() -> Int {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        return Int(limit.rlim_cur)
    }

    public func start() throws(EngineError) {
        let generation = try prepare(config, previous: nil)
        try launch(generation)
        locked { current = generation }
        log.info("started \(generation.workers.count) worker(s) on CPU(s) \(Set(generation.workers.compactMap(\.cpu)).sorted().map(String.init).joined(separator: ",")); "
                 + "listening on \(generation.boundAddresses.flatMap { $0 }.map(\.description).joined(separator: ", ")); "
                 + "maxconn \(generation.maxConnections) (capacity \(generation.capacity): \(Self.capacitySummary(generation.plan)))")
        if config.frontends.contains(where: { $0.tls != nil }) {
            log.info("TLS: " + Self.kernelTLSSummary(config.kernelTLS ?? KernelTLSMode.fromEnvironment(), probe: TLSKernelOffload.probe))
        }
    }

    /// What the start-up line says of capacity: rings, slots and what bounds them.
    static func capacitySummary(_ plan: RingPlan) -> String {
        "\(plan.rings) ring(s) x \(plan.slotsPerRing - plan.acceptSlots) connections, "
            + "\(plan.slotsPerRing * 2) fixed files each (at most \(plan.slotsPerRingMax * 2) by RLIMIT_NOFILE); "
            + (plan.rings > plan.cpus ? "\(plan.rings) rings on \(plan.cpus) CPU(s) because maxconn needs more fixed-file tables than one per CPU"
               : "one ring per CPU")
    }

    /// The start-up line on where TLS records are sealed and opened.
    static func kernelTLSSummary(_ mode: KernelTLSMode, probe: (supported: Bool, reason: String)) -> String {
        let userspace = "records sealed and opened in userspace over the rings' buffers"
        switch mode {
        case .off:
            return userspace + "; kernel TLS off (RINGPROXY_KTLS=off)"
        case .force:
            return userspace + " until each client connection is established, then the switch to kernel TLS is attempted "
                + "whatever the probe said (RINGPROXY_KTLS=force, diagnostic only; probe: \(probe.reason)); "
                + "where the kernel refuses it the connection stays in userspace"
        case .auto where probe.supported:
            return "handshakes in userspace; each client connection, once established, hands its keys to kernel TLS "
                + "(TCP_ULP tls, TLS_TX, TLS_RX on the ring) and the relay moves plaintext; "
                + "userspace records where the keys cannot be handed over"
        case .auto:
            return userspace + "; kernel TLS unavailable (\(probe.reason)): the switch to it is built but not attempted"
        }
    }

    /// Applies a new configuration without dropping a connection: new workers take the
    /// listening sockets of binds that stay, open the new ones, and the previous workers stop
    /// accepting, close the binds that went away, and finish their connections.
    public func reload(_ newConfig: EngineConfig) throws(EngineError) {
        let previous = locked { current! }
        let next = try prepare(newConfig, previous: previous)
        try launch(next)
        // Listening sockets the new generation took over must not be closed by the old one.
        let transferred = Set(next.listeners.flatMap { $0.map(\.fd) })
        previous.shared.requestRetire(transferring: transferred)
        // Return once the previous workers accept no more, so that every connection made after
        // reload() returns follows the new configuration (they notice within a loop tick).
        var waitedMs = 0
        while waitedMs < 3_000 && !previous.workers.allSatisfy({ cu_atomic_load($0.acceptsStoppedWord) == 1 }) {
            usleep(2_000)
            waitedMs += 2
        }
        // A listening socket wakes one waiting accept per connection (io_uring waits on it
        // exclusively). A previous worker's accept that was woken and then cancelled took that
        // wake-up with it, leaving the connection in the backlog with no one told: the new
        // workers arm a round of extra accepts, which take whatever is waiting there at once.
        next.shared.kickAccepts()
        locked {
            current = next
            config = newConfig
            // Generations whose workers have all exited hold nothing any more: keep their
            // counts (counters never go back on a reload) and forget them.
            // Decided once per generation: a worker exiting between two looks must not drop
            // its generation without its counts.
            let finished = retired.filter { $0.workers.allSatisfy { cu_atomic_load($0.startStateWord) == 2 } }
            for g in finished {
                for worker in g.workers {
                    finishedTotals = finishedTotals + worker.statistics().finished
                    finishedProxyTotals.add(worker)
                }
            }
            retired.removeAll { g in finished.contains { $0 === g } }
            retired.append(previous)
        }
        // Join the retired workers off the caller's thread: they may take as long as their
        // longest connection.
        var reaper = pthread_t()
        let context = Unmanaged.passRetained(previous).toOpaque()
        pthread_create(&reaper, nil, { raw in
            let generation = Unmanaged<Generation>.fromOpaque(raw!).takeRetainedValue()
            generation.join()
            return nil
        }, context)
        pthread_detach(reaper)
        log.info("reloaded: configuration \(next.number) serving; configuration \(previous.number) finishing its connections")
    }

    /// Listeners and workers for `config`, not yet running. Reuses the previous generation's
    /// listening sockets for binds that are unchanged.
    private func prepare(_ config: EngineConfig, previous: Generation?) throws(EngineError) -> Generation {
        // A configuration with only a stats page runs the page alone (workers with no listener).
        guard !config.frontends.isEmpty || !config.statsPages.isEmpty else { throw .noFrontends }
        for f in config.frontends where f.backendIndex < 0 || f.backendIndex >= config.backends.count {
            throw .invalid("frontend '\(f.name)' has no backend")
        }
        // Per-address limits track the address a connection was accepted from and release it
        // by the connection's peer, which an accept-proxy header replaces: not combined yet.
        for f in config.frontends where (f.acceptProxy || f.expectProxy != nil) && f.addressLimit != nil {
            throw .invalid("frontend '\(f.name)': per-address limits on an accept-proxy frontend are not supported yet")
        }
        try Engine.checkSourcePools(config)
        generationCount += 1
        let shared = SharedState(backends: config.backends, frontendCount: config.frontends.count,
                                 addressLimits: config.frontends.map(\.addressLimit),
                                 inheriting: previous?.shared, previousBackends: previous?.config.backends ?? [])
        let generation = Generation(number: generationCount, config: config, shared: shared)
        let allowed = Engine.allowedCPUs()
        let cpuCount = max(1, config.cores ?? allowed.count)

        // Capacity: each ring's fixed-file table may be as large as RLIMIT_NOFILE and lives
        // outside the fd table, so the per-process fd limit does not cap connections; a maxconn
        // past what one ring per CPU holds gets more rings (threads pinned over the same CPUs).
        let nofile = Engine.raiseFileLimit()
        let listenerCount = config.frontends.reduce(0) { $0 + $1.binds.count }
        let acceptSlots = listenerCount * config.acceptDepth
        let plan = RingPlan(cpus: cpuCount, fileLimit: nofile, acceptSlots: acceptSlots, maxConnections: config.maxConnections)
        let ringCount = plan.rings
        let cpus = (0..<ringCount).map { allowed.isEmpty ? Int32($0 % cpuCount) : allowed[($0 % cpuCount) % allowed.count] }
        generation.slotsPerWorker = plan.slotsPerRing
        generation.capacity = plan.capacity
        generation.plan = plan
        if let wanted = config.maxConnections, generation.capacity < wanted {
            log.warning("maxconn \(wanted) exceeds what \(ringCount) ring(s) can hold with RLIMIT_NOFILE=\(nofile) "
                        + "(\(generation.slotsPerWorker) slots, \(generation.slotsPerWorker * 2) fixed files per ring; "
                        + "at most \(RingPlan.ringsMax) rings): enforcing \(generation.capacity)")
        }
        generation.maxConnections = min(config.maxConnections ?? generation.capacity, generation.capacity)

        // Listeners: one SO_REUSEPORT socket per bind per worker; port 0 is resolved by the
        // first socket and reused by the others; a bind the previous generation had is taken over.
        var perWorker = [[ListenerSocket]](repeating: [], count: ringCount)
        var opened: [Int32] = []
        do {
            for (fi, frontend) in config.frontends.enumerated() {
                var bound: [SocketAddress] = []
                for address in frontend.binds {
                    let inherited = previous.map { old in
                        old.listeners.map { $0.filter { $0.configured == address } }
                    } ?? []
                    var target = address
                    for w in 0..<ringCount {
                        if w < inherited.count, let old = inherited[w].first {
                            perWorker[w].append(ListenerSocket(fd: old.fd, address: old.address, configured: address, frontend: fi,
                                                               backend: frontend.backendIndex))
                            if w == 0 { bound.append(old.address) }
                            continue
                        }
                        if w > 0, let first = perWorker[0].last(where: { $0.configured == address }) { target = first.address }
                        let (fd, actual) = try Listener.open(target)
                        opened.append(fd)
                        if w == 0 { target = actual; bound.append(actual) }
                        perWorker[w].append(ListenerSocket(fd: fd, address: actual, configured: address, frontend: fi,
                                                           backend: frontend.backendIndex))
                    }
                }
                generation.boundAddresses.append(bound)
            }
        } catch {
            for fd in opened { close(fd) }
            throw .listener(error)
        }
        generation.listeners = perWorker
        // A context that does not load fails the start (or the reload): the listeners this
        // generation opened (not those it took over) are closed again.
        func closeNewListeners() {
            let kept = Set(previous?.listeners.flatMap { $0 }.map(\.fd) ?? [])
            for fd in perWorker.flatMap({ $0 }).map(\.fd) where !kept.contains(fd) { close(fd) }
        }
        // TLS contexts: one per TLS frontend for the generation's workers; a certificate that
        // does not load fails the start (or the reload, which keeps the running set).
        // The switch to kTLS needs the TLS 1.3 traffic secrets kept from each handshake.
        let kernelTLS = config.kernelTLS ?? KernelTLSMode.fromEnvironment()
        // The probe (a loopback TCP pair) runs only when some frontend terminates TLS.
        let switchesToKernelTLS = config.frontends.contains { $0.tls != nil }
            && kernelTLS.attempts(kernelSupports: TLSKernelOffload.probe.supported)
        var contexts: [TLSContext?] = []
        for frontend in config.frontends {
            guard var tls = frontend.tls else {
                contexts.append(nil)
                continue
            }
            tls.keepsTrafficSecrets = tls.keepsTrafficSecrets || switchesToKernelTLS
            do {
                let context = try TLSContext(tls)
                for warning in context.warnings { log.warning("\(frontend.tlsSource ?? frontend.name): \(warning)") }
                contexts.append(context)
            } catch {
                closeNewListeners()
                throw .invalid("\(frontend.tlsSource ?? frontend.name): frontend '\(frontend.name)': \(error)")
            }
        }
        generation.tlsContexts = contexts
        // Client contexts for `server ... ssl`, one per server (flat, in the workers' order).
        var serverContexts: [ServerTLSContext?] = []
        for backend in config.backends {
            for server in backend.servers {
                guard let tls = server.tls else {
                    serverContexts.append(nil)
                    continue
                }
                do {
                    serverContexts.append(try ServerTLSContext(tls, workers: ringCount))
                } catch {
                    closeNewListeners()
                    throw .invalid("\(server.source ?? backend.name): server '\(backend.name)/\(server.name)': \(error)")
                }
            }
        }
        generation.serverTLSContexts = serverContexts
        var workerConfig = config
        workerConfig.maxConnections = generation.maxConnections
        workerConfig.workerCount = ringCount
        workerConfig.buffersPerWorker = plan.buffersPerRing(configured: config.buffersPerWorker)
        workerConfig.scanSlices = plan.scanSlices
        workerConfig.kernelTLS = kernelTLS
        if contexts.contains(where: { $0 != nil }) || serverContexts.contains(where: { $0 != nil }) {
            // Handshake flights, alerts and tickets are written into owned buffers.
            workerConfig.ownedBuffersPerWorker = max(config.ownedBuffersPerWorker, workerConfig.buffersPerWorker / 4)
        }
        // Each checked server is checked by one worker for the whole process, spread evenly.
        let checked = config.backends.flatMap(\.servers).enumerated().filter { $0.element.check != nil }.map(\.offset)
        for w in 0..<ringCount {
            let mine = checked.enumerated().filter { $0.offset % ringCount == w }.map(\.element)
            generation.workers.append(Worker(index: w, cpu: cpus[w], config: workerConfig, shared: shared,
                                             listeners: perWorker[w], slotCount: generation.slotsPerWorker,
                                             checkedServers: mine, tlsContexts: contexts,
                                             serverTLSContexts: serverContexts, log: log))
        }
        return generation
    }

    private func launch(_ generation: Generation) throws(EngineError) {
        // Workers never take SIGINT/SIGTERM/SIGHUP/SIGUSR1 (the executable's main thread waits
        // for them): blocked while the threads are made, which inherit the mask, then the
        // caller's own mask is restored (an embedding program, or a process it starts later,
        // keeps its signals).
        var controls = sigset_t()
        var callerMask = sigset_t()
        sigemptyset(&controls)
        for signal in [SIGINT, SIGTERM, SIGHUP, SIGUSR1] { sigaddset(&controls, signal) }
        pthread_sigmask(SIG_BLOCK, &controls, &callerMask)
        defer { pthread_sigmask(SIG_SETMASK, &callerMask, nil) }
        signal(SIGPIPE, SIG_IGN)
        for worker in generation.workers {
            var thread = pthread_t()
            let context = Unmanaged.passRetained(worker).toOpaque()
            let rc = pthread_create(&thread, nil, { raw in
                let worker = Unmanaged<Worker>.fromOpaque(raw!).takeRetainedValue()
                worker.run()
                return nil
            }, context)
            precondition(rc == 0, "pthread_create failed: \(rc)")
            generation.threads.append(thread)
        }
        // Wait until every worker has its ring, or one failed.
        while true {
            if let failed = generation.workers.first(where: { cu_atomic_load($0.startStateWord) == -1 }) {
                generation.shared.requestStop()
                generation.join()
                throw .worker(failed.startError ?? "worker failed to start")
            }
            if generation.workers.allSatisfy({ cu_atomic_load($0.startStateWord) != 0 }) { break }
            usleep(1000)
        }
    }

    /// Stops accepting; connections get the drain grace period, then are aborted.
    public func stop() {
        locked {
            current?.shared.requestStop()
            for generation in retired { generation.shared.requestStop() }
        }
    }

    /// Waits for every worker thread to exit: the current generation's, and those of
    /// configurations a reload retired (joined by their reaper; polled here).
    public func wait() {
        let generation = locked { current }
        generation?.join()
        let older = locked { retired }
        let deadlineMs = cu_now_ms() + config.drainGraceMs + 3_000
        while cu_now_ms() < deadlineMs
                && !older.allSatisfy({ $0.workers.allSatisfy { cu_atomic_load($0.startStateWord) == 2 } }) {
            usleep(5_000)
        }
    }

    public var activeConnections: Int { shared.activeConnections }

    /// Connections still open on configurations a reload replaced.
    public var retiredConnections: Int {
        locked { retired.reduce(0) { $0 + $1.shared.activeConnections } }
    }

    /// Takes a server out of rotation (`up: false`) or puts it back, for every worker's next
    /// choice; open connections stay. Survives reloads. False when there is no such server.
    @discardableResult
    public func setServer(backend: String, server: String, up: Bool) -> Bool {
        let generation = locked { current! }
        guard let b = generation.config.backends.firstIndex(where: { $0.name == backend }),
              let s = generation.config.backends[b].servers.firstIndex(where: { $0.name == server }) else { return false }
        generation.shared.setServer(generation.shared.serverBase[b] + s, up: up)
        log.info("server \(backend)/\(server) is \(up ? "UP" : "DOWN") (set by the operator)")
        return true
    }

    public func statistics() -> EngineStatistics {
        let (generation, older, gone) = locked { (current!, retired, finishedTotals) }
        var previous = gone
        for g in older {
            for worker in g.workers { previous = previous + worker.statistics() }
        }
        let servers = generation.config.backends.enumerated().flatMap { b, backend in
            backend.servers.enumerated().map { s, server in
                let global = generation.shared.serverBase[b] + s
                return ServerStatistics(backend: backend.name, server: server.name, address: server.address,
                                        active: generation.shared.serverActive(global), total: generation.shared.serverTotal(global))
            }
        }
        return EngineStatistics(workers: generation.workers.map { $0.statistics() }, previous: previous, servers: servers)
    }
}
