// Real processes for integration tests: mosquitto brokers, mosquitto clients, the ringproxy
// binary itself. Each is bounded in time and killed when the test ends.
import Foundation
import Glibc
import XCTest

enum Tools {
    /// The ringproxy binary built beside this test bundle.
    static var ringproxy: String {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        return dir.appendingPathComponent("ringproxy").path
    }

    static func which(_ name: String) -> String? {
        for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/bin"] {
            let path = dir + "/" + name
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }
}

final class ChildProcess {
    let process = Process()
    let output = Pipe()

    init(_ path: String, _ arguments: [String], currentDirectory: String? = nil) throws {
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
        process.standardOutput = output
        process.standardError = output
        try process.run()
    }

    /// Waits up to `seconds` for exit; kills it past that. Returns (status, output).
    func finish(within seconds: Double) -> (Int32, String) {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            process.terminate()
            usleep(100_000)
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }
}

/// A mosquitto broker on 127.0.0.1 at a free port, logging connections to a file.
final class Mosquitto {
    let port: UInt16
    let directory: URL
    let child: ChildProcess
    var logPath: String { directory.appendingPathComponent("mosquitto.log").path }

    /// A broker on a fixed port (as a seed configuration names it).
    convenience init(port: UInt16) throws {
        try self.init(fixedPort: port)
    }

    convenience init() throws {
        try self.init(fixedPort: nil)
    }

    /// A broker whose listener speaks MQTT over WebSocket (`protocol websockets`, on all IPv4
    /// addresses: libwebsockets binds no single address here). Debian's mosquitto 2.0.11 exits
    /// ("Unable to start any listening sockets") with websockets listeners only, so it gets a
    /// plain one too, on another free port.
    convenience init(websockets: Bool) throws {
        try self.init(fixedPort: nil, websockets: websockets)
    }

    convenience init(port: UInt16, websockets: Bool) throws {
        try self.init(fixedPort: port, websockets: websockets)
    }

    /// A broker whose one listener is MQTT over TLS (`certfile`/`keyfile` from the test CA:
    /// CN=localhost, SAN localhost and 127.0.0.1), asking for client certificates signed by
    /// the test CA when `requireCertificate`.
    convenience init(tlsCertificate name: String, requireCertificate: Bool = false) throws {
        try self.init(fixedPort: nil, tls: (name, requireCertificate))
    }

    private init(fixedPort: UInt16?, websockets: Bool = false, tls: (certificate: String, requireCertificate: Bool)? = nil) throws {
        guard let path = Tools.which("mosquitto") else { throw XCTSkipError("mosquitto is not installed (apt-get install mosquitto)") }
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("rp-mosquitto-\(UUID().uuidString)")
        // mosquitto started as root drops to its own user, which must be able to write the log.
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o777])
        var tlsLines = ""
        if let tls {
            // mosquitto reads the key as its own user: a readable copy of the throwaway key.
            let stem = tls.certificate.replacingOccurrences(of: ".pem", with: "")
            let key = directory.appendingPathComponent("broker.key").path
            try FileManager.default.copyItem(atPath: TLSTestCertificates.path(stem + ".key"), toPath: key)
            chmod(key, 0o644)
            tlsLines = "certfile \(TLSTestCertificates.path(stem + ".crt"))\nkeyfile \(key)\ncafile \(TLSTestCertificates.path("ca.pem"))\n"
                + "require_certificate \(tls.requireCertificate)\n"
        }
        var started: ChildProcess?
        var chosen: UInt16 = 0
        for _ in 0..<5 {
            let port = fixedPort ?? TestSocket.unusedPort()
            let conf = directory.appendingPathComponent("mosquitto.conf")
            try """
                \(websockets ? "listener \(TestSocket.unusedPort()) 127.0.0.1" : "")
                listener \(port)\(websockets ? "" : " 127.0.0.1")
                \(websockets ? "protocol websockets\nsocket_domain ipv4" : "")
                \(tlsLines)
                allow_anonymous true
                log_dest file \(directory.appendingPathComponent("mosquitto.log").path)
                log_type all
                connection_messages true
                """.write(to: conf, atomically: true, encoding: .utf8)
            let child = try ChildProcess(path, ["-c", conf.path])
            if eventually(seconds: 5, { Mosquitto.listening(port) }) {
                started = child
                chosen = port
                break
            }
            _ = child.finish(within: 0)
        }
        guard let started else { throw XCTSkipError("mosquitto did not start") }
        child = started
        port = chosen
    }

    static func listening(_ port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f000001).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    /// Client ids the broker has seen connect (from its log).
    func connectedClientIDs() -> [String] {
        guard let log = try? String(contentsOfFile: logPath, encoding: .utf8) else { return [] }
        return log.split(separator: "\n").compactMap { line in
            guard line.contains("New client connected"), let range = line.range(of: " as ") else { return nil }
            return String(line[range.upperBound...].split(separator: " ").first ?? "")
        }
    }

    /// TCP connections the broker has logged (its readiness probe included).
    func connectionCount() -> Int {
        guard let log = try? String(contentsOfFile: logPath, encoding: .utf8) else { return 0 }
        return log.components(separatedBy: "New connection from").count - 1
    }

    func stop() {
        // A test fixture: no need for a graceful exit (which can take seconds with clients).
        child.signal(SIGKILL)
        _ = child.finish(within: 5)
        try? FileManager.default.removeItem(at: directory)
    }
}

struct XCTSkipError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A Python script the test paces: it prints a line at each milestone and waits for a line on
/// its standard input before going on (python3 as the PATH finds it).
final class PacedPython {
    let process = Process()
    private let input = Foundation.Pipe()
    private let output = Foundation.Pipe()

    init(_ script: String) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script]
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
    }

    deinit { if process.isRunning { process.terminate() } }

    /// The script's next line (without its LF); "" at its end.
    func nextLine() -> String {
        var line: [UInt8] = []
        while let byte = try? output.fileHandleForReading.read(upToCount: 1), let b = byte.first, b != 10 { line.append(b) }
        return String(decoding: line, as: UTF8.self)
    }

    /// Lets the script go past its current `sys.stdin.readline()`.
    func proceed() { input.fileHandleForWriting.write("\n".data(using: .utf8)!) }

    func waitUntilExit() { process.waitUntilExit() }
}

/// The suite runs under a sanitizer (scripts/sanitize.sh sets RINGPROXY_SANITIZE): bulk tests
/// move less (ThreadSanitizer makes every byte the test threads touch 5-15x slower); what they
/// check stays the same.
let underSanitizer = ProcessInfo.processInfo.environment["RINGPROXY_SANITIZE"] != nil

/// A test that reads jemalloc's per-thread counters found none: under a sanitizer build
/// (scripts/sanitize.sh, RINGPROXY_SANITIZE set) jemalloc is left out on purpose and the test
/// skips; anywhere else that is a broken build, and the test fails.
func jemallocMissing(file: StaticString = #filePath, line: UInt = #line) throws {
    if ProcessInfo.processInfo.environment["RINGPROXY_SANITIZE"] != nil {
        throw XCTSkip("a sanitizer build: jemalloc is not linked, its counters cannot be read")
    }
    XCTFail("jemalloc is not the allocator of the test process; the counter is unavailable", file: file, line: line)
}
