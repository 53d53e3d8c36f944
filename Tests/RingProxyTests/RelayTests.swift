// The engine as a TCP proxy: bytes arrive intact both ways under concurrency, half-close is
// carried through, failed servers are skipped, dead backends close the client, a slow reader
// holds a bounded number of buffers, and connections spread over every core.
import Foundation
import Glibc
import XCTest
@testable import RingProxy

final class RelayTests: XCTestCase {
    func testBytesArriveIntactBothWaysAcrossHundredsOfConnectionsWithHalfClose() throws {
        let servers = (0..<3).map { _ in TestServer.echo() }
        defer { servers.forEach { $0.stop() } }
        let (engine, port) = try startEngine(servers: servers.map(\.port))
        defer { engine.stop(); engine.wait() }

        // Sizes from 1 byte to 4 MiB; most small, a few large (60 up to 300 kB under a sanitizer).
        let sizes = (0..<(underSanitizer ? 60 : 240)).map { i -> Int in
            switch i % 8 {
            case 0: return 1
            case 1: return 100 + i
            case 2: return 16_384          // exactly one buffer
            case 3: return 16_385          // one byte over
            case 4: return 70_000 + i * 13
            case 5: return 300_000
            case 6: return underSanitizer ? 300_000 : i % 48 == 6 ? 4 << 20 : 1_000_000
            default: return 5_000
            }
        }
        let failed = Locked<[String]>([])
        concurrently(sizes.count) { i in
            let data = payload(size: sizes[i], seed: UInt64(i + 1))
            let fd = TestSocket.connect(port: port, timeoutSeconds: 30)
            defer { close(fd) }
            var sent = Checksum()
            data.withUnsafeBytes { sent.add($0) }
            // Writer on its own thread: the echo comes back while we are still sending.
            let writer = Thread {
                TestSocket.writeAll(fd, data)
                shutdown(fd, Int32(SHUT_WR))   // half-close: we still expect every byte back
            }
            writer.start()
            var received = Checksum()
            let eof = TestSocket.readToEnd(fd) { received.add($0) }
            if !eof || received != sent {
                failed.withLock { $0.append("conn \(i) size \(sizes[i]): eof=\(eof) got \(received.count) bytes") }
            }
        }
        XCTAssertEqual(failed.current, [], "\(engine.statistics().total)")
        let stats = engine.statistics().total
        XCTAssertEqual(stats[.accepted], UInt64(sizes.count))
        let total = UInt64(sizes.reduce(0, +))
        XCTAssertEqual(stats[.bytesFromClients], total)
        XCTAssertEqual(stats[.bytesFromServers], total)
        XCTAssertTrue(eventually { engine.statistics().total[.active] == 0 }, "connections did not all close")
        XCTAssertTrue(eventually { engine.statistics().total[.buffersInUse] == 0 }, "buffers leaked")
        XCTAssertEqual(engine.activeConnections, 0)
    }

    func testServerHalfCloseStillDeliversClientBytes() throws {
        // The server sends its data and FIN first; the client keeps sending afterwards.
        let serverGot = Locked(Checksum())
        let server = TestServer { fd in
            _ = TestSocket.writeAll(fd, Array("hello, then FIN".utf8))
            shutdown(fd, Int32(SHUT_WR))
            var sum = Checksum()
            _ = TestSocket.readToEnd(fd) { sum.add($0) }
            serverGot.withLock { $0 = sum }
            _ = TestSocket.writeAll(fd, [1])   // fails quietly: our write side is shut
        }
        defer { server.stop() }
        let (engine, port) = try startEngine(servers: [server.port])
        defer { engine.stop(); engine.wait() }

        let fd = TestSocket.connect(port: port)
        defer { close(fd) }
        var greeting = Checksum()
        XCTAssertTrue(TestSocket.readToEnd(fd) { greeting.add($0) }, "client should see the server's FIN")
        XCTAssertEqual(greeting.count, 15)
        let late = payload(size: 200_000, seed: 99)
        XCTAssertTrue(TestSocket.writeAll(fd, late), "client must still be able to send after the server's FIN")
        shutdown(fd, Int32(SHUT_WR))
        var expected = Checksum()
        late.withUnsafeBytes { expected.add($0) }
        XCTAssertTrue(eventually { serverGot.current == expected })
    }

    func testRefusingServerIsSkipped() throws {
        let live = [TestServer.echo(), TestServer.echo()]
        defer { live.forEach { $0.stop() } }
        let dead = TestSocket.unusedPort()
        let (engine, port) = try startEngine(servers: [dead, live[0].port, live[1].port])
        defer { engine.stop(); engine.wait() }

        for i in 0..<30 {
            let fd = TestSocket.connect(port: port)
            let message = Array("ping \(i)".utf8)
            XCTAssertTrue(TestSocket.writeAll(fd, message))
            XCTAssertEqual(TestSocket.readExactly(fd, message.count), message, "connection \(i)")
            close(fd)
        }
        let stats = engine.statistics()
        XCTAssertGreaterThan(stats.total[.connectFailures], 0, "round robin must have tried the dead server")
        XCTAssertEqual(stats.total[.connectGiveUps], 0)
        XCTAssertEqual(stats.servers[0].total, 0)
        XCTAssertEqual(stats.servers[1].total + stats.servers[2].total, 30)
    }

    func testAllServersDownClosesTheClientCleanly() throws {
        let (engine, port) = try startEngine(servers: [TestSocket.unusedPort(), TestSocket.unusedPort()]) {
            $0.retries = 3
        }
        defer { engine.stop(); engine.wait() }
        let fd = TestSocket.connect(port: port, timeoutSeconds: 5)
        defer { close(fd) }
        _ = TestSocket.writeAll(fd, Array("CONNECT".utf8))
        var got = Checksum()
        XCTAssertTrue(TestSocket.readToEnd(fd) { got.add($0) }, "client must get EOF, not hang or reset")
        XCTAssertEqual(got.count, 0)
        let stats = engine.statistics().total
        XCTAssertEqual(stats[.connectGiveUps], 1)
        XCTAssertEqual(stats[.connectFailures], 4, "first attempt + 3 retries")
        XCTAssertTrue(eventually { engine.statistics().total[.active] == 0 })
    }

    func testSlowReaderHoldsABoundedNumberOfBuffers() throws {
        let total = 64 << 20
        let server = TestServer.firehose(bytes: total)
        defer { server.stop() }
        let (engine, port) = try startEngine(servers: [server.port], cores: 1) {
            $0.pipeBuffersMax = 4
            $0.bufferSizeBytes = 16_384
        }
        defer { engine.stop(); engine.wait() }

        let fd = TestSocket.connect(port: port, timeoutSeconds: 30)
        defer { close(fd) }
        // Do not read for a while: the proxy must stop reading from the server, not buffer 64 MiB.
        usleep(1_000_000)
        let stalled = engine.statistics().total
        XCTAssertGreaterThan(stalled[.recvPauses], 0, "the server->client pipe should have paused")
        XCTAssertLessThanOrEqual(stalled[.buffersInUse], UInt64(EngineBounds.pipeBuffersHeld(pipeBuffersMax: 4)))
        XCTAssertLessThanOrEqual(stalled[.pipeBuffersMax], UInt64(EngineBounds.pipeBuffersHeld(pipeBuffersMax: 4)))
        XCTAssertLessThan(stalled[.bytesFromServers], UInt64(total / 4), "reading should have stopped early")

        var got = Checksum()
        XCTAssertTrue(TestSocket.readToEnd(fd) { got.add($0) })
        XCTAssertEqual(got.count, total)
        let after = engine.statistics().total
        XCTAssertLessThanOrEqual(after[.pipeBuffersMax], UInt64(EngineBounds.pipeBuffersHeld(pipeBuffersMax: 4)))
        XCTAssertTrue(eventually { engine.statistics().total[.buffersInUse] == 0 })
    }

    func testGatheredSendsKeepByteOrderForASlowReader() throws {
        // A reader slower than the server makes buffers queue; they then leave several per
        // sendmsg, and partly sent ones resume at their offset. The bytes must arrive in order.
        let total = 24 << 20
        let server = TestServer.firehose(bytes: total)
        defer { server.stop() }
        let (engine, port) = try startEngine(servers: [server.port], cores: 1) {
            $0.pipeBuffersMax = 6
            $0.bufferSizeBytes = 4096
            $0.clientTimeoutMs = 10_000   // a stalled direction fails the test in seconds
            $0.serverTimeoutMs = 10_000
        }
        defer { engine.stop(); engine.wait() }

        let expected = TestServer.firehoseChecksum(bytes: total)
        let fd = TestSocket.connect(port: port, timeoutSeconds: 30)
        defer { close(fd) }
        var got = Checksum()
        var reads = 0
        XCTAssertTrue(TestSocket.readToEnd(fd) { bytes in
            got.add(bytes)
            reads += 1
            if reads % 64 == 0 && got.count < total / 2 { usleep(2_000) }   // slow at first
        })
        XCTAssertEqual(got.count, total)
        XCTAssertEqual(got, expected, "bytes arrived out of order or corrupted")
        let stats = engine.statistics().total
        XCTAssertGreaterThan(stats[.gatheredSends], 0, "the queue never held more than one buffer: nothing was gathered")
        XCTAssertEqual(stats[.bytesFromServers], UInt64(total))
        XCTAssertTrue(eventually { engine.statistics().total[.buffersInUse] == 0 }, "buffers leaked")
    }

    func testConnectionsSpreadOverAllCores() throws {
        let server = TestServer.echo()
        defer { server.stop() }
        let (engine, port) = try startEngine(servers: [server.port], cores: 2)
        defer { engine.stop(); engine.wait() }
        var fds: [Int32] = []
        for _ in 0..<64 {
            let fd = TestSocket.connect(port: port)
            assertEchoes(fd, 42)
            fds.append(fd)
        }
        let perWorker = engine.statistics().workers.map { $0[.accepted] }
        XCTAssertEqual(perWorker.count, 2)
        XCTAssertEqual(perWorker.reduce(0, +), 64)
        XCTAssertTrue(perWorker.allSatisfy { $0 > 0 }, "every core should accept some connections: \(perWorker)")
        fds.forEach { close($0) }
    }

    func testMaxconnRefusesExcessConnectionsAndCountsThem() throws {
        let server = TestServer.echo()
        defer { server.stop() }
        let (engine, port) = try startEngine(servers: [server.port]) { $0.maxConnections = 2 }
        defer { engine.stop(); engine.wait() }
        let a = TestSocket.connect(port: port)
        let b = TestSocket.connect(port: port)
        for fd in [a, b] {
            assertEchoes(fd, 1)
        }
        let c = TestSocket.connect(port: port)
        var got = Checksum()
        XCTAssertTrue(TestSocket.readToEnd(c) { got.add($0) }, "the third connection is closed")
        XCTAssertEqual(engine.statistics().total[.refusedMaxconn], 1)
        [a, b, c].forEach { close($0) }
        // Once the first two are gone, new connections are served again.
        XCTAssertTrue(eventually { engine.activeConnections == 0 })
        let d = TestSocket.connect(port: port)
        assertEchoes(d, 9)
        close(d)
    }

    func testEveryConnectionUnderMaxconnIsServedWhenTheKernelSpreadsThemUnevenly() throws {
        // SO_REUSEPORT hashes connections to workers; a worker must hold more than an even
        // share of maxconn, or clients wait in a full worker's backlog while others have room.
        let server = TestServer.echo()
        defer { server.stop() }
        let (engine, port) = try startEngine(servers: [server.port], cores: 4) { $0.maxConnections = 400 }
        defer { engine.stop(); engine.wait() }
        XCTAssertGreaterThanOrEqual(engine.slotsPerWorker, 400 / 4 * 5 / 4, "a worker holds at least 125 % of its share")
        XCTAssertEqual(engine.maxConnections, 400)
        let fds = (0..<400).map { _ in TestSocket.connect(port: port) }
        defer { fds.forEach { close($0) } }
        for fd in fds {
            assertEchoes(fd, 5)
        }
        let stats = engine.statistics()
        XCTAssertEqual(stats.total[.active], 400)
        XCTAssertEqual(stats.total[.refusedMaxconn], 0)
        let spread = stats.workers.map { $0[.accepted] }
        XCTAssertEqual(spread.reduce(0, +), 400, "per worker: \(spread)")
    }

    func testClosingCancelsByUserDataNeverByWalkingTheRing() throws {
        // A cancel by file walks every poll request of the ring: with thousands of idle
        // connections each close would cost hundreds of µs. Closes must cancel what is pending
        // by user_data (or nothing, when both directions already ended).
        let server = TestServer.echo()
        defer { server.stop() }
        let (engine, port) = try startEngine(servers: [server.port], cores: 1)
        defer { engine.stop(); engine.wait() }
        let fds = (0..<200).map { _ in TestSocket.connect(port: port) }
        for fd in fds {
            assertEchoes(fd, 3)
        }
        // 100 orderly closes, 50 resets (recvs armed on both sides when the proxy closes).
        for fd in fds[0..<100] { close(fd) }
        for fd in fds[100..<150] {
            var abort = linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort, socklen_t(MemoryLayout<linger>.size))
            close(fd)
        }
        XCTAssertTrue(eventually { engine.statistics().total[.active] == 50 }, "\(engine.statistics().total[.active]) active")
        let stats = engine.statistics().total
        XCTAssertEqual(stats[.cancelsByFile], 0, "a close walked the ring")
        XCTAssertGreaterThanOrEqual(stats[.cancelsByUserData], 50, "the reset connections' armed recvs were cancelled")
        for fd in fds[150...] {
            assertEchoes(fd, 4, "the connections left are unharmed")
            close(fd)
        }
        XCTAssertTrue(eventually { engine.statistics().total[.active] == 0 })
        XCTAssertTrue(eventually { engine.statistics().total[.buffersInUse] == 0 })
    }

    func testIdleClientIsClosedAtTheClientTimeout() throws {
        let server = TestServer.echo()
        defer { server.stop() }
        let (engine, port) = try startEngine(servers: [server.port]) { $0.clientTimeoutMs = 600 }
        defer { engine.stop(); engine.wait() }
        let fd = TestSocket.connect(port: port)
        defer { close(fd) }
        let started = Date()
        XCTAssertTrue(TestSocket.readToEnd(fd) { _ in })
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertGreaterThan(elapsed, 0.5)
        XCTAssertLessThan(elapsed, 3)
        XCTAssertEqual(engine.statistics().total[.clientTimeouts], 1)
    }

    func testClientResetIsPropagatedToTheServer() throws {
        let outcome = Locked("")
        let server = TestServer { fd in
            var sum = Checksum()
            let eof = TestSocket.readToEnd(fd) { sum.add($0) }
            let error = errno
            outcome.withLock { $0 = eof ? "eof" : "error \(error)" }
        }
        defer { server.stop() }
        let (engine, port) = try startEngine(servers: [server.port])
        defer { engine.stop(); engine.wait() }
        let fd = TestSocket.connect(port: port)
        XCTAssertTrue(TestSocket.writeAll(fd, [1, 2, 3]))
        XCTAssertTrue(eventually { server.accepted == 1 })
        usleep(100_000)
        var abort = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort, socklen_t(MemoryLayout<linger>.size))
        close(fd)
        XCTAssertTrue(eventually { !outcome.current.isEmpty })
        XCTAssertEqual(outcome.current, "error \(ECONNRESET)")
        XCTAssertTrue(eventually { engine.statistics().total[.resets] == 1 })
    }
}
