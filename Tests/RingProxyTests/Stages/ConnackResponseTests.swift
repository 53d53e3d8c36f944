// ConnackResponse: the verdict on a server's CONNACK (option mqtt-connack-redispatch), byte by
// byte: "try another server" codes per protocol level, the Server Reference among other
// properties, split input, WebSocket-framed CONNACKs, and everything else passed on untouched.
import XCTest
@testable import RingProxy

final class ConnackResponseTests: XCTestCase {
    private func read(_ bytes: [UInt8], level: UInt8, max: Int = 65_536) -> ConnackVerdict {
        bytes.withUnsafeBytes { ConnackResponse.read($0, protocolLevel: level, packetMaxBytes: max) }
    }

    private func readFramed(_ bytes: [UInt8], level: UInt8) -> ConnackVerdict {
        bytes.withUnsafeBytes { ConnackResponse.readFramed($0, protocolLevel: level, packetMaxBytes: 65_536) }
    }

    /// An MQTT 5.0 CONNACK with `code` and these properties.
    private func connack5(_ code: UInt8, properties: [UInt8] = []) -> [UInt8] {
        let body: [UInt8] = [0x00, code] + MQTTWire.remainingLength(properties.count) + properties
        return [0x20] + MQTTWire.remainingLength(body.count) + body
    }

    func testMQTT311ServerUnavailableSaysTryElsewhereAndOtherCodesPass() {
        XCTAssertEqual(read([0x20, 0x02, 0x00, 0x03], level: 4), .tryElsewhere(.serverUnavailable, code: 3, reference: nil))
        XCTAssertEqual(read([0x20, 0x02, 0x00, 0x03], level: 3), .tryElsewhere(.serverUnavailable, code: 3, reference: nil))
        for code: UInt8 in [0, 1, 2, 4, 5, 0x88] {
            XCTAssertEqual(read([0x20, 0x02, 0x00, code], level: 4), .pass, "code \(code)")
        }
    }

    func testMQTT5TryElsewhereCodes() {
        XCTAssertEqual(read(connack5(0x88), level: 5), .tryElsewhere(.serverUnavailable, code: 0x88, reference: nil))
        XCTAssertEqual(read(connack5(0x89), level: 5), .tryElsewhere(.serverBusy, code: 0x89, reference: nil))
        XCTAssertEqual(read(connack5(0x9F), level: 5), .tryElsewhere(.connectionRateExceeded, code: 0x9F, reference: nil))
        XCTAssertEqual(read(connack5(0x9C), level: 5), .tryElsewhere(.useAnotherServer, code: 0x9C, reference: nil))
        for code: UInt8 in [0x00, 0x80, 0x86, 0x87, 0x8A, 0x03] {
            XCTAssertEqual(read(connack5(code), level: 5), .pass, "code \(code)")
        }
    }

    func testTheServerReferenceIsFoundAmongOtherProperties() {
        let reason: [UInt8] = [0x1F] + MQTTWire.string(Array("go away".utf8))
        let user: [UInt8] = [0x26] + MQTTWire.string(Array("k".utf8)) + MQTTWire.string(Array("v".utf8))
        let reference: [UInt8] = [0x1C] + MQTTWire.string(Array("127.0.0.1:1884".utf8))
        let packet = connack5(0x9D, properties: [0x11, 0, 0, 0, 5] + reason + user + [0x24, 1] + reference)
        guard case .tryElsewhere(.useAnotherServer, 0x9D, let range?) = read(packet, level: 5) else {
            return XCTFail("\(read(packet, level: 5))")
        }
        XCTAssertEqual(String(decoding: packet[range], as: UTF8.self), "127.0.0.1:1884")
        // An unknown property stops the reading: no reference, the next server.
        XCTAssertEqual(read(connack5(0x9C, properties: [0x7F, 1] + reference), level: 5),
                       .tryElsewhere(.useAnotherServer, code: 0x9C, reference: nil))
    }

    func testEveryPrefixOfASplitCONNACKNeedsMore() {
        let packet = connack5(0x9C, properties: [0x1C] + MQTTWire.string(Array("broker-b".utf8)))
        for n in 0..<packet.count {
            XCTAssertEqual(read(Array(packet[0..<n]), level: 5), .needMore, "\(n) bytes")
        }
        XCTAssertEqual(read([0x20], level: 4), .needMore)
        XCTAssertEqual(read([0x20, 0x02, 0x00], level: 4), .needMore)
        // A reason code that passes decides before the properties are there.
        XCTAssertEqual(read(Array(connack5(0x00, properties: [0x21, 0, 10])[0..<4]), level: 5), .pass)
    }

    func testWhatIsNoCONNACKPassesAndATooLongOneIsNotWaitedFor() {
        XCTAssertEqual(read([0x30, 0x02, 0x00, 0x03], level: 4), .pass, "a PUBLISH")
        XCTAssertEqual(read([0x20, 0x03, 0x00, 0x03, 0x00], level: 4), .pass, "a 3.1.1 CONNACK is 2 bytes long")
        XCTAssertEqual(read([0x20, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], level: 5), .pass, "a five-byte remaining length")
        XCTAssertEqual(read([0x20, 0x80, 0x80, 0x01, 0x00, 0x9C], level: 5, max: 1024),
                       .tryElsewhere(.useAnotherServer, code: 0x9C, reference: nil))
    }

    func testACONNACKInAWebSocketFrame() {
        let packet = connack5(0x9C, properties: [0x1C] + MQTTWire.string(Array("s1".utf8)))
        let frame: [UInt8] = [0x82, UInt8(packet.count)] + packet
        guard case .tryElsewhere(.useAnotherServer, _, let range?) = readFramed(frame, level: 5) else {
            return XCTFail("\(readFramed(frame, level: 5))")
        }
        XCTAssertEqual(String(decoding: frame[range], as: UTF8.self), "s1")
        XCTAssertEqual(readFramed([0x82, 0x04, 0x20, 0x02, 0x00, 0x03], level: 4), .tryElsewhere(.serverUnavailable, code: 3, reference: nil))
        XCTAssertEqual(readFramed([0x82, 0x04, 0x20, 0x02, 0x00], level: 4), .needMore)
        XCTAssertEqual(readFramed([0x82, 0x7E, 0x00, 0x04, 0x20, 0x02, 0x00, 0x00], level: 4), .pass)
        XCTAssertEqual(readFramed([0x81, 0x04, 0x20, 0x02, 0x00, 0x03], level: 4), .pass, "a text frame is not ours to judge")
        XCTAssertEqual(readFramed([0x02, 0x02, 0x20, 0x02], level: 4), .pass, "a CONNACK the first fragment does not hold")
    }
}
