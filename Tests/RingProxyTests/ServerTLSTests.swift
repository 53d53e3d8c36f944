// TLS towards the brokers (`server ... ssl`) end to end: real mosquitto brokers listening with
// TLS only, real clients through ringproxy (plain and TLS frontends), the broker's certificate
// verified against the CA and the name, refusals before any client byte leaves, bulk data both
// ways intact with TLS on both sides, each worker resuming its session, and a PROXY header sent
// in clear ahead of the ClientHello.
import Foundation
import Glibc
import XCTest
@testable import RingProxy

final class ServerTLSTests: XCTestCase {
    private func certificate(_ name: String) -> String { TLSTestCertificates.path(name) }

    private func verifiedTLS(sni: String? = "localhost") -> ServerTLSConfig {
        var tls = ServerTLSConfig()
        tls.caFile = certificate("ca.pem")
        tls.sni = sni.map { .fixed($0) }
        return tls
    }

    /// ringproxy with every server of the backend reached over `tls`.
    private func start(brokers: [Mosquitto], tls: ServerTLSConfig, cores: Int = 2,
                       _ configure: (inout EngineConfig) -> Void = { _ in }) throws -> (Engine, UInt16) {
        try startEngine(servers: brokers.map(\.port), cores: cores) { config in
            for i in config.backends[0].servers.indices { config.backends[0].servers[i].tls = tls }
            configure(&config)
        }
    }

    private func publish(port: UInt16, clientID: String, tlsFrontend: Bool = false) throws -> (Int32, String) {
        guard let pub = Tools.which("mosquitto_pub") else { throw XCTSkipError("mosquitto-clients is not installed") }
        var arguments = ["-h", "localhost", "-p", "\(port)", "-i", clientID, "-t", "rp/server-tls", "-m", "hello", "-q", "1"]
        if tlsFrontend { arguments += ["--cafile", certificate("ca.pem")] }
        return try ChildProcess(pub, arguments).finish(within: 10)
    }

    func testSessionsReachABrokerThatOnlySpeaksTLSVerifiedByItsCAAndName() throws {
        let brokers = try (0..<2).map { _ in try Mosquitto(tlsCertificate: "server.pem") }
        defer { brokers.forEach { $0.stop() } }
        let (engine, port) = try start(brokers: brokers, tls: verifiedTLS())
        defer { engine.stop(); engine.wait() }
        for i in 0..<6 {
            let (status, output) = try publish(port: port, clientID: "stls-\(i)")
            XCTAssertEqual(status, 0, output)
        }
        XCTAssertTrue(eventually { brokers.flatMap { $0.connectedClientIDs() }.count == 6 })
        XCTAssertEqual(Set(brokers.flatMap { $0.connectedClientIDs() }), Set((0..<6).map { "stls-\($0)" }))
        XCTAssertTrue(brokers.allSatisfy { !$0.connectedClientIDs().isEmpty }, "round robin over both TLS brokers")
        let stats = engine.statistics().total
        XCTAssertEqual(stats[.serverTLSHandshakes], 6)
        XCTAssertEqual(stats[.serverTLSHandshakeFailures], 0)
        XCTAssertEqual(stats[.buffersInUse], 0)
    }

    func testABrokerCertificateThatDoesNotVerifyIsRefusedBeforeAnyClientByteLeaves() throws {
        let broker = try Mosquitto(tlsCertificate: "server.pem")
        defer { broker.stop() }
        // Signed by the test CA, but for localhost, not for this name.
        let (engine, port) = try start(brokers: [broker], tls: verifiedTLS(sni: "broker.example.com"))
        defer { engine.stop(); engine.wait() }
        XCTAssertNotEqual(try publish(port: port, clientID: "stls-wrong-name").0, 0)
        // Another CA: the chain does not verify.
        var otherCA = verifiedTLS()
        otherCA.caFile = certificate("other-ca.pem")
        let (engine2, port2) = try start(brokers: [broker], tls: otherCA)
        defer { engine2.stop(); engine2.wait() }
        XCTAssertNotEqual(try publish(port: port2, clientID: "stls-other-ca").0, 0)
        XCTAssertTrue(eventually { engine.statistics().total[.serverTLSHandshakeFailures] == 1 })
        XCTAssertTrue(eventually { engine2.statistics().total[.serverTLSHandshakeFailures] == 1 })
        usleep(200_000)
        XCTAssertEqual(broker.connectedClientIDs(), [], "no CONNECT reached the broker")
        XCTAssertEqual(engine.statistics().total[.buffersInUse], 0)
        // `verify none` takes the same broker.
        var none = ServerTLSConfig()
        none.verify = .none
        let (engine3, port3) = try start(brokers: [broker], tls: none)
        defer { engine3.stop(); engine3.wait() }
        XCTAssertEqual(try publish(port: port3, clientID: "stls-verify-none").0, 0)
        XCTAssertTrue(eventually { broker.connectedClientIDs() == ["stls-verify-none"] })
    }

    func testBulkBothWaysWithTLSOnBothSidesArrivesIntact() throws {
        let broker = try Mosquitto(tlsCertificate: "server.pem")
        defer { broker.stop() }
        let (engine, port) = try start(brokers: [broker], tls: verifiedTLS()) { config in
            config.frontends[0].tls = TLSBindConfig(certificatePaths: [self.certificate("server.pem")])
        }
        defer { engine.stop(); engine.wait() }
        // Messages of sizes around the buffer and record sizes, published at QoS 1 and received
        // through ringproxy again by a subscriber: digests must match in order.
        let script = TLSClientScripts.pahoPublishAndReceive(topic: "bulk", clientPrefix: "stls")
        let (status, output) = try ChildProcess("/usr/bin/env", ["python3", "-W", "ignore", "-c", script, "\(port)", certificate("ca.pem")]).finish(within: 40)
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("received 18 of 18 intact"), output)
        XCTAssertTrue(eventually { engine.statistics().total[.active] == 0 })
        let stats = engine.statistics().total
        XCTAssertEqual(stats[.tlsHandshakes], 2)
        XCTAssertEqual(stats[.serverTLSHandshakes], 2)
        XCTAssertEqual(stats[.serverTLSRecordErrors], 0)
        XCTAssertEqual(stats[.buffersInUse], 0)
        XCTAssertEqual(stats[.ownedBuffersInUse], 0)
    }

    func testEachWorkerResumesItsLastSessionWithTheBroker() throws {
        let broker = try Mosquitto(tlsCertificate: "server.pem")
        defer { broker.stop() }
        let (engine, port) = try start(brokers: [broker], tls: verifiedTLS(), cores: 1)
        defer { engine.stop(); engine.wait() }
        for i in 0..<8 { XCTAssertEqual(try publish(port: port, clientID: "stls-resume-\(i)").0, 0) }
        XCTAssertTrue(eventually { engine.statistics().total[.serverTLSHandshakes] == 8 })
        // The first is full; each later one offers the ticket the one before received.
        XCTAssertGreaterThanOrEqual(engine.statistics().total[.serverTLSResumedHandshakes], 6)

        var noReuse = verifiedTLS()
        noReuse.reusesSessions = false
        let (engine2, port2) = try start(brokers: [broker], tls: noReuse, cores: 1)
        defer { engine2.stop(); engine2.wait() }
        for i in 0..<4 { XCTAssertEqual(try publish(port: port2, clientID: "stls-noreuse-\(i)").0, 0) }
        XCTAssertTrue(eventually { engine2.statistics().total[.serverTLSHandshakes] == 4 })
        XCTAssertEqual(engine2.statistics().total[.serverTLSResumedHandshakes], 0, "no-ssl-reuse")
    }

    func testAServerCAFileThatDoesNotLoadStopsTheStartNamingTheServer() throws {
        var tls = verifiedTLS()
        tls.caFile = "/nonexistent/brokers-ca.pem"
        XCTAssertThrowsError(try startEngine(servers: [1]) { config in
            config.backends[0].servers[0].tls = tls
            config.backends[0].servers[0].source = "haproxy.cfg:12"
        }) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("haproxy.cfg:12: server 'servers/s0'") && text.contains("brokers-ca.pem"), text)
        }
    }

    func testAServerThatClosesDuringTheHandshakeIsAFailedConnect() throws {
        let server = TestServer(port: 0) { fd in
            var buffer = [UInt8](repeating: 0, count: 4096)
            _ = read(fd, &buffer, buffer.count)   // the ClientHello, then gone
        }
        defer { server.stop() }
        var tls = ServerTLSConfig()
        tls.verify = .none
        let (engine, port) = try startEngine(servers: [server.port]) { config in
            config.backends[0].servers[0].tls = tls
            config.serverTimeoutMs = 60_000
        }
        defer { engine.stop(); engine.wait() }
        let client = TestSocket.connect(port: port)
        defer { close(client) }
        _ = TestSocket.writeAll(client, MQTTWire.connect(clientID: "stls-closed"))
        XCTAssertTrue(TestSocket.isEndedByPeer(client, withinSeconds: 3), "closed at once, not at timeout server")
        XCTAssertTrue(eventually { engine.statistics().total[.active] == 0 })
        XCTAssertEqual(engine.statistics().total[.serverTLSHandshakeFailures], 1)
        XCTAssertEqual(engine.statistics().total[.buffersInUse], 0)
    }

    /// accept-proxy in front, TLS behind: the front balancer's header is consumed and the
    /// CONNECT that came in the same segment is what the broker gets, inside TLS.
    func testAPROXYHeaderReceivedWithTheCONNECTLeavesOnlyTheCONNECTForATLSBroker() throws {
        let broker = try Mosquitto(tlsCertificate: "server.pem")
        defer { broker.stop() }
        let (engine, port) = try start(brokers: [broker], tls: verifiedTLS()) { config in
            config.frontends[0].acceptProxy = true
        }
        defer { engine.stop(); engine.wait() }
        let client = TestSocket.connect(port: port)
        defer { close(client) }
        let header = Array("PROXY TCP4 10.0.0.7 10.0.1.1 5000 1883\r\n".utf8)
        XCTAssertTrue(TestSocket.writeAll(client, header + MQTTWire.connect(clientID: "stls-behind-proxy")))
        XCTAssertEqual(TestSocket.readExactly(client, 4), [0x20, 0x02, 0x00, 0x00], "CONNACK accepted")
        XCTAssertTrue(eventually { broker.connectedClientIDs() == ["stls-behind-proxy"] })
    }

    /// TLS on both sides, a client that ends with close_notify alone (Python's unwrap): it is
    /// passed on as the broker's close_notify, then FIN; nothing is reset.
    func testACloseNotifyAloneIsPassedOnAndNothingIsReset() throws {
        let broker = try Mosquitto(tlsCertificate: "server.pem")
        defer { broker.stop() }
        let (engine, port) = try start(brokers: [broker], tls: verifiedTLS()) { config in
            config.frontends[0].tls = TLSBindConfig(certificatePaths: [self.certificate("server.pem")])
        }
        defer { engine.stop(); engine.wait() }
        let connect = MQTTWire.connect(clientID: "stls-unwrap").map { String(format: "%02x", $0) }.joined()
        let script = """
        import socket, ssl, sys
        ctx = ssl.create_default_context(cafile=sys.argv[2])
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), server_hostname="localhost")
        s.sendall(bytes.fromhex(sys.argv[3]))
        ack = s.recv(4)
        print("CONNACK", ack.hex())
        try:
            s.unwrap()
            print("UNWRAPPED")
        except Exception as e:
            print("UNWRAP", type(e).__name__, e)
        """
        let (status, output) = try ChildProcess("/usr/bin/env", ["python3", "-c", script, "\(port)", certificate("ca.pem"), connect]).finish(within: 20)
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("CONNACK 20020000"), output)
        XCTAssertTrue(eventually { engine.statistics().total[.active] == 0 }, "the connection ended")
        XCTAssertEqual(engine.statistics().total[.resets], 0, output)
        XCTAssertEqual(engine.statistics().total[.serverTLSRecordErrors], 0)
    }

    func testAPROXYHeaderGoesInClearAheadOfTheClientHello() throws {
        let received = Locked<[UInt8]>([])
        let server = TestServer(port: 0) { fd in
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = read(fd, &buffer, buffer.count)
            if n > 0 { received.withLock { $0 += buffer[0..<n] } }
        }
        defer { server.stop() }
        var tls = ServerTLSConfig()
        tls.verify = .none
        let (engine, port) = try startEngine(servers: [server.port]) { config in
            config.backends[0].servers[0].tls = tls
            config.backends[0].servers[0].proxyProtocol = .v1
        }
        defer { engine.stop(); engine.wait() }
        let client = TestSocket.connect(port: port)
        defer { close(client) }
        _ = MQTTWire.connect(clientID: "stls-pp").withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
        XCTAssertTrue(eventually { received.withLock { $0.count } > 60 })
        let bytes = received.withLock { $0 }
        let header = String(decoding: bytes.prefix(while: { $0 != 0x0A }), as: UTF8.self)
        XCTAssertTrue(header.hasPrefix("PROXY TCP4 127.0.0.1 127.0.0.1 "), header)
        let rest = bytes.dropFirst(header.utf8.count + 1)
        XCTAssertEqual(Array(rest.prefix(3)), [0x16, 0x03, 0x01], "a TLS handshake record (ClientHello) right after the header")
        XCTAssertFalse(bytes.contains(subsequence: Array("stls-pp".utf8)), "the CONNECT waits for the handshake")
    }
}

private extension Array where Element == UInt8 {
    func contains(subsequence: [UInt8]) -> Bool {
        guard subsequence.count <= count else { return false }
        return (0...(count - subsequence.count)).contains { Array(self[$0..<($0 + subsequence.count)]) == subsequence }
    }
}
