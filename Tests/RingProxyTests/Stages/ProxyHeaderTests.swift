// The PROXY protocol header, byte for byte against HAProxy's proxy-protocol.txt: v1 lines and
// v2 blocks are read into the addresses they carry (and only their own bytes consumed),
// refused for the reason that applies as soon as a prefix shows it, and written exactly as the
// specification's examples, IPv6 text as inet_ntop(3) gives it.
import Glibc
import XCTest
@testable import RingProxy

final class ProxyHeaderTests: XCTestCase {
    /// A verdict that tests can compare.
    enum Outcome: Equatable {
        case needMore
        case reject(ProxyHeaderRejection)
        case complete(Int, ProxyHeaderInfo)
    }

    private func parse(_ bytes: [UInt8]) -> Outcome {
        bytes.withUnsafeBytes { raw in
            switch ProxyHeader.parse(raw) {
            case .needMore: return .needMore
            case .reject(let r):
                XCTAssertEqual(r.stage, .proxyHeader)
                return .reject(ProxyHeaderRejection(rawValue: r.code)!)
            case .complete(let n, let info): return .complete(n, info)
            }
        }
    }

    private func parse(_ text: String) -> Outcome { parse(Array(text.utf8)) }

    private func writeV1(_ addresses: ProxyAddresses?) -> [UInt8] {
        var out = [UInt8](repeating: 0xEE, count: 256)
        let n = out.withUnsafeMutableBytes { ProxyHeader.writeV1(addresses, to: $0.baseAddress!, capacity: $0.count) }
        return Array(out[0..<n])
    }

    private func writeV2(_ addresses: ProxyAddresses?) -> [UInt8] {
        var out = [UInt8](repeating: 0xEE, count: 256)
        let n = out.withUnsafeMutableBytes { ProxyHeader.writeV2(addresses, to: $0.baseAddress!, capacity: $0.count) }
        return Array(out[0..<n])
    }

    private static let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    /// The specification's example (§2.1): 192.168.0.1:56324 to 192.168.0.11:443.
    private let example4 = ProxyAddresses(family: .ipv4, source: .v4([192, 168, 0, 1], 56324), destination: .v4([192, 168, 0, 11], 443))
    private let example6 = ProxyAddresses(
        family: .ipv6,
        source: .v6([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01], 56324),
        destination: .v6([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b], 8883))

    // MARK: v1

    func testV1LinesAreReadIntoTheirAddressesAndOnlyTheLineIsConsumed() {
        let line = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"
        XCTAssertEqual(parse(line + "GET / HTTP/1.1\r\n"), .complete(line.utf8.count, ProxyHeaderInfo(version: 1, addresses: example4)))
        let line6 = "PROXY TCP6 2001:db8::1 2001:DB8:0:0:0:0:0:B 56324 8883\r\n"
        XCTAssertEqual(parse(line6 + "\u{10}"), .complete(line6.utf8.count, ProxyHeaderInfo(version: 1, addresses: example6)))
        XCTAssertEqual(parse("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n"), .complete(44, ProxyHeaderInfo(
            version: 1, addresses: ProxyAddresses(family: .ipv4, source: .v4([0, 0, 0, 0], 0), destination: .v4([255, 255, 255, 255], 65535)))))
        let mapped = ProxyAddresses(family: .ipv6, source: .v6([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1], 1),
                                    destination: .v6(Array(repeating: 0, count: 16), 2))
        XCTAssertEqual(parse("PROXY TCP6 ::ffff:192.0.2.1 :: 1 2\r\n"), .complete(36, ProxyHeaderInfo(version: 1, addresses: mapped)))
    }

    func testV1UnknownKeepsTheRealEndpointsWhateverFollowsOnItsLine() {
        XCTAssertEqual(parse("PROXY UNKNOWN\r\n"), .complete(15, ProxyHeaderInfo(version: 1, addresses: nil)))
        // §2.1's worst case: 107 bytes, the longest line a receiver must accept.
        let worst = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"
        XCTAssertEqual(worst.utf8.count, 107)
        XCTAssertEqual(parse(worst + "x"), .complete(107, ProxyHeaderInfo(version: 1, addresses: nil)))
        XCTAssertEqual(parse("PROXY UNKNOWN anything at all\r\n"), .complete(31, ProxyHeaderInfo(version: 1, addresses: nil)))
    }

    func testV1LinesOutsideTheGrammarAreRefused() {
        let malformed = [
            "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",        // no such protocol
            "PROXY UNKNOWNX\r\n",
            "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",          // a lone LF
            "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rx",         // a lone CR
            "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",       // two spaces
            "PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n",       // heading zero (octal confusion)
            "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
            "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
            "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
            "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
            "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
            "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
            "PROXY TCP4 ::1 ::1 1 2\r\n",                 // family and address disagree
            "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
            "PROXY TCP6 ::1::2 ::1 1 2\r\n",              // two "::"
            "PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n",   // 144 bits
            "PROXY TCP6 1:2:3:4:5:6:7 ::1 1 2\r\n",       // 112 bits
            "PROXY TCP6 1:2:3:4:5:6:7:8:: ::1 1 2\r\n",   // "::" standing for nothing
            "PROXY TCP6 12345:: ::1 1 2\r\n",
            "PROXY TCP6 ::1: ::1 1 2\r\n",
            "PROXY TCP6 ::: ::1 1 2\r\n",
            "PROXY TCP6 ::g ::1 1 2\r\n",
            "PROXY TCP6 1:2:3:4:5:6:7:1.2.3.4 ::1 1 2\r\n",
            "PROXY \r\n",
        ]
        for text in malformed {
            XCTAssertEqual(parse(text), .reject(.v1Malformed), text.debugDescription)
        }
    }

    func testV1WithoutCRLFWithin107BytesIsTooLong() {
        let long = Array("PROXY UNKNOWN ".utf8) + Array(repeating: UInt8(ascii: "a"), count: 93)
        XCTAssertEqual(long.count, 107)
        XCTAssertEqual(parse(Array(long.prefix(106))), .needMore)
        XCTAssertEqual(parse(long), .reject(.v1TooLong))
        // The CR as the 107th byte: its LF would be the 108th.
        XCTAssertEqual(parse(Array(long.prefix(106)) + [0x0D, 0x0A]), .reject(.v1TooLong))
        XCTAssertEqual(parse(Array(long.prefix(106)) + [0x0D]), .reject(.v1TooLong))
    }

    // MARK: v2

    func testV2BlocksAreReadIntoTheirAddressesAndTLVsAreSkipped() {
        let tcp4: [UInt8] = Self.signature + [0x21, 0x11, 0x00, 0x0C, 192, 168, 0, 1, 192, 168, 0, 11, 0xDC, 0x04, 0x01, 0xBB]
        XCTAssertEqual(parse(tcp4 + [0x10, 0x00]), .complete(28, ProxyHeaderInfo(version: 2, addresses: example4)))
        let tcp6: [UInt8] = Self.signature + [0x21, 0x21, 0x00, 0x24]
            + [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01]
            + [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b] + [0xDC, 0x04, 0x22, 0xB3]
        XCTAssertEqual(parse(tcp6), .complete(52, ProxyHeaderInfo(version: 2, addresses: example6)))
        // A NOOP (0x04) and a unique id (0x05) TLV after the addresses: part of the header.
        let tlvs: [UInt8] = [0x04, 0x00, 0x02, 0xAA, 0xBB, 0x05, 0x00, 0x03, 0x61, 0x62, 0x63]
        var withTLVs = tcp4
        withTLVs[15] = UInt8(12 + tlvs.count)
        XCTAssertEqual(parse(withTLVs + tlvs + [0x10]), .complete(28 + tlvs.count, ProxyHeaderInfo(version: 2, addresses: example4)))
    }

    func testV2LocalAndUnspecKeepTheRealEndpointsAndSkipWhatTheyCarry() {
        XCTAssertEqual(parse(Self.signature + [0x20, 0x00, 0x00, 0x00, 0x10]), .complete(16, ProxyHeaderInfo(version: 2, addresses: nil)))
        // §2.2: a receiver must skip the length's bytes even for LOCAL, whatever the family says.
        let local = Self.signature + [0x20, 0x11, 0x00, 0x0C] + [UInt8](repeating: 7, count: 12)
        XCTAssertEqual(parse(local), .complete(28, ProxyHeaderInfo(version: 2, addresses: nil)))
        XCTAssertEqual(parse(Self.signature + [0x20, 0x31, 0x00, 0x02, 1, 2]), .complete(18, ProxyHeaderInfo(version: 2, addresses: nil)))
        XCTAssertEqual(parse(Self.signature + [0x21, 0x00, 0x00, 0x03, 1, 2, 3]), .complete(19, ProxyHeaderInfo(version: 2, addresses: nil)))
    }

    func testV2BlocksOutsideWhatIsRelayedAreRefusedAsSoonAsTheirByteArrives() {
        let cases: [([UInt8], ProxyHeaderRejection)] = [
            ([0x11, 0x11, 0x00, 0x0C], .v2BadVersionOrCommand),   // version 1
            ([0x22, 0x11, 0x00, 0x0C], .v2BadVersionOrCommand),   // command 2
            ([0x21, 0x12, 0x00, 0x0C], .v2UnsupportedFamily),     // UDP over IPv4
            ([0x21, 0x22, 0x00, 0x24], .v2UnsupportedFamily),     // UDP over IPv6
            ([0x21, 0x31, 0x00, 0xD8], .v2UnsupportedFamily),     // UNIX stream
            ([0x21, 0x41, 0x00, 0x0C], .v2UnsupportedFamily),     // no such family
            ([0x21, 0x13, 0x00, 0x0C], .v2UnsupportedFamily),     // no such transport
            ([0x21, 0x11, 0x02, 0x19], .v2TooLong),               // 537 bytes of addresses and TLVs
            ([0x20, 0x00, 0xFF, 0xFF], .v2TooLong),
            ([0x21, 0x11, 0x00, 0x08], .v2ShortAddresses),
            ([0x21, 0x21, 0x00, 0x0C], .v2ShortAddresses),
        ]
        for (tail, reason) in cases {
            XCTAssertEqual(parse(Self.signature + tail), .reject(reason), "\(tail)")
            XCTAssertEqual(parse(Self.signature + [tail[0]]), tail[0] == 0x21 || tail[0] == 0x20 ? .needMore : .reject(reason))
        }
        // The bound itself is accepted; the header is then awaited.
        XCTAssertEqual(parse(Self.signature + [0x21, 0x11, 0x02, 0x18]), .needMore)
        var atBound = Self.signature + [0x21, 0x11, 0x02, 0x18] + [UInt8](repeating: 0, count: 536)
        XCTAssertEqual(parse(atBound), .complete(552, ProxyHeaderInfo(version: 2, addresses: ProxyAddresses(
            family: .ipv4, source: .v4([0, 0, 0, 0], 0), destination: .v4([0, 0, 0, 0], 0)))))
        atBound.removeLast()
        XCTAssertEqual(parse(atBound), .needMore)
    }

    // MARK: Either

    func testNoHeaderOrGarbageIsRefusedAtItsFirstByte() {
        let connect: [UInt8] = [0x10, 0x10, 0x00, 0x04, 0x4D, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3C]
        XCTAssertEqual(parse(connect), .reject(.notProxyProtocol))
        XCTAssertEqual(parse("GET / HTTP/1.1\r\n"), .reject(.notProxyProtocol))
        XCTAssertEqual(parse("proxy TCP4"), .reject(.notProxyProtocol))
        XCTAssertEqual(parse("PROXYTCP4"), .reject(.notProxyProtocol))
        XCTAssertEqual(parse([0x16, 0x03, 0x01]), .reject(.notProxyProtocol))   // a TLS ClientHello
        XCTAssertEqual(parse([0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0B]), .reject(.notProxyProtocol))
        XCTAssertEqual(parse("\r\n\r\nGET"), .reject(.notProxyProtocol))
        XCTAssertEqual(parse([UInt8]()), .needMore)
    }

    func testEveryPrefixOfAHeaderWaitsAndEveryPrefixOfAnInvalidOneAgreesWithTheWhole() {
        let inputs: [[UInt8]] = [
            Array("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n".utf8),
            Array("PROXY TCP6 2001:db8::1 2001:db8::b 56324 8883\r\n".utf8),
            Array("PROXY UNKNOWN\r\n".utf8),
            writeV2(example4), writeV2(example6), writeV2(nil),
            Array("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n".utf8),
            Self.signature + [0x21, 0x12, 0x00, 0x0C],
            Self.signature + [0x21, 0x11, 0x02, 0x19],
            Array("GET / HTTP/1.1\r\n".utf8),
        ]
        for input in inputs {
            let whole = parse(input)
            for length in 0..<input.count {
                let verdict = parse(Array(input.prefix(length)))
                if case .complete = whole {
                    XCTAssertEqual(verdict, .needMore, "prefix \(length) of \(input)")
                } else if verdict != .needMore {
                    XCTAssertEqual(verdict, whole, "prefix \(length) of \(input)")
                }
            }
        }
    }

    // MARK: Writing

    func testWrittenHeadersMatchTheSpecificationByteForByte() {
        XCTAssertEqual(writeV1(example4), Array("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n".utf8))
        XCTAssertEqual(writeV1(example6), Array("PROXY TCP6 2001:db8::1 2001:db8::b 56324 8883\r\n".utf8))
        XCTAssertEqual(writeV1(nil), Array("PROXY UNKNOWN\r\n".utf8))
        XCTAssertEqual(writeV2(example4), Self.signature + [0x21, 0x11, 0x00, 0x0C, 192, 168, 0, 1, 192, 168, 0, 11, 0xDC, 0x04, 0x01, 0xBB])
        XCTAssertEqual(writeV2(example6), Self.signature + [0x21, 0x21, 0x00, 0x24]
            + [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01]
            + [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b] + [0xDC, 0x04, 0x22, 0xB3])
        XCTAssertEqual(writeV2(nil), Self.signature + [0x20, 0x00, 0x00, 0x00])
        let full = ProxyAddresses(family: .ipv6, source: .v6(Array(repeating: 0xff, count: 16), 65535),
                                  destination: .v6(Array(repeating: 0xff, count: 16), 65535))
        let longest = writeV1(full)
        XCTAssertEqual(longest.count, 104, "§2.1: the longest TCP6 line")
        XCTAssertEqual(longest.count, ProxyHeader.writtenMaxBytes)
    }

    func testIPv6TextIsWhatInetNtopWritesAndReadsBackToTheSameAddress() {
        var seed: UInt64 = 0x9E3779B97F4A7C15
        func next() -> UInt64 { seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17; return seed }
        var samples: [[UInt8]] = [
            Array(repeating: 0, count: 16),
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4],             // IPv4-compatible: dotted
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1],      // IPv4-mapped: dotted
            [0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1],             // two runs of two: the first
            [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ]
        for _ in 0..<2000 {
            // Groups zero with probability 1/2, so every run shape shows up.
            var bytes: [UInt8] = []
            for _ in 0..<8 {
                let r = next()
                let word = r & 1 == 0 ? 0 : UInt16(truncatingIfNeeded: r >> 8) >> UInt16(r >> 40 & 15)
                bytes += [UInt8(word >> 8), UInt8(word & 0xff)]
            }
            samples.append(bytes)
        }
        for bytes in samples {
            var address = in6_addr()
            withUnsafeMutableBytes(of: &address) { $0.copyBytes(from: bytes) }
            var text = [CChar](repeating: 0, count: 64)
            inet_ntop(AF_INET6, &address, &text, 64)
            let expected = String(cString: text)
            let addresses = ProxyAddresses(family: .ipv6, source: .v6(bytes, 1), destination: .v6(bytes, 2))
            let line = writeV1(addresses)
            XCTAssertEqual(String(decoding: line, as: UTF8.self), "PROXY TCP6 \(expected) \(expected) 1 2\r\n")
            XCTAssertEqual(parse(line), .complete(line.count, ProxyHeaderInfo(version: 1, addresses: addresses)), expected)
        }
    }
}

extension ProxyEndpoint {
    static func v4(_ bytes: [UInt8], _ port: UInt16) -> ProxyEndpoint {
        precondition(bytes.count == 4)
        return bytes.withUnsafeBytes { ProxyEndpoint(address: $0.baseAddress!, count: 4, port: port) }
    }

    static func v6(_ bytes: [UInt8], _ port: UInt16) -> ProxyEndpoint {
        precondition(bytes.count == 16)
        return bytes.withUnsafeBytes { ProxyEndpoint(address: $0.baseAddress!, count: 16, port: port) }
    }
}
