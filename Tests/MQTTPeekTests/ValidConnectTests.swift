// Valid CONNECTs of MQTT 3.1, 3.1.1 and 5.0, captured from mosquitto_pub and built field by
// field: each field range must point at exactly the bytes that were sent.

import MQTTPeek
import Testing

@Suite("Valid CONNECTs")
struct ValidConnectTests {
    @Test("every field range decodes to the bytes that were sent", arguments: Vectors.valid)
    func fieldsDecodeToTheBytesSent(_ vector: ValidVector) throws {
        let verdict = parseExact(vector.bytes)
        guard case .connect(let packet) = verdict else {
            Issue.record("expected a CONNECT, got \(verdict)")
            return
        }
        let bytes = vector.bytes
        let expected = vector.expected
        #expect(packet.packetLength == bytes.count)
        #expect(packet.protocolLevel == expected.protocolLevel)
        #expect(packet.connectFlags == expected.connectFlags)
        #expect(packet.keepAliveSeconds == expected.keepAliveSeconds)
        #expect(slice(packet.properties, of: bytes) == expected.properties)
        #expect(slice(packet.clientIdentifier, of: bytes) == expected.clientIdentifier)
        #expect(slice(packet.willProperties, of: bytes) == expected.willProperties)
        #expect(slice(packet.willTopic, of: bytes) == expected.willTopic)
        #expect(slice(packet.willPayload, of: bytes) == expected.willPayload)
        #expect(slice(packet.username, of: bytes) == expected.username)
        #expect(slice(packet.password, of: bytes) == expected.password)
        expectInvariants(verdict, input: bytes, connectMaxBytes: 65536)
    }

    @Test("the test encoder reproduces mosquitto_pub's bytes exactly")
    func builderReproducesMosquittoBytes() {
        var v311 = ConnectBuilder.v311("ringproxy-1")
        #expect(v311.bytes == Vectors.mosquitto311.bytes)

        var v31 = ConnectBuilder.v31("client31")
        v31.will = .init(topic: Array("will/t".utf8), payload: Array("bye".utf8), qos: 1, retain: true)
        v31.username = Array("alice".utf8)
        v31.password = Array("secret".utf8)
        #expect(v31.bytes == Vectors.mosquitto31Will.bytes)

        v311 = .v311("sensor/42")
        v311.cleanSession = false
        v311.keepAliveSeconds = 30
        v311.username = Array("dev".utf8)
        v311.password = Array("s3cr3t".utf8)
        #expect(v311.bytes == Vectors.mosquitto311Persistent.bytes)

        #expect(ConnectBuilder.v5("c5", properties: Property.two(Property.receiveMaximum, 20)).bytes
            == Vectors.mosquitto5Minimal.bytes)

        var v5 = ConnectBuilder.v5(
            "c5-ringproxy",
            properties: Property.four(Property.sessionExpiryInterval, 3600)
                + Property.userProperty("region", "eu-west")
                + Property.two(Property.receiveMaximum, 20)
                + Property.four(Property.maximumPacketSize, 1_048_576)
                + Property.two(Property.topicAliasMaximum, 10)
                + Property.byte(Property.requestProblemInformation, 1)
                + Property.byte(Property.requestResponseInformation, 0))
        v5.will = .init(
            properties: Property.four(Property.willDelayInterval, 10)
                + Property.string(Property.contentType, "text/plain")
                + Property.byte(Property.payloadFormatIndicator, 1)
                + Property.four(Property.messageExpiryInterval, 60)
                + Property.string(Property.responseTopic, "resp/t")
                + Property.binary(Property.correlationData, Array("abc".utf8))
                + Property.userProperty("a", "b"),
            topic: Array("w/gone".utf8), payload: Array("gone".utf8), qos: 2)
        v5.username = Array("bob".utf8)
        v5.password = Array("pw".utf8)
        #expect(v5.bytes == Vectors.mosquitto5Properties.bytes)
    }

    @Test("flag accessors read the connect flags")
    func flagAccessorsReadTheConnectFlags() throws {
        guard case .connect(let v31) = parseExact(Vectors.mosquitto31Will.bytes),
            case .connect(let v311) = parseExact(Vectors.mosquitto311Persistent.bytes),
            case .connect(let v5) = parseExact(Vectors.mosquitto5Properties.bytes)
        else {
            Issue.record("captured vectors must parse")
            return
        }
        #expect(v31.protocolName == "MQIsdp")
        #expect(v31.hasWill && v31.willQoS == 1 && v31.willRetain && v31.cleanSession)
        #expect(v31.hasUsername && v31.hasPassword)
        #expect(v311.protocolName == "MQTT")
        #expect(!v311.hasWill && v311.willQoS == 0 && !v311.willRetain && !v311.cleanSession)
        #expect(v5.protocolName == "MQTT")
        #expect(v5.hasWill && v5.willQoS == 2 && !v5.willRetain && v5.cleanSession)
    }

    @Test("MQTT 3.x CONNECTs report an empty property range and no will properties")
    func mqtt3HasNoProperties() {
        for vector in [Vectors.mosquitto311, Vectors.mosquitto31Will] {
            guard case .connect(let packet) = parseExact(vector.bytes) else {
                Issue.record("\(vector.name) must parse")
                continue
            }
            #expect(packet.properties.isEmpty)
            #expect(packet.willProperties == nil)
        }
    }

    @Test("the client identifier is a slice of the input, not a copy")
    func clientIdentifierPointsIntoTheInput() {
        Vectors.mosquitto311.bytes.withUnsafeBytes { buffer in
            let identifier = MQTTPeek.clientIdentifier(in: buffer)
            #expect(identifier?.baseAddress == buffer.baseAddress! + 14)
            #expect(identifier.map(Array.init) == Array("ringproxy-1".utf8))
        }
    }

    @Test("a CONNECT of exactly connect-max-bytes is accepted")
    func packetOfExactlyTheLimitIsAccepted() {
        let bytes = Vectors.mosquitto5Properties.bytes
        guard case .connect(let packet) = parseExact(bytes, connectMaxBytes: bytes.count) else {
            Issue.record("must parse at the limit")
            return
        }
        #expect(packet.packetLength == bytes.count)
        #expect(parseExact(bytes, connectMaxBytes: bytes.count - 1) == .invalid(.tooLarge))
    }

    @Test("the largest remaining length (4 bytes) is decoded when the limit allows it")
    func largestRemainingLengthIsDecoded() {
        // 0xFF 0xFF 0xFF 0x7F = 268435455: the packet is announced, then bytes are awaited.
        #expect(parseExact([0x10, 0xFF, 0xFF, 0xFF, 0x7F, 0x00], connectMaxBytes: .max)
            == .needMore(atLeast: 1 + 4 + 268_435_455))
        // 0x80 0x80 0x80 0x01 = 2097152, the smallest 4-byte value.
        #expect(parseExact([0x10, 0x80, 0x80, 0x80, 0x01], connectMaxBytes: .max)
            == .needMore(atLeast: 1 + 4 + 2_097_152))
        // 0xFF 0x7F = 16383, the largest 2-byte value.
        #expect(parseExact([0x10, 0xFF, 0x7F, 0x00], connectMaxBytes: .max) == .needMore(atLeast: 1 + 2 + 16383))
    }

    @Test("client identifiers are accepted exactly when the standard library finds valid UTF-8 without U+0000")
    func utf8ValidationAgreesWithTheStandardLibrary() {
        var generator = SplitMix64(seed: 0x5EED_0F_07F8)
        let fragments: [[UInt8]] = [
            [0x00], [0x41], [0x7F], [0x80], [0xBF], [0xC0, 0x80], [0xC2, 0xA9], [0xDF, 0xBF], [0xE0, 0x80, 0x80],
            [0xE0, 0xA0, 0x80], [0xED, 0x9F, 0xBF], [0xED, 0xA0, 0x80], [0xEF, 0xBF, 0xBF], [0xF0, 0x8F, 0xBF, 0xBF],
            [0xF0, 0x90, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF], [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80],
            [0xFF], [0xE2, 0x82], [0xC3],
        ]
        for _ in 0..<20_000 {
            var identifier: [UInt8] = []
            let pieces = Int.random(in: 0...12, using: &generator)
            for _ in 0..<pieces {
                if Bool.random(using: &generator) {
                    identifier += fragments.randomElement(using: &generator)!
                } else {
                    identifier += (0..<Int.random(in: 1...9, using: &generator)).map { _ in
                        UInt8.random(in: 0x20...0x7E, using: &generator)
                    }
                }
            }
            let verdict = parseExact(ConnectBuilder(clientIdentifier: identifier).bytes)
            if isMQTTString(identifier[...]) {
                guard case .connect = verdict else {
                    Issue.record("valid identifier \(identifier) refused: \(verdict)")
                    return
                }
            } else {
                #expect(verdict == .invalid(.badUTF8), "identifier \(identifier)")
            }
        }
    }

    @Test("the word-at-a-time ASCII check finds a bad byte at every position of every length")
    func asciiFastPathFindsEveryBadByte() {
        for length in 1...40 {
            let ascii = Array(repeating: UInt8(ascii: "a"), count: length)
            #expect(parseExact(ConnectBuilder(clientIdentifier: ascii).bytes).isConnect)
            for position in 0..<length {
                for (bad, reason) in [(UInt8(0x00), InvalidReason.badUTF8), (0x80, .badUTF8), (0xFF, .badUTF8)] {
                    var identifier = ascii
                    identifier[position] = bad
                    #expect(parseExact(ConnectBuilder(clientIdentifier: identifier).bytes) == .invalid(reason),
                        "length \(length), byte \(bad) at \(position)")
                }
                var accented = ascii
                accented.replaceSubrange(position..<position + 1, with: [0xC3, 0xA9])  // é
                #expect(parseExact(ConnectBuilder(clientIdentifier: accented).bytes).isConnect)
            }
        }
    }
}

extension ConnectVerdict {
    var isConnect: Bool {
        if case .connect = self { return true }
        return false
    }
}

@Suite("ConnectPacket value")
struct ConnectPacketValueTests {
    @Test("ranges set on a ConnectPacket read back the same, nil included")
    func rangesRoundTrip() {
        var packet = ConnectPacket(
            packetLength: 100, protocolLevel: 5, connectFlags: 0xC4, keepAliveSeconds: 30,
            properties: 13..<13, clientIdentifier: 15..<20, willProperties: 21..<21, willTopic: 23..<24,
            willPayload: 26..<26, username: 28..<31, password: nil)
        #expect(packet.packetLength == 100)
        #expect(packet.properties == 13..<13)
        #expect(packet.clientIdentifier == 15..<20)
        #expect(packet.willProperties == 21..<21)
        #expect(packet.willTopic == 23..<24)
        #expect(packet.willPayload == 26..<26)
        #expect(packet.username == 28..<31)
        #expect(packet.password == nil)
        packet.password = 33..<40
        packet.username = nil
        packet.packetLength = 40
        #expect(packet.password == 33..<40)
        #expect(packet.username == nil)
        #expect(packet.packetLength == 40)
        #expect(packet != ConnectPacket(
            packetLength: 40, protocolLevel: 5, connectFlags: 0xC4, keepAliveSeconds: 30,
            properties: 13..<13, clientIdentifier: 15..<20))
    }

    @Test("the verdict stays one cache line, so returning it needs no memcpy call")
    func verdictIsSmall() {
        #expect(MemoryLayout<ConnectPacket>.size == 64)
        #expect(MemoryLayout<ConnectVerdict>.size <= 72)
    }

    @Test("a parsed packet equals one built from the same ranges")
    func parsedPacketEqualsBuiltPacket() {
        let expected = ConnectPacket(
            packetLength: 25, protocolLevel: 4, connectFlags: 0x02, keepAliveSeconds: 60,
            properties: 12..<12, clientIdentifier: 14..<25)
        #expect(parseExact(Vectors.mosquitto311.bytes) == .connect(expected))
    }
}
