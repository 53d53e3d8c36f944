// The PROXY protocol against a real peer, HAProxy 2.6 from Debian (installed by
// scripts/install-bench-deps.sh; skipped when absent): HAProxy's `send-proxy` and
// `send-proxy-v2` in front of the ringproxy binary (`accept-proxy`, its configuration file),
// whose log and header sent on name the client HAProxy saw; and ringproxy's headers read by
// HAProxy's `accept-proxy`, which logs the client and address they carry.
import Foundation
import Glibc
import XCTest
@testable import RingProxy

final class ProxyProtocolHAProxyTests: XCTestCase {
    private func haproxy() throws -> String {
        guard let path = Tools.which("haproxy") else { throw XCTSkipError("haproxy is not installed (scripts/install-bench-deps.sh)") }
        return path
    }

    /// Starts HAProxy in the foreground on `configuration`, once `port` accepts connections.
    private func startHAProxy(_ configuration: String, listening port: UInt16, in dir: TemporaryDirectory) throws -> ChildProcess {
        let path = dir.file("haproxy-peer.cfg")
        // HAProxy refuses a file whose last line has no LF.
        try (configuration + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let child = try ChildProcess(try haproxy(), ["-db", "-f", path])
        guard eventually(seconds: 10, { Mosquitto.listening(port) || !child.process.isRunning }), child.process.isRunning else {
            let (_, output) = child.finish(within: 1)
            XCTFail("haproxy did not start: \(output)")
            throw XCTSkipError("haproxy did not start")
        }
        return child
    }

    func testHAProxysHeadersInFrontOfRingproxyNameTheClientInItsLogAndInTheHeaderSentOn() throws {
        _ = try haproxy()
        let binary = Tools.ringproxy
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw XCTSkipError("run `swift build` first") }
        let received = Locked<[[UInt8]]>([])
        let broker = TestServer.recorder(received)
        defer { broker.stop() }
        let syslog = SyslogReceiver()
        let dir = try TemporaryDirectory()
        let ringPort = TestSocket.unusedPort()
        let path = dir.file("haproxy.cfg")
        try """
            \(tcpDefaults)
            frontend from_haproxy
              bind 127.0.0.1:\(ringPort) accept-proxy
              log 127.0.0.1:\(syslog.port) local3 info
              default_backend brokers
            backend brokers
              balance source
              server broker 127.0.0.1:\(broker.port) send-proxy
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let ringproxy = try ChildProcess(binary, ["-f", path, "--cores", "1"])
        defer { _ = ringproxy.finish(within: 0) }
        XCTAssertTrue(eventually { Mosquitto.listening(ringPort) }, "ringproxy did not start")

        // HAProxy: v1 and v2 over IPv4, v2 over IPv6, each on its own listener.
        let (v1Port, v2Port, v6Port) = (TestSocket.unusedPort(), TestSocket.unusedPort(), TestSocket.unusedPort())
        let front = try startHAProxy("""
            \(tcpDefaults)
            frontend v1
              bind 127.0.0.1:\(v1Port)
              default_backend ringproxy_v1
            frontend v2
              bind 127.0.0.1:\(v2Port)
              default_backend ringproxy_v2
            frontend v6
              bind [::1]:\(v6Port)
              default_backend ringproxy_v2
            backend ringproxy_v1
              server rp 127.0.0.1:\(ringPort) send-proxy
            backend ringproxy_v2
              server rp 127.0.0.1:\(ringPort) send-proxy-v2
            """, listening: v2Port, in: dir)
        defer { _ = front.finish(within: 0) }

        // Clients from addresses HAProxy alone sees: ringproxy's peer is HAProxy at 127.0.0.1.
        let payload = Array("through haproxy".utf8)
        let v1Target = SocketAddress(ipv4: 127, 0, 0, 1, port: v1Port)
        let v2Target = SocketAddress(ipv4: 127, 0, 0, 1, port: v2Port)
        let v6Target = SocketAddress.ipv6Loopback(port: v6Port)
        let client1 = exchange(with: v1Target, from: SocketAddress(ipv4: 127, 0, 0, 5, port: 0), payload)
        let client2 = exchange(with: v2Target, from: SocketAddress(ipv4: 127, 0, 0, 6, port: 0), payload)
        let client6 = exchange(with: v6Target, payload)
        let expected = [ExpectedHeader.v1(client1, v1Target) + payload, ExpectedHeader.v1(client2, v2Target) + payload,
                        ExpectedHeader.v1(client6, v6Target) + payload]
        XCTAssertTrue(eventually { expected.allSatisfy { received.current.contains($0) } },
                      "the broker got: \(received.current.map { String(decoding: $0, as: UTF8.self) })")

        // The readiness probes are logged too (ours to ringproxy, HAProxy's relayed one).
        let wanted = ["]: 127.0.0.5:\(client1.port) [", "]: 127.0.0.6:\(client2.port) [", "]: ::1:\(client6.port) ["]
        let lines = syslog.receive { lines in wanted.allSatisfy { w in lines.contains { $0.contains(w) } } }
        for w in wanted { XCTAssertTrue(lines.contains { $0.contains(w) && $0.contains(" from_haproxy brokers/broker ") }, "\(w) in \(lines)") }
        ringproxy.signal(SIGTERM)
        let (status, output) = ringproxy.finish(within: 10)
        XCTAssertEqual(status, 0, output)
    }

    func testRingproxysHeadersAreReadByHAProxysAcceptProxy() throws {
        _ = try haproxy()
        let received = Locked<[[UInt8]]>([])
        let broker = TestServer.recorder(received)
        defer { broker.stop() }
        let dir = try TemporaryDirectory()
        let haproxyPort = TestSocket.unusedPort()
        let behind = try startHAProxy("""
            global
              log stdout format raw local0 info
            \(tcpDefaults)
              log global
            frontend from_ringproxy
              bind 127.0.0.1:\(haproxyPort) accept-proxy
              log-format "learned %ci:%cp reached %fi:%fp"
              default_backend broker
            backend broker
              server broker 127.0.0.1:\(broker.port)
            """, listening: haproxyPort, in: dir)
        var expectedLines: [String] = []
        for version in [ProxyProtocolVersion.v1, .v2] {
            let (engine, port) = try startEngine(servers: [haproxyPort], cores: 1) { $0.backends[0].servers[0].proxyProtocol = version }
            let payload = Array("header \(version)".utf8)
            let client = exchange(with: SocketAddress(ipv4: 127, 0, 0, 1, port: port), from: SocketAddress(ipv4: 127, 0, 0, 9, port: 0), payload)
            XCTAssertTrue(eventually { received.current.contains(payload) }, "HAProxy forwarded the bytes after the header, and only them")
            expectedLines.append("learned 127.0.0.9:\(client.port) reached 127.0.0.1:\(port)")
            engine.stop()
            engine.wait()
        }
        usleep(200_000)
        behind.signal(SIGTERM)
        let (_, output) = behind.finish(within: 10)
        for line in expectedLines { XCTAssertTrue(output.contains(line), "expected '\(line)' in HAProxy's log: \(output)") }
    }

    /// Behind TLS termination: ringproxy's v2 header for a TLS client, read by HAProxy's
    /// `accept-proxy`, which shows the address and the TLVs it can (authority, unique id).
    func testHAProxyReadsTheAddressAndTLVsOfATLSClientsHeader() throws {
        _ = try haproxy()
        let received = Locked<[[UInt8]]>([])
        let broker = TestServer.recorder(received)
        defer { broker.stop() }
        let dir = try TemporaryDirectory()
        let haproxyPort = TestSocket.unusedPort()
        let behind = try startHAProxy("""
            global
              log stdout format raw local0 info
            \(tcpDefaults)
              log global
            frontend from_ringproxy
              bind 127.0.0.1:\(haproxyPort) accept-proxy
              log-format "learned %ci authority=%[fc_pp_authority] uid=%[fc_pp_unique_id]"
              default_backend broker
            backend broker
              server broker 127.0.0.1:\(broker.port)
            """, listening: haproxyPort, in: dir)
        let (engine, port) = try startEngine(servers: [haproxyPort], cores: 1) { config in
            config.frontends[0].tls = TLSBindConfig(certificatePaths: [TLSTestCertificates.path("server.pem")])
            config.frontends[0].uniqueIDFormat = try? UniqueIDFormat.parse("rp-%rt-%f").get()
            config.backends[0].servers[0].proxyProtocol = .v2
            config.backends[0].servers[0].proxyV2TLVs = [.ssl, .authority, .uniqueID]
        }
        let script = """
            import socket, ssl
            ctx = ssl.create_default_context(cafile="\(TLSTestCertificates.path("ca.pem"))")
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", \(port))), server_hostname="localhost")
            s.sendall(b"over tls"); s.unwrap().close()
            """
        let (status, output) = try ChildProcess("/usr/bin/env", ["python3", "-c", script]).finish(within: 20)
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(eventually { received.current.contains(Array("over tls".utf8)) }, "HAProxy forwarded the plaintext after the header")
        engine.stop()
        engine.wait()
        usleep(200_000)
        behind.signal(SIGTERM)
        let (_, log) = behind.finish(within: 10)
        XCTAssertTrue(log.contains("learned 127.0.0.1 authority=localhost uid=rp-"), log)
        XCTAssertTrue(log.contains("-test"), log)
    }
}
