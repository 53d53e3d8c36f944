// The parser of a connection's first packet: bytes in, ConnectVerdict out. It reads only the
// buffer it is given and only up to the end of the first packet; it never allocates, throws,
// recurses or copies. Everything is @inlinable so that the engine's module specialises it.

/// Peeks at the first packet of an MQTT connection (3.1, 3.1.1 or 5.0), which must be a CONNECT.
public enum MQTTPeek {
    /// Parses the first packet of a connection from the bytes received so far.
    ///
    /// The parse is incremental in effect: a check runs as soon as the bytes it needs are there,
    /// so a prefix that already proves the packet invalid gives `.invalid`, and a prefix of a
    /// valid CONNECT gives `.needMore`. Bytes after the packet (the next packet) are not read.
    ///
    /// - Parameters:
    ///   - bytes: the bytes received so far, starting with the connection's first byte.
    ///   - connectMaxBytes: the largest CONNECT accepted, fixed header included.
    @inlinable
    public static func parseConnect(_ bytes: UnsafeRawBufferPointer, connectMaxBytes: Int = 65536) -> ConnectVerdict {
        let received = bytes.count
        guard received > 0, let base = bytes.baseAddress else { return .needMore(atLeast: 2) }

        // MQTT 3.1.1 §2.2.1-§2.2.2, 5.0 §2.1.2-§2.1.3: packet type 1 (CONNECT), flags 0000.
        // Catches plain HTTP ("GET /", 0x47) and TLS (a ClientHello record starts 0x16) at once.
        guard base.load(as: UInt8.self) == 0x10 else { return .invalid(.notConnect) }

        // MQTT 3.1.1 §2.2.3, 5.0 §2.1.4 and §1.5.5: the remaining length, 1 to 4 bytes.
        let remaining = VariableByteInteger(decoding: base, at: 1, readableEnd: received)
        // The number of length bytes alone bounds the packet from below (the last byte of a
        // minimal encoding is not 0), so an oversized CONNECT is refused before it is complete.
        // This comes first so that every prefix of an input gives the same reason as the whole.
        let lowerBound = VariableByteInteger.minimumPacketLength(continuationBytes: remaining.continuationBytes)
        if lowerBound > connectMaxBytes { return .invalid(.tooLarge) }
        if _slowPath(remaining.status != .complete) {
            switch remaining.status {
            case .incomplete: return .needMore(atLeast: Swift.max(lowerBound, received &+ 1))
            case .malformed: return .invalid(.malformedRemainingLength)
            case .nonMinimal: return .invalid(.nonMinimalRemainingLength)  // MQTT 5.0 [MQTT-1.5.5-1]
            case .complete: break
            }
        }
        let packetLength = 1 &+ remaining.length &+ remaining.value
        if packetLength > connectMaxBytes { return .invalid(.tooLarge) }

        var cursor = ConnectCursor(
            base: base, position: 1 &+ remaining.length, packetEnd: packetLength, received: received)
        return parseVariableHeaderAndPayload(&cursor)
    }

    /// Everything after the fixed header. Every read goes through `cursor`, which decides between
    /// "invalid" (a field runs past the packet) and "need more" (past the bytes received).
    @inlinable @inline(__always)
    static func parseVariableHeaderAndPayload(_ cursor: inout ConnectCursor) -> ConnectVerdict {
        // MQTT 3.1.1 §3.1.2.1, 5.0 §3.1.2.1: protocol name, a string "MQTT" ("MQIsdp" in 3.1);
        // then the level (§3.1.2.2), the connect flags (§3.1.2.3) and keep alive (§3.1.2.10).
        guard let nameLengthAt = cursor.take(2) else { return cursor.stop }
        let nameLength = Int(cursor.uint16(at: nameLengthAt))
        guard nameLength == 4 || nameLength == 6 else { return .invalid(.badProtocolName) }
        guard let nameAt = cursor.take(nameLength &+ 4) else { return cursor.stop }
        let level = cursor.byte(at: nameAt &+ nameLength)
        let flags = cursor.byte(at: nameAt &+ nameLength &+ 1)
        let keepAliveSeconds = cursor.uint16(at: nameAt &+ nameLength &+ 2)

        // Names and levels pair up as "MQIsdp"/3, "MQTT"/4 and "MQTT"/5, nothing else.
        let head = UInt32(littleEndian: cursor.base.loadUnaligned(fromByteOffset: nameAt, as: UInt32.self))
        if nameLength == 4 {
            guard head == 0x5454_514D else { return .invalid(.badProtocolName) }  // "MQTT"
            guard level == 4 || level == 5 else {
                return .invalid(level == 3 ? .protocolNameLevelMismatch : .badProtocolLevel)
            }
        } else {
            let tail = UInt16(littleEndian: cursor.base.loadUnaligned(fromByteOffset: nameAt &+ 4, as: UInt16.self))
            guard head == 0x7349_514D, tail == 0x7064 else { return .invalid(.badProtocolName) }  // "MQIsdp"
            guard level == 3 else {
                return .invalid(level == 4 || level == 5 ? .protocolNameLevelMismatch : .badProtocolLevel)
            }
        }

        // MQTT 3.1.1 §3.1.2.3, 5.0 §3.1.2.3: the reserved bit must be 0.
        if flags & 0x01 != 0 { return .invalid(.reservedFlagSet) }
        // MQTT 3.1.1 §3.1.2.6, 5.0 §3.1.2.6: will QoS 3 is malformed.
        if flags & 0x18 == 0x18 { return .invalid(.badWillQoS) }
        // MQTT 3.1.1 §3.1.2.6-§3.1.2.7, 5.0 §3.1.2.6-§3.1.2.7: without the will flag, will QoS
        // and will retain must be 0.
        let hasWill = flags & 0x04 != 0
        if !hasWill && flags & 0x38 != 0 { return .invalid(.willFlagsWithoutWill) }
        // MQTT 3.1.1 §3.1.2.9 (and 3.1): no password without a user name.
        // MQTT 5.0 §3.1.2.9 allows it.
        let hasUsername = flags & 0x80 != 0
        let hasPassword = flags & 0x40 != 0
        if hasPassword && !hasUsername && level < 5 { return .invalid(.passwordWithoutUsername) }

        // MQTT 5.0 §3.1.2.11: CONNECT properties.
        var properties = ByteRange(start: cursor.position, end: cursor.position)
        if level == 5 {
            guard let range = cursor.takeProperties(allowed: PropertySet.connect) else { return cursor.stop }
            properties = range
        }

        // Payload, in this order: MQTT 3.1.1 §3.1.3, 5.0 §3.1.3.
        // Client identifier (3.1.1 §3.1.3.1, 5.0 §3.1.3.1): always there, may be empty. (3.1 asks
        // for 1 to 23 characters, but that is for the broker to refuse with a CONNACK.)
        guard let clientIdentifier = cursor.takeString() else { return cursor.stop }

        var willProperties = ByteRange.absent
        var willTopic = ByteRange.absent
        var willPayload = ByteRange.absent
        if hasWill {
            if level == 5 {  // 5.0 §3.1.3.2
                guard let range = cursor.takeProperties(allowed: PropertySet.will) else { return cursor.stop }
                willProperties = range
            }
            // Will topic: 3.1.1 §3.1.3.2, 5.0 §3.1.3.3. Will message/payload (binary data):
            // 3.1.1 §3.1.3.3, 5.0 §3.1.3.4.
            guard let topic = cursor.takeString() else { return cursor.stop }
            guard let payload = cursor.takeBinary() else { return cursor.stop }
            willTopic = topic
            willPayload = payload
        }

        var username = ByteRange.absent
        if hasUsername {  // 3.1.1 §3.1.3.4, 5.0 §3.1.3.5
            guard let range = cursor.takeString() else { return cursor.stop }
            username = range
        }
        var password = ByteRange.absent
        if hasPassword {  // binary data: 3.1.1 §3.1.3.5, 5.0 §3.1.3.6
            guard let range = cursor.takeBinary() else { return cursor.stop }
            password = range
        }

        // Every field is accounted for; anything left inside the remaining length is malformed.
        // (All lengths are known, so this holds even before the rest of the packet arrives.)
        if cursor.position != cursor.packetEnd { return .invalid(.trailingBytes) }

        return .connect(
            ConnectPacket(
                packetLength: UInt32(truncatingIfNeeded: cursor.packetEnd), protocolLevel: level, connectFlags: flags,
                keepAliveSeconds: keepAliveSeconds, properties: properties,
                clientIdentifier: clientIdentifier, willProperties: willProperties,
                willTopic: willTopic, willPayload: willPayload, username: username, password: password))
    }
}

extension MQTTPeek {
    /// Convenience for tests and tools: parses the CONNECT at the start of `bytes`.
    @inlinable
    public static func parseConnect(_ bytes: [UInt8], connectMaxBytes: Int = 65536) -> ConnectVerdict {
        bytes.withUnsafeBytes { parseConnect($0, connectMaxBytes: connectMaxBytes) }
    }

    /// Convenience: the client identifier of the CONNECT at the start of `bytes`, if complete and
    /// valid. The result points into `bytes`.
    @inlinable
    public static func clientIdentifier(
        in bytes: UnsafeRawBufferPointer, connectMaxBytes: Int = 65536
    ) -> UnsafeRawBufferPointer? {
        guard case .connect(let packet) = parseConnect(bytes, connectMaxBytes: connectMaxBytes) else { return nil }
        return MQTTPeek.bytes(packet.clientIdentifier, in: bytes)
    }
}
