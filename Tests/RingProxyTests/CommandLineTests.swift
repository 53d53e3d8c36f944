// The ringproxy executable as an operator runs it: help, argument errors, start, SIGTERM.
import Foundation
import Glibc
import XCTest
@testable import RingProxy

final class CommandLineTests: XCTestCase {
    private func binary() throws -> String {
        let path = Tools.ringproxy
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw XCTSkipError("\(path) is missing: run `swift build` before `swift test`")
        }
        return path
    }

    func testHelpNamesTheOptionsAnOperatorNeeds() throws {
        let (status, output) = try ChildProcess(try binary(), ["--help"]).finish(within: 10)
        XCTAssertEqual(status, 0)
        for option in ["--listen", "--backend", "--cores", "--balance", "--maxconn", "--timeout-connect", "SIGTERM"] {
            XCTAssertTrue(output.contains(option), "--help does not mention \(option)")
        }
    }

    func testBadArgumentsFailWithAClearMessage() throws {
        let cases: [([String], String)] = [
            (["--backend", "127.0.0.1:1"], "--listen"),
            (["--listen", "127.0.0.1:0"], "--backend"),
            (["--listen", "127.0.0.1:99999", "--backend", "127.0.0.1:1"], "not a port number"),
            (["--listen", "127.0.0.1:1", "--backend", "127.0.0.1:1", "--balance", "random"], "unknown --balance 'random'"),
            (["--listen", "nowhere.invalid:1883", "--backend", "127.0.0.1:1"], "cannot resolve"),
        ]
        for (arguments, expected) in cases {
            let (status, output) = try ChildProcess(try binary(), arguments).finish(within: 10)
            XCTAssertNotEqual(status, 0, "\(arguments)")
            XCTAssertTrue(output.contains(expected), "\(arguments): expected '\(expected)' in: \(output)")
        }
    }

    func testPortAlreadyInUseIsAnError() throws {
        let (fd, bound) = try Listener.open(SocketAddress(ipv4: 127, 0, 0, 1, port: 0))
        defer { close(fd) }
        // Another program's listener (no SO_REUSEPORT) holds the port.
        let (other, port) = TestSocket.occupyPort()
        defer { close(other) }
        let (status, output) = try ChildProcess(try binary(), ["--listen", "127.0.0.1:\(port)", "--backend", "\(bound)"]).finish(within: 10)
        XCTAssertEqual(status, 1)
        XCTAssertTrue(output.contains("cannot bind 127.0.0.1:\(port): Address already in use"), output)
    }

    func testSigtermDrainsAnOpenConnectionAndExitsZero() throws {
        let server = TestServer.echo()
        defer { server.stop() }
        let port = TestSocket.unusedPort()
        let child = try ChildProcess(try binary(), ["--listen", "127.0.0.1:\(port)", "--backend", "127.0.0.1:\(server.port)",
                                                    "--cores", "2", "--grace", "3000"])
        XCTAssertTrue(eventually { Mosquitto.listening(port) }, "ringproxy did not start listening")
        let fd = TestSocket.connect(port: port)
        defer { close(fd) }
        XCTAssertTrue(TestSocket.writeAll(fd, [1, 2, 3]))
        XCTAssertEqual(TestSocket.readExactly(fd, 3), [1, 2, 3])
        child.signal(SIGTERM)
        // During the grace period the open connection still works and new ones are refused.
        usleep(300_000)
        XCTAssertTrue(TestSocket.writeAll(fd, [4, 5]))
        XCTAssertEqual(TestSocket.readExactly(fd, 2), [4, 5])
        XCTAssertFalse(Mosquitto.listening(port), "a stopping proxy must not accept")
        shutdown(fd, Int32(SHUT_WR))
        XCTAssertTrue(TestSocket.readToEnd(fd) { _ in })
        let (status, output) = child.finish(within: 10)
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("stopping"), output)
    }

    /// ringproxy from a file whose `hard-stop-after` would keep a stopping proxy a minute, in
    /// front of an echo server, with one connection open through it.
    private func startSlowStopping(_ arguments: [String], body: (ChildProcess, Int32) throws -> Void) throws {
        let server = TestServer.echo()
        defer { server.stop() }
        let dir = try TemporaryDirectory()
        let path = dir.file("ringproxy.cfg")
        let port = TestSocket.unusedPort()
        try hardStopAfterConfig("60s", port: port, server: server.port).write(toFile: path, atomically: true, encoding: .utf8)
        let child = try ChildProcess(try binary(), ["-f", path, "--cores", "1"] + arguments)
        XCTAssertTrue(eventually { Mosquitto.listening(port) }, "ringproxy did not start listening")
        let fd = TestSocket.connect(port: port)
        defer { close(fd) }
        assertEchoes(fd, 1)
        try body(child, fd)
    }

    func testGraceOnTheCommandLineOverridesTheFilesHardStopAfter() throws {
        try startSlowStopping(["--grace", "300"]) { child, fd in
            child.signal(SIGTERM)
            // The open connection is aborted after --grace's 300 ms, not the file's minute.
            XCTAssertTrue(TestSocket.isClosedByPeer(fd, withinSeconds: 5) || errno == ECONNRESET, "the connection outlived --grace")
            let (status, output) = child.finish(within: 5)
            XCTAssertEqual(status, 0, output)
            XCTAssertTrue(output.contains("draining for up to 300 ms"), output)
        }
    }

    func testWithoutGraceTheFilesHardStopAfterApplies() throws {
        try startSlowStopping([]) { child, fd in
            child.signal(SIGTERM)
            usleep(300_000)
            assertEchoes(fd, 2, "a stopping proxy lets its open connection work")
            shutdown(fd, Int32(SHUT_WR))
            XCTAssertTrue(TestSocket.readToEnd(fd) { _ in })
            let (status, output) = child.finish(within: 5)
            XCTAssertEqual(status, 0, output)
            XCTAssertTrue(output.contains("draining for up to 60000 ms"), output)
        }
    }
}
