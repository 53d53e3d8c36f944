// Validation of MQTT UTF-8 strings (client identifier, will topic, user name, string properties).
// The common case, short ASCII, is checked eight bytes per word; anything else falls through to an
// exact byte-wise check. Reads stay inside the string, except for a word that ends exactly at its
// last byte, whose earlier bytes (inside the same buffer) are masked out.

@usableFromInline
enum MQTTString {
    @inlinable static var highBits: UInt64 { 0x8080_8080_8080_8080 }
    @inlinable static var lowBits: UInt64 { 0x0101_0101_0101_0101 }

    /// True if no byte of `word` is 0x00 or >= 0x80.
    @inlinable @inline(__always)
    static func isPlainASCII(_ word: UInt64) -> Bool {
        let zeroBytes = (word &- lowBits) & ~word & highBits
        return (word & highBits) | zeroBytes == 0
    }

    /// MQTT 5.0 §1.5.4 [MQTT-1.5.4-1, -2], 3.1.1 §1.5.3 [MQTT-1.5.3-1, -2]: a string must be
    /// well-formed UTF-8 (no surrogates, no overlong forms, nothing above U+10FFFF) and must not
    /// contain U+0000. `start..<end` must lie inside the buffer that `base` points to.
    ///
    /// Strings of up to 8 bytes (most client identifiers, topics and property keys are short)
    /// are checked inline with one word that ends at `end`: its first 8 - length bytes precede
    /// the string (inside the same buffer, as `end >= 8` holds for every string of a CONNECT) and
    /// are replaced by 0x01, plain ASCII, before the check.
    @inlinable @inline(__always)
    static func isValid(_ base: UnsafeRawPointer, from start: Int, to end: Int) -> Bool {
        let length = end &- start
        if _fastPath(length <= 8 && end >= 8) {
            let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: end &- 8, as: UInt64.self))
            let keep = length == 0 ? 0 : ~UInt64(0) &<< UInt64(truncatingIfNeeded: (8 &- length) &* 8)
            if _fastPath(isPlainASCII((word & keep) | (lowBits & ~keep))) { return true }
        }
        return isValidLong(base, from: start, to: end)
    }

    /// Eight bytes per word; the tail is one word ending at `end`, overlapping checked bytes.
    @inlinable
    static func isValidLong(_ base: UnsafeRawPointer, from start: Int, to end: Int) -> Bool {
        if end &- start >= 8 {
            var index = start
            while index &+ 8 <= end {
                let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: index, as: UInt64.self))
                if !isPlainASCII(word) { return isValidSlow(base, from: start, to: end) }
                index &+= 8
            }
            if index < end {
                let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: end &- 8, as: UInt64.self))
                if !isPlainASCII(word) { return isValidSlow(base, from: start, to: end) }
            }
            return true
        }
        return isValidSlow(base, from: start, to: end)
    }

    /// Byte-wise check following Unicode Table 3-7 (well-formed UTF-8 byte sequences).
    @inlinable
    static func isValidSlow(_ base: UnsafeRawPointer, from start: Int, to end: Int) -> Bool {
        @inline(__always) func byte(_ offset: Int) -> UInt8 {
            base.load(fromByteOffset: offset, as: UInt8.self)
        }
        @inline(__always) func isContinuation(_ offset: Int) -> Bool {
            byte(offset) & 0xC0 == 0x80
        }
        var index = start
        while index < end {
            let lead = byte(index)
            if lead < 0x80 {
                if lead == 0 { return false }  // U+0000
                index &+= 1
            } else if lead < 0xC2 {
                return false  // a continuation byte, or an overlong 2-byte form (C0, C1)
            } else if lead < 0xE0 {
                guard index &+ 2 <= end, isContinuation(index &+ 1) else { return false }
                index &+= 2
            } else if lead < 0xF0 {
                guard index &+ 3 <= end else { return false }
                let second = byte(index &+ 1)
                // E0: A0...BF (no overlong); ED: 80...9F (no surrogates U+D800...U+DFFF).
                let low: UInt8 = lead == 0xE0 ? 0xA0 : 0x80
                let high: UInt8 = lead == 0xED ? 0x9F : 0xBF
                guard second >= low, second <= high, isContinuation(index &+ 2) else { return false }
                index &+= 3
            } else if lead < 0xF5 {
                guard index &+ 4 <= end else { return false }
                let second = byte(index &+ 1)
                // F0: 90...BF (no overlong); F4: 80...8F (nothing above U+10FFFF).
                let low: UInt8 = lead == 0xF0 ? 0x90 : 0x80
                let high: UInt8 = lead == 0xF4 ? 0x8F : 0xBF
                guard second >= low, second <= high, isContinuation(index &+ 2), isContinuation(index &+ 3)
                else { return false }
                index &+= 4
            } else {
                return false  // F5...FF never appear in UTF-8
            }
        }
        return true
    }
}
