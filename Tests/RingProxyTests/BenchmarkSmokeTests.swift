// The load generator runs against a real engine so that the benchmarks never rot: every
// workload completes with no failure and reports what it did.
import Foundation
import Glibc
import XCTest
@testable import RingProxy

final class BenchmarkSmokeTests: XCTestCase {
    /// A minimal MQTT server: CONNACK for CONNECT, echo for everything else (PUBLISH frames).
    private func mqttResponder() -> TestServer {
        TestServer { fd in
            var buffer = [UInt8](repeating: 0, count: 65536)
            var first = true
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { return }
                if first && buffer[0] == 0x10 {
                    first = false
                    // The CONNECT arrives whole from ringbench (one small send).
                    let length = 2 + Int(buffer[1])
                    _ = TestSocket.writeAll(fd, [0x20, 0x02, 0x00, 0x00])
                    if n > length { _ = TestSocket.writeAll(fd, Array(buffer[length..<n])) }
                    continue
                }
                if buffer[0] == 0xE0 { return }
                if buffer[0] == 0xC0 && n == 2 {
                    _ = TestSocket.writeAll(fd, [0xD0, 0x00])   // PINGREQ -> PINGRESP
                    continue
                }
                _ = TestSocket.writeAll(fd, Array(buffer[0..<n]))
            }
        }
    }

    private func ringbench(_ arguments: [String]) throws -> [String: Any] {
        let path = URL(fileURLWithPath: Tools.ringproxy).deletingLastPathComponent().appendingPathComponent("ringbench").path
        guard FileManager.default.isExecutableFile(atPath: path) else { throw XCTSkipError("run `swift build` first") }
        let (status, output) = try ChildProcess(path, arguments).finish(within: 60)
        XCTAssertEqual(status, 0, output)
        let line = try XCTUnwrap(output.split(separator: "\n").last(where: { $0.hasPrefix("{") }), output)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    func testEveryWorkloadRunsThroughTheProxyWithoutFailures() throws {
        let server = mqttResponder()
        defer { server.stop() }
        let (engine, port) = try startEngine(servers: [server.port], cores: 1) {
            $0.frontends[0].requireMQTT = true
            $0.backends[0].stickTable = StickTableConfig()
        }
        defer { engine.stop(); engine.wait() }
        let target = ["--target", "127.0.0.1:\(port)", "--seconds", "1"]
        let pingpong = try ringbench(["pingpong"] + target + ["--connections", "10", "--window", "4", "--mqtt"])
        XCTAssertEqual(pingpong["failed"] as? Int, 0)
        XCTAssertGreaterThan(pingpong["operations"] as? Int ?? 0, 100)
        XCTAssertGreaterThan(pingpong["p99_us"] as? Double ?? 0, 0)
        let conn = try ringbench(["conn"] + target + ["--connections", "4", "--ids", "50"])
        XCTAssertEqual(conn["failed"] as? Int, 0)
        XCTAssertGreaterThan(conn["operations"] as? Int ?? 0, 20)
        let idle = try ringbench(["idle"] + target + ["--connections", "300", "--threads", "2", "--sources", "127.0.0.1-127.0.0.9",
                                                      "--keepalive", "0.5"])
        XCTAssertEqual(idle["failed"] as? Int, 0)
        XCTAssertEqual(idle["connections"] as? Int, 300)
        XCTAssertGreaterThanOrEqual(idle["operations"] as? Int ?? 0, 300, "every connection answered at least one PINGREQ")
        XCTAssertEqual(idle["pings_unanswered"] as? Int, 0)
        XCTAssertGreaterThan(engine.statistics().total[.stickHits], 0, "conn cycles 50 client ids: reconnects hit the stick table")
        let hitsBefore = engine.statistics().total[.stickHits]
        let storm = try ringbench(["reconnect"] + target + ["--connections", "100"])
        XCTAssertEqual(storm["failed"] as? Int, 0)
        XCTAssertGreaterThanOrEqual(storm["rounds"] as? Int ?? 0, 1)
        XCTAssertEqual((storm["operations"] as? Int ?? 0) % 100, 0, "rounds bring every client back")
        XCTAssertGreaterThanOrEqual(engine.statistics().total[.stickHits] - hitsBefore, UInt64(storm["operations"] as? Int ?? 0),
                                    "every reconnection with a known client id hits the stick table")
    }

    func testBulkStreamsBothWaysThroughThePlainProxy() throws {
        let server = TestServer.echo()
        defer { server.stop() }
        let (engine, port) = try startEngine(servers: [server.port], cores: 1)
        defer { engine.stop(); engine.wait() }
        let bulk = try ringbench(["bulk", "--target", "127.0.0.1:\(port)", "--seconds", "1", "--connections", "3"])
        XCTAssertEqual(bulk["failed"] as? Int, 0)
        let bytes = bulk["bytes"] as? Int ?? 0
        XCTAssertGreaterThan(bytes, 1 << 20)
        let stats = engine.statistics().total
        // ringbench counts the bytes back within its measured seconds, then drains the rest:
        // by then everything it sent has come back through the proxy.
        XCTAssertGreaterThanOrEqual(stats[.bytesFromServers], UInt64(bytes))
        XCTAssertEqual(stats[.bytesFromServers], stats[.bytesFromClients], "every byte sent was echoed back through the proxy")
    }
}
