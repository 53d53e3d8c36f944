// A UDP socket on 127.0.0.1 standing in for a syslog server: what the connection log sends
// arrives here, one datagram a line.
import Foundation
import Glibc
@testable import RingProxy

final class SyslogReceiver {
    let fd: Int32
    let port: UInt16

    init() {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var address = SocketAddress(ipv4: 127, 0, 0, 1, port: 0).storage
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        TestSocket.setTimeouts(fd, seconds: 5)
        self.fd = fd
        port = UInt16(bigEndian: bound.sin_port)
    }

    deinit { close(fd) }

    /// Where a LogConfig sends to reach this receiver (local3.info).
    var logConfig: LogConfig {
        LogConfig(destination: .syslog(SocketAddress(ipv4: 127, 0, 0, 1, port: port)), facility: 19, severity: 6)
    }

    /// Up to `count` lines, waiting at most 5 s for each.
    func receive(count: Int) -> [String] {
        receive { $0.count >= count }
    }

    /// Lines until `enough` says so, waiting at most 5 s for each.
    func receive(until enough: ([String]) -> Bool) -> [String] {
        var lines: [String] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !enough(lines) {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            lines.append(String(decoding: buffer[0..<n], as: UTF8.self))
        }
        return lines
    }
}
