// One or more invalid packets per rule, each refused with exactly its reason; every prefix of
// them either needs more bytes or already gives that same reason.

import MQTTPeek
import Testing

@Suite("Invalid CONNECTs")
struct InvalidConnectTests {
    @Test("each broken rule is refused with its own reason", arguments: Vectors.invalid)
    func brokenRuleGivesItsReason(_ vector: InvalidVector) {
        #expect(parseExact(vector.bytes, connectMaxBytes: vector.connectMaxBytes) == .invalid(vector.reason))
    }

    @Test("a prefix of an invalid packet needs more or gives the same reason", arguments: Vectors.invalid)
    func prefixesNeverContradict(_ vector: InvalidVector) {
        let whole = parseExact(vector.bytes, connectMaxBytes: vector.connectMaxBytes)
        for length in 0...vector.bytes.count {
            let verdict = parseExact(vector.bytes.prefix(length), connectMaxBytes: vector.connectMaxBytes)
            expectInvariants(verdict, input: Array(vector.bytes.prefix(length)), connectMaxBytes: vector.connectMaxBytes)
            expectPrefixConsistent(verdict, prefixLength: length, whole: whole)
        }
    }

    @Test("every reason has at least one vector")
    func everyReasonIsCovered() {
        let covered = Set(Vectors.invalid.map(\.reason))
        for reason in InvalidReason.allCases {
            #expect(covered.contains(reason), "no vector for \(reason)")
        }
    }

    @Test("reasons have distinct, stable codes and operator-readable descriptions")
    func reasonsDescribeThemselves() {
        #expect(Set(InvalidReason.allCases.map(\.rawValue)).count == InvalidReason.allCases.count)
        #expect(Set(InvalidReason.allCases.map(\.description)).count == InvalidReason.allCases.count)
        #expect(InvalidReason.notConnect.rawValue == 1 && InvalidReason.badUTF8.rawValue == 15)
        #expect(InvalidReason.tooLarge.description == "CONNECT larger than connect-max-bytes")
    }

    @Test("a plain HTTP request is refused from its first byte")
    func httpIsRefusedFromTheFirstByte() {
        #expect(parseExact(Array("G".utf8)) == .invalid(.notConnect))
    }

    @Test("a TLS ClientHello is refused from its first byte")
    func tlsIsRefusedFromTheFirstByte() {
        #expect(parseExact([0x16]) == .invalid(.notConnect))
    }

    @Test("a bad protocol name is refused before the client identifier arrives")
    func badProtocolNameIsRefusedEarly() {
        // Fixed header announces 100 bytes; only the variable header is here.
        let prefix: [UInt8] = [0x10, 100, 0x00, 0x04] + Array("AMQP".utf8) + [0x04, 0x02, 0x00, 0x3C]
        #expect(parseExact(prefix) == .invalid(.badProtocolName))
        // A name length other than 4 or 6 is enough.
        #expect(parseExact([0x10, 100, 0x00, 0x05]) == .invalid(.badProtocolName))
    }

    @Test("a field past the announced end is refused before the announced end arrives")
    func overrunIsRefusedEarly() {
        // Remaining length 30, but the client identifier claims 200 bytes.
        let prefix: [UInt8] = [0x10, 30, 0x00, 0x04] + Array("MQTT".utf8) + [0x04, 0x02, 0x00, 0x3C, 0x00, 200]
        #expect(parseExact(prefix) == .invalid(.lengthOutOfBounds))
    }

    @Test("a two-byte remaining length already exceeds a limit below 131 bytes")
    func smallLimitRefusesTwoLengthBytes() {
        #expect(parseExact([0x10, 0x80], connectMaxBytes: 130) == .invalid(.tooLarge))
        #expect(parseExact([0x10, 0x80], connectMaxBytes: 131) == .needMore(atLeast: 131))
    }
}
