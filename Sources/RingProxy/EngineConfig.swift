// EngineConfig: the plain-value model the engine receives whole at start (and, later, at
// reload). It never reads a file; the command line and the config parser build it.
import Glibc

public enum BalanceAlgorithm: String, Sendable, CaseIterable {
    /// Smooth weighted round robin, per worker.
    case roundrobin
    /// Fewest connections per unit of weight, engine-wide.
    case leastconn
    /// Rendezvous hash of the client address: consistent, weighted.
    case source
    /// Rendezvous hash of the MQTT client identifier: stateless stickiness, the same on every
    /// ringproxy instance behind one address (HAProxy would need peers for that).
    case clientIDHash = "clientid-hash"

    /// Whether choosing a server needs the CONNECT's client identifier.
    var needsClientID: Bool { self == .clientIDHash }
}

public struct ServerConfig: Sendable, Equatable {
    public var name: String
    public var address: SocketAddress
    public var weight: Int
    /// `send-proxy` (v1) or `send-proxy-v2`: the connection to this server starts with a PROXY
    /// protocol header carrying the client's address; nil: none.
    public var proxyProtocol: ProxyProtocolVersion?
    /// PROXY v2 TLVs describing the client's TLS session (`send-proxy-v2-ssl[-cn]`,
    /// `proxy-v2-options ssl,cert-cn,ssl-cipher,authority`); sent for TLS clients only.
    public var proxyV2TLVs: ProxyV2TLVs = []
    /// `check`: health checks; nil: the server is taken as up.
    public var check: HealthCheckConfig?
    /// `backup`: takes connections only when no active server of its backend can.
    public var backup = false
    /// `disabled`: starts in maintenance (the stats socket can enable it).
    public var startsInMaintenance = false
    /// `observe layer4`: failed connections of real traffic count against the server.
    public var observe: ObserveConfig?
    /// `on-marked-down shutdown-sessions`: its sessions are closed when it goes DOWN.
    public var shutdownSessionsOnDown = false
    /// `on-marked-up shutdown-backup-sessions`: when it comes UP, sessions on the backend's
    /// backup servers are closed (their clients reconnect to it).
    public var shutdownBackupSessionsOnUp = false
    /// `ssl`: the connection to this server is TLS (ringproxy the client); nil: plain TCP.
    public var tls: ServerTLSConfig?
    /// Where the `server` line is ("haproxy.cfg:42"), for messages about its TLS files.
    public var source: String?
    /// `source <addr>[-<addr>]`: each connection is bound to the next address of the pool
    /// (the kernel picks the port at connect); nil: the kernel picks address and port.
    public var sourcePool: SourcePool?

    public init(name: String, address: SocketAddress, weight: Int = 1, proxyProtocol: ProxyProtocolVersion? = nil,
                check: HealthCheckConfig? = nil, backup: Bool = false) {
        self.name = name
        self.address = address
        self.weight = weight
        self.proxyProtocol = proxyProtocol
        self.check = check
        self.backup = backup
    }
}

public struct BackendConfig: Sendable, Equatable {
    public var name: String
    public var balance: BalanceAlgorithm
    public var servers: [ServerConfig]
    /// `stick-table` + `stick on` the MQTT client identifier; nil: no stickiness table.
    public var stickTable: StickTableConfig?
    /// Per-backend `timeout connect`, `timeout server`, `retries`; nil: the engine-wide value.
    public var connectTimeoutMs: Int?
    public var serverTimeoutMs: Int?
    public var retries: Int?
    /// `option allbackups`: when every active server is down, balance over all backup servers
    /// (else only the first usable one takes connections, as in HAProxy).
    public var allBackups = false
    /// `option mqtt-connack-redispatch` (a ringproxy extension): the CONNECT is kept until the
    /// server's CONNACK; one that says "try another server" (3.1.1: 0x03; 5.0: 0x88, 0x89,
    /// 0x9F, 0x9C/0x9D) sends it to the next server instead, within `retries`.
    public var connackRedispatch = false

    public init(name: String, balance: BalanceAlgorithm = .roundrobin, servers: [ServerConfig],
                stickTable: StickTableConfig? = nil) {
        self.name = name
        self.balance = balance
        self.servers = servers
        self.stickTable = stickTable
    }

    /// Whether choosing a server needs the CONNECT's client identifier.
    public var needsClientID: Bool { stickTable != nil || balance.needsClientID }
    /// Whether its frontends must read the CONNECT before connecting (to route or to replay it).
    public var needsConnect: Bool { needsClientID || connackRedispatch }
}

public struct FrontendConfig: Sendable, Equatable {
    public var name: String
    public var binds: [SocketAddress]
    /// Index into EngineConfig.backends: the `default_backend`.
    public var backendIndex: Int
    /// `use_backend` rules in order; the first that applies chooses the backend, else
    /// `backendIndex` does. Evaluated once the CONNECT is known when one of them reads it.
    public var routes: [BackendRoute] = []
    /// Reject connections whose first packet is not a valid MQTT CONNECT
    /// (`tcp-request content reject unless { req.payload(0,0),mqtt_is_valid }`).
    public var requireMQTT: Bool = false
    /// How long a connection may take to send its CONNECT (`tcp-request inspect-delay`); nil:
    /// the client timeout.
    public var inspectTimeoutMs: Int?
    /// Largest CONNECT accepted while inspecting (fixed header included; `tune.bufsize`). The
    /// default holds any CONNECT without a will: client id, user name and password of 65,535
    /// bytes each, their headers and 60 KB of MQTT 5 properties.
    public var connectMaxBytes: Int = FrontendConfig.connectMaxBytesDefault
    public static let connectMaxBytesDefault = 256 * 1024
    /// Per-frontend `timeout client`; nil: the engine-wide value.
    public var clientTimeoutMs: Int?
    /// `option mqtt-keepalive-timeout`: the client timeout of a connection whose CONNECT gives
    /// a keepalive is 1.5 times it, within these bounds; nil: `timeout client` for all.
    public var mqttKeepAliveTimeout: MQTTKeepAliveBounds?
    /// Per-frontend `maxconn`; nil: only the global limit applies.
    public var maxConnections: Int?
    /// Per-address limits (`tcp-request connection track-sc0 src` + `reject` rules on the
    /// address's counters); nil: every address may use all of maxconn.
    public var addressLimit: AddressLimitConfig?
    /// `bind ... accept-proxy`: every connection starts with a PROXY protocol header (v1 or v2)
    /// from a trusted front balancer, and the address it carries is the client's from then on
    /// (balancing, the log, headers sent on); a connection without a valid one is closed.
    public var acceptProxy: Bool = false
    /// `tcp-request connection expect-proxy layer4 [if|unless { src ... }]`: the connections
    /// that start with a PROXY header are those from (or, with `unless`, not from) these
    /// sources; nil: none (unless `acceptProxy`).
    public var expectProxy: ExpectProxyConfig?
    /// `option mqtt-websocket`: MQTT over WebSocket, read and routed by the MQTT CONNECT inside
    /// the first frames; nil: bytes pass through untouched (the seed's 8083).
    public var webSocket: WebSocketFrontendConfig?
    /// `bind ... ssl crt ...`: TLS is terminated on this frontend's listeners (userspace records
    /// over the ring's buffers; kTLS where the kernel has it); nil: plain TCP.
    public var tls: TLSBindConfig?
    /// Where the TLS settings were written ("file:line"), for errors found when the
    /// certificates are loaded.
    public var tlsSource: String?
    /// `unique-id-format`: the id a PROXY v2 header carries with `proxy-v2-options unique-id`.
    public var uniqueIDFormat: UniqueIDFormat?
    /// `option dontlognull`: a connection that received no byte from its client (a port probe,
    /// a health check of a balancer in front) is left out of the connection log; still counted.
    public var dontLogNull = false

    public init(name: String, binds: [SocketAddress], backendIndex: Int, requireMQTT: Bool = false) {
        self.name = name
        self.binds = binds
        self.backendIndex = backendIndex
        self.requireMQTT = requireMQTT
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
    public var connectTimeoutMs: Int = EngineConfig.connectTimeoutDefaultMs
    public static let connectTimeoutDefaultMs = 5_000
    /// Inactivity limits (HAProxy's `timeout client` / `timeout server`); 0 disables.
    public var clientTimeoutMs: Int = 240_000
    public var serverTimeoutMs: Int = 240_000
    /// Connection attempts after the first failed one, each to the next server.
    public var retries: Int = 3
    /// Size of each provided buffer; a recv fills at most one.
    public var bufferSizeBytes: Int = 64 * 1024
    /// Provided buffers per worker (power of two, at most 32768).
    public var buffersPerWorker: Int = 1024
    /// Buffers per worker that the kernel never fills, for bytes the proxy writes itself
    /// (PROXY headers, HTTP answers, TLS records); the same size as the provided ones.
    public var ownedBuffersPerWorker: Int = 64
    /// Buffers one direction of a connection may queue before its recv is paused.
    public var pipeBuffersMax: Int = 4
    /// Accepts kept armed per listener per worker.
    public var acceptDepth: Int = 8
    /// How long a stopping engine lets connections finish before aborting them (`--grace`,
    /// `hard-stop-after`).
    public var drainGraceMs: Int = 5_000
    /// Whether `drainGraceMs` also bounds a configuration a reload retired (`hard-stop-after`);
    /// if not, its connections finish however long they take, as HAProxy's old process does
    /// without `hard-stop-after`.
    public var drainGraceBoundsRetirement = false
    /// TLS handshakes a worker runs at once; past it, its TLS listeners stop accepting (clients
    /// wait in the kernel backlog) until one finishes. Established connections are not
    /// affected. Bounds the CPU a handshake storm can take.
    public var tlsHandshakesInFlightMax: Int = 256
    /// `maxsslrate`: new TLS sessions per second for the process (each worker its share);
    /// nil: no limit.
    public var tlsHandshakeRateMax: Int?
    /// Whether established TLS clients switch to kernel TLS; nil: RINGPROXY_KTLS decides
    /// (Engine.prepare resolves it for the workers).
    public var kernelTLS: KernelTLSMode?
    /// Workers of the generation (set by Engine.prepare; per-worker shares divide by it).
    public var workerCount: Int = 1
    /// Ticks of the timeout scan (every 250 ms) over which a worker's table is covered once
    /// (set by Engine.prepare): 1, or 4 when there are more rings than CPUs (RingPlan).
    public var scanSlices: Int = 1
    /// Pin each worker to its CPU.
    public var pinThreads: Bool = true
    /// One line per closed connection (HAProxy's tcplog layout); nil: no connection log.
    public var log: LogConfig?
    /// Stats pages and the stats socket (Admin/AdminServer serves them; the workers never see them).
    public var statsPages: [StatsPageConfig] = []
    public var statsSocket: StatsSocketConfig?

    public init(frontends: [FrontendConfig], backends: [BackendConfig]) {
        self.frontends = frontends
        self.backends = backends
    }
}

/// The MQTT-aware WebSocket mode of a frontend (a ringproxy extension).
public struct WebSocketFrontendConfig: Sendable, Equatable {
    /// The path the upgrade must ask for; nil: any.
    public var path: String?
    /// The client must offer the `mqtt` (or `mqttv3.1`) subprotocol.
    public var requireSubprotocol: Bool

    public init(path: String? = nil, requireSubprotocol: Bool = true) {
        self.path = path
        self.requireSubprotocol = requireSubprotocol
    }
}

/// The TLVs a PROXY v2 header carries about the client's TLS session (proxy-protocol.txt §2.2).
public struct ProxyV2TLVs: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// PP2_TYPE_SSL: the client used TLS, whether its certificate verified, the version.
    public static let ssl = ProxyV2TLVs(rawValue: 1 << 0)
    /// PP2_SUBTYPE_SSL_CN: the client certificate's common name.
    public static let certCN = ProxyV2TLVs(rawValue: 1 << 1)
    /// PP2_SUBTYPE_SSL_CIPHER.
    public static let sslCipher = ProxyV2TLVs(rawValue: 1 << 2)
    /// PP2_TYPE_AUTHORITY: the SNI the client sent.
    public static let authority = ProxyV2TLVs(rawValue: 1 << 3)
    /// PP2_TYPE_UNIQUE_ID: the connection's id from its frontend's `unique-id-format`.
    public static let uniqueID = ProxyV2TLVs(rawValue: 1 << 4)
}
