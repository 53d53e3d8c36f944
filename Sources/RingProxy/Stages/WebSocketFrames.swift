// WebSocketFrames: the client's frames after the upgrade (RFC 6455 §5), read only as far as the
// MQTT CONNECT stage needs: the binary payload of the first message unmasked into a caller
// buffer, control frames between its fragments skipped, anything MQTT over WebSocket forbids
// refused; and the server's Close frame. Pure: it reads and writes only the memory it is given,
// never allocates or throws, and is fuzzed (Tests/Fuzz/WebSocketFuzz).

/// Why client frames are refused: StageRejection.code for the `.webSocketUpgrade` stage (32 and
/// up, apart from WebSocketRejection's), with the Close code to send before closing.
enum WebSocketFrameRejection: UInt8, CaseIterable, CustomStringConvertible {
    /// RFC 6455 §5.2: RSV1-3 set, and no extension was negotiated.
    case reservedBits = 32
    /// RFC 6455 §5.2: opcodes 3-7 and 11-15.
    case reservedOpcode
    /// MQTT §6: MQTT is carried in binary frames; a text frame is a protocol error.
    case textFrame
    /// RFC 6455 §5.4: a continuation frame outside a fragmented message.
    case unexpectedContinuation
    /// RFC 6455 §5.4: a new data frame inside a fragmented message.
    case expectedContinuation
    /// RFC 6455 §5.1, §5.3: a client's frames must be masked.
    case unmasked
    /// RFC 6455 §5.5: a control frame fragmented or longer than 125 bytes.
    case badControlFrame
    /// RFC 6455 §5.2: a 64-bit length with its most significant bit set.
    case badLength
    /// The message's payload does not fit the caller's bound.
    case messageTooBig
    /// The client closed (RFC 6455 §5.5.1) before its CONNECT was read.
    case closeReceived

    /// RFC 6455 §7.4.1: the status code of the Close frame to answer with.
    var closeCode: UInt16 {
        switch self {
        case .textFrame: return 1003           // data of a type the endpoint cannot accept
        case .messageTooBig: return 1009
        case .closeReceived: return 1000       // echo a normal closure
        default: return 1002                   // protocol error
        }
    }

    /// For the log.
    var description: String {
        switch self {
        case .reservedBits: return "WebSocket frame with RSV bits set"
        case .reservedOpcode: return "WebSocket frame with a reserved opcode"
        case .textFrame: return "WebSocket text frame (MQTT needs binary)"
        case .unexpectedContinuation: return "WebSocket continuation frame without a message"
        case .expectedContinuation: return "WebSocket data frame inside a fragmented message"
        case .unmasked: return "unmasked WebSocket frame from a client"
        case .badControlFrame: return "fragmented or over-long WebSocket control frame"
        case .badLength: return "WebSocket frame length with its top bit set"
        case .messageTooBig: return "WebSocket message larger than the CONNECT bound"
        case .closeReceived: return "WebSocket close before CONNECT"
        }
    }
}

/// Where reading a connection's frames stands between calls: plain values the caller keeps
/// with the connection, as long as the held bytes stay where they are (offsets are into them).
struct WebSocketFrameCursor: Equatable {
    /// Offset in the held bytes of the first frame not yet read.
    var framesEnd: Int
    /// Payload bytes unmasked into the output so far.
    var payloadLength = 0
    /// A data frame without FIN was read: the next data frame must be a continuation.
    var inMessage = false

    /// A cursor before the first frame, which starts at `start` (the upgrade head's length).
    init(start: Int) { framesEnd = start }
}

/// What `WebSocketFrames.read` found.
enum WebSocketFrameVerdict: Equatable {
    /// Nothing new: the next frame is not whole until the held bytes number `atLeast`.
    case needMore(atLeast: Int)
    /// This call read one or more data frames: the output's first `length` bytes are the
    /// message's payload so far (the cursor's `payloadLength`), the frames read end at
    /// `framesEnd` (the cursor's). `complete`: the last frame read had FIN, the message is whole.
    case payload(length: Int, framesEnd: Int, complete: Bool)
    /// Not a message this stage accepts: send `writeClose(code: rejection.closeCode)`, close.
    case reject(WebSocketFrameRejection)
}

enum WebSocketFrames {
    /// The largest frame head: 2 bytes, a 64-bit length, the masking key.
    static let headMaxBytes = 14
    /// What `writeClose` writes.
    static let closeFrameBytes = 4

    /// Reads whole frames from `cursor.framesEnd` in `bytes` (all the bytes the connection has
    /// sent, the upgrade head included), unmasking data frames' payloads into `out` from
    /// `cursor.payloadLength` on, skipping ping and pong frames, until the message ends (FIN),
    /// the held bytes end, or a frame is refused; `cursor` is moved past every whole frame read.
    ///
    /// Resuming: call again with the same cursor when more bytes arrive (the held bytes may
    /// only grow at their end); only whole frames are read, so a frame split anywhere is read
    /// once its last byte is there. Stateless use works too: a fresh `WebSocketFrameCursor` on
    /// each call re-reads from the start and rewrites the same output. After `.payload(complete:
    /// true)`, calling again with the same cursor reads the next message's payload after it
    /// (MQTT §6: packets need not align with messages), appended to the output.
    ///
    /// `capacity`: the output's size, the bound on the payload (e.g. the CONNECT bound); a
    /// frame that would pass it is refused as soon as its length is known.
    static func read(_ bytes: UnsafeRawBufferPointer, cursor: inout WebSocketFrameCursor,
                     into out: UnsafeMutableRawPointer, capacity: Int) -> WebSocketFrameVerdict {
        precondition(cursor.framesEnd >= 0 && cursor.payloadLength <= capacity)
        let count = bytes.count
        guard let base = bytes.baseAddress, cursor.framesEnd < count else { return .needMore(atLeast: cursor.framesEnd + 2) }
        var readData = false
        while true {
            let p = cursor.framesEnd
            // Checks run in byte order as soon as their byte is there, so that a frame split at
            // any byte is refused for the same reason as the whole frame.
            guard p < count else { return needMoreOrPayload(readData, cursor, atLeast: p + 2) }
            let b0 = base.load(fromByteOffset: p, as: UInt8.self)
            let fin = b0 & 0x80 != 0
            // RFC 6455 §5.2: RSV1-3 are 0 unless an extension says otherwise; the 101 names none.
            if b0 & 0x70 != 0 { return .reject(.reservedBits) }
            let opcode = b0 & 0x0F
            let control = opcode & 0x08 != 0
            switch opcode {
            case 0x0: if !cursor.inMessage { return .reject(.unexpectedContinuation) }
            case 0x1: return .reject(.textFrame)
            case 0x2: if cursor.inMessage { return .reject(.expectedContinuation) }
            case 0x8, 0x9, 0xA: if !fin { return .reject(.badControlFrame) }   // §5.5: never fragmented
            default: return .reject(.reservedOpcode)
            }
            guard p + 1 < count else { return needMoreOrPayload(readData, cursor, atLeast: p + 2) }
            let b1 = base.load(fromByteOffset: p + 1, as: UInt8.self)
            // RFC 6455 §5.3: every frame from a client is masked.
            if b1 & 0x80 == 0 { return .reject(.unmasked) }
            let length7 = Int(b1 & 0x7F)
            if control && length7 > 125 { return .reject(.badControlFrame) }   // §5.5
            // RFC 6455 §5.2: 126: a 16-bit length follows, 127: a 64-bit one (top bit 0).
            let lengthBytes = length7 == 126 ? 2 : length7 == 127 ? 8 : 0
            guard p + 2 + lengthBytes <= count else { return needMoreOrPayload(readData, cursor, atLeast: p + 2 + lengthBytes + 4) }
            var length = UInt64(length7)
            if lengthBytes > 0 {
                length = 0
                for i in 0..<lengthBytes { length = length << 8 | UInt64(base.load(fromByteOffset: p + 2 + i, as: UInt8.self)) }
                if length >> 63 != 0 { return .reject(.badLength) }
            }
            let isData = !control
            if isData && length > UInt64(capacity - cursor.payloadLength) { return .reject(.messageTooBig) }
            if opcode == 0x8 { return .reject(.closeReceived) }
            let payloadStart = p + 2 + lengthBytes + 4
            // Control frames are at most 125 bytes and data frames within capacity, so this fits.
            let frameEnd = payloadStart + Int(length)
            guard frameEnd <= count else { return needMoreOrPayload(readData, cursor, atLeast: frameEnd) }
            if isData {
                unmask(base + payloadStart, count: Int(length), key: base + payloadStart - 4, to: out + cursor.payloadLength)
                cursor.payloadLength += Int(length)
                cursor.inMessage = !fin
                readData = true
            }
            cursor.framesEnd = frameEnd
            if isData && fin { return .payload(length: cursor.payloadLength, framesEnd: frameEnd, complete: true) }
        }
    }

    @inline(__always)
    private static func needMoreOrPayload(_ readData: Bool, _ cursor: WebSocketFrameCursor, atLeast: Int) -> WebSocketFrameVerdict {
        readData ? .payload(length: cursor.payloadLength, framesEnd: cursor.framesEnd, complete: false) : .needMore(atLeast: atLeast)
    }

    /// RFC 6455 §5.3: payload byte i XOR key byte i mod 4; eight bytes at a time.
    private static func unmask(_ payload: UnsafeRawPointer, count: Int, key: UnsafeRawPointer, to out: UnsafeMutableRawPointer) {
        let key32 = key.loadUnaligned(as: UInt32.self)
        let key64 = UInt64(key32) | UInt64(key32) << 32
        var i = 0
        while i + 8 <= count {
            out.storeBytes(of: payload.loadUnaligned(fromByteOffset: i, as: UInt64.self) ^ key64, toByteOffset: i, as: UInt64.self)
            i += 8
        }
        while i < count {
            let k = key.load(fromByteOffset: i & 3, as: UInt8.self)
            out.storeBytes(of: payload.load(fromByteOffset: i, as: UInt8.self) ^ k, toByteOffset: i, as: UInt8.self)
            i += 1
        }
    }

    /// Writes a server's Close frame (RFC 6455 §5.5.1: unmasked, a 2-byte status code, no
    /// reason) to `out`, which has room for `closeFrameBytes`. Returns its length.
    static func writeClose(code: UInt16, to out: UnsafeMutableRawPointer, capacity: Int) -> Int {
        precondition(capacity >= closeFrameBytes)
        out.storeBytes(of: 0x88, toByteOffset: 0, as: UInt8.self)
        out.storeBytes(of: 0x02, toByteOffset: 1, as: UInt8.self)
        out.storeBytes(of: code.bigEndian, toByteOffset: 2, as: UInt16.self)
        return closeFrameBytes
    }
}
