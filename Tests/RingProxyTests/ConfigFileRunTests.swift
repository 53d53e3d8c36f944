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

    /// The seed's relative certificate paths (certs/server.pem, certs/cacert.pem) under a
    /// directory made for the run, with throwaway certificates in them.
    private func seedWorkingDirectory() throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory()
        let certs = dir.file("certs")
        try FileManager.default.createDirectory(atPath: certs, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: TLSTestCertificates.path("server.pem"), toPath: certs + "/server.pem")
        try FileManager.default.copyItem(atPath: TLSTestCertificates.path("ca.pem"), toPath: certs + "/cacert.pem")
        return dir
    }

    func testEverySeedConfigPassesTheCheck() throws {
        let dir = try seedWorkingDirectory()
        let files = try FileManager.default.contentsOfDirectory(atPath: seedDirectory.path).filter { $0.hasSuffix(".cfg") }
        XCTAssertEqual(files.count, 12, "the 12 seed files")
        for file in files.sorted() {
            let path = seedDirectory.appendingPathComponent(file).path
            let (status, output) = try ChildProcess(try binary(), ["-c", "-f", path], currentDirectory: dir.url.path).finish(within: 10)
            XCTAssertEqual(status, 0, "\(file): \(output)")
            XCTAssertTrue(output.contains("Configuration file is valid"), "\(file): \(output)")
            XCTAssertTrue(output.contains("'daemon': ignored"), "\(file): daemon gets a warning")
        }
    }

    func testTheCheckExplainsBalanceClientIDHash() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("haproxy.cfg")
        try """
            \(tcpDefaults)
            frontend f
              bind 127.0.0.1:\(TestSocket.unusedPort())
              default_backend b
            backend b
              balance clientid-hash
              server s 127.0.0.1:1
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let (status, output) = try ChildProcess(try binary(), ["-c", "-f", path]).finish(within: 10)
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("Configuration file is valid"), output)
        XCTAssertTrue(output.contains("\(path):10: 'balance clientid-hash' is a ringproxy extension (HAProxy refuses it), "
                                      + "read as 'balance hash req.payload(0,0),mqtt_field_value(connect,client_identifier)'"), output)
    }

    /// A broker behind `send-proxy-v2`: reads the PROXY v2 header (recording its command:
    /// 0x21 PROXY for clients, 0x20 LOCAL for health checks), then answers a CONNECT.
    private func proxyV2Broker(port: UInt16, commands: Locked<[UInt8]>) -> TestServer {
        TestServer(port: port) { fd in
            guard let header = TestSocket.readExactly(fd, 16) else { return }
            commands.withLock { $0.append(header[12]) }
            let length = Int(header[14]) << 8 | Int(header[15])
            if length > 0 { guard TestSocket.readExactly(fd, length) != nil else { return } }
            guard let head = TestSocket.readExactly(fd, 2), head[0] == 0x10, TestSocket.readExactly(fd, Int(head[1])) != nil else { return }
            _ = TestSocket.writeAll(fd, [0x20, 0x02, 0x00, 0x00])
            _ = TestSocket.readToEnd(fd) { _ in }
        }
    }

    /// The seed's TLS files, unchanged, with certificates where they say: MQTT over TLS (and
    /// mutual TLS) to brokers that get a PROXY v2 header, WSS to WebSocket brokers, everything.
    func testTheSeedTLSFilesRunWithTheirCertificates() throws {
        guard let pub = Tools.which("mosquitto_pub") else { throw XCTSkipError("mosquitto-clients is not installed") }
        let dir = try seedWorkingDirectory()
        let commands = Locked<[UInt8]>([])
        let brokers = [18831, 18832, 18833].map { proxyV2Broker(port: UInt16($0), commands: commands) }
        defer { brokers.forEach { $0.stop() } }
        func run(_ file: String, port: UInt16, _ body: () throws -> Void) throws {
            let child = try ChildProcess(try binary(), ["-f", seedDirectory.appendingPathComponent(file).path, "--cores", "2"],
                                         currentDirectory: dir.url.path)
            XCTAssertTrue(eventually { Mosquitto.listening(port) }, "\(file) did not start on \(port)")
            try body()
            child.signal(SIGTERM)
            let (status, output) = child.finish(within: 10)
            XCTAssertEqual(status, 0, "\(file): \(output)")
        }
        func publish(_ id: String, cert: String? = nil) throws -> Int32 {
            var arguments = ["-h", "localhost", "-p", "8883", "--cafile", dir.file("certs/cacert.pem"), "-i", id, "-t", "t", "-m", "m"]
            if let cert { arguments += ["--cert", TLSTestCertificates.path(cert), "--key", TLSTestCertificates.path(cert)] }
            return try ChildProcess(pub, arguments).finish(within: 10).0
        }
        try run("mqtt-tls.cfg", port: 8883) {
            for i in 0..<3 { XCTAssertEqual(try publish("seed-tls-\(i)"), 0) }
        }
        XCTAssertTrue(commands.withLock { $0.filter { $0 == 0x21 }.count } >= 3, "clients arrive with PROXY v2 'PROXY' headers")
        // The seed writes check-send-proxy without check: no checks run, none arrives.
        XCTAssertFalse(commands.withLock { $0.contains(0x20) })
        try run("mqtt-tls-mutual.cfg", port: 8883) {
            XCTAssertEqual(try publish("seed-mtls-good", cert: "client.pem"), 0)
            XCTAssertNotEqual(try publish("seed-mtls-none"), 0, "verify required: no certificate, no session")
        }
        let wsBrokers = try [18081, 18082, 18083].map { try Mosquitto(port: UInt16($0), websockets: true) }
        defer { wsBrokers.forEach { $0.stop() } }
        try run("mqtt-wss.cfg", port: 8084) {
            let script = """
                import ssl, sys, threading, paho.mqtt.client as mqtt
                got = threading.Event()
                c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="seed-wss", transport="websockets")
                c.tls_set(ca_certs="\(dir.file("certs/cacert.pem"))")
                c.on_connect = lambda cl, u, f, rc, p=None: cl.subscribe("rp/wss", qos=1)
                c.on_subscribe = lambda cl, u, mid, rc, p=None: cl.publish("rp/wss", b"over wss", qos=1)
                c.on_message = lambda cl, u, m: got.set()
                c.connect("localhost", 8084, keepalive=30)
                c.loop_start(); ok = got.wait(10); c.disconnect(); c.loop_stop()
                print("ROUNDTRIP" if ok else "NOTHING"); sys.exit(0 if ok else 1)
                """
            let (status, output) = try ChildProcess("/usr/bin/env", ["python3", "-c", script]).finish(within: 20)
            XCTAssertEqual(status, 0, "paho over WSS through the seed's 8084: \(output)")
        }
        try run("seed-full.cfg", port: 8888) {
            for port: UInt16 in [1883, 8883, 8083, 8084] { XCTAssertTrue(Mosquitto.listening(port), "seed-full listens on \(port)") }
        }
    }

    func testAMissingCertificateIsNamedWithTheBindLine() throws {
        let empty = try TemporaryDirectory()
        let path = seedDirectory.appendingPathComponent("mqtt-tls.cfg").path
        let (status, output) = try ChildProcess(try binary(), ["-c", "-f", path], currentDirectory: empty.url.path).finish(within: 10)
        XCTAssertEqual(status, 1, output)
        XCTAssertTrue(output.contains("mqtt-tls.cfg:27: frontend 'mqtt_tls_frontend': certs/server.pem"), output)
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

    /// With -f, a quick-mode option the file expresses is refused naming the file's keyword
    /// (it would be ignored), and the rings' buffer options, which the file cannot express, apply.
    func testCommandLineOptionsBesideAFileAreAppliedOrRefusedNeverIgnored() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("haproxy.cfg")
        let echo = TestServer.echo()
        defer { echo.stop() }
        let port = TestSocket.unusedPort()
        try """
            \(tcpDefaults)
            frontend f
              bind 127.0.0.1:\(port)
              default_backend b
            backend b
              server s 127.0.0.1:\(echo.port)
            """.write(toFile: path, atomically: true, encoding: .utf8)
        for (option, keyword) in [(["--timeout-client", "1000"], "'timeout client'"), (["--maxconn=10"], "'maxconn'"),
                                  (["--mqtt"], "mqtt_is_valid"), (["--balance", "leastconn"], "'balance'")] {
            let (status, output) = try ChildProcess(try binary(), ["-f", path] + option).finish(within: 10)
            XCTAssertNotEqual(status, 0, "\(option): \(output)")
            XCTAssertTrue(output.contains("\(option[0].split(separator: "=")[0]) is for the quick mode; with -f the file says it: "), output)
            XCTAssertTrue(output.contains(keyword), output)
        }
        let child = try ChildProcess(try binary(), ["-f", path, "--cores", "1", "--buffers", "64", "--buffer-size", "4096"])
        XCTAssertTrue(eventually { Mosquitto.listening(port) }, "the file's frontend listens")
        XCTAssertTrue(echoRoundTrip(port: port), "the file's frontend serves")
        child.signal(SIGTERM)
        let (status, output) = child.finish(within: 10)
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("provided buffers: 64 x 4096 B per worker"), output)
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
        // `maxconn 1024000` needs more fixed-file tables than one per CPU under this host's
        // open-files limit: ringproxy makes more rings on the same CPUs and says so (HAProxy 2.6
        // refuses to start on this file).
        XCTAssertTrue(output.contains("maxconn 1024000 (capacity "), output)
        XCTAssertTrue(output.contains("rings on 2 CPU(s) because maxconn needs more fixed-file tables than one per CPU"), output)
        XCTAssertFalse(output.contains("enforcing"), output)
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
