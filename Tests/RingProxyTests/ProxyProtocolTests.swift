// The PROXY protocol end to end with real peers on loopback: a `send-proxy(-v2)` server gets
// one header naming the client and the address it reached, byte for byte, ahead of the
// client's bytes (after a redispatch too, for plain and MQTT-inspecting frontends, IPv4 and
// IPv6, specific and wildcard binds), and an `accept-proxy` listener takes the address its
// header carries as the client's everywhere after, or closes and counts what is not a header.
import Foundation
import Glibc
import XCTest
@testable import RingProxy

final class ProxyProtocolTests: XCTestCase {
    /// An engine with one worker in front of one recording server.
    private func recordingEngine(_ configure: (inout EngineConfig) -> Void) throws
        -> (engine: Engine, port: UInt16, received: Locked<[[UInt8]]>, server: TestServer) {
        let received = Locked<[[UInt8]]>([])
        let server = TestServer.recorder(received)
        let (engine, port) = try startEngine(servers: [server.port], cores: 1, configure)
        return (engine, port, received, server)
    }

    // MARK: send-proxy

    func testSendProxyPutsTheClientsAddressAheadOfItsBytesOnceInBothVersions() throws {
        for version in [ProxyProtocolVersion.v1, .v2] {
            let (engine, port, received, server) = try recordingEngine { $0.backends[0].servers[0].proxyProtocol = version }
            defer { engine.stop(); engine.wait(); server.stop() }
            let proxy = SocketAddress(ipv4: 127, 0, 0, 1, port: port)
            let payload = Array("hello, broker".utf8)
            let client = exchange(with: proxy, payload)
            XCTAssertTrue(eventually { received.current.count == 1 })
            XCTAssertEqual(received.current, [ExpectedHeader.bytes(version, client, proxy) + payload], "\(version)")
            XCTAssertEqual(engine.statistics().total[.proxyHeadersSent], 1)
            XCTAssertEqual(engine.statistics().total[.proxyHeadersUnknown], 0)
        }
    }

    func testAnInspectedConnectLeavesInTheSameSendAsItsHeader() throws {
        for version in [ProxyProtocolVersion.v1, .v2] {
            let (engine, port, received, server) = try recordingEngine {
                $0.frontends[0].requireMQTT = true
                $0.backends[0].servers[0].proxyProtocol = version
            }
            defer { engine.stop(); engine.wait(); server.stop() }
            let proxy = SocketAddress(ipv4: 127, 0, 0, 1, port: port)
            let session = MQTTWire.connect(clientID: "meter-12") + MQTTWire.disconnect
            let client = exchange(with: proxy, session)
            XCTAssertTrue(eventually { received.current.count == 1 })
            XCTAssertEqual(received.current, [ExpectedHeader.bytes(version, client, proxy) + session], "\(version)")
            let stats = engine.statistics().total
            XCTAssertEqual(stats[.mqttConnects], 1)
            XCTAssertEqual(stats[.gatheredSends], 1, "the header and the held CONNECT leave in one sendmsg")
        }
    }

    func testARedispatchedConnectionSendsOneHeaderToTheServerThatAnswered() throws {
        let received = Locked<[[UInt8]]>([])
        let server = TestServer.recorder(received)
        defer { server.stop() }
        let (engine, port) = try startEngine(servers: [TestSocket.unusedPort(), server.port], cores: 1) {
            for s in $0.backends[0].servers.indices { $0.backends[0].servers[s].proxyProtocol = .v2 }
            $0.frontends[0].requireMQTT = true
        }
        defer { engine.stop(); engine.wait() }
        let proxy = SocketAddress(ipv4: 127, 0, 0, 1, port: port)
        var expected: [[UInt8]] = []
        for i in 0..<6 {
            let session = MQTTWire.connect(clientID: "c\(i)") + MQTTWire.disconnect
            let client = exchange(with: proxy, session)
            expected.append(ExpectedHeader.bytes(.v2, client, proxy) + session)
            XCTAssertTrue(eventually { received.current.count == i + 1 })
        }
        XCTAssertEqual(received.current, expected)
        let stats = engine.statistics().total
        XCTAssertGreaterThan(stats[.connectFailures], 0, "round robin must have tried the dead server first")
        XCTAssertEqual(stats[.proxyHeadersSent], 6)
    }

    func testAnIPv6ClientIsNamedInTCP6Headers() throws {
        for version in [ProxyProtocolVersion.v1, .v2] {
            let (engine, port, received, server) = try recordingEngine {
                $0.frontends[0].binds = [SocketAddress.ipv6Loopback(port: 0)]
                $0.backends[0].servers[0].proxyProtocol = version
            }
            defer { engine.stop(); engine.wait(); server.stop() }
            let proxy = SocketAddress.ipv6Loopback(port: port)
            let payload = Array("over IPv6".utf8)
            let client = exchange(with: proxy, payload)
            XCTAssertEqual(client.family, AF_INET6)
            XCTAssertTrue(eventually { received.current.count == 1 })
            XCTAssertEqual(received.current, [ExpectedHeader.bytes(version, client, proxy) + payload], "\(version)")
            if version == .v1 {
                XCTAssertTrue(received.current[0].starts(with: Array("PROXY TCP6 ::1 ::1 ".utf8)))
            }
        }
    }

    func testAWildcardBindNamesTheAddressTheClientReached() throws {
        let (engine, port, received, server) = try recordingEngine {
            $0.frontends[0].binds = [SocketAddress(ipv4: 0, 0, 0, 0, port: 0)]
            $0.backends[0].servers[0].proxyProtocol = .v1
        }
        defer { engine.stop(); engine.wait(); server.stop() }
        // 127.0.0.2 is on the loopback too: only a lookup per connection can name it.
        let reached = SocketAddress(ipv4: 127, 0, 0, 2, port: port)
        let payload = Array("wildcard".utf8)
        let client = exchange(with: reached, from: SocketAddress(ipv4: 127, 0, 0, 3, port: 0), payload)
        XCTAssertTrue(eventually { received.current.count == 1 })
        XCTAssertEqual(received.current, [ExpectedHeader.bytes(.v1, client, reached) + payload])
        XCTAssertEqual(String(decoding: received.current[0].prefix(31), as: UTF8.self), "PROXY TCP4 127.0.0.3 127.0.0.2 ")
        let stats = engine.statistics().total
        XCTAssertEqual(stats[.localAddressLookups], 1)
        XCTAssertEqual(stats[.localAddressFailures], 0)
    }

    func testWithNoOwnedBufferFreeTheConnectionIsClosedRatherThanSentWithoutItsHeader() throws {
        let (engine, port, received, server) = try recordingEngine {
            $0.ownedBuffersPerWorker = 0
            $0.backends[0].servers[0].proxyProtocol = .v2
        }
        defer { engine.stop(); engine.wait(); server.stop() }
        _ = exchange(with: SocketAddress(ipv4: 127, 0, 0, 1, port: port), Array("must not arrive bare".utf8))
        XCTAssertTrue(eventually { received.current.count == 1 })
        XCTAssertEqual(received.current, [[]], "the server saw the connection close with nothing on it")
        XCTAssertEqual(engine.statistics().total[.proxyHeaderNoBuffer], 1)
        XCTAssertEqual(engine.statistics().total[.proxyHeadersSent], 0)
        XCTAssertTrue(eventually { engine.statistics().total[.active] == 0 })
    }

    func testHeadersAndWildcardLookupsAllocateNothingOnTheWorker() throws {
        let (engine, port, received, server) = try recordingEngine {
            $0.frontends[0].binds = [SocketAddress(ipv4: 0, 0, 0, 0, port: 0)]
            $0.frontends[0].requireMQTT = true
            $0.backends[0].servers[0].proxyProtocol = .v2
        }
        defer { engine.stop(); engine.wait(); server.stop() }
        let proxy = SocketAddress(ipv4: 127, 0, 0, 1, port: port)
        let session = MQTTWire.connect(clientID: "alloc") + MQTTWire.disconnect
        for _ in 0..<20 { _ = exchange(with: proxy, session) }
        XCTAssertTrue(eventually { engine.statistics().total[.active] == 0 })
        let before = engine.statistics().total.threadAllocatedBytes
        for _ in 0..<200 { _ = exchange(with: proxy, session) }
        XCTAssertTrue(eventually { engine.statistics().total[.active] == 0 })
        let after = engine.statistics().total.threadAllocatedBytes
        guard before >= 0 else { return try jemallocMissing() }
        XCTAssertEqual(after - before, 0, "the worker allocated while writing 200 headers after 200 lookups")
        XCTAssertEqual(engine.statistics().total[.proxyHeadersSent], 220)
        XCTAssertTrue(eventually { received.current.count == 220 })
    }

    // MARK: accept-proxy

    func testAnAcceptedHeadersAddressIsTheClientInTheLogAndInTheHeaderSentOn() throws {
        let syslog = SyslogReceiver()
        let (engine, port, received, server) = try recordingEngine {
            $0.frontends[0].acceptProxy = true
            $0.frontends[0].requireMQTT = true
            $0.backends[0].servers[0].proxyProtocol = .v2
            $0.log = syslog.logConfig
        }
        defer { engine.stop(); engine.wait(); server.stop() }
        let proxy = SocketAddress(ipv4: 127, 0, 0, 1, port: port)
        let client4 = try SocketAddress.parse("203.0.113.7:40000"), reached4 = try SocketAddress.parse("198.51.100.1:1883")
        let client6 = try SocketAddress.parse("[2001:db8::7]:40001"), reached6 = try SocketAddress.parse("[2001:db8::1]:8883")
        let session4 = MQTTWire.connect(clientID: "via-v1") + MQTTWire.disconnect
        let session6 = MQTTWire.connect(clientID: "via-v2") + MQTTWire.disconnect
        // The front balancer's header, then the client's bytes, in one segment.
        exchange(with: proxy, ExpectedHeader.v1(client4, reached4) + session4)
        XCTAssertTrue(eventually { received.current.count == 1 })
        exchange(with: proxy, ExpectedHeader.v2(client6, reached6) + session6)
        XCTAssertTrue(eventually { received.current.count == 2 })
        XCTAssertEqual(received.current, [ExpectedHeader.v2(client4, reached4) + session4, ExpectedHeader.v2(client6, reached6) + session6],
                       "the broker sees the client and the address it reached, never the header that came in")
        let lines = syslog.receive(count: 2)
        XCTAssertEqual(lines.count, 2, "\(lines)")
        XCTAssertTrue(lines.contains { $0.contains("]: 203.0.113.7:40000 [") && $0.hasSuffix("{via-v1}") }, "\(lines)")
        XCTAssertTrue(lines.contains { $0.contains("]: 2001:db8::7:40001 [") && $0.hasSuffix("{via-v2}") }, "\(lines)")
        let stats = engine.statistics().total
        XCTAssertEqual(stats[.proxyHeadersReceived], 2)
        XCTAssertEqual(stats[.mqttConnects], 2)
    }

    func testBalanceSourceHashesTheAddressTheHeaderCarries() throws {
        let received = (0..<3).map { _ in Locked<[[UInt8]]>([]) }
        let servers = received.map { TestServer.recorder($0) }
        defer { servers.forEach { $0.stop() } }
        let (engine, port) = try startEngine(servers: servers.map(\.port), cores: 1) {
            $0.frontends[0].acceptProxy = true
            $0.backends[0].balance = .source
        }
        defer { engine.stop(); engine.wait() }
        let proxy = SocketAddress(ipv4: 127, 0, 0, 1, port: port)
        // Every connection really comes from 127.0.0.1: only the carried address can spread them.
        for round in 0..<2 {
            for i in 1...24 {
                let tag = Array("10.0.0.\(i)".utf8)
                exchange(with: proxy, Array("PROXY TCP4 10.0.0.\(i) 10.0.1.1 \(5000 + round) 1883\r\n".utf8) + tag)
            }
        }
        XCTAssertTrue(eventually { received.map(\.current.count).reduce(0, +) == 48 })
        let byServer = received.map { Set($0.current.map { String(decoding: $0, as: UTF8.self) }) }
        for i in 1...24 {
            XCTAssertEqual(byServer.filter { $0.contains("10.0.0.\(i)") }.count, 1, "10.0.0.\(i) went to one server both times")
        }
        XCTAssertGreaterThanOrEqual(byServer.filter { !$0.isEmpty }.count, 2, "the carried addresses spread over the servers: \(byServer)")
    }

    func testLocalAndUnknownHeadersLeaveTheRealClientInPlace() throws {
        let (engine, port, received, server) = try recordingEngine {
            $0.frontends[0].acceptProxy = true
            $0.backends[0].servers[0].proxyProtocol = .v1
        }
        defer { engine.stop(); engine.wait(); server.stop() }
        let proxy = SocketAddress(ipv4: 127, 0, 0, 1, port: port)
        let payload = Array("health".utf8)
        let local = ExpectedHeader.v2Signature + [0x20, 0x00, 0x00, 0x00]
        var clients: [SocketAddress] = []
        clients.append(exchange(with: proxy, local + payload))
        XCTAssertTrue(eventually { received.current.count == 1 })
        clients.append(exchange(with: proxy, Array("PROXY UNKNOWN\r\n".utf8) + payload))
        XCTAssertTrue(eventually { received.current.count == 2 })
        XCTAssertEqual(received.current, clients.map { ExpectedHeader.v1($0, proxy) + payload })
        XCTAssertEqual(engine.statistics().total[.proxyHeadersReceived], 2)
    }

    func testPerAddressLimitsOnAnAcceptProxyFrontendAreRefusedAtStart() {
        // They would track the front balancer's address and release the client's.
        XCTAssertThrowsError(try startEngine(servers: [TestSocket.unusedPort()], cores: 1) {
            $0.frontends[0].acceptProxy = true
            $0.frontends[0].addressLimit = AddressLimitConfig(table: AddressTableConfig(name: "per_ip"))
        }) { XCTAssertTrue("\($0)".contains("per-address limits on an accept-proxy frontend are not supported yet"), "\($0)") }
    }

    func testConnectionsWithoutAValidHeaderAreClosedCountedAndForwardNothing() throws {
        let (engine, port, received, server) = try recordingEngine {
            $0.frontends[0].acceptProxy = true
            $0.frontends[0].inspectTimeoutMs = 300
        }
        defer { engine.stop(); engine.wait(); server.stop() }
        let proxy = SocketAddress(ipv4: 127, 0, 0, 1, port: port)
        let cases: [(String, [UInt8], Counter)] = [
            ("no header", MQTTWire.connect(clientID: "bare"), .proxyRejectedSignature),
            ("garbage", Array("GET / HTTP/1.1\r\n\r\n".utf8), .proxyRejectedSignature),
            ("v1 without CRLF in 107 bytes", Array("PROXY UNKNOWN ".utf8) + [UInt8](repeating: 0x61, count: 100), .proxyRejectedV1TooLong),
            ("malformed v1", Array("PROXY TCP4 10.0.0.1 10.0.0.2 1\r\n".utf8), .proxyRejectedV1Malformed),
            ("v2 too long", ExpectedHeader.v2Signature + [0x21, 0x11, 0x02, 0x19] + [UInt8](repeating: 0, count: 600), .proxyRejectedV2TooLong),
            ("v2 over UDP", ExpectedHeader.v2Signature + [0x21, 0x12, 0x00, 0x0C] + [UInt8](repeating: 0, count: 12), .proxyRejectedV2Family),
            ("v2 LOCAL command 3", ExpectedHeader.v2Signature + [0x23, 0x00, 0x00, 0x00], .proxyRejectedV2Command),
            ("v2 short addresses", ExpectedHeader.v2Signature + [0x21, 0x21, 0x00, 0x0C] + [UInt8](repeating: 0, count: 12), .proxyRejectedV2ShortAddresses),
            ("truncated, then FIN", Array("PROXY TCP4 10.0.0.1 10.0".utf8), .proxyRejectedTruncated),
        ]
        for (name, bytes, counter) in cases {
            exchange(with: proxy, bytes)
            XCTAssertTrue(eventually { engine.statistics().total[counter] >= 1 }, name)
        }
        // Truncated and then silent: the inspect delay ends it.
        let fd = TestSocket.connect(to: proxy)
        TestSocket.writeAll(fd, ExpectedHeader.v2Signature)
        XCTAssertTrue(TestSocket.readToEnd(fd) { _ in }, "closed by the inspect delay")
        close(fd)
        let stats = engine.statistics().total
        XCTAssertEqual(stats[.proxyRejectedSignature], 2)
        XCTAssertEqual(stats[.proxyRejectedTruncated], 2)
        XCTAssertEqual(stats[.inspectTimeouts], 1)
        XCTAssertEqual(stats[.proxyHeadersReceived], 0)
        XCTAssertEqual(stats[.connectAttempts], 0)
        XCTAssertEqual(server.accepted, 0, "no server saw any of them")
        XCTAssertEqual(received.current, [])
        XCTAssertTrue(eventually { engine.statistics().total[.active] == 0 })
    }
}

// MARK: Helpers

/// Connects to `address` (from `source` if given), sends `bytes`, half-closes and waits for
/// the proxy to close. Returns the client's own address, as the proxy saw it.
@discardableResult
func exchange(with address: SocketAddress, from source: SocketAddress? = nil, _ bytes: [UInt8]) -> SocketAddress {
    let fd = TestSocket.connect(to: address, from: source)
    defer { close(fd) }
    let local = TestSocket.localAddress(fd)
    TestSocket.writeAll(fd, bytes)
    shutdown(fd, Int32(SHUT_WR))
    _ = TestSocket.readToEnd(fd) { _ in }
    return local
}

/// The headers a receiver must see, built here from the specification rather than by the
/// writer under test.
enum ExpectedHeader {
    static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    static func bytes(_ version: ProxyProtocolVersion, _ source: SocketAddress, _ destination: SocketAddress) -> [UInt8] {
        version == .v1 ? v1(source, destination) : v2(source, destination)
    }

    static func v1(_ source: SocketAddress, _ destination: SocketAddress) -> [UInt8] {
        let family = source.family == AF_INET ? "TCP4" : "TCP6"
        return Array("PROXY \(family) \(host(source)) \(host(destination)) \(source.port) \(destination.port)\r\n".utf8)
    }

    static func v2(_ source: SocketAddress, _ destination: SocketAddress) -> [UInt8] {
        let v4 = source.family == AF_INET
        return v2Signature + [0x21, v4 ? 0x11 : 0x21, 0x00, v4 ? 12 : 36]
            + addressBytes(source) + addressBytes(destination)
            + [UInt8(source.port >> 8), UInt8(source.port & 0xFF), UInt8(destination.port >> 8), UInt8(destination.port & 0xFF)]
    }

    static func host(_ address: SocketAddress) -> String {
        var text = [CChar](repeating: 0, count: 64)
        var storage = address.storage
        withUnsafeBytes(of: &storage) { raw in
            _ = inet_ntop(address.family, raw.baseAddress! + (address.family == AF_INET ? 4 : 8), &text, 64)
        }
        return String(cString: text)
    }

    static func addressBytes(_ address: SocketAddress) -> [UInt8] {
        withUnsafeBytes(of: address.storage) { raw in
            address.family == AF_INET ? Array(raw[4..<8]) : Array(raw[8..<24])
        }
    }
}

extension SocketAddress {
    static func ipv6Loopback(port: UInt16) -> SocketAddress {
        var sin6 = sockaddr_in6()
        sin6.sin6_family = sa_family_t(AF_INET6)
        sin6.sin6_port = port.bigEndian
        sin6.sin6_addr.__in6_u.__u6_addr8.15 = 1
        return SocketAddress(ipv6: sin6)
    }
}

extension TestServer {
    /// Records every byte of each connection, appended once the peer closes.
    static func recorder(_ received: Locked<[[UInt8]]>) -> TestServer {
        TestServer { fd in
            var bytes: [UInt8] = []
            _ = TestSocket.readToEnd(fd) { bytes += $0 }
            received.withLock { $0.append(bytes) }
        }
    }
}

extension ProxyProtocolTests {
    /// `unique-id-format` + `proxy-v2-options unique-id`: PP2_TYPE_UNIQUE_ID carries the id the
    /// format makes of the connection (HAProxy's log-format variables, `%{+X}o` for hex).
    func testTheUniqueIDTLVCarriesTheFormattedID() throws {
        let headers = Locked<[[UInt8]]>([])
        let server = TestServer { fd in
            guard let fixed = TestSocket.readExactly(fd, 16) else { return }
            let length = Int(fixed[14]) << 8 | Int(fixed[15])
            guard let rest = TestSocket.readExactly(fd, length) else { return }
            headers.withLock { $0.append(fixed + rest) }
            _ = TestSocket.readToEnd(fd) { _ in }
        }
        defer { server.stop() }
        func uniqueID(_ format: String) throws -> (String, UInt16) {
            headers.withLock { $0 = [] }
            let parsed = try UniqueIDFormat.parse(format).get()
            let (engine, port) = try startEngine(servers: [server.port], cores: 1) { config in
                config.frontends[0].uniqueIDFormat = parsed
                config.backends[0].servers[0].proxyProtocol = .v2
                config.backends[0].servers[0].proxyV2TLVs = [.uniqueID]
            }
            defer { engine.stop(); engine.wait() }
            let fd = TestSocket.connect(port: port)
            let clientPort = TestSocket.localAddress(fd).port
            _ = TestSocket.writeAll(fd, [1])
            XCTAssertTrue(eventually { headers.withLock { !$0.isEmpty } })
            close(fd)
            let header = headers.withLock { $0[0] }
            let tlv = Array(header[(16 + 12)...])
            XCTAssertEqual(tlv[0], 0x05, "PP2_TYPE_UNIQUE_ID")
            let length = Int(tlv[1]) << 8 | Int(tlv[2])
            XCTAssertEqual(tlv.count, 3 + length)
            return (String(decoding: tlv[3...], as: UTF8.self), clientPort)
        }
        let (id, clientPort) = try uniqueID("%ci:%cp_%fi:%fp_%rt:%pid-%f")
        XCTAssertTrue(id.hasPrefix("127.0.0.1:\(clientPort)_127.0.0.1:"), id)
        XCTAssertTrue(id.hasSuffix(":\(getpid())-test"), id)
        // HAProxy's documented example, in hex.
        let (hex, hexPort) = try uniqueID("%{+X}o %ci:%cp_%fi:%fp_%Ts_%rt:%pid")
        XCTAssertTrue(hex.hasPrefix("7F000001:\(String(hexPort, radix: 16, uppercase: true))_7F000001:"), hex)
        XCTAssertFalse(hex.contains("-"), hex)
    }
}
