// The kTLS hand-off, proven the way this machine allows (its kernel has no CONFIG_TLS): the key,
// IV/salt and record sequence ringproxy would give setsockopt(SOL_TLS, TLS_TX/TLS_RX) decrypt,
// with EVP and nothing of the connection's own state, the next real record OpenSSL wrote (TX)
// or the client sent (RX), for TLS 1.2 and 1.3 and each of the kernel's three ciphers, after
// NewSessionTickets and after records already handled in userspace.
import CTLS
import Foundation
import XCTest
@testable import RingProxy

final class TLSKernelOffloadTests: XCTestCase {
    private func context(tickets: Bool = true) throws -> TLSContext {
        var config = TLSBindConfig.testServer()
        config.keepsTrafficSecrets = true
        config.tickets = tickets
        return try TLSContext(config)
    }

    private func info(_ pair: TLSLoopback, _ direction: TLSKernelOffload.Direction,
                      file: StaticString = #filePath, line: UInt = #line) throws -> TLSKernelOffload.CryptoInfo {
        switch TLSKernelOffload.cryptoInfo(pair.server, direction) {
        case .success(let info): return info
        case .failure(let error):
            XCTFail("no crypto info: \(error)", file: file, line: line)
            throw error
        }
    }

    /// Opens the first record of `records` as the kernel would with `info`: RFC 8446 §5.2-5.3 for
    /// TLS 1.3 (nonce = IV xor sequence, AAD = record header, inner content type last), RFC 5288
    /// §3 for TLS 1.2 AES-GCM (nonce = salt || explicit nonce), RFC 7905 §2 for TLS 1.2
    /// ChaCha20-Poly1305 (nonce = IV xor sequence); TLS 1.2 AAD = seq || type || version || length.
    /// Returns (content type, plaintext), nil when authentication fails.
    private func open(_ records: [UInt8], with info: TLSKernelOffload.CryptoInfo,
                      expectExplicitNonce: Bool = false) -> (UInt8, [UInt8])? {
        guard records.count >= 5 else { return nil }
        let length = Int(records[3]) << 8 | Int(records[4])
        guard records.count >= 5 + length else { return nil }
        let header = Array(records[0..<5])
        let body = Array(records[5..<5 + length])
        let nid: Int32
        switch Int32(info.cipherType) {
        case TLS_CIPHER_AES_GCM_128: nid = CTLS_NID_AES_128_GCM
        case TLS_CIPHER_AES_GCM_256: nid = CTLS_NID_AES_256_GCM
        default: nid = CTLS_NID_CHACHA20_POLY1305
        }
        let sequence = (0..<8).map { UInt8(truncatingIfNeeded: info.recordSequence >> (56 - 8 * UInt64($0))) }
        let gcm = nid != CTLS_NID_CHACHA20_POLY1305
        let tls13 = info.tlsVersion == CTLS_KTLS_TLS_1_3
        var nonce: [UInt8]
        var aad: [UInt8]
        var ciphertext = body
        if tls13 || !gcm {
            nonce = gcm ? info.salt + info.iv : info.iv
            for i in 0..<8 { nonce[4 + i] ^= sequence[i] }
        } else {
            let explicit = Array(body[0..<8])
            if expectExplicitNonce { XCTAssertEqual(explicit, info.iv, "the kernel would continue OpenSSL's nonces") }
            nonce = info.salt + explicit
            ciphertext = Array(body[8...])
        }
        if tls13 {
            aad = header
        } else {
            let plainLength = ciphertext.count - 16
            aad = sequence + [header[0], header[1], header[2], UInt8(plainLength >> 8), UInt8(plainLength & 0xFF)]
        }
        var plain = [UInt8](repeating: 0, count: ciphertext.count)
        let n = ctls_test_aead_open(nid, info.key, nonce, aad, aad.count, ciphertext, ciphertext.count, &plain)
        guard n >= 0 else { return nil }
        plain.removeLast(plain.count - n)
        if tls13 {   // TLSInnerPlaintext: content, type, zero padding
            while plain.last == 0 { plain.removeLast() }
            let type = plain.removeLast()
            return (type, plain)
        }
        return (header[0], plain)
    }

    func testTheHandedOffKeysDecryptTheNextRecordInEachDirection() throws {
        let context = try context()
        for (index, (name, client)) in TLSSessionTests.suites.enumerated() {
            let pair = TLSLoopback(context: context, client: client)
            XCTAssertEqual(pair.handshake(), .ok, name)
            let tls13 = name.hasPrefix("TLSv1.3")
            let tx = try info(pair, .transmit)
            let rx = try info(pair, .receive)
            XCTAssertEqual(Int32(tx.cipherType), [TLS_CIPHER_AES_GCM_128, TLS_CIPHER_AES_GCM_256, TLS_CIPHER_CHACHA20_POLY1305][index % 3], name)
            XCTAssertEqual(tx.tlsVersion, tls13 ? CTLS_KTLS_TLS_1_3 : CTLS_KTLS_TLS_1_2, name)
            XCTAssertEqual(tx.length, index % 3 == 0 ? 40 : 56, name)
            // TLS 1.3: the server's two NewSessionTickets went first under the application keys.
            // TLS 1.2: its Finished was record 0 after ChangeCipherSpec (the ticket came before).
            XCTAssertEqual(tx.recordSequence, tls13 ? 2 : 1, name)
            XCTAssertEqual(rx.recordSequence, tls13 ? 0 : 1, name)

            let fromServer = Array("server to client \(name)".utf8)
            let opened = open(pair.serverWrite(fromServer), with: tx, expectExplicitNonce: true)
            XCTAssertEqual(opened?.0, 23, name)
            XCTAssertEqual(opened?.1, fromServer, name)
            XCTAssertEqual(pair.clientRead(), fromServer, name)

            let fromClient = Array("client to server \(name)".utf8)
            let record = pair.clientWrite(fromClient)
            XCTAssertEqual(open(record, with: rx)?.1, fromClient, name)
            XCTAssertEqual(pair.serverReadInPlace().plain, fromClient, "\(name): userspace agrees")
        }
    }

    func testTheSequenceCountsRecordsAlreadyHandledInUserspace() throws {
        let context = try context()
        for (name, client) in TLSSessionTests.suites {
            let pair = TLSLoopback(context: context, client: client)
            XCTAssertEqual(pair.handshake(), .ok, name)
            let tls13 = name.hasPrefix("TLSv1.3")
            // Three records out before the switch (one of 20,000 bytes is two records).
            pair.serverWrite(Array("first".utf8))
            pair.serverWrite([UInt8](repeating: 1, count: 20_000))
            XCTAssertEqual(pair.clientRead().count, 20_005, name)
            // Two client records already received and decrypted in userspace.
            pair.clientWrite(Array("one".utf8))
            pair.clientWrite(Array("two".utf8))
            XCTAssertEqual(pair.serverReadInPlace().plain, Array("onetwo".utf8), name)

            let tx = try info(pair, .transmit)
            let rx = try info(pair, .receive)
            XCTAssertEqual(tx.recordSequence, (tls13 ? 2 : 1) + 3, name)
            XCTAssertEqual(rx.recordSequence, (tls13 ? 0 : 1) + 2, name)
            let next = Array("the kernel's first record".utf8)
            XCTAssertEqual(open(pair.serverWrite(next), with: tx, expectExplicitNonce: true)?.1, next, name)
            XCTAssertEqual(open(pair.clientWrite(next), with: rx)?.1, next, name)
        }
    }

    func testWithoutTicketsTheSequenceStartsAfterTheHandshakeAlone() throws {
        let pair = TLSLoopback(context: try context(tickets: false),
                               client: TLSSessionTests.suites[3].1)   // TLS 1.2: no ticket at all
        XCTAssertEqual(pair.handshake(), .ok)
        let tx = try info(pair, .transmit)
        XCTAssertEqual(tx.recordSequence, 1)
        let data = Array("no ticket".utf8)
        XCTAssertEqual(open(pair.serverWrite(data), with: tx, expectExplicitNonce: true)?.1, data)
    }

    func testAKeyUpdateStopsTheHandOffForTheDirectionsItChanged() throws {
        let pair = TLSLoopback(context: try context())
        XCTAssertEqual(pair.handshake(), .ok)
        XCTAssertEqual(ctls_test_client_key_update(pair.client), 1)
        pair.clientWrite(Array("x".utf8))
        XCTAssertEqual(pair.serverReadInPlace().plain, Array("x".utf8))
        guard case .failure(let rx) = TLSKernelOffload.cryptoInfo(pair.server, .receive) else {
            return XCTFail("RX hand-off after a KeyUpdate")
        }
        XCTAssertEqual(rx.message, "a KeyUpdate changed the RX keys")
        pair.serverWrite(Array("y".utf8))   // the server answers the requested update
        guard case .failure(let tx) = TLSKernelOffload.cryptoInfo(pair.server, .transmit) else {
            return XCTFail("TX hand-off after a KeyUpdate")
        }
        XCTAssertEqual(tx.message, "a KeyUpdate changed the TX keys")
    }

    func testNoHandOffInTheMiddleOfARecord() throws {
        let pair = TLSLoopback(context: try context())
        XCTAssertEqual(pair.handshake(), .ok)
        let record = pair.clientWrite(Array("split across two receives".utf8))
        pair.toServer = Array(record.prefix(10))
        XCTAssertEqual(pair.serverRead().result, .wantRead)
        guard case .failure(let error) = TLSKernelOffload.cryptoInfo(pair.server, .receive) else {
            return XCTFail("RX hand-off with half a record read")
        }
        XCTAssertEqual(error.message, "RX is in the middle of a record")
        pair.toServer = Array(record.dropFirst(10))
        XCTAssertEqual(pair.serverRead().plain, Array("split across two receives".utf8))
        XCTAssertEqual(try info(pair, .receive).recordSequence, 1)

        pair.outputCapacity = 7   // the record is sealed, 7 bytes of it in `out`
        TLSRecordIO.clearInput(pair.io)
        TLSRecordIO.setOutput(pair.io, pair.outbound, capacity: 7)
        var written = 0
        let data = Array("waiting".utf8)
        XCTAssertEqual(data.withUnsafeBytes { pair.server.write(from: $0.baseAddress!, count: $0.count, written: &written) }, .wantWrite)
        guard case .failure(let tx) = TLSKernelOffload.cryptoInfo(pair.server, .transmit) else {
            return XCTFail("TX hand-off with a record half written")
        }
        XCTAssertEqual(tx.message, "TX is in the middle of a record")
    }

    func testTLS13WithoutKeptSecretsSaysSo() throws {
        let pair = TLSLoopback(context: try TLSContext(.testServer()))
        XCTAssertEqual(pair.handshake(), .ok)
        guard case .failure(let error) = TLSKernelOffload.cryptoInfo(pair.server, .transmit) else {
            return XCTFail("crypto info without secrets")
        }
        XCTAssertEqual(error.message, "no TLS 1.3 traffic secret kept (keep_traffic_secrets off)")
    }

    func testTheProbeSaysThisKernelHasNoKernelTLS() throws {
        // /proc/net/tls_stat exists exactly when the kernel has CONFIG_TLS (built in or loaded).
        if FileManager.default.fileExists(atPath: "/proc/net/tls_stat") {
            throw XCTSkip("this kernel has kTLS")
        }
        let probe = TLSKernelOffload.probe
        XCTAssertFalse(probe.supported)
        XCTAssertEqual(probe.reason, "setsockopt(TCP_ULP, \"tls\"): No such file or directory (kernel without CONFIG_TLS)")
        XCTAssertEqual(TLSKernelOffload.probe.reason, probe.reason, "probed once, same answer")
    }
}
