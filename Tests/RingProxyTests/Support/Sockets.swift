// Blocking loopback sockets for tests: real TCP peers on 127.0.0.1, nothing mocked.
import Foundation
import Glibc
import XCTest
@testable import RingProxy

enum TestSocket {
    /// A connection to 127.0.0.1:`port`, from `source` (another loopback address, say) when
    /// given, else from 127.0.0.1.
    static func connect(port: UInt16, from source: SocketAddress? = nil, timeoutSeconds: Int = 10) -> Int32 {
        connect(to: SocketAddress(ipv4: 127, 0, 0, 1, port: port), from: source, timeoutSeconds: timeoutSeconds)
    }

    /// True when the peer closes `fd` before sending a byte, within `seconds`: a connection the
    /// proxy refused (one it admitted would wait for the client, as an echo server does).
    static func isClosedByPeer(_ fd: Int32, withinSeconds seconds: Int = 2) -> Bool {
        setTimeouts(fd, seconds: seconds)
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, 0) == 0
    }

    /// True when the peer ends `fd` within `seconds` before sending a byte, with a FIN or with
    /// a reset: where the proxy closes a client whose bytes it has not read yet (a server that
    /// failed before the proxy read what the client sent), the kernel answers with RST.
    static func isEndedByPeer(_ fd: Int32, withinSeconds seconds: Int = 2) -> Bool {
        setTimeouts(fd, seconds: seconds)
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, 0)
        return n == 0 || (n < 0 && errno == ECONNRESET)
    }

    /// A connection to `address` (IPv4 or IPv6), from `source` when given (a loopback address
    /// other than 127.0.0.1, so that a test can tell which address a peer learned).
    static func connect(to address: SocketAddress, from source: SocketAddress? = nil, timeoutSeconds: Int = 10) -> Int32 {
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue), 0)
        precondition(fd >= 0)
        setTimeouts(fd, seconds: timeoutSeconds)
        if var source {
            let rc = withUnsafePointer(to: &source.storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, source.length) }
            }
            precondition(rc == 0, "bind to \(source) failed: \(errno)")
        }
        var target = address
        let rc = withUnsafePointer(to: &target.storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, address.length) }
        }
        precondition(rc == 0, "connect to \(address) failed: \(errno)")
        return fd
    }

    /// The socket's own address (getsockname).
    static func localAddress(_ fd: Int32) -> SocketAddress {
        var storage = sockaddr_in6()
        var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return withUnsafeBytes(of: &storage) { SocketAddress(raw: $0.baseAddress!, length: length)! }
    }

    static func setTimeouts(_ fd: Int32, seconds: Int) {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Writes everything; false if the peer went away or the write timed out.
    @discardableResult
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    @discardableResult
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { writeAll(fd, $0) }
    }

    /// Reads until EOF (or error/timeout), feeding each chunk to `body`. Returns true on EOF.
    static func readToEnd(_ fd: Int32, _ body: (UnsafeRawBufferPointer) -> Void) -> Bool {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 8)
        defer { buffer.deallocate() }
        while true {
            let n = recv(fd, buffer.baseAddress, buffer.count, 0)
            if n == 0 { return true }
            if n < 0 { return false }
            body(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
    }

    static func readExactly(_ fd: Int32, _ count: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, count - got, 0) }
            if n <= 0 { return nil }
            got += n
        }
        return out
    }

    /// A listening socket on 127.0.0.1 without SO_REUSEPORT (as another program's would be): a
    /// bind to its port fails. Returns the fd (close it when done) and the port.
    static func occupyPort() -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = SocketAddress(ipv4: 127, 0, 0, 1, port: 0).storage
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        listen(fd, 1)
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return (fd, UInt16(bigEndian: bound.sin_port))
    }

    /// A port nothing uses right now, below the ephemeral range (32768+) so that client
    /// sockets do not take it before the process we hand it to binds it.
    static func unusedPort() -> UInt16 {
        while true {
            let port = UInt16.random(in: 20_000..<32_000)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = SocketAddress(ipv4: 127, 0, 0, 1, port: port).storage
            let rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            close(fd)
            if rc == 0 { return port }
        }
    }
}

/// FNV-1a over a byte stream: a checksum both ends compute independently.
struct Checksum: Equatable {
    var value: UInt64 = 0xcbf29ce484222325
    var count = 0
    mutating func add(_ bytes: UnsafeRawBufferPointer) {
        var v = value
        for b in bytes { v = (v ^ UInt64(b)) &* 0x100000001b3 }
        value = v
        count += bytes.count
    }
}

/// Deterministic pseudo-random payload, different per seed.
func payload(size: Int, seed: UInt64) -> [UInt8] {
    var x = seed &* 0x9E3779B97F4A7C15 | 1
    return (0..<size).map { _ in
        x ^= x << 13; x ^= x >> 7; x ^= x << 17
        return UInt8(truncatingIfNeeded: x)
    }
}

/// Runs `body` on `count` threads at once and waits for all of them.
func concurrently(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    for i in 0..<count {
        group.enter()
        let thread = Thread {
            body(i)
            group.leave()
        }
        thread.stackSize = 256 * 1024
        thread.start()
    }
    group.wait()
}

/// Polls `condition` every 10 ms until it holds or `seconds` pass.
func eventually(seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}

/// A value shared between test threads.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
    var current: Value { withLock { $0 } }
}

/// A directory removed when the value goes away.
final class TemporaryDirectory {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("rp-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func file(_ name: String) -> String { url.appendingPathComponent(name).path }
    deinit { try? FileManager.default.removeItem(at: url) }
}

/// The `defaults` section the configuration tests share: tcp mode and every timeout set, so
/// that only what a test is about differs (five lines: error line numbers count them).
let tcpDefaults = """
    defaults
      mode tcp
      timeout connect 5s
      timeout client 60s
      timeout server 60s
    """

/// A file with `hard-stop-after <time>` and one frontend on `port` in front of `server`.
func hardStopAfterConfig(_ time: String, port: UInt16, server: UInt16) -> String {
    """
    global
      hard-stop-after \(time)
    \(tcpDefaults)
    frontend f
      bind 127.0.0.1:\(port)
      default_backend b
    backend b
      server s 127.0.0.1:\(server)
    """
}

/// One connection through the proxy at `port` to an echo server: a byte there and back.
func echoRoundTrip(port: UInt16, byte: UInt8 = 3) -> Bool {
    let fd = TestSocket.connect(port: port)
    defer { close(fd) }
    return TestSocket.writeAll(fd, [byte]) && TestSocket.readExactly(fd, 1) == [byte]
}

/// Opens one connection to `port` from `source` (127.0.0.1 when nil), asserts the echo server
/// behind the proxy answers it, and closes it.
func assertServed(port: UInt16, from source: SocketAddress? = nil, _ byte: UInt8, _ message: @autoclosure () -> String = "",
                  file: StaticString = #filePath, line: UInt = #line) {
    let fd = TestSocket.connect(port: port, from: source)
    assertEchoes(fd, byte, message(), file: file, line: line)
    close(fd)
}

/// Opens one connection to `port` from `source` (127.0.0.1 when nil) and asserts the proxy
/// closes it before any byte: refused.
func assertRefused(port: UInt16, from source: SocketAddress? = nil, _ message: @autoclosure () -> String = "",
                   file: StaticString = #filePath, line: UInt = #line) {
    let fd = TestSocket.connect(port: port, from: source)
    XCTAssertTrue(TestSocket.isClosedByPeer(fd), message(), file: file, line: line)
    close(fd)
}

/// Sends one byte through `fd` and asserts the same byte comes back (an echo server behind the
/// proxy): the connection is alive end to end.
func assertEchoes(_ fd: Int32, _ byte: UInt8, _ message: @autoclosure () -> String = "",
                  file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertTrue(TestSocket.writeAll(fd, [byte]), message(), file: file, line: line)
    XCTAssertEqual(TestSocket.readExactly(fd, 1), [byte], message(), file: file, line: line)
}
