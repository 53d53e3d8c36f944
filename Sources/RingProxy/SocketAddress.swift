// SocketAddress: an IPv4 or IPv6 address and port as the kernel wants it (sockaddr_in6-sized
// storage), parsed from operators' "host:port" / "[v6]:port" / "*:port" text. Cold path only.
import Glibc
#if canImport(CUring)
import CUring   // the socket constants as the engine's other files see them
#endif

public struct SocketAddress: Equatable, Sendable, CustomStringConvertible {
    /// sockaddr_in or sockaddr_in6, zero-padded to 28 bytes.
    public var storage: sockaddr_in6
    public var length: socklen_t

    public var family: Int32 { Int32(storage.sin6_family) }

    public static func == (a: SocketAddress, b: SocketAddress) -> Bool {
        guard a.length == b.length else { return false }
        return withUnsafeBytes(of: a.storage) { ra in
            withUnsafeBytes(of: b.storage) { rb in memcmp(ra.baseAddress!, rb.baseAddress!, Int(a.length)) == 0 }
        }
    }

    public init(ipv4 a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, port: UInt16) {
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        sin.sin_addr.s_addr = (UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)).bigEndian
        self.init(ipv4: sin)
    }

    init(ipv4 sin: sockaddr_in) {
        storage = sockaddr_in6()
        withUnsafeMutableBytes(of: &storage) { raw in
            withUnsafeBytes(of: sin) { raw.copyMemory(from: $0) }
        }
        length = socklen_t(MemoryLayout<sockaddr_in>.size)
    }

    init(ipv6 sin6: sockaddr_in6) {
        storage = sin6
        length = socklen_t(MemoryLayout<sockaddr_in6>.size)
    }

    /// Builds an address from raw sockaddr bytes as accept(2) returned them.
    public init?(raw: UnsafeRawPointer, length: socklen_t) {
        let family = Int32(raw.load(as: sa_family_t.self))
        if family == AF_INET && length >= socklen_t(MemoryLayout<sockaddr_in>.size) {
            self.init(ipv4: raw.loadUnaligned(as: sockaddr_in.self))
        } else if family == AF_INET6 && length >= socklen_t(MemoryLayout<sockaddr_in6>.size) {
            self.init(ipv6: raw.loadUnaligned(as: sockaddr_in6.self))
        } else {
            return nil
        }
    }

    /// 0.0.0.0 or :: (every address of the family): what a client reached is known only per
    /// connection.
    public var isWildcard: Bool {
        withUnsafeBytes(of: storage) { raw in
            family == AF_INET ? raw.load(fromByteOffset: 4, as: UInt32.self) == 0 : !raw[8..<24].contains { $0 != 0 }
        }
    }

    public var port: UInt16 {
        // sin_port and sin6_port sit at the same offset.
        UInt16(bigEndian: storage.sin6_port)
    }

    /// The same address with another port.
    public func withPort(_ port: UInt16) -> SocketAddress {
        var copy = self
        copy.storage.sin6_port = port.bigEndian
        return copy
    }

    /// Parses "1.2.3.4:80", "[::1]:80", "*:80", ":80", "localhost:80". Resolves host names.
    public static func parse(_ text: String) throws(AddressError) -> SocketAddress {
        let host: String
        let portText: String
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw .malformed(text, "missing ']'") }
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw .malformed(text, "missing ':port' after ']'") }
            portText = String(rest.dropFirst())
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw .malformed(text, "missing ':port'") }
            host = String(text[..<colon])
            portText = String(text[text.index(after: colon)...])
        }
        guard let port = UInt16(portText), port != 0 else {
            throw .malformed(text, "'\(portText)' is not a port number (1-65535)")
        }
        if host.isEmpty || host == "*" || host == "0.0.0.0" {
            return SocketAddress(ipv4: 0, 0, 0, 0, port: port)
        }
        if host == "::" {
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            return SocketAddress(ipv6: sin6)
        }
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            sin.sin_addr = v4
            return SocketAddress(ipv4: sin)
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            sin6.sin6_addr = v6
            return SocketAddress(ipv6: sin6)
        }
        return try resolve(host: host, port: port, text: text)
    }

    private static func resolve(host: String, port: UInt16, text: String) throws(AddressError) -> SocketAddress {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &result)
        guard rc == 0, let first = result else {
            throw .unresolvable(text, String(cString: gai_strerror(rc)))
        }
        defer { freeaddrinfo(result) }
        // Prefer IPv4 like HAProxy's default resolution order on a dual-stack host.
        var chosen: UnsafeMutablePointer<addrinfo>? = first
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            if entry.pointee.ai_family == AF_INET { chosen = entry; break }
            cursor = entry.pointee.ai_next
        }
        guard let entry = chosen, let addr = entry.pointee.ai_addr,
              let address = SocketAddress(raw: addr, length: entry.pointee.ai_addrlen) else {
            throw .unresolvable(text, "no usable address")
        }
        return address
    }

    public var description: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        return withUnsafeBytes(of: storage) { raw -> String in
            if family == AF_INET {
                let sin = raw.loadUnaligned(as: sockaddr_in.self)
                var a = sin.sin_addr
                inet_ntop(AF_INET, &a, &buffer, socklen_t(buffer.count))
                return "\(String(cString: buffer)):\(port)"
            } else {
                var a = storage.sin6_addr
                inet_ntop(AF_INET6, &a, &buffer, socklen_t(buffer.count))
                return "[\(String(cString: buffer))]:\(port)"
            }
        }
    }
}

public enum AddressError: Error, CustomStringConvertible, Equatable {
    case malformed(String, String)
    case unresolvable(String, String)

    public var description: String {
        switch self {
        case .malformed(let text, let why): return "invalid address '\(text)': \(why)"
        case .unresolvable(let text, let why): return "cannot resolve '\(text)': \(why)"
        }
    }
}
