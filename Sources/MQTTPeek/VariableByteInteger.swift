// Decoding of MQTT's Variable Byte Integer (the remaining length, the property length) without a
// per-byte loop: up to four bytes are gathered into one word and decoded with masks and shifts.
// It must never read at or past `readableEnd`.

/// The result of decoding a Variable Byte Integer (MQTT 5.0 §1.5.5, 3.1.1 §2.2.3).
@usableFromInline
struct VariableByteInteger {
    @usableFromInline
    enum Status: UInt8 {
        /// `value` and `length` (1...4) are valid; the encoding is minimal.
        case complete
        /// Every readable byte (fewer than 4) has the continuation bit: more are needed.
        case incomplete
        /// Four bytes with the continuation bit: a fifth would be needed, which is malformed.
        case malformed
        /// Terminated, but with a final 0x00 group after a continuation byte (e.g. `0x80 0x00`):
        /// MQTT 5.0 §1.5.5 [MQTT-1.5.5-1] requires the minimum number of bytes.
        case nonMinimal
    }

    @usableFromInline var status: Status
    /// Decoded value (valid for `.complete`).
    @usableFromInline var value: Int
    /// Bytes of the encoding (valid for `.complete` and `.nonMinimal`).
    @usableFromInline var length: Int
    /// How many bytes with the continuation bit were seen before the terminating byte (or before
    /// the readable bytes ran out). A minimal encoding with `k` such bytes has a value >= 128^k.
    @usableFromInline var continuationBytes: Int

    @inlinable @inline(__always)
    init(status: Status, value: Int, length: Int, continuationBytes: Int) {
        self.status = status
        self.value = value
        self.length = length
        self.continuationBytes = continuationBytes
    }

    /// Decodes the integer starting at `base + offset`, reading only bytes before `readableEnd`.
    @inlinable @inline(__always)
    init(decoding base: UnsafeRawPointer, at offset: Int, readableEnd: Int) {
        let readable = readableEnd &- offset
        var word: UInt32
        if _fastPath(readable >= 4) {
            word = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
        } else {
            // Bytes not received yet read as 0x80 ("continues"), so they can never terminate
            // the integer and the decode below needs no special case.
            word = 0x8080_8080
            var index = 0
            while index < readable {  // at most 3 turns
                let shift = UInt32(truncatingIfNeeded: index &* 8)
                let byte = UInt32(base.load(fromByteOffset: offset &+ index, as: UInt8.self))
                word = (word & ~(0xFF &<< shift)) | (byte &<< shift)
                index &+= 1
            }
        }
        // A byte without the continuation bit ends the integer; find the first one.
        let terminators = ~word & 0x8080_8080
        if _slowPath(terminators == 0) {
            let seen = readable >= 4 ? 4 : Swift.max(readable, 0)
            self.init(status: seen == 4 ? .malformed : .incomplete, value: 0, length: 0, continuationBytes: seen)
            return
        }
        let lastIndex = terminators.trailingZeroBitCount &>> 3  // 0...3
        let length = lastIndex &+ 1
        // Keep the bytes of the encoding, then pack the four 7-bit groups together.
        let used = UInt64(word) & ((UInt64(1) &<< UInt64(truncatingIfNeeded: length &* 8)) &- 1)
        let value = (used & 0x7F)
            | ((used &>> 1) & 0x3F80)
            | ((used &>> 2) & 0x1F_C000)
            | ((used &>> 3) & 0xFE0_0000)
        // The most significant group (the last byte) may be 0 only in a one-byte encoding.
        let lastByte = (word &>> UInt32(truncatingIfNeeded: lastIndex &* 8)) & 0xFF
        let nonMinimal = lastIndex != 0 && lastByte == 0
        self.init(
            status: nonMinimal ? .nonMinimal : .complete, value: Int(truncatingIfNeeded: value),
            length: length, continuationBytes: lastIndex)
    }

    /// The smallest total packet length a minimally encoded remaining length with
    /// `continuationBytes` leading continuation bytes allows: 1 (type) + (k + 1) + 128^k, or 2
    /// when nothing of the length is known.
    @inlinable @inline(__always)
    static func minimumPacketLength(continuationBytes k: Int) -> Int {
        k == 0 ? 2 : 2 &+ k &+ (1 &<< (7 &* k))
    }
}
