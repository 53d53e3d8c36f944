// MQTT over WebSocket through ringproxy's MQTT-aware mode (`option mqtt-websocket`) against
// real mosquitto brokers with `protocol websockets` listeners: a hand-made client that checks
// every byte of the exchange, paho-mqtt's websocket transport, stickiness by client id, and
// every refusal (HTTP errors, close frames) reaching no broker.
import Foundation
import Glibc
import XCTest
@testable import RingProxy

final class WebSocketTests: XCTestCase {
    /// The client side of RFC 6455 by hand: an upgrade request, masked binary frames.
    enum WSClient {
        static func upgrade(path: String = "/mqtt", protocols: String? = "mqtt", extensions: String? = nil) -> [UInt8] {
            var text = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            if let protocols { text += "Sec-WebSocket-Protocol: \(protocols)\r\n" }
            if let extensions { text += "Sec-WebSocket-Extensions: \(extensions)\r\n" }
            return Array((text + "\r\n").utf8)
        }

        /// One masked frame (opcode 2 binary unless told), FIN unless `more`.
        static func frame(_ payload: [UInt8], opcode: UInt8 = 2, fin: Bool = true) -> [UInt8] {
            var out: [UInt8] = [(fin ? 0x80 : 0) | opcode]
            if payload.count < 126 {
                out.append(0x80 | UInt8(payload.count))
            } else {
                out += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
            }
            let key: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]
            out += key
            out += payload.enumerated().map { $0.element ^ key[$0.offset & 3] }
            return out
        }

        /// Reads an HTTP response head; nil on EOF before its end.
        static func readHead(_ fd: Int32) -> String? {
            var bytes: [UInt8] = []
            while !(bytes.count >= 4 && bytes.suffix(4) == [13, 10, 13, 10]) {
                guard let b = TestSocket.readExactly(fd, 1) else { return nil }
                bytes += b
            }
            return String(decoding: bytes, as: UTF8.self)
        }

        /// Reads one unmasked server frame: (opcode, payload).
        static func readFrame(_ fd: Int32) -> (UInt8, [UInt8])? {
            guard let head = TestSocket.readExactly(fd, 2) else { return nil }
            var length = Int(head[1] & 0x7F)
            if length == 126 {
                guard let ext = TestSocket.readExactly(fd, 2) else { return nil }
                length = Int(ext[0]) << 8 | Int(ext[1])
            }
            guard let payload = length == 0 ? [] : TestSocket.readExactly(fd, length) else { return nil }
            return (head[0] & 0x0F, payload)
        }
    }

    private func startProxy(brokers: [Mosquitto], path: String? = "/mqtt", sticky: Bool = false) throws -> (Engine, UInt16) {
        try startProxy(servers: brokers.map(\.port), path: path) { config in
            if sticky { config.backends[0].stickTable = StickTableConfig() }
            config.log = LogConfig(destination: .stderr)
        }
    }

    private func startProxy(servers: [UInt16], path: String? = "/mqtt", cores: Int = 2,
                            _ configure: (inout EngineConfig) -> Void = { _ in }) throws -> (Engine, UInt16) {
        try startEngine(servers: servers, cores: cores) { config in
            config.frontends[0].webSocket = WebSocketFrontendConfig(path: path, requireSubprotocol: true)
            configure(&config)
        }
    }

    /// A client that got the proxy's 101 and sent its CONNECT frame.
    private func upgradedClient(port: UInt16, clientID: String, file: StaticString = #filePath, line: UInt = #line) -> Int32 {
        let fd = TestSocket.connect(port: port)
        XCTAssertTrue(TestSocket.writeAll(fd, WSClient.upgrade()), file: file, line: line)
        XCTAssertNotNil(WSClient.readHead(fd), file: file, line: line)
        XCTAssertTrue(TestSocket.writeAll(fd, WSClient.frame(MQTTWire.connect(clientID: clientID))), file: file, line: line)
        return fd
    }

    /// A whole MQTT session over WebSocket through the proxy: 101 from the proxy, CONNACK from
    /// the broker in a binary frame, DISCONNECT. Returns the 101's head.
    @discardableResult
    private func session(port: UInt16, clientID: String, extensions: String? = nil, file: StaticString = #filePath, line: UInt = #line) -> String? {
        let fd = TestSocket.connect(port: port)
        defer { close(fd) }
        guard TestSocket.writeAll(fd, WSClient.upgrade(extensions: extensions)), let head = WSClient.readHead(fd) else {
            XCTFail("no 101", file: file, line: line)
            return nil
        }
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"), head, file: file, line: line)
        XCTAssertTrue(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), head, file: file, line: line)
        XCTAssertTrue(head.contains("Sec-WebSocket-Protocol: mqtt\r\n"), head, file: file, line: line)
        XCTAssertTrue(TestSocket.writeAll(fd, WSClient.frame(MQTTWire.connect(clientID: clientID))), file: file, line: line)
        guard let (opcode, connack) = WSClient.readFrame(fd) else {
            XCTFail("no CONNACK frame", file: file, line: line)
            return head
        }
        XCTAssertEqual(opcode, 2, file: file, line: line)
        XCTAssertEqual(connack, [0x20, 0x02, 0x00, 0x00], "the broker's CONNACK, and only it (its 101 was dropped)", file: file, line: line)
        XCTAssertTrue(TestSocket.writeAll(fd, WSClient.frame(MQTTWire.disconnect)), file: file, line: line)
        return head
    }

    func testASessionGoesThroughAndTheBrokers101NeverReachesTheClient() throws {
        let broker = try Mosquitto(websockets: true)
        defer { broker.stop() }
        let (engine, port) = try startProxy(brokers: [broker])
        defer { engine.stop(); engine.wait() }
        session(port: port, clientID: "ws-one")
        XCTAssertTrue(eventually { broker.connectedClientIDs().contains("ws-one") })
        // A browser offers permessage-deflate: the proxy's 101 accepts no extension, and the
        // replay to the broker must not let it accept one either.
        let head = session(port: port, clientID: "ws-deflate", extensions: "permessage-deflate; client_max_window_bits")
        XCTAssertFalse(head?.lowercased().contains("sec-websocket-extensions") ?? true)
        XCTAssertTrue(eventually { broker.connectedClientIDs().contains("ws-deflate") })
        let stats = engine.statistics().total
        XCTAssertEqual(stats[.webSocketUpgrades], 2)
        XCTAssertEqual(stats[.mqttConnects], 2)
        XCTAssertEqual(stats[.webSocketServerRefused], 0)
    }

    func testAConnectSplitOverFramesAndSegmentsIsReassembled() throws {
        let broker = try Mosquitto(websockets: true)
        defer { broker.stop() }
        let (engine, port) = try startProxy(brokers: [broker])
        defer { engine.stop(); engine.wait() }
        let fd = TestSocket.connect(port: port)
        defer { close(fd) }
        XCTAssertTrue(TestSocket.writeAll(fd, WSClient.upgrade()))
        XCTAssertNotNil(WSClient.readHead(fd))
        let connect = MQTTWire.connect(clientID: "ws-fragmented-client", username: "someone")
        let third = connect.count / 3
        var frames = WSClient.frame(Array(connect[0..<third]), opcode: 2, fin: false)
        frames += WSClient.frame([1, 2], opcode: 9)   // a ping between the fragments
        frames += WSClient.frame(Array(connect[third..<(2 * third)]), opcode: 0, fin: false)
        frames += WSClient.frame(Array(connect[(2 * third)...]), opcode: 0, fin: true)
        for byte in frames {   // one byte per segment
            XCTAssertTrue(TestSocket.writeAll(fd, [byte]))
            usleep(200)
        }
        var sawConnack = false
        while let (opcode, payload) = WSClient.readFrame(fd) {
            if opcode == 2 { XCTAssertEqual(payload, [0x20, 0x02, 0x00, 0x00]); sawConnack = true; break }
            XCTAssertEqual(opcode, 0xA, "only the pong to the ping may come first")
        }
        XCTAssertTrue(sawConnack)
        XCTAssertTrue(eventually { broker.connectedClientIDs().contains("ws-fragmented-client") })
    }

    func testWebSocketClientsStickToTheirBrokerByClientID() throws {
        let brokers = try (0..<3).map { _ in try Mosquitto(websockets: true) }
        defer { brokers.forEach { $0.stop() } }
        let (engine, port) = try startProxy(brokers: brokers, sticky: true)
        defer { engine.stop(); engine.wait() }
        let ids = (0..<12).map { "ws-sticky-\($0)" }
        for _ in 0..<3 { for id in ids { session(port: port, clientID: id) } }
        XCTAssertTrue(eventually { brokers.map { $0.connectedClientIDs().count }.reduce(0, +) == 36 })
        var owners: [String: Set<Int>] = [:]
        for (b, broker) in brokers.enumerated() { for id in broker.connectedClientIDs() { owners[id, default: []].insert(b) } }
        XCTAssertEqual(owners.count, 12)
        XCTAssertTrue(owners.values.allSatisfy { $0.count == 1 }, "a client id moved: \(owners)")
        XCTAssertGreaterThan(Set(owners.values.map { $0.first! }).count, 1, "spread over brokers")
    }

    func testBadRequestsGetAnHTTPErrorAndReachNoBroker() throws {
        let broker = try Mosquitto(websockets: true)
        defer { broker.stop() }
        let (engine, port) = try startProxy(brokers: [broker])
        defer { engine.stop(); engine.wait() }
        let before = broker.connectionCount()
        let cases: [([UInt8], String)] = [
            (Array("GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n".utf8), "HTTP/1.1 400"),
            (WSClient.upgrade(path: "/other"), "HTTP/1.1 404"),
            (WSClient.upgrade(protocols: "chat"), "HTTP/1.1 400"),
            (Array("POST /mqtt HTTP/1.1\r\nHost: x\r\n\r\n".utf8), "HTTP/1.1 405"),
            (Array("GET /mqtt HTTP/1.1\r\nHost: x\r\n".utf8)
                + (0..<10).flatMap { Array("X-Big-\($0): \(String(repeating: "a", count: 1_000))\r\n".utf8) }, "HTTP/1.1 431"),
        ]
        for (request, status) in cases {
            let fd = TestSocket.connect(port: port)
            _ = TestSocket.writeAll(fd, request)
            var response: [UInt8] = []
            XCTAssertTrue(TestSocket.readToEnd(fd) { response += $0 })
            close(fd)
            XCTAssertTrue(String(decoding: response, as: UTF8.self).hasPrefix(status), "\(status): \(String(decoding: response, as: UTF8.self))")
        }
        XCTAssertEqual(engine.statistics().total[.webSocketRejectedRequests], 5)
        usleep(100_000)
        XCTAssertEqual(broker.connectionCount(), before, "no broker saw any of them")
    }

    func testAFirstMessageThatIsNotAConnectGetsACloseFrame() throws {
        let broker = try Mosquitto(websockets: true)
        defer { broker.stop() }
        let (engine, port) = try startProxy(brokers: [broker])
        defer { engine.stop(); engine.wait() }
        let before = broker.connectionCount()
        let cases: [([UInt8], UInt16)] = [
            (WSClient.frame([0x30, 0x03, 0x00, 0x01, 0x61]), 1002),                  // a PUBLISH first
            (WSClient.frame(Array("hello".utf8), opcode: 1), 1003),                  // a text frame
            (Array(WSClient.frame(MQTTWire.connect(clientID: "x")).enumerated().map { $0.offset == 1 ? $0.element & 0x7F : $0.element }), 1002), // unmasked
        ]
        for (frames, code) in cases {
            let fd = TestSocket.connect(port: port)
            XCTAssertTrue(TestSocket.writeAll(fd, WSClient.upgrade()))
            XCTAssertNotNil(WSClient.readHead(fd))
            XCTAssertTrue(TestSocket.writeAll(fd, frames))
            let frame = WSClient.readFrame(fd)
            XCTAssertEqual(frame?.0, 8, "a close frame")
            XCTAssertEqual(frame.map { UInt16($0.1[0]) << 8 | UInt16($0.1[1]) }, code)
            XCTAssertTrue(TestSocket.isClosedByPeer(fd))
            close(fd)
        }
        usleep(100_000)
        XCTAssertEqual(broker.connectionCount(), before)
        XCTAssertEqual(engine.statistics().total[.webSocketRejectedFrames], 2)
        XCTAssertEqual(engine.statistics().total[.mqttRejected], 1)
    }

    func testABrokerThatRefusesTheUpgradeGetsTheClientAClose1011() throws {
        // A plain MQTT listener answers the replayed HTTP request by dropping it.
        let plainBroker = try Mosquitto()
        defer { plainBroker.stop() }
        let (engine, port) = try startProxy(brokers: [plainBroker])
        defer { engine.stop(); engine.wait() }
        let fd = upgradedClient(port: port, clientID: "ws-plain")
        defer { close(fd) }
        // mosquitto closes a connection whose first byte is not CONNECT: the client sees the
        // connection end without any byte of the broker's.
        var rest: [UInt8] = []
        _ = TestSocket.readToEnd(fd) { rest += $0 }
        XCTAssertFalse(rest.starts(with: Array("HTTP".utf8)), "no byte of a broker's HTTP answer reaches the client")
    }

    /// A server that reads the replayed upgrade head and answers `status` (then closes), or
    /// closes at once when `status` is nil.
    private static func refusingUpgradeServer(status: String?) -> TestServer {
        TestServer { fd in
            guard WSClient.readHead(fd) != nil, let status else { return }
            _ = TestSocket.writeAll(fd, Array("HTTP/1.1 \(status)\r\nContent-Length: 0\r\n\r\n".utf8))
        }
    }

    /// A WebSocket broker that accepts the upgrade (the test client's key) and refuses every
    /// CONNECT with CONNACK 0x03 (server unavailable) in a binary frame.
    private static func connackRefusingWebSocketServer() -> TestServer {
        TestServer { fd in
            guard WSClient.readHead(fd) != nil else { return }
            _ = TestSocket.writeAll(fd, Array(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n").utf8))
            guard TestSocket.readExactly(fd, 2) != nil else { return }
            _ = TestSocket.writeAll(fd, [0x82, 0x04, 0x20, 0x02, 0x00, 0x03])
        }
    }

    func testAServerThatRefusesTheUpgradeOrClosesIsLeftForTheNextOne() throws {
        let broker = try Mosquitto(websockets: true)
        let refusers = [Self.refusingUpgradeServer(status: "503 Service Unavailable"), Self.refusingUpgradeServer(status: nil)]
        defer { broker.stop(); refusers.forEach { $0.stop() } }
        let (engine, port) = try startProxy(servers: refusers.map(\.port) + [broker.port], cores: 1)
        defer { engine.stop(); engine.wait() }
        for i in 0..<6 { session(port: port, clientID: "ws-redispatched-\(i)") }
        XCTAssertTrue(eventually { (0..<6).allSatisfy { broker.connectedClientIDs().contains("ws-redispatched-\($0)") } })
        XCTAssertGreaterThan(refusers[0].accepted, 0)
        XCTAssertGreaterThan(refusers[1].accepted, 0)
        let stats = engine.statistics().total
        XCTAssertEqual(stats[.redispatchUpgradeRefused], UInt64(refusers[0].accepted), "each 503 redispatched")
        XCTAssertEqual(stats[.redispatchServerClosed], UInt64(refusers[1].accepted), "each close before the 101 redispatched")
        XCTAssertEqual(stats[.webSocketServerRefused], 0, "no client got a close frame")
    }

    func testWhenEveryServerRefusesTheUpgradeTheClientGetsClose1011() throws {
        let refusers = [Self.refusingUpgradeServer(status: "503 Service Unavailable"), Self.refusingUpgradeServer(status: nil)]
        defer { refusers.forEach { $0.stop() } }
        let (engine, port) = try startProxy(servers: refusers.map(\.port), cores: 1) { $0.backends[0].retries = 2 }
        defer { engine.stop(); engine.wait() }
        let fd = upgradedClient(port: port, clientID: "ws-nowhere")
        defer { close(fd) }
        let frame = WSClient.readFrame(fd)
        XCTAssertEqual(frame?.0, 8, "a close frame")
        XCTAssertEqual(frame.map { UInt16($0.1[0]) << 8 | UInt16($0.1[1]) }, 1011)
        XCTAssertTrue(TestSocket.isClosedByPeer(fd))
        XCTAssertTrue(eventually { refusers.map(\.accepted).reduce(0, +) == 3 }, "the first attempt and 2 retries")
        XCTAssertEqual(engine.statistics().total[.webSocketServerRefused], 1)
    }

    func testWithTheConnackOptionAWebSocketBrokersRefusalIsRedispatched() throws {
        let broker = try Mosquitto(websockets: true)
        let refuser = Self.connackRefusingWebSocketServer()
        defer { broker.stop(); refuser.stop() }
        let (engine, port) = try startProxy(servers: [refuser.port, broker.port], cores: 1) { $0.backends[0].connackRedispatch = true }
        defer { engine.stop(); engine.wait() }
        for i in 0..<4 { session(port: port, clientID: "ws-connack-\(i)") }
        XCTAssertTrue(eventually { (0..<4).allSatisfy { broker.connectedClientIDs().contains("ws-connack-\($0)") } })
        XCTAssertGreaterThan(refuser.accepted, 0)
        XCTAssertEqual(engine.statistics().total[.redispatchServerUnavailable], UInt64(refuser.accepted))
    }

    func testPahoOverWebSocketsConnectsThroughTheBrokerThatAccepts() throws {
        try Paho.requireInstalled()
        let broker = try Mosquitto(websockets: true)
        let refuser = Self.refusingUpgradeServer(status: "503 Service Unavailable")
        defer { broker.stop(); refuser.stop() }
        let (engine, port) = try startProxy(servers: [refuser.port, broker.port])
        defer { engine.stop(); engine.wait() }
        let codes = try Paho.connectEach(port: port, count: 6, prefix: "paho-ws-redispatch", websockets: true)
        XCTAssertEqual(codes, [0: 6], "every client connected")
        XCTAssertGreaterThan(refuser.accepted, 0, "some went to the refusing server first")
        XCTAssertTrue(eventually { (0..<6).allSatisfy { broker.connectedClientIDs().contains("paho-ws-redispatch-\($0)") } })
    }

    func testOverTLSTooTheBrokersAnswerIsJudgedBeforeItIsSealedForTheClient() throws {
        let broker = try Mosquitto(websockets: true)
        let refuser = Self.refusingUpgradeServer(status: "503 Service Unavailable")
        defer { broker.stop(); refuser.stop() }
        let (engine, port) = try startProxy(servers: [refuser.port, broker.port]) { config in
            config.frontends[0].tls = TLSBindConfig(certificatePaths: [TLSTestCertificates.path("server.pem")])
        }
        defer { engine.stop(); engine.wait() }
        let codes = try Paho.connectEach(port: port, count: 6, prefix: "paho-wss-redispatch", websockets: true,
                                         caFile: TLSTestCertificates.path("ca.pem"))
        XCTAssertEqual(codes, [0: 6], "every client connected over WSS")
        XCTAssertGreaterThan(refuser.accepted, 0)
        XCTAssertTrue(eventually { (0..<6).allSatisfy { broker.connectedClientIDs().contains("paho-wss-redispatch-\($0)") } })
        let stats = engine.statistics().total
        XCTAssertEqual(stats[.tlsHandshakes], 6)
        XCTAssertEqual(stats[.tlsRecordErrors], 0)
        XCTAssertEqual(stats[.webSocketServerRefused], 0)
    }

    func testPahoOverWebSocketsPublishesAndReceivesThroughTheProxy() throws {
        // python3 as the PATH finds it (the one install-deps.sh gave paho-mqtt to).
        guard (try? ChildProcess("/usr/bin/env", ["python3", "-c", "import paho.mqtt.client"]).finish(within: 10).0) == 0 else {
            throw XCTSkipError("paho-mqtt is not installed (pip install paho-mqtt)")
        }
        let broker = try Mosquitto(websockets: true)
        defer { broker.stop() }
        let (engine, port) = try startProxy(brokers: [broker])
        defer { engine.stop(); engine.wait() }
        let script = """
            import sys, threading, paho.mqtt.client as mqtt
            got = threading.Event()
            c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="paho-ws-through-ringproxy", transport="websockets")
            c.ws_set_options(path="/mqtt")
            c.on_connect = lambda cl, u, f, rc, p=None: cl.subscribe("rp/ws/test", qos=1)
            c.on_subscribe = lambda cl, u, mid, rc, p=None: cl.publish("rp/ws/test", b"through ringproxy", qos=1)
            def on_message(cl, u, m):
                if m.payload == b"through ringproxy": got.set()
            c.on_message = on_message
            c.connect("127.0.0.1", \(port), keepalive=30)
            c.loop_start()
            ok = got.wait(10)
            c.disconnect(); c.loop_stop()
            print("ROUNDTRIP" if ok else "NOTHING")
            sys.exit(0 if ok else 1)
            """
        let (status, output) = try ChildProcess("/usr/bin/env", ["python3", "-c", script]).finish(within: 20)
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("ROUNDTRIP"), output)
        XCTAssertTrue(broker.connectedClientIDs().contains("paho-ws-through-ringproxy"))
    }
}
