// Where log lines go: `log <address> [len N] [format F] <facility> [level [minlevel]]`, in the
// global section and in proxies. Plain values; sending logs is not this file's business.

/// The 24 syslog facilities HAProxy accepts, with their syslog codes.
public enum SyslogFacility: String, Sendable, CaseIterable {
    case kern, user, mail, daemon, auth, syslog, lpr, news
    case uucp, cron, auth2, ftp, ntp, audit, alert, cron2
    case local0, local1, local2, local3, local4, local5, local6, local7

    /// The facility number in a syslog PRI (HAProxy's order, which is syslog's).
    public var code: Int { Self.allCases.firstIndex(of: self)! }
}

/// The eight syslog severities, most severe first.
public enum SyslogLevel: String, Sendable, CaseIterable, Comparable {
    case emerg, alert, crit, err, warning, notice, info, debug

    /// The severity number in a syslog PRI: 0 (emerg) to 7 (debug).
    public var severity: Int { Self.allCases.firstIndex(of: self)! }

    /// `a < b` when a is more severe than b.
    public static func < (lhs: SyslogLevel, rhs: SyslogLevel) -> Bool {
        lhs.severity < rhs.severity
    }
}

/// One log destination.
public struct LogTarget: Sendable, Equatable {
    public enum Destination: Sendable, Equatable {
        /// A syslog server over UDP; the port defaults to 514.
        case udp(host: String, port: Int)
        /// A UNIX datagram socket such as /dev/log.
        case unixSocket(path: String)
        case stdout
        case stderr
    }

    /// The standard syslog port, used when an address has none.
    public static let defaultSyslogPort = 514

    public var destination: Destination
    public var facility: SyslogFacility
    /// Only messages at least this severe are sent; nil sends all.
    public var level: SyslogLevel?
    /// Messages more severe than this are sent at this level; nil leaves them.
    public var minimumLevel: SyslogLevel?
    /// `len`: maximum line length in bytes.
    public var maxLengthBytes: Int?
    /// `format`: rfc3164, rfc5424, raw, short, ...
    public var format: String?
    public var location: SourceLocation

    public init(
        destination: Destination, facility: SyslogFacility, level: SyslogLevel? = nil,
        minimumLevel: SyslogLevel? = nil, maxLengthBytes: Int? = nil, format: String? = nil,
        location: SourceLocation
    ) {
        self.destination = destination
        self.facility = facility
        self.level = level
        self.minimumLevel = minimumLevel
        self.maxLengthBytes = maxLengthBytes
        self.format = format
        self.location = location
    }
}
