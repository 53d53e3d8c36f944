// ConnackResponse: a server's answer to the CONNECT the proxy holds (`option
// mqtt-connack-redispatch`, a ringproxy extension). Only its verdict matters: whether the broker
// says "try another server" (then the proxy does, and the client never sees it) or anything
// else (handed to the client as is). Pure: never allocates, never reads past what it is given.

/// Why a broker sent the client elsewhere; counted per reason.
enum ConnackRefusal: UInt8, CaseIterable, CustomStringConvertible {
    /// MQTT 3.1.1 §3.2.2.3 return code 3; MQTT 5.0 §3.2.2.2 reason code 0x88.
    case serverUnavailable = 1
    /// MQTT 5.0 0x89 Server busy.
    case serverBusy
    /// MQTT 5.0 0x9F Connection rate exceeded.
    case connectionRateExceeded
    /// MQTT 5.0 0x9C Use another server / 0x9D Server moved (with a Server Reference, §4.11).
    case useAnotherServer

    var description: String {
        switch self {
        case .serverUnavailable: return "server unavailable"
        case .serverBusy: return "server busy"
        case .connectionRateExceeded: return "connection rate exceeded"
        case .useAnotherServer: return "use another server"
        }
    }
}

enum ConnackVerdict: Equatable {
    /// A valid beginning whose verdict needs more bytes.
    case needMore
    /// For the client as it is: a CONNACK that accepts, one that refuses for another reason, or
    /// bytes that are no CONNACK at all (the client's MQTT stack judges those).
    case pass
    /// A refusal that means "connect elsewhere"; `reference`: the bytes of its Server Reference
    /// property (MQTT 5.0 §3.2.2.3.16), an offset range into the input, when it has one.
    case tryElsewhere(ConnackRefusal, code: UInt8, reference: Range<Int>?)
}

enum ConnackResponse {
    /// Reads the CONNACK at the start of `bytes`, for a client whose CONNECT said
    /// `protocolLevel` (3, 4: MQTT 3.x; 5: MQTT 5.0). A packet longer than `packetMaxBytes` is
    /// not waited for: its reason code decides, without a reference.
    static func read(_ bytes: UnsafeRawBufferPointer, protocolLevel: UInt8, packetMaxBytes: Int) -> ConnackVerdict {
        guard bytes.count > 0 else { return .needMore }
        // §3.2.1: CONNACK is packet type 2, flags 0.
        guard bytes[0] == 0x20 else { return .pass }
        var remaining = 0
        var shift = 0
        var position = 1
        while true {
            guard position < bytes.count else { return .needMore }
            let b = bytes[position]
            remaining |= Int(b & 0x7F) << shift
            position += 1
            if b & 0x80 == 0 { break }
            shift += 7
            if shift > 21 { return .pass }   // §1.5.5: at most four bytes
        }
        let header = position
        guard remaining >= 2 else { return .pass }
        guard bytes.count >= header + 2 else { return .needMore }
        let code = bytes[header + 1]
        if protocolLevel < 5 {
            // §3.2.2.3: 0x03 Connection Refused, Server unavailable.
            return remaining == 2 && code == 0x03 ? .tryElsewhere(.serverUnavailable, code: code, reference: nil) : .pass
        }
        switch code {
        case 0x88: return .tryElsewhere(.serverUnavailable, code: code, reference: nil)
        case 0x89: return .tryElsewhere(.serverBusy, code: code, reference: nil)
        case 0x9F: return .tryElsewhere(.connectionRateExceeded, code: code, reference: nil)
        case 0x9C, 0x9D: break
        default: return .pass
        }
        let total = header + remaining
        if total > packetMaxBytes { return .tryElsewhere(.useAnotherServer, code: code, reference: nil) }
        guard bytes.count >= total else { return .needMore }
        return .tryElsewhere(.useAnotherServer, code: code,
                             reference: serverReference(bytes, from: header + 2, end: total))
    }

    /// Reads the CONNACK inside the first WebSocket frame at the start of `bytes` (a server's
    /// frame: unmasked, RFC 6455 §5.1). A CONNACK the first frame does not hold whole is passed.
    static func readFramed(_ bytes: UnsafeRawBufferPointer, protocolLevel: UInt8, packetMaxBytes: Int) -> ConnackVerdict {
        guard bytes.count >= 2 else { return .needMore }
        // §5.2: opcode 2 (binary), FIN or not; anything else is the client's to judge.
        guard bytes[0] & 0x0F == 2, bytes[1] & 0x80 == 0 else { return .pass }
        var length = Int(bytes[1] & 0x7F)
        var start = 2
        if length == 126 {
            guard bytes.count >= 4 else { return .needMore }
            length = Int(bytes[2]) << 8 | Int(bytes[3])
            start = 4
        } else if length == 127 {
            guard bytes.count >= 10 else { return .needMore }
            length = 0
            for i in 2..<10 { length = length << 8 | Int(bytes[i]) }
            start = 10
            guard length >= 0 && length <= 1 << 30 else { return .pass }
        }
        let available = min(bytes.count, start + length) - start
        let payload = UnsafeRawBufferPointer(rebasing: bytes[start..<(start + available)])
        switch read(payload, protocolLevel: protocolLevel, packetMaxBytes: min(packetMaxBytes, length)) {
        case .needMore:
            return available == length ? .pass : .needMore
        case .pass:
            return .pass
        case .tryElsewhere(let why, let code, let reference):
            return .tryElsewhere(why, code: code, reference: reference.map { ($0.lowerBound + start)..<($0.upperBound + start) })
        }
    }

    /// The Server Reference among the CONNACK properties that start at `from` (their length
    /// first, §3.2.2.3.1); nil when absent or when the properties cannot be read.
    static func serverReference(_ bytes: UnsafeRawBufferPointer, from: Int, end: Int) -> Range<Int>? {
        guard let (length, after) = variableInteger(bytes, at: from, end: end), after + length <= end else { return nil }
        var i = after
        let propertiesEnd = after + length
        while i < propertiesEnd {
            let id = bytes[i]
            i += 1
            switch id {
            case 0x24, 0x25, 0x28, 0x29, 0x2A: i += 1                       // byte
            case 0x21, 0x22, 0x13: i += 2                                   // two byte integer
            case 0x11, 0x27: i += 4                                         // four byte integer
            case 0x12, 0x1F, 0x1A, 0x15, 0x16, 0x1C:                        // UTF-8 string / binary data
                guard i + 2 <= propertiesEnd else { return nil }
                let n = Int(bytes[i]) << 8 | Int(bytes[i + 1])
                guard i + 2 + n <= propertiesEnd else { return nil }
                if id == 0x1C { return (i + 2)..<(i + 2 + n) }
                i += 2 + n
            case 0x26:                                                      // string pair
                for _ in 0..<2 {
                    guard i + 2 <= propertiesEnd else { return nil }
                    i += 2 + (Int(bytes[i]) << 8 | Int(bytes[i + 1]))
                }
            default:
                return nil   // not a CONNACK property (§2.2.2.2): stop reading
            }
        }
        return nil
    }

    private static func variableInteger(_ bytes: UnsafeRawBufferPointer, at start: Int, end: Int) -> (Int, Int)? {
        var value = 0
        var shift = 0
        var i = start
        while i < end && shift <= 21 {
            let b = bytes[i]
            value |= Int(b & 0x7F) << shift
            i += 1
            if b & 0x80 == 0 { return (value, i) }
            shift += 7
        }
        return nil
    }
}
