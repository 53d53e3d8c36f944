// Issue 16: capacity past one ring's fixed-file table. The binary runs under an open-files limit
// of 1,024 (each table then holds ~500 connections) with `maxconn 3000` on one CPU: it makes more
// rings than CPUs, says so at start-up, and holds 1,500 proxied connections at once, three
// tables' worth, with 1,024 fds of its own.
import Foundation
import Glibc
import XCTest
@testable import RingProxy

final class CapacityRunTests: XCTestCase {
    /// The binary under a 1,024-file limit on one CPU with `maxconn 3000` (eight rings), one
    /// frontend to `server`; returns the process and the frontend's port once it listens.
    private func startUnderSmallFileLimit(server: UInt16, timeoutClient: String, in dir: TemporaryDirectory) throws -> (ChildProcess, UInt16) {
        let binary = Tools.ringproxy
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw XCTSkipError("run `swift build` first") }
        guard let prlimit = Tools.which("prlimit") else { throw XCTSkipError("needs prlimit (util-linux)") }
        let path = dir.file("ringproxy.cfg")
        let port = TestSocket.unusedPort()
        try """
            global
              maxconn 3000
            defaults
              mode tcp
              timeout connect 2s
              timeout client \(timeoutClient)
              timeout server 60s
            frontend f
              bind 127.0.0.1:\(port)
              default_backend b
            backend b
              server s1 127.0.0.1:\(server)
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let ringproxy = try ChildProcess(prlimit, ["--nofile=1024:1024", binary, "-f", path, "--cores", "1"])
        XCTAssertTrue(eventually { Mosquitto.listening(port) }, "ringproxy did not start")
        return (ringproxy, port)
    }

    func testMaxconnPastOneTableGetsMoreRingsAndTheyHoldIt() throws {
        // A backend that accepts and holds every connection (no thread per connection).
        let (listenFD, bound) = try Listener.open(SocketAddress(ipv4: 127, 0, 0, 1, port: 0))
        let held = Locked<[Int32]>([])
        let acceptor = Thread {
            while true {
                let fd = accept(listenFD, nil, nil)
                if fd < 0 { if errno == EINTR { continue }; return }
                held.withLock { $0.append(fd) }
            }
        }
        acceptor.start()
        defer {
            shutdown(listenFD, Int32(SHUT_RDWR))
            close(listenFD)
            for fd in held.current { close(fd) }
        }
        let dir = try TemporaryDirectory()
        let (ringproxy, port) = try startUnderSmallFileLimit(server: bound.port, timeoutClient: "60s", in: dir)
        var clients: [Int32] = []
        defer { for fd in clients { close(fd) } }
        let count = 1_500
        for _ in 0..<count { clients.append(TestSocket.connect(port: port)) }
        // (The readiness probe above was proxied too: it arrives, closed, beside the 1,500.)
        XCTAssertTrue(eventually(seconds: 20) { held.current.count >= count }, "the backend got \(held.current.count) of \(count)")
        // Every one is still open end to end: a byte from each client reaches the backend.
        for fd in clients { XCTAssertEqual(send(fd, "x", 1, Int32(MSG_NOSIGNAL)), 1) }
        var arrived = 0
        for fd in held.current {
            var byte: UInt8 = 0
            TestSocket.setTimeouts(fd, seconds: 5)
            if recv(fd, &byte, 1, 0) == 1 && byte == UInt8(ascii: "x") { arrived += 1 }
        }
        XCTAssertEqual(arrived, count, "every proxied connection carries data")
        for fd in clients { close(fd) }
        clients.removeAll()
        ringproxy.signal(SIGTERM)
        let (_, output) = ringproxy.finish(within: 10)
        let start = output.split(separator: "\n").first { $0.contains("started ") } ?? ""
        XCTAssertTrue(start.contains("maxconn 3000"), String(start))
        XCTAssertTrue(start.contains("8 ring(s) x 485 connections"), String(start))
        XCTAssertTrue(start.contains("8 rings on 1 CPU(s) because maxconn needs more fixed-file tables than one per CPU"), String(start))
        XCTAssertTrue(start.contains("started 8 worker(s) on CPU(s) "), String(start))
    }

    /// With more rings than CPUs each tick scans a quarter of the table: an idle client is still
    /// closed after `timeout client`, at most a second late, and not before.
    func testTimeoutsStillFireWhenTheScanIsSliced() throws {
        let echo = TestServer.echo()
        defer { echo.stop() }
        let dir = try TemporaryDirectory()
        let (ringproxy, port) = try startUnderSmallFileLimit(server: echo.port, timeoutClient: "2s", in: dir)
        defer { _ = ringproxy.finish(within: 0) }
        // Several clients, so that they land on different rings and table positions.
        let started = Date()
        let clients = (0..<16).map { _ in TestSocket.connect(port: port) }
        defer { clients.forEach { close($0) } }
        var closedAfter: [Double] = []
        for fd in clients {
            XCTAssertTrue(TestSocket.isClosedByPeer(fd, withinSeconds: 6), "an idle client was not closed")
            closedAfter.append(Date().timeIntervalSince(started))
        }
        XCTAssertGreaterThanOrEqual(closedAfter.min() ?? 0, 1.9, "closed before timeout client: \(closedAfter)")
        XCTAssertLessThanOrEqual(closedAfter.max() ?? 99, 2.0 + 1.0 + 0.5, "more than a second late: \(closedAfter)")
    }
}
