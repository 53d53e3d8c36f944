// The engine-facing model of the admin side: a stats page (a `mode http` frontend or listen
// whose only job is `stats ...`) and the `global` `stats socket`. Plain values, mapped from the
// file by EngineConfig+Stats.swift; served by Admin/AdminServer off the workers' rings.
import Glibc

/// An IPv4 or IPv6 network (`127.0.0.0/8`, `::1`, `10.0.0.5`), for `stats admin if { src ... }`.
public struct AddressPrefix: Sendable, Equatable, CustomStringConvertible {
    /// 4 or 16 bytes, network order, host bits cleared.
    public var bytes: [UInt8]
    public var length: Int

    /// Parses `addr` or `addr/len`; nil when it is neither an IPv4 nor an IPv6 literal.
    public static func parse(_ text: String) -> AddressPrefix? {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let host = String(parts[0])
        var raw = [UInt8](repeating: 0, count: 16)
        let count: Int
        if inet_pton(AF_INET, host, &raw) == 1 { count = 4 } else if inet_pton(AF_INET6, host, &raw) == 1 { count = 16 } else { return nil }
        var length = count * 8
        if parts.count == 2 {
            guard let value = Int(parts[1]), (0...count * 8).contains(value) else { return nil }
            length = value
        }
        var prefix = AddressPrefix(bytes: Array(raw[0..<count]), length: length)
        for i in 0..<count { prefix.bytes[i] &= Self.mask(byte: i, length: length) }
        return prefix
    }

    public init(bytes: [UInt8], length: Int) {
        precondition(bytes.count == 4 || bytes.count == 16)
        self.bytes = bytes
        self.length = length
    }

    private static func mask(byte index: Int, length: Int) -> UInt8 {
        let bits = min(max(length - index * 8, 0), 8)
        return bits == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
    }

    /// Whether `address` (an IPv4-mapped IPv6 address counts as its IPv4 one) is in the network.
    public func contains(_ address: [UInt8]) -> Bool {
        var candidate = address
        if candidate.count == 16 && bytes.count == 4 && candidate[0..<12].elementsEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]) {
            candidate = Array(candidate[12..<16])
        }
        guard candidate.count == bytes.count else { return false }
        for i in 0..<bytes.count where candidate[i] & Self.mask(byte: i, length: length) != bytes[i] { return false }
        return true
    }

    public var description: String {
        var text = [CChar](repeating: 0, count: 64)
        _ = inet_ntop(bytes.count == 4 ? AF_INET : AF_INET6, bytes, &text, socklen_t(text.count))
        let host = String(cString: text)
        return length == bytes.count * 8 ? host : "\(host)/\(length)"
    }
}

/// Who may change servers from the page (`stats admin if ...`).
public enum StatsAdminRule: Sendable, Equatable {
    /// No `stats admin` line: the page only reads.
    case never
    /// `stats admin if TRUE`.
    case always
    /// `stats admin if LOCALHOST` (127.0.0.0/8 and ::1) or `if { src a b/n ... }`.
    case sources([AddressPrefix])

    public static let localhost: StatsAdminRule = .sources([AddressPrefix.parse("127.0.0.0/8")!, AddressPrefix.parse("::1")!])

    /// Whether a client at `address` (raw 4 or 16 bytes) may use the admin actions.
    public func allows(_ address: [UInt8]) -> Bool {
        switch self {
        case .never: return false
        case .always: return true
        case .sources(let prefixes): return prefixes.contains { $0.contains(address) }
        }
    }
}

/// One stats page: a `mode http` frontend (or listen) with `stats` lines and nothing else to do.
public struct StatsPageConfig: Sendable, Equatable {
    public var name: String
    public var binds: [SocketAddress]
    /// `stats uri`: the page's path; `;csv`, `;json` and `/metrics` hang off it (see README).
    public var uri: String
    /// `stats refresh`: the page asks the browser to reload every so often; nil: never.
    public var refreshMs: Int?
    /// `stats realm`, HAProxy's default when not given.
    public var realm: String
    /// `stats auth`: none means no authentication.
    public var credentials: [StatsCredential]
    /// `stats hide-version`.
    public var hideVersion: Bool
    /// `stats admin if ...`.
    public var admin: StatsAdminRule
    /// `timeout http-request`, else this default: a client that has not sent its whole request
    /// by then is answered 408 and closed.
    public var requestTimeoutMs: Int

    public static let defaultRealm = "HAProxy Statistics"
    public static let requestTimeoutMsDefault = 10_000
    /// Connections one page holds at once; at the bound the oldest unanswered one is closed
    /// (AdminLoop), once it has had `youngConnectionGraceMs` to send its request.
    public static let connectionsMax = 64
    /// Past `connectionsMax`, while every unanswered connection is younger than the grace (a
    /// burst of new connections), the page holds up to this many rather than close one that
    /// may not have had the time to send its request; the excess goes once its grace is over.
    public static let connectionsBurstMax = 512
    /// How long a new page connection is safe from eviction: longer than a client's gap
    /// between its connect and its request on a loaded host (scheduling, an interpreter's lock).
    public static let youngConnectionGraceMs = 100
    /// Request line and headers; a request whose head is longer is answered 431.
    public static let requestHeadBytesMax = 8 * 1024

    public init(name: String, binds: [SocketAddress], uri: String = StatsSettings.defaultURI, refreshMs: Int? = nil,
                realm: String = StatsPageConfig.defaultRealm, credentials: [StatsCredential] = [], hideVersion: Bool = false,
                admin: StatsAdminRule = .never, requestTimeoutMs: Int = StatsPageConfig.requestTimeoutMsDefault) {
        self.name = name
        self.binds = binds
        self.uri = uri
        self.refreshMs = refreshMs
        self.realm = realm
        self.credentials = credentials
        self.hideVersion = hideVersion
        self.admin = admin
        self.requestTimeoutMs = requestTimeoutMs
    }
}

/// `stats socket ... level user|operator|admin`: what the socket's commands may do.
public enum StatsSocketLevel: String, Sendable, Comparable, CaseIterable {
    case user, `operator`, admin

    private var rank: Int { StatsSocketLevel.allCases.firstIndex(of: self)! }
    public static func < (a: StatsSocketLevel, b: StatsSocketLevel) -> Bool { a.rank < b.rank }
}

/// `global` `stats socket <path> [mode <octal>] [level <level>]` and `stats timeout`.
public struct StatsSocketConfig: Sendable, Equatable {
    public var path: String
    /// File permissions of the socket (`mode 600`).
    public var mode: UInt32
    /// HAProxy's default level is operator.
    public var level: StatsSocketLevel
    /// `stats timeout`: an idle interactive session is closed after this long (HAProxy: 10 s).
    public var timeoutMs: Int

    public static let timeoutMsDefault = 10_000
    public static let connectionsMax = 16
    /// A command line longer than this is refused and the connection closed.
    public static let lineBytesMax = 4 * 1024

    public init(path: String, mode: UInt32 = 0o600, level: StatsSocketLevel = .operator, timeoutMs: Int = StatsSocketConfig.timeoutMsDefault) {
        self.path = path
        self.mode = mode
        self.level = level
        self.timeoutMs = timeoutMs
    }
}
