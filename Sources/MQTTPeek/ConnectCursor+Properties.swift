// MQTT 5 property blocks (CONNECT properties, will properties): every property is skipped by its
// own type and its identifier checked against the set allowed in that block. Values are checked
// only where the spec makes a value a protocol error; nothing is decoded for the caller.

@usableFromInline
enum PropertySet {
    /// MQTT 5.0 §3.1.2.11: identifiers allowed among the CONNECT properties.
    @inlinable static var connect: UInt64 {
        bit(0x11) | bit(0x15) | bit(0x16) | bit(0x17) | bit(0x19) | bit(0x21) | bit(0x22) | bit(0x26) | bit(0x27)
    }
    /// MQTT 5.0 §3.1.3.2: identifiers allowed among the will properties.
    @inlinable static var will: UInt64 {
        bit(0x01) | bit(0x02) | bit(0x03) | bit(0x08) | bit(0x09) | bit(0x18) | bit(0x26)
    }
    /// Only the user property may appear more than once (§3.1.2.11.8, §3.1.3.2.8); every other
    /// one "more than once" is a protocol error.
    @inlinable static var repeatable: UInt64 { bit(0x26) }

    @inlinable @inline(__always)
    static func bit(_ identifier: UInt8) -> UInt64 {
        identifier < 64 ? UInt64(1) &<< UInt64(identifier) : 0
    }

    @inlinable static var authenticationMethod: UInt8 { 0x15 }
    @inlinable static var authenticationData: UInt8 { 0x16 }
}

extension ConnectCursor {
    /// Reads a property length and the properties it covers; returns the range of the properties
    /// (without the length). `allowed` is a `PropertySet` mask.
    @inlinable
    mutating func takeProperties(allowed: UInt64) -> ByteRange? {
        // MQTT 5.0 §2.2.2.1: the property length is a Variable Byte Integer.
        let length = VariableByteInteger(decoding: base, at: position, readableEnd: available)
        switch length.status {
        case .complete:
            break
        case .incomplete:
            // Every readable byte continues: wait, unless it is the packet that ends there.
            failure = available == packetEnd ? .lengthOutOfBounds : nil
            return nil
        case .malformed, .nonMinimal:
            failure = .badProperties
            return nil
        }
        let start = position &+ length.length
        let end = start &+ length.value
        if end > packetEnd {
            failure = .lengthOutOfBounds
            return nil
        }
        position = start
        var seen: UInt64 = 0
        while position < end {
            guard let identifierAt = take(1, limit: end, overrun: .badProperties) else { return nil }
            // MQTT 5.0 §2.2.2.2: the identifier is a Variable Byte Integer, but every defined one
            // is below 0x40, so a byte >= 0x40 (including any multi-byte form) is unknown.
            let identifier = byte(at: identifierAt)
            let bit = PropertySet.bit(identifier)
            if allowed & bit == 0 || seen & bit & ~PropertySet.repeatable != 0 {
                failure = .badProperties
                return nil
            }
            seen |= bit
            guard skipPropertyValue(identifier, limit: end) else { return nil }
        }
        // MQTT 5.0 §3.1.2.11.10: authentication data without an authentication method.
        if seen & PropertySet.bit(PropertySet.authenticationData) != 0
            && seen & PropertySet.bit(PropertySet.authenticationMethod) == 0
        {
            failure = .badProperties
            return nil
        }
        return ByteRange(start: start, end: end)
    }

    /// Skips the value of property `identifier`, which must end at or before `limit`.
    @inlinable @inline(__always)
    mutating func skipPropertyValue(_ identifier: UInt8, limit: Int) -> Bool {
        let overrun = InvalidReason.badProperties
        switch identifier {
        case 0x01, 0x17, 0x19:
            // Byte, 0 or 1: §3.1.3.2.3 payload format indicator, §3.1.2.11.7 request problem
            // information, §3.1.2.11.6 request response information.
            guard let at = take(1, limit: limit, overrun: overrun) else { return false }
            if byte(at: at) > 1 {
                failure = .badProperties
                return false
            }
        case 0x21, 0x22:
            // Two byte integer: §3.1.2.11.3 receive maximum (0 is a protocol error),
            // §3.1.2.11.5 topic alias maximum.
            guard let at = take(2, limit: limit, overrun: overrun) else { return false }
            if identifier == 0x21 && uint16(at: at) == 0 {
                failure = .badProperties
                return false
            }
        case 0x02, 0x11, 0x18, 0x27:
            // Four byte integer: §3.1.3.2.4 message expiry interval, §3.1.2.11.2 session expiry
            // interval, §3.1.3.2.2 will delay interval, §3.1.2.11.4 maximum packet size (0 is a
            // protocol error).
            guard let at = take(4, limit: limit, overrun: overrun) else { return false }
            if identifier == 0x27 && uint32(at: at) == 0 {
                failure = .badProperties
                return false
            }
        case 0x03, 0x08, 0x15:
            // UTF-8 string: §3.1.3.2.5 content type, §3.1.3.2.6 response topic,
            // §3.1.2.11.9 authentication method.
            guard takeLengthPrefixed(utf8: true, limit: limit, overrun: overrun) != nil else { return false }
        case 0x09, 0x16:
            // Binary data: §3.1.3.2.7 correlation data, §3.1.2.11.10 authentication data.
            guard takeLengthPrefixed(utf8: false, limit: limit, overrun: overrun) != nil else { return false }
        case 0x26:
            // UTF-8 string pair (§1.5.7): §3.1.2.11.8, §3.1.3.2.8 user property.
            guard takeLengthPrefixed(utf8: true, limit: limit, overrun: overrun) != nil,
                takeLengthPrefixed(utf8: true, limit: limit, overrun: overrun) != nil
            else { return false }
        default:
            // Not reachable behind the allowed sets; refuse rather than guess a length.
            failure = .badProperties
            return false
        }
        return true
    }
}
