// Issue 16's source-address pools and MQTT-aware idle timeout, through the ringproxy binary
// and a config file: the broker sees server connections from every pool address in turn, a
// reload changes the pool, an address that is not the host's is refused at start; a client
// silent past 1.5 x its CONNECT keepalive is closed (cD) while `timeout client` is a minute,
// and one that pings survives.
import Foundation
import Glibc
import XCTest
@testable import RingProxy

final class SourcePoolRunTests: XCTestCase {
    private func binary() throws -> String {
        let path = Tools.ringproxy
        guard FileManager.default.isExecutableFile(atPath: path) else { throw XCTSkipError("run `swift build` first") }
        return path
    }

    /// Also the keepalive tests' global and defaults sections (`timeout client` a minute).
    static let defaults = """
        global
          log stderr local0
        defaults
          mode tcp
          log global
          option tcplog
          timeout connect 2s
          timeout client 60s
          timeout server 60s
        """

    /// A server that records the address each connection comes from and holds it until EOF.
    private func recordingServer(_ peers: Locked<[String]>) -> TestServer {
        TestServer { fd in
            var storage = sockaddr_in6()
            var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            _ = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) }
            }
            let peer = withUnsafeBytes(of: &storage) { SocketAddress(raw: $0.baseAddress!, length: length)! }
            peers.withLock { $0.append(peer.hostText) }
            _ = TestSocket.readToEnd(fd) { _ in }
        }
    }

    private func config(port: UInt16, server: UInt16, source: String) -> String {
        """
        \(Self.defaults)
        frontend f
          bind 127.0.0.1:\(port)
          default_backend b
        backend b
          source \(source)
          server s1 127.0.0.1:\(server)
        """
    }

    func testServerConnectionsLeaveFromEachPoolAddressInTurnAndAReloadChangesThePool() throws {
        let peers = Locked<[String]>([])
        let broker = recordingServer(peers)
        defer { broker.stop() }
        let dir = try TemporaryDirectory()
        let path = dir.file("ringproxy.cfg")
        let port = TestSocket.unusedPort()
        try config(port: port, server: broker.port, source: "127.0.0.2-127.0.0.5").write(toFile: path, atomically: true, encoding: .utf8)
        let ringproxy = try ChildProcess(try binary(), ["-f", path, "--cores", "1"])
        defer { _ = ringproxy.finish(within: 0) }
        XCTAssertTrue(eventually { Mosquitto.listening(port) }, "ringproxy did not start")
        XCTAssertTrue(eventually { peers.current.count == 1 })

        func connectAll(_ n: Int) -> [Int32] { (0..<n).map { _ in TestSocket.connect(port: port) } }
        var clients = connectAll(8)
        XCTAssertTrue(eventually { peers.current.count == 9 }, "\(peers.current)")
        let spread = Dictionary(grouping: peers.current.dropFirst(), by: { $0 }).mapValues(\.count)
        XCTAssertEqual(spread, ["127.0.0.2": 2, "127.0.0.3": 2, "127.0.0.4": 2, "127.0.0.5": 2], "one worker walks its pool round robin")

        try config(port: port, server: broker.port, source: "127.0.0.6-127.0.0.7").write(toFile: path, atomically: true, encoding: .utf8)
        ringproxy.signal(SIGHUP)
        XCTAssertTrue(eventually(seconds: 15) {
            clients.append(TestSocket.connect(port: port))
            return eventually(seconds: 1) { peers.current.last == "127.0.0.6" || peers.current.last == "127.0.0.7" }
        }, "after the reload the new pool is used: \(peers.current)")
        // The old workers stop accepting just after the new ones start (the listening sockets
        // are handed over, nothing in the backlog is reset): a connection or two may still meet
        // the old pool. Once they have stopped, every connection leaves from the new pool.
        var last: [String] = []
        XCTAssertTrue(eventually(seconds: 15) {
            let before = peers.current.count
            clients += connectAll(4)
            guard eventually(seconds: 2, { peers.current.count == before + 4 }) else { return false }
            last = Array(peers.current.suffix(4))
            return Set(last) == ["127.0.0.6", "127.0.0.7"]
        }, "four connections in a row from the new pool, walked in turn: \(last)")
        for fd in clients { close(fd) }
    }

    func testASourceThatIsNotAnAddressOfThisHostIsRefusedAtStart() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("ringproxy.cfg")
        try config(port: TestSocket.unusedPort(), server: 1, source: "192.0.2.1-192.0.2.9").write(toFile: path, atomically: true, encoding: .utf8)
        let (status, output) = try ChildProcess(try binary(), ["-f", path, "--cores", "1"]).finish(within: 10)
        XCTAssertNotEqual(status, 0, output)
        XCTAssertTrue(output.contains("ringproxy.cfg:15: server 'b/s1': 'source 192.0.2.1-192.0.2.9': 192.0.2.1 is not an address of this host"), output)
    }

    /// Two pool addresses and, in a network namespace of its own (the host's port range is not
    /// touched), two ephemeral ports: four connections fit towards the broker, the fifth finds
    /// the pool full and is closed at once (counted, logged), never left hanging.
    func testAFullPoolClosesTheClientAndIsCountedPerServer() throws {
        guard Tools.which("unshare") != nil, Tools.which("ip") != nil, getuid() == 0 else {
            throw XCTSkipError("needs root, unshare and ip for a network namespace with its own port range")
        }
        let dir = try TemporaryDirectory()
        let path = dir.file("ringproxy.cfg")
        try """
            \(Self.defaults)
              retries 1
            frontend f
              bind 127.0.0.1:29000
              default_backend b
            backend b
              source 127.0.0.2-127.0.0.3
              server s1 127.0.0.1:29001
            listen stats
              bind 127.0.0.1:29002
              mode http
              stats enable
              stats uri /stats
            """.write(toFile: path, atomically: true, encoding: .utf8)
        // Clients and the readiness probe bind their own ports: only ringproxy's server side
        // draws from the namespace's two ephemeral ports.
        let script = """
            import socket, subprocess, sys, threading, time
            srv = socket.socket(); srv.bind(("127.0.0.1", 29001)); srv.listen(64)
            held, peers = [], []
            def serve():
                while True:
                    c, a = srv.accept(); peers.append(a[0]); held.append(c)
            threading.Thread(target=serve, daemon=True).start()
            rp = subprocess.Popen([sys.argv[1], "-f", sys.argv[2], "--cores", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            def metrics():
                s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 52000))
                s.connect(("127.0.0.1", 29002)); s.sendall(b"GET /metrics HTTP/1.0\\r\\n\\r\\n")
                out = b""
                while True:
                    b = s.recv(65536)
                    if not b: break
                    out += b
                s.close(); return out.decode()
            for _ in range(200):
                try: metrics(); break
                except OSError: time.sleep(0.05)
            clients = []
            for i in range(5):
                c = socket.create_connection(("127.0.0.1", 29000), source_address=("127.0.0.1", 51000 + i)); c.settimeout(5); clients.append(c)
                time.sleep(0.2)
            start = time.time()
            try: fifth = "closed" if clients[4].recv(1) == b"" else "data"
            except Exception as e: fifth = "error %s" % e
            print("FIFTH", fifth, round(time.time() - start, 1))
            print("PEERS", ",".join(sorted(peers)))
            time.sleep(0.5)
            print("\\n".join(l for l in metrics().splitlines() if l.startswith("ringproxy_server_source_exhausted_total")))
            rp.kill(); print(rp.communicate(timeout=10)[0].decode())
            """
        try script.write(toFile: dir.file("full.py"), atomically: true, encoding: .utf8)
        let (status, output) = try ChildProcess("/usr/bin/unshare", [
            "-n", "sh", "-c",
            "ip link set lo up && echo '40000 40001' > /proc/sys/net/ipv4/ip_local_port_range && exec python3 \(dir.file("full.py")) \(try binary()) \(path)",
        ]).finish(within: 30)
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("PEERS 127.0.0.2,127.0.0.2,127.0.0.3,127.0.0.3"), "four connections, both addresses: \(output)")
        XCTAssertTrue(output.contains("FIFTH closed 0.0"), "the fifth is closed at once: \(output)")
        XCTAssertTrue(output.contains(#"ringproxy_server_source_exhausted_total{proxy="b",server="s1"} 2"#), "the first try and its retry, counted on the server: \(output)")
        XCTAssertTrue(output.contains("server b/s1: source pool 127.0.0.2-127.0.0.3 has no free address and port towards 127.0.0.1:29001 (Cannot assign requested address)"), output)
    }
}

final class MQTTKeepAliveTimeoutRunTests: XCTestCase {
    /// A broker that answers CONNECT with CONNACK and PINGREQ with PINGRESP and never times a
    /// client out itself, so that only ringproxy can close a silent one.
    private func patientBroker() -> TestServer {
        TestServer { fd in
            TestSocket.setTimeouts(fd, seconds: 120)
            while let head = TestSocket.readExactly(fd, 1) {
                var length = 0
                var shift = 0
                while let byte = TestSocket.readExactly(fd, 1)?.first {
                    length |= Int(byte & 0x7F) << shift
                    shift += 7
                    if byte & 0x80 == 0 { break }
                }
                if length > 0 { guard TestSocket.readExactly(fd, length) != nil else { return } }
                switch head[0] >> 4 {
                case 1: _ = TestSocket.writeAll(fd, [0x20, 0x02, 0x00, 0x00])
                case 12: _ = TestSocket.writeAll(fd, [0xD0, 0x00])
                case 14: return
                default: break
                }
            }
        }
    }

    /// An MQTT 3.1.1 CONNECT with this keepalive and client id.
    private func connect(keepAliveS: UInt16, id: String) -> [UInt8] {
        let variable: [UInt8] = [0x00, 0x04] + Array("MQTT".utf8) + [0x04, 0x02, UInt8(keepAliveS >> 8), UInt8(keepAliveS & 0xFF)]
        let payload: [UInt8] = [0x00, UInt8(id.utf8.count)] + Array(id.utf8)
        return [0x10, UInt8(variable.count + payload.count)] + variable + payload
    }

    private func config(port: UInt16, broker: UInt16, option: String) -> String {
        """
        \(SourcePoolRunTests.defaults)
        frontend f
          bind 127.0.0.1:\(port)
          \(option)
          default_backend b
        backend b
          server s1 127.0.0.1:\(broker)
        """
    }

    /// Seconds until ringproxy closes a client that sent only `bytes`; nil: still open after
    /// `within` seconds.
    private func secondsUntilClosed(port: UInt16, sending bytes: [UInt8], within: Int) -> Double? {
        let fd = TestSocket.connect(port: port)
        defer { close(fd) }
        XCTAssertTrue(TestSocket.writeAll(fd, bytes))
        guard let connack = TestSocket.readExactly(fd, 4), connack[0] == 0x20 else { return nil }
        let start = Date()
        TestSocket.setTimeouts(fd, seconds: within)
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, 0) == 0 ? Date().timeIntervalSince(start) : nil
    }

    func testASilentClientIsClosedAtOneAndAHalfKeepalivesAndAPingingOneSurvives() throws {
        guard FileManager.default.isExecutableFile(atPath: Tools.ringproxy) else { throw XCTSkipError("run `swift build` first") }
        let broker = patientBroker()
        defer { broker.stop() }
        let dir = try TemporaryDirectory()
        let path = dir.file("ringproxy.cfg")
        let port = TestSocket.unusedPort()
        try config(port: port, broker: broker.port, option: "option mqtt-keepalive-timeout")
            .write(toFile: path, atomically: true, encoding: .utf8)
        let ringproxy = try ChildProcess(Tools.ringproxy, ["-f", path, "--cores", "1"])
        XCTAssertTrue(eventually { Mosquitto.listening(port) }, "ringproxy did not start")

        // A paho client with keepalive 2 s pings on its own: alive after 7 s (3.5 keepalives).
        let paho = try ChildProcess("/usr/bin/env", ["python3", "-c", """
            import sys, threading, time, paho.mqtt.client as mqtt
            gone = threading.Event()
            c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pinger")
            c.on_disconnect = lambda *a: gone.set()
            c.connect("127.0.0.1", \(port), keepalive=2)
            c.loop_start(); time.sleep(7)
            print("ALIVE" if not gone.is_set() and c.is_connected() else "GONE"); c.disconnect(); c.loop_stop()
            """])
        // A device that sends CONNECT (keepalive 2) and then nothing: closed at ~3 s, not 60.
        let silent = secondsUntilClosed(port: port, sending: connect(keepAliveS: 2, id: "silent"), within: 10)
        XCTAssertNotNil(silent, "closed within 10 s")
        if let silent { XCTAssertTrue(silent >= 2.7 && silent < 4.5, "closed after \(silent) s, expected 3 s (+ the 250 ms scan)") }
        // Keepalive 0 means none: `timeout client` (60 s) still rules.
        XCTAssertNil(secondsUntilClosed(port: port, sending: connect(keepAliveS: 0, id: "nokeepalive"), within: 4))
        let (pahoStatus, pahoOutput) = paho.finish(within: 20)
        XCTAssertEqual(pahoStatus, 0, pahoOutput)
        XCTAssertTrue(pahoOutput.contains("ALIVE"), pahoOutput)

        // A reload with the option off: the same silent device is no longer reaped early.
        try config(port: port, broker: broker.port, option: "no option mqtt-keepalive-timeout")
            .write(toFile: path, atomically: true, encoding: .utf8)
        ringproxy.signal(SIGHUP)
        usleep(500_000)
        XCTAssertNil(secondsUntilClosed(port: port, sending: connect(keepAliveS: 1, id: "after-reload"), within: 3))
        ringproxy.signal(SIGTERM)
        let (_, output) = ringproxy.finish(within: 15)
        let line = output.split(separator: "\n").first { $0.contains("f b/s1") && $0.contains(" cD") }
        XCTAssertNotNil(line, "the connection log gives cD (client-side timeout) for the silent device:\n\(output)")
    }
}
