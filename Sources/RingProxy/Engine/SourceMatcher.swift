// SourceMatcher: "is this peer in one of these networks?" once per accepted connection, without
// allocating: networks stored as 128-bit value/mask pairs (IPv4 as IPv4-mapped IPv6), compared
// with the peer's sockaddr bytes in place.
import Glibc

struct SourceMatcher {
    private let values: UnsafeMutablePointer<(UInt64, UInt64)>
    private let masks: UnsafeMutablePointer<(UInt64, UInt64)>
    let count: Int

    init(_ prefixes: [AddressPrefix]) {
        count = prefixes.count
        values = .allocate(capacity: max(1, count))
        masks = .allocate(capacity: max(1, count))
        for (i, prefix) in prefixes.enumerated() {
            var bytes = prefix.bytes
            var length = prefix.length
            if bytes.count == 4 {
                bytes = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF] + bytes
                length += 96
            }
            var mask = [UInt8](repeating: 0, count: 16)
            for b in 0..<16 {
                let bits = min(max(length - b * 8, 0), 8)
                mask[b] = bits == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            }
            values[i] = (Self.word(bytes, 0), Self.word(bytes, 8))
            masks[i] = (Self.word(mask, 0), Self.word(mask, 8))
        }
    }

    func deallocate() {
        values.deallocate()
        masks.deallocate()
    }

    private static func word(_ bytes: [UInt8], _ at: Int) -> UInt64 {
        var w: UInt64 = 0
        for i in 0..<8 { w = w << 8 | UInt64(bytes[at + i]) }
        return w
    }

    /// Whether the sockaddr_in / sockaddr_in6 at `address` is in one of the networks.
    @inline(__always)
    func contains(_ address: UnsafeRawPointer) -> Bool {
        let family = Int32(address.load(as: sa_family_t.self))
        var hi: UInt64
        var lo: UInt64
        if family == AF_INET6 {
            hi = UInt64(bigEndian: address.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            lo = UInt64(bigEndian: address.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
        } else {
            hi = 0
            lo = 0xFFFF_0000_0000 | UInt64(UInt32(bigEndian: address.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
        }
        var i = 0
        while i < count {
            if hi & masks[i].0 == values[i].0 && lo & masks[i].1 == values[i].1 { return true }
            i += 1
        }
        return false
    }
}
