// Building contexts from what operators write: HAProxy `crt` files (certificate, chain, key in
// one PEM) and directories, SNI among several certificates by CN/SAN with one-label wildcards,
// and the errors and warnings an operator reads when a file is wrong.
import CTLS
import XCTest
@testable import RingProxy

final class TLSContextTests: XCTestCase {
    private func error(_ config: TLSBindConfig) -> String? {
        do {
            _ = try TLSContext(config)
            return nil
        } catch {
            return error.message
        }
    }

    func testFileErrorsNameTheFileAndTheReason() {
        XCTAssertEqual(error(.testServer(["server-nokey.pem"])), "server-nokey.pem: no private key")
        XCTAssertEqual(error(.testServer(["server-wrongkey.pem"])), "server-wrongkey.pem: key does not match certificate")
        XCTAssertEqual(error(.testServer(["ca.key"])), "ca.key: no certificate")
        XCTAssertEqual(error(.testServer(["missing.pem"])), TLSTestCertificates.path("missing.pem") + ": No such file or directory")
        var badCA = TLSBindConfig.testServer()
        badCA.caFile = TLSTestCertificates.path("ca.key")
        badCA.verify = .required
        XCTAssertEqual(error(badCA)?.hasPrefix("ca.key: "), true, error(badCA) ?? "")
        var noCA = TLSBindConfig.testServer()
        noCA.verify = .required
        XCTAssertEqual(error(noCA), "verify: needs a ca-file")
        var badCRL = TLSBindConfig.testServer()
        badCRL.crlFile = TLSTestCertificates.path("server.pem")
        XCTAssertEqual(error(badCRL)?.hasPrefix("server.pem: "), true, error(badCRL) ?? "")
    }

    func testSettingsErrorsNameTheKeyword() {
        var ciphers = TLSBindConfig.testServer()
        ciphers.ciphers = "NOT-A-CIPHER"
        XCTAssertEqual(error(ciphers), "ciphers: no cipher match")
        var suites = TLSBindConfig.testServer()
        suites.ciphersuites = "TLS_NOT_A_SUITE"
        XCTAssertEqual(error(suites), "ciphersuites: no cipher match")
        var curves = TLSBindConfig.testServer()
        curves.curves = "P-999"
        XCTAssertEqual(error(curves)?.hasPrefix("curves: "), true, error(curves) ?? "")
    }

    func testAnExpiredCertificateIsAWarningNotAnError() throws {
        let context = try TLSContext(.testServer(["expired-server.pem"]))
        XCTAssertEqual(context.warnings, ["expired-server.pem: certificate has expired"])
        XCTAssertEqual(try TLSContext(.testServer()).warnings, [])
    }

    func testSNIPicksTheCertificateByNameElseTheFirst() throws {
        let context = try TLSContext(.testServer(["server.pem", "second.pem"]))
        let cases: [(String?, String)] = [
            ("localhost", "/CN=localhost"),
            ("broker.example.com", "/CN=broker.example.com"),       // CN and SAN
            ("eu.mqtt.example.com", "/CN=broker.example.com"),      // *.mqtt.example.com
            ("a.eu.mqtt.example.com", "/CN=localhost"),             // a wildcard is one label
            ("unknown.example.org", "/CN=localhost"),
            (nil, "/CN=localhost"),
        ]
        for (name, subject) in cases {
            let pair = TLSLoopback(context: context, client: TLSTestClient(caFile: nil, serverName: name))
            XCTAssertEqual(pair.handshake(), .ok, "\(name ?? "no SNI"): \(pair.serverError ?? "")")
            XCTAssertEqual(pair.serverCertificateSubject, subject, name ?? "no SNI")
            XCTAssertEqual(pair.server.serverName, name)
        }
    }

    func testACertificateDirectoryLoadsEveryPEMInNameOrder() throws {
        let context = try TLSContext(.testServer(["crt-dir"]))
        let pair = TLSLoopback(context: context, client: TLSTestClient(serverName: "broker.example.com"))
        XCTAssertEqual(pair.handshake(), .ok, pair.serverError ?? "")
        XCTAssertEqual(pair.serverCertificateSubject, "/CN=broker.example.com")
        let fallback = TLSLoopback(context: context, client: TLSTestClient(serverName: "other"))
        XCTAssertEqual(fallback.handshake(), .ok)
        XCTAssertEqual(fallback.serverCertificateSubject, "/CN=localhost")
    }

    func testHAProxyVersionNames() {
        XCTAssertEqual(TLSProtocolVersion(rawValue: "TLSv1.2"), .tls12)
        XCTAssertEqual(TLSProtocolVersion(rawValue: "TLSv1.3")?.wireValue, 0x0304)
        XCTAssertNil(TLSProtocolVersion(rawValue: "SSLv3"))
    }
}
