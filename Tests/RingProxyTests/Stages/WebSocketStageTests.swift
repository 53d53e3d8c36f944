// The WebSocket front stage, byte for byte against RFC 6455: upgrade requests as browsers and
// paho-mqtt send them are accepted and only their head consumed, every other request is refused
// for the reason (and HTTP status) that applies as soon as a prefix shows it; the 101 carries
// the RFC's accept value; client frames, split anywhere and fragmented around pings, unmask into
// a CONNECT that MQTTPeek accepts; and none of it allocates.
import CUring
import Foundation
import MQTTPeek
import XCTest
@testable import RingProxy

final class WebSocketStageTests: XCTestCase {
    /// A verdict that tests can compare.
    enum Outcome: Equatable {
        case needMore
        case reject(WebSocketRejection)
        case complete(Int, WebSocketUpgradeRequest)

        var rejection: WebSocketRejection? { if case .reject(let r) = self { return r } else { return nil } }
    }

    private func parse(_ bytes: [UInt8], policy: WebSocketUpgradePolicy = WebSocketUpgradePolicy()) -> Outcome {
        bytes.withUnsafeBytes { raw in
            switch WebSocketUpgrade.parse(raw, policy: policy) {
            case .needMore: return .needMore
            case .reject(let r):
                XCTAssertEqual(r.stage, .webSocketUpgrade)
                return .reject(WebSocketRejection(rawValue: r.code)!)
            case .complete(let n, let request): return .complete(n, request)
            }
        }
    }

    private func parse(_ text: String, path: String? = nil, requiresMQTT: Bool = false) -> Outcome {
        let pathBytes = path.map { Array($0.utf8) } ?? []
        return pathBytes.withUnsafeBytes { p in
            parse(Array(text.utf8), policy: WebSocketUpgradePolicy(path: path == nil ? nil : p, requiresMQTTSubprotocol: requiresMQTT))
        }
    }

    /// Chrome's upgrade to wss://broker.example/mqtt from a page (MQTT.js offers "mqtt").
    private let browserRequest = """
        GET /mqtt HTTP/1.1\r
        Host: broker.example\r
        Connection: Upgrade\r
        Pragma: no-cache\r
        Cache-Control: no-cache\r
        User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r
        Upgrade: websocket\r
        Origin: https://app.example\r
        Sec-WebSocket-Version: 13\r
        Accept-Encoding: gzip, deflate, br, zstd\r
        Accept-Language: en-GB,en;q=0.9\r
        Cookie: session=abc; theme=dark\r
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r
        Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r
        Sec-WebSocket-Protocol: mqtt\r
        \r

        """

    /// What paho-mqtt 2.2.0's websocket transport sent (captured on loopback: `Client(transport=
    /// "websockets")`, `ws_set_options(path="/mqtt")`, client id "paho-ws-fixture"): its head,
    /// then its CONNECT in one masked binary frame.
    static let pahoHead = Array("""
        GET /mqtt HTTP/1.1\r
        Host: 127.0.0.1:39975\r
        Upgrade: websocket\r
        Connection: Upgrade\r
        Origin: http://127.0.0.1:39975\r
        Sec-WebSocket-Key: adDCCpIdR6OY8/Gvj+DBng==\r
        Sec-Websocket-Version: 13\r
        Sec-Websocket-Protocol: mqtt\r
        \r

        """.utf8)
    static let pahoFrame = hex("829da45ab050b441b054e90be404a058b06ca455c031cc359d27d777d639dc2ec522c1")

    static func hex(_ s: String) -> [UInt8] {
        let digits = Array(s.utf8)
        return stride(from: 0, to: digits.count - 1, by: 2).map { UInt8(String(decoding: digits[$0...$0 + 1], as: UTF8.self), radix: 16)! }
    }

    private func text(_ bytes: [UInt8], _ offset: Int, _ length: Int) -> String {
        String(decoding: bytes[offset..<offset + length], as: UTF8.self)
    }

    // MARK: Requests

    func testABrowsersUpgradeIsAcceptedAndOnlyItsHeadConsumed() {
        let head = Array(browserRequest.utf8)
        let bytes = head + [0x82, 0x80, 1, 2, 3, 4]
        guard case .complete(let consumed, let request) = parse(bytes) else { return XCTFail("\(parse(bytes))") }
        XCTAssertEqual(consumed, head.count)
        XCTAssertEqual(text(bytes, request.targetOffset, request.targetLength), "/mqtt")
        XCTAssertEqual(text(bytes, request.keyOffset, WebSocketUpgrade.keyLengthBytes), "dGhlIHNhbXBsZSBub25jZQ==")
        XCTAssertEqual(request.offered, .mqtt)
        XCTAssertEqual(request.subprotocol, .mqtt)
        XCTAssertTrue(request.offersExtensions)
    }

    func testPahoMQTTsWebSocketUpgradeAsCapturedIsAcceptedWhateverTheHeaderNamesCase() {
        let head = Self.pahoHead
        guard case .complete(let consumed, let request) = parse(head + Self.pahoFrame, policy: WebSocketUpgradePolicy(requiresMQTTSubprotocol: true))
        else { return XCTFail("\(parse(head))") }
        XCTAssertEqual(consumed, head.count)
        XCTAssertEqual(text(head, request.keyOffset, 24), "adDCCpIdR6OY8/Gvj+DBng==")
        XCTAssertEqual(request.subprotocol, .mqtt)
        XCTAssertFalse(request.offersExtensions)
    }

    func testSubprotocolsAreOptionalUnlessThePolicyRequiresMQTTAndAreComparedExactly() {
        let bare = request(dropping: "Sec-WebSocket-Protocol")
        guard case .complete(_, let plain) = parse(bare) else { return XCTFail() }
        XCTAssertEqual(plain.offered, [])
        XCTAssertEqual(plain.subprotocol, .none)
        XCTAssertEqual(parse(bare, requiresMQTT: true), .reject(.noMQTTSubprotocol))

        let v31 = request(replacing: "Sec-WebSocket-Protocol: mqtt", with: "Sec-WebSocket-Protocol: wamp, mqttv3.1")
        guard case .complete(_, let old) = parse(v31, requiresMQTT: true) else { return XCTFail() }
        XCTAssertEqual(old.subprotocol, .mqttv31)

        let both = request(replacing: "Sec-WebSocket-Protocol: mqtt", with: "Sec-WebSocket-Protocol: mqttv3.1\r\nSec-WebSocket-Protocol: mqtt")
        guard case .complete(_, let two) = parse(both) else { return XCTFail() }
        XCTAssertEqual(two.offered, [.mqtt, .mqttv31])
        XCTAssertEqual(two.subprotocol, .mqtt, "mqtt is preferred")

        let upper = request(replacing: "Sec-WebSocket-Protocol: mqtt", with: "Sec-WebSocket-Protocol: MQTT, mqtt-ish")
        XCTAssertEqual(parse(upper, requiresMQTT: true), .reject(.noMQTTSubprotocol), "a 101 must echo an offered name exactly")
    }

    func testTokenListsAndHeaderNamesAreCaseInsensitive() {
        let variant = request(replacing: "Connection: Upgrade", with: "CONNECTION: keep-alive ,  UPGRADE")
            .replacingOccurrences(of: "Upgrade: websocket", with: "upgrade: h2c, WebSocket")
        guard case .complete = parse(variant) else { return XCTFail("\(parse(variant))") }
    }

    func testThePathIsComparedExactlyWithTheQueryIgnored() {
        XCTAssertNotEqual(parse(browserRequest, path: "/mqtt").rejection, .pathNotFound)
        let query = request(replacing: "GET /mqtt HTTP/1.1", with: "GET /mqtt?token=x HTTP/1.1")
        guard case .complete(_, let r) = parse(query, path: "/mqtt") else { return XCTFail() }
        XCTAssertEqual(r.targetLength, "/mqtt?token=x".utf8.count)
        XCTAssertEqual(parse(browserRequest, path: "/mqtt/"), .reject(.pathNotFound))
        XCTAssertEqual(parse(browserRequest, path: "/MQTT"), .reject(.pathNotFound))
        XCTAssertEqual(parse(request(replacing: "GET /mqtt ", with: "GET /mqttx "), path: "/mqtt"), .reject(.pathNotFound))
        guard case .complete = parse(request(replacing: "GET /mqtt ", with: "GET /anything "), path: nil) else { return XCTFail() }
    }

    func testEachRefusalHasItsReasonAndStatus() {
        let cases: [(String, WebSocketRejection, Int)] = [
            (request(replacing: "GET /mqtt", with: "POST /mqtt"), .methodNotGET, 405),
            (request(replacing: "GET /mqtt", with: "get /mqtt"), .methodNotGET, 405),
            (request(replacing: "HTTP/1.1\r\nHost", with: "HTTP/1.0\r\nHost"), .httpVersionNotSupported, 505),
            (request(replacing: "HTTP/1.1\r\nHost", with: "HTTP/1.1x\r\nHost"), .malformed, 400),
            (request(replacing: "GET /mqtt ", with: "GET  /mqtt "), .malformed, 400),
            (request(replacing: "GET /mqtt ", with: "GET http://broker.example/mqtt "), .malformed, 400),
            (request(replacing: "Pragma: no-cache", with: "Pragma : no-cache"), .malformed, 400),
            (request(replacing: "Pragma: no-cache", with: "Pragma: no-cache\r\n  folded"), .malformed, 400),
            (request(replacing: "Pragma: no-cache\r", with: "Pragma: no-cache"), .malformed, 400),      // bare LF
            (request(replacing: "Pragma: no-cache", with: "Pragma: no\rcache"), .malformed, 400),      // bare CR
            (request(replacing: "Pragma: no-cache", with: "Pragma: no\u{0}cache"), .malformed, 400),
            (request(replacing: "Pragma: no-cache", with: "Pragma no-cache"), .malformed, 400),
            (request(dropping: "Host"), .badHost, 400),
            (request(replacing: "Host: broker.example", with: "Host: broker.example\r\nHost: other.example"), .badHost, 400),
            (request(replacing: "Host: broker.example", with: "Host: "), .badHost, 400),
            (request(dropping: "Upgrade"), .notWebSocketUpgrade, 400),
            (request(replacing: "Upgrade: websocket", with: "Upgrade: websockets"), .notWebSocketUpgrade, 400),
            (request(dropping: "Connection"), .connectionNotUpgrade, 400),
            (request(replacing: "Connection: Upgrade", with: "Connection: keep-alive"), .connectionNotUpgrade, 400),
            (request(dropping: "Sec-WebSocket-Version"), .unsupportedVersion, 426),
            (request(replacing: "Sec-WebSocket-Version: 13", with: "Sec-WebSocket-Version: 8"), .unsupportedVersion, 426),
            (request(dropping: "Sec-WebSocket-Key"), .badKey, 400),
            (request(replacing: "dGhlIHNhbXBsZSBub25jZQ==", with: "dGhlIHNhbXBsZSBub25jZQ"), .badKey, 400),
            (request(replacing: "dGhlIHNhbXBsZSBub25jZQ==", with: "dGhlIHNhbXBsZSBub25jZ*=="), .badKey, 400),
            (request(replacing: "dGhlIHNhbXBsZSBub25jZQ==", with: "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA=="), .badKey, 400),
            ("\r\nGET /mqtt HTTP/1.1\r\n\r\n", .malformed, 400),
            ("SSH-2.0-OpenSSH_9.6\r\n", .malformed, 400),
        ]
        for (text, reason, status) in cases {
            XCTAssertEqual(parse(text), .reject(reason), text)
            XCTAssertEqual(reason.httpStatus, status)
        }
        XCTAssertEqual(WebSocketRejection.noMQTTSubprotocol.httpStatus, 400)
        XCTAssertEqual(WebSocketRejection.pathNotFound.httpStatus, 404)
        // An MQTT client that skipped the upgrade: refused at once, not waited for.
        XCTAssertEqual(parse(MQTTWire.connect(clientID: "raw")), .reject(.malformed))
    }

    func testEveryPrefixOfAGoodRequestAsksForMore() {
        for head in [Array(browserRequest.utf8), Self.pahoHead] {
            for length in 0..<head.count {
                XCTAssertEqual(parse(Array(head[0..<length])), .needMore, "prefix \(length)")
            }
        }
    }

    func testTheHeadIsBoundedInSizeLinesAndLineLength() {
        let filler = String(repeating: "x", count: 200)
        var big = request(replacing: "Pragma: no-cache", with: (0..<40).map { "X-Filler-\($0): \(filler)" }.joined(separator: "\r\n"))
        XCTAssertGreaterThan(big.utf8.count, 8192)
        XCTAssertEqual(parse(big), .reject(.headerTooLarge))
        // Refused as soon as 8 KiB are held without the head's end: not a byte more is waited for.
        big = request(replacing: "Pragma: no-cache", with: "X-Big: " + String(repeating: "y", count: 4000) + "\r\nX-Big2: " + String(repeating: "y", count: 4000))
        XCTAssertEqual(parse(Array(big.utf8.prefix(8192))), .reject(.headerTooLarge))
        XCTAssertEqual(parse(Array(big.utf8.prefix(8191))), .needMore)
        let longLine = request(replacing: "Pragma: no-cache", with: "X-Long: " + String(repeating: "z", count: 4100))
        XCTAssertEqual(parse(longLine), .reject(.lineTooLong))
        let many = request(replacing: "Pragma: no-cache", with: (0..<60).map { "X-\($0): 1" }.joined(separator: "\r\n"))
        XCTAssertEqual(parse(many), .reject(.tooManyHeaderLines))
        let allowed = request(replacing: "Pragma: no-cache", with: (0..<50).map { "X-\($0): 1" }.joined(separator: "\r\n"))
        guard case .complete = parse(allowed) else { return XCTFail("64 field lines are allowed") }
    }

    // MARK: Answers

    func testSHA1MatchesRFC3174sTestVectors() {
        func sha1(_ bytes: [UInt8], repeated: Int = 1) -> String {
            var sha = SHA1()
            for _ in 0..<repeated { bytes.withUnsafeBytes { sha.update($0) } }
            var digest = [UInt8](repeating: 0, count: 20)
            digest.withUnsafeMutableBytes { sha.finish(into: $0.baseAddress!) }
            return digest.map { String(format: "%02X", $0) }.joined()
        }
        XCTAssertEqual(sha1(Array("abc".utf8)), "A9993E364706816ABA3E25717850C26C9CD0D89D")
        XCTAssertEqual(sha1(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)), "84983E441C3BD26EBAAE4AA1F95129E5E54670F1")
        XCTAssertEqual(sha1(Array("a".utf8), repeated: 1_000_000), "34AA973CD4C4DAA4F61EEB2BDBAD27316534016F")
        XCTAssertEqual(sha1(Array("01234567".utf8), repeated: 80), "DEA356A2CDDD90C7A7ECEDC5EBB563934F460452")
        XCTAssertEqual(sha1([]), "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709")
    }

    func testTheAcceptValueIsRFC6455sExample() {
        var out = [UInt8](repeating: 0, count: 28)
        Array("dGhlIHNhbXBsZSBub25jZQ==".utf8).withUnsafeBytes { key in
            out.withUnsafeMutableBytes { WebSocketUpgrade.acceptValue(key: key.baseAddress!, to: $0.baseAddress!) }
        }
        XCTAssertEqual(String(decoding: out, as: UTF8.self), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    private func write101(key: String, _ subprotocol: WebSocketSubprotocol) -> String {
        var out = [UInt8](repeating: 0xEE, count: WebSocketUpgrade.writtenMaxBytes)
        let n = Array(key.utf8).withUnsafeBytes { k in
            out.withUnsafeMutableBytes { WebSocketUpgrade.write101(key: k.baseAddress!, subprotocol: subprotocol, to: $0.baseAddress!, capacity: $0.count) }
        }
        return String(decoding: out[0..<n], as: UTF8.self)
    }

    func testThe101CarriesTheAcceptAndNamesTheOfferedSubprotocol() {
        XCTAssertEqual(write101(key: "dGhlIHNhbXBsZSBub25jZQ==", .mqtt), """
            HTTP/1.1 101 Switching Protocols\r
            Upgrade: websocket\r
            Connection: Upgrade\r
            Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r
            Sec-WebSocket-Protocol: mqtt\r
            \r

            """)
        XCTAssertFalse(write101(key: "dGhlIHNhbXBsZSBub25jZQ==", .none).contains("Sec-WebSocket-Protocol"))
        XCTAssertTrue(write101(key: "dGhlIHNhbXBsZSBub25jZQ==", .mqttv31).contains("Sec-WebSocket-Protocol: mqttv3.1\r\n\r\n"))
        // paho's key, checked against Python's hashlib/base64 when the fixture was captured.
        XCTAssertTrue(write101(key: "adDCCpIdR6OY8/Gvj+DBng==", .mqtt).contains("Sec-WebSocket-Accept: \(Self.pahoAccept)\r\n"))
    }
    static let pahoAccept = "BZuCk1rAC2vXpcgMGLl/qP1zfKk="

    func testErrorAnswersAreMinimalAndCloseTheConnection() {
        func answer(_ status: Int) -> String {
            var out = [UInt8](repeating: 0xEE, count: WebSocketUpgrade.writtenMaxBytes)
            let n = out.withUnsafeMutableBytes { WebSocketUpgrade.writeError(status: status, to: $0.baseAddress!, capacity: $0.count) }
            return String(decoding: out[0..<n], as: UTF8.self)
        }
        XCTAssertEqual(answer(400), "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        XCTAssertEqual(answer(426), "HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        XCTAssertEqual(answer(405), "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        for reason in WebSocketRejection.allCases {
            let text = answer(reason.httpStatus)
            XCTAssertTrue(text.hasPrefix("HTTP/1.1 \(reason.httpStatus) "), text)
            XCTAssertTrue(text.hasSuffix("Connection: close\r\nContent-Length: 0\r\n\r\n"))
        }
    }

    // MARK: Frames

    /// A client frame: masked with `key` unless nil, the length in the 7-, 16- or 64-bit form
    /// (`lengthForm` 0, 126, 127; 0: the shortest).
    static func frame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, key: [UInt8]? = [0x37, 0xFA, 0x21, 0x3D], lengthForm: Int = 0) -> [UInt8] {
        var out: [UInt8] = [(fin ? 0x80 : 0) | opcode]
        let mask: UInt8 = key == nil ? 0 : 0x80
        let form = lengthForm != 0 ? lengthForm : payload.count < 126 ? 0 : payload.count < 65536 ? 126 : 127
        switch form {
        case 126: out += [mask | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        case 127: out += [mask | 127] + (0..<8).reversed().map { UInt8((UInt64(payload.count) >> (8 * UInt64($0))) & 0xFF) }
        default: out += [mask | UInt8(payload.count)]
        }
        guard let key else { return out + payload }
        return out + key + payload.enumerated().map { $0.element ^ key[$0.offset & 3] }
    }

    /// What `read` gives with a fresh cursor at `start`, and the payload it unmasked.
    private func read(_ bytes: [UInt8], start: Int = 0, capacity: Int = 1 << 17) -> (WebSocketFrameVerdict, [UInt8]) {
        var cursor = WebSocketFrameCursor(start: start)
        return read(bytes, &cursor, capacity: capacity)
    }

    private func read(_ bytes: [UInt8], _ cursor: inout WebSocketFrameCursor, capacity: Int = 1 << 17) -> (WebSocketFrameVerdict, [UInt8]) {
        var out = [UInt8](repeating: 0, count: capacity)
        return read(bytes, &cursor, &out)
    }

    /// The same into `out`, kept by the caller across calls like the engine's buffer.
    private func read(_ bytes: [UInt8], _ cursor: inout WebSocketFrameCursor, _ out: inout [UInt8]) -> (WebSocketFrameVerdict, [UInt8]) {
        let capacity = out.count
        let verdict = bytes.withUnsafeBytes { b in
            out.withUnsafeMutableBytes { WebSocketFrames.read(b, cursor: &cursor, into: $0.baseAddress!, capacity: capacity) }
        }
        return (verdict, Array(out[0..<cursor.payloadLength]))
    }

    private let connect = MQTTWire.connect(clientID: "ws-client-1", level: 5, password: Array("secret".utf8), willPayload: [1, 2, 3])

    func testEachLengthFormIsReadAndTheFramesAfterTheMessageAreLeftAlone() {
        let later = Self.frame(0x2, MQTTWire.pingreq)
        for (payload, form) in [(connect, 0), (connect, 126), (connect, 127), ([UInt8](repeating: 7, count: 300), 0),
                                ([UInt8](repeating: 9, count: 70_000), 0), ([], 0)] {
            let message = Self.frame(0x2, payload, lengthForm: form)
            let (verdict, unmasked) = read(message + later)
            XCTAssertEqual(verdict, .payload(length: payload.count, framesEnd: message.count, complete: true))
            XCTAssertEqual(unmasked, payload)
        }
    }

    func testAConnectOverThreeFragmentsWithAPingBetweenIsReadWhole() {
        let parts = [Array(connect[0..<5]), Array(connect[5..<20]), Array(connect[20...])]
        let bytes = Array("HEAD".utf8) + Self.frame(0x2, parts[0], fin: false) + Self.frame(0x9, Array("ping".utf8))
            + Self.frame(0x0, parts[1], fin: false, key: [0, 0, 0, 0]) + Self.frame(0xA, []) + Self.frame(0x0, parts[2], key: [0xFF, 1, 0x80, 2])
        let (verdict, unmasked) = read(bytes + Self.frame(0x2, [0xE0, 0]), start: 4)
        XCTAssertEqual(verdict, .payload(length: connect.count, framesEnd: bytes.count, complete: true))
        XCTAssertEqual(unmasked, connect)
        guard case .connect(let packet) = unmasked.withUnsafeBytes({ MQTTPeek.parseConnect($0) }) else { return XCTFail() }
        XCTAssertEqual(String(decoding: unmasked[packet.clientIdentifier], as: UTF8.self), "ws-client-1")
    }

    func testFramesSplitAtEveryByteAreReadOnceWholeByAResumedCursorAndAfresh() {
        let bytes = Self.frame(0x2, Array(connect[0..<10]), fin: false) + Self.frame(0x9, [1, 2]) + Self.frame(0x0, Array(connect[10...]), lengthForm: 126)
        for split in 0...bytes.count {
            var cursor = WebSocketFrameCursor(start: 0)
            var out = [UInt8](repeating: 0, count: 1024)
            let (first, _) = read(Array(bytes[0..<split]), &cursor, &out)
            switch first {
            case .needMore(let atLeast): XCTAssertGreaterThan(atLeast, split, "split \(split)")
            case .payload(let length, let end, let complete):
                XCTAssertFalse(complete && split < bytes.count, "split \(split)")
                XCTAssertLessThanOrEqual(end, split)
                XCTAssertEqual(length, cursor.payloadLength)
            case .reject(let r): XCTFail("split \(split): \(r)")
            }
            let (resumed, unmasked) = read(bytes, &cursor, &out)
            if split == bytes.count {
                XCTAssertEqual(resumed, .needMore(atLeast: bytes.count + 2), "nothing is read twice")
                XCTAssertEqual(unmasked, connect)
            } else {
                XCTAssertEqual(resumed, .payload(length: connect.count, framesEnd: bytes.count, complete: true), "split \(split)")
                XCTAssertEqual(unmasked, connect, "split \(split)")
            }
            XCTAssertEqual(read(bytes).1, connect)
        }
    }

    func testTheNextMessageIsAppendedWhenTheCallerReadsOn() {
        // MQTT §6: packets need not align with messages; a CONNECT may span two.
        let bytes = Self.frame(0x2, Array(connect[0..<8])) + Self.frame(0x2, Array(connect[8...]))
        var cursor = WebSocketFrameCursor(start: 0)
        var out = [UInt8](repeating: 0, count: 1024)
        XCTAssertEqual(read(bytes, &cursor, &out).0, .payload(length: 8, framesEnd: 14, complete: true))
        let (second, unmasked) = read(bytes, &cursor, &out)
        XCTAssertEqual(second, .payload(length: connect.count, framesEnd: bytes.count, complete: true))
        XCTAssertEqual(unmasked, connect)
    }

    func testFramesMQTTOverWebSocketForbidsAreRefused() {
        let data = Array("x".utf8)
        let cases: [([UInt8], WebSocketFrameRejection, UInt16)] = [
            (Self.frame(0x1, data), .textFrame, 1003),
            (Self.frame(0x2, data, key: nil), .unmasked, 1002),
            (Self.frame(0x8, [0x03, 0xE8]), .closeReceived, 1000),
            (Self.frame(0x2, data, fin: false) + Self.frame(0x8, []), .closeReceived, 1000),
            ([0xC2, 0x81, 0, 0, 0, 0, 0], .reservedBits, 1002),
            (Self.frame(0x3, data), .reservedOpcode, 1002),
            (Self.frame(0xB, data), .reservedOpcode, 1002),
            (Self.frame(0x0, data), .unexpectedContinuation, 1002),
            (Self.frame(0x2, data, fin: false) + Self.frame(0x2, data), .expectedContinuation, 1002),
            (Self.frame(0x9, data, fin: false), .badControlFrame, 1002),
            (Self.frame(0x9, [UInt8](repeating: 0, count: 126)), .badControlFrame, 1002),
            ([0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1], .badLength, 1002),
            (Self.frame(0x2, [UInt8](repeating: 0, count: 2000)), .messageTooBig, 1009),
        ]
        for (bytes, reason, code) in cases {
            XCTAssertEqual(read(bytes, capacity: 1024).0, .reject(reason), "\(reason)")
            XCTAssertEqual(reason.closeCode, code)
        }
        // Refused from the frame's head on: an over-long frame's payload is never waited for.
        XCTAssertEqual(read(Array(Self.frame(0x2, [UInt8](repeating: 0, count: 2000)).prefix(8)), capacity: 1024).0, .reject(.messageTooBig))
    }

    func testTheServersCloseFrameIsUnmaskedWithItsCode() {
        var out = [UInt8](repeating: 0xEE, count: 8)
        let n = out.withUnsafeMutableBytes { WebSocketFrames.writeClose(code: 1002, to: $0.baseAddress!, capacity: $0.count) }
        XCTAssertEqual(Array(out[0..<n]), [0x88, 0x02, 0x03, 0xEA])
    }

    func testPahosCapturedConnectUnmasksIntoACONNECTThatMQTTPeekAccepts() {
        let bytes = Self.pahoHead + Self.pahoFrame
        guard case .complete(let consumed, _) = parse(bytes) else { return XCTFail() }
        let (verdict, unmasked) = read(bytes, start: consumed)
        XCTAssertEqual(verdict, .payload(length: 29, framesEnd: bytes.count, complete: true))
        guard case .connect(let packet) = unmasked.withUnsafeBytes({ MQTTPeek.parseConnect($0) }) else { return XCTFail("\(unmasked)") }
        XCTAssertEqual(packet.protocolLevel, 4)
        XCTAssertEqual(String(decoding: unmasked[packet.clientIdentifier], as: UTF8.self), "paho-ws-fixture")
    }

    // MARK: The server's answer to a replayed upgrade

    private func answer(_ text: String, expected: String? = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") -> WebSocketUpgradeResponseVerdict {
        Array(text.utf8).withUnsafeBytes { b in
            guard let expected else { return WebSocketUpgradeResponse.parse(b, expectedAccept: nil) }
            return Array(expected.utf8).withUnsafeBytes { WebSocketUpgradeResponse.parse(b, expectedAccept: $0.baseAddress!) }
        }
    }

    private let brokers101 = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nupgrade: WebSocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"

    func testABrokers101IsAcceptedAndAnythingElseRefusedOrInvalid() {
        XCTAssertEqual(answer(brokers101 + "\u{82}\u{02}"), .accepted(headLength: brokers101.utf8.count))
        XCTAssertEqual(answer(brokers101, expected: nil), .accepted(headLength: brokers101.utf8.count))
        for length in 0..<brokers101.utf8.count {
            XCTAssertEqual(answer(String(decoding: Array(brokers101.utf8.prefix(length)), as: UTF8.self)), .needMore, "prefix \(length)")
        }
        XCTAssertEqual(answer("HTTP/1.1 404 Not Found\r\n"), .refused(status: 404))
        XCTAssertEqual(answer("HTTP/1.1 400\r\n"), .refused(status: 400))
        XCTAssertEqual(answer("HTTP/1.0 101 Switching Protocols\r\n"), .invalid(.malformed))
        XCTAssertEqual(answer("\u{20}\u{02}\u{00}\u{00}"), .invalid(.malformed), "an MQTT CONNACK: not a WebSocket server")
        XCTAssertEqual(answer(brokers101.replacingOccurrences(of: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", with: "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")), .invalid(.badAccept))
        XCTAssertEqual(answer(brokers101.replacingOccurrences(of: "upgrade: WebSocket\r\n", with: "")), .invalid(.notUpgraded))
        XCTAssertEqual(answer(brokers101.replacingOccurrences(of: "\r\n\r\n", with: "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n")), .invalid(.extensionAccepted))
        XCTAssertEqual(answer("HTTP/1.1 101 Switching Protocols\r\nX: " + String(repeating: "a", count: 5000)), .invalid(.tooLarge))
    }

    // MARK: Allocation

    func testParsingWritingAndReadingFramesAllocateNothing() throws {
        guard let counter = cu_jemalloc_thread_allocated() else { throw XCTSkip("jemalloc is not the allocator") }
        let bytes = Self.pahoHead + Self.frame(0x2, Array(connect[0..<9]), fin: false) + Self.frame(0x9, []) + Self.frame(0x0, Array(connect[9...]))
        let out = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 16)
        defer { out.deallocate() }
        let path: StaticString = "/mqtt"
        let policy = WebSocketUpgradePolicy(path: UnsafeRawBufferPointer(start: path.utf8Start, count: path.utf8CodeUnitCount), requiresMQTTSubprotocol: true)
        var total = 0
        func once() {
            bytes.withUnsafeBytes { b in
                guard case .complete(let consumed, let request) = WebSocketUpgrade.parse(b, policy: policy) else { return XCTFail() }
                total += WebSocketUpgrade.write101(key: b.baseAddress! + request.keyOffset, subprotocol: request.subprotocol, to: out, capacity: 4096)
                total += WebSocketUpgrade.writeError(status: 431, to: out, capacity: 4096)
                var cursor = WebSocketFrameCursor(start: consumed)
                guard case .payload(let n, _, true) = WebSocketFrames.read(b, cursor: &cursor, into: out, capacity: 4096) else { return XCTFail() }
                total += n + WebSocketFrames.writeClose(code: 1008, to: out, capacity: 4096)
            }
        }
        once()
        let before = counter.pointee
        for _ in 0..<1000 { once() }
        XCTAssertEqual(counter.pointee - before, 0, "parsing, answering and unmasking allocated")
        XCTAssertGreaterThan(total, 0)
    }

    // MARK: Helpers

    private func request(replacing old: String, with new: String) -> String {
        precondition(browserRequest.contains(old))
        return browserRequest.replacingOccurrences(of: old, with: new)
    }

    private func request(dropping header: String) -> String {
        browserRequest.components(separatedBy: "\r\n").filter { !$0.hasPrefix(header + ":") }.joined(separator: "\r\n")
    }
}
