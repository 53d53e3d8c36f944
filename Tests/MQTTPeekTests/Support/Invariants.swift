// Properties every verdict must have, whatever the input: shared by the valid, partial and
// mutation tests (the fuzz target checks the same ones with preconditions).

import MQTTPeek
import Testing

/// The content of `range` in `bytes`.
func slice(_ range: Range<Int>?, of bytes: [UInt8]) -> [UInt8]? {
    range.map { Array(bytes[$0]) }
}

func isMQTTString(_ bytes: ArraySlice<UInt8>) -> Bool {
    !bytes.contains(0) && String(validating: bytes, as: UTF8.self) != nil
}

/// Checks what must hold for any input: needMore asks for more than was given; a CONNECT lies
/// inside the input and the limit, its fields are in order inside the packet, agree with the
/// connect flags, and its strings are valid.
func expectInvariants(
    _ verdict: ConnectVerdict, input: [UInt8], connectMaxBytes: Int,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    switch verdict {
    case .needMore(let atLeast):
        #expect(atLeast > input.count, "needMore must ask for more than given", sourceLocation: sourceLocation)
    case .invalid:
        break
    case .connect(let packet):
        #expect(packet.packetLength <= input.count, sourceLocation: sourceLocation)
        #expect(packet.packetLength <= connectMaxBytes, sourceLocation: sourceLocation)
        #expect((3...5).contains(packet.protocolLevel), sourceLocation: sourceLocation)
        let fields: [Range<Int>?] = [
            packet.properties, packet.clientIdentifier, packet.willProperties, packet.willTopic,
            packet.willPayload, packet.username, packet.password,
        ]
        var previousEnd = 0
        for case let range? in fields {
            #expect(range.lowerBound >= previousEnd, "fields overlap or are out of order", sourceLocation: sourceLocation)
            #expect(range.upperBound <= packet.packetLength, "field past the packet", sourceLocation: sourceLocation)
            previousEnd = range.upperBound
        }
        #expect(packet.hasWill == (packet.willTopic != nil), sourceLocation: sourceLocation)
        #expect(packet.hasWill == (packet.willPayload != nil), sourceLocation: sourceLocation)
        #expect((packet.hasWill && packet.protocolLevel == 5) == (packet.willProperties != nil), sourceLocation: sourceLocation)
        #expect(packet.hasUsername == (packet.username != nil), sourceLocation: sourceLocation)
        #expect(packet.hasPassword == (packet.password != nil), sourceLocation: sourceLocation)
        #expect(packet.willQoS < 3, sourceLocation: sourceLocation)
        #expect(packet.protocolLevel == 5 || packet.properties.isEmpty, sourceLocation: sourceLocation)
        for case let range? in [packet.clientIdentifier, packet.willTopic, packet.username] {
            #expect(isMQTTString(input[range]), "string field accepted but not valid UTF-8", sourceLocation: sourceLocation)
        }
    }
}

/// A verdict on the first `prefixLength` bytes of an input must not contradict the verdict on
/// the whole input: a prefix of a CONNECT (or of an input still needing more) needs more, with a
/// lower bound no larger than the whole's; an invalid prefix means an invalid whole, same reason.
func expectPrefixConsistent(
    _ prefixVerdict: ConnectVerdict, prefixLength: Int, whole: ConnectVerdict,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    switch whole {
    case .connect(let packet):
        if prefixLength >= packet.packetLength {
            #expect(prefixVerdict == whole, sourceLocation: sourceLocation)
        } else if case .needMore(let atLeast) = prefixVerdict {
            #expect(atLeast > prefixLength && atLeast <= packet.packetLength, sourceLocation: sourceLocation)
        } else {
            Issue.record("prefix \(prefixLength) of a CONNECT gave \(prefixVerdict)", sourceLocation: sourceLocation)
        }
    case .needMore(let wholeAtLeast):
        if case .needMore(let atLeast) = prefixVerdict {
            #expect(atLeast <= wholeAtLeast, sourceLocation: sourceLocation)
        } else {
            Issue.record("prefix \(prefixLength) gave \(prefixVerdict) but the whole needs more", sourceLocation: sourceLocation)
        }
    case .invalid(let reason):
        switch prefixVerdict {
        case .needMore: break
        case .invalid(let prefixReason):
            #expect(prefixReason == reason, "prefix \(prefixLength) reason differs", sourceLocation: sourceLocation)
        case .connect:
            Issue.record("prefix \(prefixLength) is a CONNECT but the whole is invalid", sourceLocation: sourceLocation)
        }
    }
}
