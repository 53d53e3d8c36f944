// The answer MQTTPeek gives about the first bytes of a connection: wait, drop, or a parsed CONNECT.
// Plain values only: the engine switches on them on the per-connection path and may log the reason.

/// What the bytes received so far on a new connection are.
public enum ConnectVerdict: Equatable, Sendable {
    /// Not enough bytes yet. `atLeast` is a lower bound on the total length of the packet
    /// (always `>= bytes.count + 1`); once the fixed header is complete it is exactly the
    /// packet length. A prefix of a valid CONNECT always gives this verdict.
    case needMore(atLeast: Int)
    /// The bytes already prove that this is not a valid CONNECT, whatever follows.
    case invalid(InvalidReason)
    /// A complete, valid CONNECT occupies bytes `[0, packet.packetLength)`.
    case connect(ConnectPacket)
}

/// Why the first packet was refused. Raw values are stable: they may be counted in stats.
public enum InvalidReason: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// The first byte is not 0x10 (CONNECT with flags 0): HTTP, TLS, another MQTT packet...
    case notConnect = 1
    /// The remaining length has a fifth continuation byte.
    case malformedRemainingLength = 2
    /// The remaining length uses more bytes than its value needs (e.g. `0x80 0x00`).
    case nonMinimalRemainingLength = 3
    /// The packet is longer than `connectMaxBytes`.
    case tooLarge = 4
    /// The protocol name is neither "MQTT" nor "MQIsdp".
    case badProtocolName = 5
    /// The protocol level is not 3, 4 or 5.
    case badProtocolLevel = 6
    /// "MQIsdp" with a level other than 3, or "MQTT" with level 3.
    case protocolNameLevelMismatch = 7
    /// Bit 0 of the connect flags is set.
    case reservedFlagSet = 8
    /// Will QoS is 3.
    case badWillQoS = 9
    /// Will QoS or will retain is set while the will flag is not.
    case willFlagsWithoutWill = 10
    /// The password flag without the user name flag (MQTT 3.1 and 3.1.1 only).
    case passwordWithoutUsername = 11
    /// A length field points past the end of the packet.
    case lengthOutOfBounds = 12
    /// Bytes are left inside the remaining length after the last field.
    case trailingBytes = 13
    /// An MQTT 5 property block is malformed: unknown or misplaced identifier, a property
    /// repeated where the spec forbids it, a value out of range, or a value overrunning the block.
    case badProperties = 14
    /// A UTF-8 string field is not well-formed UTF-8 or contains U+0000.
    case badUTF8 = 15

    public var description: String {
        switch self {
        case .notConnect: "first packet is not an MQTT CONNECT (first byte must be 0x10)"
        case .malformedRemainingLength: "malformed remaining length (more than 4 bytes)"
        case .nonMinimalRemainingLength: "remaining length not encoded in the minimum number of bytes"
        case .tooLarge: "CONNECT larger than connect-max-bytes"
        case .badProtocolName: "unknown protocol name (expected MQTT or MQIsdp)"
        case .badProtocolLevel: "unsupported protocol level (expected 3, 4 or 5)"
        case .protocolNameLevelMismatch: "protocol name does not match protocol level"
        case .reservedFlagSet: "reserved connect flag is set"
        case .badWillQoS: "will QoS is 3"
        case .willFlagsWithoutWill: "will QoS or will retain set without the will flag"
        case .passwordWithoutUsername: "password without user name (MQTT 3.1/3.1.1)"
        case .lengthOutOfBounds: "a field runs past the end of the CONNECT"
        case .trailingBytes: "bytes left over at the end of the CONNECT"
        case .badProperties: "malformed, unknown, repeated or out-of-range MQTT 5 property"
        case .badUTF8: "string field is not well-formed UTF-8 or contains U+0000"
        }
    }
}
