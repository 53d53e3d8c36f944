// ConnectionLog: one line per closed connection in HAProxy's `option tcplog` layout, with the
// MQTT client id appended in braces:
//   127.0.0.1:50446 [26/Nov/2026:01:24:33.123] mqtt_servers mqtt_backend/emqx1 0/1/5007 212 -- 3/3/2/1/0 0/0 {device-42}
// Lines are formatted into a per-worker buffer with no allocation and written once per loop
// turn (or when the buffer fills): one write(2) to stderr, or one sendmmsg(2) of RFC 3164
// datagrams to a syslog server over UDP. Nothing here runs per packet.
import CUring
import Glibc

public struct LogConfig: Sendable, Equatable {
    public enum Destination: Sendable, Equatable {
        case stderr
        case stdout
        /// Syslog over UDP (RFC 3164), e.g. `log 127.0.0.1 local3 info`.
        case syslog(SocketAddress)
    }
    public var destination: Destination = .stderr
    /// Syslog facility code (local3 = 19) and severity (info = 6).
    public var facility: Int = 19
    public var severity: Int = 6

    public init(destination: Destination = .stderr, facility: Int = 19, severity: Int = 6) {
        self.destination = destination
        self.facility = facility
        self.severity = severity
    }
}

/// Why a connection ended, as HAProxy's two-letter termination state: who ended it (C client,
/// S server, c client timeout, s server timeout, P proxy, R resource, - normal) and in which
/// phase (R waiting for the request/CONNECT, C connecting, D data).
enum Termination: UInt8 {
    case normal = 0          // --
    case clientAbort         // CD
    case serverAbort         // SD
    case clientTimeout       // cD
    case serverTimeout       // sD
    case connectFailed       // SC
    case connectTimeout      // sC
    case rejected            // PR  (not MQTT)
    case inspectTimeout      // cR
    case inspectAbort        // CR
    case maxconn             // PC  (global or frontend maxconn)
    case stopping            // KD  (killed: drain period over)
    case evictedPreamble     // RR  (buffer pool low, or TLS handshakes at their bound: a preamble gave way)
    case evictedStalled      // RD  (buffer pool low: stalled direction gave way)
    case denied              // PR  (a tcp-request connection reject rule)
    case resourceAtConnect   // RC  (no owned buffer for the PROXY header to the server)
    case serverDown          // DD  (its server went DOWN: on-marked-down shutdown-sessions,
                             //      or a backup's when an active server came back)

    var code: (UInt8, UInt8) {
        switch self {
        case .normal: return (0x2D, 0x2D)
        case .clientAbort: return (0x43, 0x44)
        case .serverAbort: return (0x53, 0x44)
        case .clientTimeout: return (0x63, 0x44)
        case .serverTimeout: return (0x73, 0x44)
        case .connectFailed: return (0x53, 0x43)
        case .connectTimeout: return (0x73, 0x43)
        case .rejected: return (0x50, 0x52)
        case .inspectTimeout: return (0x63, 0x52)
        case .inspectAbort: return (0x43, 0x52)
        case .maxconn: return (0x50, 0x43)
        case .stopping: return (0x4B, 0x44)
        case .evictedPreamble: return (0x52, 0x52)
        case .evictedStalled: return (0x52, 0x44)
        case .denied: return (0x50, 0x52)
        case .resourceAtConnect: return (0x52, 0x43)
        case .serverDown: return (0x44, 0x44)
        }
    }
}

/// A fixed-capacity byte buffer with digit and text appenders that never allocate.
struct LineBuffer {
    let base: UnsafeMutablePointer<UInt8>
    let capacity: Int
    var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    var remaining: Int { capacity - count }

    @inline(__always) mutating func byte(_ b: UInt8) {
        if count < capacity { base[count] = b; count += 1 }
    }

    mutating func bytes(_ p: UnsafePointer<UInt8>, _ n: Int) {
        let k = min(n, remaining)
        (base + count).update(from: p, count: k)
        count += k
    }

    mutating func decimal(_ value: Int, width: Int = 0) {
        var v = value
        if v < 0 { byte(0x2D); v = -v }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[n] = UInt8(0x30 + v % 10)
                v /= 10
                n += 1
            } while v > 0 && n < 20
            var pad = width - n
            while pad > 0 { byte(0x30); pad -= 1 }
            while n > 0 { n -= 1; byte(d[n]) }
        }
    }

    /// Bytes with anything outside printable ASCII (and braces, spaces) replaced by '?', so a
    /// client id can never break a log line.
    mutating func sanitized(_ p: UnsafeRawPointer, _ n: Int) {
        var i = 0
        while i < n {
            let b = p.load(fromByteOffset: i, as: UInt8.self)
            byte(b > 0x20 && b < 0x7F && b != 0x7B && b != 0x7D ? b : 0x3F)
            i += 1
        }
    }
}

/// Names (frontends, backends, servers) as one flat byte table, so formatting reads them with
/// no Array or String traffic.
struct NameTable {
    let bytes: UnsafeMutablePointer<UInt8>
    let offsets: UnsafeMutablePointer<Int>

    init(_ names: [String]) {
        let utf8 = names.map { Array($0.utf8) }
        let total = utf8.reduce(0) { $0 + $1.count }
        bytes = .allocate(capacity: max(1, total))
        offsets = .allocate(capacity: names.count + 1)
        var at = 0
        for (i, name) in utf8.enumerated() {
            offsets[i] = at
            (bytes + at).initialize(from: name, count: name.count)
            at += name.count
        }
        offsets[names.count] = at
    }

    func append(_ i: Int, to line: inout LineBuffer) {
        line.bytes(bytes + offsets[i], offsets[i + 1] - offsets[i])
    }

    /// Name i's bytes, for the time of `body`.
    func withName<R>(_ i: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        body(UnsafeRawBufferPointer(start: bytes + offsets[i], count: offsets[i + 1] - offsets[i]))
    }

    func deallocate() {
        bytes.deallocate()
        offsets.deallocate()
    }
}

/// Per-worker writer of connection log lines.
struct ConnectionLog {
    let config: LogConfig
    var buffer: LineBuffer
    /// Start of each line in `buffer` (for syslog: one datagram a line).
    let lineStarts: UnsafeMutablePointer<Int>
    var lines = 0
    static let linesMax = 256
    let fd: Int32
    let destinationPointer: UnsafeMutablePointer<sockaddr_in6>
    var destinationLength: socklen_t
    let header: LineBuffer        // "<PRI>" for syslog
    var dropped: UInt64 = 0
    let pid = Int(getpid())

    init(config: LogConfig) {
        self.config = config
        buffer = LineBuffer(capacity: 64 * 1024)
        lineStarts = .allocate(capacity: Self.linesMax + 1)
        destinationPointer = .allocate(capacity: 1)
        destinationPointer.initialize(to: sockaddr_in6())
        var header = LineBuffer(capacity: 8)
        switch config.destination {
        case .stderr:
            fd = 2
            destinationLength = 0
        case .stdout:
            fd = 1
            destinationLength = 0
        case .syslog(let address):
            fd = socket(address.family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            destinationPointer.pointee = address.storage
            destinationLength = address.length
            header.byte(0x3C)
            header.decimal(config.facility * 8 + config.severity)
            header.byte(0x3E)
        }
        self.header = header
    }

    var isSyslog: Bool { destinationLength > 0 }

    /// Gives back the buffers and the syslog socket (a worker retired by a reload).
    func release() {
        buffer.base.deallocate()
        header.base.deallocate()
        lineStarts.deallocate()
        destinationPointer.deallocate()
        if fd > 2 { close(fd) }
    }

    /// Starts a line; returns false when the buffer cannot take another one (flush first).
    mutating func beginLine(wallSeconds: Int) -> Bool {
        guard lines < Self.linesMax, buffer.remaining > 1024 else { return false }
        lineStarts[lines] = buffer.count
        if isSyslog {
            // RFC 3164: <PRI>Mmm dd hh:mm:ss tag[pid]: message
            buffer.bytes(header.base, header.count)
            var t = wallSeconds
            var tmv = tm()
            localtime_r(&t, &tmv)
            Self.month(Int(tmv.tm_mon), &buffer)
            buffer.byte(0x20)
            let day = Int(tmv.tm_mday)
            if day < 10 { buffer.byte(0x20) }
            buffer.decimal(day)
            buffer.byte(0x20)
            buffer.decimal(Int(tmv.tm_hour), width: 2); buffer.byte(0x3A)
            buffer.decimal(Int(tmv.tm_min), width: 2); buffer.byte(0x3A)
            buffer.decimal(Int(tmv.tm_sec), width: 2)
            for b in " ringproxy[".utf8 { buffer.byte(b) }
            buffer.decimal(pid)
            buffer.byte(0x5D); buffer.byte(0x3A); buffer.byte(0x20)
        }
        return true
    }

    mutating func endLine() {
        if !isSyslog { buffer.byte(0x0A) }
        lines += 1
        lineStarts[lines] = buffer.count
    }

    static func month(_ m: Int, _ line: inout LineBuffer) {
        let names: StaticString = "JanFebMarAprMayJunJulAugSepOctNovDec"
        let i = max(0, min(11, m)) * 3
        line.bytes(names.utf8Start + i, 3)
    }

    /// Writes what is buffered: one syscall for all of it.
    mutating func flush() {
        guard lines > 0 else { return }
        if isSyslog {
            let sent = cu_send_datagrams(fd, destinationPointer, UInt32(destinationLength), buffer.base, lineStarts, Int32(lines))
            if sent < lines { dropped &+= UInt64(lines - max(0, Int(sent))) }
        } else {
            var offset = 0
            while offset < buffer.count {
                let n = write(fd, buffer.base + offset, buffer.count - offset)
                if n <= 0 { dropped &+= UInt64(lines); break }
                offset += n
            }
        }
        buffer.count = 0
        lines = 0
    }
}
