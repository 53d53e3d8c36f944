// Log: operator-facing lines for start-up, errors and state changes. Cold path only: one
// write(2) per line to stderr, so lines from different threads never interleave.
import Glibc

public final class Log: @unchecked Sendable {
    public enum Level: Int, Comparable, Sendable {
        case debug, info, warning, error
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
        var tag: String {
            switch self {
            case .debug: return "DEBUG"
            case .info: return "INFO"
            case .warning: return "WARNING"
            case .error: return "ALERT"
            }
        }
    }

    public let minimum: Level
    public let fd: Int32

    public init(minimum: Level = .info, fd: Int32 = 2) {
        self.minimum = minimum
        self.fd = fd
    }

    public func log(_ level: Level, _ message: @autoclosure () -> String) {
        guard level >= minimum else { return }
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var tmv = tm()
        var secs = ts.tv_sec
        gmtime_r(&secs, &tmv)
        let stamp = String(format4: Int(tmv.tm_year) + 1900) + "-" + String(pad2: Int(tmv.tm_mon) + 1) + "-" + String(pad2: Int(tmv.tm_mday))
            + "T" + String(pad2: Int(tmv.tm_hour)) + ":" + String(pad2: Int(tmv.tm_min)) + ":" + String(pad2: Int(tmv.tm_sec))
            + "." + String(pad3: ts.tv_nsec / 1_000_000) + "Z"
        let line = "[\(level.tag)] \(stamp) ringproxy: \(message())\n"
        line.utf8CString.withUnsafeBufferPointer { buf in
            _ = write(fd, buf.baseAddress, buf.count - 1)
        }
    }

    public func info(_ message: @autoclosure () -> String) { log(.info, message()) }
    public func warning(_ message: @autoclosure () -> String) { log(.warning, message()) }
    public func error(_ message: @autoclosure () -> String) { log(.error, message()) }
    public func debug(_ message: @autoclosure () -> String) { log(.debug, message()) }
}

fileprivate extension String {
    init(pad2 v: Int) { self = v < 10 ? "0\(v)" : "\(v)" }
    init(pad3 v: Int) { self = v < 10 ? "00\(v)" : (v < 100 ? "0\(v)" : "\(v)") }
    init(format4 v: Int) { self = "\(v)" }
}
