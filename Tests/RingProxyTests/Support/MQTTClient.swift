// A minimal MQTT client for tests: builds CONNECT packets byte by byte (3.1.1 and 5.0) and
// reads CONNACK, so thousands of real MQTT sessions can run against real brokers quickly.
import Foundation
import Glibc
import MQTTPeek

enum MQTTWire {
    static func remainingLength(_ n: Int) -> [UInt8] {
        var out: [UInt8] = []
        var x = n
        repeat {
            var b = UInt8(x % 128)
            x /= 128
            if x > 0 { b |= 0x80 }
            out.append(b)
        } while x > 0
        return out
    }

    static func string(_ s: [UInt8]) -> [UInt8] { [UInt8(s.count >> 8), UInt8(s.count & 0xff)] + s }

    /// CONNECT, clean session, keepalive 60 s; optional username/password and will payload.
    static func connect(clientID: String, level: UInt8 = 4, username: String = "user", password: [UInt8]? = nil,
                        willPayload: [UInt8]? = nil) -> [UInt8] {
        var flags: UInt8 = 0x02
        var payload = string(Array(clientID.utf8))
        var variable: [UInt8] = string(Array("MQTT".utf8)) + [level]
        if let will = willPayload {
            flags |= 0x04
            if level == 5 { payload += [0] }          // will properties: none
            payload += string(Array("will/topic".utf8)) + string(will)
        }
        if let password {
            flags |= 0xC0
            payload += string(Array(username.utf8)) + string(password)
        }
        variable += [flags, 0x00, 0x3C]
        if level == 5 { variable += [0] }              // CONNECT properties: none
        let body = variable + payload
        return [0x10] + remainingLength(body.count) + body
    }

    static let disconnect: [UInt8] = [0xE0, 0x00]
    static let pingreq: [UInt8] = [0xC0, 0x00]

    /// One whole MQTT session: connect, expect a successful CONNACK, disconnect. True on success.
    static func session(port: UInt16, clientID: String) -> Bool {
        let fd = TestSocket.connect(port: port)
        defer { close(fd) }
        guard TestSocket.writeAll(fd, connect(clientID: clientID)) else { return false }
        guard let ack = TestSocket.readExactly(fd, 4), ack == [0x20, 0x02, 0x00, 0x00] else { return false }
        _ = TestSocket.writeAll(fd, disconnect)
        shutdown(fd, Int32(SHUT_WR))   // a broker closes on DISCONNECT; a recording one on FIN
        _ = TestSocket.readToEnd(fd) { _ in }
        return true
    }
}

extension TestServer {
    /// A stand-in broker that reads the CONNECT, records its client id, answers CONNACK and then
    /// records every further byte.
    static func recordingBroker(_ record: Locked<[String]>, received: Locked<[UInt8]>? = nil) -> TestServer {
        TestServer { fd in
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                bytes += chunk[0..<n]
                let verdict = bytes.withUnsafeBytes { MQTTPeek.parseConnect($0, connectMaxBytes: 1 << 20) }
                if case .connect(let packet) = verdict {
                    record.withLock { $0.append(String(decoding: bytes[packet.clientIdentifier], as: UTF8.self)) }
                    _ = TestSocket.writeAll(fd, [0x20, 0x02, 0x00, 0x00])
                    break
                }
                if case .invalid = verdict { break }
            }
            while true {
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                bytes += chunk[0..<n]
            }
            received?.withLock { $0 += bytes }
        }
    }
}
