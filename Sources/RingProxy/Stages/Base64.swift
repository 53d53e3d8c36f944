// Base64: RFC 4648 §4 base64 for the WebSocket handshake (the Sec-WebSocket-Key check and the
// Sec-WebSocket-Accept value). Into caller-owned memory only: it never allocates.

enum Base64 {
    private static let alphabet: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    /// The 6-bit value of an alphabet character, nil for any other byte ("=" included).
    @inline(__always)
    static func value(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x41...0x5A: return b - 0x41
        case 0x61...0x7A: return b - 0x61 + 26
        case 0x30...0x39: return b - 0x30 + 52
        case 0x2B: return 62
        case 0x2F: return 63
        default: return nil
        }
    }

    /// Writes the padded encoding of `bytes` to `out`, which has room for
    /// `encodedLength(bytes.count)`. Returns that length.
    static func encode(_ bytes: UnsafeRawBufferPointer, to out: UnsafeMutableRawPointer) -> Int {
        let table = alphabet.utf8Start
        var i = 0
        var o = 0
        while i < bytes.count {
            let left = bytes.count - i
            let group = UInt32(bytes[i]) << 16 | (left > 1 ? UInt32(bytes[i + 1]) << 8 : 0) | (left > 2 ? UInt32(bytes[i + 2]) : 0)
            // Four characters for three bytes; "=" for each byte short of three (§4).
            for k in 0..<4 {
                let c = k <= left ? table[Int((group >> UInt32(18 - 6 * k)) & 0x3F)] : 0x3D
                out.storeBytes(of: c, toByteOffset: o + k, as: UInt8.self)
            }
            o += 4
            i += 3
        }
        assert(o == encodedLength(bytes.count))
        return o
    }

    @inline(__always)
    static func encodedLength(_ count: Int) -> Int { (count + 2) / 3 * 4 }
}
