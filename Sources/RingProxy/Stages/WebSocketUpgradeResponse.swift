// WebSocketUpgradeResponse: a server's answer to the upgrade request the proxy replays to it
// (RFC 6455 §4.1, client side, steps 1-6 of reading the response). Only its verdict matters: the
// client already has the proxy's 101, so this head is read and dropped, never forwarded. Pure:
// never allocates, never reads past what it is given; fuzzed with the request parser.

/// What a server's answer says.
enum WebSocketUpgradeResponseVerdict: Equatable {
    /// A valid beginning; wait for more.
    case needMore
    /// A 101 that completes the handshake; its head is the first `headLength` bytes (frames
    /// from the server may follow).
    case accepted(headLength: Int)
    /// A well-formed status line with a status other than 101: the server refused.
    case refused(status: Int)
    /// A 101 this proxy cannot relay, or no HTTP/1.1 response at all.
    case invalid(WebSocketUpgradeResponseProblem)
}

enum WebSocketUpgradeResponseProblem: UInt8, CaseIterable, CustomStringConvertible {
    /// Not an HTTP/1.1 status line and field lines (bare CR/LF, controls, bad syntax).
    case malformed = 1
    /// No end of head within `WebSocketUpgradeResponse.headMaxBytes`.
    case tooLarge
    /// RFC 6455 §4.1 (client, 2-3): Upgrade must list "websocket", Connection "Upgrade".
    case notUpgraded
    /// RFC 6455 §4.1 (client, 4): Sec-WebSocket-Accept missing or not the expected value.
    case badAccept
    /// RFC 6455 §4.1 (client, 5): the server accepted an extension. The proxy's 101 told the
    /// client there are none, so the server's frames could not be relayed as they are.
    case extensionAccepted

    var description: String {
        switch self {
        case .malformed: return "malformed HTTP response to the WebSocket upgrade"
        case .tooLarge: return "HTTP response head to the WebSocket upgrade too large"
        case .notUpgraded: return "101 without Upgrade: websocket and Connection: upgrade"
        case .badAccept: return "101 with a wrong Sec-WebSocket-Accept"
        case .extensionAccepted: return "101 accepting a WebSocket extension"
        }
    }
}

enum WebSocketUpgradeResponse {
    /// The head must end within this many bytes.
    static let headMaxBytes = 4096

    /// Reads the server's answer at the start of `bytes`. `expectedAccept`: the
    /// `WebSocketUpgrade.acceptLengthBytes` characters Sec-WebSocket-Accept must carry (from
    /// `WebSocketUpgrade.acceptValue` of the key replayed), or nil not to check it.
    static func parse(_ bytes: UnsafeRawBufferPointer, expectedAccept: UnsafeRawPointer?) -> WebSocketUpgradeResponseVerdict {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return .needMore }
        var position = 0
        var upgrade = false, connection = false, accept = false, extensions = false
        while true {
            let (start, end, next): (Int, Int, Int)
            switch HTTPHead.line(base, count: bytes.count, start: position, lineMaxBytes: headMaxBytes, headMaxBytes: headMaxBytes) {
            case .line(let s, let e, let n): (start, end, next) = (s, e, n)
            case .needMore: return .needMore
            case .malformed, .lineTooLong: return .invalid(.malformed)
            case .headTooLarge: return .invalid(.tooLarge)
            }
            position = next
            if start == 0 {
                // RFC 9112 §4: "HTTP/1.1" SP 3DIGIT SP [reason-phrase].
                guard end >= 12, HTTPHead.equals(base, 0, 9, "HTTP/1.1 ", ignoringCase: false),
                      isDigit(base, 9), isDigit(base, 10), isDigit(base, 11),
                      end == 12 || HTTPHead.byte(base, 12) == 0x20 else { return .invalid(.malformed) }
                let status = Int(HTTPHead.byte(base, 9) - 0x30) * 100 + Int(HTTPHead.byte(base, 10) - 0x30) * 10 + Int(HTTPHead.byte(base, 11) - 0x30)
                if status != 101 { return .refused(status: status) }
                continue
            }
            if start == end { break }
            guard let (nameEnd, valueStart, valueEnd) = HTTPHead.field(base, start: start, end: end) else { return .invalid(.malformed) }
            if HTTPHead.equals(base, start, nameEnd, "upgrade", ignoringCase: true) {
                upgrade = upgrade || HTTPHead.list(base, valueStart, valueEnd, contains: "websocket", ignoringCase: true)
            } else if HTTPHead.equals(base, start, nameEnd, "connection", ignoringCase: true) {
                connection = connection || HTTPHead.list(base, valueStart, valueEnd, contains: "upgrade", ignoringCase: true)
            } else if HTTPHead.equals(base, start, nameEnd, "sec-websocket-accept", ignoringCase: true) {
                accept = valueEnd - valueStart == WebSocketUpgrade.acceptLengthBytes
                    && (expectedAccept.map { same(base + valueStart, $0, WebSocketUpgrade.acceptLengthBytes) } ?? true)
            } else if HTTPHead.equals(base, start, nameEnd, "sec-websocket-extensions", ignoringCase: true) {
                extensions = extensions || valueEnd > valueStart
            }
        }
        if !upgrade || !connection { return .invalid(.notUpgraded) }
        if !accept { return .invalid(.badAccept) }
        if extensions { return .invalid(.extensionAccepted) }
        return .accepted(headLength: position)
    }

    @inline(__always)
    private static func isDigit(_ base: UnsafeRawPointer, _ i: Int) -> Bool {
        let b = HTTPHead.byte(base, i)
        return b >= 0x30 && b <= 0x39
    }

    private static func same(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
        var i = 0
        while i < n {
            if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
            i += 1
        }
        return true
    }
}
