// StatsSnapshot: one consistent-enough picture of the running engine for the stats page, its
// CSV/JSON, the Prometheus endpoint and the stats socket. Plain values, built off the data path
// by Engine.snapshot() from the per-worker counters and the shared server state; renderers only
// read it. Field names follow HAProxy's stats columns (scur, stot, bin, econ ...) in words.

/// What the operator asked of a server (`set server B/S state ...`, `disabled`).
public enum ServerAdminState: String, Sendable, CaseIterable {
    /// Takes new connections when its checks say it is up.
    case ready
    /// Keeps its connections, takes no new ones.
    case drain
    /// Out of rotation: no new connections, not checked.
    case maint
}

/// The outcome of a server's last health check, in HAProxy's words (check_status column).
public enum CheckStatus: String, Sendable {
    /// Not checked yet.
    case initial = "INI"
    case layer4OK = "L4OK"
    case layer4Timeout = "L4TOUT"
    case layer4ConnectionProblem = "L4CON"
    case layer7OK = "L7OK"
    case layer7Timeout = "L7TOUT"
    /// The response did not match (tcp-check expect, MQTT CONNACK refused).
    case layer7Response = "L7RSP"
    case socketError = "SOCKERR"

    public var isSuccess: Bool { self == .layer4OK || self == .layer7OK }
}

public struct ServerSnapshot: Sendable, Equatable {
    public var backend: String
    public var name: String
    public var address: String
    /// Position in its backend, from 1 (HAProxy's sid).
    public var id: Int
    public var backup: Bool
    /// Weight in force now (set server weight may change it) and the configured one.
    public var weight: Int
    public var configuredWeight: Int
    public var adminState: ServerAdminState
    /// Health checks say it is up (always true without `check`).
    public var up: Bool
    public var checked: Bool
    /// HAProxy's status text: "UP", "DOWN", "MAINT", "DRAIN", "no check", "UP 1/3" (going
    /// down), "DOWN 1/2" (going up).
    public var status: String
    /// Seconds since the last UP/DOWN/MAINT change, and seconds spent DOWN in total.
    public var lastChangeSeconds: Int
    public var downtimeSeconds: Int
    public var checkStatus: CheckStatus?
    /// Layer 7 code where one exists (the CONNACK return code), else nil.
    public var checkCode: Int?
    public var checkDurationMs: Int?
    /// The last check's description ("Connection refused", "TCPCHK did not match content").
    public var checkDescription: String
    /// Seconds since the last check finished; nil before the first.
    public var lastCheckSeconds: Int?
    /// Failed checks, and UP -> DOWN transitions (chkfail, chkdown).
    public var checksFailed: UInt64
    public var downTransitions: UInt64
    public var rise: Int
    public var fall: Int
    public var sessionsCurrent: Int
    public var sessionsMax: Int
    public var sessionsTotal: UInt64
    public var sessionLimit: Int?
    public var bytesIn: UInt64
    public var bytesOut: UInt64
    public var connectErrors: UInt64
    public var retries: UInt64
    public var redispatches: UInt64
    public var clientAborts: UInt64
    public var serverAborts: UInt64
    /// Times the balancer (or the stick table) chose it (lbtot).
    public var selected: UInt64
    /// Connection attempts that found no free address and port in its `source` pool.
    public var sourceExhausted: UInt64
    /// Seconds since its last new session; nil if none yet.
    public var lastSessionSeconds: Int?

    public init(backend: String, name: String, address: String, id: Int) {
        self.backend = backend
        self.name = name
        self.address = address
        self.id = id
        backup = false
        weight = 1
        configuredWeight = 1
        adminState = .ready
        up = true
        checked = false
        status = "no check"
        lastChangeSeconds = 0
        downtimeSeconds = 0
        checkDescription = ""
        checksFailed = 0
        downTransitions = 0
        rise = 2
        fall = 3
        sessionsCurrent = 0
        sessionsMax = 0
        sessionsTotal = 0
        bytesIn = 0
        bytesOut = 0
        connectErrors = 0
        retries = 0
        redispatches = 0
        clientAborts = 0
        serverAborts = 0
        selected = 0
        sourceExhausted = 0
    }
}

public struct FrontendSnapshot: Sendable, Equatable {
    public var name: String
    /// Listening addresses, as bound.
    public var binds: [String]
    /// "tcp", or "http" for a stats frontend.
    public var mode: String
    public var sessionsCurrent: Int
    public var sessionsMax: Int
    public var sessionLimit: Int?
    public var sessionsTotal: UInt64
    public var bytesIn: UInt64
    public var bytesOut: UInt64
    /// Closed by `tcp-request connection reject` rules or maxconn (dcon / dreq).
    public var deniedConnections: UInt64
    /// Closed before reaching a server: not MQTT, a bad PROXY header, an incomplete preamble (ereq).
    public var requestErrors: UInt64
    /// Not-MQTT rejections by reason (MQTTPeek's names), only non-zero ones.
    public var mqttRejectedByReason: [String: UInt64]

    public init(name: String) {
        self.name = name
        binds = []
        mode = "tcp"
        sessionsCurrent = 0
        sessionsMax = 0
        sessionsTotal = 0
        bytesIn = 0
        bytesOut = 0
        deniedConnections = 0
        requestErrors = 0
        mqttRejectedByReason = [:]
    }
}

public struct BackendSnapshot: Sendable, Equatable {
    public var name: String
    public var balance: String
    /// "UP" when at least one server takes connections, else "DOWN".
    public var status: String
    public var sessionsCurrent: Int
    public var sessionsMax: Int
    public var sessionsTotal: UInt64
    public var bytesIn: UInt64
    public var bytesOut: UInt64
    public var connectErrors: UInt64
    public var retries: UInt64
    public var redispatches: UInt64
    /// Sum of the weights of the servers taking connections, and how many of them there are.
    public var weight: Int
    public var activeServers: Int
    public var backupServers: Int
    public var lastChangeSeconds: Int
    public var downtimeSeconds: Int
    /// Stick-table entries in use and its size; nil without a stick table.
    public var stickEntries: Int?
    public var stickSize: Int?

    public init(name: String) {
        self.name = name
        balance = "roundrobin"
        status = "UP"
        sessionsCurrent = 0
        sessionsMax = 0
        sessionsTotal = 0
        bytesIn = 0
        bytesOut = 0
        connectErrors = 0
        retries = 0
        redispatches = 0
        weight = 0
        activeServers = 0
        backupServers = 0
        lastChangeSeconds = 0
        downtimeSeconds = 0
    }
}

/// One worker (core) of the configuration serving now.
public struct WorkerLoad: Sendable, Equatable {
    public var index: Int
    public var cpu: Int?
    public var active: UInt64
    public var accepted: UInt64
    public var loopTurns: UInt64
    public var completions: UInt64

    public init(index: Int, cpu: Int?, active: UInt64, accepted: UInt64, loopTurns: UInt64, completions: UInt64) {
        self.index = index
        self.cpu = cpu
        self.active = active
        self.accepted = accepted
        self.loopTurns = loopTurns
        self.completions = completions
    }
}

public struct StatsSnapshot: Sendable {
    public var version: String
    public var pid: Int
    /// Unix time the process started, and seconds since.
    public var startedAtSeconds: Int
    public var uptimeSeconds: Int
    public var maxConnections: Int
    public var currentConnections: Int
    /// The configuration generation serving (1, then +1 per reload).
    public var generation: Int
    public var workers: [WorkerLoad]
    /// Every engine counter, summed over workers and reloads (Counter's names).
    public var counters: CounterValues
    public var frontends: [FrontendSnapshot]
    public var backends: [BackendSnapshot]
    public var servers: [ServerSnapshot]

    public init(version: String, pid: Int, startedAtSeconds: Int, uptimeSeconds: Int, maxConnections: Int,
                currentConnections: Int, generation: Int, workers: [WorkerLoad], counters: CounterValues,
                frontends: [FrontendSnapshot], backends: [BackendSnapshot], servers: [ServerSnapshot]) {
        self.version = version
        self.pid = pid
        self.startedAtSeconds = startedAtSeconds
        self.uptimeSeconds = uptimeSeconds
        self.maxConnections = maxConnections
        self.currentConnections = currentConnections
        self.generation = generation
        self.workers = workers
        self.counters = counters
        self.frontends = frontends
        self.backends = backends
        self.servers = servers
    }
}

/// One stick-table entry as `show table` prints it. Keys are kept as their 64-bit hash (see
/// StickTable), so the key shown is that hash.
public struct StickEntrySnapshot: Sendable, Equatable {
    public var keyHash: UInt64
    public var server: String
    public var expiresInMs: Int

    public init(keyHash: UInt64, server: String, expiresInMs: Int) {
        self.keyHash = keyHash
        self.server = server
        self.expiresInMs = expiresInMs
    }
}

/// Why a runtime command failed, in words for the operator.
public struct AdminError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// What the stats page (admin) and the stats socket may ask of the engine. Engine conforms;
/// tests may give a fake to the renderers' unit tests.
public protocol AdminControl: AnyObject, Sendable {
    func snapshot() -> StatsSnapshot
    /// `set server B/S state ready|drain|maint`, `enable|disable server B/S`.
    func setServerState(backend: String, server: String, state: ServerAdminState) throws(AdminError)
    /// `set server B/S weight N` (0-256).
    func setServerWeight(backend: String, server: String, weight: Int) throws(AdminError)
    /// `set server B/S health up|down` (forces the checked state until the next check says otherwise).
    func setServerHealth(backend: String, server: String, up: Bool) throws(AdminError)
    /// `show table` entries of the backend's stick table (at most `limit`).
    func stickTableEntries(backend: String, limit: Int) throws(AdminError) -> [StickEntrySnapshot]
    /// `clear table`: empties it; returns how many entries went.
    func clearStickTable(backend: String) throws(AdminError) -> Int
}
