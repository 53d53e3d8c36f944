// MQTT-aware routing end to end: connections are held until their CONNECT, non-MQTT is
// rejected before any broker sees a byte, and client ids stick to brokers across reconnects
// and cores — checked on the brokers' side, from their own logs.
import Foundation
import Glibc
import MQTTPeek
import XCTest
@testable import RingProxy

final class MQTTRoutingTests: XCTestCase {
    /// An engine requiring MQTT in front of a recording broker: the client ids it saw and every
    /// byte it received.
    private func mqttProxy(_ configure: @escaping (inout EngineConfig) -> Void = { _ in })
        throws -> (Engine, UInt16, TestServer, Locked<[String]>, Locked<[UInt8]>) {
        let seen = Locked<[String]>([])
        let received = Locked<[UInt8]>([])
        let server = TestServer.recordingBroker(seen, received: received)
        let (engine, port) = try startEngine(servers: [server.port]) {
            $0.frontends[0].requireMQTT = true
            configure(&$0)
        }
        return (engine, port, server, seen, received)
    }

    func testReconnectingClientsReachTheSameBrokerEveryTime() throws {
        let brokers = try (0..<3).map { _ in try Mosquitto() }
        defer { brokers.forEach { $0.stop() } }
        let (engine, port) = try startEngine(servers: brokers.map(\.port), cores: 2) {
            $0.frontends[0].requireMQTT = true
            $0.backends[0].stickTable = StickTableConfig(keyLengthMax: 32, entriesMax: 100_000, expireMs: 60_000)
        }
        defer { engine.stop(); engine.wait() }

        let ids = (0..<1000).map { "device-\($0)-\(UInt32.random(in: 0..<UInt32.max))" }
        let rounds = 3
        let failures = Locked(0)
        for _ in 0..<rounds {
            // Eight clients at a time; every session is a new TCP connection (new source port),
            // so the kernel spreads them over both cores.
            concurrently(8) { worker in
                var i = worker
                while i < ids.count {
                    if !MQTTWire.session(port: port, clientID: ids[i]) { failures.withLock { $0 += 1 } }
                    i += 8
                }
            }
        }
        XCTAssertEqual(failures.current, 0)
        // The brokers' own logs: every id connected `rounds` times, always to one broker.
        var brokerOf: [String: Set<Int>] = [:]
        var connectsOf: [String: Int] = [:]
        XCTAssertTrue(eventually { brokers.map { $0.connectedClientIDs().count }.reduce(0, +) == ids.count * rounds })
        for (b, broker) in brokers.enumerated() {
            for id in broker.connectedClientIDs() {
                brokerOf[id, default: []].insert(b)
                connectsOf[id, default: 0] += 1
            }
        }
        XCTAssertEqual(brokerOf.count, ids.count)
        XCTAssertEqual(brokerOf.values.filter { $0.count != 1 }.count, 0, "a client id reached more than one broker")
        XCTAssertEqual(Set(connectsOf.values), [rounds])
        let perBroker = (0..<3).map { b in brokerOf.values.filter { $0.first == b }.count }
        XCTAssertTrue(perBroker.allSatisfy { $0 > 250 }, "uneven spread: \(perBroker)")
        let stats = engine.statistics()
        XCTAssertEqual(stats.total[.stickHits], UInt64(ids.count * (rounds - 1)))
        XCTAssertEqual(stats.total[.stickMisses], UInt64(ids.count))
        XCTAssertTrue(stats.workers.allSatisfy { $0[.accepted] > 100 }, "both cores must have served reconnects: \(stats.workers.map { $0[.accepted] })")
    }

    func testMosquittoClientsOfEveryProtocolVersionPassTheMQTTCheck() throws {
        let broker = try Mosquitto()
        defer { broker.stop() }
        let (engine, port) = try startEngine(servers: [broker.port]) { $0.frontends[0].requireMQTT = true }
        defer { engine.stop(); engine.wait() }
        let pub = try XCTUnwrap(Tools.which("mosquitto_pub"))
        for version in ["mqttv5", "mqttv311", "mqttv31"] {
            let (status, output) = try ChildProcess(pub, ["-h", "127.0.0.1", "-p", "\(port)", "-V", version, "-t", "v", "-m", version,
                                                          "-i", "client-\(version)"]).finish(within: 10)
            XCTAssertEqual(status, 0, "\(version): \(output)")
        }
        XCTAssertEqual(Set(broker.connectedClientIDs()), ["client-mqttv5", "client-mqttv311", "client-mqttv31"])
        XCTAssertEqual(engine.statistics().total[.mqttConnects], 3)
        XCTAssertEqual(engine.statistics().total[.mqttRejected], 0)
    }

    func testHTTPAndTLSOnThePlainPortAreRejectedBeforeAnyBrokerSeesThem() throws {
        let broker = try Mosquitto()
        defer { broker.stop() }
        let (engine, port) = try startEngine(servers: [broker.port]) { $0.frontends[0].requireMQTT = true }
        defer { engine.stop(); engine.wait() }
        let connectionsBefore = broker.connectionCount()
        let sh = try XCTUnwrap(Tools.which("sh"))
        let http = try ChildProcess(sh, ["-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 127.0.0.1 \(port)"]).finish(within: 10)
        XCTAssertEqual(http.1, "", "the proxy must answer an HTTP request with nothing but a close")
        let tls = try ChildProcess(sh, ["-c", "openssl s_client -connect 127.0.0.1:\(port) < /dev/null"]).finish(within: 10)
        XCTAssertNotEqual(tls.0, 0, "a TLS handshake on the plain port must fail")
        let stats = engine.statistics().total
        XCTAssertEqual(stats[.mqttRejected], 2)
        XCTAssertEqual(stats.mqttRejectedByReason[Int(InvalidReason.notConnect.rawValue)], 2)
        XCTAssertEqual(stats[.connectAttempts], 0, "no server connection may be opened for junk")
        usleep(200_000)
        XCTAssertEqual(broker.connectionCount(), connectionsBefore, "the broker saw a connection")
    }

    func testHalfAConnectThenSilenceIsClosedAtTheInspectDelay() throws {
        let (engine, port, server, _, _) = try mqttProxy() {
            $0.frontends[0].inspectTimeoutMs = 500
        }
        defer { engine.stop(); engine.wait(); server.stop() }
        let fd = TestSocket.connect(port: port)
        defer { close(fd) }
        let packet = MQTTWire.connect(clientID: "stalls-halfway")
        XCTAssertTrue(TestSocket.writeAll(fd, Array(packet[0..<(packet.count / 2)])))
        let started = Date()
        XCTAssertTrue(TestSocket.readToEnd(fd) { _ in })
        let waited = Date().timeIntervalSince(started)
        XCTAssertGreaterThan(waited, 0.4)
        XCTAssertLessThan(waited, 2.5)
        XCTAssertEqual(engine.statistics().total[.inspectTimeouts], 1)
        XCTAssertEqual(server.accepted, 0, "no server may be contacted for an incomplete CONNECT")
    }

    func testConnectSentByteByByteIsReassembledAndForwardedExactly() throws {
        let (engine, port, server, seen, received) = try mqttProxy()
        defer { engine.stop(); engine.wait(); server.stop() }
        let fd = TestSocket.connect(port: port)
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let packet = MQTTWire.connect(clientID: "one-byte-at-a-time", level: 5)
        for byte in packet {
            XCTAssertTrue(TestSocket.writeAll(fd, [byte]))
            usleep(2_000)
        }
        XCTAssertEqual(TestSocket.readExactly(fd, 4), [0x20, 0x02, 0x00, 0x00])
        XCTAssertTrue(TestSocket.writeAll(fd, MQTTWire.pingreq))
        shutdown(fd, Int32(SHUT_WR))
        _ = TestSocket.readToEnd(fd) { _ in }
        close(fd)
        XCTAssertTrue(eventually { received.current.count == packet.count + 2 })
        XCTAssertEqual(received.current, packet + MQTTWire.pingreq)
        XCTAssertEqual(seen.current, ["one-byte-at-a-time"])
    }

    func testConnectLargerThanOneBufferWithAPublishBehindItArrivesIntact() throws {
        let (engine, port, server, seen, received) = try mqttProxy() {
            $0.bufferSizeBytes = 4096
        }
        defer { engine.stop(); engine.wait(); server.stop() }
        // A 40 KiB will payload: the CONNECT spans ten 4 KiB buffers; a PUBLISH follows in the
        // same write.
        let packet = MQTTWire.connect(clientID: "big-will", willPayload: payload(size: 40_000, seed: 5))
        let publish: [UInt8] = [0x30] + MQTTWire.remainingLength(2 + 3 + 5) + MQTTWire.string(Array("a/b".utf8)) + Array("hello".utf8)
        let fd = TestSocket.connect(port: port)
        XCTAssertTrue(TestSocket.writeAll(fd, packet + publish))
        XCTAssertEqual(TestSocket.readExactly(fd, 4), [0x20, 0x02, 0x00, 0x00])
        shutdown(fd, Int32(SHUT_WR))
        _ = TestSocket.readToEnd(fd) { _ in }
        close(fd)
        XCTAssertTrue(eventually { received.current.count == packet.count + publish.count })
        XCTAssertEqual(received.current, packet + publish)
        XCTAssertEqual(seen.current, ["big-will"])
        XCTAssertEqual(engine.statistics().total[.mqttConnects], 1)
    }

    func testALargeConnectArrivingInBufferUnfriendlyChunksIsStillAssembled() throws {
        let (engine, port, server, _, received) = try mqttProxy()
        defer { engine.stop(); engine.wait(); server.stop() }
        // 10 KB chunks into 16 KiB buffers: no two chunks share a buffer, so a 60 KB CONNECT
        // takes six buffers while it is incomplete.
        let packet = MQTTWire.connect(clientID: "chunky", willPayload: payload(size: 60_000, seed: 9))
        let fd = TestSocket.connect(port: port)
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var offset = 0
        while offset < packet.count {
            let end = min(packet.count, offset + 10_000)
            XCTAssertTrue(TestSocket.writeAll(fd, Array(packet[offset..<end])))
            offset = end
            usleep(20_000)
        }
        XCTAssertEqual(TestSocket.readExactly(fd, 4), [0x20, 0x02, 0x00, 0x00])
        shutdown(fd, Int32(SHUT_WR))
        _ = TestSocket.readToEnd(fd) { _ in }
        close(fd)
        XCTAssertTrue(eventually { received.current.count == packet.count })
        XCTAssertEqual(received.current, packet)
        XCTAssertEqual(engine.statistics().total[.inspectTimeouts], 0)
    }

    func testOversizedConnectIsRejected() throws {
        let (engine, port, server, _, _) = try mqttProxy() {
            $0.frontends[0].connectMaxBytes = 1024
        }
        defer { engine.stop(); engine.wait(); server.stop() }
        let fd = TestSocket.connect(port: port)
        defer { close(fd) }
        _ = TestSocket.writeAll(fd, MQTTWire.connect(clientID: "too-big", password: payload(size: 5000, seed: 1)))
        XCTAssertTrue(TestSocket.readToEnd(fd) { _ in })
        XCTAssertEqual(engine.statistics().total.mqttRejectedByReason[Int(InvalidReason.tooLarge.rawValue)], 1)
        XCTAssertEqual(server.accepted, 0)
    }

    func testStatelessClientIDHashAgreesAcrossTwoIndependentInstances() throws {
        let seen = (0..<3).map { _ in Locked<[String]>([]) }
        let servers = seen.map { TestServer.recordingBroker($0) }
        defer { servers.forEach { $0.stop() } }
        let configure: (inout EngineConfig) -> Void = {
            $0.frontends[0].requireMQTT = true
            $0.backends[0].balance = .clientIDHash
        }
        let (a, portA) = try startEngine(servers: servers.map(\.port), configure)
        defer { a.stop(); a.wait() }
        let (b, portB) = try startEngine(servers: servers.map(\.port), configure)
        defer { b.stop(); b.wait() }
        let ids = (0..<200).map { "sensor-\($0)" }
        for id in ids {
            XCTAssertTrue(MQTTWire.session(port: portA, clientID: id))
            XCTAssertTrue(MQTTWire.session(port: portB, clientID: id))
        }
        XCTAssertTrue(eventually { seen.map { $0.current.count }.reduce(0, +) == ids.count * 2 })
        for (s, record) in seen.enumerated() {
            let counts = Dictionary(grouping: record.current, by: { $0 }).mapValues(\.count)
            XCTAssertTrue(counts.values.allSatisfy { $0 == 2 }, "server \(s): an id went to another server on one instance")
            XCTAssertGreaterThan(counts.count, 30, "server \(s) got too few ids: \(counts.count)")
        }
    }

    func testEmptyClientIDFallsBackToTheBalanceAlgorithm() throws {
        let seen = (0..<2).map { _ in Locked<[String]>([]) }
        let servers = seen.map { TestServer.recordingBroker($0) }
        defer { servers.forEach { $0.stop() } }
        let (engine, port) = try startEngine(servers: servers.map(\.port), cores: 1) {
            $0.frontends[0].requireMQTT = true
            $0.backends[0].stickTable = StickTableConfig()
        }
        defer { engine.stop(); engine.wait() }
        for _ in 0..<10 { XCTAssertTrue(MQTTWire.session(port: port, clientID: "")) }
        XCTAssertTrue(eventually { seen[0].current.count + seen[1].current.count == 10 })
        XCTAssertEqual(seen.map { $0.current.count }, [5, 5], "round robin for empty ids")
        XCTAssertEqual(engine.statistics().total[.stickHits] + engine.statistics().total[.stickMisses], 0)
    }

    func testStickyClientsOfADownServerMoveAndStayOnTheirNewServer() throws {
        let seen = (0..<3).map { _ in Locked<[String]>([]) }
        let servers = seen.map { TestServer.recordingBroker($0) }
        defer { servers.forEach { $0.stop() } }
        let (engine, port) = try startEngine(servers: servers.map(\.port), cores: 2) {
            $0.frontends[0].requireMQTT = true
            $0.backends[0].stickTable = StickTableConfig()
        }
        defer { engine.stop(); engine.wait() }
        let ids = (0..<60).map { "device-\($0)" }
        for id in ids { XCTAssertTrue(MQTTWire.session(port: port, clientID: id)) }
        XCTAssertTrue(eventually { seen.map { $0.current.count }.reduce(0, +) == ids.count })
        let onS1 = Set(seen[1].current)
        XCTAssertFalse(onS1.isEmpty)

        XCTAssertTrue(engine.setServer(backend: "servers", server: "s1", up: false))
        XCTAssertFalse(engine.setServer(backend: "servers", server: "nope", up: false))
        seen.forEach { $0.withLock { $0.removeAll() } }
        for _ in 0..<2 { for id in ids { XCTAssertTrue(MQTTWire.session(port: port, clientID: id)) } }
        XCTAssertTrue(eventually { seen.map { $0.current.count }.reduce(0, +) == ids.count * 2 })
        XCTAssertEqual(seen[1].current, [], "a down server got new clients")
        // Every client, moved or not, went to the same server both times: the entry followed.
        for id in ids {
            let where_ = seen.indices.filter { seen[$0].current.contains(id) }
            XCTAssertEqual(where_.count, 1, "\(id) went to servers \(where_)")
            XCTAssertEqual(seen[where_[0]].current.filter { $0 == id }.count, 2)
        }

        XCTAssertTrue(engine.setServer(backend: "servers", server: "s1", up: true))
        seen.forEach { $0.withLock { $0.removeAll() } }
        for id in onS1 { XCTAssertTrue(MQTTWire.session(port: port, clientID: id)) }
        XCTAssertTrue(eventually { seen.map { $0.current.count }.reduce(0, +) == onS1.count })
        XCTAssertEqual(seen[1].current, [], "moved clients stay where their entry now points")
    }

    func testEveryServerDownClosesClientsWithoutAnAttempt() throws {
        let (engine, port, server, _, _) = try mqttProxy()
        defer { engine.stop(); engine.wait(); server.stop() }
        XCTAssertTrue(engine.setServer(backend: "servers", server: "s0", up: false))
        XCTAssertFalse(MQTTWire.session(port: port, clientID: "nobody-home"))
        XCTAssertTrue(eventually { engine.statistics().total[.connectGiveUps] == 1 })
        XCTAssertEqual(engine.statistics().total[.connectAttempts], 0)
        XCTAssertEqual(server.accepted, 0)
        XCTAssertTrue(eventually { engine.statistics().total[.active] == 0 })
    }

    func testTheLargestCONNECTWithoutAWillIsAdmittedByDefault() throws {
        // Client id, user name and password of 65,535 bytes each: 196,625 bytes, refused with
        // no CONNACK by the former 64 KiB default.
        let (engine, port, server, seen, _) = try mqttProxy()
        defer { engine.stop(); engine.wait(); server.stop() }
        let id = String(repeating: "c", count: 65_535)
        let connect = MQTTWire.connect(clientID: id, username: String(repeating: "u", count: 65_535),
                                       password: [UInt8](repeating: 0x70, count: 65_535))
        XCTAssertEqual(connect.count, 196_625)
        let fd = TestSocket.connect(port: port)
        defer { close(fd) }
        XCTAssertTrue(TestSocket.writeAll(fd, connect))
        XCTAssertEqual(TestSocket.readExactly(fd, 4), [0x20, 0x02, 0x00, 0x00], "no CONNACK for the largest CONNECT without a will")
        XCTAssertTrue(eventually { seen.current == [id] })
        XCTAssertEqual(engine.statistics().total[.mqttRejected], 0)
    }
}
