// The connection log: HAProxy's tcplog layout with the MQTT client id, over syslog UDP
// (RFC 3164), written without allocating on the worker.
import Foundation
import Glibc
import XCTest
@testable import RingProxy

final class ConnectionLogTests: XCTestCase {
    /// An MQTT-checking engine logging to a fresh syslog receiver, in front of a recording broker.
    private func loggingEngine(_ configure: @escaping (inout EngineConfig) -> Void = { _ in })
        throws -> (engine: Engine, port: UInt16, syslog: SyslogReceiver, server: TestServer) {
        let syslog = SyslogReceiver()
        let server = TestServer.recordingBroker(Locked<[String]>([]))
        let (engine, port) = try startEngine(servers: [server.port], cores: 1) {
            $0.frontends[0].requireMQTT = true
            $0.log = syslog.logConfig
            configure(&$0)
        }
        return (engine, port, syslog, server)
    }

    func testEachConnectionGetsOneTcplogLineWithItsClientIDOverSyslog() throws {
        let (engine, port, syslog, server) = try loggingEngine()
        defer { engine.stop(); engine.wait(); server.stop() }
        XCTAssertTrue(MQTTWire.session(port: port, clientID: "sensor-7"))
        let junk = TestSocket.connect(port: port)
        _ = TestSocket.writeAll(junk, Array("GET / HTTP/1.0\r\n\r\n".utf8))
        _ = TestSocket.readToEnd(junk) { _ in }
        close(junk)
        let lines = syslog.receive(count: 2)
        XCTAssertEqual(lines.count, 2, "\(lines)")
        let session = try XCTUnwrap(lines.first { $0.contains("{sensor-7}") }, "\(lines)")
        // <158> = local3 (19) * 8 + info (6); then the RFC 3164 date and tag.
        let pattern = #"^<158>[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d ringproxy\[\d+\]: 127\.0\.0\.1:\d+ \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d\.\d{3}\] test servers/s0 0/\d+/\d+ 4 -- \d+/\d+/\d+/\d+/0 0/0 \{sensor-7\}$"#
        XCTAssertNotNil(session.range(of: pattern, options: .regularExpression), session)
        let rejected = try XCTUnwrap(lines.first { !$0.contains("sensor-7") })
        XCTAssertTrue(rejected.contains(" test servers/<NOSRV> -1/-1/"), rejected)
        XCTAssertTrue(rejected.contains(" 0 PR "), rejected)
    }

    /// A port probe: connect, send nothing, close (keepalived's check, a balancer's health check).
    private func probe(_ port: UInt16) {
        let fd = TestSocket.connect(port: port)
        close(fd)
    }

    func testDontlognullLeavesOutConnectionsThatSentNothingButCountsThem() throws {
        let (engine, port, syslog, server) = try loggingEngine { $0.frontends[0].dontLogNull = true }
        defer { engine.stop(); engine.wait(); server.stop() }
        for _ in 0..<3 { probe(port) }
        XCTAssertTrue(eventually { engine.statistics().total[.closed] == 3 }, "the probes are accepted and closed")
        // One byte is enough to be logged: a rejected non-MQTT client, then a session. Lines
        // leave in close order, so a logged probe would come first.
        let junk = TestSocket.connect(port: port)
        _ = TestSocket.writeAll(junk, Array("GET / HTTP/1.0\r\n\r\n".utf8))
        _ = TestSocket.readToEnd(junk) { _ in }
        close(junk)
        XCTAssertTrue(eventually { engine.statistics().total[.closed] == 4 })
        XCTAssertTrue(MQTTWire.session(port: port, clientID: "sensor-8"))
        let lines = syslog.receive(count: 2)
        XCTAssertEqual(lines.count, 2, "\(lines)")
        XCTAssertTrue(lines[0].contains(" test servers/<NOSRV> ") && lines[0].contains(" 0 PR "), "the rejected client first: \(lines)")
        XCTAssertTrue(lines[1].contains("{sensor-8}"), "\(lines)")
        XCTAssertTrue(eventually { engine.statistics().total[.closed] == 5 })
        XCTAssertEqual(engine.statistics().total[.accepted], 5, "null connections are still counted")
    }

    func testWithoutDontlognullAProbeIsLogged() throws {
        let (engine, port, syslog, server) = try loggingEngine()
        defer { engine.stop(); engine.wait(); server.stop() }
        probe(port)
        let lines = syslog.receive(count: 1)
        XCTAssertEqual(lines.count, 1, "\(lines)")
        XCTAssertTrue(lines.first?.contains(" test servers/<NOSRV> ") == true, "\(lines)")
        XCTAssertTrue(lines.first?.contains(" 0 C") == true, "closed by the client before sending anything: \(lines)")
    }

    func testLoggingAllocatesNothingOnTheWorker() throws {
        let (engine, port, syslog, server) = try loggingEngine { $0.backends[0].stickTable = StickTableConfig() }
        defer { engine.stop(); engine.wait(); server.stop() }
        for i in 0..<20 { XCTAssertTrue(MQTTWire.session(port: port, clientID: "warm-\(i)")) }
        XCTAssertTrue(eventually { engine.statistics().total[.active] == 0 })
        let before = engine.statistics().total.threadAllocatedBytes
        for i in 0..<200 { XCTAssertTrue(MQTTWire.session(port: port, clientID: "client-\(i % 50)")) }
        XCTAssertTrue(eventually { engine.statistics().total[.active] == 0 })
        let after = engine.statistics().total.threadAllocatedBytes
        guard before >= 0 else { return try jemallocMissing() }
        XCTAssertEqual(after - before, 0, "the worker allocated while inspecting, routing, sticking and logging 200 connections")
        XCTAssertEqual(syslog.receive(count: 220).count, 220)
    }
}
