// The PROXY protocol against a second real peer, nginx 1.22's stream module from Debian
// (installed by scripts/install-deps.sh; skipped when nginx or its stream module is absent):
// ringproxy's v1 and v2 headers read by `listen ... proxy_protocol`, which logs the client and
// the address it reached (plain and behind ringproxy's TLS termination, with TLVs nginx skips);
// nginx's `proxy_protocol on` in front of ringproxy's `accept-proxy`, and nginx terminating TLS
// as the one balancer that `expect-proxy layer4 if { src 127.0.0.2 }` names.
import Foundation
import Glibc
import XCTest
@testable import RingProxy

final class ProxyProtocolNginxTests: XCTestCase {
    /// nginx and the line that loads its stream module ("" when built in); nil when either is
    /// missing.
    private static let nginx: (path: String, loadStream: String)? = {
        guard let path = Tools.which("nginx") else { return nil }
        let module = "/usr/lib/nginx/modules/ngx_stream_module.so"
        if FileManager.default.fileExists(atPath: module) { return (path, "load_module \(module);") }
        guard let version = try? ChildProcess(path, ["-V"]).finish(within: 10), version.0 == 0 else { return nil }
        let builtIn = version.1.split(whereSeparator: \.isWhitespace).contains("--with-stream")
        return builtIn ? (path, "") : nil
    }()

    private func nginx() throws -> (path: String, loadStream: String) {
        guard let nginx = Self.nginx else {
            throw XCTSkipError("nginx with its stream module is not installed (scripts/install-deps.sh)")
        }
        return nginx
    }

    /// nginx in the foreground, one process (`master_process off`: no worker is left behind
    /// whatever ends the test), with `stream` as its stream block; its logs in `dir`. Returns
    /// once `port` accepts connections.
    private func startNginx(stream: String, listening port: UInt16, in dir: TemporaryDirectory) throws -> ChildProcess {
        let (path, loadStream) = try nginx()
        let configuration = """
            \(loadStream)
            daemon off;
            master_process off;
            error_log \(dir.file("nginx-error.log")) info;
            pid \(dir.file("nginx.pid"));
            events { worker_connections 64; }
            stream {
            \(stream)
            }
            """
        let file = dir.file("nginx.conf")
        try configuration.write(toFile: file, atomically: true, encoding: .utf8)
        let child = try ChildProcess(path, ["-p", dir.url.path + "/", "-c", file, "-e", dir.file("nginx-error.log")])
        guard eventually(seconds: 10, { Mosquitto.listening(port) || !child.process.isRunning }), child.process.isRunning else {
            let (_, output) = child.finish(within: 1)
            XCTFail("nginx did not start: \(output) \(contents(dir.file("nginx-error.log")))")
            throw XCTSkipError("nginx did not start")
        }
        return child
    }

    /// SIGKILL, as for mosquitto: the one process leaves no worker behind and has written each
    /// session's log line when the session ended. (SIGTERM would wait out `finish`: nginx
    /// inherits the signal mask of the thread that spawns it, and an engine started on that
    /// thread has blocked SIGTERM there, which nginx without a master never unblocks.)
    private func stop(_ nginx: ChildProcess) {
        nginx.signal(SIGKILL)
        _ = nginx.finish(within: 5)
    }

    private func contents(_ path: String) -> String {
        (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }

    /// An nginx stream server reading PROXY headers on `port` and logging what they carry to
    /// `log`, in front of `echo`.
    private func receiver(port: UInt16, echo: TestServer, log: String) -> String {
        """
          log_format learned 'learned $proxy_protocol_addr:$proxy_protocol_port reached $proxy_protocol_server_addr:$proxy_protocol_server_port';
          server {
            listen 127.0.0.1:\(port) proxy_protocol;
            access_log \(log) learned;
            proxy_pass 127.0.0.1:\(echo.port);
          }
        """
    }

    /// Sends `bytes` on a new connection to `address` (from `source`), reads them back and
    /// closes. Returns the client's own address.
    private func echoed(at address: SocketAddress, from source: SocketAddress? = nil, _ bytes: [UInt8],
                        file: StaticString = #filePath, line: UInt = #line) -> SocketAddress {
        let fd = TestSocket.connect(to: address, from: source)
        defer { close(fd) }
        XCTAssertTrue(TestSocket.writeAll(fd, bytes), file: file, line: line)
        XCTAssertEqual(TestSocket.readExactly(fd, bytes.count), bytes, "the echo through nginx, byte for byte", file: file, line: line)
        return TestSocket.localAddress(fd)
    }

    /// Waits for every line of `expected` in nginx's log of what the headers carried.
    private func assertLearned(_ expected: [String], _ dir: TemporaryDirectory, file: StaticString = #filePath, line: UInt = #line) {
        let log = dir.file("learned.log")
        let found = eventually { expected.allSatisfy { contents(log).contains($0 + "\n") } }
        XCTAssertTrue(found, "expected \(expected) in nginx's log: \(contents(log)) errors: \(contents(dir.file("nginx-error.log")))",
                      file: file, line: line)
    }

    // MARK: nginx as the receiver

    func testNginxReadsRingproxysV1AndV2HeadersForIPv4AndIPv6Clients() throws {
        _ = try nginx()
        let echo = TestServer.echo()
        defer { echo.stop() }
        let dir = try TemporaryDirectory()
        let nginxPort = TestSocket.unusedPort()
        let behind = try startNginx(stream: receiver(port: nginxPort, echo: echo, log: dir.file("learned.log")), listening: nginxPort, in: dir)
        defer { stop(behind) }

        var expected: [String] = []
        for version in [ProxyProtocolVersion.v1, .v2] {
            let (engine, _) = try startEngine(servers: [nginxPort], cores: 1) {
                $0.frontends[0].binds = [SocketAddress(ipv4: 127, 0, 0, 1, port: 0), SocketAddress.ipv6Loopback(port: 0)]
                $0.backends[0].servers[0].proxyProtocol = version
            }
            defer { engine.stop(); engine.wait() }
            let (v4, v6) = (engine.boundAddresses[0][0], engine.boundAddresses[0][1])
            XCTAssertEqual(v6.family, AF_INET6)
            let payload = Array("through nginx, \(version)".utf8) + (0...255).map { UInt8($0) }
            let local = echoed(at: v4, payload)
            let other = echoed(at: v4, from: SocketAddress(ipv4: 127, 0, 0, 3, port: 0), payload)
            let six = echoed(at: v6, payload)
            expected += [
                "learned 127.0.0.1:\(local.port) reached 127.0.0.1:\(v4.port)",
                "learned 127.0.0.3:\(other.port) reached 127.0.0.1:\(v4.port)",
                "learned ::1:\(six.port) reached ::1:\(v6.port)",
            ]
            XCTAssertEqual(engine.statistics().total[.proxyHeadersSent], 3, "\(version)")
        }
        assertLearned(expected, dir)
    }

    func testNginxReadsAV2HeaderWithTLSTLVsFromBehindRingproxysTLSTermination() throws {
        _ = try nginx()
        guard (try? ChildProcess("/usr/bin/env", ["python3", "-c", "import ssl"]).finish(within: 10).0) == 0 else {
            throw XCTSkipError("python3 with ssl is needed")
        }
        let echo = TestServer.echo()
        defer { echo.stop() }
        let dir = try TemporaryDirectory()
        let nginxPort = TestSocket.unusedPort()
        let behind = try startNginx(stream: receiver(port: nginxPort, echo: echo, log: dir.file("learned.log")), listening: nginxPort, in: dir)
        defer { stop(behind) }
        let (engine, port) = try startEngine(servers: [nginxPort], cores: 1) {
            $0.frontends[0].tls = TLSBindConfig(certificatePaths: [TLSTestCertificates.path("server.pem")])
            $0.backends[0].servers[0].proxyProtocol = .v2
            $0.backends[0].servers[0].proxyV2TLVs = [.ssl, .sslCipher, .authority]
        }
        defer { engine.stop(); engine.wait() }
        // nginx 1.22 cannot show TLVs ($proxy_protocol_tlv_* came in 1.23.2): it must skip them,
        // learn the addresses and pass on only the client's bytes.
        let script = """
            import socket, ssl
            ctx = ssl.create_default_context(cafile="\(TLSTestCertificates.path("ca.pem"))")
            raw = socket.create_connection(("127.0.0.1", \(port)), timeout=10, source_address=("127.0.0.4", 0))
            s = ctx.wrap_socket(raw, server_hostname="localhost")
            s.sendall(b"behind TLS termination")
            got = b""
            while len(got) < 22:
                chunk = s.recv(64)
                if not chunk: break
                got += chunk
            print(s.getsockname()[1], got.decode())
            s.close()
            """
        let (status, output) = try ChildProcess("/usr/bin/env", ["python3", "-c", script]).finish(within: 30)
        XCTAssertEqual(status, 0, output)
        let words = output.split(separator: " ", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        XCTAssertEqual(words.last, "behind TLS termination", "the echo through ringproxy and nginx: \(output)")
        let clientPort = try XCTUnwrap(words.first.flatMap { UInt16($0) }, output)
        assertLearned(["learned 127.0.0.4:\(clientPort) reached 127.0.0.1:\(port)"], dir)
        XCTAssertEqual(engine.statistics().total[.proxyHeadersSent], 1)
    }

    // MARK: nginx as the sender

    func testNginxsHeadersInFrontOfRingproxyNameTheClientInTheHeaderSentOn() throws {
        _ = try nginx()
        let received = Locked<[[UInt8]]>([])
        let broker = TestServer.recorder(received)
        defer { broker.stop() }
        let (engine, ringPort) = try startEngine(servers: [broker.port], cores: 1) {
            $0.frontends[0].acceptProxy = true
            $0.backends[0].servers[0].proxyProtocol = .v1
        }
        defer { engine.stop(); engine.wait() }
        let dir = try TemporaryDirectory()
        let (v4Port, v6Port) = (TestSocket.unusedPort(), TestSocket.unusedPort())
        // nginx 1.22 sends v1 headers only.
        let front = try startNginx(stream: """
              server {
                listen 127.0.0.1:\(v4Port);
                listen [::1]:\(v6Port);
                proxy_pass 127.0.0.1:\(ringPort);
                proxy_protocol on;
              }
            """, listening: v4Port, in: dir)
        defer { stop(front) }

        // Ringproxy's peer is nginx at 127.0.0.1: only nginx's header can name these clients.
        let payload = Array("through nginx".utf8)
        let v4Target = SocketAddress(ipv4: 127, 0, 0, 1, port: v4Port)
        let v6Target = SocketAddress.ipv6Loopback(port: v6Port)
        let client4 = exchange(with: v4Target, from: SocketAddress(ipv4: 127, 0, 0, 5, port: 0), payload)
        let client6 = exchange(with: v6Target, payload)
        XCTAssertEqual(client6.family, AF_INET6)
        let expected = [ExpectedHeader.v1(client4, v4Target) + payload, ExpectedHeader.v1(client6, v6Target) + payload]
        XCTAssertTrue(eventually { expected.allSatisfy { received.current.contains($0) } },
                      "the broker got: \(received.current.map { String(decoding: $0, as: UTF8.self) })")
        let stats = engine.statistics().total
        XCTAssertGreaterThanOrEqual(stats[.proxyHeadersReceived], 2, "the readiness probe's connection counts too")
        XCTAssertEqual(stats[.proxyRejectedSignature], 0)
        XCTAssertEqual(stats[.proxyRejectedTruncated], 0)
    }

    func testNginxTerminatingTLSAtTheExpectedBalancerAddressSendsAHeaderAndOtherClientsDoNot() throws {
        _ = try nginx()
        guard (try? ChildProcess("/usr/bin/env", ["python3", "-c", "import ssl"]).finish(within: 10).0) == 0 else {
            throw XCTSkipError("python3 with ssl is needed")
        }
        let received = Locked<[[UInt8]]>([])
        let broker = TestServer.recorder(received)
        defer { broker.stop() }
        let (engine, ringPort) = try startEngine(servers: [broker.port], cores: 1) {
            $0.frontends[0].expectProxy = ExpectProxyConfig(sources: [AddressPrefix.parse("127.0.0.2")!], whenMatching: true)
            $0.backends[0].servers[0].proxyProtocol = .v1
        }
        defer { engine.stop(); engine.wait() }
        let dir = try TemporaryDirectory()
        let tlsPort = TestSocket.unusedPort()
        let server = TLSTestCertificates.path("server.pem")
        let front = try startNginx(stream: """
              server {
                listen 127.0.0.1:\(tlsPort) ssl;
                ssl_certificate \(server);
                ssl_certificate_key \(server);
                proxy_pass 127.0.0.1:\(ringPort);
                proxy_bind 127.0.0.2;
                proxy_protocol on;
              }
            """, listening: tlsPort, in: dir)
        defer { stop(front) }

        // A TLS client through nginx: ringproxy reads nginx's header (its peer is 127.0.0.2).
        let script = """
            import socket, ssl
            ctx = ssl.create_default_context(cafile="\(TLSTestCertificates.path("ca.pem"))")
            raw = socket.create_connection(("127.0.0.1", \(tlsPort)), timeout=10, source_address=("127.0.0.4", 0))
            s = ctx.wrap_socket(raw, server_hostname="localhost")
            s.sendall(b"decrypted by nginx")
            print(s.getsockname()[1], flush=True)
            try:
                s.unwrap()
            except OSError:
                pass
            raw.close()
            """
        let (status, output) = try ChildProcess("/usr/bin/env", ["python3", "-c", script]).finish(within: 30)
        XCTAssertEqual(status, 0, output)
        let clientPort = try XCTUnwrap(UInt16(output.trimmingCharacters(in: .whitespacesAndNewlines)), output)
        let viaNginx = ExpectedHeader.v1(SocketAddress(ipv4: 127, 0, 0, 4, port: clientPort), SocketAddress(ipv4: 127, 0, 0, 1, port: tlsPort))
            + Array("decrypted by nginx".utf8)
        XCTAssertTrue(eventually { received.current.contains(viaNginx) },
                      "the broker got: \(received.current.map { String(decoding: $0, as: UTF8.self) }) nginx: \(contents(dir.file("nginx-error.log")))")

        // Another source, no header: proxied as it comes, named by its own address.
        let payload = Array("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nstraight in".utf8)
        let ringproxy = SocketAddress(ipv4: 127, 0, 0, 1, port: ringPort)
        let direct = exchange(with: ringproxy, from: SocketAddress(ipv4: 127, 0, 0, 3, port: 0), payload)
        let straight = ExpectedHeader.v1(direct, ringproxy) + payload
        XCTAssertTrue(eventually { received.current.contains(straight) },
                      "the broker got: \(received.current.map { String(decoding: $0, as: UTF8.self) })")
        // The balancer's address without a header: refused, nothing forwarded.
        let before = received.current.count
        let bare = TestSocket.connect(port: ringPort, from: SocketAddress(ipv4: 127, 0, 0, 2, port: 0))
        XCTAssertTrue(TestSocket.writeAll(bare, Array("no header from the balancer\r\n".utf8)))
        XCTAssertTrue(TestSocket.isClosedByPeer(bare), "127.0.0.2 must send a header")
        close(bare)
        let stats = engine.statistics().total
        XCTAssertEqual(stats[.proxyHeadersReceived], 1, "nginx's header only")
        XCTAssertEqual(stats[.proxyRejectedSignature], 1)
        XCTAssertEqual(received.current.count, before, "nothing forwarded")
    }
}
