// ProxyHeader+Writer: the PROXY protocol header ringproxy sends (`send-proxy`, `send-proxy-v2`,
// and the v2 TLVs about a client's TLS session and unique id), written into caller memory
// without allocating. Reading headers is ProxyHeader.swift's job.

extension ProxyHeader {
    /// Writes a v1 line for `addresses` (nil: "PROXY UNKNOWN\r\n", for a connection whose
    /// addresses are not known) to `out`, which has room for `writtenMaxBytes`. Returns its length.
    static func writeV1(_ addresses: ProxyAddresses?, to out: UnsafeMutableRawPointer, capacity: Int) -> Int {
        precondition(capacity >= writtenMaxBytes)
        var w = ByteWriter(base: out)
        w.text("PROXY ")
        guard let a = addresses else {
            w.text("UNKNOWN\r\n")
            return w.count
        }
        w.text(a.family == .ipv4 ? "TCP4 " : "TCP6 ")
        w.address(a.source, a.family)
        w.byte(0x20)
        w.address(a.destination, a.family)
        w.byte(0x20)
        w.decimal(Int(a.source.port))
        w.byte(0x20)
        w.decimal(Int(a.destination.port))
        w.text("\r\n")
        assert(w.count <= writtenMaxBytes)
        return w.count
    }

    /// Writes a v2 header for `addresses` with no TLVs (nil: the LOCAL command over UNSPEC, for
    /// a connection whose addresses are not known) to `out`, which has room for
    /// `writtenMaxBytes`. Returns its length.
    static func writeV2(_ addresses: ProxyAddresses?, to out: UnsafeMutableRawPointer, capacity: Int) -> Int {
        precondition(capacity >= writtenMaxBytes)
        withUnsafeBytes(of: v2Signature) { out.copyMemory(from: $0.baseAddress!, byteCount: 12) }
        guard let a = addresses else {
            // §2.2: LOCAL, UNSPEC, no address bytes.
            out.storeBytes(of: 0x20, toByteOffset: 12, as: UInt8.self)
            out.storeBytes(of: 0x00, toByteOffset: 13, as: UInt8.self)
            out.storeBytes(of: UInt16(0), toByteOffset: 14, as: UInt16.self)
            return v2FixedBytes
        }
        let size = a.family.addressBytes
        let length = 2 * size + 4
        out.storeBytes(of: 0x21, toByteOffset: 12, as: UInt8.self)
        out.storeBytes(of: a.family == .ipv4 ? 0x11 : 0x21, toByteOffset: 13, as: UInt8.self)
        out.storeBytes(of: UInt16(length).bigEndian, toByteOffset: 14, as: UInt16.self)
        withUnsafeBytes(of: a.source.address) { (out + v2FixedBytes).copyMemory(from: $0.baseAddress!, byteCount: size) }
        withUnsafeBytes(of: a.destination.address) { (out + v2FixedBytes + size).copyMemory(from: $0.baseAddress!, byteCount: size) }
        out.storeBytes(of: a.source.port.bigEndian, toByteOffset: v2FixedBytes + 2 * size, as: UInt16.self)
        out.storeBytes(of: a.destination.port.bigEndian, toByteOffset: v2FixedBytes + 2 * size + 2, as: UInt16.self)
        return v2FixedBytes + length
    }

    /// proxy-protocol.txt §2.2.1-2.2.5: TLV types and SSL sub-types ringproxy writes.
    enum TLV {
        static let authority: UInt8 = 0x02
        static let uniqueID: UInt8 = 0x05
        static let ssl: UInt8 = 0x20
        static let sslVersion: UInt8 = 0x21
        static let sslCN: UInt8 = 0x22
        static let sslCipher: UInt8 = 0x23
        /// PP2_TYPE_SSL client flags.
        static let clientSSL: UInt8 = 0x01
        static let clientCertConnection: UInt8 = 0x02
        static let clientCertSession: UInt8 = 0x04
    }

    /// Appends a TLV to the v2 header at `header` (its length `headerLength` grows, and the
    /// header's length field with it). False when `capacity` has no room or the value is too long.
    @discardableResult
    static func appendV2TLV(_ header: UnsafeMutableRawPointer, length headerLength: inout Int, capacity: Int,
                            type: UInt8, value: UnsafeRawBufferPointer) -> Bool {
        guard value.count <= 0xFFFF, headerLength + 3 + value.count <= capacity else { return false }
        let at = header + headerLength
        at.storeBytes(of: type, as: UInt8.self)
        at.storeBytes(of: UInt16(value.count).bigEndian, toByteOffset: 1, as: UInt16.self)
        if let base = value.baseAddress { (at + 3).copyMemory(from: base, byteCount: value.count) }
        headerLength += 3 + value.count
        let addressLength = UInt16(bigEndian: header.loadUnaligned(fromByteOffset: 14, as: UInt16.self))
        header.storeBytes(of: (addressLength + UInt16(3 + value.count)).bigEndian, toByteOffset: 14, as: UInt16.self)
        return true
    }

    /// Text into caller-owned memory.
    private struct ByteWriter {
        let base: UnsafeMutableRawPointer
        var count = 0

        @inline(__always)
        mutating func byte(_ b: UInt8) {
            base.storeBytes(of: b, toByteOffset: count, as: UInt8.self)
            count += 1
        }

        mutating func text(_ s: StaticString) {
            (base + count).copyMemory(from: s.utf8Start, byteCount: s.utf8CodeUnitCount)
            count += s.utf8CodeUnitCount
        }

        mutating func decimal(_ value: Int) {
            var divisor = 1
            while divisor * 10 <= value { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                byte(UInt8(0x30 + rest / divisor))
                rest %= divisor
                divisor /= 10
            }
        }

        mutating func hex(_ value: UInt16) {
            var shift = 12
            while shift > 0 && (value >> UInt16(shift)) == 0 { shift -= 4 }
            while shift >= 0 {
                let digit = UInt8((value >> UInt16(shift)) & 0xF)
                byte(digit < 10 ? 0x30 + digit : 0x61 + digit - 10)
                shift -= 4
            }
        }

        mutating func address(_ endpoint: ProxyEndpoint, _ family: ProxyAddresses.Family) {
            withUnsafeBytes(of: endpoint.address) { raw in
                if family == .ipv4 { ipv4(raw.baseAddress!) } else { ipv6(raw.baseAddress!) }
            }
        }

        mutating func ipv4(_ bytes: UnsafeRawPointer) {
            for i in 0..<4 {
                if i > 0 { byte(0x2E) }
                decimal(Int(bytes.load(fromByteOffset: i, as: UInt8.self)))
            }
        }

        /// The text inet_ntop(3) gives (RFC 5952): lower-case hex without heading zeroes, the
        /// first longest run of two or more zero groups as "::", and an IPv4-mapped or
        /// -compatible address with its last 32 bits dotted, so receivers that compare text see
        /// what HAProxy would have sent.
        mutating func ipv6(_ bytes: UnsafeRawPointer) {
            @inline(__always) func group(_ i: Int) -> UInt16 {
                UInt16(bytes.load(fromByteOffset: 2 * i, as: UInt8.self)) << 8 | UInt16(bytes.load(fromByteOffset: 2 * i + 1, as: UInt8.self))
            }
            var bestStart = -1, bestLength = 0, runStart = -1, runLength = 0
            for i in 0..<8 {
                if group(i) == 0 {
                    if runStart < 0 { runStart = i; runLength = 1 } else { runLength += 1 }
                    if runLength > bestLength { bestStart = runStart; bestLength = runLength }
                } else {
                    runStart = -1
                }
            }
            if bestLength < 2 { bestStart = -1 }
            var i = 0
            while i < 8 {
                if bestStart >= 0 && i >= bestStart && i < bestStart + bestLength {
                    if i == bestStart { byte(0x3A) }
                    i += 1
                    continue
                }
                if i > 0 { byte(0x3A) }
                if i == 6 && bestStart == 0 && (bestLength == 6 || (bestLength == 5 && group(5) == 0xFFFF)) {
                    ipv4(bytes + 12)
                    return
                }
                hex(group(i))
                i += 1
            }
            if bestStart >= 0 && bestStart + bestLength == 8 { byte(0x3A) }
        }
    }
}
