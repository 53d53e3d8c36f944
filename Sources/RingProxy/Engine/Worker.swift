// Worker: one pinned thread, one io_uring, one buffer pool, one connection table. Its loop is
// the whole engine for its core: submit once per turn, reap completions in a batch, decode
// each user_data, drop stale ones, and hand the rest to one switch. Nothing on that path
// allocates, retains or locks: state lives in preallocated raw tables addressed by slot.
import CTLS
import CUring
import Glibc

final class Worker {
    let index: Int
    let cpu: Int32?
    let config: EngineConfig
    let log: Log
    unowned(unsafe) let shared: SharedState

    // Set up on the worker's own thread (SINGLE_ISSUER wants the creator to submit).
    var ring: Ring!
    var pool: BufferPool!

    let slotCount: Int
    /// The engine-wide limit in force (EngineConfig.maxConnections resolved by Engine.start).
    let maxConnections: Int
    let conns: UnsafeMutablePointer<Connection>
    let pipes: UnsafeMutablePointer<Pipe>
    /// Per pipe: the msghdr and iovecs of a gathered send (several queued buffers in one
    /// sendmsg). Only one send is in flight per pipe, so each pipe owns its entry; pages are
    /// touched only by pipes that ever gather (an idle connection touches none).
    let gatherHeaders: UnsafeMutablePointer<msghdr>
    let gatherVectors: UnsafeMutablePointer<iovec>
    /// Gather queued buffers into one send (RINGPROXY_NO_GATHER=1 sends one buffer per send,
    /// for comparison).
    let gatherSends = getenv("RINGPROXY_NO_GATHER") == nil
    static let gatherMax = 8
    /// Closing cancels pending ops by file only (RINGPROXY_CANCEL_BY_FILE=1, for comparison).
    let cancelByFileOnly = getenv("RINGPROXY_CANCEL_BY_FILE") != nil
    var freeHead: Int32 = -1
    var slotsInUse = 0

    var listeners: [ListenerSocket]
    /// Per listener: accepts armed now, and whether it is closed.
    let acceptsArmed: UnsafeMutablePointer<Int>
    var listenersPaused = false

    var balancers: [Balancer]
    /// Server addresses, flat: [globalServerIndex].
    let serverAddresses: UnsafeMutablePointer<SocketAddress>
    let backendServerBase: [Int]
    let backendServerCount: [Int]
    /// Per server (flat, like serverAddresses): the PROXY protocol version its connections
    /// start with (`send-proxy`: 1, `send-proxy-v2`: 2), 0 for none.
    let serverProxyProtocol: UnsafeMutablePointer<UInt8>
    /// Per server (flat): the ProxyV2TLVs its v2 headers carry for TLS clients.
    let serverProxyTLVs: [ProxyV2TLVs]
    /// Per frontend: `unique-id-format`; the host name for %H; accepted connections (for %rt).
    let frontendUniqueID: [UniqueIDFormat?]
    let hostName: [UInt8]
    var acceptSequence: UInt32 = 0
    /// Per listener: its bound address, and whether that is a wildcard (then the address a
    /// client reached is looked up for a PROXY header; see Worker+ProxyProtocol).
    let listenerAddresses: UnsafeMutablePointer<SocketAddress>
    let listenerWildcard: UnsafeMutablePointer<Bool>
    /// Per slot: the address its client connected to, when `Connection.destinationKnown`.
    /// Allocated for every slot only when a server sends PROXY headers or a frontend accepts
    /// them; pages are touched only by connections that use them.
    let destinations: UnsafeMutablePointer<sockaddrStorage>
    /// The health checks this worker runs (each checked server has one owner in the process),
    /// and the addresses they connect to (read by the kernel through the pointer).
    var checks: [HealthCheck]
    let checkAddresses: UnsafeMutablePointer<SocketAddress>
    /// Per server (flat): `observe layer4`, the on-marked-down/up rules, `backup`.
    let serverObserve: [ObserveConfig?]
    let serverShutdownOnDown: [Bool]
    let serverShutdownBackupsOnUp: [Bool]
    let serverIsBackup: [Bool]
    let shutdownRulesExist: Bool
    /// SharedState.serverEvents already acted on.
    var serverEventsSeen = 0
    /// The kernel has IORING_OP_FIXED_FD_INSTALL (Linux 6.8+; probed at start-up).
    var fixedFDInstall = false

    /// Pipes waiting for free buffers (ENOBUFS), in order.
    var bufferWaiters: LinkedQueue
    /// Pipes paused by backpressure on an established connection, longest first.
    var stalledPipes: LinkedQueue
    /// Connections in their preamble that hold buffers, oldest first.
    var preambleHolders: LinkedQueue
    /// Client TLS handshakes in flight, the one whose client has been silent longest first
    /// (Worker+TLS: at the bound of handshakes in flight, it gives way to a new client).
    var idleHandshakes: LinkedQueue
    /// Free provided buffers below which connections give way (Worker+Backpressure).
    let pressureLowWater: Int
    /// Free buffers are below the low-water mark (set once per loop turn): directions may hold
    /// one buffer.
    var poolTight = false
    /// Free buffers kept back when re-arming receives that waited for buffers.
    let bufferReserve: Int
    /// How long a direction must have been stalled before it may be closed under pressure.
    static let stallGraceMs = 50
    /// The same while a recv waits for a buffer: not 0, or a direction queued in the turn that
    /// emptied the pool would be closed before its send was even submitted.
    static let stallGraceWaitingMs = 10

    var nowMs = 0
    var draining = false
    var retiring = false
    var drainDeadlineMs = 0
    var abortedAll = false
    var exitDeadlineMs = 0
    var uringSetsockopt = false
    /// Completions to wait for per io_uring_enter, and the most a wait may add once one is
    /// there (RINGPROXY_WAIT_BATCH / RINGPROXY_WAIT_MIN_US; batch 1 = return on the first).
    let waitBatch: UInt32 = UInt32(getenv("RINGPROXY_WAIT_BATCH").flatMap { Int(String(cString: $0)) } ?? 1)
    let waitMinUs: UInt32 = UInt32(getenv("RINGPROXY_WAIT_MIN_US").flatMap { Int(String(cString: $0)) } ?? 20)
    /// jemalloc's count of bytes this thread allocated, when jemalloc is the allocator: the
    /// proof that the loop allocates nothing (read by statistics(), never written by us).
    var allocatedCounter: UnsafeMutablePointer<UInt64>?
    /// The kernel ends a multishot recv after a byte cap (exact backpressure).
    var recvLimit = false

    /// Per frontend: the front stages its connections run before a server is chosen; whether
    /// non-MQTT is rejected (else it is balanced without a client id); limits.
    let frontendStages: [FrontStages]
    /// Per frontend: `option mqtt-websocket` (Worker+WebSocket), its upgrade policy (the path
    /// bytes live in `webSocketPaths`); per slot, the WebSocket state (allocated only when a
    /// frontend needs it); the unmasked CONNECT payload (synchronous, one per worker).
    /// Per frontend: its TLS context (`bind ... ssl`), shared by the generation's workers;
    /// the worker's ctls_io (the buffers each TLS call reads and writes); per slot, the SSL
    /// (allocated only when a frontend terminates TLS); the scratch records are decrypted and
    /// sealed into; a second plaintext buffer tlsReceive filled, for the caller to queue.
    let tlsContexts: [TLSContext?]
    let tlsIO: UnsafeMutablePointer<ctls_io>
    let tlsSessions: UnsafeMutablePointer<OpaquePointer?>
    let tlsScratch: UnsafeMutableRawBufferPointer
    var tlsOverflow: UInt16 = BufferPool.none
    /// The TLS admission gate (Worker+TLS): handshakes running, new TLS sessions left this
    /// second (maxsslrate's share), whether TLS listeners are held back, which listeners are TLS.
    var tlsHandshakesInFlight = 0
    var tlsRateLeft = Int.max
    var tlsRateSecond = 0
    let tlsRatePerWorker: Int?
    var tlsAcceptsHeld = false
    /// The switch to kernel TLS (Worker+KernelTLS): whether clients attempt it; per slot, the
    /// TX and RX crypto info the setsockopts read (alive until the last of them completed,
    /// allocated only when they attempt it); the ULP's name; the close_notify alert message.
    let kernelTLSSwitchEnabled: Bool
    let kernelTLSKeys: UnsafeMutablePointer<ctls_crypto_info>
    let kernelTLSULPName: UnsafeMutablePointer<CChar>
    let kernelTLSAlert: UnsafeMutablePointer<ctls_ktls_alert>
    /// Per server (flat): its client context for `ssl`, the SNI it sends and the name its
    /// certificate must carry (C strings made once), whether it passes on the client's SNI;
    /// per slot, the SSL towards the server and the client bytes set aside while its
    /// handshake runs (Worker+ServerTLS; allocated only when a server uses TLS).
    let serverTLSContexts: [ServerTLSContext?]
    let serverTLSNames: [(sni: UnsafeMutablePointer<CChar>?, verifyHost: UnsafeMutablePointer<CChar>?)]
    let serverTLSForwardsSNI: [Bool]
    let serverTLSSessions: UnsafeMutablePointer<OpaquePointer?>
    let serverTLSHeld: UnsafeMutablePointer<HeldChain>
    /// Where the handshake's last step stopped in the received buffer (records may follow).
    var serverHandshakeInputUsed = 0
    let listenerIsTLS: [Bool]
    let frontendIsWebSocket: [Bool]
    let webSocketPolicies: [WebSocketUpgradePolicy]
    let webSocketPaths: [UnsafeMutableRawBufferPointer]
    let webSocketStates: UnsafeMutablePointer<WebSocketConnectionState>
    let webSocketPayload: UnsafeMutableRawBufferPointer
    /// Per slot: the held bytes replayed to a server until it accepts them (Worker+Redispatch;
    /// allocated only when a WebSocket frontend or `option mqtt-connack-redispatch` needs it).
    /// Per backend: that option.
    let replayStates: UnsafeMutablePointer<ReplayState>
    let backendConnackRedispatch: [Bool]
    /// Per frontend with `expect-proxy layer4 if|unless { src ... }`: the sources, and whether
    /// matching ones (if) or the others (unless) start with a PROXY header.
    let frontendExpectProxy: [SourceMatcher?]
    let frontendExpectWhenMatching: [Bool]
    let frontendRequiresMQTT: [Bool]
    /// The frontends' `use_backend` rules, compiled for this worker (Balance/RouteTable).
    let routeTable: RouteTable
    let frontendInspectTimeoutMs: [Int]
    let frontendConnectMaxBytes: [Int]
    /// `option dontlognull` per frontend: connections with no byte from the client go unlogged.
    let frontendDontLogNull: [Bool]
    /// Buffers a connection may hold while its CONNECT is incomplete.
    let inspectBuffersMax: Int
    /// Contiguous copy of a CONNECT that spans buffers (rare; one per worker suffices because
    /// parsing is synchronous).
    let scratch: UnsafeMutableRawBufferPointer
    /// Rejections per frontend per MQTTPeek.InvalidReason raw value ([frontend * 32 + reason]).
    let rejectCounts: UnsafeMutablePointer<UInt64>
    /// The worker's deadlines (see fireTimer).
    var timers: TimerQueue
    /// Rate limit for per-connection warnings: lines left in the current second.
    var warningsLeft = 20
    var warningsSecond = 0
    var warningsSuppressed = 0

    /// The connection log (nil when off) and the names it prints.
    var connectionLog: ConnectionLog?
    let frontendNames: NameTable
    let backendNames: NameTable
    let serverNames: NameTable
    var logFirstPendingMs = 0

    /// One word per Counter, bumped in place, then jemalloc's thread.allocated as the loop last
    /// published it (read by statistics() from another thread; see Worker+Counters).
    let counters: UnsafeMutablePointer<UInt64>
    /// ProxyCounter words per frontend, then per server (read by Engine.snapshot()).
    let proxyCounters: UnsafeMutablePointer<UInt64>
    let proxyCounterWords: Int
    let frontendCount: Int

    /// Values the kernel reads through pointers: they must outlive each submission.
    /// Per backend: connect timeout (read by the kernel through the pointer), server timeout,
    /// retries. Per frontend: client timeout and maxconn.
    let connectTimeouts: UnsafeMutablePointer<__kernel_timespec>
    let backendServerTimeoutMs: [Int]
    let backendRetries: [Int]
    let frontendClientTimeoutMs: [Int]
    /// Per frontend: `option mqtt-keepalive-timeout`'s bounds (nil: off; Worker+Timeouts).
    let frontendKeepAliveBounds: [(minMs: Int, maxMs: Int)?]
    let frontendMaxConnections: [Int]
    /// Per frontend: its per-address limits (its table is shared.addressTables[f]).
    let frontendAddressLimits: [AddressLimitConfig?]
    let optionOne: UnsafeMutablePointer<Int32>
    /// Server-side source-address pools (Worker+Source).
    let sourcePools: SourcePoolTable
    let lingerZero: UnsafeMutablePointer<linger>

    static let cqeBatch = 256
    let cqes: UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>

    /// Set by the thread when set-up finished: 0 starting, 1 running, -1 failed (error in
    /// startError), 2 exited. Polled by Engine.start.
    let startStateWord: UnsafeMutablePointer<Int>
    /// 1 once a draining worker has no accept armed any more (polled by Engine.reload).
    let acceptsStoppedWord: UnsafeMutablePointer<Int>
    var startError: String?
    /// SharedState.acceptKicks already acted on.
    var acceptKicksSeen = 0
    /// The loop's tables were given back (releaseMemory); deinit frees the rest.
    var memoryReleased = false

    init(index: Int, cpu: Int32?, config: EngineConfig, shared: SharedState, listeners: [ListenerSocket], slotCount: Int,
         checkedServers: [Int] = [], tlsContexts: [TLSContext?] = [], serverTLSContexts: [ServerTLSContext?] = [], log: Log) {
        self.index = index
        self.cpu = cpu
        self.config = config
        self.shared = shared
        self.log = log
        self.listeners = listeners
        self.slotCount = slotCount
        maxConnections = config.maxConnections ?? Int.max
        conns = .allocate(capacity: slotCount)
        conns.initialize(repeating: Connection(), count: slotCount)
        pipes = .allocate(capacity: slotCount * 2)
        pipes.initialize(repeating: Pipe(), count: slotCount * 2)
        bufferWaiters = LinkedQueue(capacity: slotCount * 2)
        stalledPipes = LinkedQueue(capacity: slotCount * 2)
        preambleHolders = LinkedQueue(capacity: slotCount)
        idleHandshakes = LinkedQueue(capacity: slotCount)
        pressureLowWater = config.buffersPerWorker / 4
        bufferReserve = max(1, min(8, config.buffersPerWorker / 16))
        gatherHeaders = .allocate(capacity: slotCount * 2)
        gatherVectors = .allocate(capacity: slotCount * 2 * Self.gatherMax)
        // Free list in slot order, so low slots (and their fixed files) are reused first.
        var i = slotCount - 1
        while i >= 0 {
            conns[i].nextFree = freeHead
            freeHead = Int32(i)
            i -= 1
        }
        acceptsArmed = .allocate(capacity: max(1, listeners.count))
        acceptsArmed.initialize(repeating: 0, count: max(1, listeners.count))

        var base: [Int] = []
        var counts: [Int] = []
        var addresses: [SocketAddress] = []
        var balancers: [Balancer] = []
        for backend in config.backends {
            base.append(addresses.count)
            counts.append(backend.servers.count)
            balancers.append(Balancer(backend: backend, globalBase: addresses.count, workerIndex: index))
            addresses.append(contentsOf: backend.servers.map(\.address))
        }
        backendServerBase = base
        backendServerCount = counts
        self.balancers = balancers
        serverAddresses = .allocate(capacity: max(1, addresses.count))
        serverAddresses.initialize(from: addresses, count: addresses.count)
        let allServers = config.backends.flatMap(\.servers)
        checks = checkedServers.map { g in
            HealthCheck(server: g, backend: base.lastIndex { $0 <= g } ?? 0, config: allServers[g].check!)
        }
        checkAddresses = .allocate(capacity: max(1, checkedServers.count))
        checkAddresses.initialize(from: checkedServers.map { allServers[$0].check!.address }, count: checkedServers.count)
        serverObserve = allServers.map(\.observe)
        serverProxyTLVs = allServers.map(\.proxyV2TLVs)
        frontendUniqueID = config.frontends.map(\.uniqueIDFormat)
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        hostName = host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        serverShutdownOnDown = allServers.map(\.shutdownSessionsOnDown)
        serverShutdownBackupsOnUp = allServers.map(\.shutdownBackupSessionsOnUp)
        serverIsBackup = allServers.map(\.backup)
        shutdownRulesExist = allServers.contains { $0.shutdownSessionsOnDown || $0.shutdownBackupSessionsOnUp }
        let proxyVersions = config.backends.flatMap { $0.servers.map { UInt8($0.proxyProtocol?.rawValue ?? 0) } }
        serverProxyProtocol = .allocate(capacity: max(1, proxyVersions.count))
        serverProxyProtocol.initialize(from: proxyVersions, count: proxyVersions.count)
        listenerAddresses = .allocate(capacity: max(1, listeners.count))
        listenerAddresses.initialize(from: listeners.map(\.address), count: listeners.count)
        listenerWildcard = .allocate(capacity: max(1, listeners.count))
        listenerWildcard.initialize(from: listeners.map(\.address.isWildcard), count: listeners.count)
        let usesDestinations = proxyVersions.contains { $0 != 0 } || config.frontends.contains { $0.acceptProxy || $0.expectProxy != nil }
        frontendExpectProxy = config.frontends.map { $0.expectProxy.map { SourceMatcher($0.sources) } }
        frontendExpectWhenMatching = config.frontends.map { $0.expectProxy?.whenMatching ?? true }
        destinations = .allocate(capacity: usesDestinations ? slotCount : 1)

        frontendStages = config.frontends.map { frontend in
            var stages: FrontStages = frontend.acceptProxy ? [.proxyHeader] : []
            // The CONNECT is read when a backend it may reach needs it (client id, CONNACK
            // redispatch), and for a keepalive-derived timeout (without requiring MQTT).
            let needsConnect = config.backends[frontend.backendIndex].needsConnect
                || frontend.routes.contains { config.backends[$0.backendIndex].needsConnect }
            if frontend.requireMQTT || needsConnect || frontend.mqttKeepAliveTimeout != nil { stages.insert(.mqttConnect) }
            if frontend.webSocket != nil { stages.formUnion([.webSocketUpgrade, .mqttConnect]) }
            return stages
        }
        self.tlsContexts = config.frontends.indices.map { $0 < tlsContexts.count ? tlsContexts[$0] : nil }
        let serverCount = config.backends.reduce(0) { $0 + $1.servers.count }
        self.serverTLSContexts = (0..<serverCount).map { $0 < serverTLSContexts.count ? serverTLSContexts[$0] : nil }
        let usesServerTLS = self.serverTLSContexts.contains { $0 != nil }
        serverTLSNames = self.serverTLSContexts.map { context in
            guard let tls = context?.config else { return (nil, nil) }
            var sni: String?
            if case .fixed(let name)? = tls.sni { sni = name }
            return (sni.map { strdup($0) }, tls.nameToVerify.map { strdup($0) })
        }
        serverTLSForwardsSNI = self.serverTLSContexts.map { $0?.config.sni == .clientSNI }
        serverTLSSessions = .allocate(capacity: usesServerTLS ? slotCount : 1)
        serverTLSSessions.initialize(repeating: nil, count: usesServerTLS ? slotCount : 1)
        serverTLSHeld = .allocate(capacity: usesServerTLS ? slotCount : 1)
        serverTLSHeld.initialize(repeating: HeldChain(), count: usesServerTLS ? slotCount : 1)
        let usesTLS = self.tlsContexts.contains { $0 != nil } || usesServerTLS
        tlsIO = .allocate(capacity: 1)
        tlsIO.initialize(to: ctls_io())
        tlsSessions = .allocate(capacity: usesTLS ? slotCount : 1)
        tlsSessions.initialize(repeating: nil, count: usesTLS ? slotCount : 1)
        tlsScratch = .allocate(byteCount: usesTLS ? config.bufferSizeBytes + 32 * 1024 : 1, alignment: 16)
        kernelTLSSwitchEnabled = self.tlsContexts.contains { $0 != nil }
            && (config.kernelTLS ?? .auto).attempts(kernelSupports: TLSKernelOffload.probe.supported)
        kernelTLSKeys = .allocate(capacity: kernelTLSSwitchEnabled ? slotCount * 2 : 2)
        kernelTLSKeys.initialize(repeating: ctls_crypto_info(), count: kernelTLSSwitchEnabled ? slotCount * 2 : 2)
        kernelTLSULPName = .allocate(capacity: 4)
        kernelTLSULPName.initialize(from: [0x74, 0x6C, 0x73, 0], count: 4)   // "tls"
        kernelTLSAlert = .allocate(capacity: 1)
        kernelTLSAlert.initialize(to: ctls_ktls_alert())
        ctls_ktls_alert_init(kernelTLSAlert)
        listenerIsTLS = listeners.map { $0.frontend < config.frontends.count && config.frontends[$0.frontend].tls != nil }
        tlsRatePerWorker = config.tlsHandshakeRateMax.map { max(1, $0 / max(1, config.workerCount)) }
        tlsRateLeft = tlsRatePerWorker ?? Int.max
        frontendIsWebSocket = config.frontends.map { $0.webSocket != nil }
        let paths: [UnsafeMutableRawBufferPointer] = config.frontends.map { frontend in
            let bytes = Array((frontend.webSocket?.path ?? "").utf8)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, bytes.count), alignment: 1)
            buffer.copyBytes(from: bytes)
            return UnsafeMutableRawBufferPointer(rebasing: buffer[0..<bytes.count])
        }
        webSocketPaths = paths
        webSocketPolicies = config.frontends.enumerated().map { f, frontend in
            WebSocketUpgradePolicy(path: frontend.webSocket?.path == nil ? nil : UnsafeRawBufferPointer(paths[f]),
                                   requiresMQTTSubprotocol: frontend.webSocket?.requireSubprotocol ?? false)
        }
        let usesWebSocket = config.frontends.contains { $0.webSocket != nil }
        webSocketStates = .allocate(capacity: usesWebSocket ? slotCount : 1)
        webSocketPayload = .allocate(byteCount: usesWebSocket ? (config.frontends.map(\.connectMaxBytes).max() ?? 65_536) : 1, alignment: 16)
        backendConnackRedispatch = config.backends.map(\.connackRedispatch)
        let usesReplay = usesWebSocket || backendConnackRedispatch.contains(true)
        replayStates = .allocate(capacity: usesReplay ? slotCount : 1)
        frontendRequiresMQTT = config.frontends.map(\.requireMQTT)
        routeTable = RouteTable(frontends: config.frontends, connectMaxBytes: config.frontends.map(\.connectMaxBytes).max() ?? 65_536)
        frontendInspectTimeoutMs = config.frontends.map {
            let client = $0.clientTimeoutMs ?? config.clientTimeoutMs
            return $0.inspectTimeoutMs ?? (client > 0 ? min(client, Self.inspectTimeoutDefaultMs) : Self.inspectTimeoutDefaultMs)
        }
        frontendConnectMaxBytes = config.frontends.map(\.connectMaxBytes)
        frontendDontLogNull = config.frontends.map(\.dontLogNull)
        let connectMax = config.frontends.map(\.connectMaxBytes).max() ?? 65_536
        // packTail keeps any two neighbouring held buffers above one buffer's worth of bytes,
        // so 2 * ceil(connectMax / size) + 2 buffers always hold a largest CONNECT (and what follows).
        inspectBuffersMax = max(config.pipeBuffersMax, 2 * ((connectMax + config.bufferSizeBytes - 1) / config.bufferSizeBytes) + 2)
        scratch = .allocate(byteCount: connectMax + config.bufferSizeBytes, alignment: 16)
        rejectCounts = .allocate(capacity: 32 * max(1, config.frontends.count))
        rejectCounts.initialize(repeating: 0, count: 32 * max(1, config.frontends.count))
        connectionLog = config.log.map(ConnectionLog.init(config:))
        frontendNames = NameTable(config.frontends.map(\.name))
        backendNames = NameTable(config.backends.map(\.name))
        serverNames = NameTable(config.backends.flatMap { $0.servers.map(\.name) })
        counters = .allocate(capacity: Counter.allCases.count + 1)
        counters.initialize(repeating: 0, count: Counter.allCases.count)
        counters[Self.allocatedWord] = UInt64.max
        frontendCount = config.frontends.count
        proxyCounterWords = max(1, (config.frontends.count + allServers.count) * ProxyCounter.allCases.count)
        proxyCounters = .allocate(capacity: proxyCounterWords)
        proxyCounters.initialize(repeating: 0, count: proxyCounterWords)
        timers = TimerQueue(capacity: Self.timersMax + checkedServers.count)
        connectTimeouts = .allocate(capacity: max(1, config.backends.count))
        for (b, backend) in config.backends.enumerated() {
            let ms = backend.connectTimeoutMs ?? config.connectTimeoutMs
            (connectTimeouts + b).initialize(to: __kernel_timespec(tv_sec: Int64(ms / 1000), tv_nsec: Int64(ms % 1000) * 1_000_000))
        }
        backendServerTimeoutMs = config.backends.map { $0.serverTimeoutMs ?? config.serverTimeoutMs }
        backendRetries = config.backends.map { $0.retries ?? config.retries }
        frontendClientTimeoutMs = config.frontends.map { $0.clientTimeoutMs ?? config.clientTimeoutMs }
        frontendKeepAliveBounds = config.frontends.map { $0.mqttKeepAliveTimeout.map { ($0.minMs ?? 0, $0.maxMs ?? Int.max) } }
        frontendMaxConnections = config.frontends.map { $0.maxConnections ?? Int.max }
        frontendAddressLimits = config.frontends.map(\.addressLimit)
        sourcePools = SourcePoolTable(servers: allServers, slotCount: slotCount, workerIndex: index)
        optionOne = .allocate(capacity: 1)
        optionOne.initialize(to: 1)
        lingerZero = .allocate(capacity: 1)
        lingerZero.initialize(to: linger(l_onoff: 1, l_linger: 0))
        cqes = .allocate(capacity: Self.cqeBatch)
        startStateWord = .allocate(capacity: 1)
        startStateWord.initialize(to: 0)
        acceptsStoppedWord = .allocate(capacity: 1)
        acceptsStoppedWord.initialize(to: 0)
    }

    static let scanIntervalMs = 250
    /// Where the next timeout scan starts (a slice of the table per tick; RingPlan.scanSlices).
    var scanCursor = 0
    /// How long a preamble may take when no `tcp-request inspect-delay` says otherwise: a
    /// CONNECT normally arrives within one round trip.
    public static let inspectTimeoutDefaultMs = 5_000
    /// The most deadlines a worker keeps (its own scan; health checks will add theirs).
    static let timersMax = 64
    /// The longest the loop waits for a completion when no deadline is nearer.
    static let waitMaxMs = 100

    /// Everything else the worker allocated, once nothing can read it any more (its generation
    /// is forgotten): a reload must cost no memory once the previous workers are gone.
    deinit {
        releaseLoopTables()
        acceptsArmed.deallocate()
        for check in checks { check.deallocate() }
        checkAddresses.deallocate()
        serverAddresses.deallocate()
        serverProxyProtocol.deallocate()
        listenerAddresses.deallocate()
        listenerWildcard.deallocate()
        for balancer in balancers { balancer.deallocate() }
        for matcher in frontendExpectProxy { matcher?.deallocate() }
        routeTable.deallocate()
        for path in webSocketPaths { path.baseAddress.map { UnsafeMutableRawPointer(mutating: $0).deallocate() } }
        webSocketPayload.deallocate()
        tlsIO.deallocate()
        tlsScratch.deallocate()
        kernelTLSULPName.deallocate()
        kernelTLSAlert.deallocate()
        for names in serverTLSNames {
            free(names.sni)
            free(names.verifyHost)
        }
        scratch.deallocate()
        rejectCounts.deallocate()
        counters.deallocate()
        proxyCounters.deallocate()
        connectTimeouts.deallocate()
        optionOne.deallocate()
        sourcePools.deallocate()
        lingerZero.deallocate()
        cqes.deallocate()
        startStateWord.deallocate()
        acceptsStoppedWord.deallocate()
        frontendNames.deallocate()
        backendNames.deallocate()
        serverNames.deallocate()
        connectionLog?.release()
    }
}
