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
        XCTAssertGreaterThanOrEqual(before, 0)
        XCTAssertEqual(after - before, 0, "the worker allocated while writing 200 headers after 200 lookups")
        XCTAssertEqual(engine.statistics().total[.proxyHeadersSent], 220)
        XCTAssertTrue(eventually { received.current.count == 220 })
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
