// The test vectors: CONNECTs captured from mosquitto_pub 2.0.11 (sent to `nc -l`), CONNECTs built
// field by field, and one or more invalid packets per rule, each with the reason it must give.

import MQTTPeek
import Testing

/// What a valid vector's fields must decode to.
struct ExpectedConnect: Sendable {
    var protocolLevel: UInt8
    var connectFlags: UInt8
    var keepAliveSeconds: UInt16
    var properties: [UInt8] = []
    var clientIdentifier: [UInt8]
    var willProperties: [UInt8]? = nil
    var willTopic: [UInt8]? = nil
    var willPayload: [UInt8]? = nil
    var username: [UInt8]? = nil
    var password: [UInt8]? = nil
}

struct ValidVector: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    let expected: ExpectedConnect
    var testDescription: String { name }

    init(_ name: String, hex: String, expected: ExpectedConnect) {
        self.name = name
        self.bytes = [UInt8](hex: hex)
        self.expected = expected
    }

    /// A vector built with `ConnectBuilder`; its expectations come from the builder's fields.
    init(_ name: String, _ builder: ConnectBuilder) {
        self.name = name
        self.bytes = builder.bytes
        self.expected = ExpectedConnect(
            protocolLevel: builder.protocolLevel, connectFlags: builder.connectFlags,
            keepAliveSeconds: builder.keepAliveSeconds,
            properties: builder.protocolLevel == 5 ? builder.properties : [],
            clientIdentifier: builder.clientIdentifier,
            willProperties: builder.protocolLevel == 5 ? builder.will?.properties : nil,
            willTopic: builder.will?.topic, willPayload: builder.will?.payload,
            username: builder.username, password: builder.password)
    }
}

struct InvalidVector: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    let connectMaxBytes: Int
    let reason: InvalidReason
    var testDescription: String { "\(name) -> \(reason)" }

    init(_ name: String, _ bytes: [UInt8], connectMaxBytes: Int = 65536, _ reason: InvalidReason) {
        self.name = name
        self.bytes = bytes
        self.connectMaxBytes = connectMaxBytes
        self.reason = reason
    }

    init(_ name: String, _ builder: ConnectBuilder, connectMaxBytes: Int = 65536, _ reason: InvalidReason) {
        self.init(name, builder.bytes, connectMaxBytes: connectMaxBytes, reason)
    }
}

private func utf8(_ string: String) -> [UInt8] { Array(string.utf8) }

enum Vectors {
    // MARK: captured from mosquitto_pub 2.0.11

    /// `mosquitto_pub -V mqttv311 -i ringproxy-1 -t t -m m`
    static let mosquitto311 = ValidVector(
        "mosquitto_pub 3.1.1 short", hex: "101700044d5154540402003c000b72696e6770726f78792d31",
        expected: ExpectedConnect(
            protocolLevel: 4, connectFlags: 0x02, keepAliveSeconds: 60, clientIdentifier: utf8("ringproxy-1")))

    /// `mosquitto_pub -V mqttv31 -i client31 -u alice -P secret --will-topic will/t
    ///  --will-payload bye --will-qos 1 --will-retain`
    static let mosquitto31Will = ValidVector(
        "mosquitto_pub 3.1 will + user + password",
        hex: "103200064d514973647003ee003c0008636c69656e743331000677696c6c2f7400036279650005616c6963650006736563726574",
        expected: ExpectedConnect(
            protocolLevel: 3, connectFlags: 0xEE, keepAliveSeconds: 60, clientIdentifier: utf8("client31"),
            willTopic: utf8("will/t"), willPayload: utf8("bye"), username: utf8("alice"), password: utf8("secret")))

    /// `mosquitto_pub -V mqttv311 -c -k 30 -i sensor/42 -u dev -P s3cr3t`
    static let mosquitto311Persistent = ValidVector(
        "mosquitto_pub 3.1.1 persistent session + user + password",
        hex: "102200044d51545404c0001e000973656e736f722f343200036465760006733363723374",
        expected: ExpectedConnect(
            protocolLevel: 4, connectFlags: 0xC0, keepAliveSeconds: 30, clientIdentifier: utf8("sensor/42"),
            username: utf8("dev"), password: utf8("s3cr3t")))

    /// `mosquitto_pub -V mqttv5 -i c5 -t t -m m` (mosquitto adds receive maximum 20)
    static let mosquitto5Minimal = ValidVector(
        "mosquitto_pub 5.0 minimal", hex: "101200044d5154540502003c0321001400026335",
        expected: ExpectedConnect(
            protocolLevel: 5, connectFlags: 0x02, keepAliveSeconds: 60, properties: [0x21, 0x00, 0x14],
            clientIdentifier: utf8("c5")))

    /// `mosquitto_pub -V mqttv5 -i c5-ringproxy -u bob -P pw --will-topic w/gone --will-payload gone
    ///  --will-qos 2 -D connect session-expiry-interval 3600 -D connect user-property region eu-west
    ///  -D connect receive-maximum 20 -D connect maximum-packet-size 1048576
    ///  -D connect topic-alias-maximum 10 -D connect request-problem-information 1
    ///  -D connect request-response-information 0 -D will will-delay-interval 10
    ///  -D will content-type text/plain -D will payload-format-indicator 1
    ///  -D will message-expiry-interval 60 -D will response-topic resp/t
    ///  -D will correlation-data abc -D will user-property a b`
    static let mosquitto5Properties = ValidVector(
        "mosquitto_pub 5.0 every CONNECT and will property",
        hex: "10860100044d51545405d6003c261100000e10260006726567696f6e000765752d77657374210014270010000022000a17011900000c63352d72696e6770726f78792f180000000a03000a746578742f706c61696e0101020000003c080006726573702f74090003616263260001610001620006772f676f6e650004676f6e650003626f6200027077",
        expected: ExpectedConnect(
            protocolLevel: 5, connectFlags: 0xD6, keepAliveSeconds: 60,
            properties: [UInt8](
                hex: "1100000e10260006726567696f6e000765752d7765737421001427001000002200" + "0a17011900"),
            clientIdentifier: utf8("c5-ringproxy"),
            willProperties: [UInt8](
                hex: "180000000a03000a746578742f706c61696e0101020000003c080006726573702f7409000361626326000161000162"),
            willTopic: utf8("w/gone"), willPayload: utf8("gone"), username: utf8("bob"), password: utf8("pw")))

    static let captured = [mosquitto311, mosquitto31Will, mosquitto311Persistent, mosquitto5Minimal, mosquitto5Properties]

    // MARK: built

    static let built: [ValidVector] = [
        ValidVector("3.1 client id only", .v31("paho/31")),
        ValidVector("3.1.1 empty client id", .v311("")),
        {
            var b = ConnectBuilder.v311(String(repeating: "x", count: 300))  // remaining length needs 2 bytes
            b.will = .init(topic: utf8("status/x"), payload: utf8("offline"), qos: 2, retain: true)
            b.username = utf8("user")
            b.password = []  // present but empty
            b.keepAliveSeconds = 0
            return ValidVector("3.1.1 300-byte client id, will QoS 2 retained, empty password", b)
        }(),
        ValidVector("5.0 empty client id, no properties", .v5("")),
        {
            var b = ConnectBuilder.v5("no-user")
            b.password = utf8("token-only")
            return ValidVector("5.0 password without user name", b)
        }(),
        {
            let properties = Property.four(Property.sessionExpiryInterval, 0xFFFF_FFFF)
                + Property.string(Property.authenticationMethod, "SCRAM-SHA-256")
                + Property.binary(Property.authenticationData, [0x00, 0x01, 0xFF, 0x80])
                + Property.userProperty("k", "v1") + Property.userProperty("k", "v2")
                + Property.byte(Property.requestProblemInformation, 0)
            var b = ConnectBuilder.v5("auth-client", properties: properties)
            b.cleanSession = false
            b.username = utf8("")
            return ValidVector("5.0 authentication method and data, repeated user property", b)
        }(),
        {
            var b = ConnectBuilder.v5("capteur-é-温度-😀")
            b.will = .init(properties: [], topic: utf8("état/😀"), payload: [])
            return ValidVector("5.0 non-ASCII UTF-8 client id, will with no properties and empty payload", b)
        }(),
        {
            var b = ConnectBuilder.v5("big-will")
            b.will = .init(
                properties: Property.byte(Property.payloadFormatIndicator, 0)
                    + Property.binary(Property.correlationData, []),
                topic: utf8("t"), payload: (0..<20_000).map { UInt8(truncatingIfNeeded: $0) }, qos: 1)
            return ValidVector("5.0 20000-byte will payload (3-byte remaining length)", b)
        }(),
    ]

    static let valid = captured + built

    // MARK: invalid, one group per rule

    static let invalid: [InvalidVector] = {
        var vectors: [InvalidVector] = []
        func add(_ name: String, _ bytes: [UInt8], max: Int = 65536, _ reason: InvalidReason) {
            vectors.append(InvalidVector(name, bytes, connectMaxBytes: max, reason))
        }
        func add(_ name: String, _ builder: ConnectBuilder, max: Int = 65536, _ reason: InvalidReason) {
            vectors.append(InvalidVector(name, builder, connectMaxBytes: max, reason))
        }
        let good = mosquitto311.bytes

        // MQTT 3.1.1 §2.2, 5.0 §2.1.3: the first byte is exactly 0x10.
        add("HTTP request", utf8("GET / HTTP/1.1\r\nHost: broker\r\n\r\n"), .notConnect)
        add("TLS ClientHello", [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03], .notConnect)
        add("CONNECT type with flag bit set", [0x12] + good.dropFirst(), .notConnect)
        add("PUBLISH first", [0x30, 0x03, 0x00, 0x01, 0x74], .notConnect)
        add("PINGREQ first", [0xC0, 0x00], .notConnect)

        // MQTT 5.0 §1.5.5, 3.1.1 §2.2.3: at most 4 remaining-length bytes, minimally encoded.
        add("fifth remaining-length byte", [0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], max: .max, .malformedRemainingLength)
        add("remaining length 0x80 0x00", [0x10, 0x80, 0x00], .nonMinimalRemainingLength)
        add("23 encoded as 0x97 0x00", [0x10, 0x97, 0x00] + good.dropFirst(2), .nonMinimalRemainingLength)
        add("4-byte encoding of 0", [0x10, 0x80, 0x80, 0x80, 0x00], max: .max, .nonMinimalRemainingLength)

        // connectMaxBytes, checked as soon as the remaining length says so.
        add("one byte over connect-max-bytes", good, max: good.count - 1, .tooLarge)
        add("65538-byte CONNECT announced by its header alone", [0x10, 0xFE, 0xFF, 0x03], .tooLarge)
        add("4-byte remaining length cannot fit 65536", [0x10, 0x80, 0x80, 0x80], .tooLarge)
        add("fifth length byte with default limit", [0x10, 0xFF, 0xFF, 0xFF, 0xFF], .tooLarge)

        // MQTT 3.1.1 §3.1.2.1-§3.1.2.2, 5.0 §3.1.2.1-§3.1.2.2: name and level agree.
        var b = ConnectBuilder.v311("c")
        b.protocolName = utf8("MQTX")
        add("name MQTX", b, .badProtocolName)
        b.protocolName = utf8("mqtt")
        add("name in lower case", b, .badProtocolName)
        b.protocolName = utf8("MQTTv5")
        add("6-byte name other than MQIsdp", b, .badProtocolName)
        b.protocolName = utf8("MQTTT")
        add("5-byte name", b, .badProtocolName)
        b.protocolName = []
        add("empty name", b, .badProtocolName)

        b = .v311("c")
        b.protocolLevel = 6
        add("MQTT level 6", b, .badProtocolLevel)
        b.protocolLevel = 0
        add("MQTT level 0", b, .badProtocolLevel)
        b = .v31("c")
        b.protocolLevel = 0x83
        add("MQIsdp level 0x83 (mosquitto bridge bit)", b, .badProtocolLevel)

        b = .v31("c")
        b.protocolLevel = 4
        add("MQIsdp with level 4", b, .protocolNameLevelMismatch)
        b.protocolLevel = 5
        add("MQIsdp with level 5", b, .protocolNameLevelMismatch)
        b = .v311("c")
        b.protocolLevel = 3
        add("MQTT with level 3", b, .protocolNameLevelMismatch)

        // MQTT 3.1.1 §3.1.2.3, 5.0 §3.1.2.3: reserved flag.
        b = .v311("c")
        b.connectFlagsOverride = 0x03
        add("reserved flag, 3.1.1", b, .reservedFlagSet)
        b = .v5("c")
        b.connectFlagsOverride = 0x01
        add("reserved flag, 5.0", b, .reservedFlagSet)

        // MQTT 3.1.1 §3.1.2.6, 5.0 §3.1.2.6: will QoS 3.
        b = .v311("c")
        b.will = .init(topic: utf8("t"), payload: [], qos: 3)
        add("will QoS 3", b, .badWillQoS)

        // MQTT 3.1.1 §3.1.2.6-§3.1.2.7, 5.0 §3.1.2.6-§3.1.2.7: will QoS / retain need the will flag.
        b = .v311("c")
        b.connectFlagsOverride = 0x02 | 0x08
        add("will QoS 1 without will", b, .willFlagsWithoutWill)
        b.connectFlagsOverride = 0x02 | 0x20
        add("will retain without will", b, .willFlagsWithoutWill)
        b = .v5("c")
        b.connectFlagsOverride = 0x10
        add("will QoS 2 without will, 5.0", b, .willFlagsWithoutWill)

        // MQTT 3.1.1 §3.1.2.9: password needs a user name (allowed in 5.0).
        b = .v311("c")
        b.password = utf8("pw")
        add("password without user name, 3.1.1", b, .passwordWithoutUsername)
        b = .v31("c")
        b.password = utf8("pw")
        add("password without user name, 3.1", b, .passwordWithoutUsername)

        // Every length stays inside the packet.
        add("remaining length too short for the protocol name", [0x10, 0x02, 0x00, 0x04], .lengthOutOfBounds)
        add("remaining length 0", [0x10, 0x00], .lengthOutOfBounds)
        var truncated = good
        truncated[1] -= 1  // the client identifier now runs one byte past the packet
        add("client id past the packet end", Array(truncated.dropLast()), .lengthOutOfBounds)
        add("client id past the packet end, next packet already here", truncated + [0xC0, 0x00], .lengthOutOfBounds)
        b = .v311("c")
        b.username = utf8("u")
        var bytes = b.bytes
        bytes[bytes.count - 2] = 0x02  // user name length 2, only 1 byte left
        add("user name past the packet end", bytes, .lengthOutOfBounds)
        b = .v5("c")
        b.will = .init(topic: utf8("t"), payload: utf8("p"))
        bytes = b.bytes
        bytes[bytes.count - 3] = 0x7F  // will payload length 0x7F01
        add("will payload past the packet end", bytes, .lengthOutOfBounds)
        b = .v5("c", properties: Property.byte(Property.requestProblemInformation, 1))
        bytes = b.bytes
        bytes[12] = 0x40  // property length 64 > packet
        add("property length past the packet end", bytes, .lengthOutOfBounds)
        add("property length cut by the packet end", [UInt8](hex: "100b00044d5154540502003c80"), .lengthOutOfBounds)
        add("will flag but no will fields", [UInt8](hex: "101100044d5154540406003c0005636c69656e"), .lengthOutOfBounds)

        // Nothing left over inside the remaining length.
        b = .v311("c")
        b.trailing = [0x00]
        add("one byte after the last field", b, .trailingBytes)
        b = .v5("c")
        b.trailing = utf8("junk")
        add("junk after the client id, 5.0", b, .trailingBytes)
        b = .v311("c")
        b.trailing = ConnectBuilder.lengthPrefixed("user")  // user name without its flag
        add("user name without its flag", b, .trailingBytes)

        // MQTT 5.0 §2.2.2, §3.1.2.11, §3.1.3.2: properties.
        add("unknown id 0x0B (subscription identifier)", ConnectBuilder.v5("c", properties: [0x0B, 0x01]).bytes, .badProperties)
        add("id 0x00", ConnectBuilder.v5("c", properties: [0x00]).bytes, .badProperties)
        add("id 0x80 (multi-byte VBI identifier)", ConnectBuilder.v5("c", properties: [0x80, 0x01, 0x00]).bytes, .badProperties)
        add("will-only property in CONNECT", ConnectBuilder.v5("c", properties: Property.four(Property.willDelayInterval, 1)).bytes, .badProperties)
        b = .v5("c")
        b.will = .init(properties: Property.four(Property.sessionExpiryInterval, 1), topic: utf8("t"), payload: [])
        add("CONNECT-only property in will", b, .badProperties)
        add("session expiry twice", ConnectBuilder.v5("c", properties: Property.four(0x11, 1) + Property.four(0x11, 2)).bytes, .badProperties)
        b = .v5("c")
        b.will = .init(properties: Property.string(Property.contentType, "a") + Property.string(Property.contentType, "b"), topic: utf8("t"), payload: [])
        add("will content type twice", b, .badProperties)
        add("receive maximum 0", ConnectBuilder.v5("c", properties: Property.two(Property.receiveMaximum, 0)).bytes, .badProperties)
        add("maximum packet size 0", ConnectBuilder.v5("c", properties: Property.four(Property.maximumPacketSize, 0)).bytes, .badProperties)
        add("request problem information 2", ConnectBuilder.v5("c", properties: Property.byte(Property.requestProblemInformation, 2)).bytes, .badProperties)
        b = .v5("c")
        b.will = .init(properties: Property.byte(Property.payloadFormatIndicator, 7), topic: utf8("t"), payload: [])
        add("payload format indicator 7", b, .badProperties)
        add("authentication data without method", ConnectBuilder.v5("c", properties: Property.binary(Property.authenticationData, [1])).bytes, .badProperties)
        add("four-byte value cut by the property length", ConnectBuilder.v5("c", properties: [0x11, 0x00, 0x00]).bytes, .badProperties)
        add("string value overrunning the property length", ConnectBuilder.v5("c", properties: [0x15, 0x00, 0x09, 0x41]).bytes, .badProperties)
        add("non-minimal property length", [UInt8](hex: "100f00044d5154540502003c8000000163"), .badProperties)

        // MQTT 5.0 §1.5.4, 3.1.1 §1.5.3: well-formed UTF-8 without U+0000.
        add("U+0000 in client id", ConnectBuilder(clientIdentifier: [0x61, 0x00, 0x62]).bytes, .badUTF8)
        add("U+0000 in a long ASCII client id", ConnectBuilder(clientIdentifier: utf8("abcdefghijklmnop") + [0x00] + utf8("qrstuvwxyz")).bytes, .badUTF8)
        add("lone continuation byte", ConnectBuilder(clientIdentifier: [0x61, 0x80]).bytes, .badUTF8)
        add("surrogate U+D800", ConnectBuilder(clientIdentifier: [0xED, 0xA0, 0x80]).bytes, .badUTF8)
        add("overlong '/'", ConnectBuilder(clientIdentifier: [0xC0, 0xAF]).bytes, .badUTF8)
        add("overlong NUL", ConnectBuilder(clientIdentifier: [0xC0, 0x80]).bytes, .badUTF8)
        add("above U+10FFFF", ConnectBuilder(clientIdentifier: [0xF4, 0x90, 0x80, 0x80]).bytes, .badUTF8)
        add("truncated 3-byte sequence", ConnectBuilder(clientIdentifier: [0x61, 0xE2, 0x82]).bytes, .badUTF8)
        b = .v311("c")
        b.will = .init(topic: [0x74, 0xFF], payload: [0x00, 0xFF])  // the payload is binary: fine
        add("bad will topic", b, .badUTF8)
        b = .v311("c")
        b.username = [0xC3]
        add("bad user name", b, .badUTF8)
        add("bad content of a string property", ConnectBuilder.v5("c", properties: Property.userProperty("k", "v") + [0x26, 0x00, 0x01, 0x00, 0x00, 0x00]).bytes, .badUTF8)
        return vectors
    }()
}
