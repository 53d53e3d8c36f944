// UniqueIDFormat: HAProxy's `unique-id-format`, the part of its log-format syntax a TCP proxy
// can fill at accept time: %ci %cp %fi %fp %Ts %ms %rt %pid %H %f, `%%`, literal text and the
// `%{+X}o` option (numbers and addresses in upper-case hex). Parsed once at load; formatted into
// a caller buffer per connection without allocating (for the PROXY v2 PP2_TYPE_UNIQUE_ID TLV).
import Glibc

public enum UniqueIDPart: Sendable, Equatable {
    case literal([UInt8])
    /// %ci %cp: the client's address and port; %fi %fp: the address and port it reached.
    case clientIP, clientPort, frontendIP, frontendPort
    /// %Ts: accept date, seconds since the epoch; %ms: its milliseconds.
    case timestampSeconds, timestampMilliseconds
    /// %rt: the request counter (unique in the process).
    case requestCounter
    case pid
    /// %H: the host name; %f: the frontend's name.
    case hostname, frontendName
}

public struct UniqueIDFormat: Sendable, Equatable {
    public var parts: [UniqueIDPart]
    /// `%{+X}o`: numbers and addresses in upper-case hexadecimal, as HAProxy writes them.
    public var hex: Bool

    /// proxy-protocol.txt §2.2.6: the unique id TLV holds at most 128 bytes.
    public static let bytesMax = 128

    /// Parses the format as written; nil and a reason for what ringproxy cannot fill.
    static func parse(_ text: String) -> Result<UniqueIDFormat, ConfigValueError> {
        var parts: [UniqueIDPart] = []
        var hex = false
        var literal: [UInt8] = []
        let bytes = Array(text.utf8)
        var i = 0
        func flush() {
            if !literal.isEmpty { parts.append(.literal(literal)); literal = [] }
        }
        while i < bytes.count {
            let c = bytes[i]
            guard c == UInt8(ascii: "%") else {
                literal.append(c)
                i += 1
                continue
            }
            i += 1
            guard i < bytes.count else { return .failure(ConfigValueError(message: "'%' at the end of the format", hint: "write '%%' for a percent sign")) }
            if bytes[i] == UInt8(ascii: "%") {
                literal.append(c)
                i += 1
                continue
            }
            var options: [UInt8] = []
            if bytes[i] == UInt8(ascii: "{") {
                guard let close = bytes[i...].firstIndex(of: UInt8(ascii: "}")) else {
                    return .failure(ConfigValueError(message: "unclosed '%{' in the format", hint: nil))
                }
                options = Array(bytes[(i + 1)..<close])
                i = close + 1
            }
            if i < bytes.count && bytes[i] == UInt8(ascii: "[") {
                return .failure(ConfigValueError(message: "sample fetches ('%[...]') in unique-id-format are not supported by ringproxy",
                                                 hint: "use %ci %cp %fi %fp %Ts %ms %rt %pid %H %f"))
            }
            var name: [UInt8] = []
            while i < bytes.count, (bytes[i] >= 0x41 && bytes[i] <= 0x5A) || (bytes[i] >= 0x61 && bytes[i] <= 0x7A) {
                name.append(bytes[i])
                i += 1
            }
            let variable = String(decoding: name, as: UTF8.self)
            flush()
            switch variable {
            case "o":
                // %{+X}o / %{-X}o: options for what follows.
                // HAProxy's documented `%{+X}o\ %ci...` writes no leading space: the separator goes.
                if i < bytes.count && bytes[i] == UInt8(ascii: " ") { i += 1 }
                if options == Array("+X".utf8) { hex = true } else if options == Array("-X".utf8) { hex = false } else {
                    return .failure(ConfigValueError(message: "option '%{\(String(decoding: options, as: UTF8.self))}o' is not supported by ringproxy", hint: "%{+X}o writes numbers in hex"))
                }
            case "ci": parts.append(.clientIP)
            case "cp": parts.append(.clientPort)
            case "fi": parts.append(.frontendIP)
            case "fp": parts.append(.frontendPort)
            case "Ts": parts.append(.timestampSeconds)
            case "ms": parts.append(.timestampMilliseconds)
            case "rt": parts.append(.requestCounter)
            case "pid": parts.append(.pid)
            case "H": parts.append(.hostname)
            case "f": parts.append(.frontendName)
            default:
                return .failure(ConfigValueError(message: "'%\(variable)' in unique-id-format is not supported by ringproxy",
                                                 hint: "use %ci %cp %fi %fp %Ts %ms %rt %pid %H %f"))
            }
        }
        flush()
        return .success(UniqueIDFormat(parts: parts, hex: hex))
    }

    /// The facts one connection's id is made of.
    struct Facts {
        /// sockaddr_in / sockaddr_in6 of the client and of what it reached (nil: unknown).
        var client: UnsafeRawPointer
        var frontend: UnsafeRawPointer?
        var acceptedWallMs: Int
        var requestCounter: UInt64
        var pid: Int
        var hostname: UnsafeRawBufferPointer
        var frontendName: UnsafeRawBufferPointer
    }

    /// Writes the id into `out` (at most `bytesMax` bytes); returns its length.
    func format(_ facts: Facts, to out: UnsafeMutableRawPointer) -> Int {
        var n = 0
        func put(_ b: UInt8) {
            guard n < Self.bytesMax else { return }
            out.storeBytes(of: b, toByteOffset: n, as: UInt8.self)
            n += 1
        }
        func number(_ value: UInt64) {
            var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
            withUnsafeMutableBytes(of: &digits) { raw in
                var v = value
                var count = 0
                let base: UInt64 = hex ? 16 : 10
                repeat {
                    let d = UInt8(v % base)
                    raw[count] = d < 10 ? 0x30 + d : 0x41 + d - 10
                    v /= base
                    count += 1
                } while v > 0
                while count > 0 { count -= 1; put(raw[count]) }
            }
        }
        func address(_ sa: UnsafeRawPointer?) {
            guard let sa else { put(0x2D); return }
            let family = Int32(sa.load(as: sa_family_t.self))
            let raw = sa + (family == AF_INET6 ? 8 : 4)
            let size = family == AF_INET6 ? 16 : 4
            if hex {
                for k in 0..<size {
                    let b = raw.load(fromByteOffset: k, as: UInt8.self)
                    let hi = b >> 4, lo = b & 15
                    put(hi < 10 ? 0x30 + hi : 0x37 + hi)
                    put(lo < 10 ? 0x30 + lo : 0x37 + lo)
                }
                return
            }
            var text: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
            withUnsafeMutableBytes(of: &text) { buffer in
                let p = buffer.baseAddress!.assumingMemoryBound(to: CChar.self)
                if inet_ntop(family, raw, p, socklen_t(buffer.count)) != nil {
                    var k = 0
                    while k < buffer.count && buffer[k] != 0 { put(buffer[k]); k += 1 }
                }
            }
        }
        func port(_ sa: UnsafeRawPointer?) {
            guard let sa else { put(0x2D); return }
            number(UInt64(UInt16(bigEndian: sa.load(fromByteOffset: 2, as: UInt16.self))))
        }
        for part in parts {
            switch part {
            case .literal(let bytes): for b in bytes { put(b) }
            case .clientIP: address(facts.client)
            case .clientPort: port(facts.client)
            case .frontendIP: address(facts.frontend)
            case .frontendPort: port(facts.frontend)
            case .timestampSeconds: number(UInt64(facts.acceptedWallMs / 1000))
            case .timestampMilliseconds: number(UInt64(facts.acceptedWallMs % 1000))
            case .requestCounter: number(facts.requestCounter)
            case .pid: number(UInt64(facts.pid))
            case .hostname: for b in facts.hostname { put(b) }
            case .frontendName: for b in facts.frontendName { put(b) }
            }
        }
        return n
    }
}
