// HealthCheck: one server's check as its owning worker runs it: the compiled steps (payloads in
// one allocation the kernel may read while a send is in flight), the response buffer, the two
// timeouts the kernel reads through pointers, and the health counter. One per checked server
// in the whole process (Engine assigns each to one worker), so N cores never check N times.
import CUring
import Glibc

/// A step with its bytes in `HealthCheck.payload`.
enum CompiledCheckStep {
    case send(offset: Int, length: Int)
    case expect(offset: Int, length: Int)
    case expectConnack
}

/// What a finished check found.
struct CheckOutcome {
    var status: CheckStatus
    var code: Int?
    var description: String
}

struct HealthCheck {
    /// The server's global index and its backend.
    let server: Int
    let backend: Int
    let config: HealthCheckConfig
    let steps: [CompiledCheckStep]
    /// Send payloads (the PROXY header first when the check sends one), then expect patterns.
    let payload: UnsafeMutableRawPointer
    /// What the server answered so far (HealthCheckConfig.responseBytesMax).
    let response: UnsafeMutableRawPointer
    /// [0] connect timeout, [1] read timeout: the kernel reads them at submission.
    let timeouts: UnsafeMutablePointer<__kernel_timespec>

    /// Bumped per run: completions of an earlier run are recognised and dropped.
    var generation: UInt16 = 0
    var running = false
    var pendingOps: Int32 = 0
    var socketFailed = false
    var startedAtMs = 0
    /// The step in progress, bytes of a send already sent, bytes received, where the next
    /// expect starts looking.
    var step = 0
    var sentBytes = 0
    var receivedBytes = 0
    var searchFrom = 0
    var outcome: CheckOutcome?
    /// HAProxy's health counter (0 ... rise + fall - 1; up from rise on) and the state this
    /// worker last saw, to notice changes others made (the operator, observers).
    var health: Int
    var knownUp = true
    /// Check at fastinter next time (on-error fastinter).
    var hurry = false

    init(server: Int, backend: Int, config: HealthCheckConfig) {
        self.server = server
        self.backend = backend
        self.config = config
        health = config.rise
        var bytes: [UInt8] = []
        var steps: [CompiledCheckStep] = []
        // PROXY protocol for a health check (proxy-protocol.txt §2.1 and §2.2): v1 "UNKNOWN" and
        // v2 LOCAL say that the connection relays no client, which is what a check is.
        switch config.sendProxy {
        case .v1?:
            let header = Array("PROXY UNKNOWN\r\n".utf8)
            steps.append(.send(offset: bytes.count, length: header.count))
            bytes += header
        case .v2?:
            let header: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x20, 0x00, 0x00, 0x00]
            steps.append(.send(offset: bytes.count, length: header.count))
            bytes += header
        case nil:
            break
        }
        for step in config.steps {
            switch step {
            case .send(let data):
                steps.append(.send(offset: bytes.count, length: data.count))
                bytes += data
            case .expect(let pattern):
                steps.append(.expect(offset: bytes.count, length: pattern.count))
                bytes += pattern
            case .expectConnack:
                steps.append(.expectConnack)
            }
        }
        self.steps = steps
        payload = .allocate(byteCount: max(1, bytes.count), alignment: 8)
        payload.copyMemory(from: bytes, byteCount: bytes.count)
        response = .allocate(byteCount: HealthCheckConfig.responseBytesMax, alignment: 8)
        timeouts = .allocate(capacity: 2)
        timeouts[0] = Self.timespec(ms: config.connectTimeoutMs)
        timeouts[1] = Self.timespec(ms: config.readTimeoutMs)
    }

    func deallocate() {
        payload.deallocate()
        response.deallocate()
        timeouts.deallocate()
    }

    static func timespec(ms: Int) -> __kernel_timespec {
        __kernel_timespec(tv_sec: Int64(ms / 1000), tv_nsec: Int64(ms % 1000) * 1_000_000)
    }

    /// The top of the health counter: a server there needs `fall` failures to go down.
    var healthMax: Int { config.rise + config.fall - 1 }

    /// When the next check runs: fastinter while going up or down, downinter while down.
    func nextIntervalMs() -> Int {
        if hurry { return config.fastinterMs }
        if knownUp { return health < healthMax ? config.fastinterMs : config.interMs }
        return health == 0 ? config.downinterMs : config.fastinterMs
    }

    /// HAProxy's status text: "UP", "UP 1/3" (going down), "DOWN", "DOWN 1/2" (going up).
    var statusText: String {
        if knownUp { return health < healthMax ? "UP \(health - config.rise + 1)/\(config.fall)" : "UP" }
        return health > 0 ? "DOWN \(health)/\(config.rise)" : "DOWN"
    }

    enum Match {
        case matched
        case needMore
        case failed(CheckOutcome)
    }

    /// Looks for the current expect step's answer in what arrived.
    mutating func matchExpect() -> Match {
        let available = receivedBytes - searchFrom
        switch steps[step] {
        case .expect(let offset, let length):
            if available >= length {
                let haystack = response + searchFrom
                var i = 0
                while i + length <= available {
                    if memcmp(haystack + i, payload + offset, length) == 0 {
                        searchFrom += i + length
                        return .matched
                    }
                    i += 1
                }
            }
            if receivedBytes == HealthCheckConfig.responseBytesMax {
                return .failed(CheckOutcome(status: .layer7Response, code: nil,
                                            description: "TCPCHK did not match content within \(HealthCheckConfig.responseBytesMax) bytes"))
            }
            return .needMore
        case .expectConnack:
            // MQTT 3.1.1 §3.2: 0x20, remaining length 2, flags, return code (5.0 adds properties
            // after the reason code; the code sits at the same place).
            guard available >= 1 else { return .needMore }
            let bytes = (response + searchFrom).assumingMemoryBound(to: UInt8.self)
            guard bytes[0] == 0x20 else {
                return .failed(CheckOutcome(status: .layer7Response, code: nil,
                                            description: "MQTT: expected a CONNACK, got packet type \(bytes[0] >> 4)"))
            }
            guard available >= 4 else { return .needMore }
            let code = Int(bytes[3])
            guard code == 0 else {
                return .failed(CheckOutcome(status: .layer7Response, code: code,
                                            description: "MQTT CONNACK refused: \(Self.connackText(code))"))
            }
            searchFrom += 2 + Int(bytes[1])
            return .matched
        case .send:
            return .matched
        }
    }

    /// MQTT 3.1.1 §3.2.2.3 return codes; MQTT 5.0 reason codes §3.2.2.2 for the common ones.
    static func connackText(_ code: Int) -> String {
        switch code {
        case 1: return "unacceptable protocol version (1)"
        case 2: return "identifier rejected (2)"
        case 3: return "server unavailable (3)"
        case 4: return "bad user name or password (4)"
        case 5: return "not authorized (5)"
        case 0x80: return "unspecified error (0x80)"
        case 0x86: return "bad user name or password (0x86)"
        case 0x87: return "not authorized (0x87)"
        case 0x88: return "server unavailable (0x88)"
        case 0x89: return "server busy (0x89)"
        case 0x8A: return "banned (0x8A)"
        case 0x9F: return "connection rate exceeded (0x9F)"
        default: return "return code \(code)"
        }
    }
}

extension CheckStatus {
    /// HAProxy's words for a check result, as its "reason:" in state change lines.
    var reason: String {
        switch self {
        case .initial: return "Initializing"
        case .layer4OK: return "Layer4 check passed"
        case .layer4Timeout: return "Layer4 timeout"
        case .layer4ConnectionProblem: return "Layer4 connection problem"
        case .layer7OK: return "Layer7 check passed"
        case .layer7Timeout: return "Layer7 timeout"
        case .layer7Response: return "Layer7 invalid response"
        case .socketError: return "Socket error"
        }
    }
}
