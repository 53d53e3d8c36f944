// HTTPRequestParser: bytes in -> need more / a complete request / an error status, for the stats
// page. A pure function over the bytes held so far (a Stage like MQTTPeek), standard library
// only so the fuzz target can build it alone; it never reads past what it is given, and every
// size it accepts is bounded by the caller's limits. RFC 9112 (HTTP/1.1 message syntax).

public struct HTTPHeader: Sendable, Equatable {
    /// Lower-cased (field names are case-insensitive, RFC 9110 §5.1).
    public var name: String
    /// Without surrounding whitespace.
    public var value: String
}

public struct HTTPRequest: Sendable, Equatable {
    public var method: String
    /// The request target as sent (origin-form `/stats;csv?x`, or the path of an absolute-form one).
    public var target: String
    /// The target up to `?`, and what follows it.
    public var path: String
    public var query: String?
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var minorVersion: Int
    public var headers: [HTTPHeader]
    public var body: [UInt8]

    public func header(_ name: String) -> String? {
        headers.first { $0.name == name }?.value
    }
}

public enum HTTPRequestVerdict: Sendable, Equatable {
    /// Not enough bytes yet; nothing is wrong so far.
    case needMore
    /// A whole request in the first `consumed` bytes.
    case complete(HTTPRequest, consumed: Int)
    /// Answer this status and close: 400 malformed, 413 body too large, 431 head too large,
    /// 501 a transfer coding, 505 an HTTP version other than 1.x.
    case error(status: Int)
}

public enum HTTPRequestParser {
    public static let headersMax = 100

    /// Parses the request at the start of `bytes`. `headBytesMax` bounds the request line and
    /// headers (431 beyond), `bodyBytesMax` a Content-Length (413 beyond).
    public static func parse(_ bytes: UnsafeRawBufferPointer, headBytesMax: Int, bodyBytesMax: Int) -> HTTPRequestVerdict {
        var lines: [Range<Int>] = []
        var start = 0
        // RFC 9112 §2.2: empty lines before the request line are ignored (bounded by the head size).
        while start < bytes.count, bytes[start] == 0x0D || bytes[start] == 0x0A { start += 1 }
        var lineStart = start
        var headEnd: Int?
        var index = start
        var inMethod = true
        while index < bytes.count && index <= headBytesMax {
            guard bytes[index] == 0x0A else {
                // Garbage is refused before its line ends: a method token, then visible
                // characters and spaces.
                if lines.isEmpty {
                    let byte = bytes[index]
                    if inMethod && byte == 0x20 && index > start {
                        inMethod = false
                    } else if inMethod ? !isTokenByte(byte) : (byte != 0x0D && (byte < 0x20 || byte > 0x7E)) {
                        return .error(status: 400)
                    }
                }
                index += 1
                continue
            }
            var end = index
            if end > lineStart && bytes[end - 1] == 0x0D { end -= 1 }
            if end == lineStart {
                headEnd = index + 1
                break
            }
            lines.append(lineStart..<end)
            if lines.count == 1, case .failure(let problem) = requestLine(bytes, lines[0]) { return .error(status: problem.status) }
            if lines.count > headersMax + 1 { return .error(status: 431) }
            lineStart = index + 1
            index += 1
        }
        guard let headEnd else {
            if bytes.count > headBytesMax { return .error(status: 431) }
            return .needMore
        }
        if headEnd > headBytesMax + 1 { return .error(status: 431) }
        guard case .success(var request) = requestLine(bytes, lines[0]) else { return .error(status: 400) }
        for line in lines.dropFirst() {
            guard let header = header(bytes, line) else { return .error(status: 400) }
            request.headers.append(header)
        }
        let hosts = request.headers.filter { $0.name == "host" }
        // RFC 9112 §3.2: a 1.1 request without Host, or with more than one, is answered 400.
        if hosts.count > 1 || (request.minorVersion == 1 && hosts.isEmpty) { return .error(status: 400) }
        let lengths = Set(request.headers.filter { $0.name == "content-length" }.map(\.value))
        let codings = request.headers.contains { $0.name == "transfer-encoding" }
        if codings { return .error(status: lengths.isEmpty ? 501 : 400) }   // §6.3: both is an attack
        var bodyBytes = 0
        if !lengths.isEmpty {
            guard lengths.count == 1, let text = lengths.first, !text.isEmpty, text.count <= 18,
                  text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let value = Int(text) else { return .error(status: 400) }
            if value > bodyBytesMax { return .error(status: 413) }
            bodyBytes = value
        }
        guard bytes.count - headEnd >= bodyBytes else { return .needMore }
        request.body = Array(bytes[headEnd..<(headEnd + bodyBytes)])
        return .complete(request, consumed: headEnd + bodyBytes)
    }

    /// RFC 9110 §5.6.2 token characters.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
             UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
             UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default: return false
        }
    }

    /// `method SP request-target SP HTTP/1.x` (RFC 9112 §3).
    static func requestLine(_ bytes: UnsafeRawBufferPointer, _ line: Range<Int>) -> Result<HTTPRequest, StatusError> {
        let words = bytes[line].split(separator: 0x20, omittingEmptySubsequences: false)
        guard words.count == 3, !words[0].isEmpty, words[0].allSatisfy(isTokenByte),
              !words[1].isEmpty, words[1].allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return .failure(StatusError(400)) }
        let version = Array(words[2])
        guard version.count == 8, version[0..<5].elementsEqual("HTTP/".utf8), version[6] == UInt8(ascii: "."),
              (0x30...0x39).contains(version[5]), (0x30...0x39).contains(version[7]) else { return .failure(StatusError(400)) }
        guard version[5] == UInt8(ascii: "1"), version[7] <= UInt8(ascii: "1") else { return .failure(StatusError(505)) }
        var target = String(decoding: words[1], as: UTF8.self)
        if target.hasPrefix("http://") || target.hasPrefix("https://") {
            // Absolute form (§3.2.2): keep the path.
            let afterScheme = target.drop { $0 != ":" }.dropFirst(3)
            target = afterScheme.firstIndex(of: "/").map { String(afterScheme[$0...]) } ?? "/"
        }
        guard target.hasPrefix("/") || target == "*" else { return .failure(StatusError(400)) }
        let question = target.firstIndex(of: "?")
        return .success(HTTPRequest(
            method: String(decoding: words[0], as: UTF8.self), target: target,
            path: question.map { String(target[..<$0]) } ?? target,
            query: question.map { String(target[target.index(after: $0)...]) },
            minorVersion: Int(version[7] - 0x30), headers: [], body: []))
    }

    struct StatusError: Error {
        var status: Int
        init(_ status: Int) { self.status = status }
    }

    /// `name: value` (RFC 9112 §5): no space before the colon, no obsolete line folding, no
    /// control characters in the value.
    static func header(_ bytes: UnsafeRawBufferPointer, _ line: Range<Int>) -> HTTPHeader? {
        let field = bytes[line]
        guard let colon = field.firstIndex(of: UInt8(ascii: ":")), colon > line.lowerBound,
              field[line.lowerBound..<colon].allSatisfy(isTokenByte) else { return nil }
        var valueStart = colon + 1
        var valueEnd = line.upperBound
        while valueStart < valueEnd, bytes[valueStart] == 0x20 || bytes[valueStart] == 0x09 { valueStart += 1 }
        while valueEnd > valueStart, bytes[valueEnd - 1] == 0x20 || bytes[valueEnd - 1] == 0x09 { valueEnd -= 1 }
        let value = bytes[valueStart..<valueEnd]
        guard value.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }) else { return nil }
        return HTTPHeader(name: String(decoding: field[line.lowerBound..<colon], as: UTF8.self).lowercased(),
                          value: String(decoding: value, as: UTF8.self))
    }
}
