// Finds one MQTT 5 property in a CONNECT that MQTTPeek already validated: a walk over the
// property block (CONNECT properties or will properties, by identifier) without copying or
// allocating. Only ever called on a packet parseConnect accepted, so lengths are trusted.

/// The value of one property: a number (byte, two- or four-byte integer), bytes (a UTF-8 string
/// or binary data; offsets into the parsed buffer), or absent.
public enum ConnectPropertyValue: Equatable, Sendable {
    case absent
    case integer(UInt32)
    case bytes(Range<Int>)
}

extension ConnectPacket {
    /// MQTT 5.0 §3.1.3.2: the properties that belong to the will, not to the connection.
    @inlinable
    public static func isWillProperty(_ identifier: UInt8) -> Bool {
        PropertySet.will & PropertySet.bit(identifier) != 0
    }

    /// The value of property `identifier` in the CONNECT (or will) properties of this packet,
    /// read from `buffer`, the bytes it was parsed from. Absent before MQTT 5, without a will for
    /// a will property, or when the client did not send it.
    @inlinable
    public func property(_ identifier: UInt8, in buffer: UnsafeRawBufferPointer) -> ConnectPropertyValue {
        guard protocolLevel == 5 else { return .absent }
        let block: Range<Int>
        if Self.isWillProperty(identifier) {
            guard let will = willProperties else { return .absent }
            block = will
        } else {
            block = properties
        }
        precondition(block.upperBound <= buffer.count, "properties outside the parsed buffer")
        let base = buffer.baseAddress!
        var position = block.lowerBound
        let end = block.upperBound
        func uint16(_ at: Int) -> Int {
            Int(base.load(fromByteOffset: at, as: UInt8.self)) << 8 | Int(base.load(fromByteOffset: at + 1, as: UInt8.self))
        }
        while position < end {
            let id = base.load(fromByteOffset: position, as: UInt8.self)
            position += 1
            let valueLength: Int
            let value: ConnectPropertyValue
            switch id {
            case 0x01, 0x17, 0x19:
                valueLength = 1
                value = .integer(UInt32(base.load(fromByteOffset: position, as: UInt8.self)))
            case 0x21, 0x22:
                valueLength = 2
                value = .integer(UInt32(uint16(position)))
            case 0x02, 0x11, 0x18, 0x27:
                valueLength = 4
                value = .integer(UInt32(uint16(position)) << 16 | UInt32(uint16(position + 2)))
            case 0x03, 0x08, 0x09, 0x15, 0x16:
                // MQTT 5.0 §1.5.4, §1.5.6: two-byte length, then the bytes.
                let length = uint16(position)
                valueLength = 2 + length
                value = .bytes(position + 2..<position + 2 + length)
            case 0x26:
                // A string pair (§1.5.7): never what is looked for here.
                let keyLength = uint16(position)
                valueLength = 2 + keyLength + 2 + uint16(position + 2 + keyLength)
                value = .absent
            default:
                // parseConnect accepts no other identifier.
                return .absent
            }
            if id == identifier { return value }
            position += valueLength
        }
        return .absent
    }
}
