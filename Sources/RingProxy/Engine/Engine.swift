// Engine: starts one Worker per core with its own listeners, reports start-up errors, stops
// them (drain, then exit) and sums their statistics. It owns no data path of its own.
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

public final class Engine: @unchecked Sendable {
    public let config: EngineConfig
    public let log: Log
    let shared: SharedState
    private var workers: [Worker] = []
    private var threads: [pthread_t] = []
    /// The address each frontend bind ended up on (port 0 resolved), in config order.
    public private(set) var boundAddresses: [[SocketAddress]] = []
    public private(set) var cpus: [Int32] = []
    /// Connection slots per worker (each uses two fixed files).
    public private(set) var slotsPerWorker = 0
    /// The maxconn in force: the configured one, capped by capacity.
    public private(set) var maxConnections = 0

    public init(config: EngineConfig, log: Log = Log()) {
        self.config = config
        self.log = log
        shared = SharedState(backends: config.backends, frontendCount: config.frontends.count)
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
        guard !config.frontends.isEmpty else { throw .noFrontends }
        for f in config.frontends where f.backendIndex < 0 || f.backendIndex >= config.backends.count {
            throw .invalid("frontend '\(f.name)' has no backend")
        }
        let allowed = Engine.allowedCPUs()
        let coreCount = max(1, config.cores ?? allowed.count)
        cpus = (0..<coreCount).map { allowed.isEmpty ? Int32($0) : allowed[$0 % allowed.count] }

        // Capacity: each ring's fixed-file table may be as large as RLIMIT_NOFILE and lives
        // outside the fd table, so the per-process fd limit does not cap connections.
        let nofile = Engine.raiseFileLimit()
        let listenerCount = config.frontends.reduce(0) { $0 + $1.binds.count }
        let acceptSlots = listenerCount * config.acceptDepth
        let perWorkerMax = max(16 + acceptSlots, (nofile - 16) / 2)
        let perWorkerWanted = config.maxConnections.map { ($0 + coreCount - 1) / coreCount + acceptSlots } ?? perWorkerMax
        slotsPerWorker = min(perWorkerWanted, perWorkerMax)
        let capacity = (slotsPerWorker - acceptSlots) * coreCount
        if let wanted = config.maxConnections, capacity < wanted {
            log.warning("maxconn \(wanted) exceeds what \(coreCount) worker(s) can hold with RLIMIT_NOFILE=\(nofile) "
                        + "(\(slotsPerWorker) slots, \(slotsPerWorker * 2) fixed files per ring): enforcing \(capacity)")
        }
        maxConnections = min(config.maxConnections ?? capacity, capacity)

        // Listeners: one SO_REUSEPORT socket per bind per worker. Port 0 is resolved by the
        // first socket and reused by the others.
        var perWorker = [[ListenerSocket]](repeating: [], count: coreCount)
        boundAddresses = []
        do {
            for (fi, frontend) in config.frontends.enumerated() {
                var bound: [SocketAddress] = []
                for address in frontend.binds {
                    var target = address
                    for w in 0..<coreCount {
                        let (fd, actual) = try Listener.open(target)
                        if w == 0 { target = actual; bound.append(actual) }
                        perWorker[w].append(ListenerSocket(fd: fd, address: actual, frontend: fi, backend: frontend.backendIndex))
                    }
                }
                boundAddresses.append(bound)
            }
        } catch {
            for list in perWorker { for l in list { close(l.fd) } }
            throw .listener(error)
        }

        cu_block_control_signals(1)
        var workerConfig = config
        workerConfig.maxConnections = maxConnections
        for w in 0..<coreCount {
            let worker = Worker(index: w, cpu: cpus[w], config: workerConfig, shared: shared, listeners: perWorker[w],
                                slotCount: slotsPerWorker, log: log)
            workers.append(worker)
        }
        for worker in workers {
            var thread = pthread_t()
            let context = Unmanaged.passRetained(worker).toOpaque()
            let rc = pthread_create(&thread, nil, { raw in
                let worker = Unmanaged<Worker>.fromOpaque(raw!).takeRetainedValue()
                worker.run()
                return nil
            }, context)
            precondition(rc == 0, "pthread_create failed: \(rc)")
            threads.append(thread)
        }
        // Wait until every worker has its ring, or one failed.
        while true {
            let states = workers.map { cu_atomic_load($0.startStateWord) }
            if let failed = workers.first(where: { cu_atomic_load($0.startStateWord) == -1 }) {
                shared.requestStop()
                wait()
                throw .worker(failed.startError ?? "worker failed to start")
            }
            if states.allSatisfy({ $0 != 0 }) { break }
            usleep(1000)
        }
        let binds = boundAddresses.flatMap { $0 }.map(\.description).joined(separator: ", ")
        log.info("started \(coreCount) worker(s) on CPU(s) \(cpus.map(String.init).joined(separator: ",")); listening on \(binds); "
                 + "maxconn \(maxConnections) (capacity \(capacity))")
    }

    /// Stops accepting; connections get the drain grace period, then are aborted.
    public func stop() {
        shared.requestStop()
    }

    /// Waits for every worker thread to exit.
    public func wait() {
        for thread in threads { pthread_join(thread, nil) }
        threads.removeAll()
    }

    public var activeConnections: Int { shared.activeConnections }

    public func statistics() -> EngineStatistics {
        var active: [[Int]] = []
        var total: [[Int]] = []
        for (b, backend) in config.backends.enumerated() {
            let base = shared.serverBase[b]
            active.append(backend.servers.indices.map { shared.serverActive(base + $0) })
            total.append(backend.servers.indices.map { shared.serverTotal(base + $0) })
        }
        return EngineStatistics(workers: workers.map { $0.statistics() }, serverActive: active, serverTotal: total)
    }
}
