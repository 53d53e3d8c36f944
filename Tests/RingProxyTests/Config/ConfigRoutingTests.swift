// use_backend conditions from the file to the decision: parsed, mapped to BackendRoute values,
// compiled into a RouteTable and evaluated on CONNECT bytes and client addresses, without a
// socket. HAProxy's precedence (`!` on one term, AND before OR), named ACLs on several lines,
// the matchers, and the errors `-c` gives at their line.
import Foundation
import Glibc
import MQTTPeek
import XCTest
@testable import RingProxy

final class ConfigRoutingTests: XCTestCase {
    /// Backends a and b, and frontend f (which reads the CONNECT unless `inspects` is false)
    /// with `body` before `default_backend b`.
    private func load(_ body: String, binds: [UInt16] = [1883], inspects: Bool = true) throws -> EngineConfig {
        let inspection = inspects
            ? ["tcp-request inspect-delay 5s", "tcp-request content reject unless { req.payload(0,0),mqtt_is_valid }"] : []
        let lines = binds.map { "bind 127.0.0.1:\($0)" } + inspection + body.split(separator: "\n").map(String.init)
        let text = """
            \(tcpDefaults)
            backend a
              server s 127.0.0.1:1
            backend b
              server s 127.0.0.1:2
            frontend f
            \(lines.map { "  " + $0 }.joined(separator: "\n"))
              default_backend b
            """
        let file = try ConfigParser.parse(text: text, file: "t.cfg").get()
        return try EngineConfig.load(file).engine
    }

    private func refusal(_ body: String) -> String {
        do {
            _ = try load(body)
            return "accepted"
        } catch {
            return "\(error)"
        }
    }

    /// The backend name the rules choose for a client at `source` sending `connect`.
    private func route(_ config: EngineConfig, connect: [UInt8]?, source: String = "127.0.0.1", port: UInt16 = 1883) -> String {
        let table = RouteTable(frontends: config.frontends, connectMaxBytes: 65_536)
        defer { table.deallocate() }
        var peer = sockaddr_in()
        peer.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, source, &peer.sin_addr)
        let bytes = connect ?? []
        let chosen = bytes.withUnsafeBytes { buffer -> Int in
            var packet: ConnectPacket?
            if connect != nil, case .connect(let parsed) = MQTTPeek.parseConnect(buffer) { packet = parsed }
            XCTAssertTrue(connect == nil || packet != nil, "the test's CONNECT does not parse")
            return withUnsafeBytes(of: &peer) {
                table.backend(frontend: 0, RouteInput(peer: $0.baseAddress!, destinationPort: Int64(port), connect: buffer, packet: packet))
            }
        }
        return chosen < 0 ? config.backends[config.frontends[0].backendIndex].name : config.backends[chosen].name
    }

    private func connect(_ clientID: String, username: String = "user", level: UInt8 = 4) -> [UInt8] {
        MQTTWire.connect(clientID: clientID, level: level, username: username, password: Array("pw".utf8))
    }

    /// An MQTT 5 CONNECT with a session expiry interval (property 17) and a will whose content
    /// type (property 3) is given.
    private func connect5(sessionExpiryS: UInt32?, willContentType: String?) -> [UInt8] {
        var properties: [UInt8] = []
        if let s = sessionExpiryS { properties = [0x11, UInt8(s >> 24), UInt8(s >> 16 & 0xFF), UInt8(s >> 8 & 0xFF), UInt8(s & 0xFF)] }
        var flags: UInt8 = 0x02
        var payload = MQTTWire.string(Array("v5".utf8))
        if let type = willContentType {
            flags |= 0x04
            let will = [0x03] + MQTTWire.string(Array(type.utf8))
            payload += MQTTWire.remainingLength(will.count) + will + MQTTWire.string(Array("w/t".utf8)) + MQTTWire.string([1])
        }
        let body = MQTTWire.string(Array("MQTT".utf8)) + [5, flags, 0, 60] + MQTTWire.remainingLength(properties.count) + properties + payload
        return [0x10] + MQTTWire.remainingLength(body.count) + body
    }

    func testNegationBindsToOneTermAndAndBindsTighterThanOr() throws {
        // a !b or c: (a and not b) or c.
        let config = try load("""
            acl a req.payload(0,0),mqtt_field_value(connect,username) -m beg x
            acl b req.payload(0,0),mqtt_field_value(connect,username) -m end y
            acl c src 10.0.0.0/8
            use_backend a if a !b or c
            """)
        XCTAssertEqual(route(config, connect: connect("1", username: "x1")), "a")
        XCTAssertEqual(route(config, connect: connect("1", username: "x1y")), "b", "b holds, so the first group fails")
        XCTAssertEqual(route(config, connect: connect("1", username: "x1y"), source: "10.1.2.3"), "a", "the second group holds")
        XCTAssertEqual(route(config, connect: connect("1", username: "zz")), "b")
        // unless: the rule applies when the condition fails.
        let unless = try load("""
            acl a req.payload(0,0),mqtt_field_value(connect,username) -m beg x
            use_backend a unless a || { src 10.0.0.1 }
            """)
        XCTAssertEqual(route(unless, connect: connect("1", username: "x")), "b")
        XCTAssertEqual(route(unless, connect: connect("1", username: "q"), source: "10.0.0.1"), "b")
        XCTAssertEqual(route(unless, connect: connect("1", username: "q")), "a")
    }

    func testNamedACLsOnSeveralLinesAreAlternativesAndTheFirstMatchingRuleWins() throws {
        let config = try load("""
            acl ops req.payload(0,0),mqtt_field_value(connect,username) -m str alice
            acl ops req.payload(0,0),mqtt_field_value(connect,username) -m str bob
            use_backend a if ops
            use_backend b if TRUE
            use_backend a if TRUE
            """)
        XCTAssertEqual(route(config, connect: connect("1", username: "bob")), "a")
        XCTAssertEqual(route(config, connect: connect("1", username: "alice")), "a")
        XCTAssertEqual(route(config, connect: connect("1", username: "carol")), "b")
    }

    func testMatchersOnTheConnectFields() throws {
        let config = try load("""
            use_backend a if { req.payload(0,0),mqtt_field_value(connect,client_identifier) -m sub -i ROOM }
            use_backend a if { req.payload(0,0),mqtt_field_value(connect,client_identifier) -m reg ^dev-[0-9]{3}$ }
            use_backend a if { req.payload(0,0),mqtt_field_value(connect,protocol_version) -m str 5 }
            use_backend a if { req.payload(0,0),mqtt_field_value(connect,keepalive) -m int gt 100 }
            """)
        XCTAssertEqual(route(config, connect: connect("living-room-3")), "a")
        XCTAssertEqual(route(config, connect: connect("dev-123")), "a")
        XCTAssertEqual(route(config, connect: connect("dev-1234")), "b")
        XCTAssertEqual(route(config, connect: connect("x", level: 5)), "a", "protocol_version reads '5'")
        XCTAssertEqual(route(config, connect: connect("x", level: 4)), "b", "keepalive 60 is not above 100")
    }

    func testMQTT5PropertiesReadAsHAProxyReadsThem() throws {
        let config = try load("""
            use_backend a if { req.payload(0,0),mqtt_field_value(connect,17) -m int ge 3600 }
            use_backend a if { req.payload(0,0),mqtt_field_value(connect,3) -m str text/plain }
            """)
        XCTAssertEqual(route(config, connect: connect5(sessionExpiryS: 7200, willContentType: nil)), "a")
        XCTAssertEqual(route(config, connect: connect5(sessionExpiryS: 60, willContentType: nil)), "b")
        XCTAssertEqual(route(config, connect: connect5(sessionExpiryS: nil, willContentType: "text/plain")), "a")
        let absent = try load("use_backend a if { req.payload(0,0),mqtt_field_value(connect,17) -m int 0 }")
        XCTAssertEqual(route(absent, connect: connect5(sessionExpiryS: nil, willContentType: nil)), "a",
                       "a numeric property an MQTT 5 client did not send reads 0, as in HAProxy")
        XCTAssertEqual(route(absent, connect: connect("x")), "b", "and is not found before MQTT 5")
        let empty = try load("use_backend a if { req.payload(0,0),mqtt_field_value(connect,client_identifier) -m found }")
        XCTAssertEqual(route(empty, connect: connect("")), "b", "an empty client id is not found (HAProxy)")
        XCTAssertEqual(route(empty, connect: connect("x")), "a")
    }

    func testSourceAndDestinationPortNeedNoConnect() throws {
        let config = try load("use_backend a if { dst_port 1884 } || { src 192.168.0.0/16 } !LOCALHOST",
                              binds: [1883, 1884], inspects: false)
        XCTAssertEqual(route(config, connect: nil, port: 1884), "a")
        XCTAssertEqual(route(config, connect: nil, port: 1883), "b")
        XCTAssertEqual(route(config, connect: nil, source: "192.168.1.1"), "a")
    }

    func testPatternFilesAreReadFromTheWorkingDirectory() throws {
        let dir = try TemporaryDirectory()
        try "# users of cluster a\n   alice\n\nBob\n#carol\n".write(toFile: dir.file("users.lst"), atomically: true, encoding: .utf8)
        let previous = FileManager.default.currentDirectoryPath
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(dir.url.path))
        defer { FileManager.default.changeCurrentDirectoryPath(previous) }
        let config = try load("use_backend a if { req.payload(0,0),mqtt_field_value(connect,username) -m str -i -f users.lst }")
        XCTAssertEqual(route(config, connect: connect("1", username: "alice")), "a", "leading spaces are not part of a pattern")
        XCTAssertEqual(route(config, connect: connect("1", username: "BOB")), "a")
        XCTAssertEqual(route(config, connect: connect("1", username: "carol")), "b", "comments are skipped")
        XCTAssertEqual(route(config, connect: connect("1", username: "# users of cluster a")), "b")
    }

    func testBadConditionsAreRefusedAtTheirLine() throws {
        let missing = refusal("use_backend a if { req.payload(0,0),mqtt_field_value(connect,username) -m str -f /nonexistent/users.lst }")
        XCTAssertTrue(missing.contains("t.cfg:14: 'use_backend': cannot open pattern file '/nonexistent/users.lst'"), missing)
        let regex = refusal("acl r req.payload(0,0),mqtt_field_value(connect,username) -m reg (unclosed\nuse_backend a if r")
        XCTAssertTrue(regex.contains("t.cfg:14: 'acl': regex '(unclosed' does not compile"), regex)
        let fetch = refusal("use_backend a if { req.len gt 10 }")
        XCTAssertTrue(fetch.contains("t.cfg:14: 'use_backend': 'req.len' cannot choose a backend"), fetch)
        let method = refusal("use_backend a if { src -m str 10.0.0.1 }")
        XCTAssertTrue(method.contains("t.cfg:14: 'use_backend': '-m str' cannot match 'src'"), method)
        let property = refusal("use_backend a if { req.payload(0,0),mqtt_field_value(connect,18) -m found }")
        XCTAssertTrue(property.contains("t.cfg:14: 'use_backend': MQTT 5.0 property 18 is not a CONNECT property"), property)

        // A CONNECT field on a frontend that does not read the CONNECT.
        let file = try ConfigParser.parse(text: """
            \(tcpDefaults)
            backend a
              server s 127.0.0.1:1
            frontend f
              bind 127.0.0.1:1883
              acl tenant req.payload(0,0),mqtt_field_value(connect,username) -m beg tenant-a/
              use_backend a if tenant
              default_backend a
            """, file: "t.cfg").get()
        XCTAssertThrowsError(try EngineConfig.load(file)) { error in
            XCTAssertTrue("\(error)".contains("t.cfg:11: 'use_backend': this condition reads the MQTT CONNECT, but frontend 'f' does not inspect it"),
                          "\(error)")
        }
    }
}
