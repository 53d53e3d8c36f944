// SourcePool: HAProxy's `source <addr>` on a server, default-server, backend or defaults,
// extended with address ranges `<addr>-<addr>` (a ringproxy extension: HAProxy ranges only
// ports). Each connection to the server is bound to one address of the pool with
// IP_BIND_ADDRESS_NO_PORT, so the kernel picks the port at connect time and a pool of N
// addresses gives N times the ephemeral ports towards one broker. Parsing only; the worker
// walks the pool (Lifecycle/Worker+Source.swift).
import Glibc

/// The local addresses connections to one server are bound to, first to last.
public struct SourcePool: Sendable, Equatable, CustomStringConvertible {
    /// The first address, port 0.
    public var first: SocketAddress
    /// How many consecutive addresses from `first` (1 for a single address).
    public var count: Int
    /// An IPv6 range may only vary in its last 32 bits, so that the worker adds a UInt32.
    public static let countMax = 1 << 32

    public init(first: SocketAddress, count: Int) {
        precondition(count >= 1 && count <= Self.countMax)
        self.first = first
        self.count = count
    }

    public var description: String {
        let text = first.hostText
        return count == 1 ? text : "\(text)-\(address(at: count - 1).hostText)"
    }

    /// Address `index` of the pool (0 ..< count), port 0.
    public func address(at index: Int) -> SocketAddress {
        var result = first
        Self.offset(&result, by: UInt32(truncatingIfNeeded: index))
        return result
    }

    /// Adds `n` to the address in place: the whole IPv4 address, or the last 32 bits of an IPv6
    /// one (a pool never spans more, see parse). Used by the worker on every pooled connect.
    @inline(__always)
    static func offset(_ address: inout SocketAddress, by n: UInt32) {
        withUnsafeMutableBytes(of: &address.storage) { raw in
            // sockaddr_in: the address at 4..<8; sockaddr_in6: its last 32 bits at 20..<24.
            let at = Int32(raw.load(as: sa_family_t.self)) == AF_INET ? 4 : 20
            let base = UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self))
            raw.storeBytes(of: (base &+ n).bigEndian, toByteOffset: at, as: UInt32.self)
        }
    }

    /// `10.0.0.1`, `10.0.0.1-10.0.0.50`, `::1`, `[2001:db8::10]-[2001:db8::ff]`; a port is
    /// refused (HAProxy's `addr:port` and `addr:low-high` bind a fixed port themselves, which
    /// gives away the 4-tuple reuse this keyword is for), except `:0`, meaning the same.
    static func parse(_ text: String) -> Result<SourcePool, ConfigValueError> {
        let pieces = text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        if pieces.count == 2, !pieces[1].isEmpty, pieces[1].allSatisfy({ $0.isASCII && $0.isNumber }) {
            return .failure(ConfigValueError(
                message: "source port ranges ('\(text)') are not supported: ringproxy lets the kernel choose the port at connect (IP_BIND_ADDRESS_NO_PORT)",
                hint: "write the address alone; the kernel's ports are net.ipv4.ip_local_port_range, and a range of addresses 'A-B' multiplies them"))
        }
        let low: SocketAddress
        switch address(pieces[0], in: text) {
        case .success(let a): low = a
        case .failure(let e): return .failure(e)
        }
        guard pieces.count == 2 else { return .success(SourcePool(first: low, count: 1)) }
        let high: SocketAddress
        switch address(pieces[1], in: text) {
        case .success(let a): high = a
        case .failure(let e): return .failure(e)
        }
        guard low.family == high.family else {
            return .failure(ConfigValueError(message: "source range '\(text)' mixes IPv4 and IPv6", hint: "both ends of a range are IPv4, or both IPv6"))
        }
        let (lowPrefix, lowTail) = low.rangeParts
        let (highPrefix, highTail) = high.rangeParts
        guard lowPrefix == highPrefix else {
            return .failure(ConfigValueError(message: "source range '\(text)' spans more than the last 32 bits of an IPv6 address",
                                             hint: "ringproxy takes at most 2^32 source addresses per pool"))
        }
        guard lowTail <= highTail else {
            return .failure(ConfigValueError(message: "source range '\(text)' is reversed", hint: "write the lower address first: '\(pieces[1])-\(pieces[0])'"))
        }
        return .success(SourcePool(first: low, count: Int(highTail - lowTail) + 1))
    }

    /// One end of a pool: an IPv4 or IPv6 literal (no host names: a pool is addresses of this
    /// host), IPv6 in brackets or bare, with no port or port 0.
    private static func address(_ text: String, in whole: String) -> Result<SocketAddress, ConfigValueError> {
        var host = text
        var port: String?
        if text.hasPrefix("[") || text.filter({ $0 == ":" }).count == 1 {
            guard let (h, p) = AddressText.split(text) else {
                return .failure(ConfigValueError(message: "invalid source address '\(text)'", hint: "e.g. 10.0.0.1, 10.0.0.1-10.0.0.20 or [2001:db8::1]"))
            }
            (host, port) = (h, p)
        }
        if let port, port != "0" {
            return .failure(ConfigValueError(
                message: "a fixed source port ('\(whole)') is not supported: ringproxy lets the kernel choose the port at connect (IP_BIND_ADDRESS_NO_PORT)",
                hint: "write the address alone"))
        }
        let family = host.contains(":") ? AF_INET6 : AF_INET
        var bytes = in6_addr()
        guard !host.isEmpty, inet_pton(family, host, &bytes) == 1 else {
            return .failure(ConfigValueError(message: "invalid source address '\(text)'",
                                             hint: "an IPv4 or IPv6 address of this host (no host names), e.g. 10.0.0.1 or 10.0.0.1-10.0.0.20"))
        }
        do {
            return .success(try SocketAddress.parse(family == AF_INET6 ? "[\(host)]:1" : "\(host):1").withPort(0))
        } catch {
            return .failure(ConfigValueError(message: "invalid source address '\(text)'"))
        }
    }
}

extension SocketAddress {
    /// The address without its port: "10.0.0.1", "2001:db8::1".
    var hostText: String {
        let text = description
        let colon = text.lastIndex(of: ":")!
        let host = text[..<colon]
        return host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : String(host)
    }

    /// What a range may not vary (IPv6: the first 96 bits) and what it may (the last 32 bits).
    fileprivate var rangeParts: (prefix: [UInt8], tail: UInt32) {
        withUnsafeBytes(of: storage) { raw in
            let at = family == AF_INET ? 4 : 20
            let prefix = family == AF_INET ? [] : Array(raw[8..<20])
            return (prefix, UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
        }
    }
}
