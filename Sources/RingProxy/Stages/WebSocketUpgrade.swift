// WebSocketUpgrade: the client's HTTP/1.1 Upgrade request at the start of a WebSocket
// connection (RFC 6455 §4.1, §4.2.1) and the proxy's answers to it: the 101 with its
// Sec-WebSocket-Accept, or a minimal error response. Pure: it reads and writes only the memory
// it is given, never allocates or throws, and is fuzzed (Tests/Fuzz/WebSocketFuzz).

/// The MQTT subprotocols a client may offer (MQTT 3.1.1 §6, MQTT 5.0 §6: "mqtt"; MQTT 3.1
/// clients such as older paho versions offer "mqttv3.1").
struct WebSocketSubprotocols: OptionSet, Equatable {
    let rawValue: UInt8
    static let mqtt = WebSocketSubprotocols(rawValue: 1 << 0)
    static let mqttv31 = WebSocketSubprotocols(rawValue: 1 << 1)
}

/// The subprotocol the 101 names: one the client offered (RFC 6455 §4.2.2), or none.
enum WebSocketSubprotocol: UInt8, Equatable {
    case none
    case mqtt
    case mqttv31
}

/// What an accepted upgrade request says. Offsets are into the bytes given to `parse`.
struct WebSocketUpgradeRequest: Equatable {
    /// The request-target as sent (path and query): `targetOffset..<targetOffset + targetLength`.
    var targetOffset: Int
    var targetLength: Int
    /// Sec-WebSocket-Key: `WebSocketUpgrade.keyLengthBytes` base64 characters from here.
    var keyOffset: Int
    /// The MQTT subprotocols in Sec-WebSocket-Protocol.
    var offered: WebSocketSubprotocols
    /// The client offered extensions (Sec-WebSocket-Extensions). The proxy's 101 accepts none,
    /// so a replay of this head to a server must not let the server accept any either.
    var offersExtensions: Bool

    /// The subprotocol to answer: "mqtt" when offered, else "mqttv3.1" when offered.
    var subprotocol: WebSocketSubprotocol {
        offered.contains(.mqtt) ? .mqtt : offered.contains(.mqttv31) ? .mqttv31 : .none
    }
}

/// What a listener accepts; plain values sized at start-up.
struct WebSocketUpgradePolicy {
    /// The path the request-target must have (exact bytes, the query ignored), or nil for any.
    /// The memory belongs to the caller and must outlive every `parse` that uses the policy.
    var path: UnsafeRawBufferPointer?
    /// Refuse clients that offer neither "mqtt" nor "mqttv3.1".
    var requiresMQTTSubprotocol = false
    /// The head (request line, fields, empty line) must end within this many bytes: else 431.
    var headerMaxBytes = 8192
    /// The longest line, CRLF excluded: else 400.
    var lineMaxBytes = 4096
    /// The most header field lines: else 431.
    var headerLinesMax = 64

    init(path: UnsafeRawBufferPointer? = nil, requiresMQTTSubprotocol: Bool = false) {
        self.path = path
        self.requiresMQTTSubprotocol = requiresMQTTSubprotocol
    }
}

/// Why an upgrade request is refused: StageRejection.code for the `.webSocketUpgrade` stage
/// (codes below 32; WebSocketFrameRejection uses 32 and up), with the status to answer.
enum WebSocketRejection: UInt8, CaseIterable, CustomStringConvertible {
    /// Not an HTTP/1.1 request head: a bad request line or field line, a bare CR or LF, a NUL
    /// or another control byte, obs-fold (RFC 9112 §2.2, §5.2).
    case malformed = 1
    /// A line longer than `lineMaxBytes`.
    case lineTooLong
    /// No end of head within `headerMaxBytes`.
    case headerTooLarge
    /// More than `headerLinesMax` field lines.
    case tooManyHeaderLines
    /// RFC 6455 §4.1: the method must be GET.
    case methodNotGET
    /// RFC 6455 §4.1: HTTP/1.1 (a version other than 1.1 in a well-formed request line).
    case httpVersionNotSupported
    /// The request-target's path is not the configured one.
    case pathNotFound
    /// RFC 6455 §4.1, RFC 9112 §3.2: exactly one non-empty Host.
    case badHost
    /// RFC 6455 §4.2.1: Upgrade must list "websocket".
    case notWebSocketUpgrade
    /// RFC 6455 §4.2.1: Connection must list "Upgrade".
    case connectionNotUpgrade
    /// RFC 6455 §4.2.1, §4.4: Sec-WebSocket-Version absent, repeated or not 13.
    case unsupportedVersion
    /// RFC 6455 §4.1, §11.3.1: exactly one Sec-WebSocket-Key of 24 base64 characters (16 bytes).
    case badKey
    /// MQTT §6: the client must offer the "mqtt" subprotocol (here: when the policy requires it).
    case noMQTTSubprotocol

    /// The HTTP status to answer with `WebSocketUpgrade.writeError`.
    var httpStatus: Int {
        switch self {
        case .malformed, .lineTooLong, .badHost, .notWebSocketUpgrade, .connectionNotUpgrade, .badKey, .noMQTTSubprotocol: return 400
        case .pathNotFound: return 404
        case .methodNotGET: return 405
        case .unsupportedVersion: return 426
        case .headerTooLarge, .tooManyHeaderLines: return 431
        case .httpVersionNotSupported: return 505
        }
    }

    /// For the log.
    var description: String {
        switch self {
        case .malformed: return "malformed HTTP upgrade request"
        case .lineTooLong: return "HTTP line too long"
        case .headerTooLarge: return "HTTP request head too large"
        case .tooManyHeaderLines: return "too many HTTP header lines"
        case .methodNotGET: return "HTTP method other than GET"
        case .httpVersionNotSupported: return "HTTP version other than 1.1"
        case .pathNotFound: return "WebSocket path not served"
        case .badHost: return "Host header missing, empty or repeated"
        case .notWebSocketUpgrade: return "Upgrade header without websocket"
        case .connectionNotUpgrade: return "Connection header without upgrade"
        case .unsupportedVersion: return "Sec-WebSocket-Version other than 13"
        case .badKey: return "Sec-WebSocket-Key missing, repeated or not 16 bytes of base64"
        case .noMQTTSubprotocol: return "no mqtt WebSocket subprotocol offered"
        }
    }
}

enum WebSocketUpgrade {
    /// RFC 6455 §4.1: base64 of a 16-byte nonce.
    static let keyLengthBytes = 24
    /// RFC 6455 §4.2.2: base64 of a 20-byte SHA-1.
    static let acceptLengthBytes = 28
    /// The most bytes `write101` or `writeError` writes.
    static let writtenMaxBytes = 192

    // MARK: Parsing

    /// Reads the upgrade request at the start of `bytes` (the bytes a connection has sent so
    /// far): `.needMore` while they are a valid beginning, `.reject` as soon as they cannot be
    /// one, `.complete(consumedBytes: head length, request)` once the head (through its empty
    /// line) is whole. Bytes after the head (WebSocket frames) are not read.
    static func parse(_ bytes: UnsafeRawBufferPointer, policy: WebSocketUpgradePolicy) -> StageVerdict<WebSocketUpgradeRequest> {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return .needMore() }
        let count = bytes.count
        var request = WebSocketUpgradeRequest(targetOffset: 0, targetLength: 0, keyOffset: 0, offered: [], offersExtensions: false)
        var position = 0
        var fieldLines = 0
        var hosts = 0, versions = 0, keys = 0
        var versionOK = false, keyOK = false, upgrade = false, connection = false
        while true {
            let (start, end, next): (Int, Int, Int)
            switch HTTPHead.line(base, count: count, start: position, lineMaxBytes: policy.lineMaxBytes, headMaxBytes: policy.headerMaxBytes) {
            case .line(let s, let e, let n): (start, end, next) = (s, e, n)
            case .needMore: return .needMore()
            case .malformed: return reject(.malformed)
            case .lineTooLong: return reject(.lineTooLong)
            case .headTooLarge: return reject(.headerTooLarge)
            }
            position = next
            if start == 0 {
                if let reason = requestLine(base, end: end, policy: policy, into: &request) { return reject(reason) }
                continue
            }
            if start == end { break }   // the empty line: the head is whole
            fieldLines += 1
            if fieldLines > policy.headerLinesMax { return reject(.tooManyHeaderLines) }
            guard let (nameEnd, valueStart, valueEnd) = HTTPHead.field(base, start: start, end: end) else { return reject(.malformed) }
            // RFC 9110 §5.1: field names are case-insensitive.
            let named = FieldName(base: base, start: start, end: nameEnd)
            if named.is("host") {
                hosts += valueEnd > valueStart ? 1 : 2
            } else if named.is("upgrade") {
                // RFC 6455 §4.2.1: "websocket", ASCII case-insensitive; fields may repeat (a list).
                upgrade = upgrade || HTTPHead.list(base, valueStart, valueEnd, contains: "websocket", ignoringCase: true)
            } else if named.is("connection") {
                connection = connection || HTTPHead.list(base, valueStart, valueEnd, contains: "upgrade", ignoringCase: true)
            } else if named.is("sec-websocket-version") {
                versions += 1
                versionOK = HTTPHead.equals(base, valueStart, valueEnd, "13", ignoringCase: false)
            } else if named.is("sec-websocket-key") {
                keys += 1
                keyOK = isKey(base, valueStart, valueEnd)
                request.keyOffset = valueStart
            } else if named.is("sec-websocket-protocol") {
                // RFC 6455 §4.1: subprotocol names are compared exactly (the 101 must echo one).
                if HTTPHead.list(base, valueStart, valueEnd, contains: "mqtt", ignoringCase: false) { request.offered.insert(.mqtt) }
                if HTTPHead.list(base, valueStart, valueEnd, contains: "mqttv3.1", ignoringCase: false) { request.offered.insert(.mqttv31) }
            } else if named.is("sec-websocket-extensions") {
                request.offersExtensions = true
            }
        }
        if !upgrade { return reject(.notWebSocketUpgrade) }
        if !connection { return reject(.connectionNotUpgrade) }
        if hosts != 1 { return reject(.badHost) }
        if versions != 1 || !versionOK { return reject(.unsupportedVersion) }
        if keys != 1 || !keyOK { return reject(.badKey) }
        if policy.requiresMQTTSubprotocol && request.offered.isEmpty { return reject(.noMQTTSubprotocol) }
        return .complete(consumedBytes: position, request)
    }

    @inline(__always)
    private static func reject(_ reason: WebSocketRejection) -> StageVerdict<WebSocketUpgradeRequest> {
        .reject(StageRejection(stage: .webSocketUpgrade, code: reason.rawValue))
    }

    /// RFC 9112 §3: `method SP request-target SP HTTP-version` in `0..<end`; nil when it is one
    /// this listener serves.
    private static func requestLine(_ base: UnsafeRawPointer, end: Int, policy: WebSocketUpgradePolicy,
                                    into request: inout WebSocketUpgradeRequest) -> WebSocketRejection? {
        var i = 0
        while i < end && HTTPHead.isTokenByte(HTTPHead.byte(base, i)) { i += 1 }
        guard i > 0, i < end, HTTPHead.byte(base, i) == 0x20 else { return .malformed }
        let methodEnd = i
        let targetStart = i + 1
        i = targetStart
        while i < end && HTTPHead.byte(base, i) != 0x20 { i += 1 }
        // RFC 6455 §3: the resource name is origin-form ("/" path ["?" query]).
        guard i > targetStart, i < end, HTTPHead.byte(base, targetStart) == 0x2F else { return .malformed }
        let targetEnd = i
        let versionStart = i + 1
        // RFC 9112 §2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT.
        guard end - versionStart == 8, HTTPHead.equals(base, versionStart, versionStart + 5, "HTTP/", ignoringCase: false),
              isDigit(HTTPHead.byte(base, versionStart + 5)), HTTPHead.byte(base, versionStart + 6) == 0x2E,
              isDigit(HTTPHead.byte(base, versionStart + 7)) else { return .malformed }
        // RFC 9110 §9.1: methods are case-sensitive.
        if !HTTPHead.equals(base, 0, methodEnd, "GET", ignoringCase: false) { return .methodNotGET }
        if !HTTPHead.equals(base, versionStart, end, "HTTP/1.1", ignoringCase: false) { return .httpVersionNotSupported }
        request.targetOffset = targetStart
        request.targetLength = targetEnd - targetStart
        if let path = policy.path {
            var pathEnd = targetStart
            while pathEnd < targetEnd && HTTPHead.byte(base, pathEnd) != 0x3F { pathEnd += 1 }
            guard pathEnd - targetStart == path.count,
                  path.count == 0 || memcmpEqual(base + targetStart, path.baseAddress!, path.count) else { return .pathNotFound }
        }
        return nil
    }

    /// A field line's name, to compare.
    private struct FieldName {
        let base: UnsafeRawPointer
        let start: Int
        let end: Int

        @inline(__always)
        func `is`(_ lowercasedName: StaticString) -> Bool { HTTPHead.equals(base, start, end, lowercasedName, ignoringCase: true) }
    }

    @inline(__always)
    private static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    private static func memcmpEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
        var i = 0
        while i < n {
            if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
            i += 1
        }
        return true
    }

    /// RFC 6455 §4.1: the base64 (RFC 4648 §4) of 16 bytes: 22 characters of the alphabet and
    /// "==". The unused low bits of the last character are not checked (the accept value is
    /// computed over the text as sent).
    private static func isKey(_ base: UnsafeRawPointer, _ start: Int, _ end: Int) -> Bool {
        guard end - start == keyLengthBytes else { return false }
        var i = start
        while i < start + 22 {
            guard Base64.value(HTTPHead.byte(base, i)) != nil else { return false }
            i += 1
        }
        return HTTPHead.byte(base, start + 22) == 0x3D && HTTPHead.byte(base, start + 23) == 0x3D
    }

    // MARK: Answers

    /// RFC 6455 §1.3, §4.2.2: base64(SHA-1(key + the protocol's GUID)), the
    /// `acceptLengthBytes` characters of Sec-WebSocket-Accept, written to `out`. `key` is the
    /// `keyLengthBytes` characters of Sec-WebSocket-Key as sent.
    static func acceptValue(key: UnsafeRawPointer, to out: UnsafeMutableRawPointer) {
        let guid: StaticString = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
        var sha = SHA1()
        sha.update(UnsafeRawBufferPointer(start: key, count: keyLengthBytes))
        sha.update(UnsafeRawBufferPointer(start: guid.utf8Start, count: guid.utf8CodeUnitCount))
        var digest: (UInt64, UInt64, UInt32) = (0, 0, 0)
        withUnsafeMutableBytes(of: &digest) { d in
            sha.finish(into: d.baseAddress!)
            let n = Base64.encode(UnsafeRawBufferPointer(start: d.baseAddress!, count: SHA1.digestBytes), to: out)
            assert(n == acceptLengthBytes)
        }
    }

    /// Writes the 101 Switching Protocols answer to a request whose Sec-WebSocket-Key is at
    /// `key` (RFC 6455 §4.2.2), naming `subprotocol` unless `.none`, to `out`, which has room for
    /// `writtenMaxBytes`. Returns its length.
    static func write101(key: UnsafeRawPointer, subprotocol: WebSocketSubprotocol, to out: UnsafeMutableRawPointer, capacity: Int) -> Int {
        precondition(capacity >= writtenMaxBytes)
        var w = HeadWriter(base: out)
        w.text("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ")
        acceptValue(key: key, to: out + w.count)
        w.count += acceptLengthBytes
        w.text("\r\n")
        switch subprotocol {
        case .none: break
        case .mqtt: w.text("Sec-WebSocket-Protocol: mqtt\r\n")
        case .mqttv31: w.text("Sec-WebSocket-Protocol: mqttv3.1\r\n")
        }
        w.text("\r\n")
        assert(w.count <= writtenMaxBytes)
        return w.count
    }

    /// Writes a minimal error answer with `status` (one of the statuses of WebSocketRejection:
    /// 400, 404, 405, 426, 431, 505), no body, the connection closing, to `out`, which has room
    /// for `writtenMaxBytes`. Returns its length.
    static func writeError(status: Int, to out: UnsafeMutableRawPointer, capacity: Int) -> Int {
        precondition(capacity >= writtenMaxBytes)
        var w = HeadWriter(base: out)
        switch status {
        case 400: w.text("HTTP/1.1 400 Bad Request\r\n")
        case 404: w.text("HTTP/1.1 404 Not Found\r\n")
        // RFC 9110 §15.5.6: a 405 lists the allowed methods.
        case 405: w.text("HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\n")
        // RFC 9110 §15.5.22: a 426 names the protocol to upgrade to; RFC 6455 §4.4: the versions served.
        case 426: w.text("HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n")
        case 431: w.text("HTTP/1.1 431 Request Header Fields Too Large\r\n")
        case 505: w.text("HTTP/1.1 505 HTTP Version Not Supported\r\n")
        default: preconditionFailure("no WebSocket rejection answers \(status)")
        }
        w.text("Connection: close\r\nContent-Length: 0\r\n\r\n")
        assert(w.count <= writtenMaxBytes)
        return w.count
    }

    /// Text into caller-owned memory.
    private struct HeadWriter {
        let base: UnsafeMutableRawPointer
        var count = 0

        mutating func text(_ s: StaticString) {
            (base + count).copyMemory(from: s.utf8Start, byteCount: s.utf8CodeUnitCount)
            count += s.utf8CodeUnitCount
        }
    }
}
