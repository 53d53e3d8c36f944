// EngineConfig: the plain-value model the engine receives whole at start (and, later, at
// reload). It never reads a file; the command line and the config parser build it.
import Glibc

public enum BalanceAlgorithm: String, Sendable, CaseIterable {
    case roundrobin
    case leastconn
}

public struct ServerConfig: Sendable, Equatable {
    public var name: String
    public var address: SocketAddress
    public var weight: Int

    public init(name: String, address: SocketAddress, weight: Int = 1) {
        self.name = name
        self.address = address
        self.weight = weight
    }
}

public struct BackendConfig: Sendable, Equatable {
    public var name: String
    public var balance: BalanceAlgorithm
    public var servers: [ServerConfig]

    public init(name: String, balance: BalanceAlgorithm = .roundrobin, servers: [ServerConfig]) {
        self.name = name
        self.balance = balance
        self.servers = servers
    }
}

public struct FrontendConfig: Sendable, Equatable {
    public var name: String
    public var binds: [SocketAddress]
    /// Index into EngineConfig.backends.
    public var backendIndex: Int

    public init(name: String, binds: [SocketAddress], backendIndex: Int) {
        self.name = name
        self.binds = binds
        self.backendIndex = backendIndex
    }
}

public struct EngineConfig: Sendable {
    public var frontends: [FrontendConfig]
    public var backends: [BackendConfig]
    /// Worker threads; nil means one per CPU the process may run on.
    public var cores: Int?
    /// Global limit of proxied connections (HAProxy's global maxconn); nil: what the rings
    /// can hold (see Engine.start).
    public var maxConnections: Int?
    public var connectTimeoutMs: Int = 5_000
    /// Inactivity limits (HAProxy's `timeout client` / `timeout server`); 0 disables.
    public var clientTimeoutMs: Int = 240_000
    public var serverTimeoutMs: Int = 240_000
    /// Connection attempts after the first failed one, each to the next server.
    public var retries: Int = 3
    /// Size of each provided buffer; a recv fills at most one.
    public var bufferSizeBytes: Int = 16 * 1024
    /// Provided buffers per worker (power of two, at most 32768).
    public var buffersPerWorker: Int = 4096
    /// Buffers one direction of a connection may queue before its recv is paused.
    public var pipeBuffersMax: Int = 4
    /// Accepts kept armed per listener per worker.
    public var acceptDepth: Int = 8
    /// How long a stopping engine lets connections finish.
    public var drainGraceMs: Int = 5_000
    /// Pin each worker to its CPU.
    public var pinThreads: Bool = true

    public init(frontends: [FrontendConfig], backends: [BackendConfig]) {
        self.frontends = frontends
        self.backends = backends
    }
}
