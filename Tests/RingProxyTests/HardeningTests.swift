// Hostile clients against a small buffer pool: whatever they do, well-behaved clients keep
// being served, and what the attackers held comes back as soon as they leave. Each test would
// hang or fail without the mechanism it names (Worker+Backpressure).
import Foundation
import Glibc
import XCTest
@testable import RingProxy

final class HardeningTests: XCTestCase {
    /// A server that accepts and never reads, until `release` is set.
    private func sink(_ release: Locked<Bool>) -> TestServer {
        TestServer { _ in
            while !release.current { usleep(20_000) }
        }
    }

    /// Sends from `fd` until the proxy stops taking bytes (the kernel buffers and the pipe are
    /// full), bounded by `bytesMax`.
    private static func pushUntilStalled(_ fd: Int32, bytesMax: Int = 64 << 20) {
        var flags = fcntl(fd, F_GETFL)
        flags |= O_NONBLOCK
        _ = fcntl(fd, F_SETFL, flags)
        let chunk = [UInt8](repeating: 0x55, count: 65536)
        var sent = 0
        var idle = 0
        while sent < bytesMax && idle < 20 {
            let n = chunk.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 { sent += n; idle = 0 } else { idle += 1; usleep(10_000) }
        }
    }

    private static func reset(_ fd: Int32) {
        var l = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        close(fd)
    }

    func testAClientThatResetsWhileItsDirectionIsPausedIsClosedAtOnce() throws {
        let release = Locked(false)
        let server = sink(release)
        defer { release.withLock { $0 = true }; server.stop() }
        let (engine, port) = try startEngine(servers: [server.port], cores: 1) {
            $0.clientTimeoutMs = 60_000
            $0.serverTimeoutMs = 60_000
        }
        defer { engine.stop(); engine.wait() }
        let fd = TestSocket.connect(port: port)
        Self.pushUntilStalled(fd)
        XCTAssertGreaterThan(engine.statistics().total[.recvPauses], 0, "the client's direction never paused")
        XCTAssertEqual(engine.statistics().total[.active], 1)
        Self.reset(fd)
        // Nothing reads the client socket while paused; the abort watch sees the reset.
        XCTAssertTrue(eventually(seconds: 2) { engine.statistics().total[.active] == 0 }, "the paused connection outlived its client")
        XCTAssertEqual(engine.statistics().total[.abortsWhileWaiting], 1)
        XCTAssertTrue(eventually(seconds: 2) { engine.statistics().total[.buffersInUse] == 0 })
    }

    func testDribbledPreamblesGiveWayToWellBehavedClientsWhenThePoolRunsLow() throws {
        let seen = Locked<[String]>([])
        let broker = TestServer.recordingBroker(seen)
        defer { broker.stop() }
        let (engine, port) = try startEngine(servers: [broker.port], cores: 1) {
            $0.frontends[0].requireMQTT = true
            $0.frontends[0].inspectTimeoutMs = 60_000
            $0.buffersPerWorker = 16          // low water: 4 free
        }
        defer { engine.stop(); engine.wait() }
        // Each attacker announces a 60 KB client id, sends its first bytes and stops: each
        // holds a buffer for as long as the inspect delay lets it.
        let head = Array(MQTTWire.connect(clientID: String(repeating: "x", count: 60_000)).prefix(20))
        var attackers: [Int32] = []
        for _ in 0..<24 {
            let fd = TestSocket.connect(port: port)
            XCTAssertTrue(TestSocket.writeAll(fd, head))
            attackers.append(fd)
            usleep(2_000)
        }
        defer { attackers.forEach { close($0) } }
        XCTAssertTrue(eventually(seconds: 2) { engine.statistics().total[.evictions] > 0 }, "no preamble gave way")
        for i in 0..<20 {
            XCTAssertTrue(MQTTWire.session(port: port, clientID: "good-\(i)"), "well-behaved client \(i) was not served")
        }
        XCTAssertLessThanOrEqual(engine.statistics().total[.buffersInUse], 16)
        attackers.forEach { Self.reset($0) }
        attackers = []
        XCTAssertTrue(eventually(seconds: 3) { engine.statistics().total[.active] == 0 })
        XCTAssertTrue(eventually(seconds: 2) { engine.statistics().total[.buffersInUse] == 0 })
    }

    func testDirectionsStalledBehindAServerThatNeverReadsGiveWayToOtherTraffic() throws {
        let release = Locked(false)
        let stalled = sink(release)
        let echo = TestServer.echo()
        defer { release.withLock { $0 = true }; stalled.stop(); echo.stop() }
        var config = EngineConfig(
            frontends: [FrontendConfig(name: "push", binds: [SocketAddress(ipv4: 127, 0, 0, 1, port: 0)], backendIndex: 0),
                        FrontendConfig(name: "echo", binds: [SocketAddress(ipv4: 127, 0, 0, 1, port: 0)], backendIndex: 1)],
            backends: [BackendConfig(name: "sink", servers: [ServerConfig(name: "sink", address: SocketAddress(ipv4: 127, 0, 0, 1, port: stalled.port))]),
                       BackendConfig(name: "echo", servers: [ServerConfig(name: "echo", address: SocketAddress(ipv4: 127, 0, 0, 1, port: echo.port))])])
        config.cores = 1
        config.buffersPerWorker = 16           // low water: 4 free
        config.bufferSizeBytes = 16_384
        config.clientTimeoutMs = 60_000
        config.serverTimeoutMs = 60_000
        let engine = Engine(config: config, log: Log(minimum: .error))
        try engine.start()
        defer { engine.stop(); engine.wait() }
        let pushPort = engine.boundAddresses[0][0].port
        let echoPort = engine.boundAddresses[1][0].port
        // 24 clients, each able to hold 4-6 buffers: far more than the pool.
        var pushers: [Int32] = []
        for _ in 0..<24 {
            let fd = TestSocket.connect(port: pushPort)
            pushers.append(fd)
        }
        defer { pushers.forEach { close($0) } }
        let fds = pushers
        concurrently(fds.count) { Self.pushUntilStalled(fds[$0], bytesMax: 16 << 20) }
        let held = engine.statistics().total
        XCTAssertGreaterThanOrEqual(held[.buffersInUse] + held[.evictions], 14, "the pushers never pressed on the pool: \(held[.buffersInUse]) held")
        for i in 0..<20 {
            let fd = TestSocket.connect(port: echoPort, timeoutSeconds: 3)
            assertEchoes(fd, UInt8(i), "echo client \(i) starved by connections stalled on another frontend")
            close(fd)
        }
        XCTAssertGreaterThan(engine.statistics().total[.evictions], 0, "nothing gave way: was the pool ever short?")
        pushers.forEach { Self.reset($0) }
        pushers = []
        XCTAssertTrue(eventually(seconds: 3) { engine.statistics().total[.active] == 0 })
        XCTAssertTrue(eventually(seconds: 2) { engine.statistics().total[.buffersInUse] == 0 })
    }
}
