// Listener: the listening sockets. Each worker gets its own SO_REUSEPORT socket per bind
// address, so the kernel spreads new connections over the cores with no shared accept queue.
// Created on the starting thread so that a bind error stops start-up with a clear message.
import CUring
import Glibc

public enum ListenerError: Error, CustomStringConvertible {
    case socket(SocketAddress, Int32)
    case bind(SocketAddress, Int32)
    case listen(SocketAddress, Int32)

    public var description: String {
        switch self {
        case .socket(let a, let e): return "cannot create a socket for \(a): \(String(cString: strerror(e)))"
        case .bind(let a, let e): return "cannot bind \(a): \(String(cString: strerror(e)))"
        case .listen(let a, let e): return "cannot listen on \(a): \(String(cString: strerror(e)))"
        }
    }
}

struct ListenerSocket {
    var fd: Int32
    var address: SocketAddress
    /// The address as configured (port 0 before resolution): what a reload matches on.
    var configured: SocketAddress
    var frontend: Int
    var backend: Int
}

enum Listener {
    static let backlog: Int32 = 65535

    /// Opens one SO_REUSEPORT listening socket. TCP_NODELAY set here is inherited by every
    /// accepted socket, which saves a setsockopt per connection.
    static func open(_ address: SocketAddress) throws(ListenerError) -> (fd: Int32, bound: SocketAddress) {
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw .socket(address, errno) }
        var one: Int32 = 1
        let size = socklen_t(MemoryLayout<Int32>.size)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, size)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, size)
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, size)
        if address.family == AF_INET6 {
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, size)
        }
        var storage = address.storage
        let rc = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, address.length) }
        }
        if rc != 0 {
            let e = errno
            close(fd)
            throw .bind(address, e)
        }
        if listen(fd, backlog) != 0 {
            let e = errno
            close(fd)
            throw .listen(address, e)
        }
        var bound = sockaddr_in6()
        var len = socklen_t(MemoryLayout<sockaddr_in6>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        let actual = withUnsafeBytes(of: &bound) { SocketAddress(raw: $0.baseAddress!, length: len) } ?? address
        return (fd, actual)
    }
}
