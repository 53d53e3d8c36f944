// HTTPHead: the line and token-list reading shared by the WebSocket upgrade request parser and
// the parser of a server's answer to it. Works on raw bytes and offsets only: it never
// allocates, never reads past the count it is given, and decides each line from its own bytes
// (so a prefix of a head never gives a verdict its whole would not).

enum HTTPHead {
    /// One line of a head, or why there is none yet.
    enum Line: Equatable {
        /// The line's content is `start..<end` (CRLF excluded); the next line starts at `next`.
        case line(start: Int, end: Int, next: Int)
        /// No LF yet, and the limits leave room for one.
        case needMore
        /// RFC 9112 §2.2: a bare LF or CR, a NUL or another control byte (HTAB aside).
        case malformed
        /// More than the line limit without LF.
        case lineTooLong
        /// The head would not end within the head limit.
        case headTooLarge
    }

    /// Reads the line starting at `start` of the `count` held bytes: it must end with CRLF
    /// within `lineMaxBytes` content bytes and before `headMaxBytes` bytes of the head.
    static func line(_ base: UnsafeRawPointer, count: Int, start: Int, lineMaxBytes: Int, headMaxBytes: Int) -> Line {
        let lineLimit = start + lineMaxBytes + 2
        let limit = Swift.min(lineLimit, headMaxBytes)
        let end = Swift.min(count, limit)
        var i = start
        var afterCR = false
        while i < end {
            let b = base.load(fromByteOffset: i, as: UInt8.self)
            if b == 0x0A {
                // RFC 9112 §2.2: a line ends with CRLF; a bare LF is refused, not tolerated.
                return afterCR ? .line(start: start, end: i - 1, next: i + 1) : .malformed
            }
            if afterCR { return .malformed }   // a bare CR
            if b == 0x0D {
                afterCR = true
            } else if (b < 0x20 && b != 0x09) || b == 0x7F {
                return .malformed   // RFC 9110 §5.5: NUL and other controls never appear in a head
            }
            i += 1
        }
        if count < limit { return .needMore }
        return lineLimit <= headMaxBytes ? .lineTooLong : .headTooLarge
    }

    @inline(__always)
    static func byte(_ base: UnsafeRawPointer, _ i: Int) -> UInt8 { base.load(fromByteOffset: i, as: UInt8.self) }

    @inline(__always)
    static func lowercased(_ b: UInt8) -> UInt8 { b >= 0x41 && b <= 0x5A ? b | 0x20 : b }

    /// Whether `start..<end` is `text`, ASCII case-insensitively when `ignoringCase` (then
    /// `text` is given in lower case).
    static func equals(_ base: UnsafeRawPointer, _ start: Int, _ end: Int, _ text: StaticString, ignoringCase: Bool) -> Bool {
        let n = text.utf8CodeUnitCount
        guard end - start == n else { return false }
        var i = 0
        while i < n {
            let b = byte(base, start + i)
            if (ignoringCase ? lowercased(b) : b) != text.utf8Start[i] { return false }
            i += 1
        }
        return true
    }

    /// RFC 9110 §5.6.2: tchar.
    @inline(__always)
    static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E: return true
        default: return false
        }
    }

    @inline(__always)
    static func isWhitespace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 }

    /// A header field line `name ":" OWS value OWS` (RFC 9112 §5): the name's and the trimmed
    /// value's bounds, or nil when the line is none (obs-fold, whitespace before the colon, an
    /// empty name or one with bytes outside tchar).
    static func field(_ base: UnsafeRawPointer, start: Int, end: Int) -> (nameEnd: Int, valueStart: Int, valueEnd: Int)? {
        var colon = start
        while colon < end && isTokenByte(byte(base, colon)) { colon += 1 }
        // RFC 9112 §5.1: no whitespace between name and colon; §5.2: obs-fold (a line starting
        // with whitespace) may be refused with 400, which both make fall out here.
        guard colon > start, colon < end, byte(base, colon) == 0x3A else { return nil }
        var valueStart = colon + 1
        var valueEnd = end
        while valueStart < valueEnd && isWhitespace(byte(base, valueStart)) { valueStart += 1 }
        while valueEnd > valueStart && isWhitespace(byte(base, valueEnd - 1)) { valueEnd -= 1 }
        return (colon, valueStart, valueEnd)
    }

    /// RFC 9110 §5.6.1: whether the comma-separated list in `start..<end` has the element
    /// `token` (empty elements and whitespace around elements ignored).
    static func list(_ base: UnsafeRawPointer, _ start: Int, _ end: Int, contains token: StaticString, ignoringCase: Bool) -> Bool {
        var i = start
        while i < end {
            var elementEnd = i
            while elementEnd < end && byte(base, elementEnd) != 0x2C { elementEnd += 1 }
            var s = i
            var e = elementEnd
            while s < e && isWhitespace(byte(base, s)) { s += 1 }
            while e > s && isWhitespace(byte(base, e - 1)) { e -= 1 }
            if equals(base, s, e, token, ignoringCase: ignoringCase) { return true }
            i = elementEnd + 1
        }
        return false
    }
}
