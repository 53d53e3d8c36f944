// SHA1: the SHA-1 digest (RFC 3174) for the WebSocket handshake's Sec-WebSocket-Accept (RFC
// 6455 §4.2.2), where it is a checksum of a public nonce, not a security measure. A value type
// on the stack: it never allocates. Not for anything that needs collision resistance.

struct SHA1 {
    static let digestBytes = 20

    private var state: (UInt32, UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0)
    /// The bytes of the block being filled (64).
    private var block: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    private var blockFilled = 0
    private var totalBytes: UInt64 = 0

    init() {}

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        totalBytes &+= UInt64(bytes.count)
        var i = 0
        while i < bytes.count {
            let n = Swift.min(64 - blockFilled, bytes.count - i)
            let filled = blockFilled
            withUnsafeMutableBytes(of: &block) { b in (b.baseAddress! + filled).copyMemory(from: base + i, byteCount: n) }
            blockFilled += n
            i += n
            if blockFilled == 64 { compressBlock() }
        }
    }

    /// RFC 3174 §4: pads, processes the last block(s) and writes the 20-byte digest to `out`.
    mutating func finish(into out: UnsafeMutableRawPointer) {
        let bits = totalBytes &* 8
        var one: UInt8 = 0x80
        var zero: UInt8 = 0
        withUnsafeBytes(of: &one) { update($0) }
        while blockFilled != 56 { withUnsafeBytes(of: &zero) { update($0) } }
        var length = bits.bigEndian
        withUnsafeBytes(of: &length) { update($0) }
        assert(blockFilled == 0)
        withUnsafeBytes(of: state) { s in
            for i in 0..<5 { out.storeBytes(of: s.load(fromByteOffset: 4 * i, as: UInt32.self).bigEndian, toByteOffset: 4 * i, as: UInt32.self) }
        }
    }

    @inline(__always)
    private static func rotl(_ x: UInt32, _ n: UInt32) -> UInt32 { x << n | x >> (32 - n) }

    /// RFC 3174 §6.1, with the 16-word circular schedule of §6.2.
    private mutating func compressBlock() {
        var w: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = block
        var (a, b, c, d, e) = state
        withUnsafeMutableBytes(of: &w) { raw in
            for t in 0..<16 {
                raw.storeBytes(of: UInt32(bigEndian: raw.load(fromByteOffset: 4 * t, as: UInt32.self)), toByteOffset: 4 * t, as: UInt32.self)
            }
            for t in 0..<80 {
                let s = t & 15
                if t >= 16 {
                    let x = raw.load(fromByteOffset: 4 * ((s + 13) & 15), as: UInt32.self)
                        ^ raw.load(fromByteOffset: 4 * ((s + 8) & 15), as: UInt32.self)
                        ^ raw.load(fromByteOffset: 4 * ((s + 2) & 15), as: UInt32.self)
                        ^ raw.load(fromByteOffset: 4 * s, as: UInt32.self)
                    raw.storeBytes(of: Self.rotl(x, 1), toByteOffset: 4 * s, as: UInt32.self)
                }
                let f: UInt32, k: UInt32
                switch t {
                case 0..<20: f = (b & c) | (~b & d); k = 0x5A82_7999
                case 20..<40: f = b ^ c ^ d; k = 0x6ED9_EBA1
                case 40..<60: f = (b & c) | (b & d) | (c & d); k = 0x8F1B_BCDC
                default: f = b ^ c ^ d; k = 0xCA62_C1D6
                }
                let temp = Self.rotl(a, 5) &+ f &+ e &+ k &+ raw.load(fromByteOffset: 4 * s, as: UInt32.self)
                e = d
                d = c
                c = Self.rotl(b, 30)
                b = a
                a = temp
            }
        }
        state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d, state.4 &+ e)
        blockFilled = 0
    }
}
