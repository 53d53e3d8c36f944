// HealthCheckConfig: how one server is checked, as plain values built from `check`, `inter`,
// `fastinter`, `downinter`, `rise`, `fall`, `addr`, `port`, `timeout check`, `option tcp-check`
// with its `tcp-check` rules, and ringproxy's `option mqtt-check`. The worker that owns the
// server's check (Worker+HealthCheck.swift) runs it on its ring; nothing here does I/O.

/// One step of a check after the connect.
public enum CheckStep: Sendable, Equatable {
    /// `tcp-check send-binary <hex>` / `tcp-check send <string>`: bytes written as they are.
    case send([UInt8])
    /// `tcp-check expect binary <hex>` / `expect string <str>`: the bytes must appear in what the
    /// server sends (within `CheckConfig.responseBytesMax`) before the check times out.
    case expect([UInt8])
    /// `option mqtt-check`: the answer must be a CONNACK with return code 0 (MQTT 3.1.1
    /// §3.2.2.3); any other code fails the check with that code.
    case expectConnack
}

public struct HealthCheckConfig: Sendable, Equatable {
    /// Where the check connects: the server's address, or `addr`/`port` when given.
    public var address: SocketAddress
    public var interMs: Int
    /// While a server is going up or down (health between the ends), and while it is down.
    public var fastinterMs: Int
    public var downinterMs: Int
    public var rise: Int
    public var fall: Int
    /// How long the connect may take (`timeout connect`, at most `inter`), and the rest of the
    /// check (`timeout check`, else `inter`).
    public var connectTimeoutMs: Int
    public var readTimeoutMs: Int
    /// Empty: a layer 4 check (the connect is the check).
    public var steps: [CheckStep]
    /// `check-send-proxy`: the check starts with a PROXY header (v1 UNKNOWN or v2 LOCAL: the
    /// check relays no client, as the specification's section 2.1/2.2 foresee for health checks).
    public var sendProxy: ProxyProtocolVersion?
    /// Describes the check in the stats and the log: "layer 4", "tcp-check", "mqtt".
    public var kind: String

    /// The most response bytes an `expect` looks through.
    public static let responseBytesMax = 1024

    public init(address: SocketAddress, interMs: Int = 2_000, fastinterMs: Int? = nil, downinterMs: Int? = nil,
                rise: Int = 2, fall: Int = 3, connectTimeoutMs: Int? = nil, readTimeoutMs: Int? = nil,
                steps: [CheckStep] = [], sendProxy: ProxyProtocolVersion? = nil, kind: String = "layer 4") {
        self.address = address
        self.interMs = interMs
        self.fastinterMs = fastinterMs ?? interMs
        self.downinterMs = downinterMs ?? interMs
        self.rise = rise
        self.fall = fall
        self.connectTimeoutMs = connectTimeoutMs ?? interMs
        self.readTimeoutMs = readTimeoutMs ?? interMs
        self.steps = steps
        self.sendProxy = sendProxy
        self.kind = kind
    }

    /// ringproxy's MQTT check: CONNECT (3.1.1, clean session, empty client id so that the
    /// broker assigns one and no two checkers collide, keepalive 0), expect CONNACK 0, then
    /// DISCONNECT so the broker logs a clean end.
    public static let mqttSteps: [CheckStep] = [
        .send([0x10, 12, 0x00, 0x04, 0x4D, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x00, 0x00, 0x00]),
        .expectConnack,
        .send([0xE0, 0x00]),
    ]
}

/// `on-error`: what `observe layer4` does once `error-limit` consecutive connections of real
/// traffic to a server have failed.
public enum OnErrorAction: String, Sendable, CaseIterable {
    /// Check again at `fastinter` (HAProxy's default).
    case fastinter
    /// Count one failed check.
    case failCheck = "fail-check"
    /// Leave one check between the server and DOWN.
    case suddenDeath = "sudden-death"
    /// Mark it DOWN at once.
    case markDown = "mark-down"
}

public struct ObserveConfig: Sendable, Equatable {
    public var errorLimit: Int
    public var onError: OnErrorAction

    public init(errorLimit: Int = 10, onError: OnErrorAction = .fastinter) {
        self.errorLimit = errorLimit
        self.onError = onError
    }
}
