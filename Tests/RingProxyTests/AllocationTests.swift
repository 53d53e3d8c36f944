// The per-packet path allocates nothing: jemalloc's per-thread counter of the worker thread
// stays flat while connections are opened, messages relayed both ways and connections closed.
import Foundation
import Glibc
import XCTest
@testable import RingProxy

final class AllocationTests: XCTestCase {
    func testWorkerThreadAllocatesNothingWhileRelayingAndChurningConnections() throws {
        let server = TestServer.echo()
        defer { server.stop() }
        let (engine, port) = try startEngine(servers: [server.port], cores: 1)
        defer { engine.stop(); engine.wait() }
        guard engine.statistics().total.threadAllocatedBytes >= 0 else {
            return try jemallocMissing()
        }

        func session(messages: Int, size: Int) {
            let fd = TestSocket.connect(port: port)
            echoMessages(fd, messages: messages, size: size)
            close(fd)
        }
        // Warm up: first use of every path (lazy runtime metadata, the first connections).
        for _ in 0..<20 { session(messages: 5, size: 64) }
        XCTAssertTrue(eventually { engine.statistics().total[.active] == 0 })
        let before = engine.statistics().total

        let connections = 100
        let messages = 50
        for i in 0..<connections { session(messages: messages, size: i % 2 == 0 ? 64 : 20_000) }
        XCTAssertTrue(eventually { engine.statistics().total[.active] == 0 })
        let after = engine.statistics().total

        let relayed = after[.recvCompletions] - before[.recvCompletions]
        XCTAssertGreaterThanOrEqual(relayed, UInt64(connections * messages * 2), "every message crossed the proxy twice")
        XCTAssertEqual(after[.accepted] - before[.accepted], UInt64(connections))
        XCTAssertEqual(after.threadAllocatedBytes - before.threadAllocatedBytes, 0,
                       "the worker allocated while relaying \(relayed) buffers over \(connections) connections")
    }
}

extension AllocationTests {
    /// use_backend rules on CONNECT fields (str, beg, sub -i, int on a number, src) are
    /// evaluated for every connection without allocating; the chosen backend's echo server
    /// answers.
    func testRoutingOnConnectFieldsAllocatesNothing() throws {
        let a = TestServer.echo()
        defer { a.stop() }
        let b = TestServer.echo()
        defer { b.stop() }
        let field = { (name: MQTTConnectField) in RouteSample.mqtt(name) }
        let (engine, port) = try startEngine(servers: [a.port], cores: 1) { config in
            config.backends.append(BackendConfig(name: "b", servers: [ServerConfig(name: "b1", address: SocketAddress(ipv4: 127, 0, 0, 1, port: b.port))]))
            config.frontends[0].requireMQTT = true
            let tenant = RouteMatcher(sample: field(.username), method: .prefix, strings: [Array("tenant-a/".utf8)])
            let room = RouteMatcher(sample: field(.clientIdentifier), method: .substring, ignoreCase: true, strings: [Array("room".utf8)])
            let version = RouteMatcher(sample: field(.protocolVersion), method: .exact, strings: [Array("5".utf8)])
            let keepalive = RouteMatcher(sample: field(.keepalive), method: .integer, integers: [0...10])
            let lan = RouteMatcher(sample: .source, method: .ip, networks: [AddressPrefix.parse("10.0.0.0/8")!])
            config.frontends[0].routes = [
                BackendRoute(backendIndex: 1, alternatives: [[RouteTerm(matchers: [tenant]), RouteTerm(negated: true, matchers: [room])],
                                                             [RouteTerm(matchers: [version])], [RouteTerm(matchers: [keepalive, lan])]]),
            ]
        }
        defer { engine.stop(); engine.wait() }
        guard engine.statistics().total.threadAllocatedBytes >= 0 else {
            return try jemallocMissing()
        }
        func session(_ i: Int) {
            let fd = TestSocket.connect(port: port)
            let connect = MQTTWire.connect(clientID: i % 3 == 0 ? "Room-\(i)" : "dev-\(i)", level: i % 4 == 0 ? 5 : 4,
                                           username: i % 2 == 0 ? "tenant-a/\(i)" : "tenant-b/\(i)", password: Array("pw".utf8))
            XCTAssertTrue(TestSocket.writeAll(fd, connect))
            XCTAssertEqual(TestSocket.readExactly(fd, connect.count), connect)
            shutdown(fd, Int32(SHUT_WR))
            _ = TestSocket.readToEnd(fd) { _ in }
            close(fd)
        }
        for i in 0..<20 { session(i) }
        XCTAssertTrue(eventually { engine.statistics().total[.active] == 0 })
        let before = engine.statistics().total
        for i in 0..<200 { session(i) }
        XCTAssertTrue(eventually { engine.statistics().total[.active] == 0 })
        let after = engine.statistics().total
        XCTAssertEqual(after[.mqttConnects] - before[.mqttConnects], 200)
        XCTAssertEqual(after.threadAllocatedBytes - before.threadAllocatedBytes, 0, "the worker allocated while routing 200 CONNECTs")
        let servers = engine.statistics().servers
        XCTAssertTrue(servers.contains { $0.backend == "b" && $0.total > 0 } && servers.contains { $0.backend == "servers" && $0.total > 0 },
                      "both backends took connections: \(servers.map { "\($0.backend)/\($0.server) \($0.total)" })")
    }
}

/// `messages` messages of `size` bytes, each echoed back whole before the next, then FIN and
/// the rest read to the end.
func echoMessages(_ fd: Int32, messages: Int, size: Int, file: StaticString = #filePath, line: UInt = #line) {
    let message = payload(size: size, seed: UInt64(size))
    for _ in 0..<messages {
        XCTAssertTrue(TestSocket.writeAll(fd, message), file: file, line: line)
        XCTAssertEqual(TestSocket.readExactly(fd, size), message, file: file, line: line)
    }
    shutdown(fd, Int32(SHUT_WR))
    _ = TestSocket.readToEnd(fd) { _ in }
}

final class EngineSignalMaskTests: XCTestCase {
    /// Starting an engine leaves the caller's signal mask as it was: an embedding program (or a
    /// process it starts afterwards, such as a test's nginx) still gets SIGTERM.
    func testStartingAnEngineLeavesTheCallersSignalMaskAlone() throws {
        var before = sigset_t()
        pthread_sigmask(SIG_SETMASK, nil, &before)
        let server = TestServer.echo()
        defer { server.stop() }
        let (engine, port) = try startEngine(servers: [server.port], cores: 1)
        defer { engine.stop(); engine.wait() }
        XCTAssertTrue(echoRoundTrip(port: port))
        var after = sigset_t()
        pthread_sigmask(SIG_SETMASK, nil, &after)
        for signal in [SIGINT, SIGTERM, SIGHUP, SIGUSR1] {
            XCTAssertEqual(sigismember(&after, signal), sigismember(&before, signal), "signal \(signal)")
        }
    }
}
