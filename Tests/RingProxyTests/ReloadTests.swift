// Hot reload: under continuous connection churn and traffic, 20 reloads with changes in
// between fail or reset no connection, long-lived connections survive, and new connections
// follow the new configuration.
import Foundation
import Glibc
import XCTest
@testable import RingProxy

final class ReloadTests: XCTestCase {
    private func config(port: UInt16, servers: [(TestServer, Int)], clientTimeoutMs: Int) -> EngineConfig {
        var c = EngineConfig(
            frontends: [FrontendConfig(name: "f", binds: [SocketAddress(ipv4: 127, 0, 0, 1, port: port)], backendIndex: 0)],
            backends: [BackendConfig(name: "b", servers: servers.map {
                ServerConfig(name: "s\($0.0.port)", address: SocketAddress(ipv4: 127, 0, 0, 1, port: $0.0.port), weight: $0.1)
            })])
        c.cores = 2
        c.buffersPerWorker = 256
        c.clientTimeoutMs = clientTimeoutMs
        c.drainGraceMs = 1000
        return c
    }

    func testTwentyReloadsUnderChurnDropNothingAndNewConnectionsFollowTheNewConfiguration() throws {
        let a = TestServer.echo(), b = TestServer.echo(), c = TestServer.echo()
        defer { [a, b, c].forEach { $0.stop() } }
        let port = TestSocket.unusedPort()
        let engine = Engine(config: config(port: port, servers: [(a, 1), (b, 1)], clientTimeoutMs: 60_000), log: Log(minimum: .warning))
        try engine.start()
        defer { engine.stop(); engine.wait() }

        // Long-lived connections opened before any reload.
        let longLived = (0..<10).map { _ in TestSocket.connect(port: port) }
        for fd in longLived {
            assertEchoes(fd, 7)
        }
        // Churn: sessions with a checksummed payload, as fast as they go, until told to stop.
        let running = Locked(true)
        let results = Locked((ok: 0, failed: 0))
        let churn = DispatchGroup()
        for t in 0..<6 {
            churn.enter()
            Thread {
                var i = 0
                while running.current {
                    let data = payload(size: 2_000 + (i % 7) * 3_000, seed: UInt64(t * 100_000 + i))
                    let fd = TestSocket.connect(port: port)
                    let ok = TestSocket.writeAll(fd, data) && TestSocket.readExactly(fd, data.count) == data
                    close(fd)
                    results.withLock { ok ? ($0.ok += 1) : ($0.failed += 1) }
                    i += 1
                }
                churn.leave()
            }.start()
        }
        let variants: [[(TestServer, Int)]] = [[(a, 1), (b, 1)], [(b, 2), (c, 1)], [(a, 1), (c, 3)], [(a, 1), (b, 1), (c, 1)]]
        for r in 0..<20 {
            usleep(100_000)
            try engine.reload(config(port: port, servers: variants[r % variants.count], clientTimeoutMs: 30_000 + r * 1000))
        }
        usleep(200_000)
        running.withLock { $0 = false }
        churn.wait()
        let outcome = results.current
        XCTAssertEqual(outcome.failed, 0, "sessions failed across reloads (\(outcome.ok) succeeded)")
        // Churn kept going through the reloads (ThreadSanitizer slows every session ~10x).
        XCTAssertGreaterThan(outcome.ok, underSanitizer ? 20 : 100, "too few sessions ran across the 20 reloads")
        XCTAssertEqual(engine.generation, 21)
        // The long-lived connections still work: their generation is still serving them.
        for fd in longLived {
            XCTAssertTrue(TestSocket.writeAll(fd, [8, 9]))
            XCTAssertEqual(TestSocket.readExactly(fd, 2), [8, 9])
        }
        XCTAssertGreaterThan(engine.retiredConnections, 0)
        longLived.forEach { close($0) }
        XCTAssertTrue(eventually { engine.retiredConnections == 0 }, "retired generations must finish once their connections close")

        // New connections follow the last configuration: only c.
        try engine.reload(config(port: port, servers: [(c, 1)], clientTimeoutMs: 60_000))
        let before = (a.accepted, b.accepted, c.accepted)
        for _ in 0..<20 {
            let fd = TestSocket.connect(port: port)
            assertEchoes(fd, 1)
            close(fd)
        }
        XCTAssertEqual(a.accepted, before.0)
        XCTAssertEqual(b.accepted, before.1)
        XCTAssertEqual(c.accepted, before.2 + 20)
    }

    func testAConnectionArrivingDuringAReloadIsNeverLeftInTheBacklog() throws {
        // One client at a time, each waiting for its echo: nothing else arrives to wake an
        // accept, so a connection whose wake-up went to a cancelled accept of the previous
        // workers would wait forever (it did, in about one reload in four).
        let server = TestServer.echo()
        defer { server.stop() }
        let port = TestSocket.unusedPort()
        var c = config(port: port, servers: [(server, 1)], clientTimeoutMs: 60_000)
        c.cores = 1
        let engine = Engine(config: c, log: Log(minimum: .warning))
        try engine.start()
        defer { engine.stop(); engine.wait() }
        let stop = Locked(false)
        let failures = Locked(0)
        let served = Locked(0)
        let client = Thread {
            while !stop.current {
                let fd = TestSocket.connect(port: port, timeoutSeconds: 2)
                let ok = TestSocket.writeAll(fd, [7]) && TestSocket.readExactly(fd, 1) == [7]
                close(fd)
                if ok { served.withLock { $0 += 1 } } else { failures.withLock { $0 += 1 } }
            }
        }
        client.start()
        for _ in 0..<12 {
            let before = served.current
            try engine.reload(c)
            XCTAssertTrue(eventually(seconds: 5) { served.current > before + 3 }, "connections stopped being served")
        }
        stop.withLock { $0 = true }
        XCTAssertTrue(eventually(seconds: 5) { client.isFinished })
        XCTAssertEqual(failures.current, 0, "connections made during a reload were never answered")
    }

    func testReloadsCostNoMemoryOnceTheirGenerationIsGone() throws {
        // Every generation allocates its tables, names, balancers and scratch space; once a
        // reload has forgotten it, all of it must be given back (measured before: ~0.28 MB
        // per reload, never returned).
        let server = TestServer.echo()
        defer { server.stop() }
        let port = TestSocket.unusedPort()
        func generation(_ n: Int) -> EngineConfig {
            var c = config(port: port, servers: [(server, 1 + n % 2)], clientTimeoutMs: 60_000)
            c.maxConnections = 200
            c.buffersPerWorker = 64
            c.backends[0].stickTable = StickTableConfig(entriesMax: 1_000 + n % 2)   // a new table each time
            return c
        }
        let engine = Engine(config: generation(0), log: Log(minimum: .warning))
        try engine.start()
        defer { engine.stop(); engine.wait() }
        for n in 1...20 { try engine.reload(generation(n)) }
        let rssAfterWarmUp = residentBytes()
        for n in 21...150 { try engine.reload(generation(n)) }
        let fd = TestSocket.connect(port: port)
        defer { close(fd) }
        assertEchoes(fd, 1, "the last configuration serves")
        let grown = residentBytes() - rssAfterWarmUp
        XCTAssertLessThan(grown, 4 << 20, "RSS grew \(grown >> 10) KiB over 130 reloads")
    }

    func testRetiredWorkersGiveTheirBufferMemoryBack() throws {
        if ProcessInfo.processInfo.environment["RINGPROXY_SANITIZE"] != nil {
            throw XCTSkip("a sanitizer build: freed memory sits in the sanitizer's quarantine, RSS cannot show it returned")
        }
        // Each generation's workers touch every page of their buffer pool (bulk traffic cycles
        // the ring); after eight reloads, the retired generations must hold none of it.
        let server = TestServer.echo()
        defer { server.stop() }
        let port = TestSocket.unusedPort()
        func generation() -> EngineConfig {
            var c = config(port: port, servers: [(server, 1)], clientTimeoutMs: 60_000)
            c.buffersPerWorker = 256
            c.bufferSizeBytes = 64 * 1024    // 16 MiB of buffers per worker, 32 MiB per generation
            return c
        }
        let engine = Engine(config: generation(), log: Log(minimum: .warning))
        try engine.start()
        defer { engine.stop(); engine.wait() }
        let bulk = payload(size: 8 << 20, seed: 11)
        func cycleBuffers() {
            concurrently(16) { _ in
                let fd = TestSocket.connect(port: port, timeoutSeconds: 30)
                defer { close(fd) }
                let writer = Thread { TestSocket.writeAll(fd, bulk); shutdown(fd, Int32(SHUT_WR)) }
                writer.start()
                _ = TestSocket.readToEnd(fd) { _ in }
            }
        }
        cycleBuffers()
        let rssBefore = residentBytes()
        for _ in 0..<8 {
            try engine.reload(generation())
            cycleBuffers()
        }
        XCTAssertTrue(eventually { engine.retiredConnections == 0 })
        usleep(300_000)   // the retired workers' loops notice and exit
        let grown = residentBytes() - rssBefore
        XCTAssertLessThan(grown, 96 << 20, "RSS grew \(grown >> 20) MiB over 8 reloads: retired generations keep their buffers")
    }

    func testAReloadThatCannotBindKeepsTheRunningConfiguration() throws {
        let a = TestServer.echo()
        defer { a.stop() }
        let port = TestSocket.unusedPort()
        let engine = Engine(config: config(port: port, servers: [(a, 1)], clientTimeoutMs: 60_000), log: Log(minimum: .error))
        try engine.start()
        defer { engine.stop(); engine.wait() }
        // A second bind on a port some other socket holds without SO_REUSEPORT.
        let (blocker, blocked) = TestSocket.occupyPort()
        defer { close(blocker) }
        var next = config(port: port, servers: [(a, 1)], clientTimeoutMs: 60_000)
        next.frontends[0].binds.append(SocketAddress(ipv4: 127, 0, 0, 1, port: blocked))
        XCTAssertThrowsError(try engine.reload(next)) { error in
            XCTAssertTrue("\(error)".contains("Address already in use"), "\(error)")
        }
        XCTAssertEqual(engine.generation, 1)
        let fd = TestSocket.connect(port: port)
        assertEchoes(fd, 5)
        close(fd)
    }

    func testARemovedListenerStopsAcceptingWhileItsOpenConnectionsFinish() throws {
        let a = TestServer.echo()
        defer { a.stop() }
        let kept = TestSocket.unusedPort()
        let removed = TestSocket.unusedPort()
        var first = config(port: kept, servers: [(a, 1)], clientTimeoutMs: 60_000)
        first.frontends.append(FrontendConfig(name: "old", binds: [SocketAddress(ipv4: 127, 0, 0, 1, port: removed)], backendIndex: 0))
        let engine = Engine(config: first, log: Log(minimum: .error))
        try engine.start()
        defer { engine.stop(); engine.wait() }
        let open = TestSocket.connect(port: removed)
        assertEchoes(open, 1)

        try engine.reload(config(port: kept, servers: [(a, 1)], clientTimeoutMs: 60_000))
        XCTAssertFalse(Mosquitto.listening(removed), "the removed frontend must not accept any more")
        XCTAssertTrue(Mosquitto.listening(kept))
        XCTAssertTrue(TestSocket.writeAll(open, [2, 3]), "its open connection keeps working")
        XCTAssertEqual(TestSocket.readExactly(open, 2), [2, 3])
        close(open)
        XCTAssertTrue(eventually { engine.retiredConnections == 0 })
    }
}

/// This process's resident set size, from /proc/self/statm.
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    return (fields.count > 1 ? Int(fields[1]) ?? 0 : 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
}
