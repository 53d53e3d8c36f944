// The read position inside one CONNECT and the only place that checks bounds. Each read is one
// comparison in the common case; when it fails, the cursor records whether the packet itself is
// too short (an invalid reason) or only the bytes received so far are (need more).

@usableFromInline
struct ConnectCursor {
    @usableFromInline let base: UnsafeRawPointer
    /// End of the packet (fixed header + remaining length).
    @usableFromInline let packetEnd: Int
    /// `min(bytes received, packetEnd)`: nothing at or past this offset is ever read.
    @usableFromInline let available: Int
    @usableFromInline var position: Int
    /// Why the last failed read failed: an invalid reason, or nil for "need more bytes".
    @usableFromInline var failure: InvalidReason?

    @inlinable @inline(__always)
    init(base: UnsafeRawPointer, position: Int, packetEnd: Int, received: Int) {
        self.base = base
        self.position = position
        self.packetEnd = packetEnd
        self.available = Swift.min(received, packetEnd)
        self.failure = nil
    }

    /// The verdict after a failed read.
    @inlinable
    var stop: ConnectVerdict {
        if let reason = failure { return .invalid(reason) }
        return .needMore(atLeast: packetEnd)
    }

    /// Advances over `count` bytes that must end at or before `limit` (the packet end, or the end
    /// of a property block) and returns their offset. Past `limit` the packet is invalid with
    /// `overrun`; inside it but past the received bytes, more bytes are needed.
    @inlinable @inline(__always)
    mutating func take(_ count: Int, limit: Int, overrun: InvalidReason) -> Int? {
        let start = position
        let next = start &+ count
        if _slowPath(next > Swift.min(limit, available)) {
            failure = next > limit ? overrun : nil
            return nil
        }
        position = next
        return start
    }

    @inlinable @inline(__always)
    mutating func take(_ count: Int) -> Int? {
        take(count, limit: packetEnd, overrun: .lengthOutOfBounds)
    }

    @inlinable @inline(__always)
    func byte(at offset: Int) -> UInt8 {
        assert(offset >= 0 && offset < available)
        return base.load(fromByteOffset: offset, as: UInt8.self)
    }

    /// MQTT 3.1.1 §1.5.2, 5.0 §1.5.2: big-endian two byte integer.
    @inlinable @inline(__always)
    func uint16(at offset: Int) -> UInt16 {
        assert(offset >= 0 && offset + 2 <= available)
        return UInt16(bigEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    /// MQTT 5.0 §1.5.3: big-endian four byte integer.
    @inlinable @inline(__always)
    func uint32(at offset: Int) -> UInt32 {
        assert(offset >= 0 && offset + 4 <= available)
        return UInt32(bigEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// A two-byte length followed by that many bytes (MQTT 5.0 §1.5.6 binary data, 3.1.1 §1.5.3
    /// and 5.0 §1.5.4 UTF-8 strings when `utf8` is true). Returns the content's range.
    @inlinable @inline(__always)
    mutating func takeLengthPrefixed(utf8: Bool, limit: Int, overrun: InvalidReason) -> ByteRange? {
        guard let lengthAt = take(2, limit: limit, overrun: overrun) else { return nil }
        let length = Int(uint16(at: lengthAt))
        guard let start = take(length, limit: limit, overrun: overrun) else { return nil }
        let end = start &+ length
        if utf8 && !MQTTString.isValid(base, from: start, to: end) {
            failure = .badUTF8
            return nil
        }
        return ByteRange(start: start, end: end)
    }

    @inlinable @inline(__always)
    mutating func takeString() -> ByteRange? {
        takeLengthPrefixed(utf8: true, limit: packetEnd, overrun: .lengthOutOfBounds)
    }

    @inlinable @inline(__always)
    mutating func takeBinary() -> ByteRange? {
        takeLengthPrefixed(utf8: false, limit: packetEnd, overrun: .lengthOutOfBounds)
    }
}
