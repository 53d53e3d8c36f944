// A parsed CONNECT as offsets into the caller's buffer: nothing is copied, so the value is only
// meaningful together with the bytes it was parsed from. Offsets are stored as UInt32 pairs (a
// packet is at most 268,435,460 bytes) so the value is 64 bytes and returns without a memcpy.

/// A valid CONNECT. Every `Range` is a byte offset range into the buffer given to
/// `MQTTPeek.parseConnect`, and lies inside `0..<packetLength`.
public struct ConnectPacket: Equatable, Sendable {
    @usableFromInline var storedPacketLength: UInt32
    /// 3 (MQTT 3.1), 4 (MQTT 3.1.1) or 5 (MQTT 5.0).
    public var protocolLevel: UInt8
    public var connectFlags: UInt8
    public var keepAliveSeconds: UInt16
    @usableFromInline var storedProperties: ByteRange
    @usableFromInline var storedClientIdentifier: ByteRange
    @usableFromInline var storedWillProperties: ByteRange
    @usableFromInline var storedWillTopic: ByteRange
    @usableFromInline var storedWillPayload: ByteRange
    @usableFromInline var storedUsername: ByteRange
    @usableFromInline var storedPassword: ByteRange

    @inlinable
    public init(
        packetLength: Int, protocolLevel: UInt8, connectFlags: UInt8, keepAliveSeconds: UInt16,
        properties: Range<Int>, clientIdentifier: Range<Int>,
        willProperties: Range<Int>? = nil, willTopic: Range<Int>? = nil, willPayload: Range<Int>? = nil,
        username: Range<Int>? = nil, password: Range<Int>? = nil
    ) {
        self.init(
            packetLength: ByteRange.offset(packetLength), protocolLevel: protocolLevel, connectFlags: connectFlags,
            keepAliveSeconds: keepAliveSeconds, properties: ByteRange(properties),
            clientIdentifier: ByteRange(clientIdentifier), willProperties: ByteRange(willProperties),
            willTopic: ByteRange(willTopic), willPayload: ByteRange(willPayload), username: ByteRange(username),
            password: ByteRange(password))
    }

    @inlinable @inline(__always)
    init(
        packetLength: UInt32, protocolLevel: UInt8, connectFlags: UInt8, keepAliveSeconds: UInt16,
        properties: ByteRange, clientIdentifier: ByteRange, willProperties: ByteRange, willTopic: ByteRange,
        willPayload: ByteRange, username: ByteRange, password: ByteRange
    ) {
        self.storedPacketLength = packetLength
        self.protocolLevel = protocolLevel
        self.connectFlags = connectFlags
        self.keepAliveSeconds = keepAliveSeconds
        self.storedProperties = properties
        self.storedClientIdentifier = clientIdentifier
        self.storedWillProperties = willProperties
        self.storedWillTopic = willTopic
        self.storedWillPayload = willPayload
        self.storedUsername = username
        self.storedPassword = password
    }

    /// Fixed header + remaining length: bytes `[0, packetLength)` are the CONNECT.
    @inlinable public var packetLength: Int {
        get { Int(storedPacketLength) }
        set { storedPacketLength = ByteRange.offset(newValue) }
    }
    /// MQTT 5 CONNECT properties (their content, without the property length); an empty range
    /// where they would start for MQTT 3.x.
    @inlinable public var properties: Range<Int> {
        get { storedProperties.range }
        set { storedProperties = ByteRange(newValue) }
    }
    /// May be empty (MQTT 3.1.1 §3.1.3.1, 5.0 §3.1.3.1).
    @inlinable public var clientIdentifier: Range<Int> {
        get { storedClientIdentifier.range }
        set { storedClientIdentifier = ByteRange(newValue) }
    }
    /// MQTT 5 will properties (content, without their length); nil without a will or before MQTT 5.
    @inlinable public var willProperties: Range<Int>? {
        get { storedWillProperties.optionalRange }
        set { storedWillProperties = ByteRange(newValue) }
    }
    @inlinable public var willTopic: Range<Int>? {
        get { storedWillTopic.optionalRange }
        set { storedWillTopic = ByteRange(newValue) }
    }
    @inlinable public var willPayload: Range<Int>? {
        get { storedWillPayload.optionalRange }
        set { storedWillPayload = ByteRange(newValue) }
    }
    @inlinable public var username: Range<Int>? {
        get { storedUsername.optionalRange }
        set { storedUsername = ByteRange(newValue) }
    }
    @inlinable public var password: Range<Int>? {
        get { storedPassword.optionalRange }
        set { storedPassword = ByteRange(newValue) }
    }
}

extension ConnectPacket {
    // MQTT 3.1.1 §3.1.2.3 / 5.0 §3.1.2.3: connect flag bits.
    @inlinable public var cleanSession: Bool { connectFlags & 0x02 != 0 }  // "clean start" in 5.0
    @inlinable public var hasWill: Bool { connectFlags & 0x04 != 0 }
    @inlinable public var willQoS: UInt8 { (connectFlags &>> 3) & 0x03 }
    @inlinable public var willRetain: Bool { connectFlags & 0x20 != 0 }
    @inlinable public var hasPassword: Bool { connectFlags & 0x40 != 0 }
    @inlinable public var hasUsername: Bool { connectFlags & 0x80 != 0 }

    /// "MQIsdp" for MQTT 3.1, "MQTT" otherwise (the parser accepts no other pairing). A literal:
    /// no allocation.
    @inlinable public var protocolName: String { protocolLevel == 3 ? "MQIsdp" : "MQTT" }
}

/// A byte range as two UInt32 offsets; `absent` (both UInt32.max) stands for nil.
@usableFromInline
struct ByteRange: Equatable, Sendable {
    @usableFromInline var start: UInt32
    @usableFromInline var end: UInt32

    @inlinable @inline(__always)
    init(start: UInt32, end: UInt32) {
        self.start = start
        self.end = end
    }

    /// From parser offsets, which are below 2^29 by construction (MQTT 5.0 §1.5.5).
    @inlinable @inline(__always)
    init(start: Int, end: Int) {
        self.init(start: UInt32(truncatingIfNeeded: start), end: UInt32(truncatingIfNeeded: end))
    }

    @inlinable static var absent: ByteRange { ByteRange(start: UInt32.max, end: UInt32.max) }

    @inlinable
    static func offset(_ value: Int) -> UInt32 {
        precondition(value >= 0 && value < Int(UInt32.max), "offset outside 0..<UInt32.max")
        return UInt32(truncatingIfNeeded: value)
    }

    @inlinable
    init(_ range: Range<Int>) {
        self.init(start: ByteRange.offset(range.lowerBound), end: ByteRange.offset(range.upperBound))
    }

    @inlinable
    init(_ range: Range<Int>?) {
        if let range { self.init(range) } else { self = .absent }
    }

    @inlinable var range: Range<Int> {
        Range(uncheckedBounds: (Int(start), Int(end)))
    }

    @inlinable var optionalRange: Range<Int>? {
        start == UInt32.max ? nil : range
    }
}

extension MQTTPeek {
    /// The bytes of `range` (a field of a `ConnectPacket`) inside the buffer it was parsed from,
    /// without copying.
    @inlinable
    public static func bytes(_ range: Range<Int>, in buffer: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        precondition(range.lowerBound >= 0 && range.upperBound <= buffer.count, "range outside the parsed buffer")
        return UnsafeRawBufferPointer(rebasing: buffer[range])
    }
}
