// ProxyHeader: the PROXY protocol header (HAProxy's doc/proxy-protocol.txt, versions 1 and 2)
// as it arrives: the parser reads the header a front balancer sends on an `accept-proxy` listener
// (v1 or v2, told apart by the first byte); ProxyHeader+Writer.swift writes the one `send-proxy` /
// `send-proxy-v2` puts before a client's bytes. Pure: it reads and writes only the memory it is
// given, never allocates or throws, and is fuzzed (Tests/Fuzz/ProxyHeaderFuzz).

/// One end of a connection as both header versions carry it: the address bytes in network
/// order (IPv4 in the first 4 bytes, IPv6 in all 16) and the port.
struct ProxyEndpoint: Equatable {
    var address: (UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0)
    var port: UInt16 = 0

    init() {}

    /// Copies `count` (4 or 16) address bytes from `bytes`.
    init(address bytes: UnsafeRawPointer, count: Int, port: UInt16) {
        assert(count == 4 || count == 16)
        withUnsafeMutableBytes(of: &address) { $0.baseAddress!.copyMemory(from: bytes, byteCount: count) }
        self.port = port
    }

    static func == (a: ProxyEndpoint, b: ProxyEndpoint) -> Bool {
        a.port == b.port && a.address.0 == b.address.0 && a.address.1 == b.address.1
            && a.address.2 == b.address.2 && a.address.3 == b.address.3
    }
}

/// The two ends a header describes, of one family.
struct ProxyAddresses: Equatable {
    enum Family: UInt8 {
        case ipv4
        case ipv6

        var addressBytes: Int { self == .ipv4 ? 4 : 16 }
    }

    var family: Family
    /// The client.
    var source: ProxyEndpoint
    /// The address the client connected to.
    var destination: ProxyEndpoint
}

/// What an accepted header says.
struct ProxyHeaderInfo: Equatable {
    /// 1 (text) or 2 (binary).
    var version: UInt8
    /// The client's addresses; nil when the connection's own endpoints stand (v1 `UNKNOWN`,
    /// v2 `LOCAL`, v2 `PROXY` over `AF_UNSPEC`).
    var addresses: ProxyAddresses?
}

/// Why a header is refused: StageRejection.code for the `.proxyHeader` stage.
enum ProxyHeaderRejection: UInt8, CaseIterable, CustomStringConvertible {
    /// The bytes start with neither signature (no header at all, or garbage).
    case notProxyProtocol = 1
    /// A v1 line that does not follow the grammar of §2.1 (a lone CR or LF included).
    case v1Malformed
    /// A v1 line with no CRLF within its first 107 bytes (§2.1).
    case v1TooLong
    /// A v2 version other than 2, or a command other than LOCAL and PROXY (§2.2).
    case v2BadVersionOrCommand
    /// A v2 PROXY header for a family ringproxy does not relay: UDP, UNIX sockets, or a value
    /// the specification does not define.
    case v2UnsupportedFamily
    /// A v2 length above `ProxyHeader.v2PayloadMaxBytes`.
    case v2TooLong
    /// A v2 length too short for the addresses of its family.
    case v2ShortAddresses

    /// For the log.
    var description: String {
        switch self {
        case .notProxyProtocol: return "no PROXY protocol header"
        case .v1Malformed: return "malformed PROXY v1 line"
        case .v1TooLong: return "PROXY v1 line without CRLF within 107 bytes"
        case .v2BadVersionOrCommand: return "PROXY v2 header with an unknown version or command"
        case .v2UnsupportedFamily: return "PROXY v2 header for a family other than TCP over IPv4/IPv6 or UNSPEC"
        case .v2TooLong: return "PROXY v2 header longer than 16 + 536 bytes"
        case .v2ShortAddresses: return "PROXY v2 header too short for its addresses"
        }
    }
}

enum ProxyHeader {
    /// v1: the longest line a receiver must accept, CRLF included (§2.1: "PROXY UNKNOWN" with
    /// two full IPv6 addresses and both ports).
    static let v1LineMaxBytes = 107
    /// v2: the fixed part (§2.2): signature (12), version and command, family, length (2).
    static let v2FixedBytes = 16
    /// v2: the most address and TLV bytes accepted. §2: both formats are designed to fit in
    /// the smallest TCP segment every host must accept (576 - 40 = 536 bytes), so a conforming
    /// sender never needs more; a hostile length (up to 65,535) cannot make a connection hold
    /// more than 16 + 536 bytes before it is refused.
    static let v2PayloadMaxBytes = 536
    /// The most bytes `writeV1` or `writeV2` writes ("PROXY TCP6" with two full IPv6 addresses:
    /// 104; v2 over IPv6: 52).
    static let writtenMaxBytes = 104

    // MARK: Parsing

    /// Reads the header at the start of `bytes` (the bytes a connection has sent so far):
    /// `.needMore` while they are a valid beginning, `.reject` as soon as they cannot be one,
    /// `.complete(consumedBytes: header length, info)` once the header is whole. Bytes after
    /// the header are not read.
    static func parse(_ bytes: UnsafeRawBufferPointer) -> StageVerdict<ProxyHeaderInfo> {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return .needMore() }
        // §2.2: the v2 signature starts with CR, the v1 line with "PROXY".
        if base.load(as: UInt8.self) == 0x0D { return parseV2(base, count: bytes.count) }
        return parseV1(base, count: bytes.count)
    }

    @inline(__always)
    private static func reject(_ reason: ProxyHeaderRejection) -> StageVerdict<ProxyHeaderInfo> {
        .reject(StageRejection(stage: .proxyHeader, code: reason.rawValue))
    }

    /// "PROXY " (§2.1: the word, then exactly one space).
    private static let v1Prefix: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0x50, 0x52, 0x4F, 0x58, 0x59, 0x20)
    /// §2.2: \r\n\r\n\0\r\nQUIT\n.
    static let v2Signature: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)
        = (0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A)

    /// Whether the first min(count, length of `expected`) bytes equal `expected`'s.
    @inline(__always)
    private static func startsLike<T>(_ base: UnsafeRawPointer, count: Int, _ expected: T) -> Bool {
        withUnsafeBytes(of: expected) { sig in
            var i = 0
            let n = Swift.min(count, sig.count)
            while i < n {
                if base.load(fromByteOffset: i, as: UInt8.self) != sig[i] { return false }
                i += 1
            }
            return true
        }
    }

    // MARK: v1

    private static func parseV1(_ base: UnsafeRawPointer, count: Int) -> StageVerdict<ProxyHeaderInfo> {
        guard startsLike(base, count: count, v1Prefix) else { return reject(.notProxyProtocol) }
        // §2.1: the line ends with CRLF within its first 107 bytes; a single CR or LF must not
        // end it, and addresses are read only once the CRLF is there.
        let scanEnd = Swift.min(count, v1LineMaxBytes)
        var cr = -1
        var i = 6
        while i < scanEnd {
            let b = base.load(fromByteOffset: i, as: UInt8.self)
            if b == 0x0A { return reject(.v1Malformed) }
            if b == 0x0D { cr = i; break }
            i += 1
        }
        if cr < 0 { return count >= v1LineMaxBytes ? reject(.v1TooLong) : .needMore() }
        if cr + 2 > v1LineMaxBytes { return reject(.v1TooLong) }
        if cr + 1 >= count { return .needMore() }
        if base.load(fromByteOffset: cr + 1, as: UInt8.self) != 0x0A { return reject(.v1Malformed) }
        let consumed = cr + 2
        var line = V1Line(base: base, position: 6, end: cr)

        // §2.1: "TCP4", "TCP6" or "UNKNOWN"; for UNKNOWN the rest of the line is ignored.
        if line.take("UNKNOWN") {
            guard line.atEnd || line.take(" ") else { return reject(.v1Malformed) }
            return .complete(consumedBytes: consumed, ProxyHeaderInfo(version: 1, addresses: nil))
        }
        let family: ProxyAddresses.Family
        if line.take("TCP4 ") {
            family = .ipv4
        } else if line.take("TCP6 ") {
            family = .ipv6
        } else {
            return reject(.v1Malformed)
        }
        var addresses = ProxyAddresses(family: family, source: ProxyEndpoint(), destination: ProxyEndpoint())
        guard line.address(family, into: &addresses.source), line.take(" "),
              line.address(family, into: &addresses.destination), line.take(" "),
              let sourcePort = line.port(), line.take(" "),
              let destinationPort = line.port(), line.atEnd else {
            return reject(.v1Malformed)
        }
        addresses.source.port = sourcePort
        addresses.destination.port = destinationPort
        return .complete(consumedBytes: consumed, ProxyHeaderInfo(version: 1, addresses: addresses))
    }

    /// A cursor over the v1 line between "PROXY " and its CR.
    private struct V1Line {
        let base: UnsafeRawPointer
        var position: Int
        let end: Int

        var atEnd: Bool { position == end }

        @inline(__always)
        func byte(_ i: Int) -> UInt8 { base.load(fromByteOffset: i, as: UInt8.self) }

        /// Consumes `text` if the line continues with it.
        mutating func take(_ text: StaticString) -> Bool {
            let n = text.utf8CodeUnitCount
            guard end - position >= n else { return false }
            var i = 0
            while i < n {
                if byte(position + i) != text.utf8Start[i] { return false }
                i += 1
            }
            position += n
            return true
        }

        /// §2.1: a decimal in [0, maximum] of at most `digitsMax` digits, no heading zero.
        mutating func decimal(digitsMax: Int, maximum: Int) -> Int? {
            let start = position
            var value = 0
            while position < end, case let b = byte(position), b >= 0x30 && b <= 0x39 {
                guard position - start < digitsMax else { return nil }
                value = value * 10 + Int(b - 0x30)
                position += 1
            }
            guard position > start, value <= maximum else { return nil }
            if position - start > 1 && byte(start) == 0x30 { return nil }
            return value
        }

        mutating func port() -> UInt16? {
            decimal(digitsMax: 5, maximum: 65535).map { UInt16($0) }
        }

        mutating func address(_ family: ProxyAddresses.Family, into endpoint: inout ProxyEndpoint) -> Bool {
            withUnsafeMutableBytes(of: &endpoint.address) { out in
                family == .ipv4 ? ipv4(into: out.baseAddress!) : ipv6(into: out.baseAddress!)
            }
        }

        /// §2.1: exactly four decimals in [0, 255] separated by single dots, no heading zeroes.
        mutating func ipv4(into out: UnsafeMutableRawPointer) -> Bool {
            var octet = 0
            while octet < 4 {
                if octet > 0 {
                    guard position < end, byte(position) == 0x2E else { return false }
                    position += 1
                }
                guard let value = decimal(digitsMax: 3, maximum: 255) else { return false }
                out.storeBytes(of: UInt8(value), toByteOffset: octet, as: UInt8.self)
                octet += 1
            }
            return true
        }

        /// §2.1 and RFC 4291 §2.2: groups of 1-4 hex digits (either case) separated by colons,
        /// at most one "::" standing for one or more zero groups, an optional dotted IPv4 tail
        /// in the last 32 bits; 128 bits in all. Reads up to the next space or the line's end.
        mutating func ipv6(into out: UnsafeMutableRawPointer) -> Bool {
            var tokenEnd = position
            while tokenEnd < end && byte(tokenEnd) != 0x20 { tokenEnd += 1 }
            var groups = 0
            var gap = -1
            if position < tokenEnd && byte(position) == 0x3A {
                guard position + 1 < tokenEnd, byte(position + 1) == 0x3A else { return false }
                gap = 0
                position += 2
            }
            while position < tokenEnd {
                guard groups < 8 else { return false }
                let start = position
                var value = 0
                while position < tokenEnd, let digit = Self.hexValue(byte(position)) {
                    guard position - start < 4 else { return false }
                    value = value << 4 | digit
                    position += 1
                }
                if position < tokenEnd && byte(position) == 0x2E {
                    // The IPv4 tail: the last two groups, then nothing.
                    position = start
                    guard groups <= 6, ipv4(into: out + groups * 2), position == tokenEnd else { return false }
                    groups += 2
                    break
                }
                guard position > start else { return false }
                out.storeBytes(of: UInt16(value).bigEndian, toByteOffset: groups * 2, as: UInt16.self)
                groups += 1
                if position == tokenEnd { break }
                guard byte(position) == 0x3A else { return false }
                position += 1
                if position < tokenEnd && byte(position) == 0x3A {
                    guard gap < 0 else { return false }
                    gap = groups
                    position += 1
                } else if position == tokenEnd {
                    return false   // a trailing single colon
                }
            }
            if gap < 0 { return groups == 8 }
            // "::" stands for at least one zero group: move the groups after it to the end.
            guard groups < 8 else { return false }
            let after = groups - gap
            var i = after - 1
            while i >= 0 {
                let word = out.loadUnaligned(fromByteOffset: (gap + i) * 2, as: UInt16.self)
                out.storeBytes(of: word, toByteOffset: (8 - after + i) * 2, as: UInt16.self)
                i -= 1
            }
            i = gap
            while i < 8 - after {
                out.storeBytes(of: 0, toByteOffset: i * 2, as: UInt16.self)
                i += 1
            }
            return true
        }

        @inline(__always)
        static func hexValue(_ b: UInt8) -> Int? {
            switch b {
            case 0x30...0x39: return Int(b - 0x30)
            case 0x41...0x46: return Int(b - 0x41 + 10)
            case 0x61...0x66: return Int(b - 0x61 + 10)
            default: return nil
            }
        }
    }

    // MARK: v2

    private static func parseV2(_ base: UnsafeRawPointer, count: Int) -> StageVerdict<ProxyHeaderInfo> {
        guard startsLike(base, count: count, v2Signature) else { return reject(.notProxyProtocol) }
        // Checks run in byte order as soon as their byte is there, so a prefix never gives a
        // reason the whole header would not.
        guard count > 12 else { return .needMore() }
        // §2.2: the 13th byte: version 2 in the high nibble, command LOCAL (0) or PROXY (1).
        let versionCommand = base.load(fromByteOffset: 12, as: UInt8.self)
        guard versionCommand == 0x20 || versionCommand == 0x21 else { return reject(.v2BadVersionOrCommand) }
        let proxied = versionCommand == 0x21
        guard count > 13 else { return .needMore() }
        // §2.2: the 14th byte: family and transport. LOCAL ignores it; PROXY is relayed for TCP
        // over IPv4 (0x11) and IPv6 (0x21), and over UNSPEC (0x00) the real endpoints stand.
        let family = base.load(fromByteOffset: 13, as: UInt8.self)
        if proxied && family != 0x11 && family != 0x21 && family != 0x00 { return reject(.v2UnsupportedFamily) }
        guard count >= v2FixedBytes else { return .needMore() }
        let length = Int(UInt16(base.load(fromByteOffset: 14, as: UInt8.self)) << 8 | UInt16(base.load(fromByteOffset: 15, as: UInt8.self)))
        if length > v2PayloadMaxBytes { return reject(.v2TooLong) }
        let addressBytes = !proxied ? 0 : family == 0x11 ? 12 : family == 0x21 ? 36 : 0
        if length < addressBytes { return reject(.v2ShortAddresses) }
        let consumed = v2FixedBytes + length
        guard count >= consumed else { return .needMore() }
        // TLVs after the addresses are skipped (§2.2: a receiver may ignore them).
        guard addressBytes > 0 else { return .complete(consumedBytes: consumed, ProxyHeaderInfo(version: 2, addresses: nil)) }
        let size = family == 0x11 ? 4 : 16
        let ports = base + v2FixedBytes + 2 * size
        let addresses = ProxyAddresses(
            family: size == 4 ? .ipv4 : .ipv6,
            source: ProxyEndpoint(address: base + v2FixedBytes, count: size, port: bigEndian16(ports)),
            destination: ProxyEndpoint(address: base + v2FixedBytes + size, count: size, port: bigEndian16(ports + 2)))
        return .complete(consumedBytes: consumed, ProxyHeaderInfo(version: 2, addresses: addresses))
    }

    @inline(__always)
    private static func bigEndian16(_ p: UnsafeRawPointer) -> UInt16 {
        UInt16(p.load(as: UInt8.self)) << 8 | UInt16(p.load(fromByteOffset: 1, as: UInt8.self))
    }
}
