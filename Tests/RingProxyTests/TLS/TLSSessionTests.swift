// The userspace record path against a standard OpenSSL client: every version and cipher
// ringproxy offers, data both ways (decrypted in place into the buffer it arrived in), an output
// buffer too small for a record, input a byte at a time, resumption with a ticket, ALPN, the
// protocol floor, and the things that are not TLS at all refused with OpenSSL's reason.
import CTLS
import XCTest
@testable import RingProxy

final class TLSSessionTests: XCTestCase {
    static let suites: [(String, TLSTestClient)] = [
        ("TLSv1.3 AES-128-GCM", TLSTestClient(minVersion: TLSTestClient.tls13, maxVersion: TLSTestClient.tls13, ciphersuites: "TLS_AES_128_GCM_SHA256")),
        ("TLSv1.3 AES-256-GCM", TLSTestClient(minVersion: TLSTestClient.tls13, maxVersion: TLSTestClient.tls13, ciphersuites: "TLS_AES_256_GCM_SHA384")),
        ("TLSv1.3 ChaCha20", TLSTestClient(minVersion: TLSTestClient.tls13, maxVersion: TLSTestClient.tls13, ciphersuites: "TLS_CHACHA20_POLY1305_SHA256")),
        ("TLSv1.2 AES-128-GCM", TLSTestClient(maxVersion: TLSTestClient.tls12, ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256")),
        ("TLSv1.2 AES-256-GCM", TLSTestClient(maxVersion: TLSTestClient.tls12, ciphers: "ECDHE-ECDSA-AES256-GCM-SHA384")),
        ("TLSv1.2 ChaCha20", TLSTestClient(maxVersion: TLSTestClient.tls12, ciphers: "ECDHE-ECDSA-CHACHA20-POLY1305")),
    ]
    static let expectedCiphers = [
        "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305",
    ]

    func testEveryVersionAndCipherCarriesDataBothWaysDecryptedInPlace() throws {
        let context = try TLSContext(.testServer())
        for (index, (name, client)) in Self.suites.enumerated() {
            let pair = TLSLoopback(context: context, client: client)
            XCTAssertEqual(pair.handshake(), .ok, "\(name): \(pair.serverError ?? "")")
            XCTAssertEqual(pair.server.version, name.hasPrefix("TLSv1.3") ? "TLSv1.3" : "TLSv1.2", name)
            XCTAssertEqual(pair.server.cipher, Self.expectedCiphers[index], name)
            XCTAssertEqual(pair.server.serverName, "localhost", name)

            // Three MQTT-sized messages in one received buffer, decrypted onto themselves.
            let messages = (0..<3).map { i in [UInt8]("PUBLISH sensors/\(i) \(name)".utf8) }
            for m in messages { pair.clientWrite(m) }
            let (plain, result) = pair.serverReadInPlace()
            XCTAssertEqual(result, .wantRead, name)
            XCTAssertEqual(plain, messages.flatMap { $0 }, name)

            let answer = [UInt8](repeating: 0x5A, count: 40_000)   // three records
            pair.serverWrite(answer)
            XCTAssertEqual(pair.clientRead(), answer, name)
        }
    }

    func testAFullOutputBufferAsksToWriteAndResumesWhereItStopped() throws {
        let context = try TLSContext(.testServer())
        let pair = TLSLoopback(context: context)
        pair.outputCapacity = 100   // less than a certificate, less than a record
        XCTAssertEqual(pair.handshake(), .ok, pair.serverError ?? "")
        XCTAssertGreaterThan(pair.wantWrites, 0, "the handshake's flight did not fit in 100 bytes")
        let wantWritesAfterHandshake = pair.wantWrites
        let payload = (0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        pair.serverWrite(payload)
        XCTAssertGreaterThan(pair.wantWrites, wantWritesAfterHandshake + 100)
        XCTAssertEqual(pair.clientRead(), payload)
    }

    func testInputOneByteAtATimeCompletesTheHandshakeAndTheRecords() throws {
        let context = try TLSContext(.testServer())
        for (name, client) in [Self.suites[0], Self.suites[3]] {
            let pair = TLSLoopback(context: context, client: client)
            pair.inputChunkBytes = 1
            XCTAssertEqual(pair.handshake(), .ok, "\(name): \(pair.serverError ?? "")")
            let message = [UInt8]("CONNECT one byte at a time".utf8)
            pair.clientWrite(message)
            let (plain, result) = pair.serverRead()
            XCTAssertEqual(result, .wantRead, name)
            XCTAssertEqual(plain, message, name)
        }
    }

    func testATicketResumesTheSessionWithoutAFullHandshake() throws {
        let context = try TLSContext(.testServer())
        for (name, client) in [Self.suites[0], Self.suites[3]] {
            let first = TLSLoopback(context: context, client: client)
            XCTAssertEqual(first.handshake(), .ok, name)
            XCTAssertFalse(first.server.isResumed, name)
            let session = try XCTUnwrap(ctls_test_client_session(first.client), name)
            defer { ctls_test_session_free(session) }

            let second = TLSLoopback(context: context, client: client, resuming: session)
            XCTAssertEqual(second.handshake(), .ok, "\(name): \(second.serverError ?? "")")
            XCTAssertTrue(second.server.isResumed, name)
            second.clientWrite(Array("after resumption".utf8))
            XCTAssertEqual(second.serverReadInPlace().plain, Array("after resumption".utf8), name)
        }
    }

    func testATicketFromAnotherContextIsAFullHandshake() throws {
        // A reload builds a new context: its ticket keys are new, old tickets are not honoured.
        let first = TLSLoopback(context: try TLSContext(.testServer()))
        XCTAssertEqual(first.handshake(), .ok)
        let session = try XCTUnwrap(ctls_test_client_session(first.client))
        defer { ctls_test_session_free(session) }
        let second = TLSLoopback(context: try TLSContext(.testServer()), resuming: session)
        XCTAssertEqual(second.handshake(), .ok)
        XCTAssertFalse(second.server.isResumed)
    }

    func testAKeyUpdateFromTheClientIsFollowedInUserspace() throws {
        let pair = TLSLoopback(context: try TLSContext(.testServer()))
        XCTAssertEqual(pair.handshake(), .ok)
        XCTAssertEqual(ctls_test_client_key_update(pair.client), 1)
        pair.clientWrite(Array("under the new key".utf8))
        XCTAssertEqual(pair.serverReadInPlace().plain, Array("under the new key".utf8))
        pair.serverWrite(Array("answer under new keys".utf8))   // carries the server's KeyUpdate
        XCTAssertEqual(pair.clientRead(), Array("answer under new keys".utf8))
    }

    func testCloseNotifyBothWays() throws {
        let pair = TLSLoopback(context: try TLSContext(.testServer()))
        XCTAssertEqual(pair.handshake(), .ok)
        XCTAssertEqual(SSL_shutdown(pair.client), 0)
        pair.drainClient()
        XCTAssertEqual(pair.serverReadInPlace().result, .closed)
        TLSRecordIO.setOutput(pair.io, pair.outbound, capacity: 1024)
        XCTAssertEqual(pair.server.shutdown(), .ok)
        XCTAssertGreaterThan(pair.io.pointee.out_len, 0, "no close_notify written")
    }

    func testALPNChoosesByTheServersPreference() throws {
        var config = TLSBindConfig.testServer()
        config.alpn = ["mqtt", "x-amzn-mqtt-ca"]
        let context = try TLSContext(config)
        let both = TLSLoopback(context: context, client: TLSTestClient(alpn: "x-amzn-mqtt-ca,mqtt"))
        XCTAssertEqual(both.handshake(), .ok)
        XCTAssertEqual(both.server.alpn, "mqtt")
        let other = TLSLoopback(context: context, client: TLSTestClient(alpn: "x-amzn-mqtt-ca"))
        XCTAssertEqual(other.handshake(), .ok)
        XCTAssertEqual(other.server.alpn, "x-amzn-mqtt-ca")
        let none = TLSLoopback(context: context, client: TLSTestClient(alpn: "http/1.1"))
        XCTAssertEqual(none.handshake(), .ok, "no common protocol is no ALPN, not a failure")
        XCTAssertNil(none.server.alpn)
    }

    func testAVersionBelowTheFloorIsRefused() throws {
        var config = TLSBindConfig.testServer()
        config.minVersion = .tls13
        let context = try TLSContext(config)
        let old = TLSLoopback(context: context, client: TLSTestClient(maxVersion: TLSTestClient.tls12))
        XCTAssertEqual(old.handshake(), .error)
        XCTAssertEqual(old.serverError, "unsupported protocol")
        let current = TLSLoopback(context: context)
        XCTAssertEqual(current.handshake(), .ok)
    }

    func testTheCeilingHoldsTooAndCiphersAreTheConfigured() throws {
        var config = TLSBindConfig.testServer()
        config.maxVersion = .tls12
        config.ciphers = "ECDHE-ECDSA-CHACHA20-POLY1305"
        let pair = TLSLoopback(context: try TLSContext(config))
        XCTAssertEqual(pair.handshake(), .ok, pair.serverError ?? "")
        XCTAssertEqual(pair.server.version, "TLSv1.2")
        XCTAssertEqual(pair.server.cipher, "ECDHE-ECDSA-CHACHA20-POLY1305")

        var suites = TLSBindConfig.testServer()
        suites.ciphersuites = "TLS_AES_256_GCM_SHA384"
        let strict = TLSLoopback(context: try TLSContext(suites),
                                 client: TLSTestClient(ciphersuites: "TLS_AES_128_GCM_SHA256"))
        XCTAssertEqual(strict.handshake(), .error)
        XCTAssertEqual(strict.serverError, "no shared cipher")
    }

    func testBytesThatAreNotAClientHelloAreRefusedWithAReason() throws {
        let context = try TLSContext(.testServer())
        var random = SystemRandomNumberGenerator()
        let mqttConnect: [UInt8] = [0x10, 0x10, 0x00, 0x04, 0x4D, 0x51, 0x54, 0x54, 0x04, 0x02,
                                    0x00, 0x3C, 0x00, 0x04, 0x64, 0x65, 0x76, 0x31]
        let cases: [(String, [UInt8], String)] = [
            ("HTTP request", Array("GET / HTTP/1.1\r\nHost: broker\r\n\r\n".utf8), "http request"),
            ("MQTT CONNECT", mqttConnect, "wrong version number"),
            ("random bytes", [0x16, 0x03, 0x01, 0xFF, 0xFF] + (0..<64).map { _ in random.next() }, "packet length too long"),
            ("TLS 1.0 record of garbage", [0x16, 0x03, 0x01, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8], "excessive message size"),
        ]
        for (name, bytes, reason) in cases {
            let pair = TLSLoopback(context: context)
            pair.toServer = bytes
            XCTAssertEqual(pair.serverCall { $0.handshake() }, .error, name)
            XCTAssertEqual(pair.serverError, reason, name)
        }
    }

    func testAClientThatStopsMidHandshakeJustWants() throws {
        let pair = TLSLoopback(context: try TLSContext(.testServer()))
        pair.drainClient()
        pair.toServer.removeLast(pair.toServer.count / 2)   // half a ClientHello
        XCTAssertEqual(pair.serverCall { $0.handshake() }, .wantRead)
        pair.io.pointee.in_eof = 1
        XCTAssertEqual(pair.serverCall { $0.handshake() }, .error)
        XCTAssertEqual(pair.serverError, "unexpected eof while reading")
    }
}
