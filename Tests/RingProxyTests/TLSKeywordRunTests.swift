// The TLS keywords OpenSSL enforces, end to end: a real ringproxy process started from a config
// file, real clients (`openssl s_client`, Python's ssl) on loopback. Each test states what the
// keyword must allow and what it must refuse, so that a keyword mapped to nothing fails.
import Foundation
import Glibc
import XCTest
@testable import RingProxy

final class TLSKeywordRunTests: XCTestCase {
    private let ca = TLSTestCertificates.path("ca.pem")

    /// ringproxy with one TLS frontend (`bind 127.0.0.1:PORT ssl crt server.pem <options>`) in
    /// front of an echo server, the `global` lines given; `body` gets the port.
    private func run(global: [String] = [], _ options: String, _ body: (UInt16) throws -> Void) throws {
        let binary = Tools.ringproxy
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw XCTSkipError("run `swift build` first") }
        let echo = TestServer.echo()
        defer { echo.stop() }
        let port = TestSocket.unusedPort()
        let dir = try TemporaryDirectory()
        let text = (["global"] + global.map { "  " + $0 } + [
            "defaults", "  mode tcp", "  timeout connect 2s", "  timeout client 10s", "  timeout server 10s",
            "frontend f",
            "  bind 127.0.0.1:\(port) ssl crt \(TLSTestCertificates.path("server.pem")) \(options)",
            "  default_backend b",
            "backend b",
            "  server echo 127.0.0.1:\(echo.port)",
        ]).joined(separator: "\n") + "\n"
        try text.write(toFile: dir.file("tls.cfg"), atomically: true, encoding: .utf8)
        let child = try ChildProcess(binary, ["-f", dir.file("tls.cfg"), "--cores", "1"])
        guard eventually(seconds: 10, { Mosquitto.listening(port) }) else {
            child.signal(SIGTERM)
            XCTFail("ringproxy did not start: \(child.finish(within: 5).1)")
            return
        }
        try body(port)
        child.signal(SIGTERM)
        let (status, output) = child.finish(within: 10)
        XCTAssertEqual(status, 0, output)
    }

    /// `openssl s_client` with `arguments`, nothing on stdin; true when the handshake finished.
    private func handshakes(_ port: UInt16, _ arguments: String, output: UnsafeMutablePointer<String>? = nil) throws -> Bool {
        let command = "exec openssl s_client -brief -connect 127.0.0.1:\(port) -CAfile \(ca) \(arguments) </dev/null"
        let (status, text) = try ChildProcess("/bin/sh", ["-c", command]).finish(within: 10)
        output?.pointee = text
        return status == 0 && text.contains("CONNECTION ESTABLISHED")
    }

    func testForceTLSv12RefusesTLS13AndAdmitsTLS12() throws {
        try run("force-tlsv12") { port in
            XCTAssertFalse(try handshakes(port, "-tls1_3 -servername localhost"))
            XCTAssertTrue(try handshakes(port, "-tls1_2 -servername localhost"))
        }
    }

    func testTheGlobalDefaultAppliesAndTheBindsOwnVersionWins() throws {
        try run(global: ["ssl-default-bind-options force-tlsv13"], "") { port in
            XCTAssertFalse(try handshakes(port, "-tls1_2 -servername localhost"), "global force-tlsv13")
            XCTAssertTrue(try handshakes(port, "-tls1_3 -servername localhost"))
        }
        try run(global: ["ssl-default-bind-options ssl-min-ver TLSv1.3"], "ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.2") { port in
            XCTAssertTrue(try handshakes(port, "-tls1_2 -servername localhost"), "the bind's own versions")
            XCTAssertFalse(try handshakes(port, "-tls1_3 -servername localhost"))
        }
    }

    func testCurvesX25519RefusesAClientOfferingOnlyP256() throws {
        try run("curves X25519") { port in
            XCTAssertFalse(try handshakes(port, "-groups P-256 -servername localhost"))
            XCTAssertTrue(try handshakes(port, "-groups X25519 -servername localhost"))
        }
        try run("ecdhe prime256v1") { port in
            XCTAssertFalse(try handshakes(port, "-groups X25519 -servername localhost"), "ecdhe: one curve only")
            XCTAssertTrue(try handshakes(port, "-groups P-256 -servername localhost"))
        }
    }

    func testStrictSNIRefusesAHandshakeWhoseNameMatchesNoCertificate() throws {
        try run("strict-sni") { port in
            XCTAssertTrue(try handshakes(port, "-servername localhost"))
            var text = ""
            XCTAssertFalse(try handshakes(port, "-servername other.example.com", output: &text))
            XCTAssertTrue(text.contains("unrecognized name"), text)
            XCTAssertFalse(try handshakes(port, "-noservername"), "no SNI: no default certificate")
        }
        try run("") { port in
            XCTAssertTrue(try handshakes(port, "-noservername"), "without strict-sni the first certificate is the default")
        }
    }

    func testPreferClientCiphersLetsTheClientsOrderWin() throws {
        let server = "ciphers ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256"
        let client = "-tls1_2 -servername localhost -cipher ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305"
        var text = ""
        try run(server) { port in
            XCTAssertTrue(try handshakes(port, client, output: &text))
            XCTAssertTrue(text.contains("Ciphersuite: ECDHE-ECDSA-CHACHA20-POLY1305"), "the server's order: \(text)")
        }
        try run(server + " prefer-client-ciphers") { port in
            XCTAssertTrue(try handshakes(port, client, output: &text))
            XCTAssertTrue(text.contains("Ciphersuite: ECDHE-ECDSA-AES128-GCM-SHA256"), "the client's order: \(text)")
        }
    }

    func testSigalgsBoundWhatTheServerSignsWith() throws {
        try run("sigalgs RSA-PSS+SHA256") { port in
            XCTAssertFalse(try handshakes(port, "-servername localhost"), "an ECDSA key cannot sign with RSA-PSS")
        }
        try run("sigalgs ECDSA+SHA256") { port in
            XCTAssertTrue(try handshakes(port, "-servername localhost"))
        }
    }

    /// Python's ssl over TLS 1.2 (where a ticket is visible as such): a NewSessionTicket or not,
    /// and whether the next connection resumes.
    func testNoTLSTicketsSendsNoTicketAndWithoutTheCacheNothingResumes() throws {
        guard (try? ChildProcess("/usr/bin/env", ["python3", "-c", "import ssl"]).finish(within: 10).0) == 0 else {
            throw XCTSkipError("python3 with ssl is needed")
        }
        func session(_ port: UInt16) throws -> String {
            let script = """
                import socket, ssl
                ctx = ssl.create_default_context(cafile="\(ca)")
                ctx.maximum_version = ssl.TLSVersion.TLSv1_2
                s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", \(port))), server_hostname="localhost")
                s.sendall(b"x"); s.recv(1)
                session = s.session
                print("TICKET" if session.has_ticket else "NOTICKET")
                s.close()
                s2 = ctx.wrap_socket(socket.create_connection(("127.0.0.1", \(port))), server_hostname="localhost", session=session)
                s2.sendall(b"x"); s2.recv(1)
                print("REUSED" if s2.session_reused else "FULL")
                s2.close()
                """
            let output = try ChildProcess("/usr/bin/env", ["python3", "-c", script]).finish(within: 30).1
            return output.split(separator: "\n").joined(separator: " ")
        }
        try run("") { port in
            let output = try session(port)
            XCTAssertTrue(output == "TICKET REUSED", output)
        }
        try run("no-tls-tickets") { port in
            let output = try session(port)
            XCTAssertTrue(output == "NOTICKET REUSED", "no ticket; the session cache still resumes: \(output)")
        }
        try run(global: ["tune.ssl.cachesize 0"], "no-tls-tickets") { port in
            let output = try session(port)
            XCTAssertTrue(output == "NOTICKET FULL", "neither ticket nor cache: \(output)")
        }
        try run(global: ["ssl-default-bind-options no-tls-tickets", "tune.ssl.cachesize 0"], "tls-tickets") { port in
            let output = try session(port)
            XCTAssertTrue(output == "TICKET REUSED", "the bind's tls-tickets over the global no-tls-tickets: \(output)")
        }
    }
}
