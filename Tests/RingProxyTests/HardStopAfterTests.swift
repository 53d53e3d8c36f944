// `hard-stop-after` in global: a configuration a reload retired, or an engine told to stop,
// lets its open connections work until the limit and aborts them when it is reached (HAProxy:
// the longest the old process may take to finish after a soft stop or reload).
import Foundation
import Glibc
import XCTest
@testable import RingProxy

final class HardStopAfterTests: XCTestCase {
    private static let hardStopAfterSeconds = 1.5

    /// An engine from a file that says `hard-stop-after 1500ms`, in front of `server`.
    private func startEngine(server: UInt16) throws -> (Engine, EngineConfig, UInt16) {
        let port = TestSocket.unusedPort()
        let text = hardStopAfterConfig("\(Int(Self.hardStopAfterSeconds * 1000))ms", port: port, server: server)
        var config = try EngineConfig.load(try ConfigParser.parse(text: text, file: "t.cfg").get()).engine
        config.cores = 1
        config.buffersPerWorker = 256
        let engine = Engine(config: config, log: Log(minimum: .error))
        try engine.start()
        return (engine, config, port)
    }

    private func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// Seconds from `start` until the proxy ends `fd` (reset or end of stream); nil if it is
    /// still open `limit` seconds from now.
    private func secondsUntilEnded(_ fd: Int32, since start: Double, limit: Int) -> Double? {
        TestSocket.setTimeouts(fd, seconds: limit)
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, 0)
        guard n == 0 || (n < 0 && errno == ECONNRESET) else { return nil }
        return now() - start
    }

    /// Open at 1 s, aborted at 1.5 s (give or take a loop turn and the scheduler).
    private func assertEndsAtTheLimit(_ fd: Int32, since start: Double, file: StaticString = #filePath, line: UInt = #line) {
        usleep(useconds_t((Self.hardStopAfterSeconds - 0.5) * 1e6))
        assertEchoes(fd, 7, "the connection still works before hard-stop-after", file: file, line: line)
        let ended = secondsUntilEnded(fd, since: start, limit: 5)
        XCTAssertNotNil(ended, "the connection must be aborted once hard-stop-after has passed", file: file, line: line)
        if let ended {
            XCTAssertGreaterThanOrEqual(ended, Self.hardStopAfterSeconds - 0.05, "aborted before hard-stop-after", file: file, line: line)
            XCTAssertLessThan(ended, Self.hardStopAfterSeconds + 1.5, "aborted long after hard-stop-after", file: file, line: line)
        }
    }

    func testAReloadRetiredConfigurationAbortsItsConnectionsAtHardStopAfterAndNotBefore() throws {
        let server = TestServer.echo()
        defer { server.stop() }
        let (engine, config, port) = try startEngine(server: server.port)
        defer { engine.stop(); engine.wait() }
        let fd = TestSocket.connect(port: port)
        defer { close(fd) }
        assertEchoes(fd, 1)
        let start = now()
        try engine.reload(config)
        assertEndsAtTheLimit(fd, since: start)
        XCTAssertTrue(eventually { engine.retiredConnections == 0 })
        XCTAssertTrue(echoRoundTrip(port: port), "the new configuration serves")
    }

    func testAStoppingEngineAbortsItsConnectionsAtHardStopAfterAndNotBefore() throws {
        let server = TestServer.echo()
        defer { server.stop() }
        let (engine, _, port) = try startEngine(server: server.port)
        let fd = TestSocket.connect(port: port)
        defer { close(fd) }
        assertEchoes(fd, 1)
        let start = now()
        engine.stop()
        assertEndsAtTheLimit(fd, since: start)
        engine.wait()
    }
}
