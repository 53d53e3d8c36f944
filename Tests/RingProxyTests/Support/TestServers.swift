// Backends for engine tests: real TCP servers on loopback with a thread per connection.
import Foundation
import Glibc
@testable import RingProxy

/// A TCP server on 127.0.0.1 with an ephemeral port; `handle` runs per connection on its own
/// thread and the connection is closed when it returns.
final class TestServer: @unchecked Sendable {
    let fd: Int32
    let port: UInt16
    private let handle: @Sendable (Int32) -> Void
    private let lock = NSLock()
    private var _accepted = 0
    var accepted: Int { lock.withLock { _accepted } }

    init(port: UInt16 = 0, _ handle: @escaping @Sendable (Int32) -> Void) {
        let (fd, bound) = try! Listener.open(SocketAddress(ipv4: 127, 0, 0, 1, port: port))
        self.fd = fd
        self.port = bound.port
        self.handle = handle
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    private func acceptLoop() {
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return
            }
            lock.withLock { _accepted += 1 }
            TestSocket.setTimeouts(client, seconds: 20)
            let thread = Thread { [handle] in
                handle(client)
                close(client)
            }
            thread.stackSize = 256 * 1024
            thread.start()
        }
    }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    /// Echoes every byte back; on the client's FIN, finishes sending and sends FIN.
    static func echo(port: UInt16 = 0) -> TestServer {
        TestServer(port: port) { fd in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 8)
            defer { buffer.deallocate() }
            while true {
                let n = recv(fd, buffer.baseAddress, buffer.count, 0)
                if n <= 0 { break }
                if !TestSocket.writeAll(fd, UnsafeRawBufferPointer(rebasing: buffer[0..<n])) { return }
            }
            shutdown(fd, Int32(SHUT_WR))
            // Wait for the client to close its side fully.
            _ = recv(fd, buffer.baseAddress, 1, 0)
        }
    }

    /// Sends `bytes` bytes of a known pattern, then FIN, and keeps reading until EOF.
    static func firehose(bytes: Int) -> TestServer {
        TestServer { fd in
            guard firehosePattern(bytes: bytes, { TestSocket.writeAll(fd, $0) }) else { return }
            shutdown(fd, Int32(SHUT_WR))
            _ = TestSocket.readToEnd(fd) { _ in }
        }
    }

    /// The checksum of what firehose(bytes:) sends.
    static func firehoseChecksum(bytes: Int) -> Checksum {
        var sum = Checksum()
        _ = firehosePattern(bytes: bytes) { sum.add($0); return true }
        return sum
    }

    /// firehose's bytes, chunk by chunk, until `body` returns false.
    private static func firehosePattern(bytes: Int, _ body: (UnsafeRawBufferPointer) -> Bool) -> Bool {
        let chunk = payload(size: 65536, seed: 7)
        var left = bytes
        while left > 0 {
            let n = min(left, chunk.count)
            if !chunk.withUnsafeBytes({ body(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }) { return false }
            left -= n
        }
        return true
    }
}

/// An engine on 127.0.0.1:0 in front of the given server ports.
func startEngine(servers: [UInt16], cores: Int = 2, _ configure: (inout EngineConfig) -> Void = { _ in }) throws -> (Engine, UInt16) {
    var config = EngineConfig(
        frontends: [FrontendConfig(name: "test", binds: [SocketAddress(ipv4: 127, 0, 0, 1, port: 0)], backendIndex: 0)],
        backends: [BackendConfig(name: "servers", servers: servers.enumerated().map {
            ServerConfig(name: "s\($0.offset)", address: SocketAddress(ipv4: 127, 0, 0, 1, port: $0.element))
        })]
    )
    config.cores = cores
    config.buffersPerWorker = 1024
    config.drainGraceMs = 1000
    configure(&config)
    let engine = Engine(config: config, log: Log(minimum: .warning))
    try engine.start()
    return (engine, engine.boundAddresses[0][0].port)
}
