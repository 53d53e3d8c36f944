// Test-side encoder of CONNECT packets, written from the spec independently of the parser, so
// that valid vectors can be built field by field and invalid ones by breaking exactly one rule.
// It is checked against bytes captured from mosquitto_pub (ValidConnectTests).

import MQTTPeek

struct ConnectBuilder {
    var protocolName: [UInt8] = Array("MQTT".utf8)
    var protocolLevel: UInt8 = 4
    /// When set, written as is instead of the flags the fields imply.
    var connectFlagsOverride: UInt8? = nil
    var cleanSession = true
    var keepAliveSeconds: UInt16 = 60
    /// Raw property bytes (MQTT 5 only); written after a property length.
    var properties: [UInt8] = []
    var clientIdentifier: [UInt8] = []
    var will: Will? = nil
    var username: [UInt8]? = nil
    var password: [UInt8]? = nil
    /// Extra bytes counted in the remaining length after the last field.
    var trailing: [UInt8] = []

    struct Will {
        var properties: [UInt8] = []
        var topic: [UInt8]
        var payload: [UInt8]
        var qos: UInt8 = 0
        var retain = false
    }

    static func v31(_ clientIdentifier: String) -> ConnectBuilder {
        var builder = ConnectBuilder(clientIdentifier: Array(clientIdentifier.utf8))
        builder.protocolName = Array("MQIsdp".utf8)
        builder.protocolLevel = 3
        return builder
    }

    static func v311(_ clientIdentifier: String) -> ConnectBuilder {
        ConnectBuilder(clientIdentifier: Array(clientIdentifier.utf8))
    }

    static func v5(_ clientIdentifier: String, properties: [UInt8] = []) -> ConnectBuilder {
        var builder = ConnectBuilder(clientIdentifier: Array(clientIdentifier.utf8))
        builder.protocolLevel = 5
        builder.properties = properties
        return builder
    }

    var connectFlags: UInt8 {
        if let connectFlagsOverride { return connectFlagsOverride }
        var flags: UInt8 = cleanSession ? 0x02 : 0
        if let will {
            flags |= 0x04 | (will.qos << 3) | (will.retain ? 0x20 : 0)
        }
        if password != nil { flags |= 0x40 }
        if username != nil { flags |= 0x80 }
        return flags
    }

    /// The variable header and payload, i.e. what the remaining length counts.
    var body: [UInt8] {
        var out: [UInt8] = []
        out += Self.lengthPrefixed(protocolName)
        out.append(protocolLevel)
        out.append(connectFlags)
        out += Self.uint16(keepAliveSeconds)
        if protocolLevel == 5 { out += Self.vbi(properties.count) + properties }
        out += Self.lengthPrefixed(clientIdentifier)
        if let will {
            if protocolLevel == 5 { out += Self.vbi(will.properties.count) + will.properties }
            out += Self.lengthPrefixed(will.topic)
            out += Self.lengthPrefixed(will.payload)
        }
        if let username { out += Self.lengthPrefixed(username) }
        if let password { out += Self.lengthPrefixed(password) }
        out += trailing
        return out
    }

    var bytes: [UInt8] {
        let body = body
        return [0x10] + Self.vbi(body.count) + body
    }

    // MARK: encoders (MQTT 5.0 §1.5)

    static func uint16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }
    static func uint32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }
    static func lengthPrefixed(_ bytes: [UInt8]) -> [UInt8] { uint16(UInt16(bytes.count)) + bytes }
    static func lengthPrefixed(_ string: String) -> [UInt8] { lengthPrefixed(Array(string.utf8)) }

    /// Minimal Variable Byte Integer (§1.5.5).
    static func vbi(_ value: Int) -> [UInt8] {
        precondition(value >= 0 && value <= 268_435_455)
        var value = value
        var out: [UInt8] = []
        repeat {
            var byte = UInt8(value % 128)
            value /= 128
            if value > 0 { byte |= 0x80 }
            out.append(byte)
        } while value > 0
        return out
    }
}

/// MQTT 5 property encoders for building property blocks in tests.
enum Property {
    static func byte(_ id: UInt8, _ value: UInt8) -> [UInt8] { [id, value] }
    static func two(_ id: UInt8, _ value: UInt16) -> [UInt8] { [id] + ConnectBuilder.uint16(value) }
    static func four(_ id: UInt8, _ value: UInt32) -> [UInt8] { [id] + ConnectBuilder.uint32(value) }
    static func string(_ id: UInt8, _ value: String) -> [UInt8] { [id] + ConnectBuilder.lengthPrefixed(value) }
    static func binary(_ id: UInt8, _ value: [UInt8]) -> [UInt8] { [id] + ConnectBuilder.lengthPrefixed(value) }
    static func userProperty(_ key: String, _ value: String) -> [UInt8] {
        [0x26] + ConnectBuilder.lengthPrefixed(key) + ConnectBuilder.lengthPrefixed(value)
    }

    static let sessionExpiryInterval: UInt8 = 0x11
    static let receiveMaximum: UInt8 = 0x21
    static let maximumPacketSize: UInt8 = 0x27
    static let topicAliasMaximum: UInt8 = 0x22
    static let requestResponseInformation: UInt8 = 0x19
    static let requestProblemInformation: UInt8 = 0x17
    static let authenticationMethod: UInt8 = 0x15
    static let authenticationData: UInt8 = 0x16
    static let willDelayInterval: UInt8 = 0x18
    static let payloadFormatIndicator: UInt8 = 0x01
    static let messageExpiryInterval: UInt8 = 0x02
    static let contentType: UInt8 = 0x03
    static let responseTopic: UInt8 = 0x08
    static let correlationData: UInt8 = 0x09
}

extension Array where Element == UInt8 {
    init(hex: String) {
        let digits = Array(hex.utf8).filter { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\n") }
        precondition(digits.count % 2 == 0, "odd hex string")
        func nibble(_ c: UInt8) -> UInt8 {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: preconditionFailure("not hex: \(c)")
            }
        }
        self = stride(from: 0, to: digits.count, by: 2).map { nibble(digits[$0]) << 4 | nibble(digits[$0 + 1]) }
    }
}

/// Parses `bytes` from a heap buffer of exactly their size, so that AddressSanitizer catches a
/// read one byte past the input (an Array's storage is usually larger than its count).
func parseExact<C: Collection>(_ bytes: C, connectMaxBytes: Int = 65536) -> ConnectVerdict where C.Element == UInt8 {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
    defer { buffer.deallocate() }
    let copied: Bool? = bytes.withContiguousStorageIfAvailable { storage in
        buffer.copyMemory(from: UnsafeRawBufferPointer(storage))
        return true
    }
    if copied == nil { _ = buffer.initializeMemory(as: UInt8.self, from: bytes) }
    return MQTTPeek.parseConnect(UnsafeRawBufferPointer(buffer), connectMaxBytes: connectMaxBytes)
}
