// Mutual TLS as `bind ... ssl ca-file ca.pem crt server.pem verify required [crl-file crl.pem]`
// sets it up: a certificate from the CA is accepted and its subject is there for the log (as
// HAProxy's ssl_c_s_dn); one from another CA, an expired one, a revoked one and none at all are
// refused with the reason an operator would look for.
import CTLS
import XCTest
@testable import RingProxy

final class TLSClientCertificateTests: XCTestCase {
    private func context(_ verify: TLSVerify, crl: Bool = true) throws -> TLSContext {
        var config = TLSBindConfig.testServer()
        config.caFile = TLSTestCertificates.path("ca.pem")
        config.crlFile = crl ? TLSTestCertificates.path("crl.pem") : nil
        config.verify = verify
        return try TLSContext(config)
    }

    private func client(_ file: String?, maxVersion: Int32 = 0) -> TLSTestClient {
        TLSTestClient(certificateFile: file.map(TLSTestCertificates.path), maxVersion: maxVersion)
    }

    func testACertificateFromTheCAIsAcceptedAndItsSubjectLogged() throws {
        let context = try context(.required)
        for version in [TLSTestClient.tls13, TLSTestClient.tls12] {
            let pair = TLSLoopback(context: context, client: client("client.pem", maxVersion: version))
            XCTAssertEqual(pair.handshake(), .ok, pair.serverError ?? "")
            XCTAssertTrue(pair.server.clientCertificatePresented)
            XCTAssertEqual(pair.server.clientSubject, "/C=FR/O=Ringproxy Tests/CN=device-1")
            XCTAssertEqual(pair.server.clientCommonName, "device-1")
            XCTAssertEqual(pair.server.verifyResult, 0)
            pair.clientWrite(Array("mutual".utf8))
            XCTAssertEqual(pair.serverReadInPlace().plain, Array("mutual".utf8))
        }
    }

    func testCertificatesThatMustNotPassAreRefusedWithTheReason() throws {
        let context = try context(.required)
        let cases: [(String?, String)] = [
            ("rogue-client.pem", "certificate verify failed: self-signed certificate in certificate chain"),
            ("expired-client.pem", "certificate verify failed: certificate has expired"),
            ("revoked-client.pem", "certificate verify failed: certificate revoked"),
            (nil, "peer did not return a certificate"),
        ]
        for version in [TLSTestClient.tls13, TLSTestClient.tls12] {
            for (file, reason) in cases {
                let pair = TLSLoopback(context: context, client: client(file, maxVersion: version))
                XCTAssertEqual(pair.handshake(), .error, file ?? "no certificate")
                XCTAssertEqual(pair.serverError, reason, "\(file ?? "no certificate") TLS \(version)")
                XCTAssertTrue(pair.clientFailed, "an alert tells the client why")
            }
        }
    }

    func testTheRevokedCertificatePassesWithoutTheCRL() throws {
        let pair = TLSLoopback(context: try context(.required, crl: false), client: client("revoked-client.pem"))
        XCTAssertEqual(pair.handshake(), .ok, pair.serverError ?? "")
    }

    func testVerifyOptionalAcceptsNoCertificateButChecksOneThatComes() throws {
        let context = try context(.optional)
        let anonymous = TLSLoopback(context: context, client: client(nil))
        XCTAssertEqual(anonymous.handshake(), .ok, anonymous.serverError ?? "")
        XCTAssertFalse(anonymous.server.clientCertificatePresented)
        XCTAssertNil(anonymous.server.clientSubject)
        let expired = TLSLoopback(context: context, client: client("expired-client.pem"))
        XCTAssertEqual(expired.handshake(), .error)
        XCTAssertEqual(expired.serverError, "certificate verify failed: certificate has expired")
        let good = TLSLoopback(context: context, client: client("client.pem"))
        XCTAssertEqual(good.handshake(), .ok)
        XCTAssertEqual(good.server.clientCommonName, "device-1")
    }

    func testVerifyNoneDoesNotAskForACertificate() throws {
        let pair = TLSLoopback(context: try context(.none), client: client("client.pem"))
        XCTAssertEqual(pair.handshake(), .ok)
        XCTAssertFalse(pair.server.clientCertificatePresented)
    }
}
