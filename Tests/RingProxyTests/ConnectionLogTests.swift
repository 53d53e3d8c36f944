// The connection log: HAProxy's tcplog layout with the MQTT client id, over syslog UDP
// (RFC 3164), written without allocating on the worker.
import Foundation
import Glibc
import XCTest
@testable import RingProxy

final class ConnectionLogTests: XCTestCase {
    /// A UDP socket standing in for a syslog server.
    private func syslogReceiver() -> (Int32, UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var address = SocketAddress(ipv4: 127, 0, 0, 1, port: 0).storage
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        TestSocket.setTimeouts(fd, seconds: 5)
        return (fd, UInt16(bigEndian: bound.sin_port))
    }

    private func receive(_ fd: Int32, count: Int) -> [String] {
        var lines: [String] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while lines.count < count {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            lines.append(String(decoding: buffer[0..<n], as: UTF8.self))
        }
        return lines
    }

    /// An MQTT-checking engine logging to a fresh syslog receiver, in front of a recording broker.
    private func loggingEngine(_ configure: @escaping (inout EngineConfig) -> Void = { _ in })
        throws -> (engine: Engine, port: UInt16, syslog: Int32, server: TestServer) {
        let (syslog, syslogPort) = syslogReceiver()
        let server = TestServer.recordingBroker(Locked<[String]>([]))
        let (engine, port) = try startEngine(servers: [server.port], cores: 1) {
            $0.frontends[0].requireMQTT = true
            $0.log = LogConfig(destination: .syslog(SocketAddress(ipv4: 127, 0, 0, 1, port: syslogPort)), facility: 19, severity: 6)
            configure(&$0)
        }
        return (engine, port, syslog, server)
    }

    func testEachConnectionGetsOneTcplogLineWithItsClientIDOverSyslog() throws {
        let (engine, port, syslog, server) = try loggingEngine()
        defer { engine.stop(); engine.wait(); server.stop(); close(syslog) }
        XCTAssertTrue(MQTTWire.session(port: port, clientID: "sensor-7"))
        let junk = TestSocket.connect(port: port)
        _ = TestSocket.writeAll(junk, Array("GET / HTTP/1.0\r\n\r\n".utf8))
        _ = TestSocket.readToEnd(junk) { _ in }
        close(junk)
        let lines = receive(syslog, count: 2)
        XCTAssertEqual(lines.count, 2, "\(lines)")
        let session = try XCTUnwrap(lines.first { $0.contains("{sensor-7}") }, "\(lines)")
        // <158> = local3 (19) * 8 + info (6); then the RFC 3164 date and tag.
        let pattern = #"^<158>[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d ringproxy\[\d+\]: 127\.0\.0\.1:\d+ \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d\.\d{3}\] test servers/s0 0/\d+/\d+ 4 -- \d+/\d+/\d+/\d+/0 0/0 \{sensor-7\}$"#
        XCTAssertNotNil(session.range(of: pattern, options: .regularExpression), session)
        let rejected = try XCTUnwrap(lines.first { !$0.contains("sensor-7") })
        XCTAssertTrue(rejected.contains(" test servers/<NOSRV> -1/-1/"), rejected)
        XCTAssertTrue(rejected.contains(" 0 PR "), rejected)
    }

    func testLoggingAllocatesNothingOnTheWorker() throws {
        let (engine, port, syslog, server) = try loggingEngine { $0.backends[0].stickTable = StickTableConfig() }
        defer { engine.stop(); engine.wait(); server.stop(); close(syslog) }
        for i in 0..<20 { XCTAssertTrue(MQTTWire.session(port: port, clientID: "warm-\(i)")) }
        XCTAssertTrue(eventually { engine.statistics().total[.active] == 0 })
        let before = engine.statistics().total.threadAllocatedBytes
        for i in 0..<200 { XCTAssertTrue(MQTTWire.session(port: port, clientID: "client-\(i % 50)")) }
        XCTAssertTrue(eventually { engine.statistics().total[.active] == 0 })
        let after = engine.statistics().total.threadAllocatedBytes
        XCTAssertGreaterThanOrEqual(before, 0)
        XCTAssertEqual(after - before, 0, "the worker allocated while inspecting, routing, sticking and logging 200 connections")
        XCTAssertEqual(receive(syslog, count: 220).count, 220)
    }
}
