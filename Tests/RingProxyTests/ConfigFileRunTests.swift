// The seed's haproxy.cfg files through the ringproxy binary: `-c -f` accepts each one or names,
// file:line, the feature that is not built yet; the MQTT sticky one runs and does what the seed
// says, against three mosquitto brokers on the seed's ports.
import Foundation
import Glibc
import XCTest
@testable import RingProxy

final class ConfigFileRunTests: XCTestCase {
    private var seedDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Config/Fixtures/seed")
    }

    private func binary() throws -> String {
        let path = Tools.ringproxy
        guard FileManager.default.isExecutableFile(atPath: path) else { throw XCTSkipError("run `swift build` first") }
        return path
    }

    func testEverySeedConfigIsAcceptedOrRefusedWithTheFeatureItNeeds() throws {
        let expectations: [String: [String]] = [
            "balance-leastconn.cfg": [],
            "balance-source.cfg": [],
            "balance-sticky.cfg": [],
            "mqtt-tcp-sticky.cfg": [],
            "balance-roundrobin.cfg": [],
            "balance-weighted.cfg": [],
            "mqtt-ws.cfg": [],
            "mqtt-wss.cfg": [":25: 'ssl': TLS termination is not implemented yet"],
            "mqtt-tls.cfg": [":27: 'ssl': TLS termination is not implemented yet"],
            "mqtt-tls-mutual.cfg": [":28: 'ssl': TLS termination is not implemented yet"],
            "stats.cfg": [],
            "seed-full.cfg": ["'ssl': TLS termination"],
        ]
        let files = try FileManager.default.contentsOfDirectory(atPath: seedDirectory.path).filter { $0.hasSuffix(".cfg") }
        XCTAssertEqual(Set(files), Set(expectations.keys), "every seed config has an expectation")
        for file in files.sorted() {
            let path = seedDirectory.appendingPathComponent(file).path
            let (status, output) = try ChildProcess(try binary(), ["-c", "-f", path]).finish(within: 10)
            let expected = expectations[file] ?? []
            if expected.isEmpty {
                XCTAssertEqual(status, 0, "\(file): \(output)")
                XCTAssertTrue(output.contains("Configuration file is valid"), "\(file): \(output)")
            } else {
                XCTAssertEqual(status, 1, "\(file) must be refused: \(output)")
                for message in expected { XCTAssertTrue(output.contains(message), "\(file): expected '\(message)' in \(output)") }
            }
            XCTAssertTrue(output.contains("'daemon': ignored"), "\(file): daemon gets a warning")
        }
    }

    func testErrorsNameFileLineAndEveryProblem() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("haproxy.cfg")
        try """
            global
              maxconn 1000
            \(tcpDefaults)
            backend b
              balanse roundrobin
              server s1 nowhere.invalid:1883
            frontend f
              bind 127.0.0.1:1883
              default_backend missing
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let (status, output) = try ChildProcess(try binary(), ["-c", "-f", path]).finish(within: 10)
        XCTAssertEqual(status, 1)
        XCTAssertTrue(output.contains("haproxy.cfg:9: unknown keyword 'balanse' in backend section (did you mean 'balance'?)"), output)
        XCTAssertTrue(output.contains("haproxy.cfg:13: 'default_backend'"), output)
        XCTAssertTrue(output.contains("missing"), output)
        let (status2, output2) = try ChildProcess(try binary(), ["-c", "-f", dir.file("absent.cfg")]).finish(within: 10)
        XCTAssertEqual(status2, 1)
        XCTAssertTrue(output2.contains("absent.cfg"), output2)
    }

    func testUnresolvableServerHostIsAnErrorAtItsLine() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("haproxy.cfg")
        try """
            \(tcpDefaults)
            backend b
              server s1 nowhere.invalid:1883
            frontend f
              bind 127.0.0.1:1883
              default_backend b
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let (status, output) = try ChildProcess(try binary(), ["-c", "-f", path]).finish(within: 20)
        XCTAssertEqual(status, 1)
        XCTAssertTrue(output.contains("haproxy.cfg:7: 'server': cannot resolve 'nowhere.invalid:1883'"), output)
    }

    /// Every seed file that needs no TLS starts unchanged and does its job: MQTT sessions on
    /// 1883 through the three brokers, the WebSocket passthrough on 8083 with its checks marking
    /// the absent brokers DOWN, the stats page on 8888.
    func testEverySeedFileThatNeedsNoTLSStartsAndServes() throws {
        let brokers = try [18831, 18832, 18833].map { try Mosquitto(port: UInt16($0)) }
        defer { brokers.forEach { $0.stop() } }
        let mqttFiles = ["balance-leastconn.cfg", "balance-source.cfg", "balance-sticky.cfg", "balance-roundrobin.cfg",
                         "balance-weighted.cfg", "mqtt-tcp-sticky.cfg"]
        for file in mqttFiles {
            let child = try ChildProcess(try binary(), ["-f", seedDirectory.appendingPathComponent(file).path, "--cores", "2"])
            XCTAssertTrue(eventually { Mosquitto.listening(1883) }, "\(file) did not start on *:1883")
            for i in 0..<6 { XCTAssertTrue(MQTTWire.session(port: 1883, clientID: "seed-\(file)-\(i)"), "\(file) session \(i)") }
            child.signal(SIGTERM)
            let (status, output) = child.finish(within: 10)
            XCTAssertEqual(status, 0, "\(file): \(output)")
            XCTAssertFalse(output.contains("is DOWN"), "\(file): every broker is up: \(output)")
        }
        let ws = try ChildProcess(try binary(), ["-f", seedDirectory.appendingPathComponent("mqtt-ws.cfg").path, "--cores", "2"])
        XCTAssertTrue(eventually { Mosquitto.listening(8083) }, "mqtt-ws.cfg did not start on *:8083")
        usleep(2_500_000)   // inter 2s: the first checks have run
        ws.signal(SIGTERM)
        let (wsStatus, wsOutput) = ws.finish(within: 10)
        XCTAssertEqual(wsStatus, 0, wsOutput)
        XCTAssertTrue(wsOutput.contains("Server mqtt_ws_backend/emqx1 is DOWN, reason: Layer4 connection problem"), wsOutput)
        XCTAssertTrue(wsOutput.contains("backend 'mqtt_ws_backend' has no server available!"), wsOutput)

        let stats = try ChildProcess(try binary(), ["-f", seedDirectory.appendingPathComponent("stats.cfg").path])
        XCTAssertTrue(eventually { Mosquitto.listening(8888) }, "stats.cfg did not start on *:8888")
        let fd = TestSocket.connect(port: 8888)
        XCTAssertTrue(TestSocket.writeAll(fd, Array("GET /stats HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)))
        var response: [UInt8] = []
        _ = TestSocket.readToEnd(fd) { response += $0 }
        close(fd)
        let text = String(decoding: response, as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 200"), text)
        XCTAssertTrue(text.contains("http-equiv=\"refresh\" content=\"10\""), "stats refresh 10s")
        stats.signal(SIGTERM)
        XCTAssertEqual(stats.finish(within: 10).0, 0)
    }

    func testTheSeedMQTTStickyConfigRunsAsTheSeedIntends() throws {
        let brokers = try [18831, 18832, 18833].map { try Mosquitto(port: UInt16($0)) }
        defer { brokers.forEach { $0.stop() } }
        let path = seedDirectory.appendingPathComponent("mqtt-tcp-sticky.cfg").path
        let child = try ChildProcess(try binary(), ["-f", path, "--cores", "2"])
        XCTAssertTrue(eventually { Mosquitto.listening(1883) }, "ringproxy did not start on *:1883")
        // Sticky on the client id, across reconnects (HAProxy 2.6 with this very file rejects
        // every client: its rules run on an empty buffer).
        let ids = (0..<100).map { "seed-client-\($0)" }
        for _ in 0..<3 { for id in ids { XCTAssertTrue(MQTTWire.session(port: 1883, clientID: id), id) } }
        XCTAssertTrue(eventually { brokers.map { $0.connectedClientIDs().count }.reduce(0, +) == 300 })
        var owners: [String: Set<Int>] = [:]
        for (b, broker) in brokers.enumerated() { for id in broker.connectedClientIDs() { owners[id, default: []].insert(b) } }
        XCTAssertEqual(owners.count, 100)
        XCTAssertTrue(owners.values.allSatisfy { $0.count == 1 }, "a client id moved between brokers")
        // Non-MQTT is rejected and reaches no broker.
        let before = brokers.map { $0.connectionCount() }
        let fd = TestSocket.connect(port: 1883)
        _ = TestSocket.writeAll(fd, Array("GET / HTTP/1.0\r\n\r\n".utf8))
        XCTAssertTrue(TestSocket.readToEnd(fd) { _ in })
        close(fd)
        usleep(100_000)
        XCTAssertEqual(brokers.map { $0.connectionCount() }, before)
        child.signal(SIGTERM)
        let (status, output) = child.finish(within: 10)
        XCTAssertEqual(status, 0)
        // `maxconn 1024000` cannot be held with this host's open-files limit: ringproxy says so,
        // starts, and enforces what it can hold (HAProxy 2.6 refuses to start on this file).
        XCTAssertTrue(output.contains("maxconn 1024000 exceeds what 2 worker(s) can hold with RLIMIT_NOFILE="), output)
        XCTAssertTrue(output.contains("enforcing"), output)
    }
}

final class AddressLimitRunTests: XCTestCase {
    func testPerAddressLimitsInHAProxySyntaxRunThroughTheBinary() throws {
        let binary = Tools.ringproxy
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw XCTSkipError("run `swift build` first") }
        let echo = TestServer.echo()
        defer { echo.stop() }
        let port = TestSocket.unusedPort()
        let dir = try TemporaryDirectory()
        let path = dir.file("haproxy.cfg")
        try """
            \(tcpDefaults)
            backend per_ip
              stick-table type ip size 100k expire 30s store conn_cur,conn_rate(10s)
            backend b
              server s1 127.0.0.1:\(echo.port)
            frontend f
              bind 127.0.0.1:\(port)
              log stderr local0
              tcp-request connection track-sc0 src table per_ip
              tcp-request connection reject if { sc0_conn_cur gt 3 } || { sc0_conn_rate gt 100 }
              default_backend b
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let (checked, checkOutput) = try ChildProcess(binary, ["-c", "-f", path]).finish(within: 10)
        XCTAssertEqual(checked, 0, checkOutput)
        let child = try ChildProcess(binary, ["-f", path, "--cores", "2"])
        XCTAssertTrue(eventually { Mosquitto.listening(port) })
        // The readiness probe came from 127.0.0.1: the hostile address is another one.
        let hostile = SocketAddress(ipv4: 127, 0, 0, 3, port: 0)
        var open: [Int32] = []
        for i in 0..<3 {
            let fd = TestSocket.connect(port: port, from: hostile)
            assertEchoes(fd, UInt8(i))
            open.append(fd)
        }
        assertRefused(port: port, from: hostile, "the fourth connection from 127.0.0.3 was served")
        assertServed(port: port, from: SocketAddress(ipv4: 127, 0, 0, 2, port: 0), 9, "127.0.0.2 has its own count")
        open.forEach { close($0) }
        child.signal(SIGUSR1)
        usleep(200_000)
        child.signal(SIGTERM)
        let (status, output) = child.finish(within: 10)
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains(" denied_conn=1 "), output)
        XCTAssertTrue(output.contains("client 127.0.0.3:"), output)
        XCTAssertTrue(output.contains("denied by \(path):14 'tcp-request connection reject if { sc0_conn_cur gt 3 } || { sc0_conn_rate gt 100 }': conn_cur 4, conn_cnt 4, conn_rate 4"), output)
        let logLine = output.split(separator: "\n").first { $0.hasPrefix("127.0.0.3:") && $0.contains(" PR ") }
        XCTAssertNotNil(logLine, "no PR line for the denied connection in: \(output)")
        XCTAssertTrue(logLine?.contains(" f b/<NOSRV> -1/-1/") ?? false, "\(logLine ?? "")")
    }
}

final class SighupReloadTests: XCTestCase {
    func testSighupAppliesAnEditedFileAndKeepsTheOldOneWhenTheNewOneIsBroken() throws {
        let binary = Tools.ringproxy
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw XCTSkipError("run `swift build` first") }
        let a = TestServer.echo(), b = TestServer.echo()
        defer { a.stop(); b.stop() }
        let port = TestSocket.unusedPort()
        let dir = try TemporaryDirectory()
        let path = dir.file("haproxy.cfg")
        func write(server: UInt16, extra: String = "") throws {
            try """
                \(tcpDefaults)
                backend b
                  server s1 127.0.0.1:\(server)
                \(extra)
                frontend f
                  bind 127.0.0.1:\(port)
                  default_backend b
                """.write(toFile: path, atomically: true, encoding: .utf8)
        }
        func roundTrip() -> Bool { echoRoundTrip(port: port) }
        try write(server: a.port)
        let child = try ChildProcess(binary, ["-f", path, "--cores", "2"])
        XCTAssertTrue(eventually { Mosquitto.listening(port) })
        let held = TestSocket.connect(port: port)   // open across both reloads
        assertEchoes(held, 1)
        XCTAssertTrue(roundTrip())
        XCTAssertGreaterThanOrEqual(a.accepted, 2)

        try write(server: b.port)
        child.signal(SIGHUP)
        XCTAssertTrue(eventually {
            let before = b.accepted
            return roundTrip() && b.accepted == before + 1
        }, "after SIGHUP new connections go to the new server")

        try write(server: b.port, extra: "  balanse roundrobin")
        child.signal(SIGHUP)
        usleep(300_000)
        let bBefore = b.accepted
        XCTAssertTrue(roundTrip(), "a broken file must leave the running configuration in place")
        XCTAssertEqual(b.accepted, bBefore + 1)
        assertEchoes(held, 2, "the connection opened before the reloads still works")
        close(held)
        child.signal(SIGTERM)
        let (status, output) = child.finish(within: 10)
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("reloaded"), output)
        XCTAssertTrue(output.contains("unknown keyword 'balanse'"), output)
        XCTAssertTrue(output.contains("reload failed, keeping the running configuration"), output)
    }

    func testSigusr1AfterAReloadThatRemovedAServerReportsTheServingServersAndKeepsCounts() throws {
        let binary = Tools.ringproxy
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw XCTSkipError("run `swift build` first") }
        let a = TestServer.echo(), b = TestServer.echo()
        defer { a.stop(); b.stop() }
        let port = TestSocket.unusedPort()
        let dir = try TemporaryDirectory()
        let path = dir.file("haproxy.cfg")
        func write(_ servers: String) throws {
            try "\(tcpDefaults)\nbackend b\n\(servers)\nfrontend f\n  bind 127.0.0.1:\(port)\n  default_backend b\n"
                .write(toFile: path, atomically: true, encoding: .utf8)
        }
        func roundTrip() -> Bool { echoRoundTrip(port: port) }
        try write("  server first 127.0.0.1:\(a.port)\n  server second 127.0.0.1:\(b.port)\n  server third 127.0.0.1:\(b.port)")
        let child = try ChildProcess(binary, ["-f", path, "--cores", "1"])
        XCTAssertTrue(eventually { Mosquitto.listening(port) })
        for _ in 0..<6 { XCTAssertTrue(roundTrip()) }
        try write("  server second 127.0.0.1:\(b.port)")
        child.signal(SIGHUP)
        // The previous configuration's workers stop accepting within a loop turn: wait until
        // five connections in a row reach the one server left.
        XCTAssertTrue(eventually {
            let before = b.accepted
            return (0..<5).allSatisfy { _ in roundTrip() } && b.accepted == before + 5
        }, "after SIGHUP new connections go to the one server left: a \(a.accepted) b \(b.accepted)")
        let aAfterReload = a.accepted
        for _ in 0..<3 { XCTAssertTrue(roundTrip()) }
        XCTAssertEqual(a.accepted, aAfterReload, "the removed server got a connection")
        child.signal(SIGUSR1)
        usleep(200_000)
        XCTAssertTrue(roundTrip(), "SIGUSR1 after a reload must not take the proxy down")
        child.signal(SIGTERM)
        let (status, output) = child.finish(within: 10)
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("b/second 127.0.0.1:\(b.port): active="), output)
        XCTAssertFalse(output.contains("b/third"), "the report lists the servers serving now: \(output)")
        // 6 before the reload, at least 2 after: the count did not start again at the reload.
        let accepted = output.split(separator: " ").first { $0.hasPrefix("accepted=") }.flatMap { Int($0.dropFirst(9)) } ?? 0
        XCTAssertGreaterThanOrEqual(accepted, 8, output)
    }
}
